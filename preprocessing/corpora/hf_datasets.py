"""Hugging Face `datasets` folders as source rows: a dataset saved with `save_to_disk` (a
`Dataset` or a `DatasetDict`), or an `audiofolder` (audio files, labels from their folders
or a `metadata.csv`/`.jsonl` with a `file_name` column).

Each example is a row: its audio is a file, or encoded bytes kept in the dataset's Arrow
table (read by the extraction workers from the memory-mapped table, one example at a time);
its item is the speaker column (or another you name), its label a column you name. The
examples of every split are pooled and cross-validated over the items. `datasets` lists
and reads the examples (the `[hf]` extra); the audio is decoded by
`preprocessing.audio` like every other source, with the same checks (`datasets`' own
decoder, torchcodec, is not needed).
"""

import dataclasses
import functools
import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from preprocessing.audio import unreadable_reason
from preprocessing.recordings import find_recordings
from preprocessing.sources.base import ROOT, Corpus, Option, Reads, Rows, Skipped, source_table
from preprocessing.sources.labels import MULTI_LABEL, label_set
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.optional import EXTRAS
from xval.tasks.tagging import split_tags

# Speaker columns of common speech datasets (LibriSpeech and VCTK, Common Voice), in the
# order they are looked for when no item column is named.
ITEM_COLUMNS = ("speaker_id", "speaker", "client_id")
LABEL_COLUMN = "label"
SAVED = ("dataset_info.json", "dataset_dict.json")
METADATA = (".csv", ".jsonl", ".json")
"""The metadata files of an audiofolder (`metadata.csv`, ...), anywhere in it."""
_DESCRIPTIONS = (*SAVED, "state.json")
"""The JSON files `save_to_disk` writes beside the Arrow data (JSON objects all)."""
_REFIX = ("write it again with save_to_disk (or restore the file) and check that the "
          "folder is the one meant")


def _description(path: Path) -> dict[str, Any] | None:
    """A description file `save_to_disk` wrote (`None` when absent), checked to be a JSON
    object.

    Raises:
        DatasetError: for an empty file, one that is not JSON or not an object.
    """
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DatasetError(f"{path} is empty ({path.stat().st_size} bytes); save_to_disk "
                           f"writes a JSON object there: {_REFIX}.")
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path} is not valid JSON ({type(e).__name__}: {e}); it is "
                           f"not a file save_to_disk wrote: {_REFIX}.") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} holds a JSON {type(data).__name__}, not the object "
                           f"save_to_disk writes: {_REFIX}.")
    return data


def _check_saved(folder: Path) -> None:
    """The files of a saved `Dataset` (or of each split of a `DatasetDict`): its description
    files JSON objects, and the Arrow files its `state.json` lists present and not empty.

    Raises:
        DatasetError: naming the file (or the split without an example) and the fix.
    """
    splits = _description(folder / "dataset_dict.json")
    if splits is not None:
        for name in splits.get("splits") or []:
            if (folder / str(name)).is_dir():
                _check_saved(folder / str(name))
        return
    _description(folder / "dataset_info.json")
    state = _description(folder / "state.json")
    if state is None:
        return
    files = [entry.get("filename") for entry in state.get("_data_files") or []
             if isinstance(entry, dict)]
    if not files:
        raise DatasetError(f"{folder} holds no example (its state.json lists no Arrow data "
                           "file); save a dataset with examples, or leave this one out.")
    for name in files:
        data = folder / str(name)
        if not data.is_file():
            raise DatasetError(f"{data} is missing: {folder}'s state.json lists it as its "
                               f"Arrow data; {_REFIX}.")
        if data.stat().st_size == 0:
            raise DatasetError(f"{data} is empty (0 bytes): the Arrow data of {folder} was "
                               f"not written whole; {_REFIX}.")


def _load_saved(folder: Path) -> Any:
    """`datasets.load_from_disk(folder)`, its files checked first (`_check_saved`): a file
    that is empty, missing or not a JSON object, or one `datasets` cannot read, is an error
    naming it.

    Raises:
        DatasetError: naming the file (or the folder) and the fix.
    """
    _check_saved(folder)
    try:
        return _datasets().load_from_disk(str(folder))
    except (ValueError, TypeError, AttributeError, KeyError, OSError) as e:
        said = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if type(e).__module__.startswith("pyarrow"):  # ArrowInvalid, ArrowIOError
            raise DatasetError(
                f"{folder} cannot be opened as a saved dataset: its Arrow data "
                f"({', '.join(sorted(p.name for p in folder.rglob('*.arrow'))) or 'none'}) "
                f"cannot be read ({said}: a file cut short or not written by "
                f"save_to_disk); {_REFIX}.") from None
        # datasets reads the description as it finds it: a changed one fails anywhere.
        raise DatasetError(
            f"{folder} cannot be opened as a saved dataset: datasets says {said} (its "
            f"{' or '.join(n for n in _DESCRIPTIONS if (folder / n).is_file())} was not "
            f"written by save_to_disk as it is); {_REFIX}.") from None


