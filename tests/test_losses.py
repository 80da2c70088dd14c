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


def test_weighted_frame_crossentropy_weighs_frames_near_bounds(rng):
    """`boundary_weight`: frames within `boundary_frames` of an onset or offset (a change of
    the targets along time) weigh 1 + boundary_weight; every frame of a short event does."""
    import keras

    from xval.tasks.losses import WeightedFrameCrossentropy

    y = np.zeros((1, 20, 2), np.float32)
    y[0, 8:11, 0] = 1  # a 3-frame event of class 0; class 1 never active
    logits = rng.normal(0, 2, (1, 20, 2)).astype(np.float32)
    prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
    bce = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
    near = np.zeros((20, 2))
    near[7 - 2:11 + 2 + 1, 0] = 1  # bounds at frames 7|8 and 10|11, 2 frames each side
    loss = WeightedFrameCrossentropy([1.0, 1.0], boundary_weight=3.0, boundary_frames=2)
    got = float(keras.ops.convert_to_numpy(loss(y, logits)))
    assert got == pytest.approx(float(((1 + 3.0 * near) * bce[0]).mean()), rel=1e-5)
    # Weight 0 is the plain loss, and the config round-trips the boundary settings.
    plain = keras.losses.BinaryCrossentropy(from_logits=True)
    off = WeightedFrameCrossentropy([1.0, 1.0], boundary_weight=0.0)
    assert float(keras.ops.convert_to_numpy(off(y, logits))) == pytest.approx(
        float(keras.ops.convert_to_numpy(plain(y, logits))), rel=1e-5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert (again.boundary_weight, again.boundary_frames) == (3.0, 2)


@pytest.mark.parametrize("weight, frames", [(-1.0, 3), (float("inf"), 3), (1.0, -1)])
def test_weighted_frame_crossentropy_refuses_bad_boundaries(weight, frames):
    from xval.tasks.losses import WeightedFrameCrossentropy

    with pytest.raises(ValueError, match=r"boundary_weight=.*expected a finite number >= 0"):
        WeightedFrameCrossentropy([1.0], boundary_weight=weight, boundary_frames=frames)
