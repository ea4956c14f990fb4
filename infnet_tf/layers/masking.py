"""Padding masks: masked means and the large negative used before a softmax."""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

# Added to the logits of padded keys (in float32): exp(-1e9 - max) is exactly 0 in float32.
LARGE_NEGATIVE = -1e9


def masked_mean(x, mask=None, axis: int = 1):
    """Mean of ``x`` [B, N, d] over ``axis`` counting only ``mask`` [B, N] positions.

    An all-padding row gives zeros (not NaN). ``mask`` None means every position is real.
    """
    if mask is None:
        return tf.reduce_mean(x, axis=axis)
    m = tf.cast(mask, x.dtype)[..., None]
    total = tf.reduce_sum(x * m, axis=axis)
    count = tf.maximum(tf.reduce_sum(m, axis=axis), tf.cast(1.0, x.dtype))
    return total / count


def masked_mean_matmul(x, mask=None):
    """:func:`masked_mean` over axis 1 of ``x`` [B, N, d] as one batched matmul, mask [B, 1, N] times
    ``x``, divided by the count: the same mean (up to summation order) without the [B, N, d] product
    with the mask and its reduction, forward and backward (about 1.3x faster on a CPU for the
    sequence hubs' [1024, 50, 64] activations; bench/REPORT.md, Efficiency, nineteenth session)."""
    if mask is None:
        return tf.reduce_mean(x, axis=1)
    m = tf.cast(mask, x.dtype)
    count = tf.maximum(tf.reduce_sum(m, axis=1, keepdims=True), tf.cast(1.0, x.dtype))
    return tf.matmul(m[:, None, :], x)[:, 0, :] / count
