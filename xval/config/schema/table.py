"""`SCHEMA`: section -> key -> `Key`, assembled from the section modules; the notes under
section headers, and the keys added since the first release."""

from __future__ import annotations

from xval.config.schema.key import Key
from xval.config.schema.settings import (
    AUGMENTATION,
    BACKEND,
    DATA,
    FEATURES,
    FOLDS,
    PATHS,
    REPORT,
)
from xval.config.schema.training import ADDED_TRAINING, TRAINING, TRAINING_NOTES

SCHEMA: dict[str, dict[str, Key]] = {
    "paths": PATHS,
    "backend": BACKEND,
    "folds": FOLDS,
    "data": DATA,
    "training": TRAINING,
    "features": FEATURES,
    "augmentation": AUGMENTATION,
    "report": REPORT,
}
"""Every section of `config.ini`, in the order a config file lists them."""

SECTION_NOTES = {"training": TRAINING_NOTES}
"""Section name -> the explanation written under its header."""

ADDED_KEYS = {"training": ADDED_TRAINING}
"""Section -> the keys added after the first release -> the value that leaves things as
they were before them (a config.ini written earlier gets these values, and results recorded
before them count as made with them)."""
