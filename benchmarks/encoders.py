"""Encoders whose weights ship in wheels (issue 33): quick probes on their stores, and the
table of an experiment's heads against a baseline.

`probe` reads a feature store of block embeddings (`python -m preprocessing ... --encoders
aisfx`), pools every clip's blocks (mean and max over all the blocks of all its segments),
and scores a standardised logistic regression per fold, `C` chosen by an inner group k-fold
over the training items only; the folds are the engine's (`ItemKFold` with config.ini's
`[folds]` settings), so a probe's folds are an experiment's folds on the same items.

`table` reads experiments' results and prints, per instance, the test score as mean ± std
over the folds, per fold, and the corrected resampled t-test (Nadeau and Bengio) against a
baseline instance, the folds paired by their test items.

    python -m benchmarks.encoders probe fsdd_aisfx fsdd_birdnet --folds 6
    python -m benchmarks.encoders probe ravdess_aisfx --folds 5 --metric uar
    python -m benchmarks.encoders table results/fsdd_aisfx/experiment_10 \\
        --baseline results/fsdd/experiment_3/instance_12 --metric accuracy

`against` reads an experiment's instances on encoder stores (`init`'s, issue 75) and scores
the same probe on each instance's own store and the experiment's own folds (`folds.json`):
accuracy for classes (as `probe`), and for tags a one-vs-rest regression, `C` chosen on the
validation items by their clip mAP and refit on training + validation items (as the
instance's head with `refit_with_val`); it prints the head's test clip score, the probe's,
their difference and the corrected resampled t-test's p (issue 75: "no row below the linear
probe on its own encoder"):

    python -m benchmarks.encoders against results/fsdd600/experiment_1 --instances 1 2 3

`speed` builds stores of the same N files (the first N of a folder, sorted) with the 64-band
log-mel of config.ini (the baseline, in the same run) and with each encoder named, each in a
fresh process with `--workers` threads, and prints the extraction time per 1,000 files (the
build's own `extraction_seconds`: decoding, resampling, the encoder; not the imports), files
and encoder blocks per second, the ratio to the mel, and the store's bytes per file:

    python -m benchmarks.encoders speed ../shared/datasets/ravdess/audio --files 200 \
        --encoders aisfx birdnet --workers 2

Nothing is written to the repository; stores are read from config.ini's data_dir (`speed`
writes its stores to a temporary folder).
Figures measured with it: docs/pretrained.md and docs/results.md.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.tagging_digits import pooled_rows
from preprocessing.store import FeatureStore
from xval.config.loader import find_config, load_config
from xval.folds import ItemKFold
from xval.report.comparison import finished_folds, fold_scores
from xval.report.results import InstanceResult
from xval.report.stats import corrected_resampled_ttest

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
METRICS = {"accuracy": accuracy_score, "uar": balanced_accuracy_score}


def clip_vectors(store: FeatureStore) -> pd.DataFrame:
    """One vector per clip: the mean and the max of all its blocks (every segment's).

    Args:
        store: a store of `(blocks, dim)` rows.

    Returns:
        `pandas.DataFrame` with `clip`, `item`, `label` and `x` (`np.ndarray [shape=(2 *
        dim,)]`), original rows only (augmented rows are training-only copies).
    """
    meta = store.meta.reset_index(drop=True)
    keep = ~meta["augmented"].astype(bool) if "augmented" in meta else np.ones(len(meta), bool)
    out = []
    for clip, rows in meta[keep].groupby("clip", sort=False):
        x = np.asarray(store.features[rows.index.to_numpy()], dtype=np.float32)
        x = x.reshape(-1, x.shape[-1])
        out.append({"clip": clip, "item": str(rows["item"].iloc[0]),
                    "label": str(rows["label"].iloc[0]),
                    "x": np.concatenate([x.mean(0), x.max(0)])})
    return pd.DataFrame(out)


def probe_folds(clips: pd.DataFrame, folds: list[dict[str, list[str]]], metric: str,
                seed: int = 0) -> list[dict[str, Any]]:
    """The logistic-regression probe on every fold.

    Args:
        clips: `clip_vectors`.
        folds: the engine's folds (`train`, `val`, `test` items); the probe trains on the
            training and validation items (`C` is chosen by an inner group k-fold on them).
        metric: `accuracy` or `uar`.
        seed: the regression's random state.

    Returns:
        One dict per fold: `test_items`, `score`, `C`.
    """
    X = np.stack(clips["x"].to_numpy())
    y, groups = clips["label"].to_numpy(), clips["item"].to_numpy()
    out = []
    for fold in folds:
        train = np.isin(groups, list(fold["train"]) + list(fold.get("val", [])))
        test = np.isin(groups, list(fold["test"]))
        inner = min(5, len(set(groups[train])))
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000,
                                                               random_state=seed)),
            {"logisticregression__C": list(C_GRID)}, cv=GroupKFold(inner),
            scoring="balanced_accuracy")
        search.fit(X[train], y[train], groups=groups[train])
        score = METRICS[metric](y[test], search.predict(X[test]))
        out.append({"test_items": sorted(fold["test"]), "score": float(score),
                    "C": search.best_params_["logisticregression__C"]})
    return out


def item_folds(items: np.ndarray, labels: np.ndarray, num_folds: int,
               config_path: str | None = None) -> list[dict[str, list[str]]]:
    """The folds an experiment over rows of `items` and `labels` with `num_folds` would use
    (config.ini's `[folds]` settings; stratified by the items' labels)."""
    config = load_config(config_path or find_config())
    settings = config.folds
    splitter = ItemKFold(num_folds, val_fraction=settings["val_fraction"],
                         test_fraction=settings["test_fraction"],
                         stratify=settings["stratify"], random_state=settings["fold_seed"])
    return splitter.split_items(items, labels)


def engine_folds(store: FeatureStore, num_folds: int, config_path: str | None
                 ) -> list[dict[str, list[str]]]:
    """The folds an experiment on `store` with `num_folds` would use (see `item_folds`)."""
    return item_folds(store.items, store.meta["label"].astype(str).to_numpy(), num_folds,
                      config_path)


def _summary(scores: Sequence[float]) -> str:
    return f"{np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f}"


def probe(args: argparse.Namespace) -> None:
    config = load_config(args.config or find_config())
    for name in args.stores:
        store = FeatureStore(Path(config.data_dir) / name)
        folds = engine_folds(store, args.folds, args.config)
        clips = clip_vectors(store)
        results = probe_folds(clips, folds, args.metric)
        scores = [r["score"] for r in results]
        per_fold = " ".join(f"{'+'.join(r['test_items'])}:{r['score']:.3f}" for r in results)
        print(f"{name}: {len(clips)} clips, dim {len(clips['x'].iloc[0])}; probe "
              f"{args.metric} {_summary(scores)}  [{per_fold}]  C {[r['C'] for r in results]}")


def _instance_folds(instance: Path, metric: str) -> dict[str, float]:
    """Test clip score per finished fold of an instance, keyed by the fold's test items (read
    through the project's results reader)."""
    name = {"accuracy": "accuracy", "uar": "recall", "probe_accuracy": "embedding_accuracy",
            "probe_uar": "embedding_recall"}[metric]
    result = InstanceResult(instance)
    folds = finished_folds(result)
    scores = fold_scores(result, name, "test", "clip")
    return {"+".join(sorted(map(str, folds[i].items["test"]))): v for i, v in scores.items()}


def _versus(folds: dict[str, float], base: dict[str, float], num_folds: int | None = None
            ) -> tuple[float, float, int] | None:
    """`folds` against `base` over the folds both scored (keyed by their test items): the
    mean paired difference, the corrected resampled t-test's p and how many folds paired
    (`None` under two). Its test/train ratio is `1 / (num_folds - 1)`, or from the paired
    folds' count when `num_folds` is `None`."""
    paired = [key for key in folds if key in base]
    if len(paired) < 2:
        return None
    a = np.array([folds[key] for key in paired])
    b = np.array([base[key] for key in paired])
    ratio = 1 / ((num_folds or len(paired)) - 1)
    test = corrected_resampled_ttest(a, b, test_train_ratio=ratio)
    return float(np.mean(a - b)), float(test.p), len(paired)


def table(args: argparse.Namespace) -> None:
    baseline = _instance_folds(Path(args.baseline), args.metric) if args.baseline else {}
    for pair in (args.baseline_values or "").split(","):
        if pair:
            items, score = pair.split("=")
            baseline[items] = float(score)
    for experiment in args.experiments:
        for instance in sorted(Path(experiment).glob("instance_*"),
                               key=lambda p: int(p.name.split("_")[1])):
            folds = _instance_folds(instance, args.metric)
            if not folds:
                continue
            comments = InstanceResult(instance).comments()
            line = (f"{instance.name} ({', '.join(map(str, comments))})"
                    f": {_summary(list(folds.values()))} "
                    f"[{' '.join(f'{v:.2f}' for v in folds.values())}]")
            versus = _versus(folds, baseline)
            if versus:
                line += f"  vs baseline {versus[0]:+.3f}, p = {versus[1]:.3f}"
            print(line)


def _tag_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
               fold: dict[str, list[str]]) -> float:
    """Test clip mAP of a one-vs-rest regression: `C` by the validation items' mAP, then
    refit on training + validation items."""
    from sklearn.metrics import average_precision_score
    from sklearn.multiclass import OneVsRestClassifier

    rows = {k: np.isin(groups, list(fold.get(k, []))) for k in ("train", "val", "test")}

    def fit(c: float, train: np.ndarray) -> Any:
        return make_pipeline(StandardScaler(), OneVsRestClassifier(
            LogisticRegression(C=c, max_iter=3000))).fit(x[train], y[train])

    def score(model: Any, test: np.ndarray) -> float:
        keep = y[test].any(axis=0)  # labels without a positive clip have no AP
        p = model.predict_proba(x[test])
        return float(average_precision_score(y[test][:, keep], p[:, keep], average="macro"))

    best = max(C_GRID, key=lambda c: score(fit(c, rows["train"]), rows["val"]))
    return score(fit(best, rows["train"] | rows["val"]), rows["test"])


