"""The windows and frames of a detection store built with nothing named:
`python -m preprocessing detection`'s own defaults, measured in docs/results.md."""

import math
from typing import Any

WINDOW_SECONDS = 5.0
"""Window length, and hop: windows that tile the recordings without overlap."""
FRAME_SECONDS = 0.02
"""Time between frames."""
FFT_SECONDS = 0.064
"""About the FFT length (the power of two of samples nearest it)."""


def store_defaults(sample_rate: int, segment_seconds: float | None = None) -> dict[str, Any]:
    """The `[features]` values of a detection store at `sample_rate`: windows of
    `WINDOW_SECONDS` that do not overlap (the shared 1 s every 0.5 s cut event trains into
    pieces and trained on every frame twice; a window length the user names keeps its
    windows apart too), frames every `FRAME_SECONDS` from FFTs of about `FFT_SECONDS`, at
    any rate: at 8 kHz the shared 160 and 512 samples, at 16 kHz 320 and 1024.

    Args:
        sample_rate: the store's sample rate (Hz).
        segment_seconds: the window length the user named, or `None`.

    Returns:
        dict of `segment_seconds`, `segment_hop_seconds`, `hop_length`, `n_fft`.
    """
    return {"segment_seconds": WINDOW_SECONDS,
            "segment_hop_seconds": segment_seconds or WINDOW_SECONDS,
            "hop_length": max(1, round(sample_rate * FRAME_SECONDS)),
            "n_fft": 2 ** max(1, round(math.log2(sample_rate * FFT_SECONDS)))}
