"""Keras's process-wide settings, kept per job: what a job sets (a builder or a custom layer
calling `keras.config.set_floatx("float64")`) is undone when it ends, so that the next job
of a warm worker (or of the user's own process, inline) starts from what was there before.

`keras.backend.clear_session()` (the end of every job) resets the settings Keras keeps in its
global state (the dtype policy among them) to Keras's defaults, not to what the process had;
the settings kept in module variables (`floatx`, `epsilon`, `image_data_format`, the debug
caps on epochs and steps) it leaves as the job set them: a `set_floatx` leaked into every
later job of the worker. Every setter of `keras.config` is covered:

- `set_floatx`, `set_epsilon`, `set_image_data_format`, `set_max_epochs`,
  `set_max_steps_per_epoch` (module variables, restored through the setters);
- `set_dtype_policy` (also `keras.mixed_precision.set_global_policy`),
  `enable/disable_flash_attention`, `enable/disable_traceback_filtering`,
  `enable/disable_interactive_logging` and `enable_unsafe_deserialization` (Keras's global
  state, restored as they were, unset included: an unsafe deserialization enabled by one job
  must not let the next load a model's lambdas);
- `set_backend` cannot be undone in a process (it reloads Keras): a job that changes the
  backend fails, and its worker is replaced.

On a backend other than TensorFlow, with TensorFlow installed but not imported, Keras
counts TensorFlow unavailable while the job runs (`tensorflow_unseen`).

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

from xval.core.errors import TrainingError

__all__ = ["KERAS_SETTINGS", "STATE_SETTINGS", "keras_settings_kept", "tensorflow_unseen"]

KERAS_SETTINGS = ("floatx", "epsilon", "image_data_format", "max_epochs",
                  "max_steps_per_epoch")
"""The `keras.config` getters whose setters (`set_<name>`) restore them."""
STATE_SETTINGS = ("dtype_policy", "flash_attention", "traceback_filtering",
                  "interactive_logging", "safe_mode_saving")
"""The entries of Keras's global state that `keras.config`'s other setters change."""


def _read() -> dict[str, Any]:
    """The settings as they are now."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)
    from keras.src.backend.common import global_state  # noqa: PLC0415  (as above)

    values = {name: getattr(keras.config, name)() for name in KERAS_SETTINGS}
    values.update({f"state:{name}": global_state.get_global_attribute(name)
                   for name in STATE_SETTINGS})
    return values


def _write(values: dict[str, Any]) -> None:
    """Sets the settings back to `values` (`_read`)."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)
    from keras.src.backend.common import global_state  # noqa: PLC0415  (as above)

    for name in KERAS_SETTINGS:
        if getattr(keras.config, name)() != values[name]:
            getattr(keras.config, f"set_{name}")(values[name])
    for name in STATE_SETTINGS:
        global_state.set_global_attribute(name, values[f"state:{name}"])


@contextlib.contextmanager
def keras_settings_kept() -> Iterator[None]:
    """Runs a job with Keras's settings restored when it ends, however it ends.

    Raises:
        TrainingError: when the job changed the Keras backend (`keras.config.set_backend`),
            which no job may do.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    backend = keras.backend.backend()
    before = _read()
    try:
        with tensorflow_unseen():
            yield
    finally:
        _write(before)
    if keras.backend.backend() != backend:
        raise TrainingError(
            f"The job changed the Keras backend from {backend!r} to "
            f"{keras.backend.backend()!r} (keras.config.set_backend), which a job cannot do: "
            "the backend is chosen per process (config.ini [backend] backend or "
            "KERAS_BACKEND); remove the call from the model's code.")


class _SeenOnlyIfImported:
    """The `available` of Keras's lazy `tensorflow` module while a job runs
    (`tensorflow_unseen`): TensorFlow counts only once something has imported it."""

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules


@contextlib.contextmanager
def tensorflow_unseen() -> Iterator[None]:
    """Runs a job with Keras counting TensorFlow available only once it is imported, on a
    backend other than TensorFlow while TensorFlow is installed but not imported; Keras's
    view of it is put back when the job ends.

    Keras imports TensorFlow whenever it is installed, whatever its backend, to seed it
    (`keras.utils.set_random_seed`, for `tf.data`, which the engine does not use) and to
    check for its types when it saves a model: about 2 s of CPU and 400 MB in the first
    fold of every process on JAX or torch, the user's own included (the inline executor).
    Job processes keep it out for their whole life (`xval.executors.job_process`); here
    only while the job runs. A model that uses Keras's TensorFlow-only layers
    (`StringLookup`, `IntegerLookup`, `Hashing`, `TextVectorization`, `HashedCrossing`) on
    another backend imports TensorFlow in its builder's module (`import tensorflow`), and
    they work; after the job Keras imports it on its next use, as before. Nothing changes
    where Keras's lazy module is not found (another Keras).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    try:
        lazy = importlib.import_module("keras.src.utils.module_utils").tensorflow
    except (ImportError, AttributeError):
        lazy = None
    if (lazy is None or keras.backend.backend() == "tensorflow"
            or "tensorflow" in sys.modules or getattr(lazy, "_available", True) is not None):
        yield  # another Keras, TensorFlow's backend, imported, or Keras has looked already
        return
    kind = type(lazy)
    lazy.__class__ = type("TensorflowUnseen", (_SeenOnlyIfImported, kind), {})
    try:
        yield
    finally:
        lazy.__class__ = kind