def against(args: argparse.Namespace) -> None:
    from xval.core.records import FoldsManifest

    config = load_config(args.config or find_config())
    experiment = Path(args.experiment)
    if not (experiment / "folds.json").is_file():
        raise SystemExit(f"{experiment}: no folds.json; expected an experiment's results folder "
                         "(results/<dataset>/experiment_<N>) whose folds have been made.")
    manifest = FoldsManifest.from_dict(json.loads((experiment / "folds.json").read_text()))
    num_folds = len(manifest.folds)
    missing = [k for k in args.instances if not (experiment / f"instance_{k}").is_dir()]
    if missing:
        raise SystemExit(f"--instances {missing}: {experiment} holds no such instance; run "
                         "them first, or name others.")
    stores = {k: _encoder_store(experiment, k, config) for k in args.instances}
    for instance_id in args.instances:
        result = InstanceResult(experiment / f"instance_{instance_id}")
        dataset, store = stores[instance_id]
        tags = store.task_type == "tagging"
        metric = "map" if tags else "accuracy"
        clips = clip_vectors(store) if not tags else None
        scores = {}
        if tags:
            x = pooled_rows(store.features[:])
            for fold in manifest.folds:
                key = "+".join(sorted(map(str, fold["test"])))
                scores[key] = _tag_probe(x, np.asarray(store.targets), store.items.astype(str),
                                         fold)
        else:
            for r in probe_folds(clips, manifest.folds, "accuracy"):
                scores["+".join(r["test_items"])] = r["score"]
        result_folds = finished_folds(result)
        head = {"+".join(sorted(map(str, result_folds[i].items["test"]))): v
                for i, v in fold_scores(result, metric, "test", "clip").items()}
        versus = _versus(head, scores, num_folds)
        line = (f"instance {instance_id} ({dataset}): head {metric} "
                f"{_summary(list(head.values()))}, probe {_summary(list(scores.values()))}")
        if versus:
            line += f", head - probe {versus[0]:+.3f} (p {versus[1]:.2f}, {versus[2]} folds)"
        print(line, flush=True)


