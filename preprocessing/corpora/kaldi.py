"""Kaldi data directories as source rows: `wav.scp`, optional `segments`, `utt2spk` (or
another `utt2*` file) for the items, and a label file.

Kaldi's files are text tables, one `KEY VALUE...` entry per line; no library is needed. The
entries of `wav.scp` are audio files; a piped command (`flac -c -d -s in.flac |`) is refused
unless `run_commands` is on (`--run-wav-scp-commands`: the commands then run with the user's
rights, as a plain pipeline without a shell, see `preprocessing.corpora.pipes`); standard
input (`-`) or an archive offset (`feats.ark:1234`) is always refused. Each command has a time
limit (`--command-timeout`, `preprocessing.corpora.pipes.COMMAND_TIMEOUT`).

The tables are read as Kaldi's tools and editors write them: UTF-8, with or without a
byte-order mark (Windows Notepad), lines ending in `\\n` or `\\r\\n`.
"""

import functools
import math
import os
import re
from collections.abc import Callable
from numbers import Real
from pathlib import Path
from typing import Any

from preprocessing.audio import unreadable_reason
from preprocessing.corpora.pipes import (
    COMMAND_TIMEOUT,
    MAX_COMMAND_TIMEOUT,
    TIMEOUT_FLAG,
    parse_pipeline,
    run_pipeline,
)
from preprocessing.sources.base import ROOT, Corpus, Option, Reads, Rows, Skipped, source_table
from xval.core.constraints import Interval, satisfies
from xval.core.errors import ConfigurationError, DatasetError

RECORDINGS = "wav.scp"
SEGMENTS = "segments"
ITEM_FILE = "utt2spk"
# `rxfilename`s that are no file: `... |` (a command), `-` (standard input), `ark:`,
# `scp:` and `path.ark:OFFSET` (a place in a Kaldi archive).
_NOT_A_FILE = re.compile(r"\|\s*$|^-$|^(ark|scp):|\.ark:\d+(\[.*\])?$")
_PIPE = re.compile(r"\|\s*$")
PIPES_FLAG = "--run-wav-scp-commands"
"""The option that runs the piped commands of `wav.scp`."""

Recording = tuple[Path, Callable[[], bytes] | None]
"""A recording of `wav.scp`: its audio file, or the name it is known by and the reader that
runs its command."""


