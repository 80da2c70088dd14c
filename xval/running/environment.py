"""The process a run trains in: its `config.ini`, the Keras backend, the GPU and the compile
cache.

The backend and `CUDA_VISIBLE_DEVICES` are set here before Keras is imported (keras-io
examples do the same): once Keras is imported, a process keeps its backend and devices.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from numbers import Integral
from pathlib import Path

from xval.config.loader import Config, find_config, load_config
from xval.core.backend import (
    AUTO,
    default_backend,
    import_paused,
    inherited_devices,
    inherited_text,
    normalize_gpu,
    sharing_environment,
    use_backend,
)
from xval.core.constraints import Interval, satisfies
from xval.core.errors import ConfigurationError
from xval.core.optional import EXTRAS, missing
from xval.running.cuda_build import check_gpu_build
from xval.training.compilation import cache_problem

Out = Callable[..., None]
"""A print function for progress lines (`print`, or `lambda *a: None` to be quiet)."""

ConfigSource = Config | str | os.PathLike | None
"""A loaded `Config`, the path of a config.ini, or `None` to find it."""


NVIDIA_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")

BACKEND_GPU_COUNT = {
    "torch": "import torch; print(torch.cuda.device_count())",
    "jax": "import jax; print(sum(d.platform == 'gpu' for d in jax.devices()))",
    "tensorflow": "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))",
}
"""What prints the GPU count in the backend's own words (the last of the sources)."""


Count = int | str | None
"""What a discovery source says: a GPU count, `None` where it cannot say (no driver, no
tool), or why its answer was taken for none (garbage: bytes that are not UTF-8, no GPU line)."""


def _driver_count() -> Count:
    """The GPUs in the NVIDIA driver's folder, or `None` where it has none (WSL2, some
    containers)."""
    try:
        if NVIDIA_DRIVER_GPUS.is_dir():
            return len(list(NVIDIA_DRIVER_GPUS.iterdir()))
    except OSError as e:
        return f"{NVIDIA_DRIVER_GPUS} cannot be listed ({type(e).__name__})"
    return None


def _nvml_count() -> Count:
    """The GPUs NVML counts (`nvidia-ml-py`, where installed), or `None`."""
    try:
        import pynvml  # noqa: PLC0415  (optional: nvidia-ml-py)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no library: the next source  # noqa: BLE001
        return None
    if not satisfies(count, [Interval(Integral, 0, None)]):
        return f"NVML counted {count!r} GPUs"
    return count


def _smi_count() -> Count:
    """The GPUs `nvidia-smi -L` lists, or `None` without it (or when it fails); what it
    prints that is not UTF-8, or holds no `GPU ` line, is said (a broken or fake tool)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        return f"`nvidia-smi -L` ({shutil.which('nvidia-smi')}) printed bytes that are not UTF-8"
    count = sum(line.startswith("GPU ") for line in text.splitlines())
    if count == 0:
        return (f"`nvidia-smi -L` ({shutil.which('nvidia-smi')}) printed no `GPU <n>:` line "
                f"({text.strip()[:60]!r})")
    return count


@functools.cache
def _backend_count(backend: str | None) -> Count:
    """The GPUs the backend sees in a fresh process (every GPU of the machine:
    `CUDA_VISIBLE_DEVICES` unset there), or `None` when it cannot say."""
    code = BACKEND_GPU_COUNT.get(backend or os.environ.get("KERAS_BACKEND") or "torch")
    if code is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # JAX takes no memory to count
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             timeout=300, env=env, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    last = out.split()[-1:]
    if not last or not last[0].isdigit():
        return f"the {backend or 'torch'} backend's own count printed {out[-60:]!r}"
    return int(last[0])


def visible_gpu_count(backend: str | None = None, note: Out | None = None) -> int:
    """How many GPUs this process may use (0 without one): GPU ids index them, as
    `CUDA_VISIBLE_DEVICES` lists them where the process inherited one (a scheduler's
    `"2,3"`: ids 0 and 1), else the machine's.

    The machine's count comes from the first source that can say: the NVIDIA driver's
    folder, NVML (`nvidia-ml-py`, where installed), `nvidia-smi -L`, then the backend's own
    count in a fresh process (a few seconds: only where the others cannot say, as under
    WSL2 or in some containers, and only once per process). A source that answers garbage
    (a broken or fake `nvidia-smi` printing bytes that are not UTF-8) is taken for one that
    cannot say, with one line to `note`. An inherited list counts up to the first entry
    CUDA stops at (an index the machine does not have).

    Args:
        backend: the Keras backend that counts last. Defaults to `KERAS_BACKEND` (torch).
        note: prints why a source was passed over (`-v`); `None` says nothing. Defaults to
            `None`.
    """
    sources: list[Callable[[], Count]] = [*_cheap_sources(),
                                          functools.partial(_backend_count, backend)]
    return _usable(_first_count(sources, note) or 0)


def _usable(machine: int) -> int:
    """Of the machine's `machine` GPUs, how many this process may use (`inherited_devices`)."""
    entries = inherited_devices()
    if entries is None or machine == 0:
        return machine
    usable = 0
    for entry in entries:
        if entry.isdigit() and int(entry) >= machine:
            break  # CUDA stops at an index the machine does not have
        usable += 1
    return usable


