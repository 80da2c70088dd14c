"""Instances of one or several experiments compared pair by pair: `python -m xval compare`.

Every instance named (`EXP_DIR` for all of an experiment's instances, `EXP_DIR:K` for one;
two at least) is read through `ExperimentResults`; its test scores of the headline metric,
fold by fold, are paired with every other instance's on the same folds. Experiments whose
fold manifests (`folds.json`) differ are refused (not the same folds: not pairable); with
`allow_different_folds` they are compared unpaired (Welch's t-test, a rough guide, said
so), and pairs on different datasets not at all.

For every paired pair: the corrected resampled t-test (Nadeau & Bengio; Bouckaert & Frank
for repeats), its p-value adjusted with Holm's method over every pair compared, and the
Bayesian correlated t-test's P(A better), P(equivalent), P(B better) for a ROPE in the
metric's units. Over datasets, instances present in all are ranked (Friedman + Nemenyi).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from xval.config.loader import Config
from xval.config.selection import metric_direction, selection_metric
from xval.core.errors import ConfigurationError
from xval.core.hashing import FOLD_FIX
from xval.core.layout import check_experiment_folder
from xval.core.records import FoldsManifest
from xval.report.bayesian import correlated_bayesian_ttest
from xval.report.ranking import Ranking, friedman_nemenyi
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import (
    corrected_repeated_ttest,
    finished_folds,
    fold_grid,
    fold_scores,
    fold_test_train_ratio,
    holm,
)

DEFAULT_ROPE = 0.01
"""Half-width of the region of practical equivalence, in the metric's units."""


class FoldsMismatchError(ConfigurationError):
    """Experiments compared as paired whose fold manifests differ."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One `EXP_DIR[:INSTANCE]` argument."""

    path: Path
    instance: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """`results/demo/experiment_1` or `results/demo/experiment_1:3` (a ConfigurationError
        when the part after the last `:` is not an instance id)."""
        head, sep, tail = text.rpartition(":")
        if not sep or "/" in tail or "\\" in tail or not head:
            return cls(Path(text))
        if not tail.isdigit() or int(tail) < 1:
            raise ConfigurationError(f"{text!r}: expected EXP_DIR or EXP_DIR:INSTANCE with "
                                     f"an instance id >= 1, got {tail!r} after the ':'.")
        return cls(Path(head), int(tail))


@dataclasses.dataclass
class Entry:
    """One instance compared."""

    label: str
    dataset: str
    manifest: FoldsManifest
    instance: InstanceResult
    scores: dict[int, float]
    mean: float | None
    std: float | None


@dataclasses.dataclass
class ComparedPair:
    """The comparison of two entries, `a - b` (positive: `a` scores higher)."""

    a: str
    b: str
    paired: bool
    folds: int
    difference: float
    ci_low: float
    ci_high: float
    t: float
    p: float
    p_holm: float = float("nan")
    better: float = float("nan")
    equivalent: float = float("nan")
    worse: float = float("nan")
    verdict: str = ""


@dataclasses.dataclass
class Comparison:
    """What `compare` found: the entries, the pairs, the ranking and notes."""

    metric: str
    level: str
    rope: float
    alpha: float
    higher_is_better: bool
    entries: list[Entry]
    pairs: list[ComparedPair]
    ranking: Ranking | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def check_rope(rope: float) -> float:
    """`rope` when it is a half-width > 0 (else a ConfigurationError)."""
    if not (isinstance(rope, (int, float)) and math.isfinite(rope) and rope > 0):
        raise ConfigurationError(f"--rope {rope}: expected a half-width > 0 in the metric's "
                                 f"units, e.g. {DEFAULT_ROPE} (one point of accuracy).")
    return float(rope)


def read_targets(targets: Sequence[Target]) -> dict[Path, ExperimentResults]:
    """Every experiment named, read once; every folder and instance checked first.

    Raises:
        ConfigurationError: for a folder that is not an experiment's, one without
            `folds.json`, an instance it does not hold, or results of a task not registered
            here (`ExperimentResults.check_task`).
    """
    read: dict[Path, ExperimentResults] = {}
    for target in targets:
        check_experiment_folder(target.path)
        key = target.path.resolve()
        if key not in read:
            read[key] = ExperimentResults(target.path)
            read[key].check_task()
        results = read[key]
        if results.manifest is None:
            raise ConfigurationError(f"{target.path} has no folds.json, so its folds cannot "
                                     "be checked; compare experiments that have run.")
        if target.instance is not None and target.instance not in results.instances:
            raise ConfigurationError(
                f"{target.path}:{target.instance}: no instance {target.instance} there; its "
                f"instances are {sorted(results.instances) or 'none'}.")
    return read


