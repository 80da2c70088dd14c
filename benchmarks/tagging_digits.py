"""A multi-label set from FSDD (issue 65): two or three spoken digits overlaid per clip, speakers
as items; and the baseline experiment 13 is measured against: one-vs-rest logistic
regression on a store's pretrained embeddings, on the experiment's own folds.

    python -m benchmarks.tagging_digits build --out data/raw/digit_tags
    python -m benchmarks.tagging_digits baseline results/digit_tags/experiment_13 \\
        --store data/digit_tags_aisfx

`build` reads the FSDD recordings (`{digit}_{speaker}_{take}.wav`, 8 kHz, found at
`../shared/datasets/fsdd/recordings` or `--fsdd`; never copied into the project) and writes,
for each of the 6 speakers, `--clips` clips of `--seconds` seconds: 2 or 3 different digits
(equally likely), each a take of that speaker not used before for that digit, trimmed of
its silence (`librosa.effects.trim`, 30 dB), scaled by a gain drawn in [-6, 0] dB and placed
at an offset drawn uniformly in the clip (so they overlap), the sum scaled to a peak of
0.9. Labels are the digits' names (`one;seven`); items the speakers.

    OUT/<speaker>/<speaker>_<k>.wav
    OUT/manifest.csv        path,label,item,clip,digits
    OUT/recipe.json         the parameters

`baseline` fits, per fold of the experiment (`folds.json`), a one-vs-rest logistic
regression (scikit-learn, standardised features) on the training items' rows of an
embedding store (each row's embedding frames pooled by their mean and maximum), chooses
its C on the validation items' mAP among `C_GRID`, and scores the test items' clips
(probabilities averaged over a clip's rows) with the tagging metrics of
`xval.tasks.tagging.metrics`, the F1 at per-label thresholds chosen on the validation clips:
the numbers beside the experiment's in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

from benchmarks._common import SHARED

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SR = 8000
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def _takes(fsdd: Path) -> dict[str, dict[int, list[Path]]]:
    """speaker -> digit -> its recordings, sorted."""
    found: dict[str, dict[int, list[Path]]] = {}
    for path in sorted(fsdd.glob("*.wav")):
        digit, speaker, _ = path.stem.split("_")
        found.setdefault(speaker, {}).setdefault(int(digit), []).append(path)
    if not found:
        raise SystemExit(f"error: no FSDD recordings in {fsdd}; give --fsdd FOLDER.")
    return found


def _clip(takes: dict[int, list[Path]], used: dict[int, int], rng: np.random.Generator,
          seconds: float) -> tuple[np.ndarray, list[int]]:
    """One clip: 2 or 3 different digits of one speaker overlaid at random offsets."""
    length = int(seconds * SR)
    digits = sorted(rng.choice(10, size=int(rng.integers(2, 4)), replace=False).tolist())
    mix = np.zeros(length)
    for digit in digits:
        path = takes[digit][used[digit] % len(takes[digit])]
        used[digit] += 1
        y, _ = librosa.load(path, sr=SR)
        y, _ = librosa.effects.trim(y, top_db=30)
        y = y[:length] / max(np.abs(y).max(), 1e-9) * 10 ** (rng.uniform(-6, 0) / 20)
        start = int(rng.integers(0, length - len(y) + 1))
        mix[start:start + len(y)] += y
    return 0.9 * mix / max(np.abs(mix).max(), 1e-9), digits


def build(out: Path, fsdd: Path, clips: int, seconds: float, seed: int) -> None:
    """Writes the set (see the module)."""
    rng = np.random.default_rng(seed)
    rows = []
    for speaker, takes in sorted(_takes(fsdd).items()):
        (out / speaker).mkdir(parents=True, exist_ok=True)
        order = {d: rng.permutation(len(p)).tolist() for d, p in takes.items()}
        shuffled = {d: [takes[d][i] for i in order[d]] for d in takes}
        used = dict.fromkeys(takes, 0)
        for k in range(clips):
            y, digits = _clip(shuffled, used, rng, seconds)
            name = f"{speaker}/{speaker}_{k:03d}.wav"
            sf.write(out / name, y.astype(np.float32), SR, subtype="PCM_16")
            rows.append({"path": name, "label": ";".join(DIGITS[d] for d in digits),
                         "item": speaker, "clip": name, "digits": len(digits)})
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    (out / "recipe.json").write_text(json.dumps(
        {"fsdd": str(fsdd), "clips_per_speaker": clips, "seconds": seconds, "seed": seed,
         "digits_per_clip": [2, 3], "gain_db": [-6, 0], "trim_db": 30}, indent=2) + "\n")
    counts = pd.Series([t for r in rows for t in r["label"].split(";")]).value_counts()
    print(f"Wrote {len(rows)} clips of {seconds:g} s ({len(set(r['item'] for r in rows))} "
          f"speakers, {np.mean([r['digits'] for r in rows]):.2f} digits per clip) to {out}; "
          f"clips per digit {counts.min()}-{counts.max()}.")


def pooled_rows(features: np.ndarray) -> np.ndarray:
    """Each row's embedding frames pooled by their mean and maximum."""
    x = np.asarray(features, dtype=np.float64)
    x = x.reshape(len(x), -1, x.shape[-1])
    return np.concatenate([x.mean(axis=1), x.max(axis=1)], axis=1)


