"""Optimizers: Adam for dense weights, Adagrad (or Adam) for embedding tables.

The split follows the layers: every variable of a ``tf.keras.layers.Embedding`` found by walking
``model.submodules`` is an embedding table; everything else is dense. TFRS's
``CompositeOptimizer`` applies each optimizer to its own variables, and under a float16 policy
:func:`infnet_tf.precision.wrap_optimizer` adds dynamic loss scaling around the composite.
Gradient clipping (global norm) is done by the train step, after replicas' gradients are summed.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from infnet_tf.precision import wrap_optimizer
from infnet_tf.training.config import TrainConfig

PARTS = ("dense", "embedding")


def embedding_variables(model: tf.keras.Model) -> list[tf.Variable]:
    """Trainable variables of the model's ``Embedding`` layers (each once, in layer order)."""
    seen: set = set()
    out: list[tf.Variable] = []
    for module in model.submodules:
        if isinstance(module, tf.keras.layers.Embedding):
            for v in module.trainable_weights:
                if v.ref() not in seen:
                    seen.add(v.ref())
                    out.append(v)
    return out


def dense_variables(model: tf.keras.Model) -> list[tf.Variable]:
    """Trainable variables that are not embedding tables."""
    emb = {v.ref() for v in embedding_variables(model)}
    return [v for v in model.trainable_variables if v.ref() not in emb]


class CompositeOptimizer(tfrs.experimental.optimizers.CompositeOptimizer):
    """TFRS's ``CompositeOptimizer`` whose ``apply_gradients`` returns an op.

    The legacy ``LossScaleOptimizer`` chooses between "apply" and "skip" with a ``cond`` whose
    branches must both return an op; TFRS's version returns None. (Stateful ops inside a cond
    branch run without explicit control dependencies.)
    """

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        super().apply_gradients(grads_and_vars, name=name,
                                experimental_aggregate_gradients=experimental_aggregate_gradients)
        return tf.no_op()


@tf.keras.utils.register_keras_serializable(package="infnet")
class LinearWarmup(tf.keras.optimizers.schedules.LearningRateSchedule):
    """``rate · min(1, (step + 1) / warmup_steps)``: a linear ramp, then constant.

    The step is the optimizer's own ``iterations`` (checkpointed with it), so a resumed run
    continues the ramp where it stopped.
    """

    def __init__(self, rate: float, warmup_steps: int):
        self.rate, self.warmup_steps = float(rate), int(warmup_steps)

    def __call__(self, step):
        ramp = tf.cast(step + 1, tf.float32) / float(max(self.warmup_steps, 1))
        return self.rate * tf.minimum(1.0, ramp)

    def get_config(self):
        return {"rate": self.rate, "warmup_steps": self.warmup_steps}


def _rate(rate: float, config: TrainConfig):
    return LinearWarmup(rate, config.warmup_steps) if config.warmup_steps else rate


def _embedding_optimizer(config: TrainConfig):
    rate = _rate(config.embedding_learning_rate, config)
    if config.embedding_optimizer == "adagrad":
        return tf.keras.optimizers.legacy.Adagrad(
            rate, initial_accumulator_value=config.adagrad_initial_accumulator, name="embedding_adagrad")
    return tf.keras.optimizers.legacy.Adam(rate, name="embedding_adam")


def build_optimizer(model: tf.keras.Model, config: TrainConfig):
    """Composite (dense Adam + embedding Adagrad/Adam), loss-scaled under float16; model must be built.

    With ``config.warmup_steps`` both learning rates ramp up linearly over that many steps
    (:class:`LinearWarmup`)."""
    dense = tf.keras.optimizers.legacy.Adam(_rate(config.learning_rate, config), name="dense_adam")
    pairs = [(dense, lambda: dense_variables(model))]
    if embedding_variables(model):
        pairs.append((_embedding_optimizer(config), lambda: embedding_variables(model)))
    for optimizer, variables in pairs:
        # slots now, not inside the first train step: no second trace, and a checkpoint restores
        # them at once instead of deferring
        optimizer._create_all_weights(variables())  # noqa: SLF001 - legacy OptimizerV2 API
    return wrap_optimizer(CompositeOptimizer(pairs))


def _unwrap(optimizer):
    return getattr(optimizer, "inner_optimizer", optimizer)


def learning_rates(optimizer) -> dict[str, float]:
    """Current learning rate of each part: ``{"dense": ..., "embedding": ...}``."""
    out = {}
    for name, sub in zip(PARTS, _unwrap(optimizer).optimizers):  # built in PARTS order
        lr = sub._get_hyper("learning_rate")  # noqa: SLF001 - the legacy optimizer's hyperparameter
        if callable(lr):
            lr = lr(sub.iterations)
        out[name] = float(tf.keras.backend.get_value(lr))
    return out


def loss_scale_optimizer(optimizer):
    """The LossScaleOptimizer when ``optimizer`` scales the loss, else None."""
    return optimizer if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer) else None
