"""The no-signal check on real recordings: what `silence_threshold_db` may be.

The check (`preprocessing.level`) skips a file whose loudest analysis frame holds no more
energy in the feature band than `silence_threshold_db` dBFS. This script measures that
level, with the package's default feature parameters, on every recording of FSDD (speech,
8 kHz) and RAVDESS (speech, 16 kHz), and on synthetic signals that bound the choice: what
must be skipped (digital silence, a constant offset, 16-bit dither alone) and what must be
kept (a short call at -70, -80 and -85 dBFS in a second of silence, as quiet bioacoustic
calls are). It prints the distribution of the real levels and how many files each
candidate threshold would drop.

    python -m benchmarks.no_signal [--every 1]

No timing is measured: the figures do not depend on the machine.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._common import SHARED
from preprocessing.audio import load_audio
from preprocessing.build import feature_params
from preprocessing.level import band_level_db, feature_band
from xval.config.loader import load_config
from xval.core.parameters import FeatureParams

CANDIDATES = (-60.0, -70.0, -80.0, -90.0, -100.0)


def _level(y: np.ndarray, params: FeatureParams) -> float:
    return band_level_db(y, sample_rate=params.sample_rate, n_fft=params.n_fft,
                         hop_length=params.hop_length, band=feature_band(params))


def synthetic(params: FeatureParams) -> dict[str, float]:
    """Levels of the signals that bound the threshold (one second each)."""
    sr = params.sample_rate
    t = np.arange(sr) / sr
    rng = np.random.default_rng(0)
    lsb = 1 / 32768
    out = {"digital silence": np.zeros(sr), "constant offset (DC 0.5)": np.full(sr, 0.5),
           "16-bit dither alone (TPDF, +-1 LSB)":
               (rng.uniform(-lsb, lsb, sr) + rng.uniform(-lsb, lsb, sr))}
    for db in (-70, -80, -85):
        y = np.zeros(sr)
        call = slice(sr // 2, sr // 2 + sr // 20)  # 50 ms at 2 kHz
        y[call] = 10 ** (db / 20) * np.sin(2 * np.pi * 2000 * t[call])
        out[f"50 ms call at {db} dBFS peak in silence"] = np.round(y / lsb) * lsb
    return {name: _level(y, params) for name, y in out.items()}


def dataset_levels(files: Sequence[Path], params: FeatureParams) -> np.ndarray:
    levels = []
    for path in files:
        y, _ = load_audio(path, sample_rate=params.sample_rate)
        levels.append(_level(y, params))
    return np.array(levels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=1, help="use every k-th file")
    args = parser.parse_args(argv)
    params = feature_params(load_config(None).features)
    print(f"feature {params.feature}, sample rate {params.sample_rate}, n_fft "
          f"{params.n_fft}, hop {params.hop_length}, band "
          f"{feature_band(params)[0]:.0f}-{feature_band(params)[1]:.0f} Hz")
    for name, level in synthetic(params).items():
        print(f"  {name:45s} {level:8.1f} dB" if math.isfinite(level)
              else f"  {name:45s}  no energy")
    sets = {"FSDD": sorted((SHARED / "fsdd" / "recordings").glob("*.wav")),
            "RAVDESS": sorted((SHARED / "ravdess" / "audio").rglob("*.flac"))}
    for name, files in sets.items():
        files = files[::args.every]
        if not files:
            print(f"{name}: not found under {SHARED}")
            continue
        levels = dataset_levels(files, params)
        q = np.percentile(levels, [0, 0.1, 1, 50])
        print(f"{name}: {len(files)} files; loudest-frame level min {q[0]:.1f}, 0.1% "
              f"{q[1]:.1f}, 1% {q[2]:.1f}, median {q[3]:.1f} dB")
        print("  dropped at " + ", ".join(f"{c:.0f} dB: {int(np.sum(levels <= c))}"
                                          for c in CANDIDATES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
