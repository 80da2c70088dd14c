"""Ctrl-C and SIGTERM that third-party code can neither swallow nor crash on.

Keras catches every exception, `KeyboardInterrupt` included, in a few places: the torch
backend's shape inference while a model is built (`backend.compute_output_spec` retries on
another device after any exception), saving and loading. A Ctrl-C that lands there is lost
and the run goes on as if nothing happened. `sticky_interrupts` installs a handler that
remembers the interrupt as well as raising it, and `raise_if_interrupted` raises it again at
the next safe point: the start of every training batch (`InterruptCheck`), the start and the
failure of every job, every recorded fold, and the end of the command. An interrupt raised
inside a callback the interpreter runs on its own (JAX's garbage-collection callback, a
finaliser) cannot propagate; it is kept the same way, without the interpreter's
"Exception ignored" traceback.

SIGTERM (a scheduler's or `kill`'s) takes the same way as Ctrl-C: `Terminated`, a
`KeyboardInterrupt`, so that every clean-up that runs after Ctrl-C runs after it too.

A framework's import must not be interrupted halfway: a `KeyboardInterrupt` raised while
JAX's native modules start their threads left a process that died by SIGSEGV on its way
out. `deferred_interrupts` holds a signal that arrives inside its block until the block
ends (`xval.core.backend.import_paused` imports through it), then raises it. A script's
`from xval import Experiment` runs before its command does (no `sticky_interrupts` yet, no
handler to print the line): there the block ends the process itself, with the command's
line and exit status (`ends_script`).
"""

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

EXIT_INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""
EXIT_TERMINATED = 143
"""The exit status after SIGTERM (128 + SIGTERM)."""

