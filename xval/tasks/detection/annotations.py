"""Event annotations of long recordings: sample or time ranges read from a CSV file.

Two layouts are read:

- **wide** (`FileInfo.csv`): one row per file, a file name column, then pairs of columns
  `"Voice start sample (1)"`, `"Voice end sample (1)"`, `"... (2)"`, ..., blank where a
  file has fewer events. Optional `"Label (k)"` and `"Context (k)"` columns give event `k`
  a label and a context flag.
- **long**: one row per event: file, start, end, optional label, optional context flag. A
  row with a blank start and end lists a file that has no events.

Either way the result is one tidy table `file, onset_s, offset_s, label`, in seconds."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile as sf

from xval.core.errors import DatasetError
from xval.core.input_paths import AUDIO_EXTENSIONS
from xval.tasks.detection.tables import (
    Lookup,
    Row,
    file_names,
    long_rows,
    lookup,
    read_csv,
    wide_columns,
    wide_rows,
)

LAYOUTS = ("auto", "wide", "long")
UNITS = ("samples", "seconds")
CONTEXT_MODES = ("keep", "drop", "class")
CONTEXT_LABEL = "context"
COLUMNS = ("file", "onset_s", "offset_s", "label")
Event = tuple[str, float, float, str, int]
"""`(file, onset_s, offset_s, label, line)`."""


def read_annotations(path: str | os.PathLike[str], *, layout: str = "auto",
                     units: str = "samples", annotation_sample_rate: float | None = None,
                     sample_rate_of: Mapping[str, Any] | Lookup | None = None,
                     durations: Mapping[str, Any] | Lookup | None = None,
                     file_column: str | None = None, onset_column: str | None = None,
                     offset_column: str | None = None, label_column: str | None = None,
                     context_column: str | None = None, context: str = "keep",
                     merge_overlaps: bool = False) -> pd.DataFrame:
    """Reads an annotation CSV into one event table in seconds.

    Args:
        path: the CSV file.
        layout: `"wide"`, `"long"` or `"auto"` (wide when start/end columns numbered
            `(1)`, `(2)`... are present). Defaults to `"auto"`.
        units: `"samples"` or `"seconds"`: the unit of the start and end values. Samples
            are positions (boundaries): end sample `n` is time `n / rate`, so an event may
            end at the file's last sample boundary (`n` = the number of samples). Defaults
            to `"samples"`.
        annotation_sample_rate: rate (Hz) the sample positions count in, when it differs
            from the files' own rates. Defaults to `None` (each file's own rate, from
            `sample_rate_of`).
        sample_rate_of: dict or callable, file name (as written in the CSV) -> its sample
            rate in Hz; used for samples when `annotation_sample_rate` is not given.
        durations: dict or callable, file name -> duration in seconds; when given, events
            past the end of their file are errors (times in seconds may pass it by up to
            1 ms, for rounding). Defaults to `None` (not checked).
        file_column: column of file names. Defaults to the first of `FILE_COLUMNS` present
            (long) or the first column (wide).
        onset_column: long layout: column of starts. Defaults to one of `ONSET_COLUMNS`.
        offset_column: long layout: column of ends. Defaults to one of `OFFSET_COLUMNS`.
        label_column: long layout: column of event labels. Defaults to one of
            `LABEL_COLUMNS` when present, else every event is labelled `"event"`.
        context_column: long layout: column of context (tail) flags: 1/0, true/false,
            yes/no, blank for no. Defaults to one of `CONTEXT_COLUMNS` when present.
        context: what a context event becomes: `"keep"` (a normal event with its label),
            `"drop"` (removed) or `"class"` (its own class `"context"`). Defaults to
            `"keep"`.
        merge_overlaps: merge overlapping events of the same class in one file instead of
            raising an error. Defaults to `False`.

    Returns:
        `pandas.DataFrame` with the columns `file, onset_s, offset_s, label` (times in
        seconds), files in the order of the CSV, events sorted by onset. A file annotated
        with no event has no row (`annotation_source` still counts it as annotated).

    Raises:
        DatasetError: for a missing or unreadable file, an unknown layout, a missing column,
            `annotation_sample_rate` with times in seconds (it would do nothing),
            a value that is not a number or a flag, a negative start, an end before its
            start, an event past its file's end, an unknown sample rate, or overlapping
            events of one class in one file (unless `merge_overlaps`). The message names the
            file, the CSV line, the value, what was expected and the fix.
    """
    _check_reading(layout=layout, units=units, context=context,
                   annotation_sample_rate=annotation_sample_rate)
    path = Path(path)
    table = read_csv(path)
    if _layout(table, layout) == "wide":
        rows = wide_rows(table, path, file_column)
    else:
        rows = long_rows(table, path, file_column, onset_column, offset_column, label_column,
                          context_column)
    clock = _Clock(units, annotation_sample_rate, lookup(sample_rate_of, "sample_rate_of"),
                   lookup(durations, "durations"))
    events = []
    for row in rows:
        event = _event(row, f"{path} line {row['line']} (file {row['file']!r})", clock,
                       context)
        if event is not None:
            events.append(event)
    _case_note({event[3] for event in events}, path)
    return _check_overlaps(events, path, merge_overlaps)


def _case_note(labels: set[str], path: Path) -> None:
    """Says so when two labels differ only in case (`digit`, `DIGIT`): they are two
    classes, which is rarely what the annotators meant."""
    by_case: dict[str, list[str]] = {}
    for label in sorted(labels):
        by_case.setdefault(label.casefold(), []).append(label)
    twins = [" and ".join(repr(x) for x in group) for group in by_case.values() if len(group) > 1]
    if twins:
        print(f"note: {path}: the labels {'; '.join(twins)} differ only in case and are "
              "different classes; write them alike in the CSV if they are one class.")


def _layout(table: pd.DataFrame, layout: str) -> str:
    """`"wide"` or `"long"`: the one given, else (`"auto"`) wide when the table has
    numbered start/end columns."""
    return layout if layout != "auto" else "wide" if wide_columns(table) else "long"


@dataclasses.dataclass(frozen=True)
class _Clock:
    """Turns an annotation's start and end into seconds, and checks the end against the
    file's duration."""

    units: str
    annotation_sample_rate: float | None
    rate_of: Lookup | None
    duration_of: Lookup | None

    def seconds(self, row: Row, where: str) -> tuple[float, float]:
        """`(onset, offset)` of a row in seconds."""
        if self.units != "samples":
            return row["start"], row["end"]
        rate = self.annotation_sample_rate
        if rate is None:
            rate = self.rate_of(row["file"]) if self.rate_of is not None else None
            if rate is None:
                raise DatasetError(
                    f"{where}: the annotation is in samples but the sample rate of "
                    f"{row['file']!r} is unknown. Pass annotation_sample_rate "
                    "(--annotation-sample-rate) or the files' rates (sample_rate_of).")
        return row["start"] / rate, row["end"] / rate

    def check_end(self, row: Row, offset: float, where: str) -> None:
        """Refuses an event that ends past its file (when the durations are known)."""
        if self.duration_of is None:
            return
        duration = self.duration_of(row["file"])
        # Sample positions are exact; times written in seconds may be rounded up (1 ms).
        slack = 1e-9 if self.units == "samples" else 1e-3
        if duration is not None and offset > duration + slack:
            raise DatasetError(
                f"{where}: end {row['end_text']!r} ({offset:.4f} s) is past the end of the "
                f"file ({duration:.4f} s); expected an end within the recording. Check "
                "the value and the units (--annotation-units, --annotation-sample-rate).")


