"""What the transformers audio encoders cost at their real base size (issue 57, point 4).

Every model is built from its published base configuration (the values are written below:
nothing can be downloaded here) with randomly initialised weights, saved with
`save_pretrained` to a temporary folder with its feature extractor, and read back as a
user's model would be (`architectures.hf.LocalModel`): the cost of a forward pass does not
depend on the weights. Audio: 5 s files (a tone in noise; 16 kHz, CLAP 48 kHz).

    python -m benchmarks.hf_encoders extract [--files 8] [--threads 2]
    python -m benchmarks.hf_encoders whisper-window [--files 8] [--threads 2]
    python -m benchmarks.hf_encoders fine-tune [--batch 8] [--threads 2]

- `extract`: seconds per file of the store's extraction (`compute_features`: transformers'
  own feature extractor, then the network, every layer kept), `--files` files in batches of
  `--files`, after one warm-up batch; the seconds per 1,000 files are that times 1,000 (a
  linear extrapolation: the store reads files batch after batch, each the same cost).
- `whisper-window`: Whisper's two ways with a 5 s clip, side by side in one process: the
  positions cut to the clip's 250 frames (what the store does) against the clip padded to
  30 s (1500 frames, transformers' own forward) with the 250 frames that hold audio kept;
  seconds per file of each (medians of 3) and, per layer, how far the states of the 250
  frames are apart (relative L2 distance and mean cosine similarity).
- `fine-tune`: one training step of a model holding the network (`front_end =
  "hf:..."`: its features, the network with its last 2 blocks trained, a mean over frames
  and a dense layer of 10 classes; Adam) on a batch of `--batch` 5 s rows, in a fresh
  process per family: the step's seconds (median of 3, after one) and the process's peak
  resident memory (`ru_maxrss`), and the peak's growth over the memory before the step.

Torch uses `--threads` threads (2: the machine's cores). Timings on a shared machine are
noisy; the ratios between families measured in one run are steadier than the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import ROOT, median

SECONDS = 5.0
"""The length of every file (s)."""
BASE: dict[str, dict[str, Any]] = {
    # facebook/wav2vec2-base and microsoft/wavlm-base-plus: transformers' defaults.
    "speech (WavLM base+)": {"model": "WavLMModel", "config": "WavLMConfig", "values": {},
                             "extractor": ("Wav2Vec2FeatureExtractor",
                                           {"sampling_rate": 16000, "do_normalize": False})},
    # openai/whisper-base (the encoder; the decoder is built too, as the checkpoint holds it).
    "whisper (base)": {"model": "WhisperModel", "config": "WhisperConfig", "values": {
        "d_model": 512, "encoder_layers": 6, "encoder_attention_heads": 8,
        "encoder_ffn_dim": 2048, "decoder_layers": 6, "decoder_attention_heads": 8,
        "decoder_ffn_dim": 2048, "num_mel_bins": 80, "max_source_positions": 1500,
        "vocab_size": 51865}, "extractor": ("WhisperFeatureExtractor", {"feature_size": 80})},
    # MIT/ast-finetuned-audioset-10-10-0.4593: transformers' defaults (hidden 768, 12 layers,
    # 12 heads, 1024 frames x 128 mel bands, patches 16, strides 10).
    "ast (base, AudioSet)": {"model": "ASTModel", "config": "ASTConfig", "values": {},
                             "extractor": ("ASTFeatureExtractor", {})},
    # laion/clap-htsat-unfused: ClapAudioConfig's defaults (HTSAT: spec 256, 64 mel bands,
    # depths 2-2-6-2, patch embeddings 96 -> 768, projection 512, no fusion) and the
    # RoBERTa-base text tower the checkpoint also holds.
    "clap (HTSAT unfused)": {"model": "ClapModel", "config": "ClapConfig", "values": {},
                             "extractor": ("ClapFeatureExtractor",
                                           {"truncation": "rand_trunc"})},
}


def save_model(name: str, folder: Path) -> Path:
    """Builds the base model `name` of `BASE` (random weights) and saves it and its feature
    extractor to `folder`."""
    import torch
    import transformers

    spec = BASE[name]
    torch.manual_seed(0)
    config = getattr(transformers, spec["config"])(**spec["values"])
    getattr(transformers, spec["model"])(config).save_pretrained(folder)
    cls, values = spec["extractor"]
    getattr(transformers, cls)(**values).save_pretrained(folder)
    return folder


def clips(rate: int, n: int, seconds: float = SECONDS) -> np.ndarray:
    """`n` clips of `seconds`: a tone in noise, `[shape=(n, samples)]`, float32."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * k) * t)
                     + 0.02 * rng.normal(size=t.size) for k in range(n)]).astype(np.float32)


