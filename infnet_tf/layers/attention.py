"""Masked multi-head scaled dot-product attention (eq. 5), shared by cross- and self-attention.

CA(Q, K, V) = softmax(Q K^T / sqrt(d_h)) V per head. The logits are taken to float32 before the
mask and the softmax whatever the compute dtype; padded keys get exactly zero weight, and a query
whose keys are all padding gets all-zero weights (so a zero context), never NaN. Projections are
the caller's: this function only splits heads, attends and merges heads.
"""
from __future__ import annotations

import math

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.masking import LARGE_NEGATIVE


def split_heads(x, num_heads: int):
    """[B, N, d] -> [B, heads, N, d / heads]."""
    d = x.shape[-1]
    x = tf.reshape(x, tf.concat([tf.shape(x)[:2], [num_heads, d // num_heads]], axis=0))
    return tf.transpose(x, [0, 2, 1, 3])


def merge_heads(x):
    """[B, heads, N, d_h] -> [B, N, heads * d_h]."""
    heads, dh = x.shape[1], x.shape[3]
    x = tf.transpose(x, [0, 2, 1, 3])
    return tf.reshape(x, tf.concat([tf.shape(x)[:2], [heads * dh]], axis=0))


def multi_head_attention(q, k, v, mask=None, num_heads: int = 1):
    """Attend projected queries ``q`` [B, Q, d] to keys/values ``k``, ``v`` [B, K, d].

    Returns (context [B, Q, d] in the compute dtype of ``v``, float32 weights [B, heads, Q, K]).
    The 1/sqrt(d_h) scale is applied to the (small) queries; with a mask, the context of a query
    whose keys are all padding is zeroed on the small context tensor rather than by a second pass
    over the [B, h, Q, K] weights (the returned weights are exactly zero there too).
    """
    d = q.shape[-1]
    if d % num_heads:
        raise ValueError(f"attention: num_heads={num_heads} must divide the width {d}")
    q = q * tf.cast(1.0 / math.sqrt(d // num_heads), q.dtype)
    qh, kh, vh = (split_heads(t, num_heads) for t in (q, k, v))
    logits = tf.cast(tf.matmul(qh, kh, transpose_b=True), tf.float32)
    if mask is None:
        weights = tf.nn.softmax(logits, axis=-1)
        return merge_heads(tf.matmul(tf.cast(weights, vh.dtype), vh)), weights
    keep = tf.cast(mask, tf.bool)
    weights = tf.nn.softmax(tf.where(keep[:, None, None, :], logits, LARGE_NEGATIVE), axis=-1)
    any_real = tf.cast(tf.reduce_any(keep, axis=-1), vh.dtype)[:, None, None, None]
    context = tf.matmul(tf.cast(weights, vh.dtype), vh) * any_real
    weights = weights * tf.cast(keep, weights.dtype)[:, None, None, :]
    return merge_heads(context), weights


def attention_flops(n_queries: int, n_keys: int, d: int) -> int:
    """FLOPs of the two attention contractions (scores and weighted sum) for one example."""
    return 2 * 2 * n_queries * n_keys * d
