"""Audio files -> feature store: sources, decoding, librosa features, segmentation."""

import xval  # noqa: F401  (first: refuses a namesake of this package, xval.core.namesakes)
from preprocessing.audio import load_audio
from preprocessing.build import build_store, feature_params
from preprocessing.features import compute_features, segment, windows
from preprocessing.report import dataset_report
from preprocessing.sources import folder_source, manifest_source, regex_source
from preprocessing.store import FeatureStore, write_store
from xval.tasks.detection import annotation_source, read_annotations

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
