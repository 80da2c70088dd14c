"""What the workbook and the terminal table share: the selection, the headline metrics and
levels, the note saying what to report, and how an instance's state reads.

Everything here reads the typed results (`xval.report.results`), never a file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import xval.config.embedding as embedding
from xval import tasks
from xval.config.loader import Config
from xval.config.selection import metric_direction, selection_metric
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.selection import DEFAULT_ORDER, RowRanking, preference_of, rank_rows
from xval.report.validation import invalid_note

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test",
               "rank": "ranking validation"}
RANK = "rank"
"""The split of the validation items that pick no epoch (`rank_split`)."""
WHY_VAL = ("Ranked on the validation items that also chose each instance's epoch (early "
           "stopping keeps the epoch best on them, so its score there is optimistic, the more "
           "so for a noisy curve); rank_split = 0.5 ranks on items that chose no epoch, "
           "as the script init writes does where every fold has two validation items "
           "(measured: docs/results.md).")
"""Why the selection reads the validation scores (the note of the report)."""
WHY_RANK = ("Ranked on the validation items kept out of the epoch choice (rank_split): "
            "an early-stopped model's score on the items that chose its epoch is optimistic, "
            "its score on these is not.")
"""Why the selection reads the ranking validation scores."""

Headline = tuple[str, str, str]
"""`(level, metric, label)`: one headline metric of the Summary sheet."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """The selected instance: among the complete instances that the ranking scores cannot
    tell apart, the first in the preference declared before any score was seen
    (`xval.report.selection`).

    Attributes:
        metric: the selection metric (`[report] selection_metric`, or the task's).
        selected: the selected instance, or `None` when no instance is complete.
        tied: the other complete instances its ranking scores cannot tell it apart from
            (the preference chose among them).
        split: the split it is read on: `"val"`, or `"rank"` when every complete instance
            has scores on validation items that picked no epoch (`selection_split`).
        ranking: how it was chosen, and how sure the ranking scores are of it (`None`
            when no instance is complete).
    """

    metric: str
    selected: InstanceResult | None
    tied: tuple[InstanceResult, ...] = ()
    split: str = "val"
    ranking: RowRanking | None = None

    @classmethod
    def of(cls, results: ExperimentResults, config: Config | None = None) -> Selection:
        metric = selection_metric(config, results.task_type)
        split = selection_split(results, metric)
        level = selection_level(results, metric, split)
        ranking = rank_rows(results.ranked(metric, split, level), metric, split, level,
                            confidence=behind_probability_of(config), rope=rope_of(config),
                            repeats=(results.num_repeats, results.num_folds or 0),
                            preference=preference_of(results))
        if ranking is None:
            return cls(metric, None, (), split)
        return cls(metric, results[ranking.selected],
                   tuple(results[k] for k in ranking.tied[1:]), split, ranking)

    @property
    def why(self) -> str:
        """Which score selects, and why (a sentence of the report's note)."""
        return WHY_RANK if self.split == RANK else WHY_VAL

    @property
    def id(self) -> int | None:
        """The selected instance's id, or `None`."""
        return self.selected.id if self.selected is not None else None


def selection_split(results: ExperimentResults, metric: str) -> str:
    """The split the selection reads: `"rank"` when every complete instance scored `metric`
    on validation items kept out of its epoch choice (`rank_split`), else `"val"`."""
    complete = [r for r in results.complete() if r.metric(metric, "val") is not None
                or r.metric(metric, "val", "clip") is not None]
    ranked = all(r.metric(metric, RANK) is not None or r.metric(metric, RANK, "clip")
                 is not None for r in complete)
    return RANK if complete and ranked else "val"


def alpha_of(config: Config | None) -> float:
    """The significance level of the statistics (`[report] alpha`; 0.05 without a
    config)."""
    return float(config.report.alpha) if config is not None else 0.05


def behind_probability_of(config: Config | None) -> float:
    """The probability with which a row must beat another on the ranking scores to put it
    behind (`[report] behind_probability`; 0.8 without a config)."""
    return float(config.report.behind_probability) if config is not None else 0.8


def rope_of(config: Config | None) -> float:
    """The half-width of the region of practical equivalence of the Bayesian comparisons
    (`[report] rope`; 0.01 without a config)."""
    return float(config.report.rope) if config is not None else 0.01


def levels(results: Iterable[InstanceResult]) -> list[str]:
    """`["segment"]`, plus `"clip"` when some instance has clip-level metrics."""
    found = ["segment"]
    if any("clip" in r.summary.metrics for r in results):
        found.append("clip")
    return found


def recorded_metric_names(results: Iterable[InstanceResult], level: str) -> list[str]:
    """Every metric some instance records at `level`, in the order first seen (instances
    with an embedding classifier add `embedding_*` metrics that others lack)."""
    names: dict[str, None] = {}
    for r in results:
        names.update(dict.fromkeys(r.summary.metric_names(level, "test")))
    return list(names)


def embedding_headline(results: Iterable[InstanceResult], metric: str,
                       level: str) -> str | None:
    """The embedding classifier's headline metric (`embedding_accuracy`) when some instance
    records it at `level` and the selection metric is not already one of its metrics."""
    if metric.startswith(embedding.PREFIX):
        return None
    name = f"{embedding.PREFIX}{embedding.task().selection_metric}"
    return name if any(r.metric(name, "test", level) is not None for r in results) else None


def differing_params(results: Iterable[InstanceResult]) -> list[str]:
    """The parameters (comments aside) whose values differ between instances, sorted."""
    results = list(results)
    names = sorted({k for r in results for k in r.params} - {"comment_1", "comment_2"})
    return [name for name in names
            if len({repr(r.params.get(name)) for r in results if r.params}) > 1]


def cell_value(value: Any) -> Any:
    """A parameter value as a table shows it: numbers, text and `None` as they are, other
    values (lists, dicts) as their `repr`."""
    return value if isinstance(value, (int, float, str, type(None))) else repr(value)


FRAME = "frame"
"""A metric labelled as scored per frame (detection's `frame F1`) already names its level."""


def level_names(results: ExperimentResults) -> dict[str, str]:
    """What the results' task calls the segment and clip levels (`segment`/`clip`;
    detection: `window`/`recording`)."""
    return dict(tasks.get(results.task_type).level_names)


def with_level(label: str, level: str, names: dict[str, str]) -> str:
    """`label` led by the name of its level (`segment macro F1`), unless it names one
    already (`clip accuracy`, `recording PSDS1`, `frame F1`)."""
    if label.split(" ", 1)[0] in {*names.values(), FRAME}:
        return label
    return f"{names[level]} {label}"


def headline_metrics(results: ExperimentResults, config: Config | None = None) -> list[Headline]:
    """The metrics the Summary sheet shows, as `(level, metric, label)`.

    The task of the results chooses them (`Task.headline_metrics`); where files are cut
    into segments, the clip score comes first (the headline). E.g. classification:
    accuracy and macro F1; regression: RMSE, MAE and R² (segment level). Every label names
    its level (`clip accuracy`, `segment macro F1`; see `with_level`). A selection metric
    set in `[report]` that the task does not show is added first, and the embedding
    classifier's accuracy after them when some instance has one.
    """
    clips = "clip" in levels(results)
    out: list[Headline] = list(tasks.get(results.task_type).headline_metrics(clips))
    metric = selection_metric(config, results.task_type)
    order = ["clip", "segment"] if clips else ["segment"]
    shown = {(lvl, name) for lvl, name, _ in out}
    out = [(lvl, metric, f"clip {metric}" if lvl == "clip" else metric)
           for lvl in order if (lvl, metric) not in shown
           and any(r.metric(metric, "val", lvl) is not None for r in results)] + out
    extra = embedding_headline(results, metric, order[0])
    if extra:
        out += [(lvl, extra, extra) for lvl in order]
    names = level_names(results)
    return [(lvl, name, with_level(label, lvl, names)) for lvl, name, label in out]


def report_level(instance: InstanceResult, metric: str) -> str:
    """`"clip"` when the instance scored clips apart from segments (clip-level test values
    of `metric`), else `"segment"` (one row per clip: the same scores)."""
    scored = instance.summary.metric(metric, "test", "clip") is not None
    return "clip" if scored else "segment"


def selection_level(results: ExperimentResults, metric: str, split: str = "val") -> str:
    """The level the selection metric is read at: `"clip"` when the complete instances have
    clip-level values of `metric` on `split` (files cut into segments), else `"segment"`
    (`ExperimentResults.auto_level`)."""
    return results.auto_level(metric, split)


def _value(instance: InstanceResult, metric: str, split: str, level: str = "segment",
           stat: str = "mean") -> str:
    value = instance.metric(metric, split, level, stat)
    return "n/a" if value is None else f"{value:.4f}"


def unselected(results: ExperimentResults, selection: Selection) -> str | None:
    """Why no instance is selected though some are complete: the selection metric is
    undefined (NaN, recorded as null) in every fold of each of them, so nothing ranks;
    `None` when one is selected or none is complete."""
    complete = results.complete()
    if selection.selected is not None or not complete:
        return None
    return (f"No instance is selected: the selection metric, {selection.metric}, is "
            f"undefined on the {SPLIT_NAMES[selection.split]} items (NaN, recorded as null) "
            f"in every fold of the complete instance(s) "
            f"{', '.join(str(r.id) for r in complete)}. Its function returned NaN where it "
            "should score (a task's own metric: check it on the validation rows), or "
            "select on another metric ([report] selection_metric).")


def report_note(results: ExperimentResults, config: Config | None = None) -> str | None:
    """The sentence saying which instance was selected and which test value to report, or
    why none is (`unselected`).

    Returns:
        The note, or `None` when no instance is complete.
    """
    selection = Selection.of(results, config)
    sel, metric = selection.selected, selection.metric
    if sel is None:
        return unselected(results, selection)
    level = report_level(sel, metric)
    chosen = selection_level(results, metric, selection.split)
    names = tasks.get(results.task_type).level_names  # detection: window, recording
    n = sel.summary.folds_done
    score = f"{SPLIT_NAMES[selection.split]} {metric}"
    value = _value(sel, metric, selection.split, chosen)
    ranking = selection.ranking
    if ranking is None or ranking.leader == sel.id:
        note = f"Selected: instance {sel.id}, best {score} ({value}, {names[chosen]} level)"
    else:
        leader = results[ranking.leader]
        note = (f"Selected: instance {sel.id}, {score} {value} ({names[chosen]} level), by "
                f"the preference among the rows that {score} cannot tell apart (best mean: "
                f"instance {leader.id}, {_value(leader, metric, selection.split, chosen)})")
    note += (". Report its "
             f"test {metric} at {names[level]} level: {_value(sel, metric, 'test', level)} "
             f"± {_value(sel, metric, 'test', level, 'std')} (mean ± std over {n} folds)")
    if level == "clip" and sel.metric(metric, "test") is not None:  # an ensemble has none
        note += (f", {names['segment']} level beside it: {_value(sel, metric, 'test')} ± "
                 f"{_value(sel, metric, 'test', stat='std')}")
    note += f". Choose on validation, report test. {selection.why}"
    if selection.tied:
        note += (f" Tied on {score} with instance(s) "
                 f"{', '.join(str(r.id) for r in sorted(selection.tied, key=lambda r: r.id))}: "
                 f"{TIE_NOTE}.")
    whole = results.clip_from_segment(metric, "val")
    if whole and chosen == "clip":
        note += (f" Instance(s) {', '.join(map(str, whole))} have one row per clip (an "
                 f"embedding store): their {names['segment']} scores are their "
                 f"{names['clip']} scores.")
    lacking = results.without_clip_level(metric, "val")
    if lacking:
        note += (f" Compared at {names['segment']} level: instance(s) "
                 f"{', '.join(map(str, lacking))} have no {names['clip']}-level scores "
                 "(trained before this version scored them); rerun them with --overwrite to "
                 f"compare all at {names['clip']} level.")
    return note


TIE_NOTE = ("the ranking scores cannot tell them apart, so the preference declared before any "
            "score chose (the Selection lines)")
"""What the note says of the rows that tie with the selected one."""


def selection_lines(results: ExperimentResults, selection: Selection) -> list[str]:
    """How sure the ranking scores are of the selected row, and the rule that chose it:
    printed under the terminal table and under the Summary sheet's note.

    Returns:
        The lines (none with fewer than two complete instances): how the row was chosen,
        then one line per row, best mean first (its mean ranking score; for the others the
        Bayesian correlated t-test's probabilities against the selected row, and whether it
        ties or which row it is behind), then a warning when the declared preference changed
        after instances had run.
    """
    ranking, sel = selection.ranking, selection.selected
    if ranking is None or sel is None or not ranking.comparisons:  # one row: no choice
        return []
    level = selection_level(results, selection.metric, selection.split)
    score = (f"{SPLIT_NAMES[selection.split]} {level_names(results)[level]} "
             f"{selection.metric}")
    basis = (f"Bayesian correlated t-test over {ranking.folds} folds, {ranking.items} "
             f"{SPLIT_NAMES[selection.split]} item(s) in all, ROPE {ranking.rope:g}")
    preference = ranking.preference
    order = ", ".join(map(str, [k for k in preference.order if k in ranking.tied
                                or any(c.id == k for c in ranking.comparisons)]))
    which = ("declared by the experiment" if preference.declared
             else f"the default: {DEFAULT_ORDER}")
    if ranking.clear:
        head = (f"Selection: instance {sel.id} is ahead on {score}: every other row is "
                f"behind, beaten by some row by more than the ROPE with probability "
                f"{ranking.confidence:g} or more ({basis}).")
    else:
        head = (f"Selection: {score} cannot tell instances "
                f"{', '.join(map(str, sorted(ranking.tied)))} apart (none is beaten with "
                f"probability {ranking.confidence:g}; {basis}; best mean: instance "
                f"{ranking.leader}); instance {sel.id} is the first of them in the preference "
                f"({which}): {order}.")
    mine = sel.metric(selection.metric, selection.split, level)
    rows = [(mine, f"  instance {sel.id}: {mine:.4f}: selected.")] if mine is not None else []
    for c in ranking.comparisons:
        state = (f"behind instance {c.behind} (P {c.ahead:.2f})" if c.behind is not None
                 else "tied")
        rows.append((c.mean, f"  instance {c.id}: {c.mean:.4f}; P({sel.id} better) "
                             f"{c.better:.2f}, P(equivalent) {c.equivalent:.2f}, "
                             f"P({c.id} better) {c.worse:.2f}: {state}."))
    sign = -1.0 if metric_direction(selection.metric) == "max" else 1.0
    lines = [head, *(text for _, text in sorted(rows, key=lambda row: sign * row[0]))]
    if preference.changed:
        lines.append(f"Warning: the preference was declared by the run of {preference.changed}, "
                     "after runs that trained instances: it may have been chosen on their "
                     "scores. Declare it before any score is seen.")
    return lines


def single_item_validation_warning(results: ExperimentResults) -> str | None:
    """A warning when validation sets hold a single item, or `None`.

    Reads the validation items of the fold records (and of `folds.json` when there are
    none yet).
    """
    val_sets: dict[int, list[str]] = {}
    for r in results:
        for fold in r.folds:
            if "val" in fold.items:
                val_sets[fold.fold] = fold.items["val"]
    if not val_sets and results.manifest is not None:
        val_sets = {i: f["val"] for i, f in enumerate(results.manifest.folds)}
    single = sorted(i for i, items in val_sets.items() if len(items) == 1)
    if not single:
        return None
    return (f"Warning: {len(single)} of {len(val_sets)} folds have a single validation item, "
            "so model selection (best epoch, selected instance) rests on one item per fold. "
            "Use fewer folds or a larger [folds] val_fraction if there are enough items.")


def status_label(instance: InstanceResult) -> str:
    """The instance's status, with its invalid folds counted: `partial (1 invalid)`."""
    if instance.invalid:
        return f"{instance.status} ({len(instance.invalid)} invalid)"
    return instance.status


def instance_message(instance: InstanceResult) -> str:
    """What went wrong with an instance: the first failed fold's message, then its invalid
    folds with their reasons (a rerun trains them again)."""
    parts = [instance.summary.message] if instance.summary.message else []
    if instance.invalid:
        count = len(instance.invalid)
        parts.append(f"{count} invalid fold{'s' if count > 1 else ''} (not counted; a rerun "
                     f"trains {'them' if count > 1 else 'it'} again): "
                     f"{invalid_note(instance.invalid)}")
    return " ".join(parts)
