"""How each spectral feature type is computed with librosa, written out as Python for a
reader outside the project (the model card of `python -m xval export`): the calls
`preprocessing.features.spectral` makes, with a store's parameters filled in."""

import numpy as np

from xval.core.parameters import FeatureParams

LIBROSA = {
    "mel": ("S = librosa.feature.melspectrogram(y=y, sr={sample_rate}, n_fft={n_fft}, "
            "hop_length={hop_length}, n_mels={n_mels}, fmin={fmin}, fmax={fmax}, power=2.0)"),
    "stft": "S = np.abs(librosa.stft(y, n_fft={n_fft}, hop_length={hop_length}))",
    "mfcc": ("S = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram("
             "y=y, sr={sample_rate}, n_fft={n_fft}, hop_length={hop_length}, n_mels={n_mels}, "
             "fmin={fmin}, fmax={fmax})), n_mfcc={n_mfcc})"),
}
"""The librosa call of each spectral feature, as `preprocessing.features.spectral` makes it."""
COMPRESSION = {
    "db": "S = librosa.{to_db}(S, ref=1.0, amin=1e-10, top_db=None)",
    "log": "S = np.log1p(S)",
    "power": "S = S ** {power_exponent}",
    "pcen": ("S = librosa.pcen({magnitude} * 2.0 ** 31, sr={sample_rate}, "
             "hop_length={hop_length})"),
    "none": "",
}


def recipe_values(fp: FeatureParams) -> dict:
    """The values the recipes' lines are formatted with.

    Args:
        fp: the store's feature parameters.

    Returns:
        dict of the store's parameters, each as a literal (`repr`: a value of an edited
        `dataset.json` is never code in the recipe), `to_db` (the decibel function) and
        `magnitude` (what `pcen` reads: the mel power's square root, or the STFT's
        magnitudes).
    """
    mel = fp.feature == "mel"
    return {**{name: repr(v.item() if isinstance(v, np.generic) else v)
               for name, v in fp.to_dict().items()},
            "to_db": "power_to_db" if mel else "amplitude_to_db",
            "magnitude": "np.sqrt(S)" if mel else "S"}


def librosa_recipe(fp: FeatureParams) -> list[str]:
    """The lines of Python that compute a store's features of a file `path` with librosa,
    time first (what the model card shows for a model whose features are computed outside
    it).

    Args:
        fp: the store's feature parameters (`dataset.json` `feature_params`).

    Returns:
        The lines; for a type without a recipe here, a comment pointing to its function.
    """
    feature = fp.feature
    values = recipe_values(fp)
    lines = ["import librosa, numpy as np",
             f"y, _ = librosa.load(path, sr={values['sample_rate']}, mono=True)"]
    if feature not in LIBROSA:
        return [*lines, f"# feature {feature!r}: see preprocessing.features"]
    lines.append(LIBROSA[feature].format(**values))
    if feature != "mfcc" and COMPRESSION.get(fp.compression):
        lines.append(COMPRESSION[fp.compression].format(**values))
    return [*lines, "features = S.T  # (frames, bins)"]
