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
the fusion Linear.

``group_views`` (beyond the paper; ``ModelConfig.seq_hub_views``) lets a hub group read only some
views, e.g. the sequence hubs only S: groups reading the same views share one query set per view
(a "bundle"), a view's projected keys and values are computed once for all bundles, and the fusion
Linear of a group concatenates only its views. Softmax and LayerNorm statistics are float32.

``token_norm`` (not in the paper; issue 11) applies a LayerNorm to every view's tokens before its
key/value projections and to every hub group before the query projection (pre-norm, as in
pre-LN Transformers): without it the scores Q K^T scale with the raw token norms; in block 1 the task
hubs are the learned task tokens (initialised at std 0.05), so their attention there is uniform
(entropy 1.000 x uniform on a real log at the defaults, ``bench.diagnostics``; bench/REPORT.md round 5).
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
                 fusion: str = "concat_linear", dropout: float = 0.0, token_norm: bool = False,
                 group_views: Mapping[str, Sequence[str]] | None = None, **kwargs):
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion: expected one of {'|'.join(FUSIONS)}, got {fusion!r}")
        if not query_groups or not views:
            raise ValueError("aggregation: needs at least one hub group and one view")
        self.d, self.num_heads, self.fusion, self.dropout = int(d), int(num_heads), fusion, float(dropout)
        self.query_groups, self.views = tuple(query_groups), tuple(views)
        self.group_views = {g: tuple(v) for g, v in (group_views or {}).items() if g in self.query_groups}
        for g, vs in self.group_views.items():
            if not vs or any(v not in self.views for v in vs):
                raise ValueError(f"aggregation: group_views[{g!r}] = {list(vs)} must be a non-empty subset of "
                                 f"the views {list(self.views)}")
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

    def views_of(self, group: str) -> tuple[str, ...]:
        """The views hub group ``group`` reads (all views unless ``group_views`` narrows it)."""
        return self.group_views.get(group, self.views)

    def bundles(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """[(views, groups)]: the hub groups reading the same views share one query set per view."""
        out: dict[tuple[str, ...], list[str]] = {}
        for g in self.query_groups:
            out.setdefault(self.views_of(g), []).append(g)
        return [(views, tuple(groups)) for views, groups in out.items()]

    def view_rows(self, view: str) -> tuple[str, ...]:
        """The hub groups whose queries are the rows of ``view``'s attention weights, in row order."""
        return tuple(g for views, groups in self.bundles() if view in views for g in groups)

    @no_autograph
    def call(self, hubs: Mapping, tokens: Mapping, masks: Mapping | None = None, training=False,
             return_attention: bool = False):
        masks = masks or {}
        kv_in, projected = {}, {}

        def view_tokens(v):
            if v not in kv_in:
                kv_in[v] = self.pre_norm_kv[v](tokens[v]) if self.token_norm else tokens[v]
            return kv_in[v]

        contexts, weights = {g: {} for g in self.query_groups}, {}
        for views, groups in self.bundles():
            sizes = [hubs[g].shape[1] for g in groups]
            q_in = [self.pre_norm_q[g](hubs[g]) if self.token_norm else hubs[g] for g in groups]
            queries = tf.concat(q_in, axis=1) if len(q_in) > 1 else q_in[0]
            for v in views:
                kv = view_tokens(v)
                if use_folded(sum(sizes), kv.shape[1], self.d, self.num_heads):
                    kp, vp = self.k_proj[v], self.v_proj[v]
                    for layer in (kp, vp):
                        if not layer.built:   # build as a Keras call would (scoped variable names)
                            layer(kv[:, :1])
                    z, w = folded_attention(self.q_proj[v](queries), kv, kp.kernel, kp.bias, vp.kernel, vp.bias,
                                            masks.get(v), self.num_heads, return_weights=return_attention)
                else:
                    if v not in projected:   # projected once per view, shared by every query set
                        projected[v] = (self.k_proj[v](kv), self.v_proj[v](kv))
                    z, w = multi_head_attention(self.q_proj[v](queries), *projected[v], masks.get(v),
                                                self.num_heads, return_weights=return_attention)
                for g, z_g in zip(groups, tf.split(z, sizes, axis=1) if len(groups) > 1 else [z]):
                    contexts[g][v] = z_g
                weights.setdefault(v, []).append(w)
        if return_attention:
            weights = {v: tf.concat(w, axis=2) if len(w) > 1 else w[0] for v, w in weights.items()}
        out = {}
        for g in self.query_groups:
            views = [contexts[g][v] for v in self.views_of(g)]
            fused = self.fuse[g](tf.concat(views, axis=-1) if self.fusion == "concat_linear" else tf.add_n(views))
            if self.drop is not None:
                fused = self.drop(fused, training=training)
            out[g] = self.norm[g](hubs[g] + fused)
        return (out, weights) if return_attention else out

    def get_config(self):
        return {**super().get_config(), "d": self.d, "num_heads": self.num_heads,
                "query_groups": list(self.query_groups), "views": list(self.views),
                "fusion": self.fusion, "dropout": self.dropout, "token_norm": self.token_norm,
                "group_views": {g: list(v) for g, v in self.group_views.items()}}


def aggregation_flops(d: int, hubs: Mapping[str, int], views: Mapping[str, int], fusion: str,
                      num_heads: int | None = None, group_views: Mapping[str, Sequence[str]] | None = None) -> int:
    """FLOPs per example: hubs {group: H_g} querying views {view: N_v} (``group_views``: the views a
    group reads when not all). ``num_heads`` decides whether the layer projects or folds the
    keys/values (:func:`~infnet_tf.layers.attention.use_folded`); None counts the projected form.
    A view's projected keys/values are counted once, however many query sets read them."""
    group_views = group_views or {}
    bundles: dict[tuple[str, ...], int] = {}
    for g, h in hubs.items():
        key = tuple(group_views.get(g, tuple(views)))
        bundles[key] = bundles.get(key, 0) + h
    total, projected = 0, set()
    for read, n_q in bundles.items():
        for v in read:
            n_v = views[v]
            total += 2 * n_q * d * d
            if num_heads is not None and use_folded(n_q, n_v, d, num_heads):
                total += folded_attention_flops(n_q, n_v, d, num_heads)
            else:
                total += attention_flops(n_q, n_v, d) + (0 if v in projected else 2 * 2 * n_v * d * d)
                projected.add(v)
    for g, h in hubs.items():
        fuse_in = d * len(group_views.get(g, tuple(views))) if fusion == "concat_linear" else d
        total += 2 * h * fuse_in * d
    return total
