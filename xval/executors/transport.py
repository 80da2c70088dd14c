"""How a job's result travels from a worker process back to the driver: a folder holding
`result.json` (`FoldResult.to_transport()`) and `model.keras` (the best model's bytes).

These are the worker's hand-over files in a temporary folder, not result files of the
experiment: the driver reads them back and its recorder alone writes the experiment's files.
"""

from __future__ import annotations

import json
from pathlib import Path

from xval.core.files import atomic_write_bytes, atomic_write_json
from xval.core.records import FoldResult

JOB = "job.json"
RESULT = "result.json"
MODEL = "model.keras"
# The line a worker prints, with the folder, when it has written a job's result there.
DONE_PREFIX = "xval-done "


def write(folder: str | Path, result: FoldResult) -> None:
    """Writes `result` (and its model's bytes) into `folder`.

    Args:
        folder: the hand-over folder (it exists).
        result: the job's `FoldResult`.
    """
    folder = Path(folder)
    if result.model_bytes is not None:
        atomic_write_bytes(folder / MODEL, result.model_bytes)
    atomic_write_json(folder / RESULT, result.to_transport())


def read(folder: str | Path) -> FoldResult | None:
    """The `FoldResult` a worker wrote into `folder`, or `None` when it wrote none.

    Args:
        folder: the hand-over folder.

    Returns:
        The `FoldResult` with its model's bytes, or `None`.
    """
    folder = Path(folder)
    if not (folder / RESULT).exists():
        return None
    data = json.loads((folder / RESULT).read_text(encoding="utf-8"))
    model = folder / MODEL
    return FoldResult.from_transport(data, model.read_bytes() if model.exists() else None)
