"""Pieces shared by the builders: regularisers and output heads."""

import keras
from keras import layers


def l2(regularization_lambda):
    """Returns an L2 kernel regulariser, or `None` when `regularization_lambda` is 0."""
    if regularization_lambda < 0:
        raise ValueError(
            f"regularization_lambda={regularization_lambda}: expected a value >= 0."
        )
    return keras.regularizers.L2(regularization_lambda) if regularization_lambda else None


def output_head(x, num_outputs, task_type):
    """Final dense layer: logits for classification, linear values for regression.

    The layer computes in float32 so that mixed precision keeps a stable loss.
    """
    if task_type not in ("classification", "regression"):
        raise ValueError(
            f"task_type={task_type!r}: expected 'classification' or 'regression'."
        )
    name = "logits" if task_type == "classification" else "prediction"
    return layers.Dense(num_outputs, dtype="float32", name=name)(x)
