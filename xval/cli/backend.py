"""The backend of the commands that build or load a model (`python -m xval predict`, ...).

Imported only by those commands: reading config.ini loads the schema, which the commands
that neither train nor predict may skip.
"""

from __future__ import annotations

import os

from xval.config.loader import find_config, load_config
from xval.core.backend import use_backend
from xval.core.errors import ConfigurationError


def choose_backend(config_path: str | None = None) -> str:
    """Sets `KERAS_BACKEND` for the model commands, as experiment scripts do.

    Order: the `KERAS_BACKEND` environment variable, then config.ini (`--config`, else found
    as for experiments), then the first installed of torch, tensorflow, jax
    (`xval.core.backend.use_backend`).

    Args:
        config_path: the `--config` given, or `None` to find config.ini.

    Returns:
        The backend name.

    Raises:
        ConfigurationError: when that backend is not installed.
    """
    backend, source = None, "the installed frameworks"
    if not os.environ.get("KERAS_BACKEND"):
        try:
            path = config_path or find_config()
        except ConfigurationError:
            path = None
        if path is not None:
            backend, source = load_config(path).backend.backend, f"[backend] of {path}"
    return use_backend(backend, source=source)