def _datasets() -> Any:
    """The `datasets` module, or a one-line error saying how to install it."""
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise ConfigurationError("The hf source needs Hugging Face datasets, not installed: "
                                 f"{EXTRAS['hf'].install}") from None


@functools.lru_cache(maxsize=8)
def _opened(folder: str) -> Any:
    """A saved `Dataset` (memory-mapped), opened once per process."""
    return _datasets().load_from_disk(folder)


def read_audio_bytes(folder: str, column: str, index: int) -> bytes:
    """The encoded audio of one example of a saved dataset.

    Args:
        folder: the saved `Dataset` (a split's folder of a `DatasetDict`).
        column: its audio column.
        index: the example.

    Returns:
        the bytes as stored (a WAV, FLAC, OGG or MP3 file's content).
    """
    data: bytes = _opened(folder).data.column(column)[index]["bytes"].as_py()
    return data


@dataclasses.dataclass
class _Split:
    """One split: a saved `Dataset` (`saved` is its folder), or an audiofolder's examples
    (their audio as paths)."""

    name: str
    features: Any
    saved: Path | None = None
    dataset: Any = None
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _splits(folder: Path) -> list[_Split]:
    """The splits of a saved dataset or an audiofolder."""
    datasets = _datasets()
    if (folder / "dataset_dict.json").is_file():
        saved = _load_saved(folder)
        return [_Split(name, saved[name].features, folder / name, saved[name])
                for name in saved]
    if (folder / "dataset_info.json").is_file():
        dataset = _load_saved(folder)
        return [_Split("train", dataset.features, folder, dataset)]
    metadata = sorted(p for p in folder.rglob("metadata.*") if p.suffix in METADATA)
    for path in metadata:
        if not path.read_bytes().strip():
            raise DatasetError(f"{path} is empty: an audiofolder's metadata file holds a "
                               "header (csv) or one JSON object per line (jsonl), each with "
                               "a file_name; write it, or remove it to take the labels from "
                               "the class folders.")
    with tempfile.TemporaryDirectory(prefix="xval-hf-") as cache:  # nothing left behind
        try:
            found = datasets.load_dataset("audiofolder", data_dir=str(folder),
                                          streaming=True, cache_dir=cache)
            # Paths as text: listing an audiofolder needs no audio decoder.
            listed = {name: split.cast_column("audio", datasets.Value("string"))
                      for name, split in found.items()}
            return [_Split(name, split.features, examples=list(split))
                    for name, split in listed.items()]
        except (ValueError, FileNotFoundError) as e:
            said = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if metadata:
                raise DatasetError(
                    f"{folder} is an audiofolder whose metadata "
                    f"({', '.join(str(p) for p in metadata)}) cannot be read ({said}); fix "
                    "it: a csv with a header, or one JSON object per line, each with a "
                    "file_name.") from None
            raise DatasetError(
                f"{folder} is neither a dataset saved with save_to_disk (it has no "
                f"{' or '.join(SAVED)}) nor an audiofolder ({said}).") from None


def _audio_column(features: Any, wanted: str | None, what: str) -> str:
    """The column of audio: the one named, else the only `datasets.Audio` column."""
    audio_type = _datasets().Audio
    found = [name for name, feature in features.items() if isinstance(feature, audio_type)]
    if wanted is not None:
        if wanted not in found:
            raise DatasetError(
                f"--audio-column {wanted}: not an audio column of {what} (a datasets.Audio "
                f"feature); its audio columns: {', '.join(found) or 'none'}.")
        return wanted
    if len(found) != 1:
        raise DatasetError(
            f"{what} has {len(found) or 'no'} audio column(s) ({', '.join(found)}) among "
            f"{', '.join(features)}; cast the column of audio with "
            "dataset.cast_column(NAME, datasets.Audio()) before save_to_disk, or name it "
            "with --audio-column.")
    return found[0]


