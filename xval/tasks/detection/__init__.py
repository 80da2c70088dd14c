"""Sound event detection, one package, from the top of its order down:

- `task`: the task (`Detection`) and its three parts;
- `mixing`: event mixing of the training windows (`event_mix`);
- `scores`: a fold's scores, window by window and over stitched recordings;
- `overlap`, `windows`: the windows read between a recording's windows, and a store's;
- `rules`: the post-processing (`EventRules`) and its choice on validation recordings;
- `psds`: the polyphonic sound detection score;
- `events`: frames to events, windows stitched into recordings, the event metrics;
- `frames`: events to frames, the targets on the feature frame grid;
- `metrics`: segment and event counting, as sed_eval counts;
- `params`: its own parameters (`DetectionParams`).

What the layers above the tasks use of it (the store builder of `preprocessing.detection`)
is this face: the task, the events' collar and the frame targets.
"""

from xval.tasks.detection.events import T_COLLAR
from xval.tasks.detection.frames import frame_targets
from xval.tasks.detection.params import DetectionParams
from xval.tasks.detection.task import Detection

__all__ = ["T_COLLAR", "Detection", "DetectionParams", "frame_targets"]
