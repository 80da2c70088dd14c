"""Feature extraction speed: a plain single-process librosa loop vs `build_store`.

Both sides compute the same thing (decode, resample, peak-normalise, fixed segments,
log-mel per segment) on the same files, in one run; the file cache is warmed first.
Target: the project's extraction at least 0.9 x cores x the plain loop.

    python -m benchmarks.feature_extraction [--limit N] [--datasets fsdd ravdess] [--workers N]
"""

import argparse
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from benchmarks._common import ROOT, cores, datasets_option, timed, warm_file_cache
from preprocessing import build_store, feature_params, regex_source
from preprocessing.features import segment
from preprocessing.sources import FSDD_PATTERN, RAVDESS_EMOTIONS, RAVDESS_PATTERN
from xval.config.loader import load_config

Recipe = tuple[str, str, dict[str, str] | None, dict[str, Any]]
"""`(folder under --datasets-dir, file-name pattern, label map, feature parameter
overrides)`."""
RECIPES: dict[str, Recipe] = {
    "fsdd": ("fsdd/recordings", FSDD_PATTERN, None, {"sample_rate": 8000, "n_mels": 40}),
    "ravdess": ("ravdess/audio", RAVDESS_PATTERN, RAVDESS_EMOTIONS,
                {"segment_seconds": 3.0, "segment_hop_seconds": 1.0}),
}


def plain_loop(paths: Sequence[str], p: Mapping[str, Any]) -> list[np.ndarray]:
    """What a researcher writes by hand: one process, librosa all the way."""
    out = []
    for path in paths:
        y, sr = librosa.load(path, sr=p["sample_rate"], mono=True)
        y = y / max(np.abs(y).max(), 1e-9)
        # The same windows as the project (plain numpy slicing), each one featurised alone.
        windows, _ = segment(y, sample_rate=int(sr), segment_seconds=p["segment_seconds"],
                             hop_seconds=p["segment_hop_seconds"], grid=p["hop_length"])
        for w in windows:
            S = librosa.feature.melspectrogram(y=w, sr=sr, n_fft=p["n_fft"],
                                               hop_length=p["hop_length"], n_mels=p["n_mels"],
                                               fmin=p["fmin"], fmax=p["fmax"])
            out.append(librosa.power_to_db(S, ref=1.0, top_db=None, amin=1e-10).T)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["fsdd", "ravdess"], choices=RECIPES)
    parser.add_argument("--limit", type=int, default=0, help="files per dataset (0: all)")
    parser.add_argument("--workers", type=int, default=0, help="0: all cores")
    parser.add_argument("--config", default=str(ROOT / "config.ini"),
                        help="config.ini whose [features] are the defaults")
    datasets_option(parser)
    args = parser.parse_args(argv)
    defaults = load_config(args.config).features
    workers = args.workers or cores()
    print(f"cores: {cores()}, project workers: {workers}")
    for name in args.datasets:
        folder, pattern, label_map, overrides = RECIPES[name]
        root = args.datasets_dir / folder
        if not root.is_dir():
            print(f"{name}: skipped, {root} not found")
            continue
        rows, _ = regex_source(root, pattern, label_map=label_map)
        if args.limit:
            rows = rows.sample(n=min(args.limit, len(rows)), random_state=0)
        params = feature_params(defaults, **overrides)
        paths = rows["path"].tolist()
        warm_file_cache(paths)
        plain_loop(paths[:3], params)  # warm-up: imports, numba kernels
        t_plain, feats = timed(plain_loop, paths, params)
        with tempfile.TemporaryDirectory() as tmp:
            t_proj, (store, _) = timed(build_store, rows, Path(tmp) / name, params=params,
                                       workers=workers, progress=False)
            assert len(store) == len(feats), (len(store), len(feats))
        n = len(paths)
        ratio = t_plain / t_proj
        print(f"{name}: {n} files, {len(feats)} segments | plain loop {n / t_plain:7.1f} files/s "
              f"| project ({workers} workers) {n / t_proj:7.1f} files/s | ratio {ratio:.2f} "
              f"(target >= {0.9 * workers:.2f}: {'met' if ratio >= 0.9 * workers else 'NOT met'})")


if __name__ == "__main__":
    main()
