"""Running a `xval.search.Search`: an Optuna study whose trials are the experiment's instances.

Trial `t` of the study is instance `first + t`, where `first` follows the declared instances
and is fixed when the study is created (kept in the study), so every runner agrees. A runner
asks the study for a trial, trains its folds through the same planner, scheduler, executor
and recorder as declared instances, reports the running mean of the validation selection
metric after each fold, and tells the study the final mean (or that it was pruned or failed).

Resume: a trial whose runner died stays `RUNNING` in the study, and its instance lock is free;
the next runner finds it, takes the lock, and finishes that same trial from its first
unfinished fold. Trials held by a live runner keep their lock and are left alone.
"""

import time

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.files import atomic_write_json, read_json
from xval.running.recorder import Recorder

TRIAL_FILE = "trial.json"
JOURNAL = "search.journal"


def _import_optuna():
    try:
        import optuna
    except ImportError as e:
        raise ConfigurationError(
            "--search needs Optuna, which is not installed: `pip install -e '.[search]'`."
        ) from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(search, trial_number):
    """The sampler for one trial, seeded with `seed + trial_number`.

    Seeding per trial keeps a search reproducible and, with several runners on one study,
    keeps them from drawing the same random parameters (each trial number is unique in the
    study); TPE still learns from every finished trial, which it reads from the storage.
    """
    optuna = _import_optuna()
    seed = search.seed + trial_number
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, search.n_trials))
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(exp_dir, search, first_instance, direction):
    """Creates or loads the experiment's study (`exp_dir/search.journal`).

    Returns:
        `(study, first_instance)`: the first instance id stored in the study wins.
    """
    optuna = _import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    exp_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(exp_dir / JOURNAL)))
    sampler = make_sampler(search, 0)
    if search.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials,
                                             n_warmup_steps=0)
    elif search.pruner == "halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    else:
        pruner = optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=exp_dir.name, storage=storage, sampler=sampler,
                                pruner=pruner, direction=direction + "imize",
                                load_if_exists=True)
    if study.direction.name.lower() != direction + "imize":
        raise ConfigurationError(
            f"{exp_dir / JOURNAL} holds a study that {study.direction.name.lower()}s, but "
            f"the selection metric asks to {direction}imize: use a new experiment number."
        )
    stored = study.user_attrs.get("first_instance")
    if stored is None:
        study.set_user_attr("first_instance", first_instance)
        for params in search.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
        stored = first_instance
    return study, int(stored)


def _objective_of(folds, metric):
    """Mean over the finished folds (`FoldResult`s) of the validation `metric` (clip level
    where files were cut into segments, as the report selects), and the number of folds it
    covers."""
    ok = [f for f in folds if f.ok and f.metrics]
    level = "clip" if any(f.clip_metrics for f in ok) else "segment"
    values = [f.level_metrics(level)["val"][metric] for f in ok
              if f.level_metrics(level)["val"].get(metric) is not None]
    return (float(np.mean(values)) if values else None), len(values)


def run_search(experiment, search, *, config, plan_for, runner, backend, out, trials=None,
               timeout=None, progress=False, verbose=False, listeners=()):
    """Runs trials until the study has `n_trials` (or `timeout` passes for this runner).

    Args:
        experiment: the `Experiment` (its declared instances fix the first trial's id).
        search: the `Search`.
        config: the `Config`.
        plan_for: `(instance_ids) -> Plan` (the planner, bound to this run's settings).
        runner: a started executor.
        backend: the Keras backend name (for the snapshot).
        out: print function.
        trials: overrides `search.n_trials`. timeout: overrides `search.timeout`.

    Returns:
        dict with `ran` (instance ids this runner trained), `failed`, `pruned`.
    """
    from filelock import Timeout

    from xval.config.selection import metric_direction, selection_metric

    optuna = _import_optuna()
    n_trials = search.n_trials if trials is None else trials
    limit = search.timeout if timeout is None else timeout
    metric = selection_metric(config, experiment.task_type)
    direction = metric_direction(metric)
    first = max(experiment.instances, default=0) + 1
    started = time.monotonic()
    ran, failed, pruned = [], [], []
    study = exp_dir = None
    while True:
        if limit is not None and time.monotonic() - started > limit:
            out(f"search: timeout of {limit:.0f}s reached; no new trial started.")
            break
        if study is None:
            plan = plan_for([])
            exp_dir = plan.exp_dir
            experiment._write_experiment_files(plan, backend)
            study, first = open_study(exp_dir, search, first, direction)
        recorder_probe = Recorder(exp_dir, config, 0)
        trial = lock = None
        for frozen in study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.RUNNING,)):
            candidate = recorder_probe.instance_lock(first + frozen.number)
            try:
                candidate.acquire(timeout=0)
            except Timeout:
                continue  # a live runner holds it
            trial, lock = optuna.trial.Trial(study, frozen._trial_id), candidate
            out(f"search: resuming trial {frozen.number} (instance {first + frozen.number}), "
                "left unfinished by a runner that stopped.")
            break
        if trial is None:
            counted = [t for t in study.get_trials(deepcopy=False)
                       if t.state != optuna.trial.TrialState.WAITING]
            if len(counted) >= n_trials:
                break
            trial = study.ask()
            lock = recorder_probe.instance_lock(first + trial.number)
            lock.acquire(timeout=0)
        k = first + trial.number
        try:
            result = _run_trial(experiment, search, trial, k, config=config, plan_for=plan_for,
                                runner=runner, backend=backend, out=out, metric=metric,
                                progress=progress, verbose=verbose, optuna=optuna,
                                listeners=listeners)
        finally:
            lock.release()
        ran.append(k)
        if result == "failed":
            failed.append(k)
        elif result == "pruned":
            pruned.append(k)
    if exp_dir is not None:
        save_search_plots(study, exp_dir, out)
    return {"ran": ran, "failed": failed, "pruned": pruned, "exp_dir": exp_dir,
            "first_instance": first}


