"""Analytical FLOPs per example of INFNet (convention in :mod:`infnet_tf.models.cost`).

Sum over the parts of :func:`~infnet_tf.models.infnet_plan.make_plan`, with sequences at
``max_len``: tokenizer projections; hub initialisation (eqs. 1, 3); per block, Phase 1
(per view: query projection of all aggregating hubs, key/value projections of the view's tokens,
2 attention contractions; per hub group the fusion Linear) and Phase 2 (BGU MLP on the flattened
hubs, or the PGU's per-token projections); task heads. With ``hubs=off``, per block the
self-attention projections, attention contractions and FFN. Default INFNet is linear in the
sequence length; ``hubs=off`` is quadratic.
"""
from __future__ import annotations

import dataclasses

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.heads import task_head_flops
from infnet_tf.layers.hub_init import categorical_hub_flops, sequence_hub_flops
from infnet_tf.layers.infnet_block import infnet_block_flops
from infnet_tf.layers.masking import masked_mean_flops
from infnet_tf.layers.self_attention import self_attention_flops
from infnet_tf.layers.tokenizers import tokenizer_flops
from infnet_tf.models.config import ModelConfig
from infnet_tf.models.infnet_plan import make_plan


def infnet_flops(layout: FeatureLayout, config: ModelConfig) -> int:
    plan, c, d = make_plan(layout, config), config, config.d
    total = tokenizer_flops(layout, d, c.sequence_combiner)
    if c.hubs:
        if "cat" in plan.n_hubs:
            total += categorical_hub_flops(len(layout.categorical), c.n_cat_hubs, d, c.cat_hub_init, c.cat_hub_hidden)
        if "seq" in plan.n_hubs:
            total += sequence_hub_flops([s.max_len for s in layout.sequences], d, c.seq_hub_init, c.seq_hub_hidden)
        for b in plan.blocks:
            total += infnet_block_flops(d, plan.n_tokens, plan.n_hubs, b.aggregate, b.broadcast, c.fusion,
                                        c.broadcast_unit, c.bgu_hidden, group_views=plan.group_views)
    else:
        n = sum(plan.n_tokens.values())
        for b in plan.blocks:
            total += self_attention_flops(n, b.query_last or n, d, c.ffn_mult)
    if plan.summary_source == "tokens" and "seq" in plan.summaries:   # the sequence tokens' masked mean
        total += masked_mean_flops(plan.n_tokens["seq"], d)
    total += len(layout.tasks) * task_head_flops(plan.readout_tokens * d, c.head_hidden)
    return total


def candidate_flops(layout: FeatureLayout, config: ModelConfig) -> int:
    """FLOPs per candidate of ``score_candidates`` (:mod:`infnet_tf.models.candidates`): the work that
    depends on the candidate; the rest is done once per request. Same convention as
    :func:`infnet_flops` (keys/values counted projected), so ``infnet_flops / candidate_flops`` is the
    speed-up the arithmetic allows for many candidates.

    Shared: the sequences' tokenizer work and hub initialisation; with ``seq_hub_views=seq`` in every
    block the sequence hubs' aggregation, Phase 2 on S and S's key/value projections (which the other
    hubs read too); with ``all`` S's key/value projections of block 1 only (S depends on the candidate
    after block 1's Phase 2); with ``hubs=off`` the tokenizer only.
    """
    plan, c, d = make_plan(layout, config), config, config.d
    full = infnet_flops(layout, config)
    n_seq = plan.n_tokens.get("seq", 0)
    if not n_seq:
        return full
    shared = (tokenizer_flops(layout, d, c.sequence_combiner)
              - tokenizer_flops(dataclasses.replace(layout, sequences=()), d, c.sequence_combiner))
    if not c.hubs:
        return full - shared
    shared += sequence_hub_flops([s.max_len for s in layout.sequences], d, c.seq_hub_init, c.seq_hub_hidden)
    kv = 2 * 2 * n_seq * d * d                                    # S W^k + b^k, S W^v + b^v
    if plan.group_views.get("seq") != ("seq",):
        return full - shared - (kv if plan.blocks[0].aggregate else 0)
    others = {g: n for g, n in plan.n_hubs.items() if g != "seq"}
    for b in plan.blocks:
        whole = infnet_block_flops(d, plan.n_tokens, plan.n_hubs, b.aggregate, b.broadcast, c.fusion,
                                   c.broadcast_unit, c.bgu_hidden, group_views=plan.group_views)
        aggregate = [g for g in b.aggregate if g != "seq"]
        # the other hubs' part; they read S too, so it counts S's projections, which are shared
        per_candidate = infnet_block_flops(d, plan.n_tokens, others, aggregate, [g for g in b.broadcast if g != "seq"],
                                           c.fusion, c.broadcast_unit, c.bgu_hidden, group_views=plan.group_views)
        shared += whole - per_candidate + (kv if aggregate else 0)
    return full - shared
