"""Audio files -> feature store: sources, decoding, librosa features, segmentation."""

from typing import TYPE_CHECKING

import xval  # noqa: F401  (first: refuses a namesake of this package, xval.core.namesakes)

if TYPE_CHECKING:
    from preprocessing.audio import load_audio
    from preprocessing.build import build_store, feature_params
    from preprocessing.features import compute_features, segment, windows
    from preprocessing.report import dataset_report
    from preprocessing.sources import folder_source, manifest_source, regex_source
    from preprocessing.store import FeatureStore, write_store
    from xval.tasks.detection import annotation_source, read_annotations

_WHERE = {"load_audio": "preprocessing.audio", "build_store": "preprocessing.build",
          "feature_params": "preprocessing.build", "compute_features": "preprocessing.features",
          "segment": "preprocessing.features", "windows": "preprocessing.features",
          "dataset_report": "preprocessing.report", "folder_source": "preprocessing.sources",
          "manifest_source": "preprocessing.sources", "regex_source": "preprocessing.sources",
          "FeatureStore": "preprocessing.store", "write_store": "preprocessing.store",
          "annotation_source": "xval.tasks.detection",
          "read_annotations": "xval.tasks.detection"}
"""Where each name of `__all__` lives: imported on first use (`__getattr__`), so that a
process that only reads a store (every training job) does not import the store builder,
the sources and the dataset report (pandas's readers, matplotlib): about 0.13 s of CPU."""

__distribution__ = "audio-xval"
"""Whose package this is (`xval.core.namesakes` tells it from a namesake's)."""

__all__ = [
    "FeatureStore",
    "annotation_source",
    "build_store",
    "compute_features",
    "dataset_report",
    "feature_params",
    "folder_source",
    "load_audio",
    "manifest_source",
    "read_annotations",
    "regex_source",
    "segment",
    "windows",
    "write_store",
]


def __getattr__(name: str) -> object:
    """The names of `__all__`, each imported from its module on first use; a submodule
    (`preprocessing.sources`), imported on first use too, as when this package imported
    them all."""
    import importlib  # noqa: PLC0415  (only on a first use)

    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
