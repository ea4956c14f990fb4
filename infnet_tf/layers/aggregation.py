"""Phase 1, multi-view global aggregation (eqs. 5-7).

Every hub group g queries every source view v (C, S, T) *separately* with multi-head cross-
attention (eq. 6), the views are fused and added to the hub stream (eq. 7)::

    Z_{g,v}  = CA(X~_g W^q_v, X_v W^k_v, X_v W^v_v)                          (eqs. 5-6)
    X~_g    <- LN(X~_g + Linear_g(Concat_v Z_{g,v}))      fusion="concat_linear"  (eq. 7)
    X~_g    <- LN(X~_g + Linear_g(Sum_v Z_{g,v}))         fusion="sum"

Keys and values of a view are projected once per block and shared by all hub groups: the hubs of
all groups are concatenated into one query set per view, so a block costs
O(N_hub · N_in · d + N_in · d²). With few queries (every view at one head, the default; the rule is
``attention.use_folded``) a view's keys and values are not projected at all: the projections are
folded into the queries and the context (``attention.key_fold`` / ``attend_folded`` /
``value_unfold``, the same function of the same weights), so that view costs O(h · N_hub · N_in · d).
The folds are products of weights, computed once per call (no batch dimension) and multiplied
into the neighbouring Linears: a folded view's queries are one matmul of the hubs with
W^q_v key_fold(W^k_v), and its context meets the fusion Linear as one matmul with
value_unfold(W^v_v) W^fuse_{g,v} (bias b^v_v W^fuse_{g,v}), so per view the large [B·N_hub, d]
tensors see one query-side and one fusion-side matmul instead of a query projection, a fold, a value
map and the fusion rows. The key bias shifts all of a query's logits by the same q · b^k and
cancels in the softmax; the folded form leaves it out (its gradient is exactly zero). Padded keys get
exactly zero weight (``masks``); a view whose keys are all padding contributes a zero context (its
mixed tokens and its value bias term are zeroed for that example).

``group_views`` (beyond the paper; ``ModelConfig.seq_hub_views`` and ``cat_hub_views``) lets a hub group
read only some views, e.g. the sequence hubs only S: a view's query set is then the hubs of the groups that read
it (S: the categorical, task and sequence hubs; C and T: the first two), one attention per view
(the projections are per view, so this is the same function as attending group by group), and
the fusion Linear of a group concatenates only its views. Softmax and LayerNorm statistics are float32.

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
from infnet_tf.layers.attention import (any_real, attend_folded, folded_view_flops, key_bias_anchor, key_fold,
                                        linear, multi_head_attention, projected_view_flops, use_folded,
                                        value_unfold)

FUSIONS = ("concat_linear", "sum")


@tf.keras.utils.register_keras_serializable(package="infnet")
class MultiViewAggregation(tf.keras.layers.Layer):
    """``call(hubs, tokens, masks)`` -> updated hubs (and attention weights per view if asked).

    hubs: {group: [B, H_g, d]} for every group in ``query_groups``; tokens: {view: [B, N_v, d]}
    for every view in ``views``; masks: {view: [B, N_v] bool} for views with padding. A view (and
    its mask) may have batch 1 against hubs of batch B — one user's sequence tokens scored against
    B candidates (:mod:`infnet_tf.models.candidates`): its keys and values (or, folded, its raw
    tokens) are then computed once and the attention contractions broadcast them over the B
    examples' queries, the same sums as against B copies. Hub groups held at batch 1 the same way
    are named in ``shared``: they attend in a query set of their own (not concatenated with the
    batch-B groups' hubs), so their attention and update stay at batch 1.
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
        """[(views, groups)]: the hub groups by the views they read, in the order the layer creates
        its variables; a view's query set lists their groups in this order (:meth:`view_rows`)."""
        out: dict[tuple[str, ...], list[str]] = {}
        for g in self.query_groups:
            out.setdefault(self.views_of(g), []).append(g)
        return [(views, tuple(groups)) for views, groups in out.items()]

    def view_rows(self, view: str) -> tuple[str, ...]:
        """The hub groups whose queries are the rows of ``view``'s attention weights, in row order."""
        return tuple(g for views, groups in self.bundles() if view in views for g in groups)

    def _build_dense(self, hubs, tokens, bundles) -> None:
        """Build the projections and fusion Linears as Keras calls would (scoped variable names), on
        one-token slices, in the order the layer has always created them (per bundle and view K, V,
        Q, then the fusions by group), so a seed gives the same initial weights; the call reads
        their weights directly (:meth:`call`)."""
        for views, groups in bundles:
            for v in views:
                for layer, x in ((self.k_proj[v], tokens[v]), (self.v_proj[v], tokens[v]),
                                 (self.q_proj[v], hubs[groups[0]])):
                    if not layer.built:
                        layer(x[:, :1])
        for g in self.query_groups:
            if not self.fuse[g].built:
                width = self.d * (len(self.views_of(g)) if self.fusion == "concat_linear" else 1)
                self.fuse[g](tf.zeros([1, 1, width], self.compute_dtype))

    def _fuse_slice(self, group: str, index: int):
        """The rows of ``fuse[group]``'s kernel that multiply view number ``index`` of the group."""
        kernel = tf.cast(self.fuse[group].kernel, tf.float32)
        return kernel[index * self.d:(index + 1) * self.d] if self.fusion == "concat_linear" else kernel

    def _attend_view(self, v: str, queries, kv, mask, return_attention: bool, projected: dict):
        """(context, weights or None, folded?) of the query set ``queries`` attending to view ``v``
        (``projected``: a view's projected keys and values, computed once per call)."""
        h, d = self.num_heads, self.d
        dtype, is_folded = queries.dtype, use_folded(queries.shape[1], kv.shape[1], d, h)
        # the query side: a folded view's queries in its raw tokens' space (eq. 5 with the K
        # projection folded in) are one matmul of the hubs with W^q key_fold(W^k)
        wq, bq = tf.cast(self.q_proj[v].kernel, tf.float32), tf.cast(self.q_proj[v].bias, tf.float32)
        if is_folded:
            fold = key_fold(self.k_proj[v].kernel, h) + key_bias_anchor(self.k_proj[v].bias)
            wq, bq = tf.matmul(wq, fold), tf.linalg.matvec(fold, bq, transpose_a=True)
        q = linear(queries, tf.cast(wq, dtype), tf.cast(bq, dtype))
        if is_folded:
            z, w = attend_folded(q, kv, mask, h, return_weights=return_attention)
        else:
            if v not in projected:
                projected[v] = (self.k_proj[v](kv), self.v_proj[v](kv))
            z, w = multi_head_attention(q, *projected[v], mask, h, return_weights=return_attention)
        return z, w, is_folded

    @no_autograph
    def call(self, hubs: Mapping, tokens: Mapping, masks: Mapping | None = None, training=False,
             return_attention: bool = False, shared: Sequence[str] = ()):
        masks = masks or {}
        h = self.num_heads
        kv_in = {}

        def view_tokens(v):
            if v not in kv_in:
                kv_in[v] = self.pre_norm_kv[v](tokens[v]) if self.token_norm else tokens[v]
            return kv_in[v]

        bundles = self.bundles()
        q_in = {g: self.pre_norm_q[g](hubs[g]) if self.token_norm else hubs[g]
                for _, groups in bundles for g in groups}
        self._build_dense(q_in, {v: view_tokens(v) for views, _ in bundles for v in views}, bundles)

        # one query set per view: the hub groups reading view v share v's projections, so their hubs
        # are one attention over v (rows in view_rows order); groups held at batch 1 (``shared``)
        # attend in a query set of their own
        pieces, weights, concatenated, projected = {g: {} for g in self.query_groups}, {}, {}, {}
        for v in self.views:
            rows = self.view_rows(v)
            for query_set in (tuple(g for g in rows if g not in shared), tuple(g for g in rows if g in shared)):
                if not query_set:
                    continue
                if query_set not in concatenated:
                    concatenated[query_set] = (tf.concat([q_in[g] for g in query_set], axis=1)
                                               if len(query_set) > 1 else q_in[query_set[0]])
                z, w, is_folded = self._attend_view(v, concatenated[query_set], view_tokens(v), masks.get(v),
                                                    return_attention, projected)
                sizes = [hubs[g].shape[1] for g in query_set]
                for g, z_g in zip(query_set, tf.split(z, sizes, axis=1) if len(query_set) > 1 else [z]):
                    pieces[g][v] = (z_g, is_folded)
                weights.setdefault(v, []).append(w)
        if return_attention:
            weights = {v: tf.concat(w, axis=2) if len(w) > 1 else w[0] for v, w in weights.items()}
        out = {}
        for g in self.query_groups:
            # eq. 7's fusion Linear over the views' contexts, each folded view's value projection
            # multiplied into its rows of the fusion kernel: (m U_v + b^v) W_v = m (U_v W_v) + b^v W_v
            kernels, bias = [], tf.cast(self.fuse[g].bias, tf.float32)
            shift = []                     # b^v W_v of masked folded views: zero where all keys are padding
            parts = [(v, *pieces[g][v]) for v in self.views_of(g)]
            for i, (v, z, is_folded) in enumerate(parts):
                rows = self._fuse_slice(g, i)
                if not is_folded:
                    kernels.append(rows)
                    continue
                kernels.append(tf.matmul(value_unfold(self.v_proj[v].kernel, h), rows))
                term = tf.linalg.matvec(rows, tf.cast(self.v_proj[v].bias, tf.float32), transpose_a=True)
                if v in masks:
                    shift.append(any_real(masks[v], tf.float32) * term)
                else:
                    bias = bias + term
            dtype = parts[0][1].dtype
            terms = [linear(z, tf.cast(k, dtype)) for (_, z, _), k in zip(parts, kernels)]
            fused = tf.nn.bias_add(tf.add_n(terms) if len(terms) > 1 else terms[0], tf.cast(bias, dtype))
            for term in shift:
                fused += tf.cast(term, dtype)
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
    group reads when not all).

    ``num_heads=None`` counts the paper's projected form (query, key and value projections, the two
    attention contractions, the fusion Linear; a view's keys/values once). With ``num_heads``, what
    :class:`MultiViewAggregation` runs: per view (its query set: the hubs of every group reading it) the
    query-side matmul (width h·d for a folded view, d for a projected one), the contractions (folded:
    h of them at width d over the raw tokens; projected: over the projected keys/values, projected
    once per view) and the view's rows of each group's fusion Linear (a folded view's value map
    multiplied in). Products of weights (per batch, not per example) are not counted."""
    group_views = group_views or {}
    total = 0
    for v, n_v in views.items():     # one query set per view: the hubs of every group reading it
        n_q = sum(h for g, h in hubs.items() if v in group_views.get(g, tuple(views)))
        if not n_q:
            continue
        if num_heads is not None and use_folded(n_q, n_v, d, num_heads):
            total += folded_view_flops(n_q, n_v, d, num_heads)
        else:
            total += projected_view_flops(n_q, n_v, d)
    if num_heads is None and fusion == "sum":    # the paper's form: one Linear on the summed contexts
        for g, h in hubs.items():
            total -= (len(group_views.get(g, tuple(views))) - 1) * 2 * h * d * d
    return total
