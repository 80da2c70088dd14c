"""Custom Keras losses (`xval.losses`), against numpy."""

import numpy as np
import pytest


def test_weighted_frame_crossentropy_against_numpy(rng):
    import keras

    from xval.tasks.losses import WeightedFrameCrossentropy

    y = (rng.random((3, 20, 2)) < 0.2).astype(np.float32)
    logits = rng.normal(0, 3, (3, 20, 2)).astype(np.float32)

    def value(loss):
        return float(keras.ops.convert_to_numpy(loss(y, logits)))

    # Every weight 1: Keras' own binary cross-entropy on logits.
    plain = keras.losses.BinaryCrossentropy(from_logits=True)
    assert value(WeightedFrameCrossentropy([1.0, 1.0])) == pytest.approx(value(plain),
                                                                         rel=1e-5)
    prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
    bce = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
    weights = np.where(y == 1, np.array([5.0, 2.0]), 1.0)
    weighted = WeightedFrameCrossentropy([5.0, 2.0])
    assert value(weighted) == pytest.approx(float((weights * bce).mean()), rel=1e-4)
    assert value(weighted) > value(plain)
    # Serializable: the config rebuilds the same loss.
    config = keras.saving.serialize_keras_object(weighted)
    again = keras.saving.deserialize_keras_object(config)
    assert isinstance(again, WeightedFrameCrossentropy)
    assert again.positive_weights == [5.0, 2.0] and value(again) == value(weighted)


@pytest.mark.parametrize("weights", [[], [0.0], [-1.0], [float("inf")]])
def test_weighted_frame_crossentropy_refuses_bad_weights(weights):
    from xval.tasks.losses import WeightedFrameCrossentropy

    with pytest.raises(ValueError, match=r"positive_weights=.*expected one finite number "
                                         r"> 0 per class"):
        WeightedFrameCrossentropy(weights)
