"""Saved models in formats that run without this project: the fold ensemble of an instance
(or one model) as one Keras model, exported as ONNX, a TensorFlow SavedModel or a `.keras`
file (`python -m xval export`).

The exported model takes what the fold models take, in a form a user outside the project
has: with a front end inside (`front_end = mel|stft|mfcc` on a waveform store), audio,
`(batch, samples)` float32 samples in [-1, 1) at the store's rate (an `int16` store's
scaling to 16-bit PCM is inside); otherwise the features `(batch, frames, bins)` the store's
librosa parameters make (the model card says how). Its output, `scores`, is what `python -m
xval predict` reports per segment: the fold models' outputs averaged, then (classification)
the softmax, so an instance's ensemble is one model.

ONNX goes through `keras.Model.export(format="onnx")` on the torch backend (the TorchScript
exporter: `onnx` needed); the SavedModel through `keras.Model.export(format=
"tf_saved_model")` on the tensorflow backend. Keras fixes the backend per process, so the
command line chooses it from the format (`BACKENDS`).

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.features import PCM_SCALE
from xval.core import optional
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError, StorageError
from xval.core.files import make_temp_dir, storage_error
from xval.core.logs import framework_logs_shown
from xval.core.outputs import (
    OwnedFolder,
    check_apart,
    check_output_folder,
    check_replace,
    remove_output,
)
from xval.core.records import Postprocessing
from xval.inference.models import ModelSet
from xval.tasks.base import Task
from xval.training.layers import inference_outputs

FORMATS = ("onnx", "keras", "savedmodel")
"""The `--format` values."""
BACKENDS = {"onnx": "torch", "savedmodel": "tensorflow", "keras": None}
"""The Keras backend each format is exported on (`None`: any)."""
NEEDS = {"onnx": "export", "savedmodel": "tensorflow"}
"""Format -> the extra it needs (`xval.core.optional.EXTRAS`: its modules, its install line)."""
FILES = {"onnx": "model.onnx", "keras": "model.keras", "savedmodel": "savedmodel"}
"""Format -> the name of the model inside the export folder."""
CARD = "MODEL_CARD.md"
"""The model card's file name."""
ONNX_TOLERANCE = 1e-4
"""The largest difference between the exported model's (ONNX, SavedModel) and the Keras
model's outputs accepted by the check after export."""


@dataclasses.dataclass
class Exported:
    """What an export wrote and checked.

    Attributes:
        folder: the export folder.
        files: the names written in it (the model, the card).
        input_name: the model's input name (`audio` or `features`).
        input_shape: its shape without the batch axis (`None`: any length).
        takes_audio: whether it takes audio (a front end inside).
        members: how many fold models it averages.
        check: the largest difference between the exported model's outputs and the Keras
            model's on a random batch (`_check`), or `None` when it was not checked.
    """

    folder: Path
    files: list[str]
    input_name: str
    input_shape: tuple[int | None, ...]
    takes_audio: bool
    members: int
    check: float | None = None


EXPORT_OUTPUT = OwnedFolder(kind="an export", command="python -m xval export", markers=(CARD,),
                       entries=(CARD, *FILES.values(), "savedmodel/**", "member_*/**"))
"""What an export folder holds: `--overwrite` replaces only such a folder."""


