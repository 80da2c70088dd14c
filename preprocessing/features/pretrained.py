"""The `pretrained` feature type: frame-level hidden states of a pretrained encoder.

A row of a `pretrained` store is `(frames, layers * dim)`: the states of the chosen layers
side by side on the last axis (layer-major), so that every consumer of `(time, frequency)`
rows (normalisation, the builders, `predict`) works unchanged and a head that weighs layers
(`architectures.pretrained.LayerWeightedSum`) reshapes them to `(frames, layers, dim)`.
Such stores are float16 by default (`[features] dtype = auto`: half the size; the states
need no more).

Two kinds of encoder, both read from the local disk only (nothing is ever downloaded here):

- `encoder="resemblyzer"`: the 3-layer LSTM speaker encoder (GE2E, 40 mel bands, 10 ms hop,
  256 units) whose weights ship inside the `Resemblyzer` wheel (Apache-2.0; `pip install
  --no-deps resemblyzer==0.1.4`). Its layers are the three LSTM outputs and the per-frame
  projection `relu(linear(h3))`: 4 layers of 256 at 100 frames/s. The package is not
  imported (it imports `webrtcvad`): the weights are found through its file list and loaded
  with `torch.load(weights_only=True)`.
- a `transformers` encoder that reads raw `input_values` (wav2vec2, HuBERT, WavLM,
  data2vec-audio): a folder written by `save_pretrained`, or a hub id already in the local
  cache (fetch it once with `huggingface-cli download ID`). `hidden_states[0]` is the input
  of the first transformer layer, `[i]` the output of layer `i`: `num_hidden_layers + 1`
  layers, 320 samples (20 ms) apart at 16 kHz.

The options of the type (`feature_params(feature="pretrained", encoder=..., layers=...)`):
`encoder`, `revision`, `layers`, `batch_size`, `device`, `frame_pool` and `weights_sha256`
(written by the store; when set, an encoder whose weights differ is refused). The
`[features]` values it reads: `sample_rate` (the encoder's, 16000) and `hop_length` (the
encoder's frame hop times `frame_pool`: 160 for Resemblyzer, 320 for the transformers
encoders); others are ignored.
"""

import functools
import hashlib
import importlib.metadata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from preprocessing.features.registry import Params, register
from xval.core.errors import ConfigurationError, DatasetError

__all__ = ["RESEMBLYZER", "Encoder", "load_encoder", "pool_frames", "pretrained",
           "resemblyzer_weights", "select_layers", "sha256_of_files"]

RESEMBLYZER = "resemblyzer"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
Layers = str | int | Sequence[int]


