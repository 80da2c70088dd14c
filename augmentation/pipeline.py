"""Augmentation pipelines built from audiomentations' own transforms and composition.

Each augmented version applies a random subset, in random order, of: background noise
(recordings from a folder, else coloured noise), a random seven-band EQ, reverb (impulse
responses from a folder, else a simulated room, length unchanged) and a time stretch.
audiomentations draws from Python's and NumPy's global generators, so every (file, version)
is seeded on its own: the same seed gives the same output whatever the worker count.
"""

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from preprocessing.audio import AUDIO_EXTENSIONS
from xval.config import schema
from xval.core import optional
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.parameters import AugmentationParams
from xval.core.settings import setting_names

# Audio below this rate is augmented at this rate and resampled back.
MIN_RATE = 16000
PARAMETERS = setting_names(AugmentationParams)
"""The `[augmentation]` keys the pipeline reads."""


def require_augment_extra(what: str = "Augmentation") -> None:
    """Checks that the `[augment]` extra (audiomentations, pyroomacoustics) is installed.

    Args:
        what: what needs it, for the message. Defaults to `"Augmentation"`.

    Raises:
        ConfigurationError: naming the missing packages and the command that installs them.
    """
    optional.require(what, "augment")


def _audio_in(folder: str | os.PathLike[str], what: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist or is not a folder; "
                                 "give a folder of audio files.")
    files = [p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS]
    if not files:
        raise ConfigurationError(
            f"{what} {str(path)!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}"
            "); give a folder of audio files."
        )
    return path


def check_parameters(params: Mapping[str, Any]) -> AugmentationParams:
    """Checks probabilities and ranges against the schema of `config.ini [augmentation]`.

    Args:
        params: a mapping holding every key of `PARAMETERS` (`config.augmentation`, a
            dict), or the record.

    Returns:
        The checked values (floats), as the typed record.

    Raises:
        ConfigurationError: naming the bad value and what was expected.
    """
    missing = [k for k in PARAMETERS if k not in params]
    if missing:
        raise ConfigurationError(f"Augmentation parameters missing: {', '.join(missing)}; "
                                 "give every key of config.ini [augmentation] (`python -m xval "
                                 "config --defaults` lists them).")
    return AugmentationParams(**schema.check_section(
        "augmentation", {k: params[k] for k in PARAMETERS}, style="param"))


def build_pipeline(params: Mapping[str, Any], *, noise_dir: str | os.PathLike[str] | None = None,
                   ir_dir: str | os.PathLike[str] | None = None) -> Any:
    """The audiomentations pipeline: `Compose(..., shuffle=True)`, each transform with its p.

    Args:
        params: probabilities and ranges (`config.ini [augmentation]` keys).
        noise_dir: folder of background noise recordings, or `None` for coloured noise.
        ir_dir: folder of impulse responses, or `None` for a simulated room.

    Returns:
        An `audiomentations.Compose`.
    """
    from audiomentations import (  # noqa: PLC0415  (optional: the [augment] extra)
        AddBackgroundNoise,
        AddColorNoise,
        ApplyImpulseResponse,
        Compose,
        RoomSimulator,
        SevenBandParametricEQ,
        TimeStretch,
    )

    typed = check_parameters(params)
    noise: Any
    reverb: Any
    snr = {"min_snr_db": typed.min_snr_db, "max_snr_db": typed.max_snr_db}
    if noise_dir is not None:
        noise = AddBackgroundNoise(sounds_path=str(_audio_in(noise_dir, "Noise folder")),
                                   **snr, p=typed.p_noise)
    else:
        noise = AddColorNoise(**snr, p=typed.p_noise)
    if ir_dir is not None:
        reverb = ApplyImpulseResponse(ir_path=str(_audio_in(ir_dir, "Impulse response folder")),
                                      leave_length_unchanged=True, p=typed.p_reverb)
    else:
        low, high = typed.min_room_size, typed.max_room_size
        reverb = RoomSimulator(min_size_x=low, max_size_x=high, min_size_y=low, max_size_y=high,
                               max_source_x=low - 0.5, max_source_y=low - 0.5,
                               # Image sources only: pyroomacoustics' ray tracing draws from
                               # a C++ generator no seed reaches, which breaks reproducibility.
                               use_ray_tracing=False, max_order=6,
                               leave_length_unchanged=True, p=typed.p_reverb)
    eq = SevenBandParametricEQ(min_gain_db=typed.min_eq_gain_db,
                               max_gain_db=typed.max_eq_gain_db, p=typed.p_eq)
    stretch = TimeStretch(min_rate=typed.min_rate, max_rate=typed.max_rate,
                          leave_length_unchanged=False, p=typed.p_stretch)
    return Compose([noise, eq, reverb, stretch], shuffle=True)


class Augmenter:
    """A picklable callable `(y, sample_rate, seed) -> y` applying the pipeline.

    The pipeline is built lazily in each process. The output is peak-limited to 1.

    Args:
        params: probabilities and ranges (`config.ini [augmentation]` keys).
        noise_dir: folder of background noises, or `None`.
        ir_dir: folder of impulse responses, or `None`.
    """

    def __init__(self, params: Mapping[str, Any], noise_dir: str | os.PathLike[str] | None = None,
                 ir_dir: str | os.PathLike[str] | None = None) -> None:
        require_augment_extra()
        self.params = check_parameters(params)
        self.noise_dir = str(noise_dir) if noise_dir else None
        self.ir_dir = str(ir_dir) if ir_dir else None
        self._pipeline: Any = None
        self._order: list[Any] = []

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pipeline": None, "_order": []}

    def __call__(self, y: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.params, noise_dir=self.noise_dir,
                                            ir_dir=self.ir_dir)
            self._order = list(self._pipeline.transforms)
        # Compose(shuffle=True) shuffles its list in place: restore the order, so that an
        # output depends on its seed only, not on the files this process augmented before.
        self._pipeline.transforms = list(self._order)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        y = np.asarray(y, dtype=np.float32)
        rate = max(sample_rate, MIN_RATE)
        if rate != sample_rate:  # the EQ's top band (7 kHz) needs a Nyquist above it
            y = librosa.resample(y, orig_sr=sample_rate, target_sr=rate, res_type="soxr_hq")
        out = self._pipeline(samples=y, sample_rate=rate)
        if rate != sample_rate:
            out = librosa.resample(out, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
        if not np.all(np.isfinite(out)):
            raise DatasetError(
                f"Augmentation (seed {seed}) produced non-finite samples; report this with "
                "the seed and the [augmentation] settings."
            )
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        return (out / peak if peak > 1 else out).astype(np.float32)
