"""Sound event detection stores: windows of long recordings with frame-level targets.

A detection store is a feature store whose rows are windows (`segment_seconds` long, every
`segment_hop_seconds`) of annotated recordings, plus `frame_targets.npy`, a memory-mapped
`(rows, frames, classes)` array of 0/1 aligned to the feature frame grid. Each row keeps its
recording (`clip`) and start (`start`, seconds); its `item` is the recording, or a grouping
read from a CSV (`file,item`: speaker, site, night, device), so that folds never split it.
Its `label` is `event` when any frame of the window is active and `background` otherwise
(the fold splitter balances those).
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.build import extract_file, feature_params
from preprocessing.features import feature_shape, front_end
from preprocessing.features.pretrained import PRETRAINED, PretrainedOptions
from preprocessing.store import FeatureStore, check_store_out, write_store
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.input_paths import check_file
from xval.tasks.detection import T_COLLAR, Detection, annotation_source, frame_targets

TASK_TYPE = Detection.name
"""The task of the stores built here (`xval.tasks.detection`)."""


def read_items(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `file -> item` mapping of a CSV with the columns `file` and `item`.

    Args:
        path: the CSV (e.g. synth-events' `items.csv`).

    Returns:
        dict of file name (as written in the annotations) to item.

    Raises:
        DatasetError: when the file (not a regular file: named) or one of the columns is
            missing, a file or item is blank, or a file is listed twice with different
            items.
    """
    check_file(Path(path), "The items CSV")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as e:
        raise DatasetError(f"Cannot read the items CSV {path}: {e}") from e
    missing = [c for c in ("file", "item") if c not in table.columns]
    if missing:
        raise DatasetError(
            f"The items CSV {path} needs the columns file and item; {', '.join(missing)} "
            f"missing (it has {', '.join(table.columns)})."
        )
    mapping: dict[str, str] = {}
    for line, (file, item) in enumerate(zip(table["file"], table["item"]), start=2):
        file, item = file.strip(), item.strip()
        if not file or not item:
            raise DatasetError(
                f"The items CSV {path}, line {line}: {'item' if file else 'file'} is blank "
                f"(file={file!r}, item={item!r}); every recording needs its item (speaker, "
                "site, night: what folds must never split). Fill it in; a recording of its "
                "own gives its own name as the item.")
        if mapping.setdefault(file, item) != item:
            raise DatasetError(f"The items CSV {path} gives {file!r} two items: "
                               f"{mapping[file]!r} and {item!r}.")
    return mapping


def check_items(items: Mapping[str, str] | None, files: Sequence[str],
                skipped: Sequence[Mapping[str, Any]] = (),
                where: str = "The items CSV") -> None:
    """Refuses items that leave an annotated recording out (it would be an item of its
    own, or none) or name a file that is no recording of the folder (a typo: one site on
    both sides of a fold).

    Args:
        items: `read_items`'s mapping, or `None` (each recording its own item).
        files: the annotated recordings, as the annotations write them.
        skipped: `annotation_source`'s skipped files (audio without annotation: an items
            file may list them).
        where: the items' source, for the message.

    Raises:
        DatasetError: naming the first of each and the fix.
    """
    if items is None:
        return
    paths = [Path(str(s["path"])) for s in skipped]
    others = {form for p in paths for form in (p.as_posix(), p.with_suffix("").as_posix())}
    missing = [f for f in files if f not in items]
    unknown = sorted(f for f in set(items) - set(files)
                     if not any(o == f or o.endswith("/" + f) for o in others))
    found = ([f"{len(missing)} annotated recording(s) have no item in it, e.g. "
              f"{missing[0]!r}"] if missing else []) + \
        ([f"{len(unknown)} of its file(s) name no recording of the folder, e.g. "
          f"{unknown[0]!r}"] if unknown else [])
    if found:
        raise DatasetError(f"{where}: {'; '.join(found)}. Give one row file,item for each "
                           "annotated recording, its file written as in the annotations "
                           f"(e.g. {files[0]!r}).")


def _event_classes(events: pd.DataFrame, classes: list[str] | None,
                   annotations: str | os.PathLike[str]) -> list[str]:
    """The store's event classes: `classes` (checked to hold every label) or the sorted
    labels of the events."""
    labels = sorted(set(events["label"])) if len(events) else []
    classes = list(classes) if classes is not None else labels
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DatasetError(f"Event labels {unknown} are not among the classes {classes}.")
    if not classes:
        raise DatasetError(f"{annotations} holds no event: a detector needs at least one.")
    return classes


def check_frame_hop(hop_length: int, sample_rate: int, encoder: str | None = None,
                    frame_pool: int = 1) -> None:
    """Refuses frames further apart than the events' collar (`T_COLLAR`, 200 ms): no onset
    could be placed within it (a block encoder's embeddings, every second or more).

    Args:
        hop_length: the store's samples between frames.
        sample_rate: its rate (Hz).
        encoder: the pretrained encoder, for the message; `None` for other features.
        frame_pool: a frame encoder's frames averaged into one. Defaults to `1`.

    Raises:
        ConfigurationError: naming the hop in seconds and the fix.
    """
    seconds = hop_length / sample_rate
    if seconds <= T_COLLAR:
        return
    if encoder and frame_pool > 1:
        fix = f"lower frame_pool to at most {max(1, int(frame_pool * T_COLLAR / seconds))}"
    elif encoder:
        fix = (f"the encoder {encoder!r} gives an embedding every {seconds:.3g} s; use a "
               "frame encoder: aisfx_frames (aisfx at a frame every 93 ms), resemblyzer or "
               "a transformers speech model")
    else:
        fix = f"pass a hop_length of at most {int(T_COLLAR * sample_rate)} samples"
    raise ConfigurationError(
        f"hop_length={hop_length} at {sample_rate} Hz puts frames {seconds:.3g} s apart, "
        f"too far to place an event within the {T_COLLAR:g} s collar of detection; {fix}.")