def _run_trial(experiment, search, trial, k, *, config, plan_for, runner, backend, out,
               metric, progress, verbose, optuna, listeners=()):
    from xval.running.scheduler import Scheduler

    trial.study.sampler = make_sampler(search, trial.number)
    params = search.sample(trial) if not trial.params else \
        {**search.base, **trial.params}
    params.setdefault("comment_1", f"trial {trial.number}")
    params.setdefault("comment_2", "search")
    experiment.instances[k] = params
    plan = plan_for([k])
    recorder = Recorder(plan.exp_dir, config, plan.num_folds, out=out, listeners=listeners,
                        task_type=plan.task_type)
    inst_dir = recorder.instance_dir(k)
    done = recorder.begin_instance(k, plan.resolved[k], plan.hashes[k], overwrite=False)
    sampled = {n: params[n] for n in trial.params} if trial.params else \
        {n: params[n] for n in search.space if n in params}
    record = {"trial": trial.number, "instance": k, "state": "running", "objective": None,
              "pruned_at_fold": None, "params": sampled, "metric": metric}
    atomic_write_json(inst_dir / TRIAL_FILE, record)
    out(f"search: trial {trial.number} -> instance {k}: "
        + ", ".join(f"{n}={v!r}" for n, v in sampled.items()))
    state = {"pruned": None}

    def report(result):
        """After each fold: report the running mean; True cancels the remaining folds."""
        value, n = _objective_of(recorder.fold_results(k), metric)
        if value is None or not result.ok:
            return False
        trial.report(value, step=n)
        if n < plan.num_folds and trial.should_prune():
            state["pruned"] = result.fold
            out(f"search: trial {trial.number} pruned after {n} fold(s) (running mean "
                f"validation {metric} {value:.4f}).")
            return True
        return False

    todo = [i for i in range(plan.num_folds) if i not in done]
    failed = False
    if todo:
        scheduler = Scheduler(runner, recorder, out=out, on_result=report, progress=progress,
                              epoch_lines=verbose)
        failed = bool(scheduler.run({k: plan.jobs(k, todo)}))
    else:
        recorder.finish_instance(k)
    value, n = _objective_of(recorder.fold_results(k), metric)
    if failed:
        study_state, record["state"] = optuna.trial.TrialState.FAIL, "failed"
        trial.study.tell(trial, state=study_state)
    elif state["pruned"] is not None:
        record.update(state="pruned", pruned_at_fold=state["pruned"], objective=value)
        trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        record.update(state="complete", objective=value)
        trial.study.tell(trial, value)
    atomic_write_json(inst_dir / TRIAL_FILE, record)
    recorder.finish_instance(k)
    recorder.rebuild_report()
    return record["state"]


def save_search_plots(study, exp_dir, out):
    """Optuna's optimisation history and parameter importances as PNGs in `search/`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    folder = exp_dir / "search"
    folder.mkdir(exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    plots = [("optimization_history.png", vis.plot_optimization_history)]
    if len(complete) >= 2 and len({p for t in complete for p in t.params}) >= 1:
        plots.append(("param_importances.png", vis.plot_param_importances))
    import warnings

    for name, fn in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
                ax = fn(study)
            ax.figure.set_size_inches(7, 4)
            ax.figure.tight_layout()
            ax.figure.savefig(folder / name, dpi=100)
            plt.close(ax.figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out(f"search: {name} not drawn ({type(e).__name__}: {e}).")


def trial_records(exp_dir):
    """The `trial.json` of every instance made by the search, by instance id."""
    records = {}
    for path in sorted(exp_dir.glob(f"instance_*/{TRIAL_FILE}")):
        try:
            data = read_json(path)
        except ValueError:
            continue
        records[int(path.parent.name.split("_")[1])] = data
    return records
