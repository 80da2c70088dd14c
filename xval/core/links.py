"""Symbolic links that lead nowhere: to nothing (a dangling link) or, through one link or
several, back to themselves (a loop). `Path.exists()` is `False` for both; the messages
name which it is."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["broken_link"]


def broken_link(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with `path` as a link, or `None` when it is no link or a link that
    leads to something.

    Returns:
        `"a dangling link (to 'target')"`, or `"a loop of symbolic links ('a' -> 'b' leads
        back to itself)"`.
    """
    path = Path(path)
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as e:
        target = os.readlink(path)
        if e.errno == errno.ELOOP:
            return (f"a loop of symbolic links ({path.name!r} -> {target!r} leads back to "
                    "itself)")
        return f"a dangling link (to {target!r})"
    return None
