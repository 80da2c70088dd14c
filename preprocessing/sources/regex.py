"""The `regex` source: labels and items from file paths, matched by a regular expression
with named groups; and the patterns of known datasets (FSDD, RAVDESS, VoxCeleb's layout)."""

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from preprocessing.audio import AUDIO_EXTENSIONS
from preprocessing.sources.base import (
    ITEM_PER_FILE,
    Option,
    Reads,
    Rows,
    Source,
    group_recordings,
    source_table,
)
from preprocessing.sources.files import audio_files
from xval.core.errors import ConfigurationError, DatasetError

__all__ = ["FSDD_PATTERN", "LABEL_MAPS", "PRESETS", "RAVDESS_EMOTIONS", "RAVDESS_PATTERN",
           "SPEAKER_ID_PATTERN", "Regex", "compile_pattern", "label_map", "regex_source"]

# RAVDESS file names: modality-channel-EMOTION-intensity-statement-repetition-ACTOR.
RAVDESS_PATTERN = (r"(?:^|/)\d\d-\d\d-(?P<label>\d\d)-\d\d-\d\d-\d\d-(?P<item>\d\d)"
                   r"\.(?:wav|flac)$")
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
# FSDD file names: {digit}_{speaker}_{index}.wav.
FSDD_PATTERN = r"(?:^|/)(?P<label>\d)_(?P<item>[a-z]+)_\d+\.wav$"
# Speaker identification `id/context/file` layout (VoxCeleb): labels are speakers, items
# are contexts (recording sessions or videos).
SPEAKER_ID_PATTERN = r"^(?P<label>[^/]+)/(?P<item>[^/]+)/[^/]+$"
PRESETS = {"fsdd": FSDD_PATTERN, "ravdess": RAVDESS_PATTERN,
           "speaker-id": SPEAKER_ID_PATTERN}
"""The patterns `--pattern` takes by name."""
LABEL_MAPS = {"ravdess": RAVDESS_EMOTIONS}
"""The label maps `--label-map` takes by name."""


def compile_pattern(pattern: str, group: str, what: str) -> re.Pattern[str]:
    """`pattern` compiled, with its named group `group`.

    Raises:
        DatasetError: naming `what` (`"Pattern"`, `"item_pattern"`) for a pattern that is
            not a regular expression or lacks the group.
    """
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise DatasetError(f"{what} {pattern!r} is not a valid regular expression: {e}") \
            from e
    if group not in regex.groupindex:
        raise DatasetError(f"{what} {pattern!r} needs a named group (?P<{group}>...).")
    return regex


def label_map(text: str) -> dict[str, str]:
    """`--label-map`: a preset of `LABEL_MAPS`, a JSON file or `CODE=NAME,...` pairs.

    Raises:
        ConfigurationError: for an unreadable JSON file, a JSON value that is not an
            object, or text that is none of the three.
    """
    if text in LABEL_MAPS:
        return LABEL_MAPS[text]
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"--label-map {text!r}: not a readable JSON file "
                                     f"({type(e).__name__})") from None
        if not isinstance(table, dict):
            raise ConfigurationError(f"--label-map {text!r}: expected a JSON object of code "
                                     "-> class name")
        return {str(k): str(v) for k, v in table.items()}
    pairs = [p.split("=", 1) for p in text.split(",") if p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ConfigurationError(
            f"--label-map {text!r}: expected a preset ({', '.join(LABEL_MAPS)}), a JSON "
            "file, or CODE=NAME pairs like 01=neutral,02=calm")
    return dict((code, name) for code, name in pairs)


def regex_source(root: str | os.PathLike[str], pattern: str, *,
                 label_map: Mapping[str, str] | None = None,
                 extensions: Iterable[str] = AUDIO_EXTENSIONS,
                 by_recording: bool = True) -> Rows:
    """Rows from file paths matched by a regular expression with named groups.

    The pattern is searched in each path relative to `root` (with `/` separators). Group
    `label` gives the label, group `item` the foldable item (when absent: the recording id
    the file names share, else the file itself), and optional group `clip` the clip id (the
    relative path when absent).

    Args:
        root: the dataset folder.
        pattern: regular expression, e.g. `sources.FSDD_PATTERN`.
        label_map: dict of label code to class name (e.g. `RAVDESS_EMOTIONS`), or `None`.
        extensions: file extensions to read. Defaults to every supported audio format.
        by_recording: without an `item` group, files whose names share a recording id are
            one item (`preprocessing.recordings`); `False` makes every file its own item.
            Defaults to `True`.

    Returns:
        `(rows, skipped)`.

    Raises:
        DatasetError: for a bad pattern, a missing folder, or no matching file.
    """
    regex = compile_pattern(pattern, "label", "Pattern")
    folder, files, skipped = audio_files(root, extensions)
    codes = label_map or {}
    for entry in skipped:  # the class of a file it could not use, when the pattern gives it
        match = regex.search(Path(entry["path"]).relative_to(folder).as_posix())
        if match:
            entry["label"] = codes.get(match["label"], match["label"])
    rows: list[dict[str, str]] = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        match = regex.search(rel)
        if not match:
            skipped.append({"path": str(path), "reason": f"does not match pattern {pattern!r}"})
            continue
        label = match["label"]
        if label_map is not None and label not in label_map:
            skipped.append({"path": str(path),
                            "reason": f"label code {label!r} is not in the label map"})
            continue
        rows.append({"path": str(path), "label": codes.get(label, label),
                     "item": match.groupdict().get("item") or rel,
                     "clip": match.groupdict().get("clip") or rel})
    grouped = None
    if by_recording and "item" not in regex.groupindex:
        grouped = group_recordings(rows, [row["item"] for row in rows])  # the paths
    return source_table(rows, skipped, f"Pattern {pattern!r} over {folder}", grouped)


class Regex(Source):
    """`python -m preprocessing regex ROOT --pattern PATTERN`: `regex_source`."""

    name = "regex"
    help = "labels and items from file paths (named groups)"
    reads = Reads("root", "a dataset folder", help="dataset folder")
    options = (
        Option("--pattern", "regex with (?P<label>..), optional (?P<item>..), (?P<clip>..); "
                            f"presets: {', '.join(PRESETS)}", required=True),
        Option("--label-map", "preset (ravdess), JSON file, or CODE=NAME,... pairs",
               parse=label_map),
        ITEM_PER_FILE,
    )

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        return regex_source(paths[0], PRESETS.get(values["pattern"], values["pattern"]),
                            label_map=values["label_map"],
                            by_recording=not values["item_per_file"])
