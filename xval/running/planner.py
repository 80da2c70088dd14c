"""The planner: from an experiment declaration to a `Plan` (instances x folds to run).

Everything is resolved and checked here, before anything is written or trained: every
instance's parameters, the dataset, the folds, and every conflict with results on disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import architectures
from architectures.hf import names_model
from preprocessing import features
from preprocessing.duplicates.folds import refuse_duplicates
from preprocessing.features import FeatureType
from preprocessing.store import FeatureStore
from xval import tasks
from xval.config import embedding, schema
from xval.config import params as P
from xval.config.effective import Setting, format_settings, instance_settings
from xval.config.loader import Config
from xval.core.backend import AUTO
from xval.core.errors import (
    ConfigurationError,
    DatasetError,
    ParameterError,
    ResultsConflictError,
    XvalError,
)
from xval.core.layout import INSTANCE_OUTPUT, ExperimentLayout
from xval.core.outputs import check_output_folder, check_replace
from xval.core.parameters import DATASET, MANDATORY, InstanceParams
from xval.core.records import FoldsManifest, Job, ParamsRecord
from xval.core.storage import ResultsStore
from xval.folds import split_validation
from xval.running.declaration import ExperimentDeclaration, InstanceSpec
from xval.running.own_code import own_script
from xval.running.splitting import Folds, make_folds
from xval.running.stores import instance_stores
from xval.training.front_end import check_front_end
from xval.training.model import check_transfer

Resolver = Callable[[int, InstanceSpec], InstanceParams]
"""`(instance_id, spec) -> resolved parameters`."""

PARAMS_FIX = ("rerun with --overwrite to replace this instance's results (the old ones are "
              "kept aside until the new ones complete), or restore the file.")


@dataclasses.dataclass
class Plan:
    """What a run will do.

    Attributes:
        layout: the `experiment_<N>` folder's paths.
        store: the `FeatureStore`.
        folds: one `{"train", "val", "test"}` item dict per fold.
        manifest: the content of `folds.json` (folds and their hash).
        resolved: instance id -> resolved parameters, in run order.
        hashes: instance id -> parameter hash.
        config: the run's `Config`.
        task_type: the experiment's task type.
        generator: stream batches from the store.
        stores: instance id -> the `FeatureStore` of an instance that names its own
            `dataset` (another store on the same items: same folds); the others use
            `store`.
        overrides: the `--set` values the instances were resolved with (recorded in
            every `params.json`, so that `--refit` resolves them the same way).
        results_store: the results store the run reads and writes through (handed in by
            the entry point: `Experiment` gives the process's, `RESULTS_STORE`).
        script: the experiment script that defines an architecture or the task of its own
            (`xval.running.own_code.own_script`), handed to every job; `None`: none.
    """

    layout: ExperimentLayout
    store: FeatureStore
    folds: list[dict[str, list[str]]]
    manifest: FoldsManifest
    resolved: dict[int, InstanceParams]
    hashes: dict[int, str]
    config: Config
    task_type: str
    generator: bool
    results_store: ResultsStore
    stores: dict[int, FeatureStore] = dataclasses.field(default_factory=dict)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    script: str | None = None

    def store_of(self, instance: int) -> FeatureStore:
        """The store `instance` trains on: its own `dataset`, else the experiment's."""
        return self.stores.get(instance, self.store)

    def all_stores(self) -> list[FeatureStore]:
        """Every store the planned jobs read, the experiment's first."""
        seen = {str(self.store.path): self.store}
        for store in self.stores.values():
            seen.setdefault(str(store.path), store)
        return list(seen.values())

    @property
    def exp_dir(self) -> Path:
        """The `experiment_<N>` folder."""
        return self.layout.root

    @property
    def num_folds(self) -> int:
        return len(self.folds)

    def job(self, instance: int, fold: int) -> Job:
        """The `Job` of fold `fold` of `instance`, with the items its saved embedding
        models were trained on (read here: a job reads no result file)."""
        store, params = self.store_of(instance), self.resolved[instance]
        return Job(instance=instance, fold=fold, params=params,
                   params_hash=self.hashes[instance],
                   items=split_validation(self.folds[fold], params.rank_split, fold),
                   task_type=self.task_type, generator=self.generator,
                   store=str(Path(store.path).resolve()), store_hash=store.content_hash,
                   log_dir=str(self.layout.instance(instance).log_dir(fold)),
                   embedding_items=embedding_items(params, fold, self.results_store),
                   device_data_mb=self.config.backend.device_data_mb,
                   jobs_per_gpu=self.config.backend.jobs_per_gpu, script=self.script,
                   compile_cache=self.config.backend.compile_cache)

    def jobs(self, instance: int, folds: list[int]) -> list[Job]:
        """The `Job`s of `instance` for the fold indices `folds`."""
        return [self.job(instance, i) for i in folds]

    def describe(self, out: Callable[..., None], experiment: ExperimentDeclaration) -> None:
        """Prints the plan (the dry run): the folds, and each instance's values that differ
        from the package defaults or that the experiment names, with where each came from
        (`python -m xval config SCRIPT K` prints every value)."""
        out(f"Dry run of experiment {experiment.number} on {experiment.dataset!r} "
            f"({len(self.store)} rows, {self.store.info.n_items} items): nothing is trained "
            "or written.")
        out(f"Results would go to {self.exp_dir}")
        out(f"Folds ({self.manifest.splitter}, hash {self.manifest.hash[:12]}):")
        for i, fold in enumerate(self.folds):
            repeat, within = self.manifest.repeat_of(i)
            where = f" (repeat {repeat}, fold {within})" if self.manifest.num_repeats > 1 \
                else ""
            out(f"  fold {i}{where}: train {len(fold['train'])} items, "
                f"val {_some(fold['val'])}, test {_some(fold['test'])}")
        script = _shown_path(experiment.script) if experiment.script else "SCRIPT"
        out(f"Each instance's values set by {_file_name(self.config)}, the experiment, the "
            f"instance or --set, or fitted to it (all of them: `python -m xval config "
            f"{script} K`):")
        for k, params in self.resolved.items():
            path = str(self.config.path) if self.config.path else None
            rows = [dataclasses.replace(row, source=_file_name(self.config))
                    if row.source == path else row
                    for row in parameter_sources(experiment, self.config, k, params,
                                             self.overrides) if row.chosen]
            out(f"Instance {k}:" if rows else f"Instance {k}: the package defaults")
            for line in format_settings(rows, indent="  ").splitlines():
                out(line)


def parameter_sources(experiment: ExperimentDeclaration, config: Config, instance: int,
                      params: InstanceParams, overrides: Mapping[str, Any]) -> list[Setting]:
    """Every parameter of a resolved instance with where it came from (`Setting.source`:
    the config file, `experiment`, `instance <k>`, `--set`, a default, or fitted to the
    instance) and its package default: the instance's names first (architecture,
    reshaping, comments, dataset), then the `[training]` keys, then the architecture's
    keywords."""
    layers = P.instance_layers(instance, experiment.instances[instance],
                               experiment.parameters, overrides)
    rows = instance_settings(config, params, layers,
                             P.instance_defaults(params.architecture, architectures))
    first = (*MANDATORY, DATASET)
    return sorted(rows, key=lambda row: first.index(row.key) if row.key in first
                  else len(first))


def _file_name(config: Config) -> str:
    return config.path.name if config.path else "config.ini"


def embedding_items(params: InstanceParams, fold: int, results_store: ResultsStore
                    ) -> dict[str, list[str] | None]:
    """Saved embedding model of fold `fold` (its path) -> the items it was trained and
    validated on, from the fold record beside it (`ResultsStore.model_items`): read here,
    so that the job checks a leak without reading a result file (`Job.embedding_items`)."""
    if not params.embeds:
        return {}
    return {str(p): results_store.model_items(Path(p)) for p in embedding.sources(params, fold)
            if p != embedding.SELF}


def _shown_path(path: str) -> str:
    """A path as a command line here would give it: relative to the current directory
    when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _some(items: Sequence[str], shown: int = 6) -> str:
    """A fold's items in a dry run: all of a few, else how many and the first `shown`."""
    if len(items) <= shown:
        return str(list(items))
    return f"{len(items)} items [{', '.join(repr(i) for i in items[:shown])}, ...]"


def backend_for(experiment: ExperimentDeclaration, ids: Sequence[int], config: Config,
                overrides: Mapping[str, Any] | None = None) -> str:
    """`[backend] backend`, where it is `auto` and one of the instances `ids` holds a
    transformers network inside its model (`front_end = "hf:..."`, which runs in torch
    only): `"torch"`. An instance that does not resolve is left to the plan to refuse.

    Args:
        experiment: the declaration.
        ids: the instances to run (ensembles among them train nothing).
        config: the run's `Config`.
        overrides: `--set` values.
    """
    chosen = config.backend.backend
    if chosen != AUTO:
        return chosen
    resolve = resolver(experiment, config, overrides)
    for k in ids:
        if k in experiment.ensembles:
            continue
        try:
            front_end = resolve(k, experiment[k]).front_end  # type: ignore[arg-type]
        except XvalError:
            continue
        if names_model(front_end):
            return "torch"
    return chosen


def resolver(experiment: ExperimentDeclaration, config: Config,
             overrides: Mapping[str, Any] | None = None,
             feature: FeatureType | None = None, encoder_layers: int = 0) -> Resolver:
    """Instance resolution with the experiment's defaults, parameters and task and the
    registered architectures.

    Args:
        experiment: the declaration.
        config: the run's `Config` (its `[training]` defaults).
        overrides: `--set` values.
        feature: the store's registered feature type (some defaults follow it), or `None`.
        encoder_layers: the encoder layers side by side in a `pretrained` store's rows
            (`dataset.json` `front_end.layers`), or `0`: an instance's `encoder_layers=0`
            (the pretrained heads' default) becomes this number.

    Returns:
        `(instance_id, spec) -> params`.
    """
    def resolve(instance_id: int, spec: InstanceSpec) -> InstanceParams:
        params = P.resolve(instance_id, spec, training_defaults=config.training,
                           architectures=architectures,
                           experiment_params=experiment.parameters,
                           overrides=dict(overrides or {}), task_type=experiment.task_type,
                           feature=feature, feature_types=features.front_end_features)
        if params.keywords.get("encoder_layers") == 0 and encoder_layers:
            params = params.replace(keywords={**params.keywords,
                                              "encoder_layers": encoder_layers})
        return params

    return resolve


def make_plan(experiment: ExperimentDeclaration, config: Config, selected: list[int],
              overrides: Mapping[str, Any], overwrite: bool, *, results_store: ResultsStore,
              inner: tuple[ExperimentLayout, Folds, FoldsManifest] | None = None,
              check_params: bool = True) -> Plan:
    """Resolves and checks everything a run needs.

    Args:
        experiment: the declaration.
        config: the `Config`.
        selected: instance ids to run.
        overrides: `--set` values.
        overwrite: whether existing results may be replaced.
        results_store: the results store to read the folders' records through
            (`Plan.results_store`).
        inner: for one outer fold of a nested search, its folder, its inner folds and
            their manifest (`xval.running.nested`), which the plan uses instead of the
            experiment's; `None` for the experiment's own.
        check_params: refuse results made with other parameters (unless `overwrite`).
            Defaults to `True`; a refit compares them itself (`xval.running.refit`).

    Returns:
        A `Plan`.

    Raises:
        ParameterError, ConfigurationError, DatasetError: for bad instances or data.
        ResultsConflictError: when results on disk were made with other folds or
            parameters (and `overwrite` is off), or a result file is unreadable.
    """
    experiment.check_preference()  # the selection's order names declared instances
    store = FeatureStore(Path(config.data_dir) / experiment.dataset)
    store.verify()  # its files hold what dataset.json's hashes say (not edited in place)
    refuse_duplicates(store, config.data.duplicates)  # error: no test item copied in training
    stores = instance_stores(experiment, config, selected, overrides, store)
    for other in {id(s): s for s in stores.values() if s is not store}.values():
        other.verify()
    resolved = resolve_instances(experiment, config, selected, overrides, store, stores)
    check_store_task(experiment, store)
    task = tasks.get(experiment.task_type)
    for k, params in resolved.items():
        check_front_end(params, stores.get(k, store).info, f"instance {k}")
        try:  # a store the task's mixer cannot mix (pcen), refused before any fold
            task.targets.mixer(params, stores.get(k, store).info.feature_params, features, 0)
        except ParameterError as e:
            raise ParameterError(f"instance {k}: {e}") from None
        if params.load_model:
            check_transfer(params, tuple(stores.get(k, store).features.shape[1:]),
                           f"instance {k}")
    folds, manifest = make_folds(experiment, config, store)
    layout = ExperimentLayout.of(Path(experiment.experiment_folder or config.results_dir),
                                 experiment.dataset, experiment.number)
    if inner is not None:
        layout, folds, manifest = inner
    for params in resolved.values():  # fold sets too small for the rank split: refused now
        for i, fold in enumerate(folds):
            split_validation(fold, params.rank_split, i)
    check_results_folders(layout, selected, overwrite)
    check_folds_file(layout, manifest, results_store)
    hashes = {k: P.params_hash(p) for k, p in resolved.items()}
    if check_params and not overwrite:
        check_params_files(layout, resolved, hashes, results_store)
    return Plan(layout=layout, store=store, folds=folds, manifest=manifest,
                resolved=resolved, hashes=hashes, config=config,
                task_type=experiment.task_type, generator=experiment.generator,
                results_store=results_store, stores=stores, overrides=dict(overrides),
                script=own_script(experiment, resolved))


def resolve_instances(experiment: ExperimentDeclaration, config: Config, selected: list[int],
                      overrides: Mapping[str, Any], store: FeatureStore | None,
                      stores: Mapping[int, FeatureStore]) -> dict[int, InstanceParams]:
    """The selected instances' parameters, each resolved with the facts of the store it
    trains on (its feature type, its encoder's layers).

    Args:
        experiment: the declaration.
        config: the `Config`.
        selected: instance ids.
        overrides: `--set` values.
        store: the experiment's store, or `None` when it is not built yet (the values that
            follow the store are then not fitted to it).
        stores: instance id -> the store of an instance that names its own (`instance_stores`).

    Returns:
        instance id -> `InstanceParams` (`dataset` left out when it is the experiment's).

    Raises:
        DatasetError: for a store whose recorded feature type is none registered (an edited
            `dataset.json`: each fold would fail).
    """
    resolved = {}
    for k in selected:
        info = own.info if (own := stores.get(k, store)) is not None else None
        name = info.feature if info is not None else None
        if own is not None and name is not None and name not in features.TYPES:
            raise DatasetError(
                f"{own.path}: its dataset.json names the feature type {name!r}, which is "
                f"none registered here ({', '.join(features.TYPES)}); the store was edited "
                "or built with a feature type this run does not import: rebuild it "
                "(`python -m preprocessing ... --overwrite`), or register its type first.")
        feature = features.get(name) if name is not None else None
        resolved[k] = resolver(experiment, config, overrides, feature,
                               info.encoder_layers if info is not None else 0
                               )(k, experiment.instances[k])
        if resolved[k].dataset == experiment.dataset:  # the experiment's own: no other
            resolved[k] = resolved[k].replace(dataset=None)
    return resolved


def check_store_task(experiment: ExperimentDeclaration, store: FeatureStore) -> None:
    """Refuses a store the experiment's task does not take (`Task.takes_store`: a store of
    another task, unless the task learns from the rows alone).

    Raises:
        ConfigurationError: naming the store's task and the experiment's.
    """
    if not tasks.get(experiment.task_type).takes_store(store.task_type):
        raise ConfigurationError(
            f"Dataset {experiment.dataset!r} is a {store.task_type} store but the experiment "
            f"says task_type={experiment.task_type!r}."
        )


def check_results_folders(layout: ExperimentLayout, instances: list[int],
                          overwrite: bool) -> None:
    """The output rule for the results folder, before anything is written: its folders are
    folders (the experiment's, its `.locks`, every selected instance's), and with
    `overwrite` an instance folder is replaced only when it holds nothing but results
    (`INSTANCE_OUTPUT`).

    Raises:
        ConfigurationError: naming the path and the fix.
    """
    check_output_folder(layout.root, what="the results folder")
    locks = layout.root / ".locks"
    if locks.is_symlink() or (locks.exists() and not locks.is_dir()):
        raise ConfigurationError(f"{locks} is not a folder (it holds the run's locks); "
                                 "remove it and rerun.")
    for k in instances:
        instance = layout.instance(k)
        for path in (instance.root, instance.previous):
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise ConfigurationError(
                    f"{path} exists and is not a folder; instance {k}'s results go there. "
                    "Move it away and rerun.")
            if overwrite:
                check_replace(path, INSTANCE_OUTPUT, overwrite=True,
                              what=f"instance {k}'s folder")


def check_folds_file(layout: ExperimentLayout, manifest: FoldsManifest,
                     results_store: ResultsStore) -> None:
    """Refuses results whose `folds.json` holds other folds than the planned ones.

    Raises:
        ResultsConflictError: for other folds, a `folds.json` that is not a manifest, or
            one edited after it was written (`RESULTS_STORE.manifest` checks its hash).
    """
    path = layout.folds_file
    old = results_store.manifest(layout)
    if old is not None and old.hash != manifest.hash:
        raise ResultsConflictError(
            f"{path} holds other folds (the dataset, num_folds or [folds] settings changed "
            "since the results there were made). Use a new experiment number, or move that "
            "folder away."
        )


def check_params_files(layout: ExperimentLayout, resolved: Mapping[int, InstanceParams],
                       hashes: Mapping[int, str], results_store: ResultsStore) -> None:
    """Refuses to resume instances whose `params.json` holds other parameters.

    Raises:
        ResultsConflictError: naming every changed parameter of every instance (and the
            values to pin when only config.ini's defaults changed), or for a `params.json`
            that is not a parameter record.
    """
    conflicts, changed = params_conflicts(layout, resolved, hashes, results_store)
    if conflicts:
        raise ResultsConflictError(
            "Existing results were made with other parameters: "
            + "; ".join(f"instance {k} ({what})" for k, what in conflicts.items())
            + ". Rerun with --overwrite (or overwrite_results=True) to replace them, or "
            "declare a new instance." + defaults_hint(changed)
        )


def params_conflicts(layout: ExperimentLayout, resolved: Mapping[int, InstanceParams],
                     hashes: Mapping[int, str], results_store: ResultsStore
                     ) -> tuple[dict[int, str], dict[str, Any]]:
    """The instances whose `params.json` holds other parameters than `resolved`.

    Returns:
        `(conflicts, changed)`: instance id -> what differs, in words (`learning_rate:
        0.001 -> 0.003`, or `its params.json says instance 4`); and each changed name ->
        the value the results were made with (for `defaults_hint`).

    Raises:
        ResultsConflictError: for a `params.json` that is not a parameter record, or was
            edited after it was written.
    """
    conflicts: dict[int, str] = {}
    changed: dict[str, Any] = {}
    added = schema.ADDED_KEYS["training"]
    for k, p in resolved.items():
        path = layout.instance(k).params_file
        if not path.exists():
            continue
        old = results_store.require(path, ParamsRecord.from_dict, PARAMS_FIX)
        edited = P.edited_params(old.params, old.hash)
        if edited:
            raise ResultsConflictError(f"{path} {edited}; the results there may not have been "
                                       f"trained with what it says. {PARAMS_FIX}")
        names = P.differing(old.params, p)
        if old.instance != k:
            conflicts[k] = f"its params.json says instance {old.instance}"
        elif old.hash != hashes[k] and names:
            conflicts[k] = ", ".join(f"{n}: {old.params.get(n, '<absent>')!r} -> "
                                     f"{p.get(n, '<absent>')!r}" for n in names)
            for n in names:
                changed.setdefault(n, old.params.get(n, added.get(n)))
    return conflicts, changed


def defaults_hint(changed: Mapping[str, Any]) -> str:
    """What to pin when the changed names are generalisation options whose config.ini
    defaults may have changed since the results were made, or a task's own training
    defaults or parameters (detection's `boundary_weight`)."""
    pinned = ", ".join(f"{n!r}: {v!r}" for n, v in sorted(changed.items()))
    own = sorted(set(changed) & {n for name in tasks.names()
                                 for n in tasks.get(name).training_defaults}
                 | set(changed) & set(tasks.parameter_keys()))
    if own and not set(changed) & set(P.PLAIN_TRAINING):
        return (f" If you changed nothing, the task's own default of {', '.join(own)} "
                "changed since; to keep the results, give the experiment the values they "
                f"were made with: parameters={{{pinned}}}.")
    if not set(changed) & set(P.PLAIN_TRAINING):
        return ""
    return (" If you changed nothing, config.ini's [training] defaults changed since "
            "(they switch on the generalisation options: SpecAugment, mixup, label "
            "smoothing, warm-up and cosine, min_epochs, the warps); to keep the results, "
            f"give the experiment the values they were made with: parameters={{{pinned}}}"
            " (xval.PLAIN_TRAINING switches every option off).")
