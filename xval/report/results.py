"""Result files: atomic writes, instance summaries, and the `ExperimentResults` view.

Each finished fold is its own JSON file, written atomically; summaries and the workbook are
derived from those files, never the other way round.
"""

import json
import math
import re
from pathlib import Path

import numpy as np

from xval import tasks
from xval.config.selection import metric_direction

# The file helpers live in the leaf module `xval.fileio`; re-exported here.
from xval.core.files import (  # noqa: F401
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    lock,
    read_json,
)

SPLITS = ("train", "val", "test")


def _mean_std_ci(values):
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if len(values) == 0:
        return {"mean": None, "std": None, "ci95": None, "n": 0}
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    if len(values) > 1:
        from scipy import stats

        half = float(stats.t.ppf(0.975, len(values) - 1) * std / np.sqrt(len(values)))
    else:
        half = None
    return {"mean": float(values.mean()), "std": std, "ci95": half, "n": int(len(values))}


def level_metrics(fold, level):
    """A fold's metrics at `level` ("segment" or "clip").

    A fold without clip metrics has one segment per clip (or was written before every fold
    of a segmented store recorded them), so its clip level is its segment level; except for
    tasks whose two levels score differently (`Task.clip_is_segment_without_clips`, e.g.
    detection's windows and recordings), where it has no clip level.

    Args:
        fold: a fold result dict (as in `fold_<i>.json`).
        level: `"segment"` or `"clip"`.

    Returns:
        dict of split to metrics, or `None` when the fold has none.
    """
    if level == "clip":
        if fold.get("clip_metrics"):
            return fold["clip_metrics"]
        return fold.get("metrics") if _clip_falls_back(fold) else None
    return fold.get("metrics")


def _clip_falls_back(fold):
    name = fold.get("task_type")
    try:
        return tasks.get(name).clip_is_segment_without_clips if name else True
    except ValueError:  # a task this version does not know (ConfigurationError)
        return True


def summarize(folds, num_folds):
    """The instance summary from its fold results.

    Args:
        folds: fold result dicts (as in `fold_<i>.json`).
        num_folds: the number of folds the experiment has.

    Returns:
        dict with `status` (`complete`, `partial` or `failed`), counts, and for every level
        (`segment`, `clip`), split and metric the mean, std and 95% CI half-width over
        folds, plus the test confusion matrix pooled over folds.
    """
    ok = [f for f in folds if f.get("status") == "ok"]
    failed = [f for f in folds if f.get("status") == "failed"]
    status = "failed" if failed else ("complete" if len(ok) == num_folds else "partial")
    summary = {"status": status, "folds_done": len(ok), "folds_failed": len(failed),
               "num_folds": num_folds, "metrics": {}, "message": ""}
    if failed:
        summary["message"] = failed[0].get("message", "")
    for level, key in (("segment", "metrics"), ("clip", "clip_metrics")):
        if not any(f.get(key) for f in ok):
            continue
        if level == "clip" and not all(level_metrics(f, level) for f in ok):
            continue  # some folds only scored at the other level: not comparable
        with_level = [level_metrics(f, level) for f in ok if level_metrics(f, level)]
        summary["metrics"][level] = {}
        for split in SPLITS:
            if split not in with_level[0]:
                continue
            names = [n for n in with_level[0][split] if n != "confusion_matrix"]
            summary["metrics"][level][split] = {
                n: _mean_std_ci([m[split][n] for m in with_level if n in m.get(split, {})])
                for n in names
            }
        matrices = [m["test"].get("confusion_matrix") for m in with_level if "test" in m]
        if matrices and all(m is not None for m in matrices):
            summary.setdefault("confusion_matrix", {})[level] = \
                np.sum(np.asarray(matrices), axis=0).tolist()
    if ok:
        summary["best_epochs"] = [f.get("best_epoch") for f in ok]
        summary["seconds"] = round(sum((f.get("timings") or {}).get("total_seconds", 0)
                                       for f in ok), 3)
    return summary


class InstanceResult:
    """What is on disk for one instance.

    The summary is recomputed from the fold files every time (never read from
    `summary.json`), so it cannot contradict them. Unreadable fold files are listed in
    `unreadable` and left out.

    Args:
        path: the `instance_<k>` folder.
        num_folds: the experiment's number of folds; `None` reads it from `summary.json`
            or counts the fold files.
    """

    def __init__(self, path, num_folds=None):
        self.path = Path(path)
        self.id = int(self.path.name.split("_")[1])
        self.unreadable = []
        params = self._read(self.path / "params.json")
        self.params = params.get("params", {}) if isinstance(params, dict) else {}
        self._task_type = params.get("task_type") if isinstance(params, dict) else None
        folds = []
        for p in sorted(self.path.glob("fold_*.json"), key=lambda p: p.stem):
            if not re.fullmatch(r"fold_\d+", p.stem):
                continue
            data = self._read(p)
            if isinstance(data, dict) and "fold" in data:
                folds.append(data)
        self.folds = sorted(folds, key=lambda f: f["fold"])
        if num_folds is None:
            old = self._read(self.path / "summary.json") or {}
            num_folds = old.get("num_folds") if isinstance(old, dict) else None
        if num_folds is None:
            num_folds = max((f["fold"] for f in self.folds), default=-1) + 1
        self.folds = [f for f in self.folds if f["fold"] < num_folds]
        if self.folds:
            self.summary = summarize(self.folds, num_folds)
        else:
            self.summary = {"status": "pending", "metrics": {}, "folds_done": 0,
                            "num_folds": num_folds, "message": ""}

    def _read(self, path):
        if not path.exists():
            return None
        try:
            return read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            self.unreadable.append(path.name)
            return None

    @property
    def task_type(self):
        """The task the instance was trained for, as recorded in `params.json` (or its fold
        files); `None` for results written before the task was recorded."""
        if self._task_type:
            return self._task_type
        return next((f["task_type"] for f in self.folds if f.get("task_type")), None)

    @property
    def trial(self):
        """The search trial that made this instance (`trial.json`), or `None`."""
        data = self._read(self.path / "trial.json")
        return data if isinstance(data, dict) else None

    @property
    def status(self):
        """`complete`, `partial`, `failed`, `pending`, or `pruned` (a search stopped it)."""
        trial = self.trial
        if trial is not None and trial.get("state") == "pruned" \
                and self.summary.get("status") != "failed":
            return "pruned"
        return self.summary.get("status", "pending")

    def metric(self, name, split="val", level="segment", stat="mean"):
        """A summary statistic, e.g. `metric("accuracy", "test")`; `None` when absent."""
        try:
            return self.summary["metrics"][level][split][name][stat]
        except (KeyError, TypeError):
            return None

    def __repr__(self):
        return f"InstanceResult(id={self.id}, status={self.status!r})"