def sha256_of_files(paths: Iterable[str | Path]) -> str:
    """SHA-256 of the contents of `paths`, read in the sorted order of their names.

    Args:
        paths: weight files.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def select_layers(layers: Layers, n_layers: int) -> list[int]:
    """The layer indices `layers` names among `n_layers`.

    Args:
        layers: `"all"`, `"last"`, an integer or a list of integers (negative ones count
            from the last layer).
        n_layers: how many layers the encoder has.

    Returns:
        list of indices in `[0, n_layers)`, in the order given.

    Raises:
        ConfigurationError: for an index out of range, a repeated one, or an unknown name.
    """
    if layers == "all":
        return list(range(n_layers))
    if layers == "last":
        return [n_layers - 1]
    chosen = [layers] if isinstance(layers, int | np.integer) else layers
    if isinstance(chosen, str) or not len(chosen):
        raise ConfigurationError(
            f"layers={layers!r}: expected 'all', 'last' or a list of layer indices.")
    out: list[int] = []
    for layer in chosen:
        index = int(layer) + n_layers if int(layer) < 0 else int(layer)
        if not 0 <= index < n_layers or index in out:
            raise ConfigurationError(
                f"layers={layers!r}: layer {layer} is out of range or named twice; the "
                f"encoder has {n_layers} layers (0 to {n_layers - 1}, or -1 for the last).")
        out.append(index)
    return out


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch() -> Any:
    """`torch`, or an error naming the extra to install."""
    try:
        import torch  # noqa: PLC0415  (optional heavy dependency: the [pretrained] extra)
    except ImportError as e:
        raise ConfigurationError(
            "feature='pretrained' needs torch: pip install torch==2.13.0 and "
            "pip install -e '.[pretrained]'.") from e
    return torch


class Encoder:
    """Base of the front ends: equal-length segments of audio to frame-level states.

    Attributes:
        name: what the encoder was loaded from.
        revision: the hub revision (commit), when known.
        sample_rate: the rate the encoder reads (Hz).
        hop_length: samples between two output frames (at `sample_rate`).
        n_layers: layers a segment's states can be taken from.
        dim: size of one layer's state.
        sha256: SHA-256 of the weight files.
    """

    name: str = ""
    revision: str | None = None
    sample_rate: int = 16000
    hop_length: int = 160
    n_layers: int = 1
    dim: int = 1
    sha256: str | None = None

    def frames(self, n_samples: int) -> int:
        """How many frames a segment of `n_samples` samples gives."""
        raise NotImplementedError

    def states(self, batch: np.ndarray, layers: Sequence[int]) -> np.ndarray:
        """Frame-level states of a batch of equal-length segments.

        Args:
            batch: `np.ndarray [shape=(batch, samples)]` at `sample_rate`.
            layers: layer indices (see `select_layers`).

        Returns:
            `np.ndarray [shape=(batch, frames, len(layers), dim)]`, float32.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What `dataset.json` records of the encoder (`front_end`)."""
        return {"encoder": self.name, "revision": self.revision,
                "weights_sha256": self.sha256, "sample_rate": self.sample_rate,
                "frame_hop": self.hop_length, "n_layers": self.n_layers, "dim": self.dim}


def resemblyzer_weights() -> Path:
    """The `pretrained.pt` of the installed Resemblyzer wheel, found without importing it.

    Returns:
        `pathlib.Path` of the weights.

    Raises:
        ConfigurationError: when Resemblyzer is not installed, naming the install command.
    """
    try:
        dist = importlib.metadata.distribution("Resemblyzer")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError(
            "encoder='resemblyzer' needs the Resemblyzer wheel, which carries its weights: "
            "pip install --no-deps resemblyzer==0.1.4.") from None
    for file in dist.files or ():
        if file.name == "pretrained.pt":
            return Path(str(dist.locate_file(file)))
    raise ConfigurationError("The installed Resemblyzer has no pretrained.pt; reinstall it: "
                             "pip install --no-deps --force-reinstall resemblyzer==0.1.4.")


class ResemblyzerEncoder(Encoder):
    """The GE2E speaker encoder of the `Resemblyzer` wheel, frame by frame.

    Its input is a 40-band mel power spectrogram (25 ms windows, 10 ms hop, as
    `resemblyzer.audio.wav_to_mel_spectrogram`) of audio whose level is raised to -30 dBFS
    RMS (never lowered), as `resemblyzer.preprocess_wav` does without its VAD trimming.

    Args:
        device: torch device, e.g. `"cpu"` or `"cuda"`; `None`: CUDA when available.
    """

    n_layers = 4
    dim = 256
    n_mels = 40
    n_fft = 400
    target_dbfs = -30.0

    def __init__(self, device: str | None = None) -> None:
        torch = _torch()
        weights = resemblyzer_weights()
        self.name = RESEMBLYZER
        self.revision = _version("Resemblyzer")
        self.sha256 = sha256_of_files([weights])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self.lstms = torch.nn.ModuleList(
            [torch.nn.LSTM(self.n_mels if k == 0 else self.dim, self.dim, batch_first=True)
             for k in range(3)])
        for k, lstm in enumerate(self.lstms):
            lstm.load_state_dict({f"{name}_l0": state[f"lstm.{name}_l{k}"] for name in
                                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        self.linear = torch.nn.Linear(self.dim, self.dim)
        self.linear.load_state_dict({"weight": state["linear.weight"],
                                     "bias": state["linear.bias"]})
        for module in (self.lstms, self.linear):
            module.to(self.device).train(False)  # inference mode (dropout off)

    def frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def mel(self, y: np.ndarray) -> np.ndarray:
        """The encoder's input of one signal: `(frames, 40)` mel power, float32."""
        y = np.asarray(y, dtype=np.float32)
        power = float(np.mean(np.square(y)))
        if power > 0:
            change = self.target_dbfs - 10 * np.log10(power)
            if change > 0:
                y = y * np.float32(10 ** (change / 20))
        mel = librosa.feature.melspectrogram(y=y, sr=self.sample_rate, n_fft=self.n_fft,
                                             hop_length=self.hop_length, n_mels=self.n_mels)
        return mel.astype(np.float32).T

    def states(self, batch: np.ndarray, layers: Sequence[int]) -> np.ndarray:
        torch = _torch()
        mels = np.stack([self.mel(y) for y in batch])
        out = []
        with torch.inference_mode():
            x = torch.from_numpy(mels).to(self.device)
            for lstm in self.lstms:
                x, _ = lstm(x)
                out.append(x)
            out.append(torch.relu(self.linear(x)))
            return torch.stack([out[k] for k in layers], 2).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": "GE2E LSTM speaker encoder (Resemblyzer)",
                "licence": "Apache-2.0"}


