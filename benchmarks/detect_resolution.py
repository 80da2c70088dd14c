"""The best event F1 a detector could reach at a coarser time resolution (issue 44, point 3).

A detector whose outputs change only every `k` frames (one that pools time by `k`, or a
head on a block encoder's embeddings: aisfx gives one vector per block hop of 1024-sample
frames at 44.1 kHz, 23 ms each, 1.16 s by default) cannot place onsets and offsets finer
than `k` frames. This script scores the annotation itself, held constant over blocks of `k`
frames of each recording (a block active when any, or when most, of its frames are), against
the annotation as it is: sed_eval's event F1 (200 ms collar) of a perfect detector at that
resolution, an upper bound for any model there. No training.

    python -m benchmarks.detect_resolution --dataset fsdd_trains --blocks 1,2,4,8,10,12,25,50
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from preprocessing.store import FeatureStore
from xval.config.loader import find_config, load_config
from xval.tasks.detection.events import event_metrics
from xval.tasks.detection.rules import reference_events, stitch_recordings


def blocky(y: np.ndarray, k: int, rule: str) -> np.ndarray:
    """`(frames, classes)` 0/1 activity held constant over blocks of `k` frames: a block is
    active when any (`rule="any"`) or more than half (`"most"`) of its frames are."""
    n = len(y)
    padded = np.zeros((-(-n // k) * k, y.shape[1]), dtype=float)
    padded[:n] = y
    blocks = padded.reshape(-1, k, y.shape[1]).mean(axis=1)
    active = blocks > 0 if rule == "any" else blocks > 0.5
    return np.repeat(active.astype(float), k, axis=0)[:n]


def ceiling(dataset: str, blocks: Sequence[int]) -> list[str]:
    """Markdown rows: the event F1 of the annotation at each block length, by rule."""
    config = load_config(find_config())
    store = FeatureStore(config.data_dir / dataset)
    frame_seconds = store.info.frame_seconds
    targets = np.asarray(store.targets, dtype=float)
    starts = store.meta["start"].to_numpy(float)
    stitched = stitch_recordings(np.where(targets > 0, 9.0, -9.0), targets,
                                 store.clips, starts, frame_seconds)
    if stitched is None:
        raise SystemExit(f"{dataset}: its windows cannot be stitched into recordings.")
    truths = stitched[2]
    names = list(store.classes)
    reference, durations = reference_events(truths, frame_seconds, names)
    rows = [f"{dataset}: {len(truths)} recordings, {len(reference)} events, frames of "
            f"{1000 * frame_seconds:.0f} ms", "",
            "| block (frames) | block (ms) | event F1, block active if any frame is | "
            "if most frames are |", "|---|---|---|---|"]
    for k in blocks:
        scores = []
        for rule in ("any", "most"):
            estimated, _ = reference_events([blocky(y, k, rule) for y in truths],
                                            frame_seconds, names)
            scores.append(event_metrics(reference, estimated, files=list(durations),
                                        classes=names)["event_f1"])
        rows.append(f"| {k} | {1000 * k * frame_seconds:.0f} | {scores[0]:.3f} | "
                    f"{scores[1]:.3f} |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a detection store under data_dir")
    parser.add_argument("--blocks", default="1,2,4,8,12,25,50",
                        help="comma-separated block lengths, in the store's frames")
    args = parser.parse_args(argv)
    print("\n".join(ceiling(args.dataset, [int(b) for b in args.blocks.split(",")])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
