"""The effective configuration: every value and the layer it comes from.

Layers, later wins: the package defaults < the config file < (for `[training]`, the instance
parameters) the experiment's `parameters` < the instance < `--set`. `python -m xval config`
prints these rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import xval.config.schema as schema
from xval.config.loader import Config


@dataclasses.dataclass(frozen=True)
class Setting:
    """One effective value: where it is set, what it is, where it came from."""

    section: str
    key: str
    value: Any
    source: str


def settings(config: Config, *, params: Mapping[str, Any] | None = None,
             layers: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> list[Setting]:
    """Every value of `config`, and with `params` an instance's resolved parameters.

    Args:
        config: the loaded configuration.
        params: an instance's resolved parameters (`xval.config.params.resolve`), or `None`
            for the configuration alone.
        layers: `(source, values)` of the instance's layers in order (experiment
            parameters, instance, `--set`): a name's source is the last layer naming it.

    Returns:
        The settings, section by section in the schema's order; with `params`, the
        `[training]` section holds the instance's parameters (its architecture's keywords
        included, as `architecture default` unless a layer names them).
    """
    rows = []
    for section, keys in schema.SCHEMA.items():
        if section == "training" and params is not None:
            continue
        for key in keys:
            rows.append(Setting(section, key, getattr(config, section)[key],
                                config.source(section, key)))
    if params is not None:
        for key, value in params.items():
            source = next((name for name, values in reversed(layers) if key in values), None)
            if source is None:
                source = config.source("training", key) if key in config.training \
                    else "architecture default"
            rows.append(Setting("training", key, value, source))
    return rows


def format_settings(rows: Sequence[Setting]) -> str:
    """The settings as text: `[section]`, then `key = value  # source` lines."""
    lines: list[str] = []
    section = None
    width = max((len(f"{r.key} = {_text(r)}") for r in rows), default=0)
    for row in rows:
        if row.section != section:
            section = row.section
            lines += ([""] if lines else []) + [f"[{section}]"]
        assignment = f"{row.key} = {_text(row)}"
        lines.append(f"{assignment.ljust(width)}  # {row.source}")
    return "\n".join(lines)


def _text(row: Setting) -> str:
    spec = schema.SCHEMA.get(row.section, {}).get(row.key)
    return spec.text(row.value) if spec is not None else repr(row.value)
