"""aiSFX's sound-effects encoder (X-Sequential-CE, Ma and Lerch, ISMIR 2022), rebuilt here.

The `aisfx` wheel (0.1.2, weights CC BY 4.0) carries `models/checkpoint.pth`, a
`(state_dict, dataset_dict)` pair of its cross-dataset `CrossNet`, whose embedding network
is the DCASE cross-task baseline CNN (`EmbeddingNet('max', 3, 1, 64)`): four blocks of two
3x3 convolutions with batch norm and ReLU, 2x2 max pooling after the first three; the mean
over frequency, then the max over time, gives 512 values per block of 100 spectrogram frames.

The wheel pins numpy 1.23 and librosa 0.9.2, so it is installed without its dependencies
(`pip install --no-deps aisfx==0.1.2`) and never imported: the network is rebuilt from torch
modules, and its input is computed with librosa exactly as the wheel's librosa path does:
audio at 44.1 kHz divided by its peak, a 96-band HTK mel power spectrogram (`norm=1`, 2048
samples per frame, 1024 between frames, 0 to 22050 Hz), `log10(S * 10000 + 1)`, divided by
the fixed maximum 9.4578 of the paper's training data; blocks of 100 frames (2.3 s).

The checkpoint is a pickle; it is read with `torch.load(weights_only=True)`, which rebuilds
only tensors and plain containers, with two more types allowed by name (numpy's scalar and
dtype: the dataset dict holds numpy integers). Nothing in it can run code.
"""

import pickle  # noqa: S403  (only for its exception type: nothing is unpickled here)
from collections.abc import Sequence
from typing import Any

import librosa
import numpy as np

from preprocessing.features.encoders.base import (
    Encoder,
    distribution_file,
    package_version,
    sha256_of_files,
    torch_module,
)
from xval.core.errors import ConfigurationError

__all__ = ["AISFX", "AisfxEncoder", "aisfx_mel", "aisfx_network", "aisfx_weights", "embed",
           "run_blocks"]

AISFX = "aisfx"
INSTALL = "pip install --no-deps aisfx==0.1.2"
SAMPLE_RATE = 44100
N_FFT = 2048
SPEC_HOP = 1024
N_MELS = 96
BLOCK_FRAMES = 100
NORM_MAX = 9.457798957824707
"""The maximum of the paper's training spectrograms (`spec_norm='original'`: min 0)."""
CHANNELS = (1, 64, 128, 256, 512)


def aisfx_weights() -> Any:
    """The `checkpoint.pth` of the installed aisfx wheel (see `distribution_file`)."""
    return distribution_file("aisfx", "checkpoint.pth", INSTALL, AISFX)


def aisfx_mel(y: np.ndarray) -> np.ndarray:
    """The encoder's input: the normalised log-mel spectrogram of one 44.1 kHz signal.

    Args:
        y: `np.ndarray [shape=(samples,)]`, already divided by its peak (the wheel divides
            the whole file by its peak; `AisfxEncoder` divides a file's segments together).

    Returns:
        `np.ndarray [shape=(frames, 96)]`, float32, `frames = 1 + samples // 1024`.
    """
    S = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float32), sr=SAMPLE_RATE, n_mels=N_MELS, norm=1.0, fmin=0.0,
        fmax=SAMPLE_RATE / 2, htk=True, power=2.0, hop_length=SPEC_HOP, win_length=N_FFT,
        n_fft=N_FFT)
    return (np.log10(S * 10000.0 + 1) / NORM_MAX).T.astype(np.float32)


def _load_checkpoint(torch: Any) -> dict[str, Any]:
    """The wheel's state dict, read without running code (see the module's docstring)."""
    try:
        from numpy._core.multiarray import scalar  # noqa: PLC0415  (numpy >= 2)
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]  # noqa: PLC0415
    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype,
               *[type(np.dtype(c)) for c in "il"]]
    path = aisfx_weights()
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ConfigurationError(
            f"{path} cannot be read safely as aisfx 0.1.2's weights (it holds other types "
            f"than tensors: {str(e).splitlines()[0][:160]}); reinstall the wheel: "
            f"{INSTALL.replace('install ', 'install --force-reinstall ', 1)}") from None
    if not (isinstance(checkpoint, tuple | list) and isinstance(checkpoint[0], dict)):
        raise ConfigurationError(
            f"{path} is not the (state_dict, dataset_dict) pair of aisfx 0.1.2; "
            f"reinstall it: {INSTALL.replace('install ', 'install --force-reinstall ', 1)}")
    return checkpoint[0]


