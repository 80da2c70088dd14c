"""Label balance of the folds: item stratification methods compared on FSDD and RAVDESS.

No training, no audio decoding: the rows come from the file names (FSDD
`{digit}_{speaker}_{i}.wav`) and the manifest (RAVDESS `manifest.csv`), items are speakers
and actors. For every dataset and method, `ItemKFold(k, n_repeats=R)` splits R times
(different seeds) and the table gives, averaged over the repeats:

- test dev: the largest deviation, over folds and labels, of a test fold's label proportions
  from the overall ones (percentage points);
- val dev: the same for the validation sets against their training side;
- rows max/min: the largest test fold over the smallest (rows);
- missing: (fold, label) pairs where a label has no row in the test fold.

Methods: `False` (shuffled KFold over items), `"items"` (StratifiedKFold of each item's
majority label, the former default) and `"rows"` (scikit-learn's StratifiedGroupKFold for the
test folds, a greedy balanced pick for validation).

Besides the datasets as they are, whose items all hold the same label mix (every FSDD
speaker says every digit 50 times; every RAVDESS actor records every emotion 8 times, neutral
4), three derived label sets show where the methods differ: RAVDESS gender (one label per
actor), and seeded subsamples of FSDD and RAVDESS that keep 20-100% of each item's files per
label (uneven mixes, as in most real corpora).

    python -m benchmarks.fold_balance [--repeats 20]
"""

import argparse
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import SHARED
from xval.folds import ItemKFold, rows_of

Labelled = tuple[np.ndarray, np.ndarray]
"""`(groups, y)`: the item and the label of every row."""


def fsdd() -> Labelled:
    folder = SHARED / "fsdd" / "recordings"
    rows = [re.fullmatch(r"(\d)_([a-z]+)_\d+\.wav", p.name) for p in sorted(folder.glob("*.wav"))]
    table = pd.DataFrame([m.groups() for m in rows if m], columns=["label", "item"])
    return table["item"].to_numpy(str), table["label"].to_numpy(str)


def ravdess(column: str = "emotion") -> Labelled:
    table = pd.read_csv(SHARED / "ravdess" / "manifest.csv", dtype=str)
    return table["actor"].to_numpy(str), table[column].to_numpy(str)


def subsample(groups: np.ndarray, y: np.ndarray, seed: int = 0) -> Labelled:
    """Keeps a random 20-100% of every (item, label) cell's rows."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(groups), dtype=bool)
    for item in np.unique(groups):
        for label in np.unique(y):
            rows = np.flatnonzero((groups == item) & (y == label))
            n = max(1, int(round(rng.uniform(0.2, 1.0) * len(rows)))) if len(rows) else 0
            keep[rng.permutation(rows)[:n]] = True
    return groups[keep], y[keep]


def proportions(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([(y == label).mean() for label in labels]) if len(y) else \
        np.zeros(len(labels))


def measure(groups: np.ndarray, y: np.ndarray, n_splits: int, stratify: bool | str,
            repeats: int) -> dict[str, float]:
    labels = np.unique(y)
    overall = proportions(y, labels)
    splitter = ItemKFold(n_splits, stratify=stratify, n_repeats=repeats, random_state=0)
    folds = splitter.split_items(groups, y)
    test_dev: list[float] = []
    val_dev: list[float] = []
    ratio: list[float] = []
    missing = 0
    for start in range(0, len(folds), n_splits):
        repeat = folds[start:start + n_splits]
        tests = [rows_of(groups, f["test"]) for f in repeat]
        test_dev.append(max(np.abs(proportions(y[t], labels) - overall).max() for t in tests))
        sizes = [len(t) for t in tests]
        ratio.append(max(sizes) / min(sizes))
        missing += sum(int((proportions(y[t], labels) == 0).sum()) for t in tests)
        devs = []
        for f in repeat:
            side = proportions(y[rows_of(groups, f["train"] + f["val"])], labels)
            devs.append(np.abs(proportions(y[rows_of(groups, f["val"])], labels) - side).max())
        val_dev.append(max(devs))
    return {"test dev (pp)": 100 * float(np.mean(test_dev)),
            "val dev (pp)": 100 * float(np.mean(val_dev)),
            "rows max/min": float(np.mean(ratio)), "missing": missing / repeats}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="fold seeds per label set")
    parser.add_argument("--subsamples", type=int, default=5,
                        help="seeded subsamples per subsampled dataset")
    args = parser.parse_args(argv)
    if not (SHARED / "fsdd").is_dir() or not (SHARED / "ravdess").is_dir():
        raise SystemExit(f"The datasets are not in {SHARED}; see its README.")
    sub = range(args.subsamples)
    cases = [
        ("FSDD digits", [fsdd()], 3),
        ("FSDD digits", [fsdd()], 6),
        ("FSDD digits, subsampled", [subsample(*fsdd(), seed=s) for s in sub], 3),
        ("RAVDESS emotion", [ravdess()], 5),
        ("RAVDESS emotion, subsampled", [subsample(*ravdess(), seed=s) for s in sub], 5),
        ("RAVDESS emotion, subsampled", [subsample(*ravdess(), seed=s) for s in sub], 10),
        ("RAVDESS gender (per actor)", [ravdess("gender")], 5),
    ]
    records: list[dict[str, Any]] = []
    stratifications: tuple[bool | str, ...] = (False, "items", "rows")
    for name, variants, k in cases:
        for stratify in stratifications:
            record = {"dataset": name, "items": len(set(variants[0][0])),
                      "rows": int(np.mean([len(g) for g, _ in variants])), "folds": k,
                      "stratify": str(stratify)}
            measured = [measure(g, y, k, stratify, args.repeats) for g, y in variants]
            record.update({key: np.mean([m[key] for m in measured]) for key in measured[0]})
            records.append(record)
    table = pd.DataFrame(records)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nMeans over {args.repeats} fold seeds (x {args.subsamples} subsamples where "
          "subsampled); missing: (fold, label) pairs per repeat.")


if __name__ == "__main__":
    main()
