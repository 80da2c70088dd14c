"""Augmentation speed: seconds of audio augmented per second of wall time, with one worker
and with all cores, on real recordings.

    python -m benchmarks.augmentation [--files 200] [--versions 2]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from augmentation import augment_folder
from benchmarks._common import ROOT, SHARED, cores, timed, warm_file_cache
from xval.config.loader import load_config

SOURCES = {"fsdd": SHARED / "fsdd" / "recordings", "ravdess": SHARED / "ravdess" / "audio"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="recordings per dataset")
    parser.add_argument("--versions", type=int, default=2, help="N augmented versions")
    args = parser.parse_args()
    params = dict(load_config(ROOT / "config.ini").augmentation)
    for name, root in SOURCES.items():
        if not root.is_dir():
            print(f"{name}: skipped, {root} not found")
            continue
        files = sorted(p for p in root.rglob("*") if p.suffix in (".wav", ".flac"))
        files = files[:: max(1, len(files) // args.files)][: args.files]
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in"
            for f in files:
                target = src / f.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, target)
            warm_file_cache(files)
            results = {}
            for workers in (1, cores()):
                t, summary = timed(augment_folder, src, Path(tmp) / f"out{workers}",
                                   args.versions, params=params, seed=0, workers=workers,
                                   progress=False)
                results[workers] = summary["seconds"] / t
                print(f"{name}: {len(files)} files x (1 + {args.versions}), {workers} worker(s): "
                      f"{results[workers]:.1f} s of audio per s ({t:.1f}s wall)")
            print(f"{name}: speed-up with {cores()} workers: "
                  f"{results[cores()] / results[1]:.2f}x")


if __name__ == "__main__":
    main()
