"""Masked multi-head scaled dot-product attention (eq. 5), shared by cross- and self-attention.

CA(Q, K, V) = softmax(Q K^T / sqrt(d_h)) V per head. The logits are taken to float32 before the
mask and the softmax whatever the compute dtype; padded keys get exactly zero weight, and a query
whose keys are all padding gets all-zero weights (so a zero context), never NaN. Projections are
the caller's: :func:`multi_head_attention` only splits heads, attends and merges heads.

Without returned weights (training, serving) the softmax and both contractions run as one
custom-gradient function (:func:`attend`) whose backward pass uses
sum_k dA_k A_k = dC · C (the FlashAttention identity): the softmax gradient becomes
A ⊙ (dA - rowsum(dC ⊙ C)), a reduction over the small context instead of an extra multiply and
reduction over the [B, h, Q, K] weights.

Padding is an additive float32 bias on the logits (0 for a real key, ``LARGE_NEGATIVE`` for a padded
one, built on the small [B, K] mask and broadcast), not a select over the [B, h, Q, K] logits: the
same weights (exp(-1e9 - max) is exactly 0 in float32) with no select and no select-gradient
over the largest tensors of the block.

:func:`folded_attention` computes the same CA(Q, X W^k + b^k, X W^v + b^v) for a small query set
without projecting the keys and values: per head h, q_h (x W^k_h + b^k_h)^T = (q_h W^k_h^T) x^T
+ q_h b^k_h, and sum_k a_k (x_k W^v_h + b^v_h) = (sum_k a_k x_k) W^v_h + b^v_h (the weights sum to
1). The per-head query/context maps are one matmul each with a block-diagonal matrix, the
attention contractions run at width d over the raw tokens X [B, K, d] in their natural layout (no
head transposes of the large tensors). It pays h times the attention contractions to save the
two K/V projections of all tokens, and runs at a higher FLOP rate (:func:`use_folded` decides from
the exact counts; at one head folding always costs less). Its steps are functions
of their own: :func:`key_fold` (the query-side matrix, weights only), :func:`attend_folded` (the
contractions over the raw tokens) and :func:`value_unfold` (the context-side matrix, weights only),
so a caller can multiply the two weight matrices into its neighbouring Linears once per step
(:class:`~infnet_tf.layers.aggregation.MultiViewAggregation`). The key bias b^k only adds
q_h · b^k_h to every logit of a query, a constant that cancels in the softmax: the folded form
leaves it out (:func:`key_bias_anchor` keeps b^k in the graph with its exact, zero gradient).
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


def multi_head_attention(q, k, v, mask=None, num_heads: int = 1, return_weights: bool = True):
    """Attend projected queries ``q`` [B, Q, d] to keys/values ``k``, ``v`` [B, K, d].

    Returns (context [B, Q, d] in the compute dtype of ``v``, float32 weights [B, heads, Q, K], or
    None with ``return_weights=False``: no extra pass over the weights to zero padded keys).
    The 1/sqrt(d_h) scale is applied to the (small) queries; with a mask, the context of a query
    whose keys are all padding is zeroed on the small context tensor rather than by a second pass
    over the [B, h, Q, K] weights (the returned weights are exactly zero there too).
    """
    d = q.shape[-1]
    if d % num_heads:
        raise ValueError(f"attention: num_heads={num_heads} must divide the width {d}")
    q = q * tf.cast(1.0 / math.sqrt(d // num_heads), q.dtype)
    qh, kh, vh = (split_heads(t, num_heads) for t in (q, k, v))
    if mask is None and not return_weights:
        return merge_heads(attend(qh, kh, vh)), None
    if mask is None:
        weights = tf.nn.softmax(tf.cast(tf.matmul(qh, kh, transpose_b=True), tf.float32), axis=-1)
        return merge_heads(tf.matmul(tf.cast(weights, vh.dtype), vh)), weights
    keep = tf.cast(mask, tf.bool)
    any_real = tf.cast(tf.reduce_any(keep, axis=-1), vh.dtype)[:, None, None, None]
    if not return_weights:
        return merge_heads(attend(qh, kh, vh, mask_bias(keep)[:, None, None, :]) * any_real), None
    logits = tf.cast(tf.matmul(qh, kh, transpose_b=True), tf.float32)
    weights = tf.nn.softmax(logits + mask_bias(keep)[:, None, None, :], axis=-1)
    context = tf.matmul(tf.cast(weights, vh.dtype), vh) * any_real
    weights = weights * tf.cast(keep, weights.dtype)[:, None, None, :]
    return merge_heads(context), weights


def _attend_forward(q, k, v, bias):
    logits = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32)
    if bias is not None:
        logits += bias
    weights = tf.nn.softmax(logits, axis=-1)
    wc = tf.cast(weights, v.dtype)
    return weights, wc, tf.matmul(wc, v)


def _attend_backward(dc, q, k, v, weights, wc, context):
    """(dq, dk, dv, float32 d logits)."""
    dv = tf.matmul(wc, dc, transpose_a=True)
    dw = tf.cast(tf.matmul(dc, v, transpose_b=True), tf.float32)
    # softmax gradient A ⊙ (dA - sum_k dA_k A_k) with sum_k dA_k A_k = dC · C
    row = tf.reduce_sum(tf.cast(dc, tf.float32) * tf.cast(context, tf.float32), axis=-1, keepdims=True)
    dlogits = weights * (dw - row)
    dl = tf.cast(dlogits, q.dtype)
    return tf.matmul(dl, k), tf.matmul(dl, q, transpose_a=True), dv, dlogits


@tf.custom_gradient
def _attend_bias(q, k, v, bias):
    weights, wc, context = _attend_forward(q, k, v, bias)

    def grad(dc):
        dq, dk, dv, dlogits = _attend_backward(dc, q, k, v, weights, wc, context)
        # the bias' gradient: d logits summed over its broadcast axes (pruned from the graph when
        # nothing needs it, e.g. a padding mask)
        axes = [i for i, n in enumerate(bias.shape) if n == 1]
        dbias = tf.reduce_sum(dlogits, axis=axes, keepdims=True) if axes else dlogits
        return dq, dk, dv, dbias
    return context, grad


@tf.custom_gradient
def _attend_no_bias(q, k, v):
    weights, wc, context = _attend_forward(q, k, v, None)

    def grad(dc):
        return _attend_backward(dc, q, k, v, weights, wc, context)[:3]
    return context, grad


def attend(q, k, v, bias=None):
    """softmax(q k^T + bias) v over the last two axes (any leading batch axes), logits and softmax in
    float32; q is already scaled, ``bias`` a float32 additive term of the logits' rank that
    broadcasts to them (a padding mask, a per-query shift). One custom-gradient function (see the
    module docstring)."""
    return _attend_no_bias(q, k, v) if bias is None else _attend_bias(q, k, v, bias)


def mask_bias(keep):
    """[B, K] bool -> float32 [B, K]: 0 for a real key, LARGE_NEGATIVE for a padded one."""
    return (1.0 - tf.cast(keep, tf.float32)) * LARGE_NEGATIVE


# Folding runs at about twice the FLOP rate of projecting on our CPUs (measured at B=1024, d=32,
# h=4, Q=7, K=70: equal FLOPs, 0.46x the time: no head transposes and bias passes over the
# [B, K, d] tokens, contractions at width d instead of d/h), so it is chosen up to this FLOP ratio.
FOLD_FLOP_RATIO = 1.5


def use_folded(n_queries: int, n_keys: int | None, d: int, num_heads: int) -> bool:
    """Whether a view of a :class:`~infnet_tf.layers.aggregation.MultiViewAggregation` attends to its
    raw tokens with the K/V maps folded into the queries and the fusion Linear rather than projecting
    its keys and values: when :func:`folded_view_flops` is at most ``FOLD_FLOP_RATIO`` times
    :func:`projected_view_flops` (keys and values projected for this view). At one head folding never
    costs more (it saves the K/V projections); with ``n_keys`` unknown, the limit of many keys:
    h · Q <= ratio · (d + Q)."""
    if n_keys is None:
        return num_heads * n_queries <= FOLD_FLOP_RATIO * (d + n_queries)
    return (folded_view_flops(n_queries, n_keys, d, num_heads)
            <= FOLD_FLOP_RATIO * projected_view_flops(n_queries, n_keys, d))


def folded_view_flops(n_queries: int, n_keys: int, d: int, num_heads: int) -> int:
    """FLOPs per example of a folded view in the aggregation: the query side (hubs x W^q key_fold, width
    h·d), h attention contractions pairs at width d over the raw tokens, the fusion rows (width h·d:
    value_unfold W^fuse multiplied in)."""
    return 2 * 2 * n_queries * d * num_heads * d + 2 * 2 * num_heads * n_queries * n_keys * d


def projected_view_flops(n_queries: int, n_keys: int, d: int, project_kv: bool = True) -> int:
    """FLOPs per example of a projected view in the aggregation: the query projection, the key/value
    projections (``project_kv``: not when another query set of the block projected them already),
    the attention contractions and the view's rows of the fusion Linear."""
    kv = 2 * 2 * n_keys * d * d if project_kv else 0
    return 2 * 2 * n_queries * d * d + kv + attention_flops(n_queries, n_keys, d)