def _model_folder(name: str, revision: str | None) -> tuple[Path, str | None]:
    """The local folder of a transformers model and its revision (a hub snapshot's commit)."""
    folder = Path(name)
    if folder.is_dir():
        return folder, revision
    from huggingface_hub import snapshot_download  # noqa: PLC0415  (optional: [pretrained])

    try:
        snapshot = Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception as e:  # huggingface_hub's offline errors vary between versions
        raise ConfigurationError(
            f"encoder={name!r}: not a folder, and not in the local hub cache (nothing is "
            f"downloaded here); fetch it once with `huggingface-cli download {name}` or "
            "pass a folder written by save_pretrained.") from e
    return snapshot, snapshot.name


class TransformersEncoder(Encoder):
    """A `transformers` speech encoder read from the local disk (never downloaded).

    Args:
        name: a folder written by `save_pretrained`, or a hub id in the local cache.
        revision: the hub revision (branch, tag or commit) of a hub id. Defaults to `None`.
        device: torch device; `None`: CUDA when available, else the CPU.

    Raises:
        ConfigurationError: when the model cannot be found locally, or does not read raw
            `input_values` (Whisper, AST).
    """

    def __init__(self, name: str, revision: str | None = None,
                 device: str | None = None) -> None:
        torch = _torch()
        import transformers  # noqa: PLC0415  (optional heavy dependency: [pretrained])

        folder, revision = _model_folder(name, revision)
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        if not hasattr(config, "conv_stride"):
            raise ConfigurationError(
                f"encoder={name!r}: model_type {config.model_type!r} does not read raw "
                "input_values; use wav2vec2, HuBERT, WavLM or data2vec-audio.")
        self.name, self.revision, self.config = str(name), revision, config
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        self.model.to(self.device).train(False)  # inference mode (dropout off)
        if (folder / "preprocessor_config.json").is_file():
            self.extractor = transformers.AutoFeatureExtractor.from_pretrained(
                folder, local_files_only=True)
        else:
            self.extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000,
                                                                   do_normalize=True)
        self.sample_rate = int(self.extractor.sampling_rate)
        self.hop_length = int(np.prod(config.conv_stride))
        self.n_layers = int(config.num_hidden_layers) + 1
        self.dim = int(config.hidden_size)
        weights = [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES]
        self.sha256 = sha256_of_files(weights) if weights else None

    def frames(self, n_samples: int) -> int:
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            n_samples = (n_samples - kernel) // stride + 1
        return max(0, n_samples)

    def states(self, batch: np.ndarray, layers: Sequence[int]) -> np.ndarray:
        torch = _torch()
        inputs = self.extractor(list(np.asarray(batch, dtype=np.float32)),
                                sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(inputs["input_values"].to(self.device),
                             output_hidden_states=True)
            return torch.stack([out.hidden_states[k] for k in layers], 2).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": type(self.model).__name__,
                "model_type": self.config.model_type,
                "transformers_version": _version("transformers")}


@functools.lru_cache(maxsize=2)
def load_encoder(name: str, revision: str | None = None, device: str | None = None) -> Encoder:
    """Loads a front end by name from the local disk (once per process and setting).

    Args:
        name: `"resemblyzer"`, a folder written by `save_pretrained`, or a hub id in the
            local cache.
        revision: hub revision of a hub id. Defaults to `None`.
        device: torch device. Defaults to CUDA when available, else the CPU.

    Returns:
        An `Encoder`.
    """
    if str(name) == RESEMBLYZER:
        return ResemblyzerEncoder(device=device)
    return TransformersEncoder(str(name), revision=revision, device=device)


def pool_frames(states: np.ndarray, pool: int) -> np.ndarray:
    """The mean of every `pool` consecutive frames of `(batch, frames, ...)` states (a
    remainder of fewer frames is dropped); `pool=1` returns them unchanged."""
    if pool <= 1:
        return states
    frames = states.shape[1] // pool
    return states[:, :frames * pool].reshape(states.shape[0], frames, pool,
                                            *states.shape[2:]).mean(2)


