"""Padding masks (:mod:`infnet_tf.layers.masking`)."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.masking import masked_mean


def test_masked_mean_counts_only_real_positions():
    """The masked mean every model pools sequences with (one batched matmul): hand values (rows
    [1, 2, 3, 4] masked to the first two -> 1.5, to none -> 0), the plain mean without a mask, and
    NumPy's mean of the real positions on random data."""
    x = tf.constant([[[1.0], [2.0], [3.0], [4.0]], [[1.0], [2.0], [3.0], [4.0]], [[5.0], [6.0], [7.0], [8.0]]])
    mask = tf.constant([[True, True, False, False], [False] * 4, [True] * 4])
    np.testing.assert_allclose(masked_mean(x, mask).numpy(), [[1.5], [0.0], [6.5]])
    np.testing.assert_allclose(masked_mean(x).numpy(), [[2.5], [2.5], [6.5]])
    y = np.random.default_rng(1).normal(size=(3, 7, 5)).astype(np.float32)
    m = np.random.default_rng(2).random((3, 7)) < 0.5
    m[:, 0] = True
    want = np.stack([y[i][m[i]].mean(0) for i in range(3)])
    np.testing.assert_allclose(masked_mean(tf.constant(y), tf.constant(m)).numpy(), want, rtol=1e-5, atol=1e-6)
