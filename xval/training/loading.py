"""Loading saved `.keras` models safely: Keras's safe mode, a Keras whose safe mode has its
known bypasses fixed, and a `.keras` archive checked before Keras reads it. What is inside a
loaded model is read by `xval.training.layers`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from xval.core.backend import import_paused
from xval.core.errors import ConfigurationError

MIN_KERAS = (3, 14)


def load(model_path: str | Path, what: str = "Model file") -> Any:
    """Loads a saved `.keras` model with Keras safe mode on (custom layers registered).

    Args:
        model_path: path of a `.keras` file.
        what: how to name the file in errors (e.g. `"load_model"`).

    Returns:
        The `keras.Model`, not compiled.

    Raises:
        ConfigurationError: for a missing file, a legacy HDF5 (`.h5`) or other non-`.keras`
            file, a `.keras` without a model's `config.json`, one Keras cannot load (damaged,
            or refused by safe mode), or a Keras older than 3.14 (its safe mode can be
            bypassed).
    """
    keras = import_paused("keras")  # Keras: only once the backend is set
    import xval.tasks.losses  # noqa: F401, PLC0415  (imports Keras; registers custom losses)

    path = Path(model_path)
    if path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} is a folder; give a .keras file (an "
                                 "instance folder holds fold_<i>.keras).")
    if not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a Keras 3 `.keras` file. Legacy HDF5 (.h5) and "
            "other formats are refused: they can run code when loaded. Re-save the model "
            "with `model.save('name.keras')` in a trusted environment."
        )
    version = tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_KERAS:
        raise ConfigurationError(
            f"Keras {keras.__version__} is installed; loading models needs Keras >= 3.14, "
            "whose safe mode has the known bypasses fixed: `pip install 'keras>=3.14'`."
        )
    _check_archive(path, what)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a damaged or unsafe archive
        raise ConfigurationError(
            f"{what} {str(path)!r} cannot be loaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else 'no message'}): it is damaged, "
            "was not saved by Keras 3, or holds layers safe mode refuses (Lambda, "
            "arbitrary functions). Use a model saved by this project."
        ) from e


def _check_archive(path: Path, what: str) -> None:
    """Refuses a `.keras` zip without a `config.json` that is a JSON object."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, zipfile.BadZipFile, OSError, UnicodeDecodeError,
            json.JSONDecodeError) as e:
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a usable `.keras` file: its config.json is "
            f"missing or not JSON ({type(e).__name__}). Re-save the model.") from e
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a usable `.keras` file: its config.json does not "
            "describe a model. Re-save the model.")
