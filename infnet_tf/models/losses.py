"""Multi-task loss (eq. 12): L = sum_i lambda_i * BCE(y_hat_i, y_i), missing labels masked.

A label of -1 (``infnet_tf.data.keys.MISSING_LABEL``) contributes nothing: each task's BCE is the mean over
the rows that have a label, and a task with no labelled row in the batch contributes exactly 0.
Everything is computed in float32 whatever the model's compute dtype.
"""
from __future__ import annotations

from typing import Mapping

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

EPSILON = 1e-7


def masked_bce(labels, probs) -> tf.Tensor:
    """Mean BCE over the rows whose label is not -1 (0.0 when there is none); float32 scalar."""
    labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
    probs = tf.clip_by_value(tf.cast(tf.reshape(probs, [-1]), tf.float32), EPSILON, 1.0 - EPSILON)
    valid = tf.cast(labels >= 0.0, tf.float32)
    y = labels * valid
    bce = -(y * tf.math.log(probs) + (1.0 - y) * tf.math.log(1.0 - probs))
    return tf.math.divide_no_nan(tf.reduce_sum(bce * valid), tf.reduce_sum(valid))


def multitask_loss(labels: Mapping[str, tf.Tensor], probs: Mapping[str, tf.Tensor],
                   weights: Mapping[str, float]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """(total, per_task): ``total = sum_task weights[task] * per_task[task]`` (float32)."""
    missing = [t for t in probs if t not in labels or t not in weights]
    if missing:
        raise ValueError(f"multitask_loss: no label or weight for task(s) {missing}")
    per_task = {task: masked_bce(labels[task], p) for task, p in probs.items()}
    total = tf.add_n([tf.constant(float(weights[t]), tf.float32) * v for t, v in per_task.items()])
    return total, per_task