__all__ = ["Terminated", "deferred_interrupts", "interrupt_check", "raise_if_interrupted",
           "sticky_interrupts"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises `KeyboardInterrupt` (it is one, so that the same
    clean-up runs); the command then ends with its own line and exit status 143."""


class StdoutClosed(KeyboardInterrupt):
    """Stdout's reader went away (`| head`) while a command printed its progress: raised
    where the write failed (`stdout_closed`), a `KeyboardInterrupt` so that the run ends as
    an interrupted one does (previous results put back, the workbook made again from what is
    on disk), not as a failed fold; the command then ends with the closed pipe's line and
    exit status 141 (`xval.core.entry.run_entry`)."""


def quiet_stdout() -> None:
    """Points stdout at /dev/null, so that later writes (and the interpreter's last flush)
    cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def stdout_closed() -> NoReturn:
    """Ends the command's work after a write to stdout found its reader gone: stdout is
    quieted (`quiet_stdout`) and `StdoutClosed` raised.

    Raises:
        StdoutClosed: always.
    """
    quiet_stdout()
    raise StdoutClosed()


# Plain module state, not a threading.Event: the handler runs in the main thread only, and a
# second signal may run it again inside the first (Event.set takes a lock that is not
# reentrant).
_arrived: type[KeyboardInterrupt] | None = None
"""The interrupt that arrived (`KeyboardInterrupt` or `Terminated`), or `None`."""
_sticky = False
"""Whether `sticky_interrupts` is active (`_arrived` is kept until it ends)."""
_deferring = 0
"""How many `deferred_interrupts` blocks are open."""
_signals = 0
"""How many signals the handler has taken (a block raises those that came inside it)."""


def _handler(signum: int, frame: FrameType | None) -> None:
    global _arrived, _signals
    _signals += 1
    if _arrived is not Terminated:  # a SIGTERM is not downgraded by a Ctrl-C after it
        _arrived = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    if not _deferring:
        raise _arrived()


def _unraisable(hook: Any) -> Any:
    """`sys.unraisablehook` that keeps quiet about an interrupt raised where it cannot
    propagate (it is remembered, and raised again at the next safe point)."""
    def unraisable(args: Any) -> None:
        if not (isinstance(args.exc_value, KeyboardInterrupt) and _arrived is not None):
            hook(args)

    return unraisable


def _ours(signum: int) -> bool:
    """Whether this module may handle `signum` now: Python's own SIGINT handler, the default
    SIGTERM, or already this module's handler. An ignored signal (a background job a script
    started with `cmd &`) or a handler someone else installed (a notebook kernel, a test
    runner) is left alone."""
    current = signal.getsignal(signum)
    default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    return current is default or current is _handler


def _forked() -> None:
    """In a process forked while this module handled the signals (a pool's worker, `init`'s
    store built beside): Python's own handlers again, so that it ends on SIGTERM at once,
    as a pool's `terminate` expects, instead of raising `Terminated` in a loop it does not
    own."""
    global _arrived, _sticky, _deferring
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is _handler:
            signal.signal(signum, default)
    _arrived, _sticky, _deferring = None, False, 0


os.register_at_fork(after_in_child=_forked)


@contextlib.contextmanager
def sticky_interrupts() -> Iterator[None]:
    """Makes Ctrl-C and SIGTERM stick while the block runs (see the module docstring).

    Installed only in the main thread, for each signal only where `_ours` allows, and not
    again inside itself. The previous handlers are restored when the block ends.
    """
    global _arrived, _sticky
    if threading.current_thread() is not threading.main_thread() or _sticky:
        yield
        return
    signums = [s for s in (signal.SIGINT, signal.SIGTERM) if _ours(s)]
    if not signums:
        yield
        return
    _arrived, _sticky = None, True
    previous = {s: signal.signal(s, _handler) for s in signums}
    hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(hook)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sys.unraisablehook = hook
        _arrived, _sticky = None, False


@contextlib.contextmanager
def deferred_interrupts(*, ends_script: bool = False) -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM that arrive while the block runs, and raises the one that
    arrived when it ends (a native module's import: see the module docstring).

    Only in the main thread and for signals `_ours` allows; elsewhere the block runs as it
    is. An interrupt that came before the block (the one a clean-up runs after) is not
    raised again by it.

    Args:
        ends_script: outside a command (no `sticky_interrupts` active) and outside an
            interactive session, end the process instead of raising: one line on stderr,
            `interrupted.` (`terminated (SIGTERM).`), and exit status 130 (143), as a
            command ends (`xval.core.entry.run_entry`), with no traceback. For an import at
            a script's top level (`from xval import Experiment`), which no command's
            handler catches yet. Defaults to `False` (raise).

    Raises:
        KeyboardInterrupt: `Terminated` for SIGTERM, when one arrived inside the block.
    """
    global _arrived, _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [s for s in (signal.SIGINT, signal.SIGTERM) if _ours(s)]
    previous = {s: signal.signal(s, _handler) for s in signums}
    before = _signals
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        for s, handler in previous.items():
            signal.signal(s, handler)
    arrived = _arrived
    if arrived is not None and _signals > before:
        if not _sticky:
            _arrived = None  # raised now; nothing keeps it
            if ends_script:
                _end_script(arrived)
        raise arrived()


def _end_script(arrived: type[KeyboardInterrupt]) -> None:
    """Ends the process as a command ends after `arrived` (its line, 130 or 143), unless
    this is an interactive session, whose prompt takes the `KeyboardInterrupt`."""
    if interactive_session():
        return
    terminated = arrived is Terminated
    with contextlib.suppress(OSError, ValueError):
        print(interrupted_line(terminated), file=sys.stderr, flush=True)
    exit_process(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def raise_if_interrupted() -> None:
    """Raises the interrupt that arrived inside `sticky_interrupts`, if one did.

    Raises:
        KeyboardInterrupt: when one arrived (`Terminated` for SIGTERM), even if the code it
            landed in swallowed it.
    """
    if _arrived is not None and _sticky:
        raise _arrived()


def interrupt_check() -> Any:
    """A Keras callback that calls `raise_if_interrupted` before every training batch.

    It reads a flag on the main thread and never looks at the batch's logs, so it keeps
    Keras's asynchronous callback dispatch on (torch, JAX): a callback that overrides a
    `*_batch_end` method turns it off, and every step then waits for its loss and metrics
    to reach the host (`CallbackList._configure_async_dispatch`); `*_batch_begin` methods
    are always called in the training loop's own thread, with no logs.

    Returns:
        A `keras.callbacks.Callback`.
    """
    import keras  # noqa: PLC0415  (only once the backend is set)

    class InterruptCheck(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            raise_if_interrupted()

    return InterruptCheck()


def interrupted_line(terminated: bool, interrupted: str = "interrupted.") -> str:
    """The line a command prints when Ctrl-C or SIGTERM ends it.

    Args:
        terminated: whether SIGTERM ended it (`Terminated`).
        interrupted: the command's line for Ctrl-C (e.g. how to resume). Defaults to
            `"interrupted."`.

    Returns:
        `interrupted`, with its first word `interrupted` read `terminated (SIGTERM)` after
        SIGTERM.
    """
    return interrupted.replace("interrupted", "terminated (SIGTERM)", 1) if terminated \
        else interrupted


def interactive_session() -> bool:
    """Whether this interpreter is an interactive session (a prompt, `python -i`, IPython
    or a Jupyter kernel), where a script run with `%run` shares the process with the
    user's own objects."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "IPython" in sys.modules


def exit_process(code: int) -> NoReturn:
    """Ends the process with exit status `code`: what every entry point does with
    `run_entry`'s answer, in the process of its own (`python -m ...`, an experiment script).

    After Ctrl-C or SIGTERM (130, 143) with JAX loaded, the streams are flushed and the
    process ends at once (`os._exit`), without the interpreter's finalisation: XLA compiles
    on threads of its own, and a compilation under way when the interrupt came goes on
    after it; the finalisation frees JAX's client under that thread, which crashed the
    process (SIGSEGV). Everything the command does on its way out has run by then (its
    `finally` blocks, inside `run_entry`). Otherwise `sys.exit(code)`; when the interpreter
    finishes, every object the process holds is first frozen for the collector
    (`gc.freeze`, `_finish_quietly`): the finalisation collected cycles among them several
    times over while it cleared the modules, and the exit of a process with Keras and
    torch loaded took 1.3 s of CPU, now 0.4 s. The exit callbacks run as before, and so do
    the finalisers of objects freed by reference counting; a cycle left for the collector
    at exit is not collected. A caller that catches the `SystemExit` keeps its collector
    as it was. A Ctrl-C or SIGTERM
    that lands while the interpreter finishes (its exit callbacks: JAX's clean-up took about
    a second) ends it at once with `code` (`_finish_quietly`): the command's work is done,
    and neither a callback's traceback nor a 143 for a finished run would be true.

    Args:
        code: the exit status.
    """
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED) and "jax" in sys.modules:
        _flush()
        os._exit(code)
    if _EXITING[0] is None:
        atexit.register(_finish_quietly)  # registered last: the first callback to run
    _EXITING[0] = code
    sys.exit(code)


_EXITING: list[int | None] = [None]
"""The exit status `exit_process` ended the process with (None: it has not)."""


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def _finish_quietly() -> None:
    """At the interpreter's exit, before the other exit callbacks: what the process holds
    frozen for the collector, and Ctrl-C and SIGTERM end the process at once with the
    status it is ending with (`exit_process`)."""
    code = _EXITING[0]
    if code is None or threading.current_thread() is not threading.main_thread():
        return
    gc.freeze()  # the finalisation's collections walk nothing of it

    def _now(signum: int, frame: FrameType | None) -> None:
        _flush()
        os._exit(code)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, _now)
