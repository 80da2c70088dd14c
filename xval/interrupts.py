"""Ctrl-C that third-party code cannot swallow.

Keras catches every exception, `KeyboardInterrupt` included, in a few places: the torch
backend's shape inference while a model is built (`backend.compute_output_spec` retries on
another device after any exception), saving and loading. A Ctrl-C that lands there is lost
and the run goes on as if nothing happened. `sticky_interrupts` installs a SIGINT handler that
remembers the interrupt as well as raising it, and `raise_if_interrupted` raises it again at
the next safe point: every training batch (`InterruptCheck`) and the start of every job.
"""

import contextlib
import signal
import threading

_interrupted = threading.Event()


def _handler(signum, frame):
    _interrupted.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def sticky_interrupts():
    """Makes Ctrl-C stick while the block runs (see the module docstring).

    Installed only in the main thread and only over Python's own SIGINT handler: an ignored
    SIGINT (`nohup`, a background job) or a handler someone else installed (a notebook
    kernel) is left alone. The previous handler is restored when the block ends.
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _interrupted.clear()
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted.clear()


def raise_if_interrupted():
    """Raises `KeyboardInterrupt` if a Ctrl-C arrived inside `sticky_interrupts`.

    Raises:
        KeyboardInterrupt: when one arrived, even if the code it landed in swallowed it.
    """
    if _interrupted.is_set():
        raise KeyboardInterrupt


def interrupt_check():
    """A Keras callback that calls `raise_if_interrupted` after every training batch.

    Returns:
        A `keras.callbacks.Callback`.
    """
    import keras

    class InterruptCheck(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise_if_interrupted()

    return InterruptCheck()
