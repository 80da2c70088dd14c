"""`DatasetInfo`: the typed record of a store's `dataset.json` (also the copy an experiment
keeps beside its results).

`dataset.json` is written by `preprocessing.store.write_store`: the store's own entries
(`task_type`, `classes`, `n_rows`, `feature_shape`, `dtype`, `n_items`, `n_clips`,
`content_hash`) and what the build recorded (`feature_params`, `sample_rate`, `skipped`,
`front_end`, `annotation_options`, `silent_segments`, `duplicates`, ...). Code reads them
by attribute (`info.feature_params`); the record keeps the file's content as it is
(`to_dict()`), so an entry this release does not know is carried along, and reads as a
mapping too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from xval.core.constraints import InstancesOf, satisfies
from xval.core.errors import DatasetError
from xval.core.parameters import FeatureParams

__all__ = ["DatasetInfo"]

_KINDS: dict[str, type | tuple[type, ...]] = {
    "task_type": str, "classes": list, "n_rows": int, "feature_shape": list, "dtype": str,
    "n_items": int, "n_clips": int, "content_hash": str, "feature_params": dict,
    "sample_rate": (int, float), "skipped": list, "front_end": dict,
    "annotation_options": dict, "store": str, "files_sha256": dict, "silent_segments": dict,
    "duplicates": dict,
}
"""The known entries and their JSON types (checked by `from_dict`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetInfo(Mapping[str, Any]):
    """A store's description (`dataset.json`).

    Args:
        data: the file's content.
    """

    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "dataset.json") -> DatasetInfo:
        """Reads the content of a `dataset.json`.

        Raises:
            DatasetError: when it is not a JSON object, or a known entry has the wrong type.
        """
        if isinstance(data, DatasetInfo):
            return data
        if not isinstance(data, Mapping):
            raise DatasetError(f"{where} holds {type(data).__name__}, not a dataset "
                               "description (a JSON object).")
        for name, kind in _KINDS.items():
            value = data.get(name)
            if value is not None and not satisfies(value, [InstancesOf(kind)]):
                raise DatasetError(f"{where}: its {name!r} is {type(value).__name__} "
                                   f"{value!r:.60}; rebuild the store.")
        return cls(dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The content, as written."""
        return dict(self.data)

    def replace(self, **changes: Any) -> DatasetInfo:
        """A copy with some entries changed (`None` removes one)."""
        data = {**self.data, **changes}
        return DatasetInfo({k: v for k, v in data.items() if v is not None})

    # -- the entries -----------------------------------------------------------------------

    @property
    def task_type(self) -> str | None:
        """The store's task, or `None` where it names none (`tasks.DEFAULT`)."""
        return self.data.get("task_type")

    @property
    def classes(self) -> list[str]:
        """The class names, in target order (`[]` without classes)."""
        return list(self.data.get("classes") or [])

    @property
    def n_rows(self) -> int:
        return int(self.data.get("n_rows") or 0)

    @property
    def n_items(self) -> int:
        return int(self.data.get("n_items") or 0)

    @property
    def n_files(self) -> int:
        """The audio files the store was built from (0 when not recorded)."""
        return int(self.data.get("n_files") or 0)

    @property
    def n_clips(self) -> int:
        """The clips (files, or cuts of files) its rows are segments of (0: not recorded)."""
        return int(self.data.get("n_clips") or 0)

    @property
    def source(self) -> str | None:
        """Where the audio came from (the folder, or a corpus source), or `None`."""
        found = self.data.get("source")
        return str(found) if found else None

    @property
    def store(self) -> str | None:
        """The store folder an experiment read (its copy of `dataset.json` records it:
        `without_skipped`), or `None`."""
        found = self.data.get("store")
        return str(found) if found else None

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.data.get("feature_shape") or ())

    @property
    def content_hash(self) -> str:
        """The SHA-256 of the features and metadata (`""` when not recorded)."""
        return str(self.data.get("content_hash") or "")

    @property
    def files_sha256(self) -> dict[str, str]:
        """The SHA-256 of each of the store's files when it was built (`{}` for a store
        built before they were recorded: its content hash is recomputed instead)."""
        return dict(self.data.get("files_sha256") or {})

    @property
    def feature_params(self) -> FeatureParams | None:
        """The feature parameters the store was built with (a key the file lacks takes
        the record's default), or `None` (a store written from arrays)."""
        found = self.data.get("feature_params")
        return FeatureParams.of(found) if found else None

    @property
    def recorded_feature_params(self) -> dict[str, Any] | None:
        """The feature parameters as the file holds them (no defaults added), to check them
        as a build does (`preprocessing.feature_params`), or `None`."""
        found = self.data.get("feature_params")
        return dict(found) if found else None

    @property
    def feature(self) -> str | None:
        """The feature type's name (`feature_params.feature`), or `None`."""
        params = self.feature_params
        return params.feature if params is not None else None

    @property
    def frame_seconds(self) -> float | None:
        """The feature hop in seconds (`hop_length / sample_rate` of the feature
        parameters), or `None` when they do not say."""
        params = self.feature_params
        return float(params.seconds_per_frame) if params is not None else None

    @property
    def front_end(self) -> dict[str, Any]:
        """What a pretrained front end recorded (`{}` for another feature type)."""
        return dict(self.data.get("front_end") or {})

    @property
    def encoder(self) -> str | None:
        """The pretrained encoder the store's features came from (`front_end`), or `None`."""
        found = self.front_end.get("encoder")
        return str(found) if found else None

    @property
    def encoded_by(self) -> str | None:
        """The encoder, or the encoders side by side in order (a stacked store:
        `aisfx+birdnet`), the store's features came from, or `None`."""
        return self.encoder or (str(self.front_end.get("stacked") or "") or None)

    @property
    def encoder_layers(self) -> int:
        """The encoder layers side by side in a pretrained store's rows (0: none; 1 when
        their sizes differ, `front_end.layer_dims`: a row is then one vector per frame)."""
        if self.front_end.get("layer_dims"):
            return 1
        return len(self.front_end.get("layers") or [])

    @property
    def annotation_options(self) -> dict[str, Any]:
        """How a detection store read its annotation CSV (`{}` for another store)."""
        return dict(self.data.get("annotation_options") or {})

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """The files the build skipped, each with its reason."""
        return list(self.data.get("skipped") or [])

    @property
    def silent_segments(self) -> dict[str, Any]:
        """The segments the build found silent or padding (`count`, `dropped`,
        `silence_threshold_db`, `segments`: source and start of each); `{}` for a store
        built before they were counted."""
        return dict(self.data.get("silent_segments") or {})

    @property
    def duplicates(self) -> dict[str, Any] | None:
        """The duplicate check of the store's files (`preprocessing.duplicates.check`: method,
        threshold, the pairs of files found to hold the same audio), or `None` for a store
        built before it was made."""
        found = self.get("duplicates")  # (a Mapping: `[data]` names a config section)
        return dict(found) if found else None

    def without_skipped(self, store: str) -> DatasetInfo:
        """What an experiment keeps of its store's description: without the list of skipped
        files, with the store's path."""
        data = {k: v for k, v in self.data.items() if k != "skipped"}
        return DatasetInfo({**data, "store": store})

    # -- the mapping view ----------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"DatasetInfo({dict(self.data)!r})"
