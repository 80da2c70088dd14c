"""`SCHEMA`: section -> key -> `Key`, derived from the typed section records (each field
declared once, with `xval.core.settings.setting`) and, for `[training]`, the registered
tasks' own parameters; the notes under section headers, and the keys added since the first
release."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from xval import tasks
from xval.config.sections import SECTIONS
from xval.core.settings import Key, absent_values, keys_of


class TrainingKeys(MutableMapping[str, Key]):
    """The `[training]` keys: those every task reads (`TrainingParams`), then the registered
    tasks' own (`xval.tasks.parameter_keys`), read afresh, so that a task registered later
    (in an experiment's script) adds its keys and one unregistered takes them away. A key
    written (a registry's choices bound, `bind_choices`) is kept over the declared one."""

    def __init__(self, shared: dict[str, Key]) -> None:
        self._shared = shared

    def _keys(self) -> dict[str, Key]:
        own = tasks.parameter_keys()
        return {**self._shared, **{k: v for k, v in own.items() if k not in self._shared}}

    def __getitem__(self, key: str) -> Key:
        return self._keys()[key]

    def __setitem__(self, key: str, value: Key) -> None:
        self._shared[key] = value

    def __delitem__(self, key: str) -> None:
        del self._shared[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


SCHEMA: dict[str, MutableMapping[str, Key]] = {section: keys_of(record)
                                               for section, record in SECTIONS.items()}
"""Every section of `config.ini`, in the order a config file lists them: its keys as the
records declare them (`xval.config.sections.SECTIONS`; `[training]`: `TrainingKeys`)."""
SCHEMA["training"] = TrainingKeys(dict(SCHEMA["training"]))

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
"""Section -> the keys added after release 0.1.0 -> the value that leaves things as
they were before them (a config.ini written earlier gets these values, and results recorded
before them count as made with them): the `absent=` of their declarations, the built-in
tasks' own parameters' included."""
ADDED_KEYS["training"] = {**ADDED_KEYS.get("training", {}),
                          **{k: v for task in tasks.TASKS.values()
                             for k, v in absent_values(task.parameters).items()}}
