"""Arrays kept on disk while a large job runs (the duplicate check of a store's build): one
dtype, appended in turn, read back by element range into memory that leaves with the array
read (read, not mapped: a mapped file's pages would count in the process's memory)."""

from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["ArraySpool"]


class ArraySpool:
    """Elements of one dtype in an unnamed temporary file (the system removes it with the
    process, however the process ends, SIGKILL included). Use it as a context manager:
    the file is closed, and so removed, on leaving.

    Args:
        dtype: the elements' type.
        folder: where the file goes. Defaults to the system's temporary folder.
    """

    def __init__(self, dtype: np.typing.DTypeLike,
                 folder: str | os.PathLike[str] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self._file = tempfile.TemporaryFile(dir=folder)
        self._length = 0
        self._unflushed = False

    def __enter__(self) -> ArraySpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        """Closes (and so removes) the file."""
        self._file.close()

    def append(self, array: np.ndarray) -> int:
        """Appends the elements of `array` (converted to the spool's dtype).

        Returns:
            The index of its first element in the spool.
        """
        array = np.ascontiguousarray(array, self.dtype)
        self._file.write(array.data)
        start, self._length = self._length, self._length + array.size
        self._unflushed = True
        return start

    def read(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Elements `lo` to `hi - 1` (to the end by default), in a new array.

        Raises:
            IndexError: for a range outside the spool.
        """
        hi = self._length if hi is None else hi
        if not 0 <= lo <= hi <= self._length:
            raise IndexError(f"elements {lo} to {hi} of a spool of {self._length}")
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        out = np.empty(hi - lo, self.dtype)
        view, at = out.view(np.uint8).data, lo * self.dtype.itemsize
        while len(view):  # a large read may come in pieces
            got = os.preadv(self._file.fileno(), [view], at)
            if got == 0:
                raise OSError(f"the spool's file ended at byte {at}")
            view, at = view[got:], at + got
        return out
