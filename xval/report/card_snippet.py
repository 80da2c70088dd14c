"""The program a model card gives (`MODEL_CARD.md`, section "Running it"): the scores of a
WAV file as `python -m xval predict` gives them, from the exported file alone.

It is written out with the store's numbers filled in, so that it runs as printed: read the
file, scale it to a peak of 1 (when the store did), cut it into the windows `predict` cuts
(`preprocessing.features.window_starts`: the regular hops, one more window ending at the
file's end, a short file zero-padded), compute the features as the store did when the model
takes features (librosa, `preprocessing.features.recipes`; frames of the whole file sliced
per window, as the store slices them), run the exported model and make the clip's scores
(`xval.inference.export.CLIP_RULE`). An audio model's program needs numpy and onnxruntime
only (or Keras, or TensorFlow, for the other formats); `tests/test_export.py` runs it and
compares it with `predict`.
"""

from __future__ import annotations

from collections.abc import Sequence

from preprocessing.features import feature_shape
from preprocessing.features.recipes import COMPRESSION, LIBROSA, recipe_values
from xval.core.parameters import FeatureParams

__all__ = ["run_snippet"]

_READ = '''

def read_wav(path):
    """Mono float32 samples in [-1, 1) of a 16-bit PCM WAV file at RATE Hz. Resample
    another rate first as predict does: librosa.resample(y, orig_sr=rate, target_sr=RATE,
    res_type="soxr_hq")."""
    with wave.open(path) as f:
        if f.getframerate() != RATE or f.getsampwidth() != 2:
            sys.exit(f"error: {path}: {8 * f.getsampwidth()}-bit at {f.getframerate()} Hz; "
                     f"expected 16-bit PCM at {RATE} Hz: convert it first (see read_wav)")
        y = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768
        return y.reshape(-1, f.getnchannels()).mean(axis=1)


def window_starts(n):
    """Where predict cuts windows: every HOP samples, one more ending at the end (on the
    GRID of feature frames); a file no longer than one window is one zero-padded window."""
    if n <= WINDOW:
        return [0]
    starts = list(range(0, n - WINDOW + 1, HOP))
    tail = (n - WINDOW) // GRID * GRID
    return starts + [tail] if tail > starts[-1] else starts


def window(y, start):
    return np.pad(y[start:start + WINDOW], (0, max(0, start + WINDOW - len(y))))
'''

_FEATURES = '''

def features(y):
    """The store's features of a signal, time first: (frames, bins)."""
{body}
    return S.T.astype(np.float32)


def rows(y):
    """One row per window: the whole file's frames sliced per window, as the store does."""
    starts = window_starts(len(y))
    whole = features(y) if len(starts) > 1 else None
    out = []
    for start in starts:
        first = start // GRID
        if whole is not None and first + FRAMES <= len(whole):
            out.append(whole[first:first + FRAMES])
        else:
            out.append(features(window(y, start)))
    return np.stack(out)
'''

_AUDIO_ROWS = '''

def rows(y):
    """One row per window: its samples."""
    return np.stack([window(y, start) for start in window_starts(len(y))])
'''

_LOAD = {
    "onnx": ("import onnxruntime", [
        'session = onnxruntime.InferenceSession("{file}", providers=["CPUExecutionProvider"])',
        'scores = session.run(["scores"], {{"{name}": x}})[0]  # (windows, outputs)']),
    "keras": ("import keras", [
        'model = keras.saving.load_model("{file}", compile=False)',
        "scores = np.asarray(model.predict(x, verbose=0))  # (windows, outputs)"]),
    "savedmodel": ("import tensorflow as tf", [
        'model = tf.saved_model.load("{file}")',
        'scores = model.serve(tf.constant(x))["scores"].numpy()  # (windows, outputs)']),
}
"""Format -> the import and the lines that load the exported model and run it on `x`."""


