"""Lhotse manifests as source rows: a `CutSet`, or a `RecordingSet` with a `SupervisionSet`.

Each supervision (or each cut, with the supervision it holds) is a row: the stretch of its
recording's audio file, its clip id the supervision's (or the cut's) id, its item the
supervision's speaker (or another field), its label a field you name. Lhotse reads the
manifests (the `[lhotse]` extra); the audio is decoded by
`preprocessing.audio` like every other source, with the same checks.
"""

import gzip
import importlib
import json
import math
import os
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import IO, Any, NamedTuple

from preprocessing.audio import unreadable_reason
from preprocessing.sources.base import ROOT, Corpus, Option, Reads, Rows, Skipped, source_table
from preprocessing.sources.labels import MULTI_LABEL, is_label_list, label_set
from xval.core.constraints import Interval, satisfies
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.optional import EXTRAS

# The fields of a `lhotse.SupervisionSegment` a row can take its label or item from; any
# other name is a key of its `custom` dict.
FIELDS = ("speaker", "language", "gender", "text", "recording_id", "id")
ITEM_FIELD = "speaker"
RELATIVE = "the relative path"
"""How a skipped recording's reason names a relative path (`Recording.from_file` keeps the
path it was given)."""
_SLACK = 1e-3
"""Seconds a stretch may end past its recording (rounding of the durations Lhotse writes)."""


def _lhotse() -> Any:
    """The `lhotse` module, or a one-line error saying how to install it."""
    try:
        return importlib.import_module("lhotse")
    except ImportError:
        raise ConfigurationError(
            f"The lhotse source needs Lhotse, not installed: {EXTRAS['lhotse'].install} "
            "(install torch first, see docs/installation.md).") from None


def _load(lhotse: Any, path: Path) -> Any:
    """One manifest (`RecordingSet`, `SupervisionSet` or `CutSet`), not empty.

    Raises:
        DatasetError: for a missing file, an empty one (no entry: Lhotse would read it as
            an empty CutSet), a line that is not JSON, or entries of no Lhotse kind, naming
            the file (and the line).
    """
    if not path.is_file():
        raise DatasetError(f"Lhotse manifest {str(path)!r} does not exist.")
    if _blank(path):
        raise DatasetError(_empty(path))
    try:
        loaded = lhotse.load_manifest(path)
    except Exception as e:  # a JSON, gzip or Lhotse error: name the file and the reason
        raise DatasetError(
            f"{path} is not a Lhotse manifest ({_why_not(path, e)}); give a CutSet, or a "
            "RecordingSet and a SupervisionSet (.jsonl or .jsonl.gz).") from None
    if len(loaded) == 0:
        raise DatasetError(_empty(path))
    return loaded


def _empty(path: Path) -> str:
    return (f"Lhotse manifest {path} is empty: it holds no recording, supervision or cut "
            "(one JSON object per line); give the manifest Lhotse wrote (e.g. "
            "recordings.to_file(path)).")


