"""Factorization-machine interaction (Rendle 2010; DeepFM, Guo et al. 2017, eq. 2).

For F field embeddings v_1..v_F in R^d (one per field, x_i = 1 for the present id), the FM
second-order term is

    y_FM2 = sum_{i<j} <v_i, v_j>
          = 1/2 * sum_{k=1..d} [ (sum_i v_{i,k})^2 - sum_i v_{i,k}^2 ]          (Rendle 2010, Lemma 3.1)

computed in O(F d) instead of O(F^2 d). A multi-hot field (a behaviour sequence) enters as the mean
of its item embeddings (x_j = 1/|S| for each of its |S| real items), the usual DeepFM treatment of
variable-length fields. The sum is taken in float32 whatever the compute dtype: it goes straight into
a logit.

FLOPs: the term is element-wise squares and reductions (O(F d)), not a dense contraction, so under
the project's convention (:mod:`infnet_tf.models.cost`: only MatMul/BatchMatMul counted) it
contributes 0 -- see :func:`fm_flops`.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph


def fm_second_order(fields):
    """``fields`` [B, F, d] -> [B] float32: sum over field pairs i<j of <v_i, v_j>."""
    v = tf.cast(fields, tf.float32)
    square_of_sum = tf.square(tf.reduce_sum(v, axis=1))     # [B, d]
    sum_of_square = tf.reduce_sum(tf.square(v), axis=1)     # [B, d]
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=-1)


@tf.keras.utils.register_keras_serializable(package="infnet")
class FMInteraction(tf.keras.layers.Layer):
    """Keras wrapper of :func:`fm_second_order`: [B, F, d] -> float32 [B] (no weights)."""

    @no_autograph
    def call(self, fields):
        return fm_second_order(fields)

    def get_config(self):
        return super().get_config()


def fm_flops(num_fields: int, d: int) -> int:
    """FLOPs counted for the FM term under the MatMul-only convention: 0 (it is O(F d) element-wise).

    For reference the element-wise work is about 3 F d + 2 d operations per example.
    """
    del num_fields, d
    return 0