def _encoder_store(experiment: Path, instance_id: int, config: Any
                   ) -> tuple[str, FeatureStore]:
    """The store instance `instance_id` of `experiment` read, and its name, when it holds an
    encoder's embeddings (one encoder's, or several side by side): the probe's input.

    Raises:
        SystemExit: naming an instance that is an ensemble or reads another store (the
            audio CNN's log-mel): a probe of its features would be no probe of an encoder.
    """
    result = InstanceResult(experiment / f"instance_{instance_id}")
    if result.ensemble is not None:
        raise SystemExit(f"--instances {instance_id}: instance {instance_id} is an ensemble "
                         "of instances, which reads no store; name the instances on encoder "
                         "stores.")
    dataset = result.parameters.dataset or experiment.resolve().parent.name  # its folder
    store = FeatureStore(Path(config.data_dir) / dataset)
    if not store.info.encoded_by:
        params = store.info.feature_params
        raise SystemExit(
            f"--instances {instance_id}: instance {instance_id} reads the store {dataset}, "
            f"which holds no encoder's embeddings ({params.feature if params else 'its own'} "
            "features); the probe is a linear "
            "model of an encoder's embeddings, so only the instances on encoder stores have "
            "one to be compared with (init's first instances). Leave it out.")
    return dataset, store