def _text(path: Path) -> IO[str]:
    """The manifest's text, decompressed when it is gzip (as Lhotse opens it)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115  (the caller's `with` closes it)


def _blank(path: Path) -> bool:
    """Whether the manifest holds nothing but white space (0 bytes, blank lines, an empty
    gzip file); `False` when it cannot be read (Lhotse then says why)."""
    try:
        with _text(path) as f:
            while chunk := f.read(1 << 16):
                if chunk.strip():
                    return False
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    return True


def _why_not(path: Path, error: Exception) -> str:
    """Why Lhotse could not read a manifest: the first line that is not a JSON object (a
    JSON error), the keys of its first entry (an entry of no Lhotse kind), else Lhotse's
    own error."""
    said = f"{type(error).__name__}: {error}"
    unknown = isinstance(error, ValueError) and "Unknown type" in str(error)
    if ".jsonl" not in path.name or not (unknown or isinstance(error, json.JSONDecodeError)):
        return said
    try:
        with _text(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError as e:  # JSONDecodeError is a ValueError
                    return f"line {number} is not JSON ({e.args[0].split(':')[0]}): " \
                           f"{line.strip()[:60]!r}"
                if not isinstance(entry, dict):
                    return f"line {number} is a JSON {type(entry).__name__}, not an object"
                if unknown:
                    return (f"its entry on line {number} (keys {', '.join(sorted(entry))}) is "
                            "none of a recording (id, sources, sampling_rate, num_samples, "
                            "duration), a supervision (id, recording_id, start, duration) or "
                            "a cut, or an entry after it is another kind")
    except (OSError, UnicodeDecodeError, EOFError):
        pass
    return said


def _check_recording(recording: Any, what: str) -> None:
    """Refuses a recording whose rate, length or sample count cannot be (rate 0, a
    negative or infinite duration, no sample).

    Raises:
        DatasetError: naming the recording, the value and the fix.
    """
    rate, samples, duration = (getattr(recording, name, None) for name in
                               ("sampling_rate", "num_samples", "duration"))
    for name, value in (("sampling_rate", rate), ("num_samples", samples),
                        ("duration", duration)):
        if not satisfies(value, [Interval(Real, 0, None, closed="neither")]):
            raise DatasetError(
                f"Recording {recording.id!r} of {what} has {name} {value!r}; a recording has "
                "a rate in Hz > 0, samples and a duration > 0 (Recording.from_file(path) reads "
                "them from its audio file). Fix the manifest, or write it again with Lhotse.")


def value(supervision: Any, field: str) -> str | None:
    """A field of a supervision as text (`None` when it has none): one of `FIELDS`, else a
    key of its `custom` dict."""
    found = (getattr(supervision, field, None) if field in FIELDS
             else (supervision.custom or {}).get(field))
    return None if found is None or str(found).strip() == "" else str(found)


def labels_of(supervision: Any, field: str) -> list[str]:
    """The labels a supervision's field holds: the items of a list (a custom field such as
    `{"tags": ["dog", "bark"]}`), else its one value (none when it has none)."""
    found: Any = (getattr(supervision, field, None) if field in FIELDS
                  else (supervision.custom or {}).get(field))
    if is_label_list(found):
        return [str(v).strip() for v in found if str(v).strip()]
    text = value(supervision, field)
    return [] if text is None else [text]


def _label(supervisions: list[Any], field: str, multi_label: bool) -> set[str | None]:
    """The labels of a stretch: its supervisions' (one each, a list as a set of labels);
    with `multi_label`, the one set of all their labels."""
    found = [labels_of(s, field) for s in supervisions]
    if multi_label:
        tags = {t for labels in found for t in labels}
        return {label_set(tags) if tags else None}
    return {(labels[0] if len(labels) == 1 else label_set(labels)) if labels else None
            for labels in found}


def _listed(supervisions: list[Any], field: str) -> bool:
    """Whether a supervision's label field holds a list (several labels)."""
    return any(is_label_list(getattr(s, field, None) if field in FIELDS
                             else (s.custom or {}).get(field)) for s in supervisions)


def _check_field(supervisions: list[Any], field: str, option: str, what: str) -> None:
    """Refuses a field that no supervision has (a manifest without speakers, say)."""
    if any(value(s, field) is not None for s in supervisions):
        return
    custom = sorted({k for s in supervisions for k in (s.custom or {})})
    given = [f for f in FIELDS if any(value(s, f) is not None for s in supervisions)]
    fix = ("give every supervision a speaker, or name the field that holds the items with "
           "--item-field (e.g. recording_id)" if field == ITEM_FIELD and option ==
           "--item-field" else f"name another field with {option}")
    raise DatasetError(
        f"{option} {field}: no supervision of {what} has it; {fix}. Their fields: "
        f"{', '.join(given + custom) or 'none'}.")


def _audio_file(recording: Any, root: Path,
                allow_outside_root: bool = False) -> tuple[Path | None, str | None]:
    """The audio file of a recording, or why it has none that can be read.

    Raises:
        DatasetError: for audio read through a command or a URL (never run, never fetched),
            or a relative path that leads outside `root` (`../pool/x.wav`) unless
            `allow_outside_root`.
    """
    sources = recording.sources
    kinds = {s.type for s in sources}
    if kinds & {"command", "url"}:
        source = next(s for s in sources if s.type in ("command", "url"))
        raise DatasetError(
            f"Recording {recording.id!r} reads its audio through a {source.type} "
            f"({source.source!r}); commands are never run and nothing is downloaded. Write "
            "the audio to files and list them as sources of type 'file'.")
    if len(sources) != 1 or kinds != {"file"}:
        return None, (f"recording {recording.id}: audio in {len(sources)} source(s) of type "
                      f"{', '.join(sorted(kinds))}; one audio file is read")
    if recording.transforms:
        return None, (f"recording {recording.id}: it has transforms (speed or volume "
                      "perturbation, resampling), which are not applied here")
    path = root / sources[0].source
    _check_inside(recording.id, sources[0].source, root, allow_outside_root)
    reason = unreadable_reason(path)
    if reason is None:
        return path, None
    if Path(sources[0].source).is_absolute():
        return None, f"recording {recording.id}: {reason}"
    return None, (f"recording {recording.id}: {reason} ({RELATIVE} {sources[0].source!r}, "
                  f"read from {root}: pass --root FOLDER, the folder it is relative to)")