def _cheap_sources() -> tuple[Callable[[], Count], ...]:
    """The GPU counts that start no Python process (the backend's own count does)."""
    return (_driver_count, _nvml_count, _smi_count)


def _first_count(sources: Sequence[Callable[[], Count]], note: Out | None = None
                 ) -> int | None:
    """The count of the first source that can say, or `None`; a source that answers
    garbage is passed over, said to `note`."""
    for source in sources:
        count = source()
        if isinstance(count, str):
            if note is not None:
                note(f"GPU discovery: {count}; taken for no answer, the next source asked.")
            continue
        if count is not None:
            return count
    return None


def gpu_present(note: Out | None = None) -> bool:
    """Whether a process that inherits `CUDA_VISIBLE_DEVICES` may find a GPU, from the
    sources that cost nothing (`_cheap_sources`): `False` where none can say."""
    if inherited_devices() == []:
        return False
    return bool(_usable(_first_count(_cheap_sources(), note) or 0))


def check_gpus_visible(gpus: list[str], what: str, warn: Out, backend: str | None = None,
                       note: Out | None = None, *, build: bool = False) -> list[str]:
    """The rule for GPU ids (the positional GPU or `--gpus`), applied before anything runs.

    - `-1` (or `cpu`) asks for the CPU.
    - On a machine where no GPU is visible, a GPU id runs on the CPU: one line says so.
    - Where GPUs are visible, an id that is not one of them is an error, as is an id given
      twice; with `build`, so is a backend installed without CUDA (the CPU build of torch
      that `make install` installs), which would train on the CPU
      (`xval.running.cuda_build`).

    Args:
        gpus: normalised ids (`normalize_gpu`).
        what: how to name them, e.g. `"--gpus"`.
        warn: prints the one line about running on the CPU.
        backend: the Keras backend, which counts the GPUs where nothing else can
            (`visible_gpu_count`). Defaults to `KERAS_BACKEND`.
        note: prints why a discovery source was passed over (`-v`). Defaults to `None`.
        build: check that the installed backend can use a GPU (the processes that train
            here; not a Ray cluster's). Defaults to `False`.

    Returns:
        The ids to use: `gpus`, or `[]` for the CPU (`-1`, or no GPU visible: the caller
        then hides every GPU, `CUDA_VISIBLE_DEVICES=""`, so nothing runs on one it was
        not given).

    Raises:
        ConfigurationError: for a repeated id, an id that is not visible, or (`build`) a
            backend that cannot use a GPU.
    """
    ids = [g for g in gpus if g != "-1"]
    twice = sorted({g for g in ids if ids.count(g) > 1})
    if twice:
        raise ConfigurationError(
            f"{what} {','.join(gpus)}: GPU {','.join(twice)} is given twice; list each GPU "
            "once (config.ini [backend] jobs_per_gpu runs several jobs on one GPU).")
    if not ids:
        return []
    count = visible_gpu_count(backend, note)
    inherited = inherited_devices() is not None
    if count == 0:
        where = f"to this process ({inherited_text()})" if inherited else "on this machine"
        warn(f"warning: {what} {','.join(ids)}: no GPU is visible {where}; running on the "
             "CPU.")
        return []
    missing = [g for g in ids if int(g) >= count]
    if missing:
        shows = f"this process may use {count} GPU(s) ({inherited_text()}: ids " \
            if inherited else f"this machine shows {count} GPU(s) (ids "
        raise ConfigurationError(
            f"{what} {','.join(missing)}: not a visible GPU; {shows}0..{count - 1}). Give one "
            "of them, or -1 for the CPU.")
    if build:
        check_gpu_build(ids, what, backend or os.environ.get("KERAS_BACKEND"), count)
    return ids


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


