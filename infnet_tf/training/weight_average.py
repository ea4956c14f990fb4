"""An exponential moving average of the dense weights: what batch evaluation, the best checkpoint and
the export use (``--weight_average_decay``; bench/REPORT.md round 6 has the measurements).

After every train step t (the global step before the step, from 0) each dense weight w gets a shadow

    a <- decay_t · a + (1 - decay_t) · w,      decay_t = min(decay, (1 + t) / (10 + t))

(the warm-up of ``tf.train.ExponentialMovingAverage(num_updates=t)``: early shadows follow the
weights instead of remembering their initialisation). The embedding tables are not averaged: each
row moves only on the steps whose batch holds its id (an average would mostly lag), and a copy of
every table would double the largest part of a model's memory (on parameter servers too).

The shadows are checkpointed with the model (``weight_average`` in the trainer's checkpoint), so a
resumed run continues the same average; a checkpoint written without them (averaging was off, or an
older model dir) starts the average at the restored weights. The model's own variables always hold
the trained ("raw") weights; :meth:`WeightAverage.swapped` puts the averages in their place for an
evaluation and back after, and :func:`restore_averaged` loads a checkpoint's averages into a fresh
model (the exporter).
"""
from __future__ import annotations

import contextlib

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

CHECKPOINT_KEY = "weight_average"   # the shadows' name in the trainer's tf.train.Checkpoint


def averaged_variables(model: tf.keras.Model) -> list[tf.Variable]:
    """The model's variables that are averaged: its dense (non-embedding) trainable weights, in a
    fixed order (the same for every model built from the same layout and config)."""
    from infnet_tf.training.optimizers import dense_variables

    return dense_variables(model)


class _Shadows(tf.Module):
    """What the checkpoint holds under :data:`CHECKPOINT_KEY`: a list of variables, one per averaged
    weight, in :func:`averaged_variables` order."""

    def __init__(self, variables):
        super().__init__(name=CHECKPOINT_KEY)
        self.shadows = list(variables)


class WeightAverage:
    """The shadows of ``model``'s dense weights (create it under the strategy's scope)."""

    def __init__(self, model: tf.keras.Model, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight_average_decay: expected a decay in (0, 1), got {decay}")
        self.decay = float(decay)
        self.variables = averaged_variables(model)
        self.trackable = _Shadows(tf.Variable(v.read_value(), trainable=False, name=v.name.split(":")[0] + "/average")
                                  for v in self.variables)

    @property
    def shadows(self) -> list[tf.Variable]:
        return self.trackable.shadows

    def update(self, step) -> None:
        """One step of the average (in the train step, after the optimizer applied the gradients)."""
        t = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for w, a in zip(self.variables, self.shadows):
            a.assign(decay * a + (1.0 - decay) * tf.cast(w, a.dtype))

    def reset(self) -> None:
        """Start the average at the current weights (a checkpoint without shadows was restored)."""
        for w, a in zip(self.variables, self.shadows):
            a.assign(w)

    def _swap(self) -> None:
        for w, a in zip(self.variables, self.shadows):
            raw = tf.identity(w)
            w.assign(a)
            a.assign(raw)

    @contextlib.contextmanager
    def swapped(self):
        """The averages in the model's variables for the duration (and the raw weights back after,
        also on an exception)."""
        self._swap()
        try:
            yield
        finally:
            self._swap()


def has_averages(checkpoint: str) -> bool:
    """Whether ``checkpoint`` (a path prefix) holds weight averages."""
    return any(name.startswith(CHECKPOINT_KEY + "/") for name, _ in tf.train.list_variables(checkpoint))


def restore_averaged(model: tf.keras.Model, checkpoint: str) -> bool:
    """Load ``checkpoint``'s averaged weights into ``model``'s dense variables (after its raw weights
    were restored); False (nothing changed) when the checkpoint has none."""
    if not has_averages(checkpoint):
        return False
    status = tf.train.Checkpoint(**{CHECKPOINT_KEY: _Shadows(averaged_variables(model))}).restore(checkpoint)
    status.expect_partial()
    return True
