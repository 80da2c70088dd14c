"""Pieces shared by the builders: regularisers and output heads (Keras imported when a
model is built)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xval import tasks
from xval.tasks import DEFAULT as DEFAULT_TASK

if TYPE_CHECKING:
    import keras

__all__ = ["DEFAULT_TASK", "Shape", "batch_norm", "check_output", "l2", "output_head"]


def check_output(task_type: str | None, output: str, what: str) -> None:
    """Refuses a task whose models need another kind of output than the builder makes.

    Args:
        task_type: the builder's `task_type`, or `None` (any task whose models make
            `output`: nothing to refuse).
        output: what the builder makes (`Task.output`: `"frames"`, `"input"`).
        what: the builder, in words ("this builder makes frame-level detectors").

    Raises:
        ValueError: naming the task and the tasks the builder serves.
    """
    if task_type is not None and tasks.get(task_type).output != output:
        served = ", ".join(repr(t.name) for t in tasks.TASKS.find(lambda t: t.output == output))
        raise ValueError(f"task_type={task_type!r}: {what}; expected {served}.")

Shape = tuple[int | None, ...]
"""A model's input shape without the batch axis, e.g. `(time, frequency, 1)`."""


def l2(regularization_lambda: float) -> keras.regularizers.Regularizer | None:
    """Returns an L2 kernel regulariser, or `None` when `regularization_lambda` is 0.

    Raises:
        ValueError: when `regularization_lambda` is negative.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    if regularization_lambda < 0:
        raise ValueError(
            f"regularization_lambda={regularization_lambda}: expected a value >= 0."
        )
    return keras.regularizers.L2(regularization_lambda) if regularization_lambda else None


def batch_norm(bn_momentum: float) -> keras.layers.Layer:
    """Returns a `BatchNormalization` layer whose moving statistics follow the weights.

    In inference mode (evaluation, the best-epoch choice on validation rows, saved models)
    the layer normalises with moving averages of the batch statistics. Keras' default
    momentum 0.99 averages over about 100 steps: with the few hundred steps of a small
    audio dataset, the averages still carry their initial values and the early epochs'
    weights when training stops, and the model scores far below its own training curve
    (docs/training.md, `tests/test_inference_gap.py`). Momentum 0.9 (PyTorch's default, 0.1 there) averages
    over about 10 steps.

    Args:
        bn_momentum: momentum of the moving mean and variance, `0 < bn_momentum < 1`
            (`architectures.keywords.Momentum`).

    Returns:
        A `keras.layers.BatchNormalization`.

    Raises:
        ValueError: when `bn_momentum` is outside `(0, 1)`.
    """
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    if not 0 < bn_momentum < 1:
        raise ValueError(
            f"bn_momentum={bn_momentum}: expected a value in (0, 1) (0.9 follows the "
            "weights within about 10 steps; 0.99 needs hundreds)."
        )
    return layers.BatchNormalization(momentum=bn_momentum)


def output_head(x: Any, num_outputs: int, task_type: str) -> Any:
    """The task's output layer (`xval.tasks`): e.g. logits for classification (the layer
    `logits`), linear values for regression (`prediction`), computing in float32 so that
    mixed precision keeps a stable loss.

    Args:
        x: the features the head reads (a Keras tensor).
        num_outputs: units of the head.
        task_type: a registered task name.

    Returns:
        The head's output tensor.

    Raises:
        ValueError: for an unknown `task_type`, listing the registered ones.
    """
    return tasks.get(task_type).head.layer(x, num_outputs)