def read_table(path: Path, *, values: int | None = None) -> dict[str, str]:
    """A Kaldi text table: the first field of each non-blank line is its key, the rest of the
    line (stripped) its value.

    Args:
        path: the file (`wav.scp`, `utt2spk`, `text`, `utt2lang`, ...): UTF-8, a
            byte-order mark and `\\r\\n` line ends accepted (they are no part of a key or a
            value).
        values: how many whitespace-separated fields every value must hold (`segments`:
            3), or `None` for any number, none included (an empty transcript).

    Returns:
        dict of key to value, in file order.

    Raises:
        DatasetError: for an unreadable or empty file, a key given twice or a value with
            the wrong number of fields, naming the file and the line.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"Cannot read {path}: {type(e).__name__}: {e}. Kaldi tables are "
                           "UTF-8 text files of `KEY VALUE` lines.") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(f"{path} is UTF-16 text; Kaldi tables are UTF-8: save it as UTF-8 "
                           "(iconv -f UTF-16 -t UTF-8).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        where = data[:e.start].count(b"\n") + 1
        raise DatasetError(f"{path} line {where}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                           "Kaldi tables are UTF-8: save it as UTF-8.") from None
    table: dict[str, str] = {}
    # Kaldi splits lines at "\n" alone (str.splitlines would also split a transcript at
    # U+2028 or \x1c); a byte-order mark may begin the file, or each file `cat` joined.
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.removeprefix("\ufeff").split(maxsplit=1)
        if not fields:
            continue
        key, value = fields[0], fields[1].strip() if len(fields) > 1 else ""
        if key in table:
            raise DatasetError(f"{path} line {number}: key {key!r} is given twice; a Kaldi "
                               "table lists each key once (utils/fix_data_dir.sh fixes it).")
        if values is not None and len(value.split()) != values:
            raise DatasetError(f"{path} line {number}: expected a key and {values} fields, "
                               f"got {line.strip()!r}.")
        table[key] = value
    if not table:
        raise DatasetError(f"{path} is empty: it lists no entry (a Kaldi table holds one `KEY "
                           "VALUE` line per entry); give the data directory's own file.")
    return table


def _table_file(data_dir: Path, name: str, option: str) -> Path:
    """A table named by an option: a file of the data directory, or a path."""
    path = data_dir / name if Path(name).parent == Path(".") else Path(name)
    if not path.is_file():
        present = sorted(p.name for p in data_dir.iterdir() if p.is_file())
        raise DatasetError(
            f"{option} {name!r}: {path} does not exist; the files of {data_dir} are "
            f"{', '.join(present) or 'none'}.")
    return path


def _recordings(data_dir: Path, root: Path, run_commands: bool,
                timeout: float = COMMAND_TIMEOUT) -> dict[str, Recording]:
    """`wav.scp`: recording id -> audio file (relative paths from `root`), or its name and
    the reader that runs its command (`run_commands`, within `timeout` seconds)."""
    scp = data_dir / RECORDINGS
    if not scp.is_file():
        raise DatasetError(
            f"{data_dir} has no {RECORDINGS}; a Kaldi data directory lists its recordings "
            f"there, one `RECORDING_ID PATH` per line: give the data directory itself (e.g. "
            "data/train).")
    recordings: dict[str, Recording] = {}
    for key, value in read_table(scp).items():
        if run_commands and _PIPE.search(value):
            where = f"{scp}: recording {key!r}"
            stages = parse_pipeline(value, where)
            recordings[key] = (Path(f"{scp}#{key}"),
                               functools.partial(run_pipeline, stages, str(root), timeout,
                                                 where))
            continue
        if not value or _NOT_A_FILE.search(value):
            piped = "" if run_commands or not _PIPE.search(value) else (
                f", or pass {PIPES_FLAG} to run the commands of a wav.scp you trust (they "
                "run with your rights)")
            raise DatasetError(
                f"{scp}: recording {key!r} is {value!r}, not an audio file (a piped command, "
                "standard input or a Kaldi archive); commands in wav.scp are not run by "
                "default. Write the audio to files (run the command once with its output to "
                f"a .wav file, or wav-copy) and list their paths in wav.scp{piped}.")
        recordings[key] = (root / value, None)
    return recordings


def _utterances(data_dir: Path, recordings: dict[str, Recording]
                ) -> dict[str, tuple[str, float | None, float | None]]:
    """Utterance id -> (recording id, start, duration): `segments`, else one utterance per
    recording (the whole file)."""
    path = data_dir / SEGMENTS
    if not path.is_file():
        return {key: (key, None, None) for key in recordings}
    utterances: dict[str, tuple[str, float | None, float | None]] = {}
    for utt, value in read_table(path, values=3).items():
        recording, start_text, end_text = value.split()
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise DatasetError(f"{path}: utterance {utt!r} has start {start_text!r} and end "
                               f"{end_text!r}; expected seconds.") from None
        if not (math.isfinite(start) and math.isfinite(end) and start >= 0
                and (end > start or end == -1)):
            raise DatasetError(f"{path}: utterance {utt!r} runs from {start_text} to "
                               f"{end_text} s; expected 0 <= start < end (or end -1: to the "
                               "end of the recording).")
        utterances[utt] = (recording, start, None if end == -1 else end - start)
    return utterances


def kaldi_source(data_dir: str | os.PathLike[str], *, label_file: str,
                 item_file: str = ITEM_FILE,
                 root: str | os.PathLike[str] | None = None,
                 run_commands: bool = False,
                 command_timeout: float | None = None) -> Rows:
    """Rows from a Kaldi data directory: one row per utterance (a `segments` entry, else a
    recording of `wav.scp`), its clip id the utterance id.

    Args:
        data_dir: the data directory (`wav.scp`, optional `segments`, `utt2spk`, ...).
        label_file: the table of labels, `UTTERANCE LABEL` per line: a file of the data
            directory (`utt2lang`, `utt2emotion`, or `text`, whose whole transcript is then
            the label) or a path.
        item_file: the table of items, `UTTERANCE ITEM` per line, a file of the data
            directory or a path. Defaults to `"utt2spk"` (speakers are the items).
        root: the folder relative paths of `wav.scp` are read from (and its commands run
            in). Defaults to the current folder, as Kaldi reads them.
        run_commands: run the piped commands of `wav.scp` (`flac -c -d -s a.flac |`) to
            read their audio. They run with your rights: use it only on a `wav.scp` you
            trust. Only a plain pipeline of programs is run, without a shell
            (`preprocessing.corpora.pipes`); a command that fails skips its utterances with
            its error. Defaults to `False` (a piped entry is refused).
        command_timeout: seconds one entry's command may run (with `run_commands`); past
            it every stage is stopped and the build ends with an error naming the entry.
            Defaults to `None`: `COMMAND_TIMEOUT` (60 s).

    Returns:
        `(rows, skipped)`; rows of a `segments` entry carry its `offset` and `duration`.
        Utterances without an item or label, or whose recording is missing or not a regular
        file, are skipped with the reason.

    Raises:
        DatasetError: for a missing data directory, `wav.scp`, item or label file; an entry
            of `wav.scp` that is not a file (a piped command without `run_commands`, or one
            that is not a plain pipeline of installed programs); an empty table; a
            malformed line.
        ConfigurationError: for a `command_timeout` that is not a number of seconds > 0
            and at most `MAX_COMMAND_TIMEOUT`, or one given without `run_commands`.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DatasetError(f"Kaldi data directory {str(folder)!r} does not exist or is not a "
                           "folder.")
    timeout = _timeout(command_timeout, run_commands)
    recordings = _recordings(folder, Path(root) if root is not None else Path.cwd(),
                             run_commands, timeout)
    items = read_table(_table_file(folder, item_file, "--item-file"))
    labels = read_table(_table_file(folder, label_file, "--label-file"))
    rows: list[dict[str, object]] = []
    skipped: Skipped = []
    for utt, (recording, start, duration) in sorted(_utterances(folder, recordings).items()):
        where = f"{folder}: utterance {utt}"
        path, read = recordings.get(recording, (None, None))
        reason = (f"its recording {recording!r} is not in {RECORDINGS}" if path is None
                  else None if read is not None else unreadable_reason(path))
        reason = reason or _blank(items.get(utt), item_file) or _blank(labels.get(utt),
                                                                        label_file)
        if reason is not None:
            skipped.append({"path": str(path) if path is not None else where,
                            "reason": f"utterance {utt}: {reason}"})
            continue
        row: dict[str, object] = {"path": str(path), "label": labels[utt],
                                  "item": items[utt], "clip": utt}
        if start is not None:
            row.update(offset=start, duration=duration)
        if read is not None:
            row["read"] = read
        rows.append(row)
    table, skipped = source_table(rows, skipped, f"Kaldi data directory {folder}")
    table.attrs["unit"] = "utterances"  # of recordings, in the summaries
    return table, skipped


