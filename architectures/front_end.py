"""Features computed inside the model: librosa's `stft`, `mel` and `mfcc` of raw audio, as a
Keras layer, so that a saved model takes audio.

`keras.layers.MelSpectrogram` cannot reproduce the stores' librosa features: its filter bank
is HTK's (librosa's default is Slaney's, area-normalised), its frames are padded by
reflection (librosa pads with zeros) and its decibels are floored differently. The layer
here frames the signal as `librosa.stft` does (centred, zero padding of `n_fft // 2` on each
side, periodic Hann window) with `keras.layers.STFTSpectrogram` (the STFT as a convolution
with fixed DFT kernels: any backend, any device, and exportable to ONNX), and applies
librosa's own mel filter bank and DCT matrix (`architectures.filters`, the stores' own), kept
as fixed weights of the layer, and the same compression as the store's
(`preprocessing.features.spectral`).
"""

from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from architectures.filters import dct_matrix, dft_kernels, mel_filters
from xval.core.parameters import COMPRESSIONS

FEATURES = ("stft", "mel", "mfcc")
"""The feature types a `SpectralFrontEnd` computes."""
AMIN = 1e-10
"""librosa's floor of decibel conversion (`amin`), as the stores use it."""
TOP_DB = 80.0
"""`librosa.power_to_db`'s default `top_db`, which `librosa.feature.mfcc` inherits."""


