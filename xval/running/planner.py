"""The planner: from an `Experiment` declaration to a `Plan` (instances x folds to run).

Everything is resolved and checked here, before anything is written or trained: every
instance's parameters, the dataset, the folds, and every conflict with results on disk.
"""

import dataclasses
from pathlib import Path

from xval import tasks
from xval.config import schema
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.records import Job


@dataclasses.dataclass
class Plan:
    """What a run will do.

    Attributes:
        exp_dir: the `experiment_<N>` folder.
        store: the `FeatureStore`.
        folds: one `{"train", "val", "test"}` item dict per fold.
        manifest: the content of `folds.json` (folds and their hash).
        resolved: instance id -> resolved parameters, in run order.
        hashes: instance id -> parameter hash.
        config: the run's `Config`.
        task_type: the experiment's task type.
        generator: stream batches from the store.
    """

    exp_dir: Path
    store: object
    folds: list
    manifest: dict
    resolved: dict
    hashes: dict
    config: object
    task_type: str
    generator: bool

    @property
    def num_folds(self):
        return len(self.folds)

    def jobs(self, instance, folds):
        """The `Job`s of `instance` for the fold indices `folds`."""
        inst_dir = self.exp_dir / f"instance_{instance}"
        return [Job(instance=instance, fold=i, params=self.resolved[instance],
                    params_hash=self.hashes[instance], items=self.folds[i],
                    task_type=self.task_type, generator=self.generator,
                    store=str(Path(self.store.path).resolve()),
                    store_hash=self.store.content_hash,
                    log_dir=str(inst_dir / "logs" / f"fold_{i}"))
                for i in folds]

    def describe(self, out, number, dataset):
        """Prints the plan (the dry run)."""
        out(f"Dry run of experiment {number} on {dataset!r} ({len(self.store)} rows, "
            f"{self.store.info['n_items']} items): nothing is trained or written.")
        out(f"Results would go to {self.exp_dir}")
        out(f"Folds ({self.manifest['splitter']}, hash {self.manifest['hash'][:12]}):")
        for i, fold in enumerate(self.folds):
            out(f"  fold {i}: train {len(fold['train'])} items, val {fold['val']}, "
                f"test {fold['test']}")
        for k, p in self.resolved.items():
            out(f"Instance {k}:")
            for name in sorted(p):
                out(f"  {name} = {p[name]!r}")


def make_plan(experiment, config, selected, overrides, overwrite):
    """Resolves and checks everything a run needs.

    Args:
        experiment: the `Experiment`.
        config: the `Config`.
        selected: instance ids to run.
        overrides: `--set` values.
        overwrite: whether existing results may be replaced.

    Returns:
        A `Plan`.

    Raises:
        ParameterError, ConfigurationError, DatasetError: for bad instances or data.
        ResultsConflictError: when results on disk were made with other folds or
            parameters (and `overwrite` is off), or a result file is unreadable.
    """
    import architectures  # noqa: PLC0415  (imports Keras: only once the backend is set)
    from preprocessing.store import FeatureStore
    from xval.config import params as P
    from xval.folds import ItemKFold, PredefinedItemSplit, check_fold, fold_manifest
    from xval.running.recorder import read_result_file

    task_type = experiment.task_type
    store = FeatureStore(Path(config.data_dir) / experiment.dataset)
    feature = (store.info.get("feature_params") or {}).get("feature")
    resolved = {
        k: P.resolve(k, experiment.instances[k], training_defaults=config.training,
                     architectures=architectures, experiment_params=experiment.parameters,
                     overrides=overrides, task_type=task_type, feature=feature)
        for k in selected
    }
    # A task that reconstructs its input (an autoencoder) uses no labels: any store will do.
    reconstructs = getattr(tasks.get(task_type), "reconstructs", False)
    if store.task_type != task_type and not reconstructs:
        raise ConfigurationError(
            f"Dataset {experiment.dataset!r} is a {store.task_type} store but the experiment "
            f"says task_type={task_type!r}."
        )
    if "split" in store.meta.columns:
        if experiment.num_folds != 1:
            raise ConfigurationError(
                f"Dataset {experiment.dataset!r} has predefined train/validation/test splits; "
                f"set num_folds=1 (it is {experiment.num_folds})."
            )
        splitter = PredefinedItemSplit(store.meta["split"].to_numpy(str))
    else:
        splitter = ItemKFold(experiment.num_folds, val_fraction=config.folds["val_fraction"],
                             test_fraction=config.folds["test_fraction"],
                             stratify=config.folds["stratify"], n_repeats=experiment.n_repeats,
                             random_state=config.folds["fold_seed"])
    y = tasks.get(task_type).stratify_labels(store)
    folds = splitter.split_items(store.items, y)
    for fold in folds:
        check_fold(fold)
    manifest = fold_manifest(splitter, folds, store.content_hash)
    root = Path(experiment.experiment_folder or config.results_dir)
    exp_dir = root / experiment.dataset / f"experiment_{experiment.number}"
    folds_file = exp_dir / "folds.json"
    if folds_file.exists():
        old = read_result_file(folds_file, (
            "it records which items each fold tests. Restore it from a backup, or move the "
            "experiment folder away (or use a new experiment number) and rerun."))
        if not isinstance(old, dict) or old.get("hash") != manifest["hash"]:
            raise ResultsConflictError(
                f"{folds_file} holds other folds (the dataset, num_folds or [folds] "
                "settings changed since the results there were made). Use a new "
                "experiment number, or move that folder away."
            )
    hashes = {k: P.params_hash(p) for k, p in resolved.items()}
    conflicts, changed = [], {}
    for k, p in resolved.items():
        params_file = exp_dir / f"instance_{k}" / "params.json"
        if params_file.exists() and not overwrite:
            old = read_result_file(params_file, (
                "rerun with --overwrite to replace this instance's results (the old ones are "
                "kept aside until the new ones complete), or restore the file."))
            old_params = old.get("params", {}) if isinstance(old, dict) else {}
            names = P.differing(old_params, p) if isinstance(old, dict) else ["params.json"]
            if not isinstance(old, dict) or (old.get("hash") != hashes[k] and names):
                detail = ", ".join(f"{n}: {old_params.get(n, '<absent>')!r} -> "
                                   f"{p.get(n, '<absent>')!r}" for n in names)
                conflicts.append(f"instance {k} ({detail})")
                added = schema.ADDED_KEYS["training"]
                for n in names:
                    changed.setdefault(n, old_params.get(n, added.get(n)))
    if conflicts:
        hint = ""
        if set(changed) & set(P.PLAIN_TRAINING):
            pinned = ", ".join(f"{n!r}: {v!r}" for n, v in sorted(changed.items()))
            hint = (" If you changed nothing, config.ini's [training] defaults changed since "
                    "(they switch on the generalisation options: SpecAugment, mixup, label "
                    "smoothing, warm-up and cosine, min_epochs, the warps); to keep the results, "
                    f"give the experiment the values they were made with: parameters={{{pinned}}}"
                    " (xval.PLAIN_TRAINING switches every option off).")
        raise ResultsConflictError(
            "Existing results were made with other parameters: " + "; ".join(conflicts)
            + ". Rerun with --overwrite (or overwrite_results=True) to replace them, or "
            "declare a new instance." + hint
        )
    return Plan(exp_dir=exp_dir, store=store, folds=folds, manifest=manifest,
                resolved=resolved, hashes=hashes, config=config, task_type=task_type,
                generator=experiment.generator)
