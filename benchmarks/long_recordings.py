"""Peak memory and time of `predict` on long recordings: window by window (the default for a
file longer than `preprocessing.streaming.LONG_SECONDS`) against the whole file at once (the
path before, `LONG_SECONDS` set to infinity), side by side.

Writes synthetic 16 kHz recordings of the lengths asked (tones, noise bursts and silences,
written block by block with soundfile) into a temporary folder, writes a store's
`dataset.json` (the recordings are resampled to its rate) and saves a small untrained Keras
CNN over its rows beside it; then, for each length and path, runs
`xval.inference.predict.predict_files` in a fresh subprocess that reports the seconds of
the call and its peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, the
imports' peak given apart). Where both paths ran, their segment scores are compared.

    python -m benchmarks.long_recordings [--minutes 1 5 20 60] [--stores mel8k wave44k]
                                         [--whole-up-to 20 10]

Two stores: `mel8k` (the demo store, 8 kHz log-mel) and `wave44k` (a 44.1 kHz waveform store
of 2.5 s rows, as an in-model encoder's, the case that took 2.8 GB for 10 minutes). The
whole-file path is run only up to `--whole-up-to` minutes per store (it needs gigabytes
beyond); timings are of a shared machine: compare the two paths within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from benchmarks._common import ROOT

RATE = 16000

CHILD = """
import json, math, resource, sys, time
import keras, torch  # the imports' peak is measured apart
from preprocessing import streaming
if sys.argv[3] == "whole":
    streaming.LONG_SECONDS = math.inf  # the path before: the whole file at once
from xval.inference.predict import predict_files
imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
[result] = predict_files(sys.argv[1], [sys.argv[2]])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "imports_mb": imports,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "scores": [list(s["scores"].values()) for s in result["segments"]]}))
"""
MODELS = {
    # The demo store (8 kHz log-mel, 0.5 s rows every 0.25 s, peak-normalised) and a small
    # CNN over its rows.
    "mel8k": """
frames, bins = info["feature_shape"]
model = keras.Sequential([keras.Input((frames, bins)), keras.layers.Reshape((frames, bins, 1)),
                          keras.layers.Conv2D(16, 3, activation="relu"),
                          keras.layers.MaxPooling2D(2), keras.layers.Conv2D(32, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
""",
    # A waveform store at 44.1 kHz, 2.5 s rows every 1.25 s (an in-model encoder's store,
    # as aisfx's) and a strided 1-D CNN over the samples.
    "wave44k": """
model = keras.Sequential([keras.Input((110250, 1)),
                          keras.layers.Conv1D(8, 64, strides=16, activation="relu"),
                          keras.layers.Conv1D(16, 16, strides=8, activation="relu"),
                          keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(4)])
"""}


def write_recording(path: Path, minutes: float, seed: int = 0) -> None:
    """A recording of `minutes` at 16 kHz, written a minute at a time: a tone that changes
    every few seconds, noise bursts, and a second of digital silence every 30 s."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for m in range(int(np.ceil(minutes))):
            n = int(RATE * min(60.0, minutes * 60 - m * 60))
            t = np.arange(n) / RATE
            freq = 300 + 200 * np.floor(t / 4 % 4)
            y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=n)
            y[(t % 30) < 1.0] = 0.0
            f.write(y.astype(np.float32))


def build_model(folder: Path, store: str) -> Path:
    """A `dataset.json` in `folder` (the demo store's, or a 44.1 kHz waveform store's) and
    an untrained model over its rows (`MODELS`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    (folder / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    if store == "mel8k":
        subprocess.run([sys.executable, "-m", "preprocessing", "demo", "--data-dir",
                        str(folder / "data"), "-q"], check=True, env=env, cwd=folder)
        info = json.loads((folder / "data" / "demo" / "dataset.json").read_text())
    else:
        from preprocessing.build import feature_params
        from xval.config.loader import load_config

        params = feature_params(load_config(ROOT / "config.ini").features, feature="waveform",
                                sample_rate=44100, segment_seconds=2.5,
                                segment_hop_seconds=1.25, n_fft=2048, hop_length=441)
        info = {"task_type": "classification", "classes": ["a", "b", "c", "d"],
                "feature_params": params.to_dict()}
    (folder / "dataset.json").write_text(json.dumps(info))
    script = (f"import json, keras\ninfo = json.load(open({str(folder / 'dataset.json')!r}))"
              f"{MODELS[store]}model.save({str(folder / 'model.keras')!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=folder)
    return folder / "model.keras"


def run(model: Path, recording: Path, mode: str) -> dict[str, Any]:
    """One `predict_files` call in a fresh process (see the module docstring)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(recording), mode],
                          capture_output=True, text=True, env=env, cwd=model.parent)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20, 60])
    parser.add_argument("--stores", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--whole-up-to", type=float, nargs="+", default=[20.0, 10.0],
                        help="per store, the longest recording the whole-file path reads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recordings = {}
        for minutes in args.minutes:
            recordings[minutes] = Path(tmp) / f"long_{minutes:g}min.wav"
            write_recording(recordings[minutes], minutes)
        for store, up_to in zip(args.stores, args.whole_up_to):
            folder = Path(tmp) / store
            folder.mkdir()
            model = build_model(folder, store)
            print(f"\n{store}\n{'minutes':>7} {'path':>7} {'seconds':>8} {'s/min':>6} "
                  f"{'peak MB':>8} {'over imports MB':>16}", flush=True)
            for minutes in args.minutes:
                compare(model, recordings[minutes], minutes, minutes <= up_to)


def compare(model: Path, recording: Path, minutes: float, whole: bool) -> None:
    """Both paths on one recording (the whole-file one only when `whole`), printed."""
    found = {}
    for mode in ("windows", "whole") if whole else ("windows",):
        found[mode] = r = run(model, recording, mode)
        if "error" in r:
            print(f"{minutes:7g} {mode:>7} failed: {r['error']}")
            continue
        print(f"{minutes:7g} {mode:>7} {r['seconds']:8.1f} {r['seconds'] / minutes:6.2f} "
              f"{r['peak_mb']:8.0f} {r['peak_mb'] - r['imports_mb']:16.0f}", flush=True)
    if all("scores" in found.get(m, {}) for m in ("windows", "whole")):
        a, b = (np.asarray(found[m]["scores"]) for m in ("windows", "whole"))
        same = a.shape == b.shape and np.array_equal(a, b)
        print(f"{'':7} scores of both paths {'identical' if same else 'DIFFER'}"
              + ("" if same or a.shape != b.shape else f" (max {np.max(np.abs(a - b)):.2e})"))


if __name__ == "__main__":
    main()