def _timeout(seconds: float | None, run_commands: bool) -> float:
    """The time limit of each command (`COMMAND_TIMEOUT` when not given), checked.

    Raises:
        ConfigurationError: for seconds that are not a number > 0, or a limit without
            `run_commands` (no command runs).
    """
    if seconds is None:
        return COMMAND_TIMEOUT
    if not run_commands:
        raise ConfigurationError(f"{TIMEOUT_FLAG} {seconds:g}: no command of wav.scp runs "
                                 f"without {PIPES_FLAG}; pass it too, or leave the limit out.")
    if not satisfies(seconds, _SECONDS):
        raise ConfigurationError(f"{TIMEOUT_FLAG} {seconds!r}: {_EXPECTED}.")
    return float(seconds)


_SECONDS = [Interval(Real, 0, MAX_COMMAND_TIMEOUT, closed="right")]
"""A limit: seconds > 0, at most `MAX_COMMAND_TIMEOUT`."""
_EXPECTED = (f"expected seconds > 0 and at most {MAX_COMMAND_TIMEOUT:g} (a day), e.g. "
             f"{COMMAND_TIMEOUT:g}")


def _seconds(text: str) -> float:
    """`--command-timeout`'s value: seconds > 0, at most `MAX_COMMAND_TIMEOUT`.

    Raises:
        ValueError: naming the value and what is expected (argparse names the flag).
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not satisfies(seconds, _SECONDS):
        raise ValueError(f"{text!r}: {_EXPECTED}.")
    return seconds


def _blank(value: str | None, table: str) -> str | None:
    """Why an utterance has no usable value in a table, or `None`."""
    if value is None:
        return f"not in {table}"
    return f"blank in {table}" if not value.strip() else None


class Kaldi(Corpus):
    """`python -m preprocessing kaldi DATA_DIR --label-file FILE`: `kaldi_source`."""

    name = "kaldi"
    help = "a Kaldi data directory (wav.scp, segments, utt2spk, a label file)"
    reads = Reads("DATA_DIR", "the Kaldi data directory (wav.scp, utt2spk, ...)",
                  help="the Kaldi data directory")
    options = (
        Option("--label-file", "the labels, UTTERANCE LABEL per line: a file of the data "
                               "directory (utt2lang, utt2emotion; text: the transcript) or "
                               "a path (required)", required=True),
        Option("--item-file", "the items, UTTERANCE ITEM per line (default: utt2spk, the "
                              "speakers)", default=ITEM_FILE),
        Option(PIPES_FLAG, "run the piped commands of wav.scp (`flac -c -d -s a.flac |`) to "
                           "read their audio, without a shell. RISK: they run with your "
                           "rights: use it only on a wav.scp you trust (default: off, a piped "
                           "entry is refused)", switch=True),
        Option(TIMEOUT_FLAG, f"seconds each command of wav.scp may run (with {PIPES_FLAG}) "
                             f"(default: {COMMAND_TIMEOUT:g})",
               parse=_seconds),
        ROOT,
    )

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        return kaldi_source(paths[0], label_file=values["label_file"],
                            item_file=values["item_file"], root=values["root"],
                            run_commands=values["run_wav_scp_commands"],
                            command_timeout=values["command_timeout"])
