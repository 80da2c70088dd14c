"""How an annotation CSV is read, as command-line options: one definition for
`python -m preprocessing detection` (which builds a store from it) and `python -m xval
evaluate --annotations` (which scores a detector on it)."""

from __future__ import annotations

import argparse
from typing import Any

from xval.core.arguments import Arguments

READING = {"layout": "layout", "annotation_units": "units",
           "annotation_sample_rate": "annotation_sample_rate", "file_column": "file_column",
           "onset_column": "onset_column", "offset_column": "offset_column",
           "label_column": "label_column", "context_column": "context_column",
           "context": "context", "merge_overlaps": "merge_overlaps"}
"""Argument names -> keywords of `preprocessing.read_annotations`."""


def add_reading_arguments(parser: Arguments, *,
                          defaults: bool, label_column: bool = True) -> None:
    """Adds the options of `READING` to `parser`.

    Args:
        parser: a parser or an argument group.
        defaults: give each option `read_annotations`'s default; `False`: every option
            defaults to `None` (not given), for a command that falls back on recorded ones.
        label_column: add `--label-column` (a command may already have one of its own).
    """
    def default(value: Any) -> Any:
        return value if defaults else None

    parser.add_argument("--layout", choices=("auto", "wide", "long"), default=default("auto"),
                        help="wide: start/end column pairs; long: one row per event; auto: "
                             "found from the columns")
    parser.add_argument("--annotation-units", choices=("samples", "seconds"),
                        default=default("samples"), help="the unit of onsets and offsets")
    parser.add_argument("--annotation-sample-rate", type=int,
                        help="sample rate of the annotation's sample numbers, when not the "
                             "file's")
    parser.add_argument("--file-column", help="column of the file names (default: found by "
                                              "name)")
    parser.add_argument("--onset-column", help="long layout: column of the event starts")
    parser.add_argument("--offset-column", help="long layout: column of the event ends")
    if label_column:
        parser.add_argument("--label-column", help="long layout: column of the event class")
    parser.add_argument("--context-column", help="long layout: column of the context/tail flag")
    parser.add_argument("--context", choices=("keep", "drop", "class"), default=default("keep"),
                        help="context-flagged events: kept as events, dropped, or their own "
                             "class")
    parser.add_argument("--merge-overlaps", action="store_true", default=default(False),
                        help="merge overlapping events of one class instead of failing")


def reading_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `read_annotations` keywords of the options given in `args` (those not `None`)."""
    return {keyword: getattr(args, name) for name, keyword in READING.items()
            if getattr(args, name, None) is not None}
