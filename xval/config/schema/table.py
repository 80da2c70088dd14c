"""`SCHEMA`: section -> key -> `Key`, derived from the typed section records (each field
declared once, with `xval.core.settings.setting`); the notes under section headers, and the
keys added since the first release."""

from __future__ import annotations

from xval.config.sections import SECTIONS
from xval.core.settings import Key, absent_values, keys_of

SCHEMA: dict[str, dict[str, Key]] = {section: keys_of(record)
                                     for section, record in SECTIONS.items()}
"""Every section of `config.ini`, in the order a config file lists them: its keys as the
records declare them (`xval.config.sections.SECTIONS`)."""

TRAINING_NOTES = (
    "Every key of this section is an instance parameter: instances and --set may override "
    "it. The defaults are the best configuration measured on FSDD leave-one-speaker-out "
    "(docs, results): cosine learning rate after a 2-epoch warm-up, at least 15 epochs, "
    "SpecAugment, mixup, label smoothing, and the two classic speaker augmentations at "
    "their usual 10 % (VTLP, speed perturbation). Set them to 0 (and lr_schedule = "
    "constant) for plain training. A default min_epochs or warmup_epochs that does not fit "
    "an instance's epochs is scaled down (epochs // 2, epochs // 5); label smoothing and "
    "the warps are dropped for tasks without classes, SpecAugment, mixup and the warps for "
    "detection and representation; values an instance names are checked as given.")

SECTION_NOTES = {"training": TRAINING_NOTES}
"""Section name -> the explanation written under its header."""

ADDED_KEYS: dict[str, dict[str, object]] = {
    section: added for section, record in SECTIONS.items() if (added := absent_values(record))}
"""Section -> the keys added after the first release -> the value that leaves things as
they were before them (a config.ini written earlier gets these values, and results recorded
before them count as made with them): the `absent=` of their declarations."""