def extract(args: argparse.Namespace) -> None:
    """Seconds per file of each family's store extraction (see the module docstring)."""
    import torch

    from architectures.hf import LocalModel
    from preprocessing.features import compute_features

    torch.set_num_threads(args.threads)
    print(f"Store extraction, every layer, {args.files} files of {SECONDS:g} s per batch, "
          f"{args.threads} torch threads, random weights at base size:")
    print("| family | parameters | rate | frames x layers x dim | s/file | s per 1,000 files |")
    print("|---|---|---|---|---|---|")
    for name in BASE:
        with tempfile.TemporaryDirectory() as tmp:
            family = LocalModel(str(save_model(name, Path(tmp) / "model"))).family
            params = {"feature": "pretrained", "encoder": str(Path(tmp) / "model"),
                      "sample_rate": family.sample_rate, "hop_length": family.hop_length,
                      "segment_seconds": SECONDS, "segment_hop_seconds": SECONDS,
                      "layers": "all", "batch_size": args.files, "device": "cpu"}
            x = clips(family.sample_rate, args.files)
            rows = compute_features(x, **params)  # warm-up (and the model's load)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                compute_features(x, **params)
                times.append((time.perf_counter() - start) / args.files)
            size = sum(p.numel() for p in LocalModel(params["encoder"]).load().parameters())
            per = median(times)
            print(f"| {name} | {size / 1e6:.0f} M | {family.sample_rate} | "
                  f"{rows.shape[1]} x {family.n_layers} x {max(family.dims)} | {per:.3f} | "
                  f"{per * 1000:,.0f} |", flush=True)


def whisper_window(args: argparse.Namespace) -> None:
    """Whisper: positions cut to the clip against the clip padded to 30 s."""
    import torch

    from architectures.hf import LocalModel

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = LocalModel(str(save_model("whisper (base)", Path(tmp) / "model")))
        family, network = model.family, model.load()
        extractor = family.extractor()
        x = clips(16000, args.files)
        frames = family.frames(x.shape[1])
        layers = list(range(family.n_layers))

        def cut() -> list[Any]:
            inputs = family.extract(extractor, x)
            return family.states(network, inputs, layers, frames)

        def padded() -> list[Any]:
            inputs = extractor(list(x), sampling_rate=16000, return_tensors="pt").input_features
            out = network(inputs, output_hidden_states=True)
            return [h[:, :frames] for h in out.hidden_states]

        seconds = {}
        with torch.inference_mode():
            for how, fn in (("cut", cut), ("padded", padded)):
                fn()
                seconds[how] = median([_timed(fn) for _ in range(3)]) / args.files
            a, b = cut(), padded()
        print(f"Whisper base, {args.files} clips of {SECONDS:g} s ({frames} frames), "
              f"{args.threads} torch threads, random weights:")
        print(f"- positions cut to the clip: {seconds['cut']:.3f} s/file "
              f"({seconds['cut'] * 1000:,.0f} s per 1,000 files)")
        print(f"- padded to 30 s, 1500 frames: {seconds['padded']:.3f} s/file "
              f"({seconds['padded'] * 1000:,.0f} s per 1,000 files): "
              f"{seconds['padded'] / seconds['cut']:.1f}x")
        print("| layer | relative L2 distance | mean cosine similarity |")
        print("|---|---|---|")
        for k, (p, q) in enumerate(zip(a, b)):
            distance = float(torch.linalg.vector_norm(p - q) / torch.linalg.vector_norm(q))
            cosine = float(torch.nn.functional.cosine_similarity(p, q, dim=-1).mean())
            print(f"| {k} | {distance:.3f} | {cosine:.3f} |")


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


STEP = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[3]))
import keras
from architectures.hf import LocalModel
from architectures.encoders.hf import transformers_encoder
from benchmarks.hf_encoders import SECONDS, clips

model = LocalModel(sys.argv[1])
rate, batch = model.family.sample_rate, int(sys.argv[2])
samples = int(SECONDS * rate)
encoder = transformers_encoder(model, samples, trainable_blocks=2, name="front_end")
inputs = keras.Input((samples, 1))
pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
net = keras.Model(inputs, keras.layers.Dense(10)(pooled))
net.compile(keras.optimizers.Adam(1e-4),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = clips(rate, batch)[..., None], np.arange(batch) % 10
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
net.train_on_batch(x, y)
times = []
for _ in range(3):
    start = time.perf_counter()
    net.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": sorted(times)[1], "peak_mb": peak, "before_mb": before,
                  "trained": int(sum(np.prod(w.shape) for w in net.trainable_weights))}))
"""


def fine_tune(args: argparse.Namespace) -> None:
    """One training step per family, each in a fresh process (see the module docstring)."""
    print(f"One training step (Adam), batch of {args.batch} rows of {SECONDS:g} s, last 2 "
          f"blocks trained, {args.threads} torch threads, CPU:")
    print("| family | trained parameters | s/step | rows/s | peak RSS (MB) | over the "
          "built model (MB) |")
    print("|---|---|---|---|---|---|")
    for name in BASE:
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_model(name, Path(tmp) / "model")
            env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT),
                   "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run([sys.executable, "-c", STEP, str(folder), str(args.batch),
                                   str(args.threads)], capture_output=True, text=True,
                                  env=env, cwd=ROOT)
            if done.returncode:
                print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1]} |")
                continue
            found = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {name} | {found['trained'] / 1e6:.1f} M | {found['seconds']:.2f} | "
                  f"{args.batch / found['seconds']:.1f} | {found['peak_mb']:,.0f} | "
                  f"{found['peak_mb'] - found['before_mb']:,.0f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("extract", "whisper-window"):
        p = sub.add_parser(name)
        p.add_argument("--files", type=int, default=8)
        p.add_argument("--repeats", type=int, default=2)
        p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("fine-tune")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"extract": extract, "whisper-window": whisper_window,
     "fine-tune": fine_tune}[args.command](args)


if __name__ == "__main__":
    main()
