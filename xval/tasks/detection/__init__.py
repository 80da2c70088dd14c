"""Sound event detection, one package, from the top of its order down:

- `task`: the task (`Detection`) and its three parts;
- `mixing`: event mixing of the training windows (`event_mix`);
- `scores`: a fold's scores, window by window and over stitched recordings;
- `overlap`, `windows`: the windows read between a recording's windows, and a store's;
- `choice`: how a fold chooses its post-processing (the training annotations' rule, the
  validation recordings' event F1);
- `views`: the Events sheet and the lines under the results tables;
- `rules`: the post-processing (`EventRules`) and recordings stitched from their windows;
- `errors`: what lost each annotated event (missed, merged, split, ...);
- `psds`: the polyphonic sound detection score, and why a PSDS2 is 0;
- `events`: frames to events, windows stitched into recordings, the event metrics;
- `shapes`: the shortest gaps and events of annotations;
- `frames`: events to frames, the targets on the feature frame grid;
- `metrics`: segment and event counting, as sed_eval counts;
- `params`: its own parameters (`DetectionParams`);
- `annotations`, `tables`: the annotation CSVs of recordings read into event tables
  (`read_annotations`, `annotation_source`).

What the layers above the tasks use of it (the store builder of `preprocessing.detection`,
the annotated recordings of `python -m xval init` and `evaluate`, through `preprocessing`)
is this face: the task, the events' collar, the frame targets and the annotation readers.
The readers (pandas, soundfile) load on first use (PEP 562): importing the tasks costs
numpy alone.
"""

import importlib
from typing import TYPE_CHECKING

from xval.tasks.detection.events import T_COLLAR
from xval.tasks.detection.frames import frame_targets
from xval.tasks.detection.params import DetectionParams
from xval.tasks.detection.task import Detection

if TYPE_CHECKING:
    from xval.tasks.detection.annotations import annotation_source, read_annotations

# Public name -> the module of this package that defines it, imported on first use.
_LAZY = {"annotation_source": "xval.tasks.detection.annotations",
         "read_annotations": "xval.tasks.detection.annotations"}

__all__ = ["T_COLLAR", "Detection", "DetectionParams", "annotation_source", "frame_targets",
           "read_annotations"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'xval.tasks.detection' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
