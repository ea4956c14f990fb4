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

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.heads import task_head_flops
from infnet_tf.layers.hub_init import categorical_hub_flops, sequence_hub_flops
from infnet_tf.layers.infnet_block import infnet_block_flops
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
    total += len(layout.tasks) * task_head_flops(plan.readout_tokens * d, c.head_hidden)
    return total