MIN_EVENT_SECONDS = 1e-3
"""The shortest event accepted: shorter ones are a units mistake (seconds written in a
samples column make events of a few samples)."""


def _check_length(row: Row, onset: float, offset: float, units: str, where: str) -> None:
    """Refuses an impossible event: no length, fractional sample positions, or shorter than
    `MIN_EVENT_SECONDS` (values that look like seconds in a samples column: say so)."""
    span = f"start {row['start_text']!r}, end {row['end_text']!r}"
    if offset <= onset:
        raise DatasetError(f"{where}: {span} is an event of no length; expected end > start. "
                           "Fix or remove the annotation.")
    hint = "they look like seconds: pass --annotation-units seconds, or fix the values"
    if units == "samples" and not (float(row["start"]).is_integer()
                                   and float(row["end"]).is_integer()):
        raise DatasetError(f"{where}: {span} are not whole sample positions; {hint}.")
    if offset - onset < MIN_EVENT_SECONDS:
        what = f"{row['end'] - row['start']:g} sample(s)" if units == "samples" else \
            f"{offset - onset:g} s"
        raise DatasetError(
            f"{where}: {span} is an event of {what}, shorter than {MIN_EVENT_SECONDS * 1000:g}"
            f" ms; " + (hint if units == "samples" else "fix the values") + ".")