def _encoder_of(params: Params) -> Encoder:
    """The encoder the feature parameters name, checked against their rate and hop."""
    encoder = load_encoder(str(params.get("encoder", RESEMBLYZER)), params.get("revision"),
                           params.get("device"))
    recorded = params.get("weights_sha256")
    if recorded and recorded != encoder.sha256:
        raise DatasetError(
            f"encoder={params.get('encoder')!r}: its weights here (sha256 {encoder.sha256}) "
            f"are not those the store was built with ({recorded}); install the encoder the "
            "store was built with, or rebuild the store.")
    hop = encoder.hop_length * int(params.get("frame_pool", 1))
    if params["sample_rate"] != encoder.sample_rate or params["hop_length"] != hop:
        raise ConfigurationError(
            f"sample_rate={params['sample_rate']}, hop_length={params['hop_length']}: the "
            f"encoder {encoder.name!r} reads {encoder.sample_rate} Hz audio and gives a frame "
            f"every {hop} samples (frame_pool={params.get('frame_pool', 1)}); pass "
            f"sample_rate={encoder.sample_rate} and hop_length={hop}.")
    return encoder


def _bins(params: Params) -> int:
    encoder = _encoder_of(params)
    return len(select_layers(params.get("layers", "all"), encoder.n_layers)) * encoder.dim


def _frames(n_samples: int, params: Params) -> int:
    return _encoder_of(params).frames(n_samples) // max(1, int(params.get("frame_pool", 1)))


def _describe(params: Params) -> dict[str, Any]:
    encoder = _encoder_of(params)
    return {**encoder.describe(),
            "layers": select_layers(params.get("layers", "all"), encoder.n_layers)}


@register("pretrained", bins=_bins, frames=_frames, batched=True, describe=_describe,
          dtype="float16", summary="an encoder's hidden states", neighbouring_bins=False)
def pretrained(y: np.ndarray, *, sample_rate: int, hop_length: int = 160,
               encoder: str = RESEMBLYZER, revision: str | None = None,
               layers: Layers = "all", batch_size: int = 16, device: str | None = None,
               frame_pool: int = 1, weights_sha256: str | None = None) -> np.ndarray:
    """Frame-level hidden states of a pretrained encoder, the chosen layers side by side.

    Args:
        y: `np.ndarray [shape=(samples,)]`, one segment, or `[shape=(segments, samples)]`,
            equal-length segments read in batches.
        sample_rate: rate of `y` in Hz: the encoder's (16000).
        hop_length: samples between frames: the encoder's hop times `frame_pool`.
            Defaults to `160` (Resemblyzer).
        encoder: `"resemblyzer"`, a folder written by `save_pretrained` or a hub id in the
            local cache. Defaults to `"resemblyzer"`.
        revision: hub revision of a hub id. Defaults to `None`.
        layers: `"all"`, `"last"` or layer indices (negative from the last). Defaults to
            `"all"`.
        batch_size: segments the encoder reads at once. Defaults to `16`.
        device: torch device (`"cpu"`, `"cuda"`); `None`: CUDA when available. Defaults to
            `None`.
        frame_pool: average every `frame_pool` consecutive frames (fewer, smaller rows).
            Defaults to `1`.
        weights_sha256: the hash the encoder's weights must have (the store records it);
            `None`: not checked. Defaults to `None`.

    Returns:
        `np.ndarray [shape=(frames, len(layers) * dim)]` for one segment, or
        `[shape=(segments, frames, len(layers) * dim)]`, float32.

    Raises:
        ConfigurationError: for a rate or hop that is not the encoder's, or unknown layers.
        DatasetError: for weights other than `weights_sha256`.
    """
    params = {"sample_rate": sample_rate, "hop_length": hop_length, "encoder": encoder,
              "revision": revision, "device": device, "frame_pool": frame_pool,
              "weights_sha256": weights_sha256}
    model = _encoder_of(params)
    index = select_layers(layers, model.n_layers)
    batch = np.atleast_2d(np.asarray(y, dtype=np.float32))
    out = []
    for start in range(0, len(batch), max(1, int(batch_size))):
        states = pool_frames(model.states(batch[start:start + batch_size], index), frame_pool)
        out.append(states.reshape(*states.shape[:2], -1))
    rows = np.concatenate(out)
    return rows if np.ndim(y) > 1 else rows[0]