def _columns(features: Any, label: str, item: str | None,
             what: str) -> tuple[str, str | None]:
    """The label and the item column (`None`: no speaker column, the items come from the
    files, see `_file_items`)."""
    names = list(features)
    if label not in names:
        raise DatasetError(f"--label-column {label}: not a column of {what}; its columns: "
                           f"{', '.join(names)}.")
    if item is None:
        return label, next((c for c in ITEM_COLUMNS if c in names), None)
    if item not in names:
        raise DatasetError(f"--item-column {item}: not a column of {what}; its columns: "
                           f"{', '.join(names)}.")
    return label, item


def _text(values: list[Any], column_type: Any) -> list[str | None]:
    """Column values as text: class names for a `ClassLabel` (the column's type, a
    `datasets` feature), `None` for a missing value; the values of a `Sequence` (`List`)
    column are sets of labels, as a tagging store keeps them (`""`: a list without a
    label)."""
    inner = _inner_feature(column_type)
    if inner is not None:
        out: list[str | None] = []
        for value in values:
            found = [t for t in _text(list(value or []), inner) if t is not None]
            out.append(None if value is None else label_set(found) if found else "")
        return out
    names = getattr(column_type, "names", None)
    if names is not None:
        return [None if v is None or v < 0 else names[v] for v in values]
    return [None if v is None or str(v).strip() == "" else str(v) for v in values]


def _inner_feature(column_type: Any) -> Any:
    """The feature of a `Sequence` (`datasets.List`) column's items, or `None` for a
    column of single values."""
    lists = tuple(getattr(_datasets(), name) for name in ("List", "LargeList", "Sequence")
                  if isinstance(getattr(_datasets(), name, None), type))
    return column_type.feature if lists and isinstance(column_type, lists) else None


def _table(split: _Split, columns: tuple[str, str, str | None]) -> dict[str, list[Any]]:
    """The audio (paths, and whether bytes are held), label and item values of a split
    (items `None` without an item column)."""
    audio, label, item = columns
    if split.saved is None:
        return {"path": [e[audio] for e in split.examples],
                "held": [False] * len(split.examples),
                "label": [e[label] for e in split.examples],
                "item": [None if item is None else e[item] for e in split.examples]}
    compute = importlib.import_module("pyarrow.compute")  # installed with datasets
    data = split.dataset.data
    return {"path": compute.struct_field(data.column(audio), "path").to_pylist(),
            "held": compute.is_valid(compute.struct_field(data.column(audio),
                                                          "bytes")).to_pylist(),
            "label": data.column(label).to_pylist(),
            "item": [None] * data.num_rows if item is None else data.column(item).to_pylist()}


def _split_rows(split: _Split, columns: tuple[str, str, str | None], folder: Path, root: Path,
                skipped: Skipped) -> list[dict[str, object]]:
    """The rows of one split (and its examples skipped, with the reason); without an item
    column, each row's item is its clip id (grouped later by `_file_items`)."""
    audio, label, item = columns
    table = _table(split, columns)
    labels = _text(table["label"], split.features[label])
    items = (_text(table["item"], split.features[item]) if item is not None
             else [""] * len(labels))
    rows: list[dict[str, object]] = []
    for index, (stored, held) in enumerate(zip(table["path"], table["held"])):
        row: dict[str, object] = {"path": f"{split.saved}#{index}", "clip":
                                  f"{split.name}/{index}"}
        reason = None
        if held and split.saved is not None:
            row["read"] = functools.partial(read_audio_bytes, str(split.saved), audio, index)
        elif stored:
            path = root / stored
            row = {"path": str(path), "clip": _clip(path, folder)}
            reason = unreadable_reason(path)
        else:
            reason = "no audio (neither bytes nor a path)"
        if labels[index] == "":  # as a manifest's clip without a label: refused by name
            raise DatasetError(
                f"{split.name} example {index} of {folder}: {label}=[] holds no label; a clip "
                "needs one label at least: label it, or leave it out (dataset.filter(lambda "
                f"e: len(e[{label!r}]) > 0)).")
        if reason is None and (labels[index] is None or items[index] is None):
            reason = f"no {label if labels[index] is None else item}"
        if reason is not None:
            skipped.append({"path": str(row["path"]),
                            "reason": f"{split.name} example {index}: {reason}"})
            continue
        rows.append({**row, "label": labels[index], "item": items[index] or row["clip"]})
    return rows