def _check_two(targets: Sequence[Target], read: dict[Path, ExperimentResults]) -> None:
    """Refuses a comparison of fewer than two instances (`EXP:1` alone): ConfigurationError."""
    named = {(t.path.resolve(), r.id) for t in targets for r in (
        [read[t.path.resolve()][t.instance]] if t.instance is not None
        else list(read[t.path.resolve()]))}
    if len(named) < 2:
        given = " ".join(f"{t.path}:{t.instance}" if t.instance is not None else str(t.path)
                         for t in targets)
        raise ConfigurationError(f"{given} names {len(named)} instance(s); compare needs two "
                                 "or more: name another instance (EXP_DIR:K) or a whole "
                                 "experiment folder.")


def check_folds(read: dict[Path, ExperimentResults], allow_different: bool) -> None:
    """Refuses experiments whose fold manifests differ, unless `allow_different`.

    Raises:
        FoldsMismatchError: naming the first two experiments that differ and why.
    """
    items = [(path, r.manifest) for path, r in read.items() if r.manifest is not None]
    first_path, first = items[0]
    for path, manifest in items[1:]:
        if manifest.hash != first.hash and not allow_different:
            raise FoldsMismatchError(
                f"{_name(first_path)} and {_name(path)} have different fold manifests "
                f"(folds.json hash {first.hash[:12]} vs {manifest.hash[:12]}): their scores "
                "are not on the same folds, so they cannot be paired; compare experiments "
                "run on the same folds, or pass --allow-different-folds for an unpaired "
                "comparison.")


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _metric(read: dict[Path, ExperimentResults], metric: str | None,
            config: Config | None) -> str:
    found = {r.task_type for r in read.values()}
    if metric is None:
        if len(found) > 1:
            raise ConfigurationError(f"The experiments are of different tasks ({sorted(found)})"
                                     "; name the metric to compare with --metric.")
        metric = selection_metric(config, found.pop())
    if not any(i.metric(metric, "test", level) is not None for r in read.values()
               for i in r for level in ("segment", "clip")):
        raise ConfigurationError(f"--metric {metric}: no instance of these experiments has "
                                 "test scores of it; name one they record.")
    return metric


def _entries(targets: Sequence[Target], read: dict[Path, ExperimentResults], metric: str,
             level: str, notes: list[str]) -> list[Entry]:
    entries: dict[tuple[Path, int], Entry] = {}
    for target in targets:
        results = read[target.path.resolve()]
        manifest = results.manifest
        assert manifest is not None  # read_targets checked it
        chosen = [results[target.instance]] if target.instance is not None else list(results)
        for r in (r for r in chosen if (target.path.resolve(), r.id) not in entries):
            label, scores = f"{_name(target.path)}:{r.id}", fold_scores(r, metric, "test", level)
            notes += [f"{label} fold {i} left out: {reason}; {FOLD_FIX}."
                      for i, reason in sorted(r.invalid.items())]
            if len(scores) < 2:
                notes.append(f"{label} left out: {len(scores)} fold(s) with a test {metric} "
                             f"({r.status}).")
                continue
            values = np.array(list(scores.values()))
            entries[(target.path.resolve(), r.id)] = Entry(
                label, manifest.dataset_hash or target.path.parent.name, manifest, r, scores,
                float(values.mean()), float(values.std(ddof=1)))
    return list(entries.values())


def _paired(a: Entry, b: Entry, rope: float, alpha: float, higher: bool) -> ComparedPair:
    """The corrected t-test and the Bayesian correlated t-test on the common folds."""
    first, second, common = fold_grid(a.scores, b.scores, a.manifest.num_repeats,
                                      a.manifest.num_folds)
    folds = [finished_folds(e.instance)[i] for e in (a, b) for i in common]
    ratio = fold_test_train_ratio(folds)
    ratio = ratio if math.isfinite(ratio) else 0.0
    test = corrected_repeated_ttest(first, second, ratio, confidence=1 - alpha)
    pair = ComparedPair(a.label, b.label, True, len(common), test.mean_difference, test.ci_low,
                test.ci_high, test.t, test.p)
    if len(common) >= 2:
        bayes = correlated_bayesian_ttest(first, second, rope, ratio)
        pair.better, pair.equivalent, pair.worse = bayes if higher \
            else (bayes.worse, bayes.equivalent, bayes.better)
    return pair


def _unpaired(a: Entry, b: Entry, alpha: float) -> ComparedPair:
    """Welch's t-test of the two entries' fold scores (folds taken as independent)."""
    x, y = np.array(list(a.scores.values())), np.array(list(b.scores.values()))
    difference = float(x.mean() - y.mean())
    if x.var() == 0 and y.var() == 0:  # constant scores: no spread to test against
        t, p = (0.0, 1.0) if difference == 0 else (math.copysign(math.inf, difference), 0.0)
        return ComparedPair(a.label, b.label, False, min(len(x), len(y)), difference, difference,
                    difference, t, p)
    with warnings.catch_warnings():  # one group constant: scipy warns of its moments
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_ind(x, y, equal_var=False)
        ci = result.confidence_interval(1 - alpha)
    return ComparedPair(a.label, b.label, False, min(len(x), len(y)), difference, float(ci.low),
                float(ci.high), float(result.statistic), float(result.pvalue))


