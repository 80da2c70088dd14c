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
    import architectures  # noqa: F401, PLC0415  (imports Keras; registers the zoo's layers)
    import xval.tasks.losses  # noqa: F401, PLC0415  (imports Keras; registers custom losses)

    path = check_model_file(model_path, what)
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


MAX_MEMBERS = 100_000
"""The most members a `.keras` archive may hold (Keras writes three, plus assets)."""
MAX_BYTES = 16 << 30
"""The most bytes a `.keras` archive may unpack to (16 GiB: a large pretrained encoder
inside a model is about 1.3 GB)."""
MAX_RATIO = 200
"""The largest compression ratio of a member above `RATIO_FROM` bytes: weights compress
about 1.1 times, JSON about 10; a zip bomb a million times."""
RATIO_FROM = 64 << 20


def check_model_file(model_path: str | Path, what: str = "Model file") -> Path:
    """Refuses a model path that is not a Keras 3 `.keras` archive, or one whose zip
    directory `check_archive` refuses, before anything in it is read (`load` calls it; the
    model commands call it when they are given a file, before they look for anything else).

    Returns:
        The path.

    Raises:
        ConfigurationError: for a folder, a FIFO or device, a missing file, a legacy HDF5
            (`.h5`) or other non-`.keras` file, and what `check_archive` refuses.
    """
    path = Path(model_path)
    if path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} is a folder; give a .keras file (an "
                                 "instance folder holds fold_<i>.keras).")
    if path.exists() and not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} is not a regular file (a FIFO, socket "
                                 "or device): it is never opened; give a .keras file.")
    if not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a Keras 3 `.keras` file. Legacy HDF5 (.h5) and "
            "other formats are refused: they can run code when loaded. Re-save the model "
            "with `model.save('name.keras')` in a trusted environment."
        )
    check_archive(path, what)
    return path


def check_archive(path: str | Path, what: str = "Model file") -> None:
    """Refuses a `.keras` archive by what its zip directory declares, before any member is
    read or unpacked: a member whose name leads outside the archive (an absolute path, a
    drive, a `..` part: it could be written anywhere when assets are unpacked), more than
    `MAX_MEMBERS` members, more than `MAX_BYTES` unpacked, or a member unpacking more than
    `MAX_RATIO` times its packed size past `RATIO_FROM` bytes (a zip bomb). Every loader of
    a `.keras` file goes through it (`check_model_file`, which `load` calls).

    Raises:
        ConfigurationError: naming the file, the member and why.
    """
    refused = f"{what} {str(path)!r} is refused before anything in it is read"
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigurationError(f"{what} {str(path)!r} is not a readable zip archive "
                                 f"({type(e).__name__}: {e}). Re-save the model.") from e
    if len(members) > MAX_MEMBERS:
        raise ConfigurationError(f"{refused}: it holds {len(members)} members, more than "
                                 f"the {MAX_MEMBERS} a model has room for.")
    for member in members:
        name = member.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            raise ConfigurationError(
                f"{refused}: its member {name!r} is named outside the archive (an absolute "
                "path or a '..' part), where unpacking it would write. Use a model saved by "
                "Keras.")
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > RATIO_FROM and ratio > MAX_RATIO:
            raise ConfigurationError(
                f"{refused}: its member {name!r} declares {member.file_size:,} bytes packed "
                f"into {member.compress_size:,} ({ratio:,.0f} times: a zip bomb, or no "
                "model). Use a model saved by Keras.")
    total = sum(m.file_size for m in members)
    if total > MAX_BYTES:
        raise ConfigurationError(
            f"{refused}: its members unpack to {total:,} bytes, more than the "
            f"{MAX_BYTES:,} allowed. Use a model saved by Keras.")


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
