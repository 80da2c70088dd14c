"""The recorder: the one writer of an experiment's result files.

Fold files, models, predictions, error files, instance summaries, plots and the workbook are
written here, by the driver, whatever executor trained the folds. Every file is written
atomically, the model before the fold file that records its size and hash, so a fold is done
exactly when its `fold_<i>.json` says `ok` and the `.keras` beside it matches.
"""

import hashlib
import json
import shutil
from pathlib import Path

from xval import tasks
from xval.core.errors import ResultsConflictError, XvalError
from xval.core.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    lock,
    read_json,
)
from xval.core.records import FoldResult, InstanceStatus, InstanceSummary, Status

# An instance folder set aside by --overwrite until its replacement completes.
PREVIOUS_SUFFIX = ".previous"


def read_result_file(path, fix):
    """Reads a JSON result file, naming it and the fix when it is unreadable.

    Args:
        path: the file.
        fix: what the user should do (one sentence).

    Raises:
        ResultsConflictError: when the file is not valid JSON (truncated, edited by hand).
    """
    try:
        return read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsConflictError(f"{path} is not valid JSON ({e}): {fix}") from e


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fold_state(inst_dir, fold):
    """Whether fold `fold` of an instance is done, and why not.

    Returns:
        `(done, reason)`: `done` is True when `fold_<i>.json` is readable, says `ok`, and
        the `.keras` beside it exists with the recorded size and hash; otherwise `reason`
        says what is wrong (`""` when the fold was simply never run).
    """
    inst_dir = Path(inst_dir)
    path = inst_dir / f"fold_{fold}.json"
    if not path.exists():
        return False, ""
    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        return False, f"{path.name} is unreadable ({type(e).__name__})"
    if not isinstance(data, dict) or data.get("status") != Status.OK.value:
        return False, ""
    model = inst_dir / f"fold_{fold}.keras"
    if not model.exists():
        return False, f"{model.name} is missing"
    size, digest = data.get("model_size"), data.get("model_sha256")
    if size is not None and model.stat().st_size != size:
        return False, f"{model.name} has {model.stat().st_size} bytes, not the recorded {size}"
    if digest is not None and sha256_of(model) != digest:
        return False, f"{model.name} does not match its recorded SHA-256"
    return True, ""


