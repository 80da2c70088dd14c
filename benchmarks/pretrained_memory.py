"""Peak memory of building `pretrained` stores of growing size: flat, or growing with the store?

Writes N synthetic 1-second 16 kHz wav files (a tone in noise, with `soundfile`) and a tiny
randomly initialised WavLM (built from `transformers.WavLMConfig`, saved to a temporary
folder: nothing is downloaded), or uses Resemblyzer's shipped weights; then, for each N,
builds a `pretrained` store (all layers, float16, one row per file) in a fresh subprocess
that reports its peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) and
the size of the store's `features.npy`. The default WavLM (hidden size 64, 160 transformer
layers: 161 states of 49 x 64 per second) writes about 1 MB per file, so that the largest
store is larger than the whole peak of the smallest build: if the rows were held in memory,
the peak would grow with the store.

    python -m benchmarks.pretrained_memory [--files 50 200 800] [--encoders wavlm|resemblyzer]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import ROOT

PATTERN = r"(?P<label>[a-z]+)_(?P<item>s\d+)_\d+\.wav$"
SAMPLE_RATE = 16000


def write_wavs(folder: Path, n: int) -> None:
    """Writes `n` one-second files `<low|high>_s<speaker>_<k>.wav` (a tone in noise).

    Args:
        folder: where to write them (created).
        n: how many files.
    """
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for k in range(n):
        label, freq = (("low", 220.0), ("high", 880.0))[k % 2]
        y = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.01 * (k % 7)) * t)
        y = y + 0.01 * rng.normal(size=t.size)
        sf.write(folder / f"{label}_s{k % 8}_{k}.wav", y.astype(np.float32), SAMPLE_RATE)


def tiny_wavlm(folder: Path, hidden: int, layers: int) -> Path:
    """Saves a randomly initialised WavLM and its feature extractor to `folder`.

    Args:
        folder: the folder to write (`save_pretrained`).
        hidden: hidden size (the dimension of one layer's state).
        layers: transformer layers (the model has `layers + 1` states).

    Returns:
        `folder`.
    """
    import torch
    import transformers

    config = transformers.WavLMConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, conv_dim=(16,) * 7, num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    transformers.WavLMModel(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True,
                                          return_attention_mask=False).save_pretrained(folder)
    return folder


def build_one(audio: Path, n: int, encoder: str, out: Path, batch_size: int,
              headroom_mb: int = 0) -> dict[str, Any]:
    """Builds the store of the first `n` files in this process; its peak RSS and size.

    Args:
        audio: the folder of wav files.
        n: how many of them (sorted by name) go into the store.
        encoder: `"resemblyzer"` or a `save_pretrained` folder.
        out: the store to write.
        batch_size: segments the encoder reads at once.
        headroom_mb: when positive, the data segment of the process (its private writable
            memory: heap and anonymous maps, not the file-backed map of the store) is
            limited (soft `RLIMIT_DATA`) to its size after the encoder's load plus this
            many MB, before the build: a build that held a larger store would fail.
            Defaults to `0` (no limit).

    Returns:
        dict with `files`, `rows`, `features_bytes`, `peak_rss_bytes`, `rss_before_bytes`
        (after the imports and the encoder's load, before the build), `data_limit_bytes`
        (0: none) and `seconds`.
    """
    import time

    from preprocessing import build_store, feature_params, regex_source
    from preprocessing.features import feature_shape
    from xval.config.loader import load_config

    rows, _ = regex_source(audio, PATTERN)
    rows = rows.sort_values("path").head(n).reset_index(drop=True)
    hop = 160 if encoder == "resemblyzer" else 320
    params = feature_params(load_config(ROOT / "config.ini").features, feature="pretrained",
                            encoder=encoder, layers="all", sample_rate=SAMPLE_RATE,
                            hop_length=hop, segment_seconds=1.0, segment_hop_seconds=1.0,
                            dtype="float16", device="cpu", batch_size=batch_size)
    feature_shape(params)  # loads the encoder: its memory is part of the baseline
    before = _peak_rss()
    limit = 0
    if headroom_mb > 0:
        limit = _data_size() + headroom_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA,
                           (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    start = time.perf_counter()
    store, summary = build_store(rows, out, params=params, workers=1, progress=False)
    return {"files": n, "rows": int(summary["rows"]),
            "features_bytes": (Path(store.path) / "features.npy").stat().st_size,
            "peak_rss_bytes": _peak_rss(), "rss_before_bytes": before,
            "data_limit_bytes": limit, "seconds": time.perf_counter() - start}


def _data_size() -> int:
    """The data segment size of this process in bytes (`VmData`, Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status (Linux only)")


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(args: argparse.Namespace) -> None:
    result = build_one(Path(args.audio), args.child, args.encoder_path, Path(args.out),
                       args.batch_size, args.headroom_mb)
    print("RESULT " + json.dumps(result), flush=True)


def _run_child(args: argparse.Namespace, audio: Path, n: int, encoder: str,
               work: Path) -> dict[str, Any]:
    """Runs `build_one` in a fresh interpreter and returns what it reports."""
    command = [sys.executable, "-m", "benchmarks.pretrained_memory", "--child", str(n),
               "--audio", str(audio), "--encoder-path", encoder, "--out", str(work / f"store{n}"),
               "--batch-size", str(args.batch_size), "--headroom-mb", str(args.headroom_mb)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    raise RuntimeError(f"the build of {n} files failed:\n{done.stderr[-3000:]}")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[50, 200, 800],
                        help="store sizes in files (one 1-second row each)")
    parser.add_argument("--encoders", choices=("wavlm", "resemblyzer"), default="wavlm")
    parser.add_argument("--hidden", type=int, default=64, help="tiny WavLM's hidden size")
    parser.add_argument("--layers", type=int, default=160,
                        help="tiny WavLM's transformer layers")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of a build")
    parser.add_argument("--headroom-mb", type=int, default=0,
                        help="limit each build's data segment (RLIMIT_DATA) to its size after "
                             "the encoder's load plus this many MB (0: no limit)")
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--encoder-path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        write_wavs(work / "audio", max(args.files))
        encoder = ("resemblyzer" if args.encoder == "resemblyzer"
                   else str(tiny_wavlm(work / "wavlm", args.hidden, args.layers)))
        print(f"encoder: {args.encoder}"
              + ("" if args.encoder == "resemblyzer"
                 else f" (hidden {args.hidden}, {args.layers} layers)")
              + f", batch_size {args.batch_size}, float16, one 1-second row per file")
        print("| files | rows | features.npy (MB) | RSS before build (MB) | peak RSS (MB) "
              "| data segment limit (MB) | build (s) |")
        print("|---|---|---|---|---|---|---|", flush=True)
        results = []
        for n in args.files:
            r = _run_child(args, work / "audio", n, encoder, work)
            results.append(r)
            print(f"| {r['files']} | {r['rows']} | {_mb(r['features_bytes'])} "
                  f"| {_mb(r['rss_before_bytes'])} | {_mb(r['peak_rss_bytes'])} "
                  f"| {_mb(r['data_limit_bytes']) if r['data_limit_bytes'] else 'none'} "
                  f"| {r['seconds']:.1f} |", flush=True)
    small, large = results[0], results[-1]
    print(f"store: {large['features_bytes'] / small['features_bytes']:.1f}x larger; "
          f"peak RSS: {large['peak_rss_bytes'] / small['peak_rss_bytes']:.2f}x "
          f"(+{_mb(large['peak_rss_bytes'] - small['peak_rss_bytes'])} MB); the largest "
          f"store is {large['features_bytes'] / small['peak_rss_bytes']:.2f}x the smallest "
          "build's whole peak RSS.")


if __name__ == "__main__":
    main()
