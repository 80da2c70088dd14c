"""Content hashes: what a record claims is checked against what its files hold.

A record stores the hash of what it was made from (the parameters of `params.json`, the
folds of `folds.json`, the features of a store, a fold's model). Trusting the stored hash
alone lets an edited file pass; these helpers hash the content itself, so that a reader
compares the two:

- `json_digest(value)`: the SHA-256 of a JSON value, keys sorted (the form every record's
  hash is made in);
- `file_digest(path)`: the SHA-256 of a file's bytes, computed once per process for each
  version of the file (its inode, size, modification and change times). This is the
  process's one digest cache: the results store (`xval.core.storage`) hashes models
  through it, and the store hands it the digests of the files it writes
  (`remember_digest`), so that a model it has just saved is not read again;
- `seal(data)` / `seal_problem(data)`: a record file's own content hash, written into it as
  `content_sha256` and checked by the results store (`xval.core.storage`), so that a result edited by
  hand (a metric, a model hash, a parameter) is named instead of believed. A record is
  always written sealed, so one without its hash is refused by name.

What the seal is: a checksum of the file's own content, not a signature. It detects an
accidental or careless edit, a truncated file, a file swapped in from another instance or
experiment (with the model and parameter hashes it holds); it cannot detect a deliberate
edit followed by a new seal computed with `seal` (anyone can compute it). Results that must
be tamper-evident against that need a secret or a copy kept elsewhere: docs/reliability.md,
"What the seal detects, and what it cannot".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CONTENT_KEY", "Stamp", "file_digest", "file_stamp", "files_digest",
           "forget_digests", "json_digest", "remember_digest", "seal", "seal_problem"]

_BLOCK = 1 << 20
_CACHED = 4096
"""File digests kept per process (the oldest is dropped first)."""

CONTENT_KEY = "content_sha256"
"""The key of a record file's own content hash (`seal`)."""

Stamp = tuple[int, int, int, int]
"""A file's version: inode, size, modification and change times (ns)."""

_digests: dict[str, tuple[Stamp, str]] = {}


def json_digest(value: Any) -> str:
    """The SHA-256 (hex) of `value` as JSON with sorted keys (`default=str` for values JSON
    has no type for)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def seal(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with its content hash (`CONTENT_KEY`: the `json_digest` of everything else).

    Args:
        data: a record's JSON values as they are written (after the JSON round trip:
            `json.loads(json_text(...))`, so that the reader hashes what it reads).

    Returns:
        A new dict: `data` and its hash.
    """
    body = {k: v for k, v in data.items() if k != CONTENT_KEY}
    return {**body, CONTENT_KEY: json_digest(body)}


def seal_problem(data: Any, *, required: bool = True) -> str:
    """Why a record file's content no longer matches the hash sealed into it, or `""`
    (matches, or not a mapping).

    Args:
        data: the file's JSON content.
        required: a record must hold its seal; `False` for a derived file written unsealed
            (`summary.json`), whose seal is checked only when it has one. Defaults to
            `True`.

    Returns:
        `"was edited after it was written: its content hashes to <12 hex>, not the recorded
        <12 hex>"`, `"lost its content_sha256 ..."` for a record without one, or `"has no
        format ..."` for a file this release did not write, to follow the file's name.
    """
    if not isinstance(data, Mapping):
        return ""
    if CONTENT_KEY not in data:
        if not required:
            return ""
        if "format" not in data:
            return ("has no format: this release did not write it (results of an earlier "
                    "release are rerun: a new experiment number, or --overwrite)")
        return (f"lost its {CONTENT_KEY}: a record is always written with the hash of its "
                "content, so it was edited after it was written (the hash removed)")
    recorded = data[CONTENT_KEY]
    content = json_digest({k: v for k, v in data.items() if k != CONTENT_KEY})
    if content == recorded:
        return ""
    return (f"was edited after it was written: its content hashes to {content[:12]}, not "
            f"the recorded {str(recorded)[:12]}")


def file_stamp(path: str | os.PathLike[str]) -> Stamp | None:
    """The version of a file (inode, size, modification and change times), or `None` when
    it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(paths: Iterable[str | os.PathLike[str]]) -> str:
    """The SHA-256 (hex) of the contents of `paths` together, read in the sorted order of
    their names (an encoder's weight files).

    Args:
        paths: the files.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def _keep(path: str, stamp: Stamp, value: str) -> None:
    _digests.pop(path, None)
    if len(_digests) >= _CACHED:
        del _digests[next(iter(_digests))]
    _digests[path] = (stamp, value)


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes (cached per version of the file).

    Raises:
        OSError: when the file cannot be read.
    """
    key, stamp = os.fspath(path), file_stamp(path)
    cached = _digests.get(key)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    value = _sha256(path)
    if stamp is not None:
        _keep(key, stamp, value)
    return value


def remember_digest(path: str | os.PathLike[str], value: str) -> None:
    """Keeps the SHA-256 of a file just written (by whoever hashed its bytes as it wrote
    them), so that it is not read again until it changes."""
    stamp = file_stamp(path)
    if stamp is not None:
        _keep(os.fspath(path), stamp, value)


def forget_digests() -> None:
    """Empties the digest cache."""
    _digests.clear()


FOLD_FIX = ("restore the file from a backup, or rerun the instance: a fold that is not "
            "believed is trained again (--overwrite retrains every fold)")
"""What to do about a fold that is not believed (an edited `fold_<i>.json`, a changed
`fold_<i>.keras`): said by the report, `compare` and `export`."""
