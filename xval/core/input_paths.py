"""Input files on disk before any is read: the audio extensions read, why a path is never
opened, and the refusal of a CSV path that is no regular file.

A light module (the standard library and `xval.core`): the annotation readers of the
detection task and the sources of `preprocessing` share it.
"""

from __future__ import annotations

import os
from pathlib import Path

from xval.core.errors import DatasetError
from xval.core.links import broken_link

__all__ = ["AUDIO_EXTENSIONS", "SNDFILE_EXTENSIONS", "check_file", "unreadable_reason"]

# What libsndfile reads directly; anything else goes through audioread (ffmpeg & co).
SNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au",
                      ".caf", ".w64", ".rf64", ".opus"}
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | {".m4a", ".aac", ".wma", ".mp4"}


def unreadable_reason(path: Path) -> str | None:
    """Why an audio path is never opened, or `None` for a regular file: a dangling link,
    a FIFO (opening it could block forever), a socket or device, a folder, a file that
    cannot be read."""
    broken = broken_link(path)
    if broken:
        return f"{broken}: never opened"
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "a folder, not an audio file"
    if not path.is_file():
        return "not a regular file (FIFO, socket or device): never opened"
    if not os.access(path, os.R_OK):
        return "permission denied: the file cannot be read"
    return None


def check_file(path: Path, what: str) -> None:
    """Refuses a CSV path that is not a regular file, saying what it is (a FIFO exists: it
    is named, never opened).

    Raises:
        DatasetError: naming `what` (`"Annotation file"`) and the path.
    """
    if not path.is_file():
        reason = "a folder" if path.is_dir() else unreadable_reason(path)
        raise DatasetError(f"{what} {str(path)!r} " + (
            "does not exist." if reason == "file not found" else
            f"is {reason}; give the CSV file itself."))