def _build(csv: Path, out: Path, workers: int, extra: Sequence[str]) -> dict[str, Any]:
    """Builds one store in a fresh process and returns its `dataset.json`."""
    subprocess.run([sys.executable, "-m", "preprocessing", "manifest", str(csv), "--out",
                    str(out), "--workers", str(workers), "--no-progress", "-q", *extra],
                   check=True)
    return json.loads((out / "dataset.json").read_text())


def speed(args: argparse.Namespace) -> None:
    audio = Path(args.audio).resolve()
    files = sorted(p for p in audio.rglob("*") if p.suffix.lower() in (".wav", ".flac",
                                                                        ".ogg", ".mp3"))
    files = files[:args.files]
    if not files:
        raise SystemExit(f"no audio files under {audio}")
    with tempfile.TemporaryDirectory(prefix="xval-speed-") as tmp:
        csv = Path(tmp) / "manifest.csv"
        pd.DataFrame({"path": [str(f.relative_to(audio)) for f in files],
                      "label": [f"c{i % 2}" for i in range(len(files))],
                      "item": [str(i) for i in range(len(files))]}).to_csv(csv, index=False)
        runs = [("mel (64 bands)", ["--feature", "mel"])]
        runs += [(name, ["--encoders", name]) for name in args.encoders]
        base = None
        print(f"{len(files)} files from {audio}, {args.workers} worker(s)")
        print("store | s per 1000 files | files/s | rows/s | vs mel | bytes per file")
        for name, extra in runs:
            out = Path(tmp) / name.split()[0]
            info = _build(csv, out, args.workers, [*extra, "--root", str(audio)])
            seconds = float(info["extraction_seconds"])
            size = (out / "features.npy").stat().st_size
            base = seconds if base is None else base
            print(f"{name} | {1000 * seconds / len(files):.0f} | {len(files) / seconds:.1f} | "
                  f"{int(info['n_rows']) / seconds:.1f} | {seconds / base:.1f}x | "
                  f"{size / len(files):,.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encoders",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe", help="logistic regression on pooled block embeddings")
    p.add_argument("stores", nargs="+", help="store names under config.ini's data_dir")
    p.add_argument("--folds", type=int, required=True)
    p.add_argument("--metric", choices=sorted(METRICS), default="accuracy")
    p.add_argument("--config")
    p = sub.add_parser("table", help="experiments' instances against a baseline instance")
    p.add_argument("experiments", nargs="+")
    p.add_argument("--baseline", help="an instance folder on the same items")
    p.add_argument("--metric", default="accuracy",
                   choices=["accuracy", "uar", "probe_accuracy", "probe_uar"])
    p.add_argument("--baseline-values", help="the baseline's test score per fold, as "
                   "ITEMS=SCORE,... (e.g. scores published in docs/results.md)")
    p = sub.add_parser("against", help="an experiment's encoder instances against the "
                       "probe on their stores and folds")
    p.add_argument("experiment", help="an experiment's results folder")
    p.add_argument("--instances", type=int, nargs="+", required=True)
    p.add_argument("--config")
    p = sub.add_parser("speed", help="extraction time per 1,000 files against the mel")
    p.add_argument("audio", help="a folder of audio files")
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--encoders", nargs="+", default=["aisfx"])
    p.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    {"probe": probe, "table": table, "speed": speed, "against": against}[args.command](args)


if __name__ == "__main__":
    main()
