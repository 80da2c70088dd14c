"""`RecordFiles`: sealed JSON record files, written atomically and read once per version.

Every record file is written here (`write`): atomically, sealed with its content hash
(`xval.core.hashing.seal`), and kept as a reader would read it back, so that nobody reads
it again until it changes; and read here (`read_record`), through its record's
`from_dict`, with the seal checked (a file edited by hand is named, never believed). The
records read are cached by a file's identity and version (inode, size, modification and
change times); the SHA-256 of a model file comes from the process's one digest cache,
`xval.core.hashing.file_digest`.

A record from the cache is shared between its readers: read it, never change it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from xval.core import hashing
from xval.core.errors import ResultsConflictError
from xval.core.files import atomic_write_json, json_text, read_json
from xval.core.hashing import Stamp
from xval.core.records import RecordError

T = TypeVar("T")
RACY_NS = 1_000_000_000
"""A file read less than this long after it changed is not kept in the cache: another
write within the file system's timestamp resolution would leave its stamp unchanged."""


class RecordFiles:
    """Sealed record files: `write`, `read_record`, `require`, and the cache of both."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, Any], tuple[Stamp, Any]] = {}

    def read_record(self, path: Path, parse: Callable[[Any], T], *,
                    sealed: bool = True) -> tuple[T | None, str]:
        """Reads a JSON result file through its record's `from_dict`.

        Args:
            path: the file.
            parse: the record's `from_dict` (e.g. `ParamsRecord.from_dict`).
            sealed: the file is written sealed (`write`), so one without its seal is
                refused; `False` for a derived file written unsealed (`summary.json`).
                Defaults to `True`.

        Returns:
            `(record, "")`; `(None, "")` when the file does not exist; `(None, why)` when
            it is not valid JSON, not a record of its kind, or was edited after it was
            sealed (`xval.core.hashing.seal_problem`); `why` reads after the file's name.
        """
        stamp = hashing.file_stamp(path)
        if stamp is None:
            return None, ""
        key = (str(path), parse)
        cached = self._records.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], ""
        try:
            data = read_json(path)
            edited = hashing.seal_problem(data, required=sealed)
            if edited:  # a metric, a model's hash or a parameter changed by hand
                return None, edited
            record = parse(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return None, f"is not valid JSON ({type(e).__name__}: {e})"
        except RecordError as e:
            return None, f"is not a record of its kind: {e}"
        except OSError as e:
            return None, f"cannot be read ({e.strerror or type(e).__name__})"
        if time.time_ns() - stamp[2] >= RACY_NS:
            self._records[key] = (stamp, record)
        return record, ""

    def require(self, path: Path, parse: Callable[[Any], T], fix: str) -> T:
        """Reads a result file that must be a record of its kind.

        Args:
            path: the file.
            parse: the record's `from_dict`.
            fix: what the user should do (one sentence).

        Raises:
            ResultsConflictError: when the file is missing, not valid JSON (truncated,
                edited by hand) or not a record of its kind, naming it and the fix.
        """
        record, why = self.read_record(path, parse)
        if why:
            raise ResultsConflictError(f"{path} {why}: {fix}")
        if record is None:
            raise ResultsConflictError(f"{path} is missing: {fix}")
        return record

    def write(self, path: Path, record: Any) -> None:
        """Writes a record as JSON, atomically, sealed with its content hash, and keeps it
        as `read_record` would read it back (`remember`)."""
        atomic_write_json(path, hashing.seal(json.loads(json_text(record.to_dict()))))
        self.remember(path, record)

    def remember(self, path: Path, record: Any) -> None:
        """Keeps the record just written to `path` (as a reader would read it back: NaN
        as `None`, no model bytes), so that nobody reads the file again until it
        changes."""
        stamp = hashing.file_stamp(path)
        if stamp is not None:
            parsed = type(record).from_dict(json.loads(json_text(record.to_dict())))
            self._records[(str(path), type(record).from_dict)] = (stamp, parsed)

    def digest(self, path: Path) -> str:
        """The SHA-256 of a file, computed once per version of it
        (`xval.core.hashing.file_digest`)."""
        return hashing.file_digest(path)

    def forget(self) -> None:
        """Empties the caches (the records read, and the digests)."""
        self._records.clear()
        hashing.forget_digests()
