"""The label sets of a tagging store: one text per row, the labels sorted and joined by
`TAG_SEPARATOR` (`dog;bark` reads `bark;dog`), read, written and checked here (the sources
and `init` read label sets through these)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from xval.core.errors import DatasetError

TAG_SEPARATOR = ";"
"""How a tagging store joins the labels of one row (`label`) and their indices (`target`)."""


def split_tags(text: Any, separator: str = TAG_SEPARATOR) -> list[str]:
    """The labels of one text: split at `separator`, stripped, empty ones left out, each
    once, sorted.

    Example:
    >>> split_tags(" dog; bark ;dog")
    ['bark', 'dog']
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return sorted({part.strip() for part in str(text).split(separator) if part.strip()})


def join_tags(tags: Iterable[Any]) -> str:
    """One text of labels as a tagging store keeps them: sorted, each once, joined by
    `TAG_SEPARATOR`.

    Raises:
        DatasetError: for a label holding `TAG_SEPARATOR` itself.
    """
    names = sorted({str(t).strip() for t in tags if str(t).strip()})
    bad = [n for n in names if TAG_SEPARATOR in n]
    if bad:
        raise DatasetError(f"Label {bad[0]!r} holds {TAG_SEPARATOR!r}, which separates the "
                           "labels of a clip in a tagging store; rename it.")
    return TAG_SEPARATOR.join(names)


def multi_hot(targets: Iterable[Any], n_classes: int) -> np.ndarray:
    """0/1 rows from the `target` texts of a tagging store (`0;3`: classes 0 and 3).

    Returns:
        `np.ndarray [shape=(rows, n_classes)]`, float32.
    """
    texts = list(targets)
    out = np.zeros((len(texts), n_classes), dtype=np.float32)
    for row, text in enumerate(texts):
        for index in split_tags(text):
            out[row, int(index)] = 1.0
    return out


def check_label_sets(sets: Sequence[Sequence[str]], where: str = "the rows") -> None:
    """Refuses labels a tagging store cannot learn: a row without a label, a single label
    set everywhere, or one label per row everywhere (that is classification).

    Args:
        sets: the labels of every row (`split_tags`).
        where: the rows, for the message.

    Raises:
        DatasetError: naming the row or the labels, and the fix.
    """
    empty = [i for i, tags in enumerate(sets) if not tags]
    if empty:
        raise DatasetError(
            f"{len(empty)} of {len(sets)} rows of {where} have no label (the first: row "
            f"{empty[0] + 1}); a tagging clip needs one label at least: label it, leave it "
            "out, or give it a class of its own (--empty-label none).")
    distinct = {tuple(tags) for tags in sets}
    if len(distinct) < 2:
        shown = TAG_SEPARATOR.join(next(iter(distinct), ()))
        raise DatasetError(f"Every row of {where} has the labels {shown!r}: there is nothing "
                           "to learn; a tagging store needs clips with different labels.")
    if all(len(tags) == 1 for tags in sets):
        raise DatasetError(
            f"Every row of {where} has a single label ({len(distinct)} different ones): this "
            "is classification. Use task_type='classification' (no label separator), or "
            "check the separator if the clips do hold several labels.")

