"""Content hashes: what a record claims is checked against what its files hold.

A record stores the hash of what it was made from (the parameters of `params.json`, the
folds of `folds.json`, the features of a store). Trusting the stored hash alone lets an
edited file pass; these helpers hash the content itself, so that a reader compares the
two:

- `json_digest(value)`: the SHA-256 of a JSON value, keys sorted (the form every record's
  hash is made in);
- `file_digest(path)`: the SHA-256 of a file's bytes, computed once per process for each
  version of the file (its size and modification time), so a reader that checks many
  records pays once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any

__all__ = ["file_digest", "json_digest"]

_BLOCK = 1 << 20
_CACHED = 4096
"""File digests kept per process."""


def json_digest(value: Any) -> str:
    """The SHA-256 (hex) of `value` as JSON with sorted keys (`default=str` for values JSON
    has no type for)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=_CACHED)
def _file_digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    del size, mtime_ns, inode  # with the path, the cache key: the same file, unchanged
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes (cached per version of the file).

    Raises:
        OSError: when the file cannot be read.
    """
    stat = os.stat(path)
    return _file_digest(os.fspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
