"""aisfx extraction: the Keras network (`architectures.encoders`, what stores and models run
now) against the torch path it replaced (librosa's mel, then the wheel's own `CrossNet`
embedding network in torch inference mode), on the same decoded segments, same process.

    python -m benchmarks.aisfx_keras --files 40 --seconds 5 --repeats 3

Both arms read the same 44.1 kHz segments (decoding is left out of both), one segment per
file, in batches of `--batch` segments; the arms alternate `--repeats` times (so the load
of a shared machine falls on both alike) and each one's median is kept. Printed: files/s
of each, the ratio (Keras / torch; issue 42's goal: >= 0.9 on 2 cores), and the largest
difference of their embeddings. Real recordings from
../shared/datasets/ravdess are used when present (else synthetic tones and noise).
"""

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

RAVDESS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ravdess" / "audio"


def _segments(files: int, seconds: float) -> np.ndarray:
    """`(files, samples)` float32 segments at 44.1 kHz, each divided by its peak."""
    import librosa

    n = int(seconds * 44100)
    paths = sorted(RAVDESS.rglob("*.flac"))[:files] if RAVDESS.is_dir() else []
    rng = np.random.default_rng(0)
    out = []
    for k in range(files):
        if k < len(paths):
            y, _ = librosa.load(paths[k], sr=44100, mono=True)
        else:
            t = np.arange(n) / 44100
            y = np.sin(2 * np.pi * (200 + 40 * k) * t) + 0.1 * rng.normal(size=n)
        y = np.pad(y, (0, max(0, n - len(y))))[:n]
        out.append(y / max(float(np.abs(y).max()), 1e-9))
    return np.asarray(out, dtype=np.float32)


def _torch_path(batch: np.ndarray) -> np.ndarray:
    """librosa's mel as the wheel computes it, then the wheel's CrossNet embedding."""
    import librosa
    import torch
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    from architectures.encoders import aisfx

    if not hasattr(_torch_path, "net"):
        net = CrossNet(EmbeddingNet("max", 3, 1, 64), {"prosfx": (0, 78)}, "cpu")
        state = aisfx.checkpoint_state()
        net.embedding_net.load_state_dict({k[len("embedding_net."):]: v
                                           for k, v in state.items()
                                           if k.startswith("embedding_net.")})
        _torch_path.net = net.train(False)
    blocks = []
    for y in batch:
        S = librosa.feature.melspectrogram(y=y, sr=44100, n_mels=96, norm=1.0, fmin=0.0,
                                           fmax=22050.0, htk=True, power=2.0,
                                           hop_length=1024, win_length=2048, n_fft=2048)
        spec = (np.log10(S * 10000.0 + 1) / aisfx.NORM_MAX).T.astype(np.float32)
        blocks.append(np.stack([spec[i:i + 100] for i in range(0, len(spec) - 99, 50)]))
    x = np.stack(blocks)
    with torch.inference_mode():
        out = _torch_path.net.get_embedding(torch.from_numpy(x.reshape(-1, 100, 96)))
    return out.numpy().reshape(x.shape[0], x.shape[1], -1)


def _keras_path(batch: np.ndarray) -> np.ndarray:
    from preprocessing.features.encoders import AisfxEncoder

    if not hasattr(_keras_path, "encoder"):
        _keras_path.encoder = AisfxEncoder()
    return _keras_path.encoder.states(batch, [0], 51200)[:, :, 0]


def _run(fn, segments: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = np.concatenate([fn(segments[i:i + batch]) for i in range(0, len(segments), batch)])
    return time.perf_counter() - start, out


def _time_both(segments: np.ndarray, batch: int, repeats: int
               ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Median seconds of each arm; the arms alternate, so that the load of a shared machine
    falls on both alike."""
    _torch_path(segments[:batch])  # warm-up: weights, numba kernels, backend
    _keras_path(segments[:batch])
    torch_times, keras_times = [], []
    for _ in range(repeats):
        seconds, expected = _run(_torch_path, segments, batch)
        torch_times.append(seconds)
        seconds, got = _run(_keras_path, segments, batch)
        keras_times.append(seconds)
    return statistics.median(torch_times), statistics.median(keras_times), expected, got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    segments = _segments(args.files, args.seconds)
    torch_s, keras_s, expected, got = _time_both(segments, args.batch, args.repeats)
    print(f"{args.files} files of {args.seconds:g} s, batches of {args.batch}, median of "
          f"{args.repeats}:")
    print(f"  torch (librosa mel + the wheel's network): {args.files / torch_s:7.2f} files/s")
    print(f"  Keras (architectures.encoders.aisfx):       {args.files / keras_s:7.2f} files/s")
    print(f"  ratio Keras / torch: {torch_s / keras_s:.2f}x; largest difference "
          f"{float(np.abs(got - expected).max()):.2e}")


if __name__ == "__main__":
    main()
