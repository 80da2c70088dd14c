"""`FoldsManifest`: an experiment's `folds.json`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.core.hashing import json_digest
from xval.core.records.base import FORMAT_VERSION, SPLITS, Record, expect


@dataclasses.dataclass
class FoldsManifest(Record):
    """`folds.json`: which items every fold trains, validates and tests on, and a hash.

    With repeated cross-validation (`num_repeats > 1`) the folds run repeat by repeat: fold
    `j * k + f` is fold `f` of repeat `j`, for `k = num_folds / num_repeats` folds per
    repeat (`repeat_of`). `num_repeats` enters the hash only when it is above 1.
    """

    KIND: ClassVar[str] = "fold manifest"

    splitter: str
    dataset_hash: str | None
    folds: list[dict[str, list[str]]]
    hash: str
    num_folds: int = 0
    num_repeats: int = 1
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.num_folds = self.num_folds or len(self.folds)

    @property
    def folds_per_repeat(self) -> int:
        """`k`: the folds of one repeat."""
        return self.num_folds // self.num_repeats

    def repeat_of(self, fold: int) -> tuple[int, int]:
        """`(repeat, fold within the repeat)` of fold number `fold`."""
        return divmod(fold, self.folds_per_repeat)

    def content_hash(self) -> str:
        """The hash of what the manifest holds (splitter, dataset hash, folds, repeats),
        computed now: it differs from the recorded `hash` when the file was edited."""
        return json_digest(hashed_body(self.splitter, self.dataset_hash, self.folds,
                                       self.num_repeats))

    @classmethod
    def _check(cls, data: Mapping[str, Any], read: dict[str, Any]) -> None:
        """Every fold is a dict of train, val and test item lists."""
        for i, fold in enumerate(read["folds"]):
            expect(isinstance(fold, dict) and all(isinstance(fold.get(s), list)
                                                   for s in SPLITS),
                    f"its fold {i} is not a dict of train, val and test item lists")
        repeats = read.get("num_repeats", 1)
        expect(repeats >= 1 and len(read["folds"]) % repeats == 0,
                f"its num_repeats={repeats} does not divide its {len(read['folds'])} folds")


def hashed_body(splitter: str, dataset_hash: str | None, folds: list[Any],
                num_repeats: int = 1) -> dict[str, Any]:
    """What the hash of `folds.json` covers: the splitter, the dataset's hash, the folds,
    and the number of repeats when it is above 1."""
    body: dict[str, Any] = {"splitter": splitter, "dataset_hash": dataset_hash,
                            "folds": folds}
    if num_repeats > 1:
        body["num_repeats"] = num_repeats
    return body
