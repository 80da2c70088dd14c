"""Event mixing: detection training windows that get an annotated event of another
training window added, at a random place and gain, every epoch (`event_mix`).

A detector trained on its recordings as they are sees each event on one background, at
one place in one window; one tested on recordings and backgrounds it has never seen
misses events more than it invents them. Mixing moves the training events onto the other
training recordings' backgrounds. In each batch, a share `event_mix` of the windows (drawn
per window, epoch and batch, from the fold's seed) each receive one event of another window
of the batch (so of the fold's training recordings only): its frames, with a margin of
`MARGIN_FRAMES` on each side, less the donor window's background (the per-bin median of its
frames without an event: what the event added), at a gain drawn from `GAIN_DB`, added to
the receiving window's magnitudes at a random place; the pasted frames' targets are
marked active (the donor's targets over the pasted frames). The features are mixed as the
sounds would be, in energy: a store's compression is undone (`db`, `log`, `power`, none;
magnitudes or powers as the feature type computes them) and applied again; `pcen` cannot be
undone, and is refused.

Validation and test windows, the normalisation statistics and the recorded scores never
see a mixed window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xval.core.errors import ParameterError
from xval.tasks.parts import FeatureCatalog

GAIN_DB = (-6.0, 6.0)
"""The range of the pasted event's gain (dB), drawn per paste."""
MARGIN_FRAMES = 2
"""Frames taken on each side of a pasted event (its onset and decay)."""


class EventMixer:
    """Pastes annotated events of a batch's windows into its other windows.

    Args:
        rate: the share of windows that receive an event, in `(0, 1]`.
        feature: the store's feature type (one whose `magnitude_power` is set).
        compression: the store's compression (`db`, `log`, `power`, `none`).
        features: the feature registry (`preprocessing.features`), for the types' facts.
        power_exponent: the exponent of `power` compression.
        seed: the fold's seed.

    Raises:
        ParameterError: for a feature type or a compression it cannot mix.
    """

    def __init__(self, rate: float, *, feature: str, compression: str,
                 features: FeatureCatalog, power_exponent: float = 0.3, seed: int = 0
                 ) -> None:
        mixable = [n for n in features.names() if features.get(n).magnitude_power]
        if feature not in mixable or compression not in ("db", "log", "power", "none"):
            raise ParameterError(
                f"event_mix={rate}: mixes spectrogram magnitudes, but the store holds "
                f"feature={feature!r} with compression={compression!r}; use a store of "
                f"{', '.join(mixable)} features compressed with db, log, power or none "
                "(pcen cannot be undone), or event_mix=0.")
        self.rate, self.seed = float(rate), int(seed)
        self.power = float(features.get(feature).magnitude_power or 1.0)
        self.compression = compression
        self.exponent = float(power_exponent)

    def energy(self, x: np.ndarray) -> np.ndarray:
        """Feature values -> energy (power spectrogram)."""
        if self.compression == "db":
            return np.power(10.0, x / 10.0)  # power_to_db and amplitude_to_db alike
        s = np.expm1(x) if self.compression == "log" else \
            np.power(np.maximum(x, 0.0), 1.0 / self.exponent) if self.compression == "power" \
            else x
        return np.maximum(s, 0.0) ** (2.0 / self.power)

    def values(self, energy: np.ndarray) -> np.ndarray:
        """Energy -> feature values (the inverse of `energy`)."""
        if self.compression == "db":
            return 10.0 * np.log10(np.maximum(energy, 1e-10))
        s = energy ** (self.power / 2.0)
        return np.log1p(s) if self.compression == "log" else \
            np.power(s, self.exponent) if self.compression == "power" else s

    def __call__(self, x: np.ndarray, y: np.ndarray, epoch: int, index: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Batch `index` of `epoch`, mixed.

        Args:
            x: `np.ndarray [shape=(rows, frames, bins)]` (or with a trailing channel).
            y: `np.ndarray [shape=(rows, frames, classes)]`, 0/1 frame targets.
            epoch: the epoch (the draws are made per epoch and batch).
            index: the batch.

        Returns:
            `(x, y)`: copies, with the receiving rows mixed.
        """
        rng = np.random.default_rng((self.seed, epoch, index, 66))
        x, y = np.array(x, dtype=np.float32), np.array(y, dtype=np.float32)
        active = y.max(axis=2) > 0.5  # (rows, frames)
        donors = np.flatnonzero(active.any(axis=1))
        receivers = np.flatnonzero(rng.random(len(x)) < self.rate)
        for i in receivers:
            others = donors[donors != i]
            if not len(others):
                continue
            self._paste(x, y, int(i), int(others[rng.integers(len(others))]), active, rng)
        return x, y

    def _paste(self, x: np.ndarray, y: np.ndarray, i: int, j: int, active: np.ndarray,
               rng: np.random.Generator) -> None:
        """Adds one event of row `j` to row `i`, in place."""
        frames = x.shape[1]
        runs = _runs(active[j])
        onset, offset = runs[rng.integers(len(runs))]
        first, last = max(0, onset - MARGIN_FRAMES), min(frames, offset + MARGIN_FRAMES)
        length = last - first
        donor = self.energy(x[j].astype(np.float64))
        quiet = ~active[j]
        background = np.median(donor[quiet], axis=0) if quiet.sum() >= 4 \
            else np.percentile(donor, 10, axis=0)
        event = np.maximum(donor[first:last] - background, 0.0)
        at = int(rng.integers(0, frames - length + 1))
        gain = 10 ** (rng.uniform(*GAIN_DB) / 10)
        mixed = self.energy(x[i, at:at + length].astype(np.float64)) + gain * event
        x[i, at:at + length] = self.values(mixed).astype(np.float32)
        y[i, at:at + length] = np.maximum(y[i, at:at + length], y[j, first:last])


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """`(first, end)` of each run of active frames."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def event_mixer(rate: float, params: Any, feature_params: Mapping[str, Any] | None,
                features: FeatureCatalog, seed: int) -> EventMixer | None:
    """The fold's `EventMixer`, or `None` when `rate` (`event_mix`) is 0.

    Args:
        rate: the share of windows mixed.
        params: the instance parameters (its `front_end`).
        feature_params: the store's feature parameters (`dataset.json`).
        features: the feature registry (`preprocessing.features`).
        seed: the fold's seed.

    Raises:
        ParameterError: for a store it cannot mix (see `EventMixer`).
    """
    if rate <= 0:
        return None
    found = dict(feature_params or {})
    if getattr(params, "front_end", "none") not in (None, "none"):
        found = {"feature": f"{found.get('feature')} through front_end={params.front_end}"}
    return EventMixer(rate, feature=str(found.get("feature")), features=features,
                      compression=str(found.get("compression", "db")),
                      power_exponent=float(found.get("power_exponent", 0.3)), seed=seed)
