"""INFNet (paper §3): tokenizers, hub initialisation, L INFNet blocks, task heads.

``call(features)`` -> {task: float32 probability [B]}. The variant computed is fixed by the
config's switches through :func:`infnet_tf.models.infnet_plan.make_plan`; with ``hubs=off`` the
blocks are all-to-all :class:`~infnet_tf.layers.self_attention.SelfAttentionBlock` layers over
[C; S; T] (the quadratic reference, same tokenizer and heads).
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.aggregation import aggregation_flops
from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.heads import TaskHead
from infnet_tf.layers.hub_init import CategoricalHubInit, SequenceHubInit
from infnet_tf.layers.infnet_block import INFNetBlock
from infnet_tf.layers.learned_tokens import LearnedTokens
from infnet_tf.layers.masking import masked_mean
from infnet_tf.layers.packed import to_dense
from infnet_tf.layers.self_attention import SelfAttentionBlock
from infnet_tf.layers.tokenizers import FeatureTokenizer
from infnet_tf.models.candidates import score_candidates
from infnet_tf.models.config import ModelConfig
from infnet_tf.models.infnet_flops import infnet_flops
from infnet_tf.models.infnet_plan import make_plan
from infnet_tf.models.registry import register_model


@tf.keras.utils.register_keras_serializable(package="infnet")
class INFNet(tf.keras.Model):
    """INFNet for a :class:`FeatureLayout` and a :class:`ModelConfig`.

    ``call(features, training=False)`` -> {task: float32 probability [B]} (eq. 11);
    ``task_names``; ``encode`` (tokens, masks and hubs after the blocks); ``attention_weights``
    (Figure 5); ``score_candidates`` (one user x N candidates, the user side computed once:
    :mod:`infnet_tf.models.candidates`); ``get_config``/``from_config`` (layout and config as plain data).
    """

    def __init__(self, layout, config, **kwargs):
        super().__init__(**kwargs)
        self.layout = layout if isinstance(layout, FeatureLayout) else FeatureLayout.from_dict(layout)
        self.model_config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        c, layout = self.model_config, self.layout
        self.plan = plan = make_plan(layout, c)
        self.task_names = layout.task_names
        self.tokenizer = FeatureTokenizer(layout, c.d, c.sequence_combiner, c.embedding_init_std,
                                          c.tokenizer_ordinal(), c.id_dropout, name="tokenizer")
        self.task_tokens = LearnedTokens(len(layout.tasks), c.d, name="task_tokens") if c.task_tokens else None
        self.cat_hub_init = self.seq_hub_init = self.shared_task_hubs = None
        if "cat" in plan.n_hubs:
            self.cat_hub_init = CategoricalHubInit(len(layout.categorical), c.n_cat_hubs, c.d, c.cat_hub_init,
                                                   c.cat_hub_hidden, name="cat_hub_init")
        if "seq" in plan.n_hubs:
            self.seq_hub_init = SequenceHubInit(len(layout.sequences), c.d, c.seq_hub_init, c.seq_hub_hidden,
                                                name="seq_hub_init")
        if "task" in plan.n_hubs and plan.task_hub_shared:
            self.shared_task_hubs = LearnedTokens(c.n_shared_task_hubs, c.d, name="shared_task_hubs")
        if c.hubs:
            self.block_layers = [
                INFNetBlock(c.d, c.num_heads, plan.token_groups, b.aggregate, b.broadcast, c.fusion,
                            c.broadcast_unit, c.bgu_hidden, c.dropout, token_norm=c.token_norm,
                            group_views=plan.group_views, name=f"block_{i}")
                for i, b in enumerate(plan.blocks)]
        else:
            self.block_layers = [
                SelfAttentionBlock(c.d, c.num_heads, c.ffn_mult, c.dropout, b.query_last, name=f"block_{i}")
                for i, b in enumerate(plan.blocks)]
        self.heads = [TaskHead(c.head_hidden, c.dropout, c.head_output_scale, name=f"head_{i}")
                      for i in range(len(self.task_names))]

    def output_layers(self) -> dict:
        """{task: the Dense(1) producing its logit} (the trainer sets their biases: ``output_bias_init``)."""
        return {name: head.output_layer for name, head in zip(self.task_names, self.heads)}

    # -- tokens and hubs (§3.1) ------------------------------------------------------------
    def _tokens(self, features, training=False):
        """({group: [B, N_g, d]}, {group: mask}, per-type packed sequences, batch size)."""
        cat, seqs = self.tokenizer(features, training=training, packed=True)
        return self._group_tokens(cat, seqs)

    def _group_tokens(self, cat, seqs):
        """Tokenizer outputs (the sequences packed) -> :meth:`_tokens`' tuple (S padded for attention,
        the task tokens at the batch size of the data)."""
        tokens, masks = {}, {}
        if cat is not None:
            tokens["cat"] = cat
        seq_tokens, seq_masks = [to_dense(*packed) for packed in seqs], [m for _, _, m in seqs]
        if seqs:
            tokens["seq"] = tf.concat(seq_tokens, axis=1) if len(seqs) > 1 else seq_tokens[0]
            masks["seq"] = tf.concat(seq_masks, axis=1) if len(seqs) > 1 else seq_masks[0]
        batch = tf.shape(next(iter(tokens.values())))[0]
        if self.task_tokens is not None:
            tokens["task"] = self.task_tokens(batch)
        return tokens, masks, seqs, batch

    def _hubs(self, tokens, seqs, batch):
        hubs = {}
        if self.cat_hub_init is not None:
            hubs["cat"] = self.cat_hub_init(tokens["cat"])                  # eq. 1
        if self.seq_hub_init is not None:
            hubs["seq"] = self.seq_hub_init(seqs)                           # eq. 3
        if "task" in self.plan.n_hubs:                                       # eq. 4
            parts = [tokens["task"]] if self.plan.task_hub_specific else []
            if self.shared_task_hubs is not None:
                parts.append(self.shared_task_hubs(batch))
            hubs["task"] = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        return hubs

    # -- forward -----------------------------------------------------------------------------
    def encode(self, features, training=False, return_attention=False):
        """Run tokenizers and blocks: (tokens, masks, hubs, [per-block attention weights])."""
        tokens, masks, seqs, batch = self._tokens(features, training)
        hubs = self._hubs(tokens, seqs, batch) if self.model_config.hubs else {}
        return self._blocks(tokens, masks, hubs, training, return_attention)

    def _blocks(self, tokens, masks, hubs, training=False, return_attention=False, shared=()):
        """The L blocks over tokens and initial hubs (§3.2): (tokens, masks, hubs[, attention]).
        ``shared``: hub groups held at batch 1 (:func:`~infnet_tf.models.candidates.score_candidates`)."""
        attention = []
        if self.model_config.hubs:
            for block in self.block_layers:
                if return_attention:
                    tokens, hubs, weights = block(tokens, hubs, masks, training=training, return_attention=True,
                                                  shared=shared)
                    attention.append(weights)
                else:
                    tokens, hubs = block(tokens, hubs, masks, training=training, shared=shared)
        else:
            tokens, attention = self._all_to_all(tokens, masks, training)
        return (tokens, masks, hubs, attention) if return_attention else (tokens, masks, hubs)

    def _all_to_all(self, tokens, masks, training):
        groups = self.plan.token_groups
        x = tf.concat([tokens[g] for g in groups], axis=1)
        mask = None
        if masks:
            mask = tf.concat([masks[g] if g in masks else tf.ones(tf.shape(tokens[g])[:2], tf.bool)
                              for g in groups], axis=1)
        sizes = [tf.shape(tokens[g])[1] for g in groups]
        attention = []
        for block in self.block_layers:
            x, weights = block(x, mask, training=training, return_attention=True)
            attention.append(weights)
        if self.block_layers[-1].query_last is not None:      # only the task tokens were computed
            return {"task": x}, attention
        return dict(zip(groups, tf.split(x, sizes, axis=1))), attention

    def readout(self, tokens, masks, hubs):
        """Head inputs, one [B, k·d] tensor per task (see :mod:`infnet_plan`)."""
        plan = self.plan
        source = hubs if plan.summary_source == "hubs" else tokens
        if plan.summary_pool == "flatten":
            shared = [tf.reshape(source[g], [-1, source[g].shape[1] * source[g].shape[2]]) for g in plan.summaries]
        else:
            shared = [masked_mean(source[g], masks.get(g) if source is tokens else None) for g in plan.summaries]
        out = []
        for i in range(len(self.task_names)):
            piece = []
            if plan.task_piece == "token":
                piece = [tokens["task"][:, i]]
            elif plan.task_piece == "hub":
                piece = [hubs["task"][:, i]]
            parts = piece + shared
            out.append(tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0])
        return out

    @no_autograph
    def call(self, features, training=False):
        tokens, masks, hubs = self.encode(features, training=training)
        inputs = self.readout(tokens, masks, hubs)
        return {name: head(x, training=training) for name, head, x in zip(self.task_names, self.heads, inputs)}

    @no_autograph
    def score_candidates(self, user, candidates):
        """One user x N candidates -> {task: probability [N]}, the user side computed once; equal to
        ``call`` on the user's inputs tiled N times next to the candidates'. ``user``: the model
        inputs of the user side at batch 1 (every ``seq/*`` input and the user-side ``cat/*``);
        ``candidates``: the candidate-side ``cat/*`` inputs [N]. See :mod:`infnet_tf.models.candidates`."""
        return score_candidates(self, user, candidates)

    # -- introspection (Figure 5) --------------------------------------------------------------
    @no_autograph
    def attention_weights(self, features):
        """Per block, the task hubs' attention weights over each view (float32).

        A list (one entry per block) of {view: [B, heads, n_task_hubs, N_view]} where the views are
        ``cat``, ``seq/<type>`` (one per behaviour type) and ``task``. With ``hubs=off`` the rows are
        the task tokens' queries in the all-to-all attention.
        """
        plan = self.plan
        if self.model_config.hubs and ("task" not in plan.n_hubs or not self.model_config.aggregation):
            raise ValueError("attention_weights: this configuration has no task-hub attention "
                             "(needs aggregation=on and task hubs)")
        if not self.model_config.hubs and not self.model_config.task_tokens:
            raise ValueError("attention_weights: hubs=off without task tokens has no task queries")
        _, _, _, attention = self.encode(features, return_attention=True)
        seq_lens = [tf.shape(features[seq_key(s.name, s.item_field.name)])[1] for s in self.layout.sequences]
        out = []
        for block, weights in zip(self.block_layers, attention):
            if self.model_config.hubs:
                views = {}
                for v, w in weights.items():
                    rows = self._task_rows(block.aggregation.view_rows(v))
                    views[v] = w[:, :, rows[0]:rows[1]]
            else:
                n_t = len(self.task_names)
                w = weights[:, :, -n_t:]
                sizes = [plan.n_tokens["cat"]] if "cat" in plan.n_tokens else []
                sizes += [tf.reduce_sum(seq_lens)] if seq_lens else []
                sizes += [n_t]
                views = dict(zip(plan.token_groups, tf.split(w, sizes, axis=-1)))
            if "seq" in views:
                per_type = tf.split(views.pop("seq"), seq_lens, axis=-1)
                views.update({f"seq/{s.name}": w for s, w in zip(self.layout.sequences, per_type)})
            out.append(views)
        return out

    def _task_rows(self, groups):
        start = 0
        for g in groups:
            if g == "task":
                return start, start + self.plan.n_hubs["task"]
            start += self.plan.n_hubs[g]
        raise ValueError("attention_weights: a block has no task-hub queries")

    def get_config(self):
        return {"layout": self.layout.to_dict(), "config": self.model_config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(FeatureLayout.from_dict(config["layout"]), ModelConfig.from_dict(config["config"]),
                   name=config.get("name"))


def infnet_model_flops(layout: FeatureLayout, config: ModelConfig) -> float:
    """:func:`infnet_flops` with Phase 1 counted as computed (``aggregation_flops`` with the heads: views
    with few enough queries fold the key/value projections into the queries and the fusion Linear);
    the count of :func:`infnet_flops` (the paper's projected form) is corrected by the difference per
    block."""
    total = infnet_flops(layout, config)
    if config.hubs:
        plan = make_plan(layout, config)
        for b in plan.blocks:
            if b.aggregate:
                hubs = {g: plan.n_hubs[g] for g in b.aggregate}
                total += (aggregation_flops(config.d, hubs, plan.n_tokens, config.fusion, config.num_heads,
                                            plan.group_views)
                          - aggregation_flops(config.d, hubs, plan.n_tokens, config.fusion, None, plan.group_views))
    return total


@register_model("infnet", flops=infnet_model_flops)
def build_infnet(layout: FeatureLayout, config: ModelConfig) -> INFNet:
    return INFNet(layout, config, name="infnet")