def _event(row: Row, where: str, clock: _Clock, context: str) -> Event | None:
    """The event `(file, onset_s, offset_s, label, line)` of one row, `None` for a row
    without event or a context event dropped."""
    if row["start"] is None:
        return None
    if row["start"] < 0:
        raise DatasetError(
            f"{where}: start {row['start_text']!r} is negative; expected a "
            f"{clock.units[:-1]} position >= 0. Fix the annotation.")
    if row["end"] < row["start"]:
        raise DatasetError(
            f"{where}: end {row['end_text']!r} is before start {row['start_text']!r}; "
            "expected end >= start. Swap or fix the two values.")
    onset, offset = clock.seconds(row, where)
    clock.check_end(row, offset, where)
    _check_length(row, onset, offset, clock.units, where)
    label = row["label"]
    if row["context"]:
        if context == "drop":
            return None
        if context == "class":
            label = CONTEXT_LABEL
    return (row["file"], float(onset), float(offset), label, row["line"])


def _check_reading(*, layout: str = "auto", units: str = "samples", context: str = "keep",
                   annotation_sample_rate: float | None = None, **_: Any) -> None:
    """Refuses `read_annotations` options that are unknown, or that contradict each other.

    Raises:
        DatasetError: naming the option, what was expected, and the fix.
    """
    for name, value, allowed in (("layout", layout, LAYOUTS), ("units", units, UNITS),
                                 ("context", context, CONTEXT_MODES)):
        if value not in allowed:
            raise DatasetError(f"{name}={value!r}: expected one of {', '.join(allowed)}.")
    if annotation_sample_rate is not None and annotation_sample_rate <= 0:
        raise DatasetError(
            f"annotation_sample_rate={annotation_sample_rate}: expected a rate in Hz > 0.")
    if annotation_sample_rate is not None and units == "seconds":
        raise DatasetError(
            f"annotation_sample_rate={annotation_sample_rate} (--annotation-sample-rate) "
            "with units='seconds' (--annotation-units seconds): the rate counts sample "
            "positions, and times in seconds have none, so it would do nothing; leave it "
            "out, or read the times as samples.")


def annotation_source(annotations: str | os.PathLike[str], audio_root: str | os.PathLike[str],
                      *, strict: bool = False, extensions: Iterable[str] = AUDIO_EXTENSIONS,
                      **read_kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame,
                                                   list[dict[str, str]]]:
    """Matches an annotation CSV to the audio files of a folder and reads it.

    Each annotated file name is looked up under `audio_root` as a relative path, with or
    without its extension, or as a bare file name or stem when that is unique. The files'
    own sample rates and durations (read from their headers) are used for sample units and
    for the past-the-end check.

    Args:
        annotations: the annotation CSV.
        audio_root: the folder of recordings.
        strict: raise for an audio file that has no annotation instead of listing it as
            skipped. Defaults to `False`.
        extensions: audio file extensions. Defaults to every supported audio format.
        **read_kwargs: passed to `read_annotations` (layout, units, columns, context, ...).

    Returns:
        `(recordings, events, skipped)`: `recordings` is a DataFrame `file, path,
        sample_rate, duration_s, n_events` of the annotated files (those listed with no
        event included); `events` the DataFrame of `read_annotations`; `skipped` a list of
        `{"path", "reason"}` for audio files without annotations.

    Raises:
        DatasetError: for a missing audio folder, an annotated file that does not exist
            under it (or matches several files), an unreadable audio header, an audio file
            without annotation in strict mode, and every error of `read_annotations`.
    """
    _check_reading(**read_kwargs)  # before the files are looked for
    root = Path(audio_root)
    audio, keys = _audio_keys(root, extensions)
    table = read_csv(Path(annotations))
    names = file_names(table, Path(annotations), _layout(table, read_kwargs.get("layout", "auto")),
                       read_kwargs.get("file_column"))
    resolved: dict[str, Path] = {}
    info: dict[str, tuple[int, float]] = {}
    for line, name in names:
        if name not in resolved:
            resolved[name] = _resolve(name, keys, root, f"{annotations} line {line}")
            info[name] = _header(resolved[name])
    events = read_annotations(annotations, sample_rate_of={k: v[0] for k, v in info.items()},
                              durations={k: v[1] for k, v in info.items()}, **read_kwargs)
    used = set(resolved.values())
    skipped = [{"path": str(p), "reason": f"not in the annotations {annotations}"}
               for p in audio if p not in used]
    if strict and skipped:
        raise DatasetError(
            f"{skipped[0]['path']} has no annotation in {annotations} ({len(skipped)} audio "
            "file(s) without annotation; strict mode). Annotate it (a row with no events "
            "marks a file without events) or drop --strict to skip it.")
    counts = events["file"].value_counts()
    recordings = pd.DataFrame(
        [{"file": name, "path": str(resolved[name]), "sample_rate": info[name][0],
          "duration_s": info[name][1], "n_events": int(counts.get(name, 0))}
         for name in resolved])
    return recordings, events, skipped


