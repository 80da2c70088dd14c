"""Loading saved `.keras` models safely, and reading inside them: the architecture nested
in a fold model, its layers, the outputs of an inner layer."""

from pathlib import Path

from xval.core.errors import ConfigurationError

MIN_KERAS = (3, 14)


def load(model_path, what="Model file"):
    """Loads a saved `.keras` model with Keras safe mode on (custom layers registered).

    Args:
        model_path: path of a `.keras` file.
        what: how to name the file in errors (e.g. `"load_model"`).

    Returns:
        The `keras.Model`, not compiled.

    Raises:
        ConfigurationError: for a missing file, a legacy HDF5 (`.h5`) or other non-`.keras`
            file, or a Keras older than 3.14 (its safe mode can be bypassed).
    """
    import zipfile

    import keras

    import architectures  # noqa: F401  (registers custom layers)
    import xval.tasks.losses  # noqa: F401  (registers custom losses)

    path = Path(model_path)
    if not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a Keras 3 `.keras` file. Legacy HDF5 (.h5) and "
            "other formats are refused: they can run code when loaded. Re-save the model "
            "with `model.save('name.keras')` in a trusted environment."
        )
    version = tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_KERAS:
        raise ConfigurationError(
            f"Keras {keras.__version__} is installed; loading models needs Keras >= 3.14, "
            "whose safe mode has the known bypasses fixed: `pip install 'keras>=3.14'`."
        )
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def layer_names(model):
    """Names of the model's layers, the architecture's own layers included."""
    names = [layer.name for layer in model.layers]
    backbone = inner_model(model)
    if backbone is not None:
        names += [f"{layer.name}" for layer in backbone.layers]
    return names


def embedding_model(model, layer=None):
    """A function from features to the outputs of the layer named `layer`, or with
    `layer=None` to the input of the model's last layer (the penultimate representation).

    Raises:
        ConfigurationError: for an unknown layer name, listing the known ones.
    """
    import keras

    backbone = inner_model(model)
    own = {layer_.name for layer_ in model.layers}
    if layer is None and backbone is None:
        sub = keras.Model(model.inputs, model.layers[-1].input)
        return lambda x: sub.predict(x, verbose=0)
    if layer is not None and layer in own and (backbone is None or layer != backbone.name):
        sub = keras.Model(model.inputs, model.get_layer(layer).output)
        return lambda x: sub.predict(x, verbose=0)
    if layer is not None and (backbone is None or
                              layer not in {layer_.name for layer_ in backbone.layers}):
        raise ConfigurationError(
            f"No layer named {layer!r}; the model's layers are: {', '.join(layer_names(model))}."
        )
    index = model.layers.index(backbone)
    pre = keras.Model(model.inputs, model.layers[index - 1].output)
    output = backbone.layers[-1].input if layer is None else backbone.get_layer(layer).output
    trunk = keras.Model(backbone.inputs, output)
    return lambda x: trunk.predict(pre.predict(x, verbose=0), verbose=0)


def inner_model(model):
    """The nested model holding the architecture inside a wrapper model."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[0] if len(inner) == 1 else None
