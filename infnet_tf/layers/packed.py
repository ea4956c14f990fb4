"""Packed behaviour sequences: the real items of a padded batch, one row each.

A batch of behaviour sequences arrives padded to [B, T] (``mask`` [B, T] bool, True for real
items), and on logs of mostly short histories most of it is padding: 80% of the click sequence's
50 steps and 95% of the like sequence's 20 on the bundled sample. Work that is done per item and
then masked away (embedding look-ups and their sparse gradients, the per-item MLP of eq. 3, masked
means) runs on the real items only, as a packed sequence ``(values, rows, mask)``:

* ``rows`` [R, 2] int64: the (example, step) index of every real item, ``tf.where(mask)`` (row-major,
  so grouped by example);
* ``values`` [R, ...]: the items' vectors in that order;
* ``mask`` [B, T]: kept for the batch shape and the per-example counts.

:func:`to_dense` scatters a packed sequence into the padded [B, T, d] tensor with exact zeros at
padding (what attention over the sequence reads); :func:`packed_mean` is the masked mean of
:func:`~infnet_tf.layers.masking.masked_mean` computed from the packed rows (zeros for an example
with no real item). Both are the same function of the real items as the padded computation, up to
summation order.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf


def pack(x, mask):
    """The padded [B, T, ...] ``x`` with ``mask`` [B, T] as a packed sequence (values, rows, mask)."""
    rows = tf.where(mask)
    return tf.gather_nd(x, rows), rows, mask


def to_dense(values, rows, mask):
    """[B, T, d]: ``values`` [R, d] at their ``rows``, zeros at padding."""
    shape = tf.concat([tf.shape(mask, out_type=tf.int64), tf.shape(values, out_type=tf.int64)[1:]], axis=0)
    return tf.scatter_nd(rows, values, shape)


def packed_sums(values, rows, mask):
    """[B, d]: per example, the sum of its real items' ``values`` (zeros for none)."""
    return tf.math.unsorted_segment_sum(values, rows[:, 0], tf.shape(mask, out_type=tf.int64)[0])


def real_counts(mask, dtype):
    """[B, 1]: per example, the number of real items (at least 1, so a mean of none is zero)."""
    return tf.maximum(tf.reduce_sum(tf.cast(mask, dtype), axis=1, keepdims=True), tf.cast(1.0, dtype))


def packed_mean(values, rows, mask):
    """[B, d]: per example, the mean of its real items' ``values`` (zeros for an all-padding example)."""
    return packed_sums(values, rows, mask) / real_counts(mask, values.dtype)