class _Root(NamedTuple):
    """Where relative audio paths are read from, and whether they may leave it."""

    folder: Path
    allow_outside: bool


def _check_inside(recording: str, source: str, root: Path, allow: bool) -> None:
    """Refuses a relative audio path that leads outside `root` (as the manifest source
    does); an absolute one (as Lhotse writes them) names its file itself.

    Raises:
        DatasetError: naming the recording, its path, the root and the fix.
    """
    if allow or os.path.isabs(source):
        return
    top = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.join(top, source))
    if os.path.commonpath([top, full]) != top:
        raise DatasetError(
            f"Recording {recording!r}: its source {source!r} leads outside the root folder "
            f"{top}. Fix the manifest, set --root to a folder holding every file, or pass "
            "--allow-outside-root (allow_outside_root=True) if this is intended.")


def _check_span(kind: str, name: str, start: float, duration: float, recording: Any,
                what: str) -> None:
    """Refuses a stretch that is not inside its recording (a negative start, no length, an
    end past the recording's).

    Raises:
        DatasetError: naming the supervision (or cut), its manifest, the span and the fix.
    """
    end, length = float(start) + float(duration), float(recording.duration)
    if not (math.isfinite(start) and math.isfinite(duration)):
        why = f"has start {start!r} and duration {duration!r}, which are not numbers of seconds"
    elif start < 0:
        why = f"starts at {start:g} s, before its recording {recording.id!r} begins"
    elif duration <= 0:
        why = f"lasts {duration:g} s"
    elif end > length + _SLACK:
        why = f"ends at {end:g} s, past the end of its recording {recording.id!r} ({length:g} s)"
    else:
        return
    raise DatasetError(
        f"{kind} {name!r} of {what} {why}; a stretch lies inside its recording (start >= 0, "
        "duration > 0). Fix the manifest, or drop it (lhotse: "
        "supervisions.filter(lambda s: s.start >= 0)).")


def _row(supervisions: list[Any], recording: Any, clip: str, offset: float,
         duration: float, channel: Any, fields: tuple[str, str], root: _Root,
         skipped: Skipped, multi_label: bool = False) -> dict[str, object] | None:
    """The row of a stretch of a recording, or `None` (and a skipped entry)."""
    path, reason = _audio_file(recording, root.folder, root.allow_outside)
    label_field, item_field = fields
    labels = _label(supervisions, label_field, multi_label)
    items = {value(s, item_field) for s in supervisions}
    channels = [channel] if isinstance(channel, int) else list(channel or [])
    if reason is None and not supervisions:
        reason = "it holds no supervision"
    elif reason is None and multi_label and len(items - {None}) > 1:
        named = ", ".join(sorted(repr(i) for i in items - {None}))
        reason = (f"its supervisions name {len(items - {None})} {item_field}s ({named}), and with "
                  "--multi-label a recording is one row of one item; cut it to its "
                  "supervisions first (cuts.trim_to_supervisions()), or name an item field "
                  "they share (--item-field recording_id)")
    elif reason is None and (len(labels) > 1 or len(items) > 1):
        reason = ("it holds supervisions of several labels or items; cut it to its "
                  "supervisions first (cuts.trim_to_supervisions()), or read the labels "
                  "of a cut as a set with --multi-label (its items must agree)")
    elif reason is None and None in items | labels:
        reason = f"no {item_field if None in items else label_field}"
    elif reason is None and recording.num_channels > 1 and \
            sorted(channels) != list(range(recording.num_channels)):
        reason = (f"channel {channel} of {recording.num_channels}: the channels of a file "
                  "are mixed to mono, one cannot be chosen")
    if reason is not None:
        tried = path if path is not None or len(recording.sources) != 1 \
            else root.folder / recording.sources[0].source
        skipped.append({"path": str(tried or recording.id), "reason": f"{clip}: {reason}"})
        return None
    return {"path": str(path), "label": labels.pop(), "item": items.pop(), "clip": clip,
            "offset": float(offset), "duration": float(duration)}


