"""`ParamsRecord`: an instance's `params.json`."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from xval.core.records.base import FORMAT_VERSION, Record


@dataclasses.dataclass
class ParamsRecord(Record):
    """`params.json`: an instance's resolved parameters and their hash.

    `overrides` holds the command line's `--set` values the run resolved them with (`{}`:
    none), so that `--refit` resolves the instance as the run did.
    """

    KIND: ClassVar[str] = "parameter record"

    instance: int
    hash: str
    params: dict[str, Any]
    task_type: str | None = None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: int = FORMAT_VERSION