def build_detection_store(annotations: str | os.PathLike[str],
                          audio_root: str | os.PathLike[str], out: str | os.PathLike[str], *,
                          params: Mapping[str, Any], items: Mapping[str, str] | None = None,
                          classes: list[str] | None = None, strict: bool = False,
                          overwrite: bool = False, info: Mapping[str, Any] | None = None,
                          **read_kwargs: Any) -> tuple[FeatureStore, dict[str, Any]]:
    """Extracts the windows of annotated recordings and writes a detection store.

    Args:
        annotations: the annotation CSV (wide or long layout, see `read_annotations`).
        audio_root: the folder of recordings.
        out: the store folder.
        params: feature parameters (see `feature_params`); `segment_seconds` and
            `segment_hop_seconds` cut the windows.
        items: dict of file name to item (see `read_items`), or `None`: each recording is
            its own item.
        classes: event class names in target order. Defaults to the sorted labels.
        strict: fail on an audio file without annotation, or an unusable file, instead of
            skipping it. Defaults to `False`.
        overwrite: replace an existing store. Defaults to `False`.
        info: extra entries for `dataset.json`.
        **read_kwargs: passed to `read_annotations` (layout, units, columns, context, ...).

    Returns:
        `(store, summary)`: the opened `FeatureStore` and a dict of counts and skipped files.

    Raises:
        DatasetError: for an `out` that is not a store, every annotation error (before
            anything is written), `items` that do not match the annotated recordings
            (`check_items`), or no window left.
        ConfigurationError: for frames further apart than the collar (`check_frame_hop`).
    """
    check_store_out(out, overwrite=overwrite, inputs=[audio_root])  # before anything is read
    params, described = front_end(feature_params(params))
    encoded = PretrainedOptions.of(params.options) if params.feature == PRETRAINED else None
    check_frame_hop(params.hop_length, params.sample_rate,
                    str(encoded.encoder) if encoded else None,
                    int(encoded.frame_pool) if encoded else 1)
    recordings, events, skipped = annotation_source(annotations, audio_root, strict=strict,
                                                    **read_kwargs)
    check_items(items, list(recordings["file"]), skipped)
    classes = _event_classes(events, classes, annotations)
    frames = feature_shape(params)[0]
    feats, targets, meta = [], [], []
    for record in recordings.to_dict("records"):
        result = extract_file(record["path"], params, name=record["file"])
        if "error" in result:
            if strict:
                raise DatasetError(f"{record['path']}: {result['error']} (strict mode).")
            skipped.append({"path": record["path"], "reason": result["error"]})
            continue
        own = events[events["file"] == record["file"]]
        item = items[record["file"]] if items is not None else record["file"]
        for x, start in zip(result["features"], result["starts"]):
            y = frame_targets(own, frames, sample_rate=params.sample_rate,
                              hop_length=params.hop_length, classes=classes,
                              start_seconds=start)
            feats.append(x)
            targets.append(y)
            meta.append({"item": item, "clip": record["file"], "source": record["path"],
                         "start": start, "label": "event" if y.any() else "background"})
    if not feats:
        raise DatasetError("No window to write: every recording was skipped.")
    dtype = np.float16 if params.dtype == "float16" else np.float32
    store = write_store(out, np.stack(feats).astype(dtype), pd.DataFrame(meta),
                        task_type=TASK_TYPE, classes=classes,
                        arrays={"frame_targets.npy": np.stack(targets).astype(np.uint8)},
                        overwrite=overwrite,
                        info={"feature_params": params.to_dict(), "skipped": skipped,
                              "annotations": str(annotations),
                              # How the CSV was read: `evaluate --annotations` reads alike.
                              "annotation_options": {
                                  k: v for k, v in read_kwargs.items()
                                  if v is None or isinstance(v, (str, int, float))},
                              **({"front_end": described} if described else {}),
                              **(info or {})})
    return store, _summary(recordings, events, classes, skipped, targets)


def _summary(recordings: pd.DataFrame, events: pd.DataFrame, classes: list[str],
             skipped: list[dict[str, Any]], targets: list[np.ndarray]) -> dict[str, Any]:
    """What `build_detection_store` wrote: counts, classes, skipped files (`unreadable`:
    the annotated recordings among them, which could not be read), active share."""
    paths = set(recordings["path"])
    unreadable = [s for s in skipped if s["path"] in paths]
    return {"recordings": int(len(recordings)) - len(unreadable),
            "windows": len(targets), "events": int(len(events)), "classes": classes,
            "skipped": skipped, "unreadable": unreadable,
            "active_frames": float(np.mean([t.any(axis=1).mean() for t in targets]))}