class ExperimentResults:
    """The results of one experiment folder: `len`, `[]` by instance id, `to_dataframe()`,
    `best()`.

    Args:
        path: the `experiment_<N>` folder.
    """

    def __init__(self, path):
        self.path = Path(path)
        num_folds = None
        folds_file = self.path / "folds.json"
        if folds_file.exists():
            try:
                num_folds = read_json(folds_file).get("num_folds")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
                from xval.core.errors import ResultsConflictError

                raise ResultsConflictError(
                    f"{folds_file} is not valid JSON ({e}). It records which items each fold "
                    "tests: restore it from a backup, or move the experiment folder away and "
                    "rerun."
                ) from e
        dirs = [p for p in self.path.glob("instance_*") if re.fullmatch(r"instance_\d+", p.name)]
        self.instances = {r.id: r for r in sorted((InstanceResult(p, num_folds) for p in dirs),
                                                  key=lambda r: r.id)}

    def __len__(self):
        return len(self.instances)

    @property
    def task_type(self):
        """The experiment's task, as its instances recorded it.

        Result folders written before the task was recorded get the task whose selection
        metric their first finished fold has (`xval.tasks.infer`).
        """
        recorded = next((r.task_type for r in self if r.task_type), None)
        if recorded:
            return recorded
        for r in self:
            for fold in r.folds:
                if fold.get("status") == "ok":
                    return tasks.infer(metrics=fold["metrics"]["test"])
        return tasks.DEFAULT

    def __getitem__(self, instance_id):
        return self.instances[instance_id]

    def __iter__(self):
        return iter(self.instances.values())

    def to_dataframe(self, level="segment"):
        """One row per instance: id, status, comments, parameters, then metric mean/std."""
        import pandas as pd

        records = []
        for r in self:
            record = {"instance": r.id, "status": r.status,
                      "comment_1": r.params.get("comment_1", ""),
                      "comment_2": r.params.get("comment_2", "")}
            record.update({f"param:{k}": v for k, v in r.params.items()
                           if k not in ("comment_1", "comment_2")})
            for split, names in r.summary.get("metrics", {}).get(level, {}).items():
                for name, stats in names.items():
                    record[f"{split}_{name}_mean"] = stats["mean"]
                    record[f"{split}_{name}_std"] = stats["std"]
            records.append(record)
        return pd.DataFrame.from_records(records)

    def auto_level(self, metric, split="val"):
        """The level instances are compared at: `"clip"` when some complete instance has
        clip-level values of `metric` on `split` (the store cuts files into segments) and
        every complete instance with a value has one there, else `"segment"` (e.g. detection
        instances scored before recordings were: all are then compared on windows).

        Returns:
            `"clip"` or `"segment"`.
        """
        has_clip = any(r.status == "complete" and r.metric(metric, split, "clip") is not None
                       for r in self)
        return "clip" if has_clip and not self.without_clip_level(metric, split) \
            else "segment"

    def without_clip_level(self, metric, split="val"):
        """Complete instances scored at the segment level but not at the clip level, where
        others are (results from before the clip level existed): their ids."""
        complete = [r for r in self if r.status == "complete"]
        if not any(r.metric(metric, split, "clip") is not None for r in complete):
            return []
        return [r.id for r in complete if r.metric(metric, split, "clip") is None
                and r.metric(metric, split) is not None]

    def best(self, metric="accuracy", split="val", level="segment"):
        """The complete instance with the best mean `metric` on `split` (direction by name).

        Args:
            metric: metric name (its direction follows the name: max for accuracy-like).
            split: `"train"`, `"val"` or `"test"`. Defaults to `"val"`.
            level: `"segment"`, `"clip"`, or `"auto"` (`auto_level`). Defaults to
                `"segment"`.

        Returns:
            The best `InstanceResults`, or `None` when no instance is complete.
        """
        if level == "auto":
            level = self.auto_level(metric, split)
        candidates = [r for r in self if r.status == "complete"
                      and r.metric(metric, split, level) is not None]
        if not candidates:
            return None
        pick = max if metric_direction(metric) == "max" else min
        return pick(candidates, key=lambda r: r.metric(metric, split, level))

    def __repr__(self):
        return f"ExperimentResults({str(self.path)!r}, instances={len(self)})"
