"""The INFNet block (§3.2): Phase 1 (aggregation, eqs. 5-7) then Phase 2 (broadcast, eqs. 8-10).

``aggregate_groups`` are the hub groups updated by Phase 1 (none when ``aggregation=off``);
``broadcast_groups`` are the token groups refined by Phase 2 from their group's (updated) hubs
(none when ``broadcast=off``). A model's last block lists only the groups whose results its heads
read, so no parameter is dead. Every group keeps its shape (width-preserving stacking).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.aggregation import MultiViewAggregation, aggregation_flops
from infnet_tf.layers.bgu import BGU_MODES, BroadcastGatedUnit, bgu_flops
from infnet_tf.layers.pgu import ProxyGatedUnit, pgu_flops

BROADCAST_UNITS = BGU_MODES + ("pgu",)


def make_broadcast_unit(d: int, unit: str, hidden: Sequence[int], name: str):
    if unit == "pgu":
        return ProxyGatedUnit(d, name=name)
    if unit in BGU_MODES:
        return BroadcastGatedUnit(d, mode=unit, hidden=hidden, name=name)
    raise ValueError(f"broadcast_unit: expected one of {'|'.join(BROADCAST_UNITS)}, got {unit!r}")


def broadcast_unit_flops(n_tokens: int, n_hubs: int, d: int, unit: str, hidden: Sequence[int]) -> int:
    return pgu_flops(n_tokens, d) if unit == "pgu" else bgu_flops(n_hubs, d, unit, hidden)


@tf.keras.utils.register_keras_serializable(package="infnet")
class INFNetBlock(tf.keras.layers.Layer):
    """``call(tokens, hubs, masks)`` -> (tokens, hubs[, attention weights per view]).

    tokens: {group: [B, N_g, d]} original tokens (the views); hubs: {group: [B, H_g, d]};
    masks: {group: [B, N_g] bool} for groups with padding. A token group and its mask may have
    batch 1 (shared by the B examples, see :class:`MultiViewAggregation`); Phase 2 (eqs. 8-10)
    broadcasts it against the B examples' hubs, so a refined group has batch B. ``shared`` names the
    hub groups held at batch 1 too (Phase 1 keeps their attention apart).
    """

    def __init__(self, d: int, num_heads: int, views: Sequence[str], aggregate_groups: Sequence[str],
                 broadcast_groups: Sequence[str], fusion: str = "concat_linear",
                 broadcast_unit: str = "affine", bgu_hidden: Sequence[int] = (64,), dropout: float = 0.0,
                 token_norm: bool = False, group_views: Mapping[str, Sequence[str]] | None = None, **kwargs):
        super().__init__(**kwargs)
        if not aggregate_groups and not broadcast_groups:
            raise ValueError("INFNet block: nothing to do (no aggregating and no broadcasting group)")
        self.d, self.num_heads = int(d), int(num_heads)
        self.views, self.aggregate_groups = tuple(views), tuple(aggregate_groups)
        self.broadcast_groups = tuple(broadcast_groups)
        self.fusion, self.broadcast_unit, self.dropout = fusion, broadcast_unit, float(dropout)
        self.bgu_hidden = tuple(int(h) for h in bgu_hidden)
        self.token_norm = bool(token_norm)
        self.group_views = {g: tuple(v) for g, v in (group_views or {}).items()}
        self.aggregation = None
        if self.aggregate_groups:
            self.aggregation = MultiViewAggregation(self.d, self.num_heads, self.aggregate_groups, self.views,
                                                    fusion=fusion, dropout=self.dropout, token_norm=self.token_norm,
                                                    group_views=self.group_views, name="aggregation")
        self.units = {g: make_broadcast_unit(self.d, broadcast_unit, self.bgu_hidden, name=f"broadcast_{g}")
                      for g in self.broadcast_groups}

    @no_autograph
    def call(self, tokens: Mapping, hubs: Mapping, masks: Mapping | None = None, training=False,
             return_attention: bool = False, shared: Sequence[str] = ()):
        hubs, weights = dict(hubs), {}
        if self.aggregation is not None:                                       # Phase 1
            updated = self.aggregation(hubs, tokens, masks, training=training, return_attention=return_attention,
                                       shared=shared)
            if return_attention:
                updated, weights = updated
            hubs.update(updated)
        tokens = dict(tokens)
        for g in self.broadcast_groups:                                        # Phase 2
            tokens[g] = self.units[g](tokens[g], hubs[g])
        return (tokens, hubs, weights) if return_attention else (tokens, hubs)

    def get_config(self):
        return {**super().get_config(), "d": self.d, "num_heads": self.num_heads, "views": list(self.views),
                "aggregate_groups": list(self.aggregate_groups), "broadcast_groups": list(self.broadcast_groups),
                "fusion": self.fusion, "broadcast_unit": self.broadcast_unit,
                "bgu_hidden": list(self.bgu_hidden), "dropout": self.dropout, "token_norm": self.token_norm,
                "group_views": {g: list(v) for g, v in self.group_views.items()}}


def infnet_block_flops(d: int, n_tokens: Mapping[str, int], n_hubs: Mapping[str, int],
                       aggregate_groups: Sequence[str], broadcast_groups: Sequence[str], fusion: str,
                       broadcast_unit: str, bgu_hidden: Sequence[int], num_heads: int | None = None,
                       group_views: Mapping[str, Sequence[str]] | None = None) -> int:
    """FLOPs per example of one block; n_tokens/n_hubs: {group: count}. Pass ``num_heads`` for the
    exact count (it decides whether Phase 1 folds the K/V projections); None counts them projected."""
    total = 0
    if aggregate_groups:
        total += aggregation_flops(d, {g: n_hubs[g] for g in aggregate_groups}, n_tokens, fusion, num_heads,
                                   group_views)
    for g in broadcast_groups:
        total += broadcast_unit_flops(n_tokens[g], n_hubs[g], d, broadcast_unit, bgu_hidden)
    return total
