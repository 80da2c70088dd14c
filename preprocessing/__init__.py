"""Audio files -> feature store: sources, decoding, librosa features, segmentation."""

from preprocessing.audio import load_audio
from preprocessing.build import build_store, feature_params
from preprocessing.features import compute_features, segment
from preprocessing.report import dataset_report
from preprocessing.sources import folder_source, manifest_source, regex_source
from preprocessing.store import FeatureStore, write_store, write_store_from_dicts

__all__ = [
    "FeatureStore",
    "build_store",
    "compute_features",
    "dataset_report",
    "feature_params",
    "folder_source",
    "load_audio",
    "manifest_source",
    "regex_source",
    "segment",
    "write_store",
    "write_store_from_dicts",
]