def prepare_process(backend: str, gpu: object, warn: Out, note: Out | None = None, *,
                    chosen: str | None = None, jobs_per_gpu: int = 1
                    ) -> tuple[str | None, str]:
    """The GPU rule and the backend of this process, before Keras is imported: what a run
    and a refit both do first.

    Args:
        backend: `[backend] backend` (the `KERAS_BACKEND` environment variable wins).
        gpu: the GPU id asked for (`None`: leave `CUDA_VISIBLE_DEVICES` as it is).
        warn: prints the one line saying that no GPU is visible (the CPU runs instead).
        note: prints why a GPU discovery source was passed over (`-v`). Defaults to `None`.
        chosen: the backend the run's options name (`Execution.backend`, `--backend`),
            which wins over `KERAS_BACKEND` and `backend`. Defaults to `None`.
        jobs_per_gpu: the jobs that share a GPU (`[backend] jobs_per_gpu`, `--jobs-per-gpu`):
            above 1, this process's framework is told to share it as the workers' are
            (`xval.core.backend.sharing_environment`: JAX neither preallocates nor takes
            more than its share), before it is imported; a variable already set wins.
            Defaults to `1`.

    Returns:
        `(gpu, backend)`: the normalised GPU id in use (`"-1"` for the CPU, also when none
        is visible; `None` when none was asked for) and the backend.

    Raises:
        ConfigurationError: for a GPU id that is not one (`normalize_gpu`), not visible, or
            that the installed backend cannot use (`check_gpus_visible`), or Keras already
            imported with another backend or GPU.
    """
    if chosen:
        use_backend(chosen, source="--backend", override=True)
    if backend == AUTO:
        backend = default_backend()
    found = normalize_gpu(gpu, "GPU id")
    if found is not None and found != "-1" and not check_gpus_visible(
            [found], "GPU", warn, os.environ.get("KERAS_BACKEND") or backend, note,
            build=True):
        # No GPU visible: the CPU, every GPU hidden (so that no framework finds one that
        # the sources missed), where Keras has not started yet in this process.
        found = None if "keras" in sys.modules else "-1"
    backend = setup_environment(backend, found)
    check_jax_platforms(backend)
    check_xla_flags(backend)
    for key, value in sharing_environment(backend, jobs_per_gpu).items():
        os.environ.setdefault(key, value)  # before the framework starts; the user's win
    return found, backend


JAX_PLATFORMS = ("cpu", "cuda", "gpu", "rocm", "tpu", "metal")
"""The platforms `JAX_PLATFORMS` may list (`check_jax_platforms`)."""


def check_jax_platforms(backend: str) -> None:
    """Refuses a `JAX_PLATFORMS` that would fail every fold, before anything trains and
    without starting JAX: a value that is not a comma list of `JAX_PLATFORMS`, or one
    naming a GPU platform where no GPU is visible (`gpu_present`, or `/dev/kfd` for ROCm;
    JAX fails then with a bare `AssertionError` from `jax.devices()`).

    Args:
        backend: the Keras backend of the run (nothing is checked but on `jax`).

    Raises:
        ConfigurationError: naming the value, what was expected and the fix.
    """
    value = os.environ.get("JAX_PLATFORMS")
    if backend != "jax" or value is None or not value.strip():
        return
    platforms = [p.strip() for p in value.split(",")]
    unknown = [p for p in platforms if p not in JAX_PLATFORMS]
    if unknown:
        raise ConfigurationError(
            f"JAX_PLATFORMS = {value!r}: {unknown[0]!r} is not a platform; expected a comma "
            f"list of {', '.join(JAX_PLATFORMS)} (lower-case); unset JAX_PLATFORMS, or set it "
            "to cpu.")
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    hidden = current is not None and (not current.strip() or current.strip().startswith("-"))
    nvidia = {"cuda", "gpu"} & set(platforms) and not hidden and gpu_present()
    amd = {"rocm", "gpu"} & set(platforms) and not hidden and os.path.exists("/dev/kfd")
    for platform in platforms:
        if (platform == "cuda" and not nvidia) or (platform == "rocm" and not amd) or (
                platform == "gpu" and not (nvidia or amd)):
            raise ConfigurationError(
                f"JAX_PLATFORMS = {value!r}: {platform} needs a GPU, and no GPU is visible "
                "here; unset JAX_PLATFORMS, or set it to cpu.")


