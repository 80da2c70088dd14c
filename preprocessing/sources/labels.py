"""Clips with several labels: the separators a label column may use, and the label sets of a
source's rows, each written as a tagging store keeps it (`xval.tasks.tagging.join_tags`:
sorted, joined by `;`).

A source that reads label sets marks its rows `rows.attrs["multi_label"] = True`, which
`python -m xval init` and `python -m preprocessing` read to build a tagging store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from preprocessing.sources.base import Option
from xval.core.errors import ConfigurationError, DatasetError
from xval.tasks.tagging import Tagging, join_tags, split_tags

__all__ = ["DETECTED", "FSD50K_COLUMNS", "LABEL_SETS_TASK", "LABEL_SET_OPTIONS", "MULTI_LABEL",
           "SEPARATORS", "detect_separator", "fsd50k_layout", "is_label_list", "label_set",
           "label_sets", "parse_separator"]

SEPARATORS = {";": "semicolon", "|": "pipe", ",": "comma", " ": "space", "\t": "tab"}
"""The separators of a label column's labels (`--label-separator`), by character and name."""
DETECTED = (";", "|")
"""The separators `init` recognises in a manifest's label column without being told (a comma
or a space may be part of one label's name: give them with `--label-separator`)."""
FSD50K_COLUMNS = ("fname", "labels", "mids", "split")
"""The columns of FSD50K's ground truth (`dev.csv`; `eval.csv` has no `split`): a clip id
(`<fname>.wav`), its labels and AudioSet ids separated by commas, and the set."""
MULTI_LABEL = "multi_label"
"""The `rows.attrs` key a source sets when its labels are sets."""
LABEL_SETS_TASK = Tagging.name
"""The task of a store of rows whose labels are sets (`xval.tasks.tagging`)."""


def parse_separator(text: str) -> str:
    """The separator named by `text`: one of `SEPARATORS`, as its character or its name.

    Raises:
        ValueError: for any other text, listing the known ones.
    """
    if text in SEPARATORS:
        return text
    for char, name in SEPARATORS.items():
        if text.strip().lower() == name:
            return char
    known = ", ".join(f"{c!r} ({n})" for c, n in SEPARATORS.items())
    raise ValueError(f"--label-separator {text!r}: unknown separator; expected one of {known}.")


def detect_separator(values: Iterable[Any]) -> str | None:
    """The separator of `DETECTED` that some label holds, or `None` when none does.

    Raises:
        DatasetError: when labels hold more than one of them (give `--label-separator`).
    """
    texts = [str(v) for v in values]
    found = [sep for sep in DETECTED if any(sep in t for t in texts)]
    if len(found) > 1:
        raise DatasetError(
            f"The labels hold both {found[0]!r} and {found[1]!r}: which one separates the "
            "labels of a clip? Give it with --label-separator.")
    return found[0] if found else None


def label_sets(values: Sequence[Any], separator: str, *, where: Sequence[str],
               empty_label: str | None = None, column: str = "label") -> list[str]:
    """Every row's labels, split at `separator`, as a tagging store keeps them.

    Args:
        values: the label column's values.
        separator: what separates a clip's labels (`parse_separator`).
        where: each row, for messages (`"row 7 of labels.csv"`).
        empty_label: the class of a clip without a label (`--empty-label none`); `None`:
            such a clip is refused. Defaults to `None`.
        column: the label column's name, for messages. Defaults to `"label"`.

    Returns:
        One text per row (`"bark;dog"`).

    Raises:
        DatasetError: for a clip without a label (unless `empty_label`), an `empty_label`
            that is already a class, or a column where no label holds the separator (one
            label per clip: classification).
    """
    if empty_label is not None and not str(empty_label).strip():
        raise ConfigurationError("--empty-label: give the class of clips without a label "
                                 "(e.g. none).")
    texts = ["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
             for v in values]
    if texts and not any(separator in t for t in texts):
        raise DatasetError(
            f"No label of the column {column!r} holds the separator {separator!r} "
            f"({SEPARATORS.get(separator, separator)}): every clip has one label, so this "
            "is classification (leave out --label-separator), or the labels are separated "
            f"by another character (e.g. {texts[0]!r}).")
    sets = [split_tags(text, separator) for text in texts]
    if empty_label is not None and str(empty_label).strip() in {t for tags in sets for t in tags}:
        raise DatasetError(
            f"--empty-label {str(empty_label).strip()!r} is already a class of the column "
            f"{column!r}: the clips without a label would be merged into it; give a name no "
            "clip holds (e.g. none).")
    out = []
    for text, tags, place in zip(texts, sets, where):
        if not tags:
            if empty_label is None:
                raise DatasetError(
                    f"{place}: {column}={text!r} holds no label; a clip needs one label at "
                    "least: label it, leave it out, or give such clips a class of their own "
                    "with --empty-label none.")
            tags = [str(empty_label).strip()]
        out.append(join_tags(tags))
    return out


def label_set(values: Iterable[Any]) -> str:
    """One row's labels from several values (a list, a cut's supervisions), as a tagging
    store keeps them."""
    return join_tags(str(v) for v in values)


def is_label_list(value: Any) -> bool:
    """Whether a value is a list of labels (a JSON list, a `Sequence` feature's value)."""
    return isinstance(value, (list, tuple))


def fsd50k_layout(columns: Iterable[str]) -> dict[str, str] | None:
    """The manifest options of FSD50K's ground truth (`FSD50K_COLUMNS`: `fname` without its
    `.wav`, comma-separated `labels`), or `None` for other columns. Its `split` (train and
    val, no test) is not a predefined split: the folds are cut over items."""
    names = set(columns)
    if not {"fname", "labels", "mids"} <= names:
        return None
    return {"path_column": "fname", "label_column": "labels", "label_separator": ",",
            "path_suffix": ".wav"}


LABEL_SET_OPTIONS = (
    Option("--label-separator", "what separates the labels of a clip in the label column "
                                "(; | , space tab): several labels per clip, a tagging "
                                "store", parse=parse_separator),
    Option("--empty-label", "with --label-separator: the class of clips without a label "
                            "(e.g. none; default: such a clip is refused)"),
)
"""The options of a source whose label column may hold several labels per clip."""