class Recorder:
    """Writes one experiment's result files.

    Args:
        exp_dir: the `experiment_<N>` folder.
        config: the run's `Config` (selection metric and alpha of the workbook).
        num_folds: the number of folds of the experiment.
        out: print function for progress lines. Defaults to `print`.
        listeners: objects told about what was recorded (e.g. an experiment tracker): each
            may define `on_fold(result, inst_dir)` (after a fold's files are written) and
            `on_instance(instance, summary, params, inst_dir)` (after its summary is), and
            `on_refit(result, inst_dir)` (after a final model is written). A
            listener that raises is reported and dropped; it never stops the run.
        task_type: the experiment's task, written into every `params.json` (the report
            reads it there). Defaults to `None` (not written).
    """

    def __init__(self, exp_dir, config, num_folds, out=print, listeners=(), task_type=None):
        self.exp_dir = Path(exp_dir)
        self.task_type = task_type
        self.config = config
        self.num_folds = num_folds
        self.out = out
        self.listeners = list(listeners)

    def _notify(self, event, *args):
        for listener in list(self.listeners):
            method = getattr(listener, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as e:  # a tracker must never cost a result  # noqa: BLE001
                self.out(f"{type(listener).__name__} failed ({type(e).__name__}: {e}); "
                         "it is disabled for the rest of this run.")
                self.listeners.remove(listener)

    def instance_dir(self, instance):
        return self.exp_dir / f"instance_{instance}"

    def instance_lock(self, instance):
        """The lock a runner holds while it runs an instance (outside the instance folder,
        which --overwrite moves aside)."""
        return lock(self.exp_dir / f"instance_{instance}")

    # -- instances ---------------------------------------------------------------------

    def begin_instance(self, instance, params, params_hash, overwrite):
        """Prepares an instance folder; returns the folds already done.

        With `overwrite`, an existing instance folder is moved aside to
        `instance_<k>.previous` (kept until the new results complete, so an interrupted or
        failed overwrite never loses the old results); a folder already aside from an
        earlier, unfinished overwrite is kept and the unfinished one is dropped.

        Returns:
            The sorted list of fold indices already done.
        """
        inst_dir = self.instance_dir(instance)
        if overwrite and inst_dir.exists():
            aside = inst_dir.with_name(inst_dir.name + PREVIOUS_SUFFIX)
            if aside.exists():
                shutil.rmtree(inst_dir)
            else:
                inst_dir.rename(aside)
            self.out(f"instance {instance}: previous results moved to {aside.name} until the "
                     "new ones complete.")
        inst_dir.mkdir(parents=True, exist_ok=True)
        record = {"instance": instance, "hash": params_hash, "params": params}
        if self.task_type is not None:
            record["task_type"] = self.task_type
        atomic_write_json(inst_dir / "params.json", record)
        done = []
        for i in range(self.num_folds):
            ok, reason = fold_state(inst_dir, i)
            if ok:
                done.append(i)
            elif reason:
                self.out(f"instance {instance} fold {i}: {reason}; it will be rerun.")
        if len(done) < self.num_folds:
            (inst_dir / "error.txt").unlink(missing_ok=True)
        return done

    def record_fold(self, result):
        """Writes one fold's files: the model, the predictions and plot data, then the fold
        file."""
        inst_dir = self.instance_dir(result.instance)
        inst_dir.mkdir(parents=True, exist_ok=True)
        i = result.fold
        if result.status == Status.OK:
            if result.model_bytes is not None:
                model = inst_dir / f"fold_{i}.keras"
                atomic_write_bytes(model, result.model_bytes)
                result.model_size = len(result.model_bytes)
                result.model_sha256 = hashlib.sha256(result.model_bytes).hexdigest()
            if result.predictions_csv is not None:
                atomic_write_text(inst_dir / f"predictions_fold_{i}.csv",
                                  result.predictions_csv)
            if result.classifier_bytes is not None:
                atomic_write_bytes(inst_dir / f"fold_{i}.skops", result.classifier_bytes)
            if result.plot_data is not None:
                atomic_write_json(inst_dir / f"plot_data_fold_{i}.json", result.plot_data)
        else:
            atomic_write_text(inst_dir / "error.txt", result.traceback or result.message)
        atomic_write_json(inst_dir / f"fold_{i}.json", result.to_dict())
        self._notify("on_fold", result, inst_dir)

    def record_refit(self, result, **extra):
        """Writes the final model of an instance: `final.keras`, then `final.json`.

        Args:
            result: the refit job's `FoldResult` (status `ok`).
            **extra: more fields for `final.json` (e.g. the folds' best epochs).

        Returns:
            The path of `final.keras`.
        """
        inst_dir = self.instance_dir(result.instance)
        model = inst_dir / "final.keras"
        atomic_write_bytes(model, result.model_bytes)
        info = {
            "instance": result.instance, "task_type": result.task_type,
            "epochs": result.epochs_run,
            "items": sorted(result.items.get("train", [])), "params_hash": result.params_hash,
            "model_size": len(result.model_bytes),
            "model_sha256": hashlib.sha256(result.model_bytes).hexdigest(),
            "timings": result.timings, "n_rows": result.n_rows, "metrics": result.metrics,
            "clip_metrics": result.clip_metrics, "history": result.history,
            "classes": result.classes, "backend": result.backend,
            "keras_version": result.keras_version, "device": result.device,
            "host": result.host, "pid": result.pid, **extra,
        }
        atomic_write_json(inst_dir / "final.json", info)
        self._notify("on_refit", result, inst_dir)
        return model

    def fold_results(self, instance):
        """The readable fold files of an instance, as `FoldResult`s (within `num_folds`)."""
        inst_dir = self.instance_dir(instance)
        results = []
        for i in range(self.num_folds):
            path = inst_dir / f"fold_{i}.json"
            if not path.exists():
                continue
            try:
                results.append(FoldResult.from_dict(read_json(path)))
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError):
                continue
        return results

    def finish_instance(self, instance):
        """Writes the instance's summary and plots from its fold files.

        When the instance is complete, the folder set aside by --overwrite is removed.

        Returns:
            The `InstanceSummary`.
        """
        from xval.report.plots import instance_plots

        inst_dir = self.instance_dir(instance)
        folds = self.fold_results(instance)
        task_type = self.task_type
        if task_type is None and (inst_dir / "params.json").exists():
            task_type = read_json(inst_dir / "params.json").get("task_type")
        try:
            falls_back = tasks.get(task_type).clip_is_segment_without_clips \
                if task_type else True
        except ValueError:  # a task this version does not know
            falls_back = True
        summary = InstanceSummary.from_folds(folds, self.num_folds, clip_falls_back=falls_back)
        atomic_write_json(inst_dir / "summary.json", summary.to_dict())
        instance_plots(inst_dir, folds, summary, task_type=task_type)
        aside = inst_dir.with_name(inst_dir.name + PREVIOUS_SUFFIX)
        if summary.status == InstanceStatus.COMPLETE.value and aside.exists():
            shutil.rmtree(aside)
        params = read_json(inst_dir / "params.json")["params"] \
            if (inst_dir / "params.json").exists() else {}
        self._notify("on_instance", instance, summary, params, inst_dir)
        return summary

    def rebuild_report(self):
        """Rebuilds the workbook; a failure is reported, not raised."""
        from xval.report.workbook.builder import build_workbook

        try:
            build_workbook(self.exp_dir, config=self.config)
        except (XvalError, OSError) as e:
            self.out(f"workbook not rebuilt: {e}")
