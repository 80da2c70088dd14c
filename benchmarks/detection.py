"""A detection experiment's fold models rescored under post-processing rules, nothing
retrained (issue 90): what lost the test recordings' events, and what each rule makes of
the same frame probabilities.

For each fold of an instance, its `.keras` model reads the fold's training, validation and
test windows of the store; the windows are stitched into recordings as the engine stitches
them, and the test recordings are scored (event F1, segment F1, PSDS1, PSDS2, the event
error counts of `xval.tasks.detection.errors`) under:

- `recorded`: the post-processing the fold record holds (what the run chose; its event F1
  must equal the recorded one: the check that the rescoring is the engine's);
- `learned`: `xval.tasks.detection.choice.choose_rules` on the validation recordings, with
  the training recordings' annotations (the detection default);
- `threshold_median`: the same with gap bridging and the shortest event off (0), the median
  filter bounded by the annotations;
- `previous`: the choice before issue 90 (threshold per class and a median filter of 0,
  0.06, 0.1 or 0.2 s on validation, no gap bridging or shortest event);
- `rule`: the annotations' rule alone (threshold 0.5, no median filter), no validation;
- `cross_fold`: `learned`, chosen instead on the other folds' test recordings, each read by
  its own fold's model: out-of-fold predictions of this fold's training and validation items
  (issue 90 point 3, measured before it is built), never this fold's test items.

    KERAS_BACKEND=torch python -m benchmarks.detection results/fsdd_trains/experiment_9 \\
        --instance 4 --store data/fsdd_trains --out results/research/detection.jsonl
    python -m benchmarks.detection --summary --out results/research/detection.jsonl
    python -m benchmarks.detection --smoke        # a tiny store and model, under 30 s
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xval import tasks
from xval.core.hashing import seal
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, Status
from xval.core.storage import ResultsStore
from xval.tasks.detection.choice import CHOSEN_ON_VALIDATION, MEDIAN_GRID_SECONDS, choose_rules
from xval.tasks.detection.errors import COUNTS
from xval.tasks.detection.scores import window_scores

VARIANTS = ("recorded", "learned", "threshold_median", "previous", "rule", "cross_fold")
SHOWN = ("event_f1", "segment_f1", "psds1", "psds2", "onset_f1")
UNSET = dict.fromkeys(CHOSEN_ON_VALIDATION)


def recordings(model: Any, store: Any, rows: np.ndarray) -> tuple[list, list]:
    """The stitched recordings of `rows`: `(logits, targets)`, one array per recording."""
    from xval.training.evaluation import row_starts  # noqa: PLC0415  (imports keras)

    outputs = np.asarray(model.predict(np.asarray(store.features[rows], np.float32),
                                       batch_size=32, verbose=0), dtype=np.float64)
    task = tasks.get("detection")
    starts = row_starts(store)
    _, logits, targets = task.scoring.pool_by_clip(
        outputs, np.asarray(store.targets[rows]), store.clips[rows], starts[rows],
        store.info.frame_seconds)
    return logits, targets


def choose(variant: str, val: tuple[list, list], train_targets: list, frame_seconds: float,
           classes: list[str], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """The post-processing values of `variant` (see the module)."""
    def chosen(params: Mapping[str, Any]) -> Any:
        return choose_rules(val[1], val[0], len(classes), params, frame_seconds, classes,
                            train_targets)

    if variant == "recorded":
        return dict(recorded)
    if variant == "learned":
        return chosen(UNSET).values
    if variant == "threshold_median":
        return {**chosen({**UNSET, "min_gap_seconds": 0.0, "min_event_seconds": 0.0}).values,
                "min_gap_seconds": 0.0, "min_event_seconds": 0.0}
    if variant == "previous":  # the median's grid unbounded, ties keep the shorter
        fixed = {"min_gap_seconds": 0.0, "min_event_seconds": 0.0}
        best, values = -np.inf, {}
        for median in MEDIAN_GRID_SECONDS:
            post = chosen({**UNSET, **fixed, "median_filter_seconds": median})
            if (post.score or -1.0) > best:
                best, values = post.score or -1.0, {**post.values, **fixed,
                                                    "median_filter_seconds": median}
        return values
    rule = chosen({**UNSET, "detection_threshold": 0.5, "median_filter_seconds": 0.0})
    return {**rule.values, "detection_threshold": 0.5, "median_filter_seconds": 0.0}


def out_of_fold(fold: int, splits: Mapping[int, Mapping[str, Any]],
                records: Mapping[int, FoldResult]) -> tuple[list, list]:
    """The other folds' test recordings, each read by its own fold's model: out-of-fold
    predictions of `fold`'s training and validation items, none of its test items."""
    mine = set(records[fold].items["test"])
    logits, targets = [], []
    for other, split in splits.items():
        if other != fold:
            if mine & set(records[other].items["test"]):
                raise SystemExit(f"folds {fold} and {other} share test items: no "
                                 "out-of-fold choice")
            logits += split["test"][0]
            targets += split["test"][1]
    return logits, targets