@functools.cache
def check_xla_flags(backend: str) -> None:
    """Refuses an `XLA_FLAGS` that XLA will not start with, before anything is moved or
    trains: XLA reads it when JAX first starts a device, and an unknown flag ends the process
    there with a native line (`Unknown flag in XLA_FLAGS`), after `--overwrite` has set the
    previous results aside. Checked in a short process of its own (JAX on the CPU, about
    1.5 s), only when the variable is set and the backend is JAX; once per process.

    Args:
        backend: the Keras backend of the run (nothing is checked but on `jax`).

    Raises:
        ConfigurationError: naming the value, XLA's own line and the fix.
    """
    value = os.environ.get("XLA_FLAGS")
    if backend != "jax" or value is None or not value.strip():
        return
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    try:
        done = subprocess.run([sys.executable, "-c", "import jax; jax.devices('cpu')"],
                              capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return  # nothing learnt: the run finds out as before
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if "XLA_FLAGS" in line] or \
            done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        why = said[-1].split("] ", 1)[-1].strip()
        raise ConfigurationError(
            f"XLA_FLAGS = {value!r}: XLA does not start with it ({why}); fix the flag or "
            "unset XLA_FLAGS.")


def checked_cache(config: Config, backend: str, out: Out) -> Config:
    """The run's `Config` with its compile cache checked before anything trains (a dry run
    too), on JAX, the one backend that keeps compiled programs: a file in the path is
    refused; a folder that cannot be written, or a disk with too little space, is said in
    one line, and the run compiles without a persistent cache (`compile_cache = none`).

    Args:
        config: the run's `Config`.
        backend: the Keras backend in use.
        out: prints the line.

    Returns:
        `config`, or a copy with `[backend] compile_cache` none.

    Raises:
        ConfigurationError: when a file stands in the path (`cache_problem`).
    """
    if backend != "jax" or config.backend.compile_cache is None:
        return config
    why = cache_problem(config.backend.compile_cache)
    if why is None:
        return config
    out(f"compiling without a persistent cache: {why}")
    return config.replace(backend={"compile_cache": None})


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


def eager_note(backend: str, configured: str, asked: str, chosen: str | None) -> str:
    """The one line a run on an eager backend prints: its steps are not compiled, why this
    backend runs, and what gives compiled steps (`""` on JAX and TensorFlow, which compile
    them).

    Args:
        backend: the backend in use (`prepare_process`).
        configured: `[backend] backend` of config.ini.
        asked: what the run asked of `prepare_process` (`backend_for`: `torch` where
            `configured` is `auto` and an instance holds a transformers network).
        chosen: `--backend` (`Execution.backend`), or `None`.

    Returns:
        `"note: the torch backend runs each training step eagerly ..."`, or `""`.
    """
    if backend != "torch":
        return ""
    head = ("note: the torch backend runs each training step eagerly (operator by operator "
            "from Python, not compiled); ")
    if chosen == "torch" or os.environ.get("KERAS_BACKEND") == "torch" or configured == "torch":
        source = "--backend" if chosen == "torch" else "KERAS_BACKEND" \
            if os.environ.get("KERAS_BACKEND") == "torch" else "config.ini [backend] backend"
        fix = ("JAX compiles them: install it (" + EXTRAS["jax"].install + "), then "
               if missing("jax") else "JAX, installed here, compiles them: ")
        return (f"{head}it was chosen by {source}. {fix}run with --backend jax, or set "
                "[backend] backend = auto in config.ini.")
    if asked == "torch":
        return (f"{head}an instance's transformers front end (front_end = \"hf:...\") runs in "
                "torch only. Run it apart to train the others compiled, on JAX.")
    return (f"{head}JAX, the default, is not installed. Install it for compiled steps: "
            f"{EXTRAS['jax'].install}")


def import_keras(out: Out, backend: str) -> None:
    """Imports Keras now, saying so: it takes a few seconds that would otherwise look like
    a hang before the first fold."""
    out(f"Importing Keras ({backend} backend)...")
    import_paused("keras")  # a few seconds, said above rather than silent


def script_name(script: str | None) -> str:
    """The experiment script's file name for a command to suggest (`EXPERIMENT.py` when the
    experiment was not declared in a script)."""
    return Path(script or "EXPERIMENT.py").name