def _audio_keys(root: Path, extensions: Iterable[str]
                ) -> tuple[list[Path], dict[str, set[Path]]]:
    """The audio files under `root`, and every name an annotation may give each: its
    relative path with and without extension, its file name and its stem."""
    if not root.is_dir():
        raise DatasetError(f"Audio folder {str(root)!r} does not exist or is not a folder.")
    wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    audio = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
    keys: dict[str, set[Path]] = {}
    for p in audio:
        rel = p.relative_to(root).as_posix()
        for key in {rel, rel[: -len(p.suffix)], p.name, p.stem}:
            keys.setdefault(key, set()).add(p)
    return audio, keys


def _resolve(name: str, keys: Mapping[str, set[Path]], root: Path, where: str) -> Path:
    """The one audio file an annotated name designates."""
    found = keys.get(name, set()) or keys.get(name.replace("\\", "/"), set())
    if not found:
        raise DatasetError(
            f"{where}: file {name!r} does not exist under {root}; "
            "expected a path relative to the audio folder (with or without extension). "
            "Fix the name or point to the right audio folder.")
    if len(found) > 1:
        listed = ", ".join(sorted(str(p.relative_to(root)) for p in found))
        raise DatasetError(
            f"{where}: file {name!r} matches several files under "
            f"{root} ({listed}); write the relative path with its extension.")
    return next(iter(found))


def _header(path: Path) -> tuple[int, float]:
    """`(sample_rate, duration in seconds)` from an audio file's header."""
    try:
        header = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DatasetError(f"Cannot read the header of {path}: {e}") from e
    return int(header.samplerate), header.frames / header.samplerate


def _merge_class(events: list[Event], path: Path, merge: bool) -> list[Event]:
    """The events of one file and class, sorted by onset: overlapping ones merged, or an
    error when `merge` is off."""
    kept: list[Event] = []
    for e in sorted(events, key=lambda e: (e[1], e[2])):
        if kept and e[1] < kept[-1][2]:
            current = kept[-1]
            if not merge:
                raise DatasetError(
                    f"{path}: in file {e[0]!r}, the {e[3]!r} event on line {e[4]} "
                    f"({e[1]:.4f}-{e[2]:.4f} s) overlaps the one on line {current[4]} "
                    f"({current[1]:.4f}-{current[2]:.4f} s); expected events of one "
                    "class not to overlap. Fix the annotation or pass "
                    "merge_overlaps=True (--merge-overlaps) to merge them.")
            kept[-1] = (current[0], current[1], max(current[2], e[2]), current[3], current[4])
        else:
            kept.append(e)
    return kept


def _check_overlaps(events: list[Event], path: Path, merge: bool) -> pd.DataFrame:
    kept = []
    for file in dict.fromkeys(e[0] for e in events):
        real = [e for e in events if e[0] == file]
        for label in sorted({e[3] for e in real}):
            kept += [e[:4] for e in _merge_class([e for e in real if e[3] == label], path,
                                                 merge)]
    frame = pd.DataFrame(kept, columns=list(COLUMNS))
    order = {f: i for i, f in enumerate(dict.fromkeys(e[0] for e in events))}
    frame["_order"] = frame["file"].map(order)
    frame = frame.sort_values(["_order", "onset_s", "label"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)