def aisfx_network(state: dict[str, Any] | None = None) -> Any:
    """The embedding CNN as torch modules, with the wheel's weights.

    Args:
        state: the checkpoint's state dict; `None`: read from the installed wheel.

    Returns:
        `torch.nn.ModuleList` of four blocks (`ModuleDict`s of `conv1`, `bn1`, `conv2`,
        `bn2`), in inference mode; `embed` runs it.
    """
    torch = torch_module()
    nn = torch.nn
    state = _load_checkpoint(torch) if state is None else state
    blocks = nn.ModuleList(
        nn.ModuleDict({"conv1": nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                       "bn1": nn.BatchNorm2d(c_out),
                       "conv2": nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                       "bn2": nn.BatchNorm2d(c_out)})
        for c_in, c_out in zip(CHANNELS[:-1], CHANNELS[1:]))
    prefix = "embedding_net.conv_block"
    blocks.load_state_dict({f"{int(k[len(prefix)]) - 1}{k[len(prefix) + 1:]}": v
                            for k, v in state.items() if k.startswith(prefix)})
    return blocks.train(False)


def run_blocks(blocks: Any, x: Any, *, pool_last: bool = False) -> Any:
    """Convolution blocks of the network, 2x2 max pooling after each but (unless
    `pool_last`) the last.

    Args:
        blocks: `aisfx_network()` or a slice of it (`aisfx_network()[:3]`).
        x: `torch.Tensor [shape=(batch, channels, time, mel)]`.
        pool_last: also pool after the last block given (the input of the blocks after it).

    Returns:
        `torch.Tensor [shape=(batch, channels, time, mel)]`, the last block's maps.
    """
    functional = torch_module().nn.functional
    for k, block in enumerate(blocks):
        x = functional.relu(block["bn1"](block["conv1"](x)))
        x = functional.relu(block["bn2"](block["conv2"](x)))
        if pool_last or k < len(blocks) - 1:
            x = functional.max_pool2d(x, kernel_size=2)
    return x


def embed(blocks: Any, x: Any) -> Any:
    """The embedding network's forward pass: the blocks, then the mean over frequency and
    the maximum over time.

    Args:
        blocks: `aisfx_network()`.
        x: `torch.Tensor [shape=(batch, 100, 96)]`, spectrogram blocks (time, mel).

    Returns:
        `torch.Tensor [shape=(batch, 512)]`.
    """
    return run_blocks(blocks, x[:, None]).mean(3).amax(2)


class AisfxEncoder(Encoder):
    """aiSFX's sound-effects CNN: 512 values per 2.3 s block of 44.1 kHz audio.

    Args:
        device: torch device, e.g. `"cpu"` or `"cuda"`; `None`: CUDA when available.
    """

    sample_rate = SAMPLE_RATE
    block_length = (BLOCK_FRAMES - 1) * SPEC_HOP  # the fewest samples giving 100 frames
    hop_unit = SPEC_HOP
    hop_length = BLOCK_FRAMES // 2 * SPEC_HOP  # half a block (1.16 s), as the paper
    n_layers = 1
    dim = CHANNELS[-1]
    licence = "CC BY 4.0"

    def __init__(self, device: str | None = None) -> None:
        torch = torch_module()
        self.name = AISFX
        self.revision = package_version("aisfx")
        self.sha256 = sha256_of_files([aisfx_weights()])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.network = aisfx_network().to(self.device)

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        super().frames(n_samples, hop_length)  # refuses a segment shorter than one block
        hop = int(hop_length or self.hop_length) // SPEC_HOP
        return 1 + (1 + n_samples // SPEC_HOP - BLOCK_FRAMES) // hop

    def prepare(self, segments: np.ndarray) -> np.ndarray:
        """The segments of one file divided by their peak (the file's), as the wheel does."""
        peak = float(np.max(np.abs(segments))) if segments.size else 0.0
        return segments / np.float32(peak) if peak > 0 else segments

    def spectrogram_blocks(self, batch: np.ndarray, hop_length: int | None = None
                           ) -> np.ndarray:
        """The spectrogram blocks of a batch of equal-length segments.

        Args:
            batch: `np.ndarray [shape=(batch, samples)]`, 44.1 kHz (see `prepare`).
            hop_length: samples between blocks. Defaults to half a block.

        Returns:
            `np.ndarray [shape=(batch, blocks, 100, 96)]`.
        """
        batch = np.asarray(batch, dtype=np.float32)
        n = self.frames(batch.shape[-1], hop_length)
        hop = int(hop_length or self.hop_length) // SPEC_HOP
        mels = np.stack([aisfx_mel(y) for y in batch])
        return np.stack([mels[:, k * hop:k * hop + BLOCK_FRAMES] for k in range(n)], axis=1)

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        torch = torch_module()
        spec = self.spectrogram_blocks(batch, hop_length)
        with torch.inference_mode():
            x = torch.from_numpy(spec.reshape(-1, BLOCK_FRAMES, N_MELS)).to(self.device)
            out = embed(self.network, x).float().cpu().numpy()
        return out.reshape(spec.shape[0], spec.shape[1], 1, self.dim)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": "aiSFX X-Sequential-CE sound-effects CNN",
                "trained_on": "sound-effects libraries (UCS and non-UCS, 9 datasets)"}