def _from_cuts(cuts: Any, lhotse: Any, fields: tuple[str, str], root: _Root,
               what: str, multi_label: bool = False) -> Rows:
    cuts = list(cuts)
    supervisions = [s for c in cuts for s in getattr(c, "supervisions", [])]
    _check_fields(supervisions, fields, what)
    rows: list[dict[str, object]] = []
    skipped: Skipped = []
    for cut in cuts:
        if not isinstance(cut, lhotse.MonoCut) or cut.recording is None:
            skipped.append({"path": cut.id, "reason": f"{cut.id}: a {type(cut).__name__} "
                            "without one recording (mixed, padding or feature-only cuts are "
                            "not read)"})
            continue
        _check_recording(cut.recording, what)
        _check_span("Cut", cut.id, cut.start, cut.duration, cut.recording, what)
        row = _row(cut.supervisions, cut.recording, cut.id, cut.start, cut.duration,
                   cut.channel, fields, root, skipped, multi_label)
        if row is not None:
            rows.append(row)
    return _counted(rows, skipped, what, "cuts",
                    multi_label or _listed(supervisions, fields[0]))


def _counted(rows: list[dict[str, object]], skipped: Skipped, what: str, unit: str,
             multi_label: bool = False) -> Rows:
    """The source, its rows counted as `unit` (of recordings) in the summaries; when no
    audio file was found and their paths are relative, one error saying so (the folder
    they were read from, and `--root`)."""
    if not rows and skipped and all(RELATIVE in str(s["reason"]) for s in skipped):
        raise DatasetError(
            f"{what}: none of its audio files was found (e.g. {skipped[0]['path']}). Their "
            "paths are relative, as Recording.from_file keeps the path it is given, and "
            "were read from the current folder or --root: pass --root FOLDER, the folder "
            "they are relative to (or write the manifests with absolute paths).")
    source = source_table(rows, skipped, what)
    source[0].attrs["unit"] = unit
    source[0].attrs[MULTI_LABEL] = multi_label
    return source


def _from_supervisions(recordings: Any, supervisions: Any, fields: tuple[str, str],
                       root: _Root, what: str, lhotse: Any, multi_label: bool = False) -> Rows:
    """One row per supervision; with `multi_label`, one per recording (a cut of it), its
    label the set of its supervisions' labels."""
    supervisions = list(supervisions)
    _check_fields(supervisions, fields, what)
    rows: list[dict[str, object]] = []
    skipped: Skipped = []
    kept = []
    for supervision in supervisions:
        if supervision.recording_id not in recordings:
            skipped.append({"path": supervision.recording_id,
                            "reason": f"{supervision.id}: its recording "
                                      f"{supervision.recording_id!r} is not in the "
                                      "RecordingSet"})
            continue
        _check_recording(recordings[supervision.recording_id], what)
        _check_span("Supervision", supervision.id, supervision.start, supervision.duration,
                    recordings[supervision.recording_id], what)
        kept.append(supervision)
        if multi_label:
            continue
        row = _row([supervision], recordings[supervision.recording_id], supervision.id,
                   supervision.start, supervision.duration, supervision.channel, fields,
                   root, skipped)
        if row is not None:
            rows.append(row)
    if multi_label:
        cuts = lhotse.CutSet.from_manifests(recordings=recordings,
                                            supervisions=lhotse.SupervisionSet(kept))
        found, more = _from_cuts(cuts, lhotse, fields, root, what, multi_label=True)
        return found, skipped + more
    return _counted(rows, skipped, what, "supervisions", _listed(supervisions, fields[0]))


def _check_fields(supervisions: list[Any], fields: tuple[str, str], what: str) -> None:
    if not supervisions:
        raise DatasetError(f"{what} holds no supervision; each row is a supervised stretch "
                           "of audio (a supervision with a label and an item).")
    _check_field(supervisions, fields[0], "--label-field", what)
    _check_field(supervisions, fields[1], "--item-field", what)


