"""Whether the installed Keras backend can use an NVIDIA GPU at all, read from its installed
files without importing it (a dry run stays fast): `make install` installs the CPU build of
torch, which trains on the CPU whatever GPU it is given, and said so only in each
`fold_<i>.json` (`device: cpu`).

- torch: `torch/version.py` (`cuda = None` and `hip = None` in a CPU build), or
  `torch.version` once imported;
- TensorFlow: `tensorflow/python/platform/build_info.py` (`is_cuda_build`);
- JAX: a CUDA (or ROCm) plugin distribution (`jax-cuda12-plugin`), or a `jaxlib` built
  with CUDA (its version says `cuda`).

A build this cannot read is taken for one that may use a GPU (nothing is refused on a guess).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

from xval.core.errors import ConfigurationError

__all__ = ["CUDA_INSTALL", "check_gpu_build", "cpu_only_build"]

CUDA_INSTALL = {
    "torch": 'pip install --force-reinstall "torch=={version}" (the CUDA build from PyPI, '
             "Linux; the CPU one comes from download.pytorch.org/whl/cpu)",
    "tensorflow": 'pip uninstall tensorflow-cpu && pip install "tensorflow[and-cuda]"',
    "jax": 'pip install "jax[cuda12]"',
}
"""What installs a CUDA build of each backend (docs/installation.md, "Installing for a GPU")."""


def _package_file(package: str, relative: str) -> Path | None:
    """A file of an installed package, found without importing it (`None`: not there)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def _package_text(package: str, relative: str) -> str | None:
    """The text of a file of an installed package (`_package_file`), or `None` when it is
    not there or cannot be read."""
    path = _package_file(package, relative)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _torch_cpu_only() -> bool | None:
    """Whether the installed torch is a CPU build (`None`: cannot say)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.version.cuda is None and getattr(torch.version, "hip", None) is None
    text = _package_text("torch", "version.py")
    if text is None:
        return None
    found = {key: value.strip() for key, value in
             re.findall(r"^(cuda|hip)\s*(?::[^=\n]*)?=\s*(.+)$", text, re.MULTILINE)}
    if "cuda" not in found:
        return None
    return all(found.get(key, "None") == "None" for key in ("cuda", "hip"))


def _tensorflow_cpu_only() -> bool | None:
    """Whether the installed TensorFlow is built without CUDA or ROCm (`None`: cannot say)."""
    text = _package_text("tensorflow", "python/platform/build_info.py")
    if text is None:
        return None
    builds = dict(re.findall(r"\('is_(cuda|rocm)_build', (True|False)\)", text))
    if "cuda" not in builds:
        return None
    return builds.get("cuda") == "False" and builds.get("rocm", "False") == "False"


def _jax_cpu_only() -> bool | None:
    """Whether JAX has no GPU plugin installed (`None`: JAX is not installed)."""
    names = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith(("jax-cuda", "jax-rocm", "jaxlib")):
            names.add(f"{name} {dist.version}")
    if not names:
        return None
    return not any(n.startswith(("jax-cuda", "jax-rocm")) or "cuda" in n or "rocm" in n
                   for n in names)


_READERS = {"torch": _torch_cpu_only, "tensorflow": _tensorflow_cpu_only,
            "jax": _jax_cpu_only}


def cpu_only_build(backend: str | None) -> str:
    """Why the installed `backend` cannot use an NVIDIA GPU, in words, or `""` when it can
    (or this cannot say)."""
    reader = _READERS.get(backend or "")
    if reader is None or not reader():
        return ""
    if backend == "torch":
        try:
            version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return f"the torch installed here ({version}) is a CPU-only build"
    if backend == "tensorflow":
        return "the TensorFlow installed here is built without CUDA (tensorflow-cpu?)"
    return "the JAX installed here has no CUDA plugin (jaxlib alone runs on the CPU)"


def check_gpu_build(ids: list[str], what: str, backend: str | None, count: int) -> None:
    """Refuses GPUs asked for (and visible) that the installed backend cannot use: it
    would train on the CPU without a word on the console.

    Args:
        ids: the GPU ids asked for (visible ones; `[]`: the CPU, nothing to check).
        what: how to name them (`"GPU"`, `"--gpus"`).
        backend: the Keras backend.
        count: the GPUs this process may use (for the message).

    Raises:
        ConfigurationError: naming the build, the GPUs and the install line of a CUDA build.
    """
    if not ids:
        return
    why = cpu_only_build(backend)
    if not why:
        return
    version = importlib.metadata.version("torch").split("+")[0] if backend == "torch" else ""
    install = CUDA_INSTALL[str(backend)].format(version=version)
    raise ConfigurationError(
        f"{what} {','.join(ids)}: {why}, so it would train on the CPU although {count} GPU(s) "
        f"are visible. For the GPU, install a CUDA build: {install}; or give -1 to train on "
        "the CPU.")
