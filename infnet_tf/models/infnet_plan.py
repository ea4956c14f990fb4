"""What an INFNet configuration computes: groups, hub counts, per-block work and head inputs.

Pure Python, shared by the model (:mod:`infnet_tf.models.infnet`) and its analytical FLOPs count,
so the two can never disagree. Groups are ``cat`` (C), ``seq`` (S, all behaviour types
concatenated) and ``task`` (T), in that order.

Head inputs ("readout"), per task i, the concatenation of:

* the task piece -- t_i^(L) (eq. 11) when task tokens are on and broadcast is on; with
  ``broadcast=off`` (latent only) the task-specific hub t~_i^(L) when there is one;
* group summaries: with ``readout=task_token_hubs`` the mean of every hub group after the last
  block, with ``task_token_flat_hubs`` all of its hubs concatenated (the last block then aggregates
  every hub group); otherwise only when an ablation cuts
  the path from the features to t_i:
  ``aggregation=off`` (late fusion: masked means of the refined C and S tokens),
  ``broadcast=off`` (latent only: means of every hub group), ``task_tokens=off`` (shared bottom:
  means of every hub group; with ``hubs=off`` masked means of the C and S tokens).

With ``seq_hub_views=seq`` the sequence hubs read only S in every block (``group_views``): then no
tensor of the sequence path (S, its hubs) depends on the other groups, in particular not on the
candidate (what :mod:`infnet_tf.models.candidates` computes once per request). With
``cat_hub_views=cat_task`` the categorical hubs read only C and T: per candidate, only the task hubs
then attend over S.

The last block computes only what the heads read (e.g. by default only the task hubs aggregate
and only T is broadcast to), so every parameter receives a gradient.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.hub_init import sequence_hub_count
from infnet_tf.models.config import ModelConfig

GROUPS = ("cat", "seq", "task")


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    aggregate: tuple[str, ...] = ()      # hub groups updated by Phase 1 (hubs=on)
    broadcast: tuple[str, ...] = ()      # token groups refined by Phase 2 (hubs=on)
    query_last: Optional[int] = None     # hubs=off: only the last n tokens are queries


@dataclasses.dataclass(frozen=True)
class INFNetPlan:
    token_groups: tuple[str, ...]        # groups with original tokens (the attention views)
    n_tokens: dict                       # group -> number of original tokens (sequences at max_len)
    hub_groups: tuple[str, ...]          # groups with hubs (empty when hubs=off)
    n_hubs: dict                         # group -> number of hubs
    task_hub_specific: bool              # task hubs include T (eq. 4)
    task_hub_shared: bool                # task hubs include the shared tokens
    blocks: tuple[BlockPlan, ...]
    task_piece: Optional[str]            # "token" | "hub" | None
    summaries: tuple[str, ...]           # groups summarised into every head's input
    summary_source: str                  # "hubs" | "tokens"
    summary_pool: str = "mean"           # "mean" | "flatten" (every hub of the group, concatenated)
    group_views: dict = dataclasses.field(default_factory=dict)   # hub group -> the views it reads, when not all

    @property
    def readout_tokens(self) -> int:
        """Head input width in units of d."""
        if self.summary_pool == "flatten":
            return int(self.task_piece is not None) + sum(self.n_hubs[g] for g in self.summaries)
        return int(self.task_piece is not None) + len(self.summaries)


def make_plan(layout: FeatureLayout, config: ModelConfig) -> INFNetPlan:
    n_tokens = {}
    if layout.categorical:
        n_tokens["cat"] = len(layout.categorical)
    if layout.sequences:
        n_tokens["seq"] = layout.num_sequence_tokens
    if config.task_tokens:
        n_tokens["task"] = len(layout.tasks)
    token_groups = tuple(g for g in GROUPS if g in n_tokens)
    data_groups = tuple(g for g in ("cat", "seq") if g in n_tokens)
    if not data_groups:
        raise ValueError("infnet: the layout has no categorical and no sequence input")
    if not config.hubs:
        return _all_to_all_plan(layout, config, token_groups, n_tokens, data_groups)

    specific, shared = config.task_hub_parts
    n_hubs = {}
    if "cat" in n_tokens:
        n_hubs["cat"] = config.n_cat_hubs
    if "seq" in n_tokens:
        n_hubs["seq"] = sequence_hub_count(len(layout.sequences), config.seq_hub_init)
    n_task_hubs = specific * len(layout.tasks) + shared * config.n_shared_task_hubs
    if n_task_hubs and (config.task_tokens or config.aggregation):   # else nothing would read them
        n_hubs["task"] = n_task_hubs
    hub_groups = tuple(g for g in GROUPS if g in n_hubs)

    full = config.task_tokens and config.aggregation and config.broadcast
    task_piece = None
    if config.task_tokens:
        task_piece = "token" if config.broadcast else ("hub" if specific else None)
    if full:   # readout=task_token_hubs / _flat_hubs: t_i plus the mean of / all hubs of every group
        summaries, source = (hub_groups if config.readout != "task_token" else ()), "hubs"
    elif config.aggregation:
        summaries, source = hub_groups, "hubs"
    else:
        summaries, source = data_groups, "tokens"

    inner = BlockPlan(aggregate=hub_groups if config.aggregation else (),
                      broadcast=tuple(g for g in token_groups if g in n_hubs) if config.broadcast else ())
    read_tokens = set(summaries if source == "tokens" else ()) | ({"task"} if task_piece == "token" else set())
    read_hubs = set(summaries if source == "hubs" else ()) | ({"task"} if task_piece == "hub" else set())
    last = BlockPlan(
        aggregate=tuple(g for g in inner.aggregate if g in read_hubs | read_tokens),
        broadcast=tuple(g for g in inner.broadcast if g in read_tokens))
    blocks = (inner,) * (config.num_blocks - 1) + (last,)
    pool = "flatten" if full and config.readout == "task_token_flat_hubs" else "mean"
    group_views = {"seq": ("seq",)} if config.seq_hub_views == "seq" and "seq" in n_hubs else {}
    if config.cat_hub_views == "cat_task" and "cat" in n_hubs:
        group_views["cat"] = tuple(g for g in ("cat", "task") if g in n_tokens)
    return INFNetPlan(token_groups, n_tokens, hub_groups, n_hubs, specific, shared, blocks, task_piece,
                      summaries, source, pool, group_views)


def _all_to_all_plan(layout, config, token_groups, n_tokens, data_groups) -> INFNetPlan:
    if config.task_tokens:
        task_piece, summaries, last = "token", (), BlockPlan(query_last=len(layout.tasks))
    else:
        task_piece, summaries, last = None, data_groups, BlockPlan()
    blocks = (BlockPlan(),) * (config.num_blocks - 1) + (last,)
    return INFNetPlan(token_groups, n_tokens, (), {}, False, False, blocks, task_piece, summaries, "tokens")