def rescore(exp_dir: Path, instance: int, store_path: Path) -> list[dict[str, Any]]:
    """One row per fold and variant: the chosen values and the test scores."""
    from preprocessing.store import FeatureStore  # noqa: PLC0415
    from xval.training.loading import load  # noqa: PLC0415  (imports keras)

    store = FeatureStore(store_path)
    layout = InstanceLayout.of_folder(exp_dir / f"instance_{instance}")
    if not layout.fold_files():
        raise SystemExit(f"{layout.root}: no fold records (fold_<i>.json); give an "
                         "experiment folder (results/<dataset>/experiment_<N>) and --instance "
                         "K of one of its instance_<K> folders.")
    folds = exp_dir / "folds.json"
    made_on = json.loads(folds.read_text()).get("dataset_hash") if folds.is_file() else None
    if made_on and made_on != store.content_hash:
        raise SystemExit(f"--store {store_path} holds other data (content hash "
                         f"{store.content_hash[:12]}) than the store {exp_dir} was run on "
                         f"({made_on[:12]}, its folds.json); give that store.")
    items = store.meta["item"].astype(str).to_numpy()
    records, splits = {}, {}
    for fold, path in sorted(layout.fold_files().items()):
        record, problem = ResultsStore().read_record(path, FoldResult.from_dict)
        if record is None or record.postprocessing is None:
            raise SystemExit(f"{path}: no fold record with a post-processing choice "
                             f"({problem or 'none chosen'}).")
        model = load(layout.fold_model(fold))
        records[fold] = record
        splits[fold] = {k: recordings(model, store, np.flatnonzero(np.isin(items, v)))
                        for k, v in record.items.items() if v}
    out = []
    classes = list(store.classes)
    for fold, record in records.items():
        split = splits[fold]
        for variant in VARIANTS:
            val = split["val"]
            if variant == "cross_fold":
                if len(records) < 2:
                    continue
                val = out_of_fold(fold, splits, records)
            values = choose("learned" if variant == "cross_fold" else variant, val,
                            split["train"][1], store.info.frame_seconds, classes,
                            record.postprocessing.values)
            test = window_scores(split["test"][1], split["test"][0], len(classes),
                                 tasks.get("detection").scoring.event_rules(values),
                                 store.info.frame_seconds, classes, psds=True)
            out.append({"experiment": str(exp_dir), "instance": instance, "fold": fold,
                        "variant": variant, "values": values,
                        "recorded_event_f1": (record.clip_metrics or {}).get(
                            "test", {}).get("event_f1"), "test": test})
    return out


def summary(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over folds per experiment and variant, then the error counts summed."""
    lines = []
    for exp in dict.fromkeys(r["experiment"] for r in rows):
        mine = [r for r in rows if r["experiment"] == exp]
        lines.append(f"{exp} ({len({r['fold'] for r in mine})} folds)")
        lines.append("| variant | " + " | ".join(SHOWN) + " | " + " | ".join(COUNTS) + " |")
        lines.append("|---" * (1 + len(SHOWN) + len(COUNTS)) + "|")
        for variant in VARIANTS:
            got = [r["test"] for r in mine if r["variant"] == variant]
            if not got:
                continue
            cells = [f"{np.mean([g[m] for g in got]):.3f} ± {np.std([g[m] for g in got], ddof=1) if len(got) > 1 else 0:.3f}"  # noqa: E501
                     for m in SHOWN]
            counts = [str(int(sum(g[f"events_{k}"] for g in got))) for k in COUNTS]
            lines.append(f"| {variant} | " + " | ".join(cells + counts) + " |")
    return "\n".join(lines)


def smoke() -> None:
    """The rescoring on a tiny store and an untrained model (a logit per frame) saved as
    two folds' models; then the refusals of another store's experiment and of an instance
    without records."""
    import keras  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from preprocessing.store import write_store  # noqa: PLC0415

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        frames, rows, y = 40, [], []
        for item in ("a", "b", "c", "d"):
            for w in range(2):
                rows.append({"item": item, "label": "event", "clip": f"{item}.wav",
                             "source": f"{item}.wav", "start": w * frames * 0.02})
                t = np.zeros((frames, 1), np.uint8)
                t[5:15] = t[20:26] = 1
                y.append(t)
        write_store(Path(tmp) / "s", rng.normal(size=(len(rows), frames, 8)),
                    pd.DataFrame(rows), task_type="detection", classes=["e"],
                    info={"feature_params": {"hop_length": 160, "sample_rate": 8000}},
                    arrays={"frame_targets.npy": np.stack(y)})
        layout = InstanceLayout(Path(tmp) / "exp" / "instance_1", 1)
        layout.root.mkdir(parents=True)
        inputs = keras.Input((frames, 8))  # a logit per frame, untrained
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        for fold, (train, val, test) in enumerate(((["a", "b"], ["c"], ["d"]),
                                                   (["c", "d"], ["a"], ["b"]))):
            keras.saving.save_model(model, layout.fold_model(fold))
            record = FoldResult(instance=1, fold=fold, status=Status.OK,
                                items={"train": train, "val": val, "test": test},
                                postprocessing=choose_rules(
                                    [np.asarray(t, float) for t in y[4:6]],
                                    [np.zeros((frames, 1))] * 2, 1, UNSET, 0.02, ["e"]))
            layout.fold_file(fold).write_text(json.dumps(seal(record.to_dict())))
        print(summary(rescore(layout.root.parent, 1, Path(tmp) / "s")))
        (layout.root.parent / "folds.json").write_text(json.dumps({"dataset_hash": "0" * 64}))
        for instance in (1, 2):  # folds made on another store; an instance with no records
            try:
                rescore(layout.root.parent, instance, Path(tmp) / "s")
            except SystemExit as refused:
                print(f"refused: {refused}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exp_dir", nargs="?", type=Path)
    parser.add_argument("--instance", type=int, default=1)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        smoke()
        return
    if args.summary:
        print(summary([json.loads(line) for line in args.out.read_text().splitlines()]))
        return
    if args.exp_dir is None or args.store is None:
        parser.error("give EXP_DIR and --store (or --summary, or --smoke)")
    rows = rescore(args.exp_dir, args.instance, args.store)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print(summary(rows))


if __name__ == "__main__":
    main()
