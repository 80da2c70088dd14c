"""The parts of a fold's optimizer that a training step runs without a host branch: the
warm-up schedule and the loss-scale optimizer of mixed precision.

Keras's `CosineDecay` with a warm-up and its `LossScaleOptimizer` choose between two
branches with `ops.cond`, which on the torch backend (eager) is a Python `if` on a device
tensor: at every step, the Python thread waits for the GPU to finish every kernel queued
before it to read that boolean. Both here compute what each branch gives and keep one with
`ops.where`, on the device. They give the same values as Keras's classes, and are
registered with Keras by name (`package="architectures"`), so a saved model's compiled
optimizer loads after `import architectures`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="architectures")
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """`keras.optimizers.schedules.CosineDecay` whose warm-up needs no host branch.

    The arguments are `CosineDecay`'s: a linear warm-up from `initial_learning_rate` to
    `warmup_target` over `warmup_steps`, then a cosine decay over `decay_steps` to `alpha`
    times `warmup_target`. Without `warmup_target` it is `CosineDecay` itself.
    """

    def __call__(self, step: Any) -> Any:
        if self.warmup_target is None or not self.warmup_steps:
            return super().__call__(step)
        with keras.name_scope(self.name):
            initial = ops.convert_to_tensor(self.initial_learning_rate)
            dtype = initial.dtype
            decay_steps = ops.cast(self.decay_steps, dtype)
            warmup_steps = ops.cast(self.warmup_steps, dtype)
            target = ops.cast(self.warmup_target, dtype)
            step = ops.minimum(ops.cast(step, dtype), decay_steps + warmup_steps)
            warm = self._warmup_function(step, warmup_steps, target, initial)
            decayed = self._decay_function(ops.maximum(step - warmup_steps, 0.0),
                                           decay_steps, target, dtype)
            return ops.where(step < warmup_steps, warm, decayed)


@keras.saving.register_keras_serializable(package="architectures")
class DeviceLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """`keras.optimizers.LossScaleOptimizer` whose step needs no host branch (torch).

    Keras's optimizer applies the inner optimizer's update only when every gradient is
    finite, and else halves the loss scale, choosing with `ops.cond`. Here the update is
    computed in any case (non-finite gradients replaced by zeros), and every variable it
    changes (the model's and the inner optimizer's, its step counter included) keeps its
    old value where a gradient was not finite; the scale and its counter are updated by
    the same rule as Keras's, with `ops.where`. The cost is one copy of the trained
    variables and of the optimizer's state per step, on the device. On JAX and TensorFlow,
    whose steps are compiled (their `cond` stays on the device), it is Keras's own.

    Args:
        inner_optimizer: the optimizer whose update is applied.
        **kwargs: `LossScaleOptimizer`'s (`initial_scale`, `dynamic_growth_steps`...).
    """

    def _common_apply(self, grads: list[Any], trainable_variables: list[Any] | None = None
                      ) -> None:
        if keras.backend.backend() != "torch":
            return super()._common_apply(grads, trainable_variables)
        variables = trainable_variables or self._trainable_variables
        finite = self.check_finite(grads)
        scale = self.dynamic_scale
        unscaled = [g if g is None or self._overwrite_variable_with_gradient(v)
                    else ops.where(finite, ops.divide(g, scale), ops.zeros_like(g))
                    for g, v in zip(grads, variables)]
        inner = self.inner_optimizer
        if not inner.built:
            inner.build(variables)
        kept = [*variables, *inner.variables]
        before = [ops.copy(v.value) for v in kept]
        inner.apply(unscaled, trainable_variables=trainable_variables)
        for variable, old in zip(kept, before):
            variable.assign(ops.where(finite, variable.value, old))
        grow = ops.logical_and(finite, ops.equal(self.step_counter,
                                                 self.dynamic_growth_steps - 1))
        counter = ops.where(grow, ops.zeros_like(self.step_counter), self.step_counter + 1)
        self.step_counter.assign(ops.where(finite, counter,
                                           ops.zeros_like(self.step_counter)))
        self.dynamic_scale.assign(ops.where(finite, ops.where(grow, scale * 2.0, scale),
                                            scale * 0.5))
        return None


@keras.saving.register_keras_serializable(package="architectures")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule counted in epochs: a linear warm-up from 0 over
    `warmup_epochs`, then a cosine decay to 0 by the end of `epochs` (`cosine`), or the
    rate held (no `cosine`).

    The steps per epoch differ between folds (their training rows do), and so do the epochs
    of a refit (`refit_with_val`: the best epoch of the fold's first model). Written into
    the step as numbers, each would compile a program of its own; once `attach`ed, both are
    variables of the optimizer, which a compiled step takes as arguments, so every fold and
    refit of an instance runs one program. The values are those of Keras's `CosineDecay`
    with a warm-up (`warmup_target`) over `warmup_epochs * steps_per_epoch` steps.

    Args:
        learning_rate: the rate after the warm-up.
        epochs: the epochs of the run (the decay ends with them).
        warmup_epochs: epochs of linear warm-up. Defaults to `0`.
        cosine: decay after the warm-up. Defaults to `True`.
        steps_per_epoch: batches per epoch. Defaults to `1`.
    """

    def __init__(self, learning_rate: float, epochs: float, warmup_epochs: float = 0,
                 cosine: bool = True, steps_per_epoch: float = 1) -> None:
        self.learning_rate = float(learning_rate)
        self.epochs: Any = float(epochs)
        self.warmup_epochs = float(warmup_epochs)
        self.cosine = bool(cosine)
        self.steps_per_epoch: Any = float(steps_per_epoch)

    def attach(self, optimizer: Any) -> Any:
        """Makes the steps per epoch and the epochs variables of `optimizer` (not yet
        used); returns it."""
        self.steps_per_epoch = optimizer.add_variable(
            (), initializer=keras.initializers.Constant(float(self.steps_per_epoch)),
            dtype="float32", name="steps_per_epoch")
        self.epochs = optimizer.add_variable(
            (), initializer=keras.initializers.Constant(float(self.epochs)),
            dtype="float32", name="epochs")
        return optimizer

    def __call__(self, step: Any) -> Any:
        steps = ops.cast(self.steps_per_epoch, "float32")
        step = ops.cast(step, "float32")
        warmup = self.warmup_epochs * steps
        rate = self.learning_rate
        warm = rate * step / ops.maximum(warmup, 1.0)
        if self.cosine:
            decay = ops.maximum(ops.cast(self.epochs, "float32") * steps - warmup, 1.0)
            done = ops.minimum(ops.maximum(step - warmup, 0.0), decay) / decay
            after = rate * 0.5 * (1.0 + ops.cos(np.pi * done))
        else:
            after = rate * ops.ones_like(step)
        return ops.where(step < warmup, warm, after)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate,
                "epochs": float(ops.convert_to_numpy(self.epochs)),
                "warmup_epochs": self.warmup_epochs, "cosine": self.cosine,
                "steps_per_epoch": float(ops.convert_to_numpy(self.steps_per_epoch))}
