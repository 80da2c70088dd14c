"""The corpus sources of the command lines: Kaldi data directories, Lhotse manifests and
Hugging Face dataset folders, as `python -m preprocessing kaldi|lhotse|hf ...` and
`python -m xval init PATH --source kaldi|lhotse|hf`.

Their options, and the one call that turns parsed arguments into source rows.
"""

import argparse
from collections.abc import Sequence
from typing import Any

import pandas as pd

from preprocessing.corpora import hf_source, kaldi_source, lhotse_source
from preprocessing.corpora.hf_datasets import ITEM_COLUMNS, LABEL_COLUMN
from preprocessing.corpora.kaldi import ITEM_FILE, PIPES_FLAG
from preprocessing.corpora.lhotse_manifests import ITEM_FIELD
from preprocessing.sources import Skipped
from xval.core.errors import ConfigurationError

KINDS = ("kaldi", "lhotse", "hf")
"""The corpus sources."""
HELP = {"kaldi": "a Kaldi data directory (wav.scp, segments, utt2spk, a label file)",
        "lhotse": "Lhotse manifests: a CutSet, or a RecordingSet and a SupervisionSet",
        "hf": "a Hugging Face dataset folder (save_to_disk) or an audiofolder"}
# The options of each source: (flag, default, help).
OPTIONS: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "kaldi": (
        ("--label-file", None, "the labels, UTTERANCE LABEL per line: a file of the data "
                               "directory (utt2lang, utt2emotion; text: the transcript) or "
                               "a path (required)"),
        ("--item-file", ITEM_FILE, "the items, UTTERANCE ITEM per line (default: utt2spk, "
                                   "the speakers)")),
    "lhotse": (
        ("--label-field", None, "the supervision field that is the label: language, gender, "
                                "text, speaker or a custom key"),
        ("--item-field", ITEM_FIELD, "the supervision field that is the item (default: "
                                     "speaker)")),
    "hf": (
        ("--label-column", LABEL_COLUMN, "the column of labels (default: label)"),
        ("--item-column", None, "the column of items (default: the first of "
                                f"{', '.join(ITEM_COLUMNS)})"),
        ("--audio-column", None, "the datasets.Audio column (default: the only one)")),
}
PIPES_HELP = ("run the piped commands of wav.scp (`flac -c -d -s a.flac |`, `sph2pipe -f "
              "wav a.sph |`) to read their audio. RISK: they run with your rights, whatever "
              "the file says; use it only on a wav.scp you trust. Only a plain pipeline of "
              "installed programs runs, without a shell (no redirections, variables, `;`, "
              "globs); relative paths start at --root (default: off, a piped entry is "
              "refused)")
REQUIRED = ("--label-file", "--label-field")
"""Options without a default: a corpus names its labels."""
OUTSIDE_HELP = ("lhotse: accept relative audio paths that lead outside --root "
                "(../pool/x.wav)")
ROOT_HELP = ("folder relative audio paths are read from (default: the current folder, as "
             "Kaldi and Lhotse read them)")


def add_options(p: argparse.ArgumentParser | Any, kind: str, *,
                defaults: bool = True) -> None:
    """Adds the options of one corpus source (and `--root`) to a parser.

    Args:
        p: a parser or an argument group.
        kind: one of `KINDS`.
        defaults: give the options their defaults (`False`: every option defaults to
            `None`, so a command serving several sources sees what was given). Defaults to
            `True`.
    """
    for flag, default, text in OPTIONS[kind]:
        p.add_argument(flag, default=default if defaults else None, help=text,
                       required=defaults and flag in REQUIRED)
    if kind == "kaldi":  # never the default: it runs what the file says
        p.add_argument(PIPES_FLAG, action="store_true", default=False if defaults else None,
                       help=PIPES_HELP)


def add_parsers(sub: Any, common: Any) -> None:
    """Adds `kaldi`, `lhotse` and `hf` to the subcommands of `python -m preprocessing`.

    Args:
        sub: the subparsers.
        common: `common(parser)` adds the options every source shares (`--out`, features).
    """
    for kind in KINDS:
        p = sub.add_parser(kind, help=HELP[kind])
        if kind == "lhotse":
            p.add_argument("manifests", nargs="+", metavar="MANIFEST",
                           help="a CutSet manifest, or a RecordingSet and a SupervisionSet")
        else:
            p.add_argument("root_dir", metavar="DATA_DIR" if kind == "kaldi" else "DATASET_DIR",
                           help="the Kaldi data directory" if kind == "kaldi" else
                           "a folder written by save_to_disk, or an audiofolder")
        add_options(p, kind)
        p.add_argument("--root", help=ROOT_HELP)
        if kind == "lhotse":
            p.add_argument("--allow-outside-root", action="store_true", help=OUTSIDE_HELP)
        common(p)


def options_given(args: argparse.Namespace, kind: str) -> None:
    """Refuses an option of another corpus source than `kind` (for `xval init`)."""
    for other in (k for k in KINDS if k != kind):
        flags = [flag for flag, _, _ in OPTIONS[other]] + ([PIPES_FLAG] if other == "kaldi"
                                                           else [])
        for flag in flags:
            if getattr(args, flag[2:].replace("-", "_"), None) is not None:
                raise ConfigurationError(
                    f"{flag} is an option of --source {other}, not of "
                    f"{'--source ' + kind if kind else 'a folder of audio'}.")


def rows(kind: str, paths: Sequence[str], args: argparse.Namespace) -> tuple[pd.DataFrame,
                                                                            Skipped]:
    """The source rows of a corpus.

    Args:
        kind: one of `KINDS`.
        paths: the data directory, the dataset folder, or the one or two Lhotse manifests.
        args: the parsed options (`add_options`; unset ones take their defaults).

    Returns:
        `(rows, skipped)`.

    Raises:
        ConfigurationError: for a missing required option, or two paths for a source that
            reads one.
        DatasetError: from the source (see `preprocessing.corpora`).
    """
    given = _values(args, kind)
    if kind != "lhotse" and len(paths) != 1:
        raise ConfigurationError(f"{kind} reads one folder; got {len(paths)} paths.")
    if kind == "lhotse" and len(paths) > 2:
        raise ConfigurationError("lhotse reads a CutSet, or a RecordingSet and a "
                                 f"SupervisionSet; got {len(paths)} manifests.")
    root = getattr(args, "root", None)
    if kind == "kaldi":
        return kaldi_source(paths[0], label_file=given["label_file"],
                            item_file=given["item_file"], root=root,
                            run_commands=bool(getattr(args, "run_wav_scp_commands", False)))
    if kind == "lhotse":
        return lhotse_source(paths, label_field=given["label_field"],
                             item_field=given["item_field"], root=root,
                             allow_outside_root=bool(getattr(args, "allow_outside_root",
                                                             False)))
    return hf_source(paths[0], label_column=given["label_column"],
                     item_column=given["item_column"], audio_column=given["audio_column"],
                     root=root)


def _values(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The options of a source: given, else their defaults; a required one missing is an
    error."""
    values: dict[str, Any] = {}
    for flag, default, text in OPTIONS[kind]:
        key = flag[2:].replace("-", "_")
        value = getattr(args, key, None)
        if value is None and flag in REQUIRED:
            raise ConfigurationError(f"{kind} needs {flag}: {text}.")
        values[key] = default if value is None else value
    return values
