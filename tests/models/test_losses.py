"""Multi-task loss (eq. 12) with missing labels masked."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.models.losses import multitask_loss


def bce(y, p):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_weighted_masked_bce():
    labels = {"a": tf.constant([1, 0, -1], tf.int64), "b": tf.constant([-1, -1, -1], tf.int64)}
    probs = {"a": tf.constant([0.8, 0.3, 0.5]), "b": tf.constant([0.5, 0.5, 0.5])}
    total, per_task = multitask_loss(labels, probs, {"a": 2.0, "b": 3.0})
    expected_a = (bce(1, 0.8) + bce(0, 0.3)) / 2
    np.testing.assert_allclose(per_task["a"].numpy(), expected_a, rtol=1e-6)
    assert per_task["b"].numpy() == 0.0                      # no label in the batch: 0, not NaN
    np.testing.assert_allclose(total.numpy(), 2.0 * expected_a, rtol=1e-6)
    assert total.dtype == tf.float32


def test_float_inputs_saturated_probs_and_bfloat16_probs():
    labels = {"a": tf.constant([1.0, 0.0])}
    total, _ = multitask_loss(labels, {"a": tf.constant([0.0, 1.0], tf.bfloat16)}, {"a": 1.0})
    assert total.dtype == tf.float32 and np.isfinite(total.numpy())
