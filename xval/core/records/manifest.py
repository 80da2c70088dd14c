"""`FoldsManifest`: an experiment's `folds.json`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.core.hashing import json_digest
from xval.core.records.base import FORMAT_VERSION, SPLITS, Record, require


@dataclasses.dataclass
class FoldsManifest(Record):
    """`folds.json`: which items every fold trains, validates and tests on, and a hash."""

    KIND: ClassVar[str] = "fold manifest"

    splitter: str
    dataset_hash: str | None
    folds: list[dict[str, list[str]]]
    hash: str
    num_folds: int = 0
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.num_folds = self.num_folds or len(self.folds)

    def content_hash(self) -> str:
        """The hash of what the manifest holds (splitter, dataset hash, folds), computed
        now: it differs from the recorded `hash` when the file was edited."""
        return json_digest({"splitter": self.splitter, "dataset_hash": self.dataset_hash,
                            "folds": self.folds})

    @classmethod
    def _check(cls, data: Mapping[str, Any], read: dict[str, Any]) -> None:
        """Every fold is a dict of train, val and test item lists."""
        for i, fold in enumerate(read["folds"]):
            require(isinstance(fold, dict) and all(isinstance(fold.get(s), list)
                                                   for s in SPLITS),
                    f"its fold {i} is not a dict of train, val and test item lists")