def _verdict(pair: ComparedPair, alpha: float, higher: bool) -> str:
    if not math.isfinite(pair.p_holm):
        return "too few common folds"
    kind = "" if pair.paired else " (unpaired: different folds)"
    if pair.p_holm >= alpha:
        return f"no significant difference{kind}"
    a_wins = (pair.difference > 0) == higher
    return f"{pair.a if a_wins else pair.b} better{kind}"


def _ranking(entries: list[Entry], read: dict[Path, ExperimentResults], alpha: float,
             higher: bool, notes: list[str]) -> Ranking | None:
    """Friedman + Nemenyi over experiments on different datasets, of the instance ids
    every one of them holds; `None` (with a note when it was close) otherwise."""
    by_experiment: dict[str, dict[int, Entry]] = {}
    for e in entries:
        by_experiment.setdefault(e.label.rsplit(":", 1)[0], {})[e.instance.id] = e
    datasets = {next(iter(group.values())).dataset for group in by_experiment.values()}
    if len(by_experiment) < 2 or len(datasets) < len(by_experiment):
        return None
    ids = sorted(set.intersection(*(set(group) for group in by_experiment.values())))
    if len(ids) < 3:
        notes.append("No ranking over datasets: it needs at least 3 instance ids present in "
                     f"every experiment (common: {ids or 'none'}).")
        return None
    table = np.array([[group[i].mean for i in ids] for group in by_experiment.values()],
                     dtype=float)
    ranking = friedman_nemenyi(table, [f"instance {i}" for i in ids], alpha=alpha,
                               higher_is_better=higher)
    notes.append(f"Instances are matched across experiments by id; each experiment (one "
                 f"dataset each, {len(by_experiment)}) ranks them by mean test score.")
    return ranking


def compare(targets: Sequence[Target], *, metric: str | None = None,
            rope: float = DEFAULT_ROPE, alpha: float = 0.05,
            allow_different_folds: bool = False, config: Config | None = None) -> Comparison:
    """Compares every instance named, pair by pair (see the module).

    Args:
        targets: the experiments (all their instances) and instances to compare.
        metric: the metric compared (test scores); `None`: the experiments' selection
            metric (`[report] selection_metric`, else the task's).
        rope: half-width of the region of practical equivalence, in the metric's units.
            Defaults to `DEFAULT_ROPE` (0.01).
        alpha: significance level of the Holm-adjusted tests and of the ranking.
        allow_different_folds: compare experiments whose fold manifests differ, unpaired.
        config: the `Config` the selection metric is read from, or `None`.

    Returns:
        A `Comparison`.

    Raises:
        ConfigurationError: for a bad ROPE, a folder that is not an experiment's, an
            instance it does not hold, fewer than two instances named, an unknown metric
            (all before anything is computed); `FoldsMismatchError` when fold manifests
            differ and `allow_different_folds` is not set.
    """
    rope = check_rope(rope)
    if not targets:
        raise ConfigurationError("Name at least one experiment folder to compare.")
    read = read_targets(targets)
    _check_two(targets, read)
    check_folds(read, allow_different_folds)
    metric = _metric(read, metric, config)
    level = "clip" if all(r.auto_level(metric, "test") == "clip" for r in read.values()) \
        else "segment"
    higher = metric_direction(metric) == "max"
    notes: list[str] = []
    entries = _entries(targets, read, metric, level, notes)
    pairs = []
    skipped = 0
    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            if a.dataset != b.dataset:
                skipped += 1
            elif a.manifest.hash == b.manifest.hash:
                pairs.append(_paired(a, b, rope, alpha, higher))
            else:
                pairs.append(_unpaired(a, b, alpha))
    if skipped:
        notes.append(f"{skipped} pair(s) on different datasets not compared (their scores "
                     "are not on the same data).")
    for pair, adjusted in zip(pairs, holm([p.p for p in pairs])):
        pair.p_holm = float(adjusted)
        pair.verdict = _verdict(pair, alpha, higher)
    if len(entries) < 2:
        notes.append(f"No pair compared: {len(entries)} instance(s) have a test {metric} on "
                     "two folds or more; finish the others (rerun their experiments).")
    comparison = Comparison(metric, level, rope, alpha, higher, entries, pairs, notes=notes)
    comparison.ranking = _ranking(entries, read, alpha, higher, notes)
    return comparison
