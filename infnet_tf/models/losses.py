"""Multi-task loss (eq. 12): L = sum_i lambda_i * BCE(y_hat_i, y_i), missing labels masked.

A label of -1 (``infnet_tf.data.keys.MISSING_LABEL``) contributes nothing: each task's BCE is the mean over
the rows that have a label, and a task with no labelled row in the batch contributes exactly 0.
Everything is computed in float32 whatever the model's compute dtype.

Split across replicas, a batch's mean is the replicas' summed BCE over the *whole* batch's labelled
count: ``multitask_loss(..., labelled=...)`` divides by counts the caller has all-reduced, so the
replicas' summed gradients equal one device's (:meth:`infnet_tf.training.trainer.Trainer._replica_step`).
"""
from __future__ import annotations

from typing import Mapping

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

EPSILON = 1e-7


def labelled_count(labels) -> tf.Tensor:
    """Number of rows whose label is not -1; float32 scalar."""
    return tf.reduce_sum(tf.cast(tf.reshape(labels, [-1]) >= 0, tf.float32))


def masked_bce_sum(labels, probs) -> tf.Tensor:
    """Summed BCE over the rows whose label is not -1; float32 scalar."""
    labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
    probs = tf.clip_by_value(tf.cast(tf.reshape(probs, [-1]), tf.float32), EPSILON, 1.0 - EPSILON)
    valid = tf.cast(labels >= 0.0, tf.float32)
    y = labels * valid
    bce = -(y * tf.math.log(probs) + (1.0 - y) * tf.math.log(1.0 - probs))
    return tf.reduce_sum(bce * valid)


def masked_bce(labels, probs, labelled=None) -> tf.Tensor:
    """Mean BCE over the rows whose label is not -1 (0.0 when there is none); float32 scalar.
    ``labelled``: the count to divide by (default: this batch's own labelled rows)."""
    count = labelled_count(labels) if labelled is None else tf.cast(labelled, tf.float32)
    return tf.math.divide_no_nan(masked_bce_sum(labels, probs), count)


def multitask_loss(labels: Mapping[str, tf.Tensor], probs: Mapping[str, tf.Tensor],
                   weights: Mapping[str, float],
                   labelled: Mapping[str, tf.Tensor] | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """(total, per_task): ``total = sum_task weights[task] * per_task[task]`` (float32). ``labelled``:
    {task: labelled rows to divide by}, e.g. the whole global batch's when ``labels`` is one replica's
    share; default: the rows of ``labels`` themselves."""
    missing = [t for t in probs if t not in labels or t not in weights]
    if missing:
        raise ValueError(f"multitask_loss: no label or weight for task(s) {missing}")
    labelled = labelled or {}
    per_task = {task: masked_bce(labels[task], p, labelled.get(task)) for task, p in probs.items()}
    total = tf.add_n([tf.constant(float(weights[t]), tf.float32) * v for t, v in per_task.items()])
    return total, per_task
