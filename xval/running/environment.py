"""The process a run trains in: its `config.ini`, the Keras backend and the GPU.

The backend and `CUDA_VISIBLE_DEVICES` are set here before Keras is imported (keras-io
examples do the same): once Keras is imported, a process keeps its backend and devices.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from xval.config.loader import Config, find_config, load_config
from xval.core.backend import import_paused, use_backend
from xval.core.constraints import satisfies
from xval.core.errors import ConfigurationError

Out = Callable[..., None]
"""A print function for progress lines (`print`, or `lambda *a: None` to be quiet)."""

ConfigSource = Config | str | os.PathLike | None
"""A loaded `Config`, the path of a config.ini, or `None` to find it."""


def normalize_gpu(gpu: object, what: str = "GPU id") -> str | None:
    """Checks a GPU id: `None`, an integer >= 0, or -1 / `"cpu"` for no GPU.

    Args:
        gpu: the id as given (command line or `gpu_ID`).
        what: how to name it in the error. Defaults to `"GPU id"`.

    Returns:
        `None`, or the id as a string (`"-1"` for CPU only).

    Raises:
        ConfigurationError: for anything else (`"abc"`, `1.5`, `""`).
    """
    if gpu is None:
        return None
    text = str(gpu).strip().lower()
    if isinstance(gpu, (bool, float)) or not (text == "cpu" or re.fullmatch(r"-1|\d+", text)):
        raise ConfigurationError(
            f"{what} {gpu!r}: expected a GPU number (0, 1, ...) or -1 for CPU only."
        )
    return "-1" if text == "cpu" else text


NVIDIA_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")


def visible_gpu_count() -> int:
    """How many GPUs the machine has, as the NVIDIA driver lists them (0 without one): GPU
    ids are the machine's, as `CUDA_VISIBLE_DEVICES` takes them."""
    if NVIDIA_DRIVER_GPUS.is_dir():
        return len(list(NVIDIA_DRIVER_GPUS.iterdir()))
    return 0


def check_gpus_visible(gpus: list[str], what: str, warn: Out) -> list[str]:
    """The rule for GPU ids (the positional GPU or `--gpus`), applied before anything runs.

    - `-1` (or `cpu`) asks for the CPU.
    - On a machine where no GPU is visible, a GPU id runs on the CPU: one line says so.
    - Where GPUs are visible, an id that is not one of them is an error, as is an id given
      twice.

    Args:
        gpus: normalised ids (`normalize_gpu`).
        what: how to name them, e.g. `"--gpus"`.
        warn: prints the one line about running on the CPU.

    Returns:
        The ids to use: `gpus`, or `[]` when no GPU is visible (the CPU).

    Raises:
        ConfigurationError: for a repeated id, or an id that is not visible.
    """
    ids = [g for g in gpus if g != "-1"]
    twice = sorted({g for g in ids if ids.count(g) > 1})
    if twice:
        raise ConfigurationError(
            f"{what} {','.join(gpus)}: GPU {','.join(twice)} is given twice; list each GPU "
            "once (config.ini [backend] jobs_per_gpu runs several jobs on one GPU).")
    count = visible_gpu_count()
    if ids and count == 0:
        warn(f"warning: {what} {','.join(ids)}: no GPU is visible on this machine; running "
             "on the CPU.")
        return []
    missing = [g for g in ids if int(g) >= count]
    if missing:
        raise ConfigurationError(
            f"{what} {','.join(missing)}: not a visible GPU; this machine shows {count} "
            f"GPU(s) (ids 0..{count - 1}). Give one of them, or -1 for the CPU.")
    return ids


def valid_gpu(gpu: object) -> bool:
    """Whether `gpu` is a GPU id an experiment may declare: an int >= -1, or a string of
    one: digits, `-1` or `cpu`."""
    if satisfies(gpu, [int]):
        return gpu >= -1  # type: ignore[operator]
    return isinstance(gpu, str) and (gpu.strip().isdigit() or gpu.strip() in ("-1", "cpu"))


def setup_environment(backend: str, gpu: str | None = None) -> str:
    """Sets `KERAS_BACKEND` and `CUDA_VISIBLE_DEVICES` before Keras is imported
    (`xval.core.backend.use_backend`).

    Args:
        backend: backend from config.ini; the `KERAS_BACKEND` environment variable wins.
        gpu: GPU id for `CUDA_VISIBLE_DEVICES` (`"-1"` hides every GPU), or `None`.

    Returns:
        The backend in use.

    Raises:
        ConfigurationError: when Keras is already imported with another backend or GPU.
    """
    return use_backend(backend, source="config.ini [backend]", gpu=gpu)


def prepare_process(backend: str, gpu: object, warn: Out) -> tuple[str | None, str]:
    """The GPU rule and the backend of this process, before Keras is imported: what a run
    and a refit both do first.

    Args:
        backend: `[backend] backend` (the `KERAS_BACKEND` environment variable wins).
        gpu: the GPU id asked for (`None`: leave `CUDA_VISIBLE_DEVICES` as it is).
        warn: prints the one line saying that no GPU is visible (the CPU runs instead).

    Returns:
        `(gpu, backend)`: the normalised GPU id in use (`None` when none is visible or none
        was asked for) and the backend.

    Raises:
        ConfigurationError: for a GPU id that is not one (`normalize_gpu`) or not visible
            (`check_gpus_visible`), or Keras already imported with another backend or GPU.
    """
    found = normalize_gpu(gpu, "GPU id")
    if found is not None and found != "-1" and not check_gpus_visible([found], "GPU", warn):
        found = None  # no GPU visible: the CPU, CUDA_VISIBLE_DEVICES left as it is
    return found, setup_environment(backend, found)


def run_config(config: ConfigSource, declared: str | os.PathLike | None = None,
               script: str | None = None) -> Config:
    """The run's `Config`.

    Args:
        config: a loaded `Config` (used as is), a path, or `None`.
        declared: the experiment's own `config=` path, used when `config` is `None`.
        script: the experiment script, where `find_config` starts looking.

    Returns:
        The loaded, validated `Config`.
    """
    if isinstance(config, Config):
        return config
    return load_config(Path(config or declared or find_config(script)))


def import_keras(out: Out, backend: str) -> None:
    """Imports Keras now, saying so: it takes a few seconds that would otherwise look like
    a hang before the first fold."""
    out(f"Importing Keras ({backend} backend)...")
    import_paused("keras")  # a few seconds, said above rather than silent


def script_name(script: str | None) -> str:
    """The experiment script's file name for a command to suggest (`EXPERIMENT.py` when the
    experiment was not declared in a script)."""
    return Path(script or "EXPERIMENT.py").name
