"""The optional packages a run needs, checked all at once before anything trains.

`check_packages` runs in the dry run and at the start of every run, after the plan and
before the executor starts: `--search` needs Optuna, `--executor ray` Ray, a listener what
it declares (`requires`: `--mlflow` needs MLflow), an instance with an encoder inside its
model (`front_end = aisfx`) that encoder's wheel, a transformers model (`hf:NAME`)
torch and transformers. Every missing package is named in one
message with its install line (`xval.core.optional`), instead of one per attempt, or one
after a fold has trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from architectures.hf import names_model
from preprocessing.features import encoders
from xval.core import optional
from xval.core.errors import ConfigurationError
from xval.core.parameters import InstanceParams
from xval.training.encoder import uses_encoder

__all__ = ["check_packages", "missing_packages"]


def missing_packages(resolved: Mapping[int, InstanceParams], *, search: bool = False,
                     executor: str = "inline", listeners: Iterable[object] = ()
                     ) -> list[str]:
    """What the run needs that is not installed, one line each (`xval.core.optional.need`).

    Args:
        resolved: the planned instances' parameters (instance id -> parameters).
        search: the run is a search (`--search`: Optuna). Defaults to `False`.
        executor: the executor's name (`ray`: Ray). Defaults to `"inline"`.
        listeners: the run's listeners; each may declare `requires`, `(what, extra)` pairs.

    Returns:
        The lines, in the order above (empty when everything is installed).
    """
    needs = [optional.need("--search", "search") if search else "",
             optional.need("--executor ray", "ray") if executor == "ray" else ""]
    for listener in listeners:
        needs += [optional.need(what, extra) for what, extra in getattr(listener, "requires", ())]
    for k, params in resolved.items():
        front_end = str(params.front_end)
        if uses_encoder(params) and names_model(front_end):
            needs.append(optional.need(f"instance {k}: front_end={front_end!r}",
                                       optional.TRANSFORMERS))
        elif uses_encoder(params) and not encoders.installed(front_end):
            entry = encoders.BUILT_IN[front_end]
            absent = [d for d in entry.distributions if encoders.package_version(d) is None]
            needs.append(f"instance {k}: front_end={params.front_end!r} needs "
                         f"{' and '.join(absent)}, not installed: {entry.install}")
    return [line for line in needs if line]


def check_packages(resolved: Mapping[int, InstanceParams], *, search: bool = False,
                   executor: str = "inline", listeners: Iterable[object] = ()) -> None:
    """Refuses a run that needs packages that are not installed, naming every one with
    its install line (see `missing_packages`).

    Raises:
        ConfigurationError: `"--search needs optuna, not installed: pip install -e
            '.[search]'"`, or `"2 optional packages are missing: ...; ..."`.
    """
    message = optional.requirements(missing_packages(resolved, search=search,
                                                     executor=executor, listeners=listeners))
    if message:
        raise ConfigurationError(message + ". Nothing was trained or written.")