def check_request(fmt: str, out: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuses an export that cannot go ahead, before anything is loaded or written (the
    output rule, `xval.core.outputs`): an unknown format `fmt`, a format whose exporter is
    missing, an existing `out` without `overwrite`, an `out` holding anything but an
    earlier export, or one inside (or holding) what the export reads (`inputs`).

    Raises:
        ConfigurationError: naming the value and the fix.
    """
    if fmt not in FORMATS:
        raise ConfigurationError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}.")
    if fmt in NEEDS:
        optional.require(f"--format {fmt}", NEEDS[fmt])
    check_output_folder(out.parent, what="--out's parent")
    check_replace(out, EXPORT_OUTPUT, overwrite=overwrite)
    check_apart(out, inputs, input_name="the exported model")


def check_format_backend(fmt: str) -> None:
    """Refuses to export `fmt` on a backend that cannot (the process's is fixed): a
    ConfigurationError naming the backend the format needs."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    wanted = BACKENDS[fmt]
    if wanted is not None and keras.backend.backend() != wanted:
        raise ConfigurationError(
            f"--format {fmt} is exported on the {wanted} backend, but this process runs "
            f"{keras.backend.backend()}; run `python -m xval export` (which chooses it) or "
            f"set KERAS_BACKEND={wanted}.")


def check_torch_only(fmt: str, paths: Sequence[Path]) -> None:
    """Refuses to export models that hold a transformers network (`front_end = "hf:..."`,
    torch only) in a format exported on another backend, before Keras is imported: a
    ConfigurationError naming the formats that can."""
    wanted = BACKENDS[fmt]
    if wanted in (None, "torch"):
        return
    for path in paths:
        try:
            with zipfile.ZipFile(path) as archive:
                config = archive.read("config.json").decode("utf-8", errors="replace")
        except (OSError, KeyError, zipfile.BadZipFile):
            continue  # loading it names what is wrong
        if '"TransformersNetwork"' in config:
            raise ConfigurationError(
                f"{Path(path).name} holds a transformers network, which runs on the torch "
                f"backend only, and --format {fmt} is exported on the {wanted} backend; "
                "export it with --format onnx or --format keras.")


def ensemble(models: ModelSet, task: Task, info: DatasetInfo,
             name: str = "xval_export") -> Any:
    """One Keras model answering as the fold models together.

    Args:
        models: the fold models (one or more).
        task: the models' task (classification ends in a softmax, named `scores`).
        info: the store's description (`dataset.json`: `dtype`, `feature_params`).
        name: the model's name. Defaults to `"xval_export"`.

    Returns:
        A `keras.Model` from `audio` `(batch, samples)` (models with a front end) or
        `features` `(batch, frames, bins)` to `scores`.

    Raises:
        ConfigurationError: for models of a task without one output per row, or fold
            models that take different inputs.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    if task.head.exported is None:
        raise ConfigurationError(
            f"Export takes models with one output per row; these are {task.name} models: "
            "use `python -m xval detect` or `embed` with them.")
    nets = models.models
    shapes = {tuple(m.input_shape[1:]) for m in nets}
    if len(shapes) != 1:
        raise ConfigurationError(f"The fold models take different inputs {sorted(shapes)}; "
                                 "export one fold's model (its .keras file).")
    shape = shapes.pop()
    audio = takes_audio(nets[0])
    if audio:
        inputs = keras.Input((shape[0],), name="audio")
        x = keras.layers.Reshape((-1 if shape[0] is None else shape[0], 1),
                                 name="to_channel")(inputs)
        if info.feature_params is not None and info.feature_params.dtype == "int16":
            x = keras.layers.Rescaling(PCM_SCALE, name="to_pcm16")(x)
    else:
        x = inputs = keras.Input(shape, name="features")
    outputs = []
    for i, net in enumerate(nets):  # each fold model without its training-only layers
        given = keras.Input(tuple(net.input_shape[1:]), name=f"fold_input_{i}")
        outputs.append(keras.Model(given, inference_outputs(net, given),
                                   name=f"fold_model_{i}")(x))
    x = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="mean")(outputs)
    activation = task.head.scores_activation
    head = keras.layers.Softmax(name="scores") if activation == "softmax" else \
        keras.layers.Activation(activation, name="scores") if activation else \
        keras.layers.Identity(name="scores")
    model = keras.Model(inputs, head(x), name=name)
    # Frozen: an exporter tracing the nested fold models takes their weights as constants.
    model.trainable = False
    return model


OUTPUTS = ("scores", "member_scores")
"""The outputs of an exported ensemble of instances (`fused`), in order."""


def takes_audio(model: Any) -> bool:
    """Whether a fold model computes its features inside (a `front_end` layer)."""
    return any(layer.name == "front_end" for layer in model.layers)


def example_batch(model: Any, seed: int = 0) -> np.ndarray:
    """A random batch of 3 rows the model takes (1 s of audio for any length)."""
    shape = [d if d is not None else 16000 for d in model.input_shape[1:]]
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((3, *shape))).clip(-1, 1).astype(np.float32)


SEGMENT_RULE = (
    "Cut each file (mono, resampled to sample_rate) into windows of segment_seconds every "
    "segment_hop_seconds (starts rounded to the store's feature hop); when those hops miss "
    "the end, one more window ends at the file's end; a file no longer than one window is "
    "zero-padded to one window. One row per window.")
"""How `predict` cuts a file into the rows a model takes (`preprocessing.features.segment`)."""


def export_metadata(info: DatasetInfo, task: Task, model: Any) -> dict[str, str]:
    """What an exported file says of itself (ONNX `metadata_props`, the card's facts), as
    `{key: text}`: the classes in the output's order, the input, the rate and segments, and
    the rules that turn a file into rows and rows into a clip's scores (from the store's
    description `info`, the models' `task` and the exported `model`)."""
    params = info.feature_params
    rate, seconds, hop = ("", "", "") if params is None else (
        params.sample_rate, params.segment_seconds, params.segment_hop_seconds)
    audio = takes_audio_input(model)
    out = {"producer": "audio-xval (python -m xval export)",
           "task": task.name, "classes": json.dumps(list(info.classes or [])),
           "input": "audio: mono float32 samples in [-1, 1), (batch, samples)" if audio
           else "features: (batch, frames, bins), computed as the store did (MODEL_CARD.md)",
           "output": f"scores: {task.head.exported}",
           "sample_rate": str(rate), "segment_seconds": str(seconds),
           "segment_hop_seconds": str(hop),
           "segment_rule": SEGMENT_RULE}
    if task.scoring.clip_rule:
        out["clip_rule"] = task.scoring.clip_rule
    encoder = (info.front_end or {}).get("encoder")
    if encoder:
        out["encoder"] = str(encoder)
    return out


def postprocessing_rule(chosen: Postprocessing | None) -> dict[str, str]:
    """What the folds chose on their validation items (tagging: each label's threshold;
    detection: its thresholds and median filter), as the export says it of itself:
    `{"postprocessing": JSON of name -> value}` (a per-class value as `{class: value}`), or
    nothing when they chose nothing."""
    if chosen is None or not chosen.values:
        return {}
    values = {name: dict(zip(chosen.classes, value))
              if isinstance(value, list) and len(value) == len(chosen.classes) else value
              for name, value in chosen.values.items()}
    return {"postprocessing": json.dumps(values)}


def takes_audio_input(model: Any) -> bool:
    """Whether an exported model's input is audio."""
    return model.inputs[0].name == "audio"


def write_export(model: Any, fmt: str, out: Path, card: Callable[[float | None], str],
                 overwrite: bool, inputs: Sequence[Path] = (),
                 metadata: Mapping[str, str] | None = None) -> Exported:
    """Exports `model` as `fmt` with its model card into the folder `out`, atomically: the
    folder is written beside `out` and renamed into place, so nothing is left on failure.

    Args:
        model: the model (see `ensemble`).
        fmt: `onnx`, `keras` or `savedmodel`.
        out: the export folder.
        card: `card(check) -> str`, the model card's text (`MODEL_CARD.md`), given the
            check's result (`Exported.check`).
        overwrite: replace `out` when it holds an earlier export.
        inputs: what the export reads (kept apart from `out`).
        metadata: what an ONNX file says of itself (`export_metadata`), in its
            `metadata_props`. Defaults to none.

    Returns:
        `Exported`.

    Raises:
        ConfigurationError: for a request `check_request` refuses, or an ONNX model whose
            outputs differ from Keras's by more than `ONNX_TOLERANCE`.
        StorageError: when `out`'s disk is full or may not be written (nothing is left).
    """
    check_request(fmt, out, overwrite, inputs)
    check_format_backend(fmt)
    batch = example_batch(model)
    predicted = model.predict(batch, verbose=0)  # also builds every layer
    expected = np.asarray(predicted[0] if isinstance(predicted, (list, tuple)) else predicted)
    try:
        tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    except OSError as e:
        raise storage_error(e, out, then="", elsewhere="give --out") from e
    try:
        target = tmp / FILES[fmt]
        if fmt == "keras":
            model.save(target)
        elif fmt == "savedmodel":
            _savedmodel(model, target)
        else:
            with _quiet_export_warnings():
                model.export(str(target), format="onnx", verbose=False)
            _describe_onnx(target, metadata or {}, len(model.outputs))
        check = _check(fmt, target, batch, expected)
        (tmp / CARD).write_text(card(check))
        replace_folder(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise storage_error(e, out, then="", elsewhere="give --out") from e
        raise
    return Exported(folder=out, files=[FILES[fmt], CARD], input_name=model.inputs[0].name,
                    input_shape=tuple(model.input_shape[1:]),
                    takes_audio=takes_audio_input(model), check=check,
                    members=sum(layer.name.startswith("fold_model_") for layer in model.layers))


@contextlib.contextmanager
def _quiet_export_warnings() -> Iterator[None]:
    """Silences the warnings tracing a model for ONNX prints on every export, unless the
    command is verbose (`framework_logs_shown`): torch's `TracerWarning`s (raised in Keras's
    torch backend: "Converting a tensor to a Python boolean...") and the other warnings of
    torch's ONNX exporter and Keras's export code."""
    if framework_logs_shown():
        yield
        return
    with warnings.catch_warnings():
        tracer = getattr(getattr(sys.modules.get("torch"), "jit", None), "TracerWarning",
                         None)
        if tracer is not None:
            warnings.simplefilter("ignore", tracer)
        # Every warning raised in the frameworks' own modules while tracing (deprecations
        # of torch's exporter, Keras's user warnings); the project's are kept.
        warnings.filterwarnings("ignore", category=Warning,
                                module=r"(torch|keras|onnx|onnxscript)(\.|$)")
        yield


def _describe_onnx(path: Path, metadata: Mapping[str, str], outputs: int = 1) -> None:
    """Names the ONNX graph's outputs `scores` (and `member_scores`: `OUTPUTS`; the exporter
    numbers them) and writes `metadata` into its `metadata_props`."""
    import onnx  # noqa: PLC0415  (optional: the [export] extra)

    graph = onnx.load(str(path))
    for k, new in enumerate(OUTPUTS[:outputs]):
        old = graph.graph.output[k].name
        if old != new:
            for node in graph.graph.node:
                node.output[:] = [new if name == old else name for name in node.output]
            graph.graph.output[k].name = new
    onnx.helper.set_model_props(graph, dict(metadata))
    onnx.save(graph, str(path))


def _savedmodel(model: Any, path: Path) -> None:
    """A TensorFlow SavedModel whose `serve` signature maps the input to `scores`."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32")
    archive.add_endpoint(name="serve", fn=lambda x: {"scores": model(x, training=False)},
                         input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def _check(fmt: str, path: Path, batch: np.ndarray, expected: np.ndarray) -> float | None:
    """The largest difference between the exported model's outputs on `batch` (the ONNX
    file run by onnxruntime, the SavedModel's `serve` reloaded by TensorFlow) and Keras's;
    `None` for the `keras` format (`check_request` required onnxruntime for ONNX).

    Raises:
        ConfigurationError: when it exceeds `ONNX_TOLERANCE`.
    """
    if fmt == "onnx":
        import onnxruntime  # noqa: PLC0415  (optional: the [export] extra)

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: batch})[0]
    elif fmt == "savedmodel":
        import tensorflow as tf  # noqa: PLC0415  (the backend of this format)

        loaded = tf.saved_model.load(str(path))  # kept: its function needs its variables
        got = loaded.serve(tf.constant(batch))["scores"]
    else:
        return None
    diff = float(np.max(np.abs(np.asarray(got) - expected)))
    if not diff <= ONNX_TOLERANCE:
        raise ConfigurationError(
            f"The {'ONNX' if fmt == 'onnx' else 'SavedModel'} model's outputs differ from the "
            f"Keras model's by {diff:.2e} (more than {ONNX_TOLERANCE:g}) on a random batch; "
            "nothing was written. Export as keras instead, and report the model.")
    return diff


def replace_folder(tmp: Path, out: Path) -> None:
    """Moves the finished folder `tmp` to `out`, replacing what is there."""
    if out.exists():
        trash = make_temp_dir(out.parent, prefix=f".{out.name}.old.")
        os.replace(out, trash / "export")
        os.replace(tmp, out)
        remove_output(trash / "export", EXPORT_OUTPUT)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
