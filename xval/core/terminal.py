"""Whether output goes to a terminal: progress bars redraw there and nowhere else.

A bar drawn into a log file keeps every carriage-return redraw (tens of kilobytes for a
short run); where stderr is a file or a pipe the commands print whole lines instead.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["is_terminal", "line_buffered_output"]


def is_terminal(stream: Any = None) -> bool:
    """Whether `stream` is an interactive terminal.

    Args:
        stream: a file object. Defaults to `None`: `sys.stderr`, where the bars are drawn.

    Returns:
        `True` for a terminal; `False` for a file, a pipe, or a replaced or closed stream.
    """
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def line_buffered_output() -> None:
    """Makes stdout and stderr write every line as it is printed when they are a file or a
    pipe (Python buffers them in blocks there): a log followed with `tail -f` shows each
    finished fold when it finishes, not kilobytes later."""
    for stream in (sys.stdout, sys.stderr):
        if not is_terminal(stream) and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(line_buffering=True)
            except (ValueError, OSError):  # a closed or detached stream
                pass