def lhotse_source(manifests: Sequence[str | os.PathLike[str]], *, label_field: str,
                  item_field: str = ITEM_FIELD,
                  root: str | os.PathLike[str] | None = None,
                  allow_outside_root: bool = False, multi_label: bool = False) -> Rows:
    """Rows from Lhotse manifests: one row per supervision (of a `SupervisionSet` over a
    `RecordingSet`), or per cut of a `CutSet` (with the supervision it holds).

    Args:
        manifests: a `CutSet` manifest, or a `RecordingSet` and a `SupervisionSet` manifest
            (either order), as Lhotse writes them (`.jsonl.gz`, `.jsonl`, `.json`).
        label_field: the supervision field that is the label: `language`, `gender`, `text`,
            `speaker`, or a key of its `custom` dict (e.g. `emotion`).
        item_field: the supervision field that is the item. Defaults to `"speaker"`.
        root: the folder relative audio paths are read from. Defaults to the current
            folder, as Lhotse reads them.
        allow_outside_root: accept relative audio paths that lead outside `root`
            (`../pool/x.wav`). Defaults to `False` (refused, as the manifest source does).
        multi_label: a cut's label is the set of its supervisions' labels (several labels
            per clip: a tagging store), and a RecordingSet with its SupervisionSet gives one
            cut per recording; without it a cut holding supervisions of several labels is
            skipped. A label field holding a list (`custom={"tags": ["dog",
            "bark"]}`) is a set of labels either way. Defaults to `False`.

    Returns:
        `(rows, skipped)`; every row carries the `offset` and `duration` of its stretch of
        the recording, and its clip id is the supervision's (or the cut's) id.

    Raises:
        ConfigurationError: when Lhotse is not installed.
        DatasetError: for a missing, empty or unreadable manifest (the line named), manifests
            that are neither a CutSet nor a RecordingSet and a SupervisionSet, a recording
            whose rate, samples or duration is not > 0, a stretch outside its recording, a
            field that no supervision has (a manifest without speakers), audio read through
            a command or a URL, or a relative audio path outside `root` (without
            `allow_outside_root`).
    """
    lhotse = _lhotse()
    paths = [Path(m) for m in manifests]
    loaded = [_load(lhotse, p) for p in paths]
    kinds = [type(m).__name__ for m in loaded]
    what = "Lhotse manifest " + " + ".join(map(str, paths))
    folder = _Root(Path(root) if root is not None else Path.cwd(), allow_outside_root)
    fields = (label_field, item_field)
    if kinds == ["CutSet"]:
        return _from_cuts(loaded[0], lhotse, fields, folder, what, multi_label)
    if sorted(kinds) == ["RecordingSet", "SupervisionSet"]:
        recordings = loaded[kinds.index("RecordingSet")]
        return _from_supervisions(recordings, loaded[kinds.index("SupervisionSet")], fields,
                                  folder, what, lhotse, multi_label)
    raise DatasetError(
        f"{what} is {' + '.join(kinds) or 'nothing'}; give a CutSet manifest, or a "
        "RecordingSet and a SupervisionSet manifest.")


class Lhotse(Corpus):
    """`python -m preprocessing lhotse MANIFEST... --label-field FIELD`: `lhotse_source`."""

    name = "lhotse"
    help = "Lhotse manifests: a CutSet, or a RecordingSet and a SupervisionSet"
    reads = Reads("MANIFEST", "the Lhotse CutSet manifest (or the RecordingSet and the "
                              "SupervisionSet)",
                  help="a CutSet manifest, or a RecordingSet and a SupervisionSet",
                  kind="file", most=2)
    options = (
        Option("--label-field", "the supervision field that is the label: language, "
                                "gender, text, speaker or a custom key", required=True),
        Option("--item-field", "the supervision field that is the item (default: speaker)",
               default=ITEM_FIELD),
        ROOT,
        Option("--allow-outside-root", "lhotse: accept relative audio paths that lead "
                                       "outside --root (../pool/x.wav)", switch=True),
        Option("--multi-label", "lhotse: a cut's label is the set of its supervisions' "
                                "labels (a tagging store)", switch=True),
    )

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        return lhotse_source(paths, **values)
