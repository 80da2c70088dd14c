"""Pretrained front ends (issue 28): Resemblyzer's speaker encoder against the librosa recipes.

Extracts, for every file of FSDD or RAVDESS (one thread):

- the frame-level states of the encoder's 4 layers (3 LSTM outputs and the per-frame
  projection) over the whole file, pooled per layer (mean, std);
- the recipe's librosa features pooled (log-mel and MFCC + deltas, mean and std): the
  same quick heads' baseline;
- with `--dvec`, Resemblyzer's own utterance embedding (needs `pip install
  webrtcvad-wheels`, which its package imports);

then scores quick heads (standardise + logistic regression or RBF SVM, C chosen on the
training items only by an inner group k-fold) on the folds: FSDD leave-one-speaker-out
(accuracy), RAVDESS actor-independent (the 5 folds of `experiments/exp4.py`, clip UAR), and
compares each with the best librosa recipe by the corrected resampled t-test.

    python -m benchmarks.pretrained_research extract fsdd --work /tmp/pt
    python -m benchmarks.pretrained_research heads fsdd --work /tmp/pt
    python -m benchmarks.pretrained_research throughput --work /tmp/pt

Nothing is written to the repository; the datasets are read from ../shared/datasets.
Figures measured with it: docs/pretrained.md.
"""

import argparse
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd

from benchmarks._common import SHARED
from preprocessing.audio import load_audio
from preprocessing.features import compute_features, window_starts
from preprocessing.features.encoders import ResemblyzerEncoder
from xval.folds import ItemKFold
from xval.report.stats import corrected_resampled_ttest

Files = tuple[list[Path], list[str], list[str]]
"""`(paths, labels, groups)`."""


def fsdd_files(root: Path) -> Files:
    """FSDD's recordings, digits and speakers."""
    files = sorted((root / "fsdd" / "recordings").glob("*.wav"))
    return files, [f.name.split("_")[0] for f in files], [f.name.split("_")[1] for f in files]


def ravdess_files(root: Path) -> Files:
    """RAVDESS speech files, emotions and actors (from its manifest)."""
    manifest = pd.read_csv(root / "ravdess" / "manifest.csv")
    files = [root / "ravdess" / "audio" / p for p in manifest["path"]]
    return (files, manifest["emotion"].astype(str).tolist(),
            [f"{a:02d}" for a in manifest["actor"]])


RECIPES: dict[str, dict[str, Any]] = {  # each dataset's librosa recipe (README)
    "fsdd": {"files": fsdd_files, "sample_rate": 8000, "n_fft": 512, "hop_length": 160,
             "n_mels": 40},
    "ravdess": {"files": ravdess_files, "sample_rate": 16000, "n_fft": 1024,
                "hop_length": 512, "n_mels": 64},
}
LAYERS = ("lstm1", "lstm2", "lstm3", "proj")