def run_snippet(fmt: str, file: str, input_name: str, feature_params: FeatureParams,
                classes: Sequence[str], *, layers_import: bool = False,
                thresholds: Sequence[float] | None = None) -> list[str]:
    """The lines of the card's program (see the module docstring).

    Args:
        fmt: the export's format (`onnx`, `keras`, `savedmodel`).
        file: the exported model's name in the export folder (`model.onnx`).
        input_name: its input (`audio` or `features`).
        feature_params: the store's feature parameters (`dataset.json`).
        classes: the classes in the output's order (none: one output per value, and a
            clip's outputs are the mean of its windows').
        layers_import: the `.keras` file holds this project's layers (`import architectures`
            first). Defaults to `False`.
        thresholds: for label probabilities (tagging), each label's threshold: a clip's
            probabilities are then the mean of its windows', its labels those at or over
            their thresholds. Defaults to `None` (class probabilities, or values).

    Returns:
        The lines, without the fence.
    """
    fp = feature_params
    rate, grid = int(fp.sample_rate), int(fp.hop_length or 1)
    window = fp.segment_samples
    hop = max(1, int(round(float(fp.segment_hop_seconds) * rate)))
    hop = max(grid, int(round(hop / grid)) * grid)
    audio = input_name == "audio"
    imports = ["import sys", "import wave", "", "import numpy as np"]
    if not audio:
        imports.append("import librosa")
    imports.append(_LOAD[fmt][0])
    if layers_import:
        imports.append("import architectures  # this project's layers, registered with Keras")
    consts = [f"RATE, WINDOW, HOP, GRID = {rate}, {window}, {hop}, {grid}  # Hz, samples"]
    if not audio:
        consts.append(f"FRAMES = {feature_shape(fp)[0]}  # feature frames per window")
    consts.append(f"CLASSES = {list(classes)!r}" if classes else "CLASSES = None")
    if thresholds is not None:
        consts.append(f"THRESHOLDS = {[round(float(t), 4) for t in thresholds]!r}"
                      "  # per label, chosen on the validation items")
    body = _AUDIO_ROWS if audio else _FEATURES.format(body=_feature_lines(fp))
    load, run = (line.format(file=file, name=input_name) for line in _LOAD[fmt][1])
    main = ["", "", load, "y = read_wav(sys.argv[1])"]
    if fp.peak_normalize:
        main.append("y = y / np.abs(y).max()  # each file scaled to a peak of 1")
    main += ["x = rows(y)", run,
             *(_clip_lines() if thresholds is None else _tag_lines())]
    return [*imports, "", *consts, *_READ.splitlines(), *body.splitlines(), *main]


def _feature_lines(fp: FeatureParams) -> str:
    feature = fp.feature
    values = recipe_values(fp)
    lines = [LIBROSA[feature].format(**values)] if feature in LIBROSA else [
        f"raise NotImplementedError({f'feature {feature!r}: see preprocessing.features'!r})"]
    compression = COMPRESSION.get(fp.compression, "")
    if feature in LIBROSA and feature != "mfcc" and compression:
        lines.append(compression.format(**values))
    return "\n".join(f"    {line}" for line in lines)


def _tag_lines() -> list[str]:
    return [
        "clip = scores.mean(axis=0)  # the clip: the mean of its windows' label probabilities",
        "print({c: round(float(p), 6) for c, p in zip(CLASSES, clip)})",
        "print(\"labels:\", \";\".join(c for c, p, t in zip(CLASSES, clip, THRESHOLDS) "
        "if p >= t))",
    ]


def _clip_lines() -> list[str]:
    return [
        "if CLASSES:  # the clip: the softmax of its windows' mean log-probability",
        "    mean = np.log(np.maximum(scores, 1e-38)).mean(axis=0)",
        "    clip = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()",
        "    print({c: round(float(p), 6) for c, p in zip(CLASSES, clip)})",
        "else:  # the clip: the mean of its windows' outputs",
        "    print(scores.mean(axis=0).round(6).tolist())",
    ]
