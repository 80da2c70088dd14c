"""The one error handler of every entry point: no traceback reaches a user.

`python -m xval`, `python -m preprocessing`, `python -m augmentation` and every experiment
script run their work through `run_entry`. Whatever the input, the user sees output lines
and, when something goes wrong, one `error: ...` line on stderr:

- the project's own errors (`XvalError`) print their message: exit status 2;
- a file-system failure (`OSError`: a full or read-only disk, a permission, a folder where
  a file belongs, a loop of symbolic links) prints the path and what the system said:
  exit status 2;
- numbers out of range (`OverflowError`), structures too deep (`RecursionError`), memory
  (`MemoryError`) and text that cannot be encoded or decoded (`UnicodeError`): exit 2;
- anything else is a bug: one line naming the exception, exit status 1;
- Ctrl-C: the entry's own line (how to resume), exit status 130; SIGTERM the same line
  with "terminated (SIGTERM)" for its first word, exit status 143: the same clean-up runs
  for both (`xval.core.interrupts.sticky_interrupts`, installed around every command);
- stdout closed by its reader (`| head`) before the command finished: it stopped there, so
  one line says so, exit status 141 (`EXIT_PIPE`, as a shell reports a program a closed
  pipe stopped), never 0: a pipeline must not go on as if it had succeeded (`init` removes
  what it had written); stdout on a full device: an error naming stdout (only when stdout
  itself cannot be written: a full `--out` disk is named by the command, never blamed on
  stdout).

With `--debug` (or `XVAL_DEBUG=1`) the traceback is printed too. Output streams write
characters their encoding lacks as close ASCII (`±` as `+/-`) instead of failing
(`PYTHONIOENCODING=ascii`, an old terminal).
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import os
import stat
import sys
import traceback
from collections.abc import Callable, Sequence

from xval.core.errors import XvalError
from xval.core.interrupts import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    StdoutClosed,
    Terminated,
    exit_process,
    interactive_session,
    interrupted_line,
    quiet_stdout,
    raise_if_interrupted,
    sticky_interrupts,
)

__all__ = ["EXIT_BUG", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PIPE", "EXIT_TERMINATED",
           "debug_requested", "describe_error", "exit_process", "interactive_session",
           "interrupted_line", "run_entry", "safe_streams"]

EXIT_ERROR = 2
EXIT_BUG = 1
EXIT_PIPE = 141

_ASCII = {"±": "+/-", "×": "x", "–": "-", "—": "-", "…": "...", "≥": ">=", "≤": "<=",
          "→": "->", "←": "<-", "µ": "u", "°": " deg", "‘": "'", "’": "'", "“": '"',
          "”": '"', "•": "*", "█": "#", "▏": "|", "▎": "|", "▍": "|", "▌": "|", "▋": "|",
          "▊": "|", "▉": "|"}
_ERRORS = "xval-ascii"

_OS_FIXES = {
    errno.ENOSPC: "free space there, or write to another disk",
    errno.EDQUOT: "free space there (disk quota), or write to another disk",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.EACCES: "check the permissions, or give a path you can use",
    errno.EPERM: "the file or folder may not be changed (permissions, immutable); give "
                 "another path",
    errno.ELOOP: "a symbolic link leads back to itself (a loop); fix or remove the link",
    errno.EISDIR: "a folder stands where a file belongs; give a file",
    errno.ENOTDIR: "a file stands where a folder belongs; give a folder",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "give a shorter path",
}


def _replace_unencodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    return "".join(_ASCII.get(c, "?") for c in text), error.end


codecs.register_error(_ERRORS, _replace_unencodable)


def safe_streams() -> None:
    """Makes stdout and stderr write what their encoding cannot hold as close ASCII, and
    write whole lines as printed when they are not a terminal (a log followed with
    `tail -f`)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            interactive = stream.isatty()
        except (AttributeError, ValueError):
            interactive = False
        try:
            reconfigure(errors=_ERRORS, **({} if interactive else {"line_buffering": True}))
        except (ValueError, OSError):  # a closed or detached stream
            pass


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """Whether the traceback is wanted: `--debug` among the arguments (before a `--`), or
    `XVAL_DEBUG` set to anything but empty or `0`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[:args.index("--")]
    return "--debug" in args or os.environ.get("XVAL_DEBUG", "") not in ("", "0")


def describe_error(error: BaseException) -> str:
    """One line for an exception a user may meet (see the module docstring)."""
    if isinstance(error, XvalError):
        return str(error)
    if isinstance(error, OSError):
        what = " -> ".join(f"{str(p)!r}" for p in (error.filename, error.filename2) if p)
        detail = error.strerror or str(error) or type(error).__name__
        fix = _OS_FIXES.get(error.errno or -1)
        if not what and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            # A write that did not say its file (a library writing through its own file
            # object): not stdout, which was checked (`run_entry`).
            what = "writing the command's output files"
        return (f"{what + ': ' if what else ''}{detail}" + (f"; {fix}." if fix else "."))
    if isinstance(error, OverflowError):
        return f"a number is too large ({error}); give a smaller value."
    if isinstance(error, RecursionError):
        return "a structure is nested too deeply to be read; give a simpler value."
    if isinstance(error, MemoryError):
        return "out of memory; give smaller inputs (or use a machine with more memory)."
    if isinstance(error, UnicodeError):
        return f"text that is not valid in its encoding ({error}); save it as UTF-8."
    text = str(error).splitlines()[0] if str(error) else ""
    return (f"unexpected {type(error).__name__}{': ' + text if text else ''} (a bug; rerun "
            "with --debug for the traceback and report it).")


def _pipe_closed() -> int:
    """The end of a command whose stdout's reader went away (`| head`): the work stopped
    unfinished; one line on stderr, exit status 141."""
    quiet_stdout()
    with contextlib.suppress(OSError, ValueError):
        print("error: stdout was closed by its reader (a pipe such as | head) before the "
              "command finished, so it stopped there; send its output to a file "
              "(> out.txt) to let it finish.", file=sys.stderr, flush=True)
    return EXIT_PIPE


def _report(error: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(error)
    try:
        print(f"error: {describe_error(error)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    if isinstance(error, (XvalError, OSError, OverflowError, RecursionError, MemoryError,
                          UnicodeError)):
        return EXIT_ERROR
    return EXIT_BUG


def run_entry(body: Callable[[], int], *, debug: bool | None = None,
              interrupted: str = "interrupted.") -> int:
    """Runs an entry point's work under the one error handler.

    Args:
        body: the work; returns the exit status. Argument parsing belongs inside it (a
            parsing error is argparse's own usage line and exit status 2).
        debug: print tracebacks; `None` asks `debug_requested()`.
        interrupted: the line printed on Ctrl-C (e.g. how to resume); on SIGTERM its
            first word `interrupted` reads `terminated (SIGTERM)`.

    Returns:
        The exit status (see the module docstring).
    """
    safe_streams()
    debug = debug_requested() if debug is None else debug
    try:
        with sticky_interrupts():  # a Ctrl-C that lands inside Keras is not lost
            code = body()
            raise_if_interrupted()  # one that was swallowed after the last safe point
        sys.stdout.flush()  # a full device fails here, not silently at exit
        return code
    except StdoutClosed:  # a progress line's write found the reader gone, mid-run
        return _pipe_closed()
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        with contextlib.suppress(OSError, ValueError):
            print(interrupted_line(terminated, interrupted), file=sys.stderr, flush=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except BrokenPipeError:
        return _pipe_closed()
    except Exception as error:  # noqa: BLE001  (the one handler: every failure in one line)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EIO) \
                and error.filename is None and _stdout_failed():
            quiet_stdout()
            print(f"error: cannot write the output (stdout): {describe_error(error)}",
                  file=sys.stderr)
            return EXIT_ERROR
        return _report(error, debug)



def _stdout_failed() -> bool:
    """Whether stdout itself cannot be written: flushing it fails, a write of nothing
    fails (`/dev/full` refuses even that), or it is a file on a disk without a free block.
    A pipe or a terminal that takes writes is never the full disk."""
    try:
        sys.stdout.flush()
    except OSError:
        return True
    try:
        fd = sys.stdout.fileno()
        os.write(fd, b"")
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.fstatvfs(fd).f_bavail == 0
    except (io.UnsupportedOperation, ValueError, AttributeError):
        return False  # no descriptor (captured, closed): not what failed
    except OSError:
        return True


