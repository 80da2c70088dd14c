"""Audio augmentation with audiomentations: pipelines and the `IN OUT N` command."""

from augmentation.command import augment_folder
from augmentation.pipeline import (
    Augmenter,
    build_pipeline,
    require_augment_extra,
)

__all__ = ["Augmenter", "augment_folder", "build_pipeline",
           "require_augment_extra"]