def _head_blocks(d: int, num_heads: int):
    """[d, h·d] 0/1: entry ((h, e), (h', j)) is 1 iff h == h' (rows are the d = h·d_h head columns)."""
    dh = d // num_heads
    rows = tf.range(d) // dh
    cols = tf.range(num_heads * d) // d
    return tf.cast(tf.equal(rows[:, None], cols[None, :]), tf.float32)


def key_fold(k_kernel, num_heads: int):
    """[d, h·d] float32 matrix F such that, for projected queries q [.., d], q F holds per head h
    (q_h W^k_h^T) / sqrt(d_h), head-major: head h's scaled query in the space of the raw tokens, so
    that its logits against raw tokens x are those against the projected keys x W^k + b^k up to
    q_h · b^k_h, a constant over the keys that cancels in the softmax (left out; see
    :func:`key_bias_anchor`).

    A function of the weights only (no batch dimension), so a caller can multiply it into the query
    projection once per step: (X W^q + b^q) F = X (W^q F) + b^q F (what :class:`MultiViewAggregation`
    does)."""
    d = k_kernel.shape[0]
    if d % num_heads:
        raise ValueError(f"attention: num_heads={num_heads} must divide the width {d}")
    wk = tf.transpose(tf.cast(k_kernel, tf.float32))
    if num_heads > 1:                       # one head: the block-diagonal mask is all ones
        wk = tf.tile(wk, [1, num_heads]) * _head_blocks(d, num_heads)                       # [d, h·d]
    return wk * (1.0 / math.sqrt(d // num_heads))


def key_bias_anchor(k_bias):
    """0 · sum(b^k), float32: the key bias shifts every logit of a query by the same q · b^k, so the
    attention does not depend on it and its exact gradient is zero. Folded attention leaves the term
    out; adding this zero to a tensor it computes keeps b^k in the graph with that (exact, zero)
    gradient, as in the projected form, instead of none."""
    return 0.0 * tf.reduce_sum(tf.cast(k_bias, tf.float32))


def value_unfold(v_kernel, num_heads: int):
    """[h·d, d] float32 matrix U: for mixed tokens m [.., h·d] (per head h, sum_k a_{h,k} x_k, head-major),
    m U = sum_h (sum_k a_{h,k} x_k) W^v_h with the heads merged; a function of the weights only (a
    caller may multiply it into the next Linear once per step)."""
    d = v_kernel.shape[0]
    wv = tf.cast(v_kernel, tf.float32)
    if num_heads == 1:                      # the block-diagonal mask is all ones
        return wv
    return tf.tile(wv, [num_heads, 1]) * tf.transpose(_head_blocks(d, num_heads))


def any_real(mask, dtype):
    """[B, 1, 1] in ``dtype``: 1 where a row of ``mask`` [B, K] has a real key, 0 where all are padding."""
    return tf.cast(tf.reduce_any(tf.cast(mask, tf.bool), axis=-1), dtype)[:, None, None]


def attend_folded(q, x, mask=None, num_heads: int = 1, return_weights: bool = True):
    """The attention of folded queries over raw tokens: ``q`` [B, Q, h·d] (projected queries times
    :func:`key_fold`), ``x`` [B or 1, K, d] the view's raw tokens.

    Returns (mixed [B, Q, h·d], per head sum_k a_{h,k} x_k, head-major, zero for a query whose keys
    are all padding; float32 weights [B, heads, Q, K] or None).
    """
    h, d = num_heads, x.shape[-1]
    dtype = q.dtype
    batch, n_q = tf.shape(q)[0], q.shape[1]
    if h > 1:
        q = tf.reshape(tf.transpose(tf.reshape(q, [batch, n_q, h, d]), [0, 2, 1, 3]), [batch, h * n_q, d])
    bias = None if mask is None else mask_bias(tf.cast(mask, tf.bool))[:, None, :]
    if return_weights:
        logits = tf.cast(tf.matmul(q, x, transpose_b=True), tf.float32)                     # [B, h·Q, K]
        weights = tf.nn.softmax(logits if bias is None else logits + bias, axis=-1)
        mixed = tf.matmul(tf.cast(weights, x.dtype), x)                                     # [B, h·Q, d]
    else:
        weights, mixed = None, attend(q, x, x, bias)
    if h > 1:
        mixed = tf.reshape(tf.transpose(tf.reshape(mixed, [batch, h, n_q, d]), [0, 2, 1, 3]), [batch, n_q, h * d])
    if mask is not None:
        mixed *= any_real(mask, dtype)
    if weights is not None:
        weights = tf.reshape(weights, [batch, h, n_q, -1])
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)[:, None, None, :]
    return mixed, weights


def folded_attention(q, x, k_kernel, k_bias, v_kernel, v_bias, mask=None, num_heads: int = 1,
                     return_weights: bool = True):
    """CA(q, x W^k + b^k, x W^v + b^v) without projecting ``x`` (see the module docstring).

    q [B, Q, d] projected queries, x [B, K, d] raw tokens, kernels [d, d] and biases [d] (cast to
    q's dtype). Returns (context [B, Q, d], float32 weights [B, heads, Q, K]) equal to
    ``multi_head_attention(q, x W^k + b^k, x W^v + b^v, mask, num_heads)`` (weights None with
    ``return_weights=False``). :func:`key_fold`, :func:`attend_folded` and :func:`value_unfold`
    are its three steps.
    """
    dtype = q.dtype
    fold = key_fold(k_kernel, num_heads) + key_bias_anchor(k_bias)
    mixed, weights = attend_folded(linear(q, tf.cast(fold, dtype)), x, mask, num_heads, return_weights)
    context = linear(mixed, tf.cast(value_unfold(v_kernel, num_heads), dtype), tf.cast(v_bias, dtype))
    if mask is not None:
        context *= any_real(mask, dtype)
    return context, weights


def linear(x, kernel, bias=None):
    """x [B, N, k] @ kernel [k, m] (+ bias [m]) -> [B, N, m], as one 2-D matmul (static shape kept)."""
    y = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), kernel)
    if bias is not None:
        y = tf.nn.bias_add(y, bias)
    y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], [kernel.shape[-1]]], axis=0))
    y.set_shape(x.shape[:-1].concatenate([kernel.shape[-1]]))
    return y


def attention_flops(n_queries: int, n_keys: int, d: int) -> int:
    """FLOPs of the two attention contractions (scores and weighted sum) for one example."""
    return 2 * 2 * n_queries * n_keys * d
