"""The Optuna study of a search: the study itself (stored in the experiment folder, so that
several runners share it), its sampler and pruner, the objective over a trial's folds, and
the study's plots."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib import pyplot as plt

from xval.config.space import Search
from xval.core import optional
from xval.core.errors import ConfigurationError
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult
from xval.running.recorder import Out


def import_optuna() -> Any:
    """Optuna, quiet, or a clear error when it is not installed.

    Raises:
        ConfigurationError: when Optuna is not installed.
    """
    optional.require("--search", "search")
    import optuna  # noqa: PLC0415  (optional: only --search needs it)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(search: Search, trial_number: int) -> Any:
    """The sampler for one trial, seeded with `seed + trial_number`.

    Seeding per trial keeps a search reproducible and, with several runners on one study,
    keeps them from drawing the same random parameters (each trial number is unique in the
    study); TPE still learns from every finished trial, which it reads from the storage.
    """
    optuna = import_optuna()
    seed = search.seed + trial_number
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, search.n_trials))
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(search: Search) -> Any:
    optuna = import_optuna()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials,
                                           n_warmup_steps=0)
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_study(layout: ExperimentLayout, search: Search, first_instance: int,
               direction: str) -> tuple[Any, int, Any]:
    """Creates or loads the experiment's study (its `search.journal`).

    Returns:
        `(study, first_instance, storage)`: the first instance id stored in the study wins;
        the study's `optuna.storages.JournalStorage`.

    Raises:
        ConfigurationError: when the stored study optimises in the other direction.
    """
    optuna = import_optuna()
    from optuna.storages import JournalStorage  # noqa: PLC0415  (optional: Optuna)
    from optuna.storages.journal import JournalFileBackend  # noqa: PLC0415  (as above)

    layout.root.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(layout.search_journal)))
    study = optuna.create_study(study_name=layout.name, storage=storage,
                                sampler=make_sampler(search, 0), pruner=_pruner(search),
                                direction=direction + "imize", load_if_exists=True)
    if study.direction.name.lower() != direction + "imize":
        raise ConfigurationError(
            f"{layout.search_journal} holds a study that {study.direction.name.lower()}s, "
            f"but the selection metric asks to {direction}imize: use a new experiment number."
        )
    stored = study.user_attrs.get("first_instance")
    if stored is None:
        study.set_user_attr("first_instance", first_instance)
        for params in search.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
        stored = first_instance
    return study, int(stored), storage


def objective_of(folds: Sequence[FoldResult], metric: str,
                 clip_falls_back: bool = True) -> tuple[float | None, int]:
    """Mean over the finished folds of the validation `metric` (clip level where files were
    cut into segments, as the report selects), and the number of folds it covers."""
    ok = [f for f in folds if f.ok and f.metrics]
    level = "clip" if any(f.clip_metrics for f in ok) else "segment"
    values = []
    for fold in ok:
        metrics = fold.level_metrics(level, clip_falls_back) or {}
        value = metrics.get("val", {}).get(metric)
        if value is not None:
            values.append(value)
    return (float(np.mean(values)) if values else None), len(values)


def save_search_plots(study: Any, layout: ExperimentLayout, out: Out) -> None:
    """Optuna's optimisation history and parameter importances as PNGs in `search/`."""
    from optuna.visualization import matplotlib as vis  # noqa: PLC0415  (optional: Optuna)

    matplotlib.use("Agg")
    folder = layout.search_dir
    folder.mkdir(exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    plots: list[tuple[str, Callable[[Any], Any]]] = [
        ("optimization_history.png", vis.plot_optimization_history)]
    if len(complete) >= 2 and len({p for t in complete for p in t.params}) >= 1:
        plots.append(("param_importances.png", vis.plot_param_importances))
    for name, fn in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
                figure = fn(study).figure
            figure.set_size_inches(7, 4)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=100)
            plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out(f"search: {name} not drawn ({type(e).__name__}: {e}).")