def _stats(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([x.mean(0), x.std(0)])


def _recipe_stats(path: Path, recipe: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The recipe's log-mel and 20 MFCC + deltas of one file, pooled (mean, std)."""
    y, _ = load_audio(path, sample_rate=recipe["sample_rate"], peak_normalize=True)
    mel = compute_features(y, sample_rate=recipe["sample_rate"], feature="mel",
                           n_mels=recipe["n_mels"], hop_length=recipe["hop_length"],
                           n_fft=recipe["n_fft"])
    mfcc = librosa.feature.mfcc(S=mel.T, n_mfcc=20)
    mfcc = np.concatenate([mfcc, librosa.feature.delta(mfcc, width=3)]).T
    return _stats(mel), _stats(mfcc)


def _dvec() -> Callable[[np.ndarray], np.ndarray]:
    """Resemblyzer's own utterance embedding (imports the package: needs webrtcvad)."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    voice = VoiceEncoder("cpu", verbose=False)
    return lambda y: voice.embed_utterance(preprocess_wav(y, 16000))


def extract(dataset: str, work: Path, limit: int | None = None, dvec: bool = False) -> None:
    """Extracts every representation of `dataset` into `work/<dataset>/`."""
    import torch

    torch.set_num_threads(1)
    recipe = RECIPES[dataset]
    files, labels, groups = recipe["files"](SHARED)
    files, labels, groups = files[:limit], labels[:limit], groups[:limit]
    out = work / dataset
    out.mkdir(parents=True, exist_ok=True)
    encoder = ResemblyzerEncoder(device="cpu")
    embed = _dvec() if dvec else None
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("mel_stats", "mfcc_stats",
                                                           "states_mean", "states_std", "dvec")}
    t0 = time.perf_counter()
    for path in files:
        y16, _ = load_audio(path, sample_rate=16000)
        states = encoder.states(y16[None], range(4))[0]  # (frames, 4, 256)
        pooled["states_mean"].append(states.mean(0).reshape(-1))
        pooled["states_std"].append(states.std(0).reshape(-1))
        mel, mfcc = _recipe_stats(path, recipe)
        pooled["mel_stats"].append(mel)
        pooled["mfcc_stats"].append(mfcc)
        if embed is not None:
            pooled["dvec"].append(embed(y16))
    for key, value in pooled.items():
        if value:
            np.save(out / f"{key}.npy", np.asarray(value, dtype=np.float32))
    info = {"files": [str(f) for f in files], "labels": labels, "groups": groups,
            "seconds": round(time.perf_counter() - t0, 1)}
    (out / "info.json").write_text(json.dumps(info, indent=1))


def ravdess_folds(groups: Sequence[str], labels: Sequence[str]) -> list[list[str]]:
    """The 5 actor folds of experiments/exp4.py: the tool's splitter (config.ini's seed and
    stratification) on the recipe store's rows (3 s segments, 1 s hop)."""
    manifest = pd.read_csv(SHARED / "ravdess" / "manifest.csv")
    rows_g: list[str] = []
    rows_y: list[str] = []
    for g, y, n in zip(groups, labels, manifest["frames_16k"]):
        k = len(window_starts(int(n), sample_rate=16000, segment_seconds=3.0,
                              hop_seconds=1.0, grid=512)[0])
        rows_g += [g] * k
        rows_y += [y] * k
    splits = ItemKFold(5, random_state=0).split_items(np.asarray(rows_g), np.asarray(rows_y))
    return [sorted(s["test"]) for s in splits]


def quick_heads(X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list[list[str]],
                head: str, metric: str) -> list[float]:
    """Standardise + classifier on pooled vectors; C chosen by an inner group k-fold on the
    training items only. Returns the score of every outer fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if head == "logreg":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        grid: dict[str, list[float]] = {"logisticregression__C": [0.01, 0.1, 1.0]}
    else:
        model = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale"))
        grid = {"svc__C": [1.0, 10.0, 100.0]}
    scores = []
    for test_items in folds:
        test = np.isin(groups, test_items)
        inner = GroupKFold(n_splits=min(5, len(set(groups[~test]))))
        search = GridSearchCV(model, grid, cv=inner, n_jobs=1,
                              scoring="balanced_accuracy" if metric == "uar" else "accuracy")
        search.fit(X[~test], y[~test], groups=groups[~test])
        pred = search.predict(X[test])
        scores.append(float(balanced_accuracy_score(y[test], pred) if metric == "uar"
                            else np.mean(pred == y[test])))
    return scores


def representations(folder: Path) -> dict[str, np.ndarray]:
    """The pooled representations `extract` wrote, by name."""
    mean, std = np.load(folder / "states_mean.npy"), np.load(folder / "states_std.npy")
    reps = {"recipe log-mel mean+std": np.load(folder / "mel_stats.npy"),
            "20 MFCC + deltas mean+std": np.load(folder / "mfcc_stats.npy")}
    if (folder / "dvec.npy").is_file():
        reps["Resemblyzer d-vector"] = np.load(folder / "dvec.npy")
    for k, name in enumerate(LAYERS):
        part = slice(k * 256, (k + 1) * 256)
        reps[f"{name} mean+std"] = np.concatenate([mean[:, part], std[:, part]], 1)
    reps["all 4 layers mean+std"] = np.concatenate([mean, std], 1)
    return reps


# The best librosa recipe per fold. FSDD: experiments/exp3.py instances 12, 17 and 18 (the
# shipped defaults on seeds 1 to 3, README), per test voice; their mean is the 0.865 figure.
FSDD_RECIPE = {"george": (0.88, 0.87, 0.75), "jackson": (0.98, 0.88, 0.86),
               "lucas": (0.95, 0.83, 0.88), "nicolas": (0.71, 0.75, 0.75),
               "theo": (0.94, 0.86, 0.90), "yweweler": (0.93, 0.91, 0.95)}
# RAVDESS: experiments/exp4.py instance 3's five test folds (README, sorted; the fold of
# actors 1, 9 and 15 is the 0.48 one, the others' order is not recorded).
RAVDESS_RECIPE = (0.48, 0.58, 0.64, 0.65, 0.68)
RATIO = {"fsdd": 1 / 4, "ravdess": 0.31}  # n_test / n_train of the recipes' folds


def compare(dataset: str, scores: Sequence[float]) -> dict[str, float]:
    """Nadeau and Bengio's corrected t-test of per-fold `scores` against the recipe's.

    FSDD pairs by test voice (the three seeds' mean per voice, voices sorted). RAVDESS:
    only fold 0's recipe score is known, so every order of the other four is tried and the
    range of p is returned."""
    a = np.asarray(scores, dtype=float)
    if dataset == "fsdd":
        recipe = np.array([np.mean(FSDD_RECIPE[v]) for v in sorted(FSDD_RECIPE)])
        test = corrected_resampled_ttest(a, recipe, RATIO[dataset])
        return {"difference": test.mean_difference, "p": test.p}
    tests = [corrected_resampled_ttest(a, np.array((RAVDESS_RECIPE[0], *rest)), RATIO[dataset])
             for rest in itertools.permutations(RAVDESS_RECIPE[1:])]
    return {"difference": float(np.mean([t.mean_difference for t in tests])),
            "p_min": float(min(t.p for t in tests)), "p_max": float(max(t.p for t in tests))}


def heads(dataset: str, work: Path, head_names: Sequence[str] = ("logreg", "svm")) -> None:
    """Scores the quick heads on every representation and writes `heads.json`."""
    folder = work / dataset
    info = json.loads((folder / "info.json").read_text())
    y, groups = np.asarray(info["labels"]), np.asarray(info["groups"])
    folds = ([[g] for g in sorted(set(groups))] if dataset == "fsdd"
             else ravdess_folds(groups.tolist(), y.tolist()))
    metric = "uar" if dataset == "ravdess" else "accuracy"
    results: dict[str, Any] = {"folds": folds, "metric": metric, "scores": {}}
    for (name, X), head in itertools.product(representations(folder).items(), head_names):
        scores = quick_heads(X, y, groups, folds, head, metric)
        results["scores"][f"{name} | {head}"] = {"folds": scores,
                                                 "vs_recipe": compare(dataset, scores)}
        print(f"{name:32s} {head:6s} {np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f} "
              f"{results['scores'][f'{name} | {head}']['vs_recipe']}", flush=True)
    (folder / "heads.json").write_text(json.dumps(results, indent=1))


def throughput(work: Path, n_files: int = 100) -> dict[str, float]:
    """Files per second on one thread: the 64-band mel (10 ms hop) and Resemblyzer's states
    (4 layers), file by file and batched over 1 s segments, on FSDD files at 16 kHz."""
    import torch

    torch.set_num_threads(1)
    files = fsdd_files(SHARED)[0][::max(1, 3000 // n_files)]
    signals = [load_audio(path, sample_rate=16000)[0] for path in files]
    encoder = ResemblyzerEncoder(device="cpu")
    params: dict[str, Any] = {"feature": "pretrained", "sample_rate": 16000, "hop_length": 160,
                              "device": "cpu", "batch_size": 16}
    steps: dict[str, Callable[[np.ndarray], Any]] = {
        "mel64_10ms": lambda y: compute_features(y, sample_rate=16000, n_mels=64,
                                                 hop_length=160, n_fft=512),
        "resemblyzer_per_file": lambda y: encoder.states(y[None], range(4)),
        "resemblyzer_1s_segments": lambda y: compute_features(
            np.stack([np.resize(y, 16000)] * 2), **params),
    }
    out = {}
    for key, step in steps.items():
        t = time.perf_counter()
        for y in signals:
            step(y)
        out[key] = round(len(signals) / (time.perf_counter() - t), 1)
    print(json.dumps(out, indent=1))
    (work / "throughput.json").write_text(json.dumps(out, indent=1))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("step", choices=("extract", "heads", "throughput"))
    parser.add_argument("dataset", nargs="?", choices=tuple(RECIPES), default="fsdd")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pretrained_research"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dvec", action="store_true",
                        help="also Resemblyzer's utterance embedding (needs webrtcvad)")
    parser.add_argument("--heads", nargs="*", default=["logreg", "svm"])
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.step == "throughput":
        throughput(args.work)
    elif args.step == "extract":
        extract(args.dataset, args.work, args.limit, args.dvec)
    else:
        heads(args.dataset, args.work, args.heads)


if __name__ == "__main__":
    main()
