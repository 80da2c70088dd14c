"""An instance's parameters for `python -m xval config SCRIPT K`: resolved as its run
resolves them (with the facts of the store it trains on, when it is built), each with its
source. A module of its own so that `python -m xval config` without a script imports no
planner (`xval.cli.config.INSTANCE_SETTINGS`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from preprocessing.store import FeatureStore
from xval.config.effective import Setting, settings
from xval.config.loader import Config
from xval.config.params import parse_overrides
from xval.core.errors import ConfigurationError, DatasetError
from xval.running.declaration import ExperimentDeclaration
from xval.running.planner import parameter_sources, resolve_instances
from xval.running.stores import instance_stores


def command_settings(experiment: ExperimentDeclaration, config: Config,
                     args: argparse.Namespace) -> list[Setting]:
    """The configuration, and instance K's parameters as its run resolves them (with the
    store it trains on, when it is built), each with its source."""
    if not experiment.instances:
        raise ConfigurationError(f"{args.experiment} declares no instances; declare one "
                                 "(`experiment[1] = {\"architecture\": ...}`).")
    k = sorted(experiment.instances)[0] if args.instance is None else args.instance
    if k in experiment.ensembles:
        raise ConfigurationError(f"instance {k} is {experiment.ensembles[k]!r}: it trains "
                                 "nothing, so it has no parameters of its own; give one of "
                                 "its members.")
    if k not in experiment.instances:
        raise ConfigurationError(f"instance {k}: the experiment declares instances "
                                 f"{sorted(experiment.instances)}; give one of them.")
    overrides = parse_overrides(args.set)
    experiment, overrides = experiment.with_settings(overrides)
    try:
        store: FeatureStore | None = FeatureStore(Path(config.data_dir) / experiment.dataset)
    except DatasetError:
        store = None
    stores = instance_stores(experiment, config, [k], overrides, store) \
        if store is not None else {}
    params = resolve_instances(experiment, config, [k], overrides, store, stores)[k]
    print(f"# {args.experiment}: instance {k} ({experiment.task_type})"
          + ("" if store is not None else f"; store {experiment.dataset!r} not built yet: "
             "defaults that follow the store are not fitted to it"))
    rows = [r for r in settings(config) if r.section != "training"]
    return rows + parameter_sources(experiment, config, k, params, overrides)
