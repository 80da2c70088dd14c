"""The effective configuration: every value and the layer it comes from.

Layers, later wins: the package defaults < the config file < (for `[training]`, the instance
parameters) the experiment's `parameters` < the instance < `--set`. A value no layer names
that resolution fitted to the instance (a default `min_epochs` scaled to a short run, a
default `freq_masks` dropped for an encoder's store: `xval.config.options.fit_defaults`)
says so. `python -m xval config` prints every row; a dry run prints an instance's rows that
some layer sets or that differ from the package defaults (`Setting.chosen`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import xval.config.schema as schema
from xval.config.loader import PACKAGE_DEFAULT, Config

ARCHITECTURE_DEFAULT = "architecture default"
"""The source of an architecture keyword no layer names: the builder's own default."""
FITTED = "fitted to the instance"
"""The source of a default that resolution changed to fit the instance (its task, its store,
its number of epochs)."""
_UNSET = object()


@dataclasses.dataclass(frozen=True)
class Setting:
    """One effective value: where it is set, what it is, where it came from, the
    package's own value (a key's default, an architecture keyword's default) when known,
    and whether a layer of the experiment (its parameters, the instance, `--set`) names it.
    """

    section: str
    key: str
    value: Any
    source: str
    default: Any = _UNSET
    named: bool = False

    @property
    def chosen(self) -> bool:
        """Whether someone chose this value: a layer of the experiment names it (a default
        named there counts), or it differs from the package default (set in the config
        file, or fitted to the instance)."""
        if self.named:
            return True
        if self.source in (PACKAGE_DEFAULT, ARCHITECTURE_DEFAULT):
            return False
        return self.default is _UNSET or not _same(self.value, self.default)


def _same(a: Any, b: Any) -> bool:
    """`a == b`, a bool never equal to a number (`True == 1`)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def settings(config: Config, *, params: Mapping[str, Any] | None = None,
             layers: Sequence[tuple[str, Mapping[str, Any]]] = (),
             defaults: Mapping[str, Any] | None = None) -> list[Setting]:
    """Every value of `config`, and with `params` an instance's resolved parameters.

    Args:
        config: the loaded configuration.
        params: an instance's resolved parameters (`xval.config.params.resolve`), or `None`
            for the configuration alone.
        layers: `(source, values)` of the instance's layers in order (experiment
            parameters, instance, `--set`): a name's source is the last layer naming it.
        defaults: the package's own values of the instance's names that are not
            `[training]` keys (its architecture's keyword defaults, `reshaping_type`'s),
            or `None`.

    Returns:
        The settings, section by section in the schema's order; with `params`, the
        `[training]` section holds the instance's parameters (its architecture's keywords
        included, as `architecture default` unless a layer names them).
    """
    rows = []
    for section, keys in schema.SCHEMA.items():
        if section == "training" and params is not None:
            continue
        for key, spec in keys.items():
            rows.append(Setting(section, key, getattr(config, section)[key],
                                config.source(section, key), spec.default))
    if params is not None:
        rows += instance_settings(config, params, layers, defaults or {})
    return rows


def instance_settings(config: Config, params: Mapping[str, Any],
                      layers: Sequence[tuple[str, Mapping[str, Any]]],
                      defaults: Mapping[str, Any]) -> list[Setting]:
    """An instance's parameters, each with its source and its package default (see
    `settings`)."""
    training = schema.SCHEMA["training"]
    rows = []
    for key, value in params.items():
        source = next((name for name, values in reversed(layers) if key in values), None)
        named = source is not None
        if source is None:
            configured = config.training[key] if key in training else \
                defaults.get(key, value)
            source = config.source("training", key) if key in training else \
                ARCHITECTURE_DEFAULT
            if not _same(value, configured):
                source = FITTED
        default = training[key].default if key in training else defaults.get(key, _UNSET)
        rows.append(Setting("training", key, value, source, default, named))
    return rows


def format_settings(rows: Sequence[Setting], indent: str = "") -> str:
    """The settings as text: `[section]`, then `key = value  # source` lines.

    Args:
        rows: the settings.
        indent: put before every `key = value` line; with it, no `[section]` lines (the
            rows of one instance in a dry run). Defaults to `""`.
    """
    lines: list[str] = []
    section = None
    width = max((len(f"{r.key} = {_text(r)}") for r in rows), default=0)
    for row in rows:
        if row.section != section and not indent:
            section = row.section
            lines += ([""] if lines else []) + [f"[{section}]"]
        assignment = f"{row.key} = {_text(row)}"
        lines.append(f"{indent}{assignment.ljust(width)}  # {row.source}")
    return "\n".join(lines)


def _text(row: Setting) -> str:
    spec = schema.SCHEMA.get(row.section, {}).get(row.key)
    return spec.text(row.value) if spec is not None else repr(row.value)
