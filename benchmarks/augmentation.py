"""Augmentation speed: seconds of audio augmented per second of wall time, with one worker
and with all cores, on real recordings.

    python -m benchmarks.augmentation [--files 200] [--versions 2] [--workers 2]
"""

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from augmentation import augment_folder
from benchmarks._common import ROOT, cores, datasets_option, timed, warm_file_cache
from xval.config.loader import load_config

SOURCES = {"fsdd": ("fsdd", "recordings"), "ravdess": ("ravdess", "audio")}
"""Each dataset's folder under `--datasets-dir`."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="recordings per dataset")
    parser.add_argument("--versions", type=int, default=2, help="N augmented versions")
    parser.add_argument("--workers", type=int, default=0,
                        help="the workers of the second arm (default 0: every core)")
    datasets_option(parser)
    args = parser.parse_args(argv)
    params = dict(load_config(ROOT / "config.ini").augmentation)
    many = args.workers or cores()
    for name, parts in SOURCES.items():
        root = args.datasets_dir.joinpath(*parts)
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
            rates = []
            for arm, workers in enumerate((1, many)):
                t, summary = timed(augment_folder, src, Path(tmp) / f"out{arm}",
                                   args.versions, params=params, seed=0, workers=workers,
                                   progress=False)
                rates.append(summary["seconds"] / t)
                print(f"{name}: {len(files)} files x (1 + {args.versions}), {workers} worker(s): "
                      f"{rates[-1]:.1f} s of audio per s ({t:.1f}s wall)")
            print(f"{name}: speed-up with {many} workers: {rates[1] / rates[0]:.2f}x")


if __name__ == "__main__":
    main()
