"""Phase 1, multi-view global aggregation (eqs. 5-7).

Every hub group g queries every source view v (C, S, T) *separately* with multi-head cross-
attention (eq. 6), the views are fused and added to the hub stream (eq. 7)::

    Z_{g,v}  = CA(X~_g W^q_v, X_v W^k_v, X_v W^v_v)                          (eqs. 5-6)
    X~_g    <- LN(X~_g + Linear_g(Concat_v Z_{g,v}))      fusion="concat_linear"  (eq. 7)
    X~_g    <- LN(X~_g + Linear_g(Sum_v Z_{g,v}))         fusion="sum"

Keys and values of a view are projected once per block and shared by all hub groups: the hubs of
all groups are concatenated into one query set per view, so a block costs
O(N_hub · N_in · d + N_in · d²). With few queries (e.g. a last block where only the task hubs
aggregate; the rule is ``attention.use_folded``) a view's keys and values are not projected at
all: the projections are folded into the queries and the context (``attention.folded_attention``,
the same function of the same weights), so that view costs O(h · N_hub · N_in · d). Padded keys get exactly zero weight (``masks``); a view whose
keys are all padding contributes a zero context. The attention output projection is folded into
the fusion Linear. Softmax and LayerNorm statistics are float32.

``token_norm`` (not in the paper; issue 11) applies a LayerNorm to every view's tokens before its
key/value projections and to every hub group before the query projection (pre-norm, as in
pre-LN Transformers): without it the scores Q K^T scale with the raw embedding norms, which start
tiny (embedding init U(-0.05, 0.05)), so the hubs' attention stays near uniform early in training.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.attention import (attention_flops, folded_attention, folded_attention_flops,
                                        multi_head_attention, use_folded)

FUSIONS = ("concat_linear", "sum")


@tf.keras.utils.register_keras_serializable(package="infnet")
class MultiViewAggregation(tf.keras.layers.Layer):
    """``call(hubs, tokens, masks)`` -> updated hubs (and attention weights per view if asked).

    hubs: {group: [B, H_g, d]} for every group in ``query_groups``; tokens: {view: [B, N_v, d]}
    for every view in ``views``; masks: {view: [B, N_v] bool} for views with padding. A view (and
    its mask) may have batch 1 against hubs of batch B — one user's sequence tokens scored against
    B candidates (:mod:`infnet_tf.models.candidates`): its keys and values (or, folded, its raw
    tokens) are then computed once and the attention contractions broadcast them over the B
    examples' queries, the same sums as against B copies.
    """

    def __init__(self, d: int, num_heads: int, query_groups: Sequence[str], views: Sequence[str],
                 fusion: str = "concat_linear", dropout: float = 0.0, token_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion: expected one of {'|'.join(FUSIONS)}, got {fusion!r}")
        if not query_groups or not views:
            raise ValueError("aggregation: needs at least one hub group and one view")
        self.d, self.num_heads, self.fusion, self.dropout = int(d), int(num_heads), fusion, float(dropout)
        self.query_groups, self.views = tuple(query_groups), tuple(views)
        dense = tf.keras.layers.Dense
        self.q_proj = {v: dense(self.d, name=f"q_{v}") for v in self.views}
        self.k_proj = {v: dense(self.d, name=f"k_{v}") for v in self.views}
        self.v_proj = {v: dense(self.d, name=f"v_{v}") for v in self.views}
        self.fuse = {g: dense(self.d, name=f"fuse_{g}") for g in self.query_groups}
        self.norm = {g: tf.keras.layers.LayerNormalization(name=f"ln_{g}") for g in self.query_groups}
        self.drop = tf.keras.layers.Dropout(self.dropout) if self.dropout else None
        self.token_norm = bool(token_norm)
        self.pre_norm_kv = self.pre_norm_q = {}
        if self.token_norm:
            self.pre_norm_kv = {v: tf.keras.layers.LayerNormalization(name=f"pre_ln_{v}") for v in self.views}
            self.pre_norm_q = {g: tf.keras.layers.LayerNormalization(name=f"pre_ln_q_{g}") for g in self.query_groups}

    @no_autograph
    def call(self, hubs: Mapping, tokens: Mapping, masks: Mapping | None = None, training=False,
             return_attention: bool = False):
        masks = masks or {}
        sizes = [hubs[g].shape[1] for g in self.query_groups]
        q_in = [self.pre_norm_q[g](hubs[g]) if self.token_norm else hubs[g] for g in self.query_groups]
        queries = tf.concat(q_in, axis=1) if len(q_in) > 1 else q_in[0]
        contexts, weights = {}, {}
        for v in self.views:
            kv = self.pre_norm_kv[v](tokens[v]) if self.token_norm else tokens[v]
            if use_folded(sum(sizes), kv.shape[1], self.d, self.num_heads):
                kp, vp = self.k_proj[v], self.v_proj[v]
                for layer in (kp, vp):
                    if not layer.built:   # build as a Keras call would (scoped variable names)
                        layer(kv[:, :1])
                z, w = folded_attention(self.q_proj[v](queries), kv, kp.kernel, kp.bias, vp.kernel, vp.bias,
                                        masks.get(v), self.num_heads, return_weights=return_attention)
            else:
                z, w = multi_head_attention(self.q_proj[v](queries), self.k_proj[v](kv),
                                            self.v_proj[v](kv), masks.get(v), self.num_heads,
                                            return_weights=return_attention)
            contexts[v] = tf.split(z, sizes, axis=1)
            weights[v] = w
        out = {}
        for i, g in enumerate(self.query_groups):
            views = [contexts[v][i] for v in self.views]
            fused = self.fuse[g](tf.concat(views, axis=-1) if self.fusion == "concat_linear" else tf.add_n(views))
            if self.drop is not None:
                fused = self.drop(fused, training=training)
            out[g] = self.norm[g](hubs[g] + fused)
        return (out, weights) if return_attention else out

    def get_config(self):
        return {**super().get_config(), "d": self.d, "num_heads": self.num_heads,
                "query_groups": list(self.query_groups), "views": list(self.views),
                "fusion": self.fusion, "dropout": self.dropout, "token_norm": self.token_norm}


def aggregation_flops(d: int, hubs: Mapping[str, int], views: Mapping[str, int], fusion: str,
                      num_heads: int | None = None) -> int:
    """FLOPs per example: hubs {group: H_g} querying views {view: N_v}. ``num_heads`` decides
    whether the layer projects or folds the keys/values (:func:`~infnet_tf.layers.attention.use_folded`);
    None counts the projected form."""
    n_q = sum(hubs.values())
    total = 0
    for n_v in views.values():
        total += 2 * n_q * d * d
        if num_heads is not None and use_folded(n_q, n_v, d, num_heads):
            total += folded_attention_flops(n_q, n_v, d, num_heads)
        else:
            total += 2 * 2 * n_v * d * d + attention_flops(n_q, n_v, d)
    fuse_in = d * len(views) if fusion == "concat_linear" else d
    total += sum(2 * h * fuse_in * d for h in hubs.values())
    return total
