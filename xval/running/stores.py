"""The stores of an experiment's instances: an instance may train on another store of the
same items (its `dataset` parameter: another feature type or encoder over the same files),
checked against the experiment's store so that the experiment's folds are its folds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from preprocessing.store import FeatureStore
from xval.config import params as P
from xval.config.loader import Config
from xval.core.errors import ConfigurationError
from xval.running.declaration import ExperimentDeclaration, check_dataset


def instance_stores(experiment: ExperimentDeclaration, config: Config, selected: list[int],
                    overrides: Mapping[str, Any], store: FeatureStore
                    ) -> dict[int, FeatureStore]:
    """The stores of the instances that name their own `dataset` (in the instance, the
    experiment's `parameters` or `--set`), checked against the experiment's store: the
    same task, classes and items, so that the experiment's folds are theirs.

    Returns:
        instance id -> `FeatureStore`, for the instances whose dataset is not the
        experiment's.

    Raises:
        ConfigurationError: for a bad store name, or a store on other items or classes.
        DatasetError: for a store that does not exist or cannot be read.
    """
    base = P.parse_instance(experiment.parameters or {}, "parameters").get(P.DATASET)
    opened: dict[str, FeatureStore] = {}
    out: dict[int, FeatureStore] = {}
    for k in selected:
        where = f"instance {k}"
        spec = P.parse_instance(experiment.instances[k], where)
        name = overrides.get(P.DATASET, spec.get(P.DATASET, base))
        if name is None or name == experiment.dataset:
            continue
        try:
            name = check_dataset(name, experiment.allow_outside_data_dir)
        except ConfigurationError as e:
            raise ConfigurationError(f"{where}: {e}") from None
        if name not in opened:
            opened[name] = FeatureStore(Path(config.data_dir) / name)
            check_same_items(store, opened[name], experiment.dataset, name, where)
        out[k] = opened[name]
    return out


def check_same_items(store: FeatureStore, other: FeatureStore, dataset: str, name: str,
                     where: str) -> None:
    """Refuses an instance's store whose task, classes or items are not the experiment's
    (the folds are over the experiment's items: another store must hold the same ones).

    Raises:
        ConfigurationError: naming what differs and the fix.
    """
    fix = ("build both stores from the same files (e.g. `python -m preprocessing ... "
           "--encoders aisfx` over the folder the experiment's store came from)")
    if other.task_type != store.task_type:
        raise ConfigurationError(
            f"{where}: dataset={name!r} is a {other.task_type} store, the experiment's "
            f"{dataset!r} a {store.task_type} store; {fix}.")
    if (store.classes or other.classes) and list(other.classes) != list(store.classes):
        raise ConfigurationError(
            f"{where}: dataset={name!r} has classes {other.classes}, the experiment's "
            f"{dataset!r} {store.classes}; {fix}.")
    mine, theirs = set(map(str, store.items)), set(map(str, other.items))
    if mine != theirs:
        missing, extra = sorted(mine - theirs), sorted(theirs - mine)
        raise ConfigurationError(
            f"{where}: dataset={name!r} holds other items than the experiment's {dataset!r} "
            f"(missing {len(missing)}: {', '.join(missing[:3]) or '-'}; extra {len(extra)}: "
            f"{', '.join(extra[:3]) or '-'}), so the experiment's folds are not its folds; "
            f"{fix}.")
