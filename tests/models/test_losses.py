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


def test_shares_divided_by_the_global_labelled_count_sum_to_the_whole_batch_mean():
    """Split across replicas, each share's loss over the whole batch's labelled count sums to the
    one-device loss, however unevenly the labels fall (here: 2 of 3 labelled rows in the first half)."""
    labels = {"a": tf.constant([1, 0, -1, -1, 1, -1], tf.int64)}
    probs = {"a": tf.constant([0.8, 0.3, 0.5, 0.1, 0.6, 0.9])}
    whole, _ = multitask_loss(labels, probs, {"a": 1.5})
    halves = [multitask_loss({"a": labels["a"][i:i + 3]}, {"a": probs["a"][i:i + 3]}, {"a": 1.5},
                             labelled={"a": tf.constant(3.0)})[0] for i in (0, 3)]
    np.testing.assert_allclose((halves[0] + halves[1]).numpy(), whole.numpy(), rtol=1e-6)
    np.testing.assert_allclose(whole.numpy(), 1.5 * (bce(1, 0.8) + bce(0, 0.3) + bce(1, 0.6)) / 3, rtol=1e-6)
    # the per-share means would not: (mean of 2 + mean of 1) / 2 != mean of 3
    naive = [multitask_loss({"a": labels["a"][i:i + 3]}, {"a": probs["a"][i:i + 3]}, {"a": 1.5})[0] for i in (0, 3)]
    assert abs((naive[0] + naive[1]).numpy() / 2 - whole.numpy()) > 0.05
