"""Reading inside a fold model: the architecture nested in it, its layers, the outputs of an
inner layer (the embeddings `xval.training.embeddings` classifies and `python -m xval
embed` writes), and its inference graph (what an exported model holds). Keras's public API
only (`keras.Model`, `keras.models.clone_model`); Keras is imported where a model is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import architectures
from xval.core.errors import ConfigurationError
from xval.training.encoder import LAYER_NAME as ENCODER_LAYER

EmbeddingFunction = Callable[[np.ndarray], Any]
"""`features (n, time, frequency) -> outputs of a layer (n, ...)`."""


def layer_names(model: Any) -> list[str]:
    """Names of the model's layers, the architecture's own layers included."""
    names = [layer.name for layer in model.layers]
    backbone = inner_model(model)
    if backbone is not None:
        names += [f"{layer.name}" for layer in backbone.layers]
    return names


def embedding_model(model: Any, layer: str | None = None) -> EmbeddingFunction:
    """A function from features to the outputs of the layer named `layer`, or with
    `layer=None` to the input of the model's last layer (the penultimate representation).

    Raises:
        ConfigurationError: for an unknown layer name, listing the known ones.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    backbone = inner_model(model)
    own = {layer_.name for layer_ in model.layers}
    if layer is None and backbone is None:
        sub = keras.Model(model.inputs, model.layers[-1].input)
        return lambda x: sub.predict(x, verbose=0)
    if layer is not None and layer in own and (backbone is None or layer != backbone.name):
        sub = keras.Model(model.inputs, model.get_layer(layer).output)
        return lambda x: sub.predict(x, verbose=0)
    if backbone is None or (layer is not None and
                            layer not in {layer_.name for layer_ in backbone.layers}):
        raise ConfigurationError(
            f"No layer named {layer!r}; the model's layers are: {', '.join(layer_names(model))}."
        )
    index = model.layers.index(backbone)
    pre = keras.Model(model.inputs, model.layers[index - 1].output)
    output = backbone.layers[-1].input if layer is None else backbone.get_layer(layer).output
    trunk = keras.Model(backbone.inputs, output)
    return lambda x: trunk.predict(pre.predict(x, verbose=0), verbose=0)


def inner_model(model: Any) -> Any:
    """The nested model holding the architecture inside a wrapper model, or `None` (an
    encoder inside, the nested model `front_end`, is not the architecture)."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    inner = [layer for layer in model.layers
             if isinstance(layer, keras.Model) and layer.name != ENCODER_LAYER]
    return inner[0] if len(inner) == 1 else None


def inference_outputs(model: Any, inputs: Any) -> Any:
    """`model`'s outputs on the Keras tensor `inputs` without the layers that act while
    training only (`architectures.TRAINING_ONLY`: SpecAugment, the warps), at any depth of
    nested models, so that an exported model holds no training-only layer, and with Keras's
    `Normalization` (its statistics as constants) for `architectures.FeatureNormalization`,
    so that it loads with Keras alone. The other layers are `model`'s own (their weights
    shared, none copied).

    Args:
        model: a functional `keras.Model` (a fold model).
        inputs: a Keras input tensor shaped as its input.

    Returns:
        The output Keras tensor.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(layer, architectures.TRAINING_ONLY):
            return args[0]
        if isinstance(layer, architectures.FeatureNormalization):  # Keras's own, as constants
            return keras.layers.Normalization(
                mean=keras.ops.convert_to_numpy(layer.mean),
                variance=keras.ops.convert_to_numpy(layer.variance), name=layer.name)(args[0])
        return layer(*args, **kwargs)

    # The model's graph called on `inputs` (Keras's documented way to change the calls of a
    # model's layers: `clone_function` keeps each layer, `call_function` skips some, and
    # `recursive` does the same inside nested models).
    return keras.models.clone_model(model, input_tensors=inputs,
                                    clone_function=lambda layer: layer, call_function=call,
                                    recursive=True).output