def _file_items(rows: list[dict[str, object]], what: str) -> str:
    """Items for a dataset without a speaker column, as a folder of audio gets them: the
    recording id the clips' names share (`find_recordings`), else every example its own
    item. Returns the sentence saying which (kept in `rows.attrs["recordings"]`)."""
    fix = (f"{what} has no speaker column ({', '.join(ITEM_COLUMNS)}): name the column that "
           "holds the items with --item-column.")
    found = find_recordings([str(r["clip"]) for r in rows], [r["label"] for r in rows])
    if found is None:
        return f"every example is its own item; {fix}"
    for row, recording in zip(rows, found.items):
        row["item"] = recording
    return found.describe(otherwise=fix[0].upper() + fix[1:])


def _class_order(splits: list[_Split], label: str, rows: list[dict[str, object]]
                 ) -> list[str] | None:
    """The classes in the order of the label column's `ClassLabel` ids (those that have
    rows; of a `Sequence` of `ClassLabel`, those some row holds), or `None` when the column
    is not a `ClassLabel`."""
    feature = splits[0].features[label]
    inner = _inner_feature(feature)
    names = getattr(inner if inner is not None else feature, "names", None)
    if names is None:
        return None
    present = {t for r in rows for t in split_tags(r["label"])} if inner is not None \
        else {r["label"] for r in rows}
    return [str(name) for name in names if name in present]


def _clip(path: Path, folder: Path) -> str:
    """The clip id of an audio file: its path relative to the dataset folder when inside."""
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def hf_source(dataset_dir: str | os.PathLike[str], *, label_column: str = LABEL_COLUMN,
              item_column: str | None = None, audio_column: str | None = None,
              root: str | os.PathLike[str] | None = None) -> Rows:
    """Rows from a Hugging Face dataset folder: one row per example of every split.

    Args:
        dataset_dir: a folder written by `Dataset.save_to_disk` or
            `DatasetDict.save_to_disk`, or an `audiofolder`.
        label_column: the column of labels (a `ClassLabel` gives its class names; a
            `Sequence` of labels, e.g. `Sequence(ClassLabel(...))`, gives each example a
            set of labels: a tagging store). Defaults to `"label"` (an audiofolder's labels
            from its class folders).
        item_column: the column of items; `None` takes the first of `ITEM_COLUMNS` present.
        audio_column: the `datasets.Audio` column; `None` takes the only one.
        root: the folder relative audio paths are read from. Defaults to the current folder.

    Returns:
        `(rows, skipped)`. A row's clip id is its file's path relative to the folder, or
        `SPLIT/INDEX` for audio kept inside the dataset (its path is then `FOLDER#INDEX`).
        Without an item column (none named, none of `ITEM_COLUMNS`), the items are the
        recording ids the clip ids share, else every example is its own item, said in
        `rows.attrs["recordings"]`. A `ClassLabel` label column gives the class order, in
        `rows.attrs["classes"]` (which `build_store` follows).

    Raises:
        ConfigurationError: when `datasets` is not installed.
        DatasetError: for a folder that is neither, no audio column (or an ambiguous one),
            a label or item column that does not exist.
    """
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {str(folder)!r} does not exist or is not a folder.")
    what = f"the dataset {folder}"
    rows: list[dict[str, object]] = []
    skipped: Skipped = []
    splits = _splits(folder)
    items: set[str | None] = set()
    for split in splits:
        audio = ("audio" if split.saved is None
                 else _audio_column(split.features, audio_column, what))
        label, item = _columns(split.features, label_column, item_column, what)
        items.add(item)
        rows += _split_rows(split, (audio, label, item), folder,
                            Path(root) if root is not None else Path.cwd(), skipped)
    said = _file_items(rows, what) if items == {None} and rows else None
    table, skipped = source_table(rows, skipped, f"Dataset {folder}", said)
    table.attrs["classes"] = _class_order(splits, label_column, rows)
    table.attrs[MULTI_LABEL] = _inner_feature(splits[0].features[label_column]) is not None
    return table, skipped


class HuggingFace(Corpus):
    """`python -m preprocessing hf DATASET_DIR`: `hf_source`."""

    name = "hf"
    help = "a Hugging Face dataset folder (save_to_disk) or an audiofolder"
    reads = Reads("DATASET_DIR", "the folder of the Hugging Face dataset",
                  help="a folder written by save_to_disk, or an audiofolder")
    options = (
        Option("--label-column", "the column of labels (default: label)",
               default=LABEL_COLUMN),
        Option("--item-column", "the column of items (default: the first of "
                                f"{', '.join(ITEM_COLUMNS)})"),
        Option("--audio-column", "the datasets.Audio column (default: the only one)"),
        ROOT,
    )

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        return hf_source(paths[0], **values)
