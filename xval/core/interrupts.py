"""Ctrl-C that third-party code cannot swallow.

Keras catches every exception, `KeyboardInterrupt` included, in a few places: the torch
backend's shape inference while a model is built (`backend.compute_output_spec` retries on
another device after any exception), saving and loading. A Ctrl-C that lands there is lost
and the run goes on as if nothing happened. `sticky_interrupts` installs a SIGINT handler that
remembers the interrupt as well as raising it, and `raise_if_interrupted` raises it again at
the next safe point: the start of every training batch (`InterruptCheck`), the start and the
failure of every job, every recorded fold, and the end of the command.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

# A plain flag, not a threading.Event: the handler runs in the main thread only, and a second
# Ctrl-C may run it again inside the first (Event.set takes a lock that is not reentrant).
_interrupted = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def sticky_interrupts() -> Iterator[None]:
    """Makes Ctrl-C stick while the block runs (see the module docstring).

    Installed only in the main thread and only over Python's own SIGINT handler: an ignored
    SIGINT (a background job a script started with `cmd &`) or a handler someone else
    installed (a notebook kernel) is left alone. The previous handler is restored when the
    block ends.
    """
    global _interrupted
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _interrupted = False
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted = False


def raise_if_interrupted() -> None:
    """Raises `KeyboardInterrupt` if a Ctrl-C arrived inside `sticky_interrupts`.

    Raises:
        KeyboardInterrupt: when one arrived, even if the code it landed in swallowed it.
    """
    if _interrupted:
        raise KeyboardInterrupt


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
