"""Audio augmentation with audiomentations: pipelines and the `IN OUT N` command."""

import xval  # noqa: F401  (first: refuses a namesake of this package, xval.core.namesakes)
from augmentation.command import augment_folder
from augmentation.pipeline import (
    Augmenter,
    build_pipeline,
    require_augment_extra,
)

__distribution__ = "audio-xval"
"""Whose package this is (`xval.core.namesakes` tells it from a namesake's)."""

__all__ = ["Augmenter", "augment_folder", "build_pipeline",
           "require_augment_extra"]
