"""An exponential moving average of the weights: what evaluation, the best-checkpoint choice and the
export use (``--weight_average_decay``; bench/REPORT.md round 6 has the measurements).

After every train step t (the global step before the step, from 0) each averaged weight w gets a shadow

    a <- decay_t · a + (1 - decay_t) · w,      decay_t = min(decay, (1 + t) / (10 + t))

(the warm-up of ``tf.train.ExponentialMovingAverage(num_updates=t)``: early shadows follow the
weights instead of remembering their initialisation). Every trainable weight is averaged, the
embedding tables too (measured: averaging only the dense weights kept half the gain on a real log);
``--noweight_average_embeddings`` leaves the tables out -- for tables much larger than the dense
weights, where a shadow copy doubles their memory and its update is a pass over every table per step.

The shadows are checkpointed with the model (``weight_average`` in the trainer's checkpoint), so a
resumed run continues the same average; a checkpoint written without them (averaging was off, an
older model dir, or the other ``weight_average_embeddings`` setting) starts the average at the
restored weights. The model's own variables always hold the trained ("raw") weights;
:meth:`WeightAverage.swapped` puts the averages in their place for an evaluation and back after,
and :func:`restore_averaged` loads a checkpoint's averages into a fresh model (the exporter).
"""
from __future__ import annotations

import contextlib

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

CHECKPOINT_KEY = "weight_average"   # the shadows' name in the trainer's tf.train.Checkpoint


def averaged_variables(model: tf.keras.Model, embeddings: bool = True) -> list[tf.Variable]:
    """The model's variables that are averaged, in a fixed order (the same for every model built from
    the same layout and config): every trainable weight, or without ``embeddings`` the dense
    (non-embedding) ones."""
    from infnet_tf.training.optimizers import dense_variables

    return list(model.trainable_variables) if embeddings else dense_variables(model)


class _Shadows(tf.Module):
    """What the checkpoint holds under :data:`CHECKPOINT_KEY`: a list of variables, one per averaged
    weight, in :func:`averaged_variables` order."""

    def __init__(self, variables):
        super().__init__(name=CHECKPOINT_KEY)
        self.shadows = list(variables)


class WeightAverage:
    """The shadows of ``model``'s weights (create it under the strategy's scope)."""

    def __init__(self, model: tf.keras.Model, decay: float, embeddings: bool = True):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight_average_decay: expected a decay in (0, 1), got {decay}")
        self.decay = float(decay)
        self._in = False   # inside swapped()
        self.variables = averaged_variables(model, embeddings)
        self.trackable = _Shadows(tf.Variable(v.read_value(), trainable=False, name=v.name.split(":")[0] + "/average")
                                  for v in self.variables)

    @property
    def shadows(self) -> list[tf.Variable]:
        return self.trackable.shadows

    def update(self, step) -> None:
        """One step of the average, in each replica's train step after the optimizer applied the gradients.

        In replica context: the shadows are mirrored variables, and in cross-replica context ``a.handle``
        is only the first device's copy -- under MirroredStrategy the other replicas' shadows then kept
        their initial values, and an evaluation (which swaps each replica's shadows in) predicted part
        of every batch with them."""
        t = tf.cast(step, tf.float32)
        rate = 1.0 - tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        # a - (1 - d)(a - w) = d·a + (1 - d)·w, as one in-place kernel per weight (measured: 1.5x faster
        # than assign(d·a + (1 - d)·w) on DCNv2's 6M weights); ``a.handle`` is the replica's own copy.
        for w, a in zip(self.variables, self.shadows):
            tf.raw_ops.ResourceApplyGradientDescent(var=a.handle, alpha=rate, delta=a - tf.cast(w, a.dtype))

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
        also on an exception). Nested uses (an evaluation drawing its attention image) swap once."""
        if self._in:
            yield
            return
        self._swap()
        self._in = True
        try:
            yield
        finally:
            self._in = False
            self._swap()


def stored_shapes(checkpoint: str) -> list[tuple[int, ...]] | None:
    """The shapes of the averages ``checkpoint`` (a path prefix) holds, in order; None when it has none."""
    prefix = CHECKPOINT_KEY + "/shadows/"
    shapes = {}
    for name, shape in tf.train.list_variables(checkpoint):
        if name.startswith(prefix) and name.endswith("/.ATTRIBUTES/VARIABLE_VALUE"):
            index = name[len(prefix):].split("/", 1)[0]
            if index.isdigit():
                shapes[int(index)] = tuple(shape)
    return [shapes[i] for i in sorted(shapes)] if shapes else None


def matches(variables, checkpoint: str) -> bool:
    """Whether ``checkpoint`` holds averages of exactly ``variables`` (same count, order and shapes)."""
    return stored_shapes(checkpoint) == [tuple(v.shape) for v in variables]


def restore_averaged(model: tf.keras.Model, checkpoint: str) -> bool:
    """Load ``checkpoint``'s averages into ``model``'s variables (after its raw weights were restored):
    of every weight, or of the dense ones, whichever the checkpoint holds; False (nothing changed) when
    it holds none."""
    for embeddings in (True, False):
        variables = averaged_variables(model, embeddings)
        if matches(variables, checkpoint):
            status = tf.train.Checkpoint(**{CHECKPOINT_KEY: _Shadows(variables)}).restore(checkpoint)
            status.expect_partial()
            return True
    return False
