#!/usr/bin/env bash
# The GPU environment of audio-xval, in one virtual environment: CUDA JAX (the default
# backend, compiled steps) and CUDA torch (transformers front ends, `backend = torch`), the
# project with its runtime extras at the tested versions (constraints.txt: torch's pin has
# no +cpu label, so PyPI's CUDA build satisfies it; jax[cuda12] at the pinned jax), the aisfx
# encoder's wheel; then a check that both frameworks see the GPU in one process, without
# either reserving it (XLA_PYTHON_CLIENT_PREALLOCATE=false while both are loaded).
#
#   bash benchmarks/gpu_env.sh [VENV]              create VENV (default .venv) and install
#   bash benchmarks/gpu_env.sh --dry-run [VENV]    print the install commands; check this Python
#   bash benchmarks/gpu_env.sh --check [PYTHON]    the check alone (what `python -m
#                                                  benchmarks.gpu` runs first on a lent GPU)
#
# The check prints one line per framework and exits 1 when one of them sees no GPU (0 in the
# dry run, which runs on the CPU). docs/installation.md, "Installing for a GPU".
set -euo pipefail
cd "$(dirname "$0")/.."
mode=install
case "${1:-}" in --dry-run|--check) mode=${1#--}; shift ;; esac
pin() { grep -iE "^$1==" constraints.txt | head -n 1; }
venv=${1:-.venv}
python=${PYTHON:-python3}

install=(
    "$python -m venv $venv"
    "$venv/bin/pip install --upgrade pip"
    "$venv/bin/pip install 'jax[cuda12]==$(pin jax | cut -d= -f3)' $(pin torch) -c constraints.txt"
    "$venv/bin/pip install -e '.[torch]' -c constraints.txt"
    "$venv/bin/pip check"
    "$venv/bin/pip install --no-deps aisfx==0.1.2"
)

check() {
    GPU_ENV_DRY_RUN=${2:-0} XLA_PYTHON_CLIENT_PREALLOCATE=false "$1" - <<'EOF'
import importlib.metadata as metadata
import os
import re
import sys
import time

dry = os.environ["GPU_ENV_DRY_RUN"] == "1"
pins = dict(re.match(r"([^=\s]+)==(\S+)", line).groups()
            for line in open("constraints.txt") if re.match(r"[^#\s][^=\s]*==", line))
off = []
for name in ("keras", "jax", "jaxlib", "torch", "numpy", "scipy", "librosa"):
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        off.append(f"{name} not installed")
        continue
    want = pins.get(name)
    if want and have.split("+")[0] != want:
        off.append(f"{name} {have} (constraints.txt pins {want})")
failed = []
start = time.perf_counter()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

gpus = [d for d in jax.devices() if d.platform == "gpu"]
if gpus:
    total = float(jnp.ones(1 << 20, device=gpus[0]).sum())
print(f"jax {jax.__version__}: {len(gpus)} GPU(s) {[d.device_kind for d in gpus]}"
      + (f", computed {total:.0f} on it" if gpus else "") + f" ({time.perf_counter() - start:.1f}s)")
if not gpus:
    failed.append("JAX sees no GPU (install jax[cuda12])")
import torch  # noqa: E402

if torch.cuda.is_available():
    total = float(torch.ones(1 << 20, device="cuda").sum())
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}): "
          f"{torch.cuda.device_count()} GPU(s), computed {total:.0f} beside JAX")
else:
    print(f"torch {torch.__version__}: no GPU (CUDA build: {torch.version.cuda is not None})")
    failed.append("torch sees no GPU (install a CUDA build)")
print("versions: " + ("as constraints.txt pins them" if not off else "; ".join(off)))
if failed:
    print(("dry run on the CPU: " if dry else "error: ") + "; ".join(failed))
sys.exit(1 if failed and not dry else 0)
EOF
}

case $mode in
    check) check "${1:-$python}" ;;
    dry-run)
        printf '%s\n' "${install[@]}"
        check "$python" 1 ;;
    install)
        for command in "${install[@]}"; do echo "+ $command"; eval "$command"; done
        check "$venv/bin/python" ;;
esac
