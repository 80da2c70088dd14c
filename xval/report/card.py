"""The model card (`MODEL_CARD.md`) written with every export (`python -m xval export`):
what the model does, what it takes and gives, what it was trained and scored on, and where
it should not be used.

Everything in it is read from the results folder through the results store
(`InstanceResult`, the fold manifest), from the store's description (`dataset.json`) and
from the run's code snapshot; nothing is typed by hand, so the card is regenerated, never
edited.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from architectures.hf import model_name, names_model
from preprocessing.features.encoders import in_model
from preprocessing.features.recipes import librosa_recipe
from xval import tasks
from xval.core.dataset_info import DatasetInfo
from xval.core.records import FoldsManifest, Stat
from xval.core.records.ensemble import VALIDATION
from xval.report.card_snippet import run_snippet
from xval.report.results import InstanceResult


@dataclasses.dataclass
class CardFacts:
    """What the card says beside the results.

    Attributes:
        source: what was exported (the instance folder or `.keras` file), as given.
        fmt: the format (`onnx`, `keras`, `savedmodel`).
        files: the files of the export folder.
        input_name: the exported model's input (`audio` or `features`).
        input_shape: its shape without the batch axis (`None`: any length).
        members: how many fold models it averages.
        check: the largest difference between the exported and the Keras outputs, or `None`.
        front_end: the front end inside the model (`mel`, `stft`, `mfcc`) or `none`.
        info: the store's description (`dataset.json`).
        encoder: the pretrained encoder of the store (`name`, `licence`, `trained_on`, ...),
            or `None`.
        code: the version of the code that trained (`commit`, `dirty`, `keras`, `backend`)
            and exported (`exported_with`).
        class_counts: fold -> split -> class -> rows, when the store could be read.
        date: when the export was made (UTC).
        rules: what the export says of itself (`xval.inference.export.export_metadata`:
            `segment_rule`, `clip_rule`, ...). Defaults to none.
    """

    source: str
    fmt: str
    files: Sequence[str]
    input_name: str
    input_shape: tuple[int | None, ...]
    members: int
    check: float | None
    front_end: str
    info: DatasetInfo
    encoder: Mapping[str, Any] | None
    code: Mapping[str, Any]
    class_counts: Mapping[int, Mapping[str, Mapping[str, int]]] | None
    date: str
    rules: Mapping[str, str] = dataclasses.field(default_factory=dict)


def model_card(facts: CardFacts, instance: InstanceResult | None,
               manifest: FoldsManifest | None) -> str:
    """The text of `MODEL_CARD.md`.

    Args:
        facts: the export and the store (`CardFacts`).
        instance: the instance the models come from, read through the results store, or
            `None` for a `.keras` file outside an instance folder (no scores to report).
        manifest: the experiment's fold manifest (`folds.json`), or `None`.

    Returns:
        Markdown.
    """
    name = "/".join(instance.path.parts[-3:]) if instance is not None else facts.source
    lines = [f"# Model card: {name}", "",
             f"Written by `python -m xval export` on {facts.date} with the {facts.fmt} export "
             f"({', '.join(f'`{f}`' for f in facts.files)}); regenerate it rather than "
             "editing it.", ""]
    lines += _task(facts, instance)
    lines += _input(facts)
    lines += _running(facts)
    lines += _training_data(facts, instance, manifest)
    lines += scores_section(instance)
    lines += _encoder(facts.encoder)
    lines += _code(facts.code, facts.check)
    lines += _use(facts, instance)
    return "\n".join(lines) + "\n"


def _task(facts: CardFacts, instance: InstanceResult | None) -> list[str]:
    info = facts.info
    classes = info.classes
    out = ["## Task", "", f"- Task: {info.task_type or tasks.DEFAULT}."]
    if classes:
        out.append(f"- Classes ({len(classes)}, in the order of the output): "
                   f"{', '.join(f'`{c}`' for c in classes)}.")
    if instance is not None and instance.ensemble is not None:
        out.append(f"- Model: an ensemble of instances "
                   f"{' + '.join(map(str, instance.ensemble.instances))} (see Ensemble below).")
        out.append(f"- Output `scores` `(batch, {len(classes) or 'outputs'})`: each member's "
                   "scores of the segment, averaged with the ensemble's weights (see Ensemble "
                   "below).")
        return [*out, ""]
    if instance is not None and instance.params:
        typed = instance.parameters
        comments = "; ".join(str(c) for c in (typed.comment_1, typed.comment_2) if c)
        out.append(f"- Model: `{typed.architecture}`"
                   + (f" ({comments})" if comments else "")
                   + f", reshaping `{typed.reshaping_type}`, front end `{typed.front_end}`.")
    members = "the mean of the outputs of " + (f"{facts.members} fold models" if
                                               facts.members > 1 else "one model")
    activation = tasks.get(info.task_type or tasks.DEFAULT).head.scores_activation
    out.append(f"- Output `scores` `(batch, {len(classes) or 'outputs'})`: {members}, then "
               + (f"the {activation} ({'label' if activation == 'sigmoid' else 'class'} "
                  "probabilities), as `python -m xval predict` reports a segment."
                  if classes and activation else "as they are."))
    return [*out, *_postprocessing(facts), ""]


def _postprocessing(facts: CardFacts) -> list[str]:
    """The post-processing the folds chose on their validation items (tagging: each
    label's threshold), as the export recorded it (`postprocessing_rule`)."""
    text = facts.rules.get("postprocessing")
    if not text:
        return []
    out = []
    for name, value in json.loads(text).items():
        shown = ", ".join(f"`{k}` {v:g}" for k, v in value.items()) \
            if isinstance(value, dict) else f"{value}"
        out.append(f"- `{name}`, chosen per fold on its validation items (never its test "
                   f"items; several folds: the median): {shown}.")
    return out


def _input(facts: CardFacts) -> list[str]:
    fp = facts.info.feature_params
    rate, seconds, hop = (None, None, None) if fp is None else (
        fp.sample_rate, fp.segment_seconds, fp.segment_hop_seconds)
    shape = ", ".join("any" if d is None else str(d) for d in facts.input_shape)
    out = ["## Input", "",
           f"- `{facts.input_name}` `(batch, {shape})`, float32.",
           f"- Audio: mono, resampled to {rate} Hz"
           + (", each file scaled to a peak of 1 first" if fp and fp.peak_normalize else "")
           + f"; cut into segments of {seconds} s every {hop} s (a shorter file is "
             "zero-padded to one segment); one row per segment."]
    out += [f"- {facts.rules[k]}" for k in ("segment_rule", "clip_rule") if k in facts.rules]
    if facts.input_name == "audio" and names_model(facts.front_end):
        out.append(f"- Front end: inside the model: the transformers model "
                   f"`{model_name(facts.front_end)}` (`architectures.encoders.hf`: its feature "
                   "extractor as Keras operations, its network, its last layer's states), "
                   f"then the head; feed mono samples in [-1, 1) at {rate} Hz, one row per "
                   "segment.")
    elif facts.input_name == "audio" and (facts.encoder or facts.front_end in in_model()):
        name = (facts.encoder or {}).get("encoder") or facts.front_end
        out.append(f"- Front end: inside the model: the `{name}` encoder's layers "
                   "(`architectures.encoders`: each segment divided by its own peak, its "
                   "log-mel spectrogram, its network), then the head; feed mono samples in "
                   f"[-1, 1) at {rate} Hz, one row per segment.")
    elif facts.input_name == "audio":
        out.append(f"- Front end: inside the model (`{facts.front_end}`, "
                   "`architectures.SpectralFrontEnd`), with the store's settings below; feed "
                   "the samples in [-1, 1).")
    elif facts.encoder:
        out.append(f"- Front end: outside the model: the embeddings of the encoder "
                   f"`{facts.encoder.get('encoder')}` (below), as "
                   "`python -m preprocessing --encoders` computes them.")
    else:
        out.append("- Front end: outside the model; compute each segment's features with "
                   "librosa as the store did (time first):")
        out += ["", "```python", *(librosa_recipe(fp) if fp is not None else [
            "# the store recorded no feature parameters"]), "```"]
    settings = ", ".join(f"{k}={v!r}" for k, v in (fp or {}).items() if k != "dtype")
    return [*out, f"- The store's feature parameters: {settings}.", ""]


def _thresholds(facts: CardFacts) -> list[float] | None:
    """Each class's threshold on a clip's scores, as the export's post-processing records
    the folds' choice (`Scoring.clip_thresholds`: tagging's labels), else `None`."""
    task = tasks.get(facts.info.task_type or tasks.DEFAULT)
    return task.scoring.clip_thresholds(json.loads(facts.rules.get("postprocessing") or "{}"),
                                        list(facts.info.classes or []))


def _running(facts: CardFacts) -> list[str]:
    """The program that gives a WAV file's scores as `python -m xval predict` does."""
    fp = facts.info.feature_params
    if fp is None or (facts.input_name != "audio" and fp.feature == "waveform"):
        return []
    code = run_snippet(facts.fmt, facts.files[0], facts.input_name, fp, facts.info.classes,
                       layers_import=facts.fmt == "keras" and facts.input_name == "audio",
                       thresholds=_thresholds(facts))
    needs = {"onnx": "numpy and onnxruntime", "keras": "numpy and Keras",
             "savedmodel": "numpy and TensorFlow"}[facts.fmt]
    threshold = fp.silence_threshold_db
    return ["## Running it", "",
            f"`python run.py some.wav` in this folder prints the file's clip scores as "
            "`python -m xval predict` gives them (the same windows, rows and clip rule: "
            "they differ by the runtime's arithmetic alone, see Check below), with "
            f"{needs}"
            + ("" if facts.input_name == "audio" else " and librosa (the features)")
            + ". One difference: `predict` leaves out the windows that are silence or "
            f"padding (the loudest frame at or below {threshold} dBFS in the feature band) "
            "when the file has others; this program keeps every window.", "",
            "```python", *code, "```", ""]


def _training_data(facts: CardFacts, instance: InstanceResult | None,
                   manifest: FoldsManifest | None) -> list[str]:
    info = facts.info
    skipped = info.skipped
    out = ["## Training data and protocol", "",
           f"- Store `{str(info.store or '?').rsplit('/', 1)[-1]}`: {info.n_rows} "
           f"rows from {info.n_files or '?'} files ({len(skipped)} skipped), "
           f"{info.n_clips} clips, {info.n_items} items"
           + (f"; source: {info.source}" if info.source else "") + "."]
    if manifest is not None:
        folds = manifest.folds
        items = sorted({i for fold in folds for i in fold.get("test", [])})
        out += [f"- Protocol: `{manifest.splitter}`: {manifest.num_folds} folds over items "
                f"(the unit no fold splits: a test item is never seen in training or "
                f"validation), e.g. {', '.join(items[:4])}{', ...' if len(items) > 4 else ''}."]
    if instance is not None and instance.folds:
        out += _fold_table(facts, instance)
    return [*out, ""]


def _fold_table(facts: CardFacts, instance: InstanceResult) -> list[str]:
    """One row per fold: items and rows per split, classes, best epoch. An ensemble of
    instances counts clips (it fuses its members' clip scores) and has no epoch."""
    fused = instance.ensemble is not None
    unit, last = ("clips", []) if fused else ("rows", ["best epoch"])
    header = ["fold", "train items", "val items", "test items", *(
        f"{s} {unit}" for s in ("train", "val", "test")), "classes (train/test)", *last]
    out = ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for record in instance.folds:
        counts = (facts.class_counts or {}).get(record.fold, {})
        classes = "/".join(str(len(counts.get(s, {}))) for s in ("train", "test")) \
            if counts else "-"
        n = record.n_rows
        cells = [record.fold, *(len(record.items.get(s, [])) for s in ("train", "val", "test")),
                 *(n.get(s, "-") for s in ("train", "val", "test")), classes,
                 *([] if fused else [record.best_epoch])]
        out.append("| " + " | ".join(map(str, cells)) + " |")
    return out


def _stat(stat: Stat | None) -> str:
    if stat is None or stat.mean is None:
        return "-"
    ci = f" [{stat.mean - stat.ci95:.4f}, {stat.mean + stat.ci95:.4f}]" \
        if stat.ci95 is not None else ""
    std = f" ± {stat.std:.4f}" if stat.std is not None else ""
    return f"{stat.mean:.4f}{std}{ci}"


def scores_section(instance: InstanceResult | None) -> list[str]:
    out = ["## Cross-validated scores", ""]
    if instance is None:
        return [*out, "None: the model is not in an instance folder, so no cross-validated "
                      "scores go with it.", ""]
    summary = instance.summary
    out += [f"Mean ± standard deviation over the {summary.folds_done} folds [95% confidence "
            f"interval of the mean]; {_selection(instance)}", "",
            "| level | metric | validation | test |", "| --- | --- | --- | --- |"]
    for level in summary.levels():
        for metric in summary.metric_names(level, "test"):
            splits = summary.metrics.get(level, {})
            out.append(f"| {level} | {metric} | {_stat(splits.get('val', {}).get(metric))} | "
                       f"{_stat(splits.get('test', {}).get(metric))} |")
    return [*out, ""]


def _selection(instance: InstanceResult) -> str:
    """What the validation items chose, and that the test items were kept out of it."""
    record = instance.ensemble
    if record is None:
        return ("validation items chose the best epoch, test items were never seen in "
                "training.")
    chose = ("its weights were chosen on each fold's validation clips (so its validation "
             "score is optimistic, as a trained instance's is)" if record.weighting ==
             VALIDATION else "its members have equal weights in every fold (chosen on "
             "nothing)")
    return (f"an ensemble trains nothing and has no epoch: {chose}; each member's epochs "
            "were chosen on its own validation items; test clips were never seen in training "
            "nor in the choice of weights.")


def _encoder(encoder: Mapping[str, Any] | None) -> list[str]:
    if not encoder:
        return []
    out = ["## Pretrained encoder", "",
           f"- `{encoder.get('encoder')}`"
           + (f", revision {encoder['revision']}" if encoder.get("revision") else "")
           + (f", weights sha256 {encoder['weights_sha256']}"
              if encoder.get("weights_sha256") else "") + ".",
           f"- Licence of its weights: **{encoder.get('licence') or 'not recorded'}**; the "
           "exported model is used on its embeddings, so its terms apply to any use."]
    if encoder.get("trained_on"):
        out.append(f"- Trained on: {encoder['trained_on']}.")
    return [*out, ""]


def _code(code: Mapping[str, Any], check: float | None) -> list[str]:
    commit = code.get("commit")
    trained = (f"git commit `{commit}`" + (" with uncommitted changes (code/git_diff.patch)"
                                           if code.get("dirty") else "")) if commit else \
        "no git commit recorded (the run's code/ folder holds the code)"
    return ["## Code", "",
            f"- Trained with: {trained}; Keras {code.get('keras', '?')}, backend "
            f"{code.get('backend', '?')}.",
            f"- Exported with: {code.get('exported_with', '?')}.",
            f"- Check: the exported model's outputs differ from the Keras model's by at most "
            f"{check:.1e} on a random batch." if check is not None else
            "- Check: none run on the exported file (ONNX needs onnxruntime).", ""]


def _use(facts: CardFacts, instance: InstanceResult | None) -> list[str]:
    info = facts.info
    out = ["## Intended use and limits", "",
           f"- For research on audio like the training data ({info.n_items} items, "
           f"{len(info.classes)} classes); the scores above hold for new items "
           "from the same source, recorded and preprocessed the same way, and no further.",
           "- Give it segments made exactly as described under Input (rate, length, peak "
           "normalisation); other rates or levels change its scores silently.",
           "- It knows only its classes: any input gets one of them (no rejection of "
           "unknown sounds)."]
    if facts.fmt == "keras":
        out.append("- Loading the `.keras` file: `import architectures` first (it registers "
                   "this project's layers: `SpectralFrontEnd`, `AisfxFrontEnd`, "
                   "`AisfxNetwork`, ...), then `keras.saving.load_model(path, "
                   "compile=False)`; the ONNX export needs only onnxruntime.")
    if instance is not None and instance.parameters.embeds:
        out.append("- The instance's embedding classifiers (fold_<i>.skops) are not part of "
                   "this export.")
    if facts.encoder and "non-commercial" in str(facts.encoder.get("licence", "")).lower():
        out.append("- Non-commercial use only (the encoder's licence).")
    return [*out, ""]