@keras.saving.register_keras_serializable(package="architectures")
class SpectralFrontEnd(keras.layers.Layer):
    """The librosa feature `feature` of a batch of raw audio, as the stores compute it.

    Input shape: `(batch, samples, 1)` (a waveform store's rows) or `(batch, samples)`.
    Output shape: `(batch, 1 + samples // hop_length, bins)`, with `bins` = `n_fft // 2 + 1`
    (stft), `n_mels` (mel) or `n_mfcc` (mfcc): the `(time, frequency)` rows of a store of
    that feature built with the same parameters. Its weights (the DFT kernels, the mel
    filter bank, the DCT) are fixed: the layer is never trained. It computes in float32
    whatever the dtype policy: under `mixed_float16` a power spectrum overflows float16
    (65,504) and a decibel of a power under its smallest value is minus infinity; the layers
    after it take its output in their own compute dtype.

    Args:
        feature: `"stft"` (magnitude), `"mel"` (power) or `"mfcc"`. Defaults to `"mel"`.
        sample_rate: the audio's rate (Hz). Defaults to `16000`.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        n_mels: mel bands (mel, mfcc). Defaults to `64`.
        n_mfcc: coefficients (mfcc). Defaults to `20`.
        fmin: lowest mel frequency (Hz). Defaults to `32.7`.
        fmax: highest mel frequency (Hz), `None` for `sample_rate / 2`. Defaults to `None`.
        compression: `"db"`, `"log"`, `"power"` or `"none"` (stft, mel; mfcc ignores it).
            Defaults to `"db"`.
        power_exponent: exponent of `"power"` compression. Defaults to `0.3`.
        input_scale: the input is multiplied by this first (`1 / 32768` for the rows of an
            `int16` store). Defaults to `1.0`.
        htk: HTK's mel scale instead of Slaney's (`librosa.filters.mel(htk=...)`). Defaults
            to `False`.
        mel_norm: the filters' normalisation (`librosa.filters.mel(norm=...)`: `"slaney"`,
            a number for that p-norm, or `None`). Defaults to `"slaney"`.

    Raises:
        ValueError: for an unknown feature or compression, or `n_mfcc > n_mels`.
    """

    def __init__(self, feature: str = "mel", *, sample_rate: int = 16000, n_fft: int = 512,
                 hop_length: int = 160, n_mels: int = 64, n_mfcc: int = 20,
                 fmin: float = 32.7, fmax: float | None = None, compression: str = "db",
                 power_exponent: float = 0.3, input_scale: float = 1.0, htk: bool = False,
                 mel_norm: Literal["slaney"] | float | None = "slaney",
                 **kwargs: Any) -> None:
        kwargs.update(trainable=False, dtype="float32")
        super().__init__(**kwargs)
        if feature not in FEATURES:
            raise ValueError(f"feature={feature!r}: expected one of {', '.join(FEATURES)}.")
        if compression not in COMPRESSIONS or compression == "pcen":
            raise ValueError(f"compression={compression!r}: expected one of "
                             f"{', '.join(c for c in COMPRESSIONS if c != 'pcen')} (pcen, "
                             "a recursive filter over time, is computed by a store: build a "
                             "mel store with it instead of a front end).")
        if feature == "mfcc" and n_mfcc > n_mels:
            raise ValueError(f"n_mfcc={n_mfcc} must be at most n_mels={n_mels}.")
        self.feature, self.sample_rate = feature, int(sample_rate)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.n_mels, self.n_mfcc = int(n_mels), int(n_mfcc)
        self.fmin, self.fmax = float(fmin), None if fmax is None else float(fmax)
        self.compression, self.power_exponent = compression, float(power_exponent)
        self.input_scale = float(input_scale)
        self.htk, self.mel_norm = bool(htk), mel_norm
        self.stft = keras.layers.STFTSpectrogram(
            mode="stft", frame_length=self.n_fft, frame_step=self.hop_length,
            fft_length=self.n_fft, window="hann", periodic=True, scaling=None,
            padding="valid", trainable=False, dtype="float32", name="stft")

    @property
    def bins(self) -> int:
        """The bins of the output."""
        return {"stft": self.n_fft // 2 + 1, "mel": self.n_mels, "mfcc": self.n_mfcc}[
            self.feature]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.stft.build((None, None, 1))
        # The DFT kernels in double precision, then rounded once: Keras's initializer takes
        # cos and sin of float32 arguments up to 2 pi n_fft, whose rounding leaks into
        # the bins 50 dB below a peak (0.1 dB off librosa there).
        real, imag = dft_kernels(self.n_fft)
        self.stft.real_kernel.assign(real)
        self.stft.imag_kernel.assign(imag)
        if self.feature in ("mel", "mfcc"):
            # librosa's filter bank, the stores' own (`architectures.filters`).
            basis = mel_filters(sample_rate=self.sample_rate, n_fft=self.n_fft,
                                n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
                                htk=self.htk, norm=self.mel_norm)
            self.mel_weights = self._fixed("mel_basis", basis.T)
        if self.feature == "mfcc":
            self.dct_weights = self._fixed("dct", dct_matrix(self.n_mels, self.n_mfcc))

    def _fixed(self, name: str, value: np.ndarray) -> Any:
        weight = self.add_weight(name=name, shape=value.shape, initializer="zeros",
                                 trainable=False)
        weight.assign(value.astype("float32"))
        return weight

    def call(self, inputs: Any) -> Any:
        x = inputs if len(inputs.shape) == 3 else ops.expand_dims(inputs, -1)
        x = ops.cast(x, self.compute_dtype)
        if self.input_scale != 1.0:
            x = x * self.input_scale
        pad = self.n_fft // 2  # librosa.stft(center=True): zeros on both sides
        x = ops.pad(x, [[0, 0], [pad, pad], [0, 0]])
        spectrum = self.stft(x)  # (batch, frames, 2 * bins): real parts, then imaginary
        half = self.n_fft // 2 + 1
        power = ops.square(spectrum[..., :half]) + ops.square(spectrum[..., half:])
        if self.feature == "stft":
            return self._compress(power, magnitude=True)
        mel = ops.matmul(power, ops.cast(self.mel_weights, power.dtype))
        if self.feature == "mel":
            return self._compress(mel, magnitude=False)
        db = 10.0 * ops.log10(ops.maximum(mel, AMIN))
        db = ops.maximum(db, ops.max(db, axis=(1, 2), keepdims=True) - TOP_DB)
        return ops.matmul(db, ops.cast(self.dct_weights, db.dtype))

    def _compress(self, power: Any, magnitude: bool) -> Any:
        """`preprocessing.features.spectral.compress` of a power spectrogram, or of its
        magnitude (the square root) when `magnitude`."""
        if self.compression == "db":  # 20 log10 max(amin, |S|) = 10 log10 max(amin², |S|²)
            return 10.0 * ops.log10(ops.maximum(power, AMIN ** 2 if magnitude else AMIN))
        values = ops.sqrt(power) if magnitude else power
        if self.compression == "log":
            return ops.log1p(values)
        if self.compression == "power":
            return ops.power(values, self.power_exponent)
        return values

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        samples = input_shape[1]
        frames = None if samples is None else \
            (samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length + 1
        return (input_shape[0], frames, self.bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "feature": self.feature,
                "sample_rate": self.sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "n_mels": self.n_mels, "n_mfcc": self.n_mfcc,
                "fmin": self.fmin, "fmax": self.fmax, "compression": self.compression,
                "power_exponent": self.power_exponent, "input_scale": self.input_scale,
                "htk": self.htk, "mel_norm": self.mel_norm}