def _by_clip(p: np.ndarray, y: np.ndarray, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities averaged over each clip's rows, and the clip's targets."""
    frame = pd.DataFrame(p).assign(clip=clips)
    mean = frame.groupby("clip", sort=True).mean()
    first = pd.DataFrame(y).assign(clip=clips).groupby("clip", sort=True).first()
    return mean.to_numpy(), first.to_numpy()


def baseline(exp_dir: Path, store_dir: Path) -> None:
    """Prints the baseline's test clip metrics per fold and their mean ± std."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from preprocessing.store import FeatureStore
    from xval.tasks.tagging import metrics as tm

    store = FeatureStore(store_dir)
    x, y = pooled_rows(store.features[:]), store.targets
    items, clips = store.items.astype(str), store.clips.astype(str)
    folds = json.loads((exp_dir / "folds.json").read_text())["folds"]
    started, scores = time.perf_counter(), []
    for i, fold in enumerate(folds):
        rows = {k: np.isin(items, fold[k]) for k in ("train", "val", "test")}

        def fit(c: float, rows: dict = rows) -> object:
            model = make_pipeline(StandardScaler(), OneVsRestClassifier(
                LogisticRegression(C=c, max_iter=2000)))
            return model.fit(x[rows["train"]], y[rows["train"]])

        def clip_scores(model: object, key: str, rows: dict = rows) -> tuple:
            return _by_clip(model.predict_proba(x[rows[key]]), y[rows[key]], clips[rows[key]])

        fitted = {c: fit(c) for c in C_GRID}
        best = max(C_GRID, key=lambda c: tm.mean_average_precision(
            *reversed(clip_scores(fitted[c], "val"))))
        p_val, y_val = clip_scores(fitted[best], "val")
        p_test, y_test = clip_scores(fitted[best], "test")
        metrics = tm.tagging_metrics(y_test, tm.logit(p_test),
                                     tm.choose_thresholds(y_val, p_val))
        scores.append(metrics)
        print(f"fold {i}: C {best:g}, test clips {len(y_test)}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items()))
    table = pd.DataFrame(scores)
    print(f"baseline (one-vs-rest logistic regression on {store_dir.name}, "
          f"{time.perf_counter() - started:.1f} s): " + ", ".join(
              f"{k} {table[k].mean():.4f} ± {table[k].std(ddof=1):.4f}" for k in table))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the multi-label set")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--fsdd", type=Path, default=SHARED / "fsdd" / "recordings")
    b.add_argument("--clips", type=int, default=40, help="clips per speaker (default: 40)")
    b.add_argument("--seconds", type=float, default=1.5, help="clip length (default: 1.5)")
    b.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("baseline", help="one-vs-rest logistic regression on embeddings")
    s.add_argument("experiment", type=Path, help="results/<dataset>/experiment_<N>")
    s.add_argument("--store", type=Path, required=True, help="an embedding store's folder")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.out, args.fsdd, args.clips, args.seconds, args.seed)
    else:
        baseline(args.experiment, args.store)


if __name__ == "__main__":
    main()
