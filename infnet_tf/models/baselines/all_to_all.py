"""``all_to_all``: all-to-all self-attention over every token -- the quadratic reference.

This is INFNet's ``hubs=off`` ablation (paper §4.3 "w/o Hubs", Fig. 1a), built by the INFNet model
itself so that the two share every line of code (tokenizer, task tokens, heads, and the
:class:`~infnet_tf.layers.self_attention.SelfAttentionBlock`):

    X^(0) = [C; S; T]                                     N = N_c + sum_b T_b + N_t tokens, padding masked
    H     = LN(X + W_o MHA(X W_q, X W_k, X W_v))          every token attends to every real token
    X^(l+1) = LN(H + FFN(H))                              FFN: d -> ffn_mult·d (ReLU) -> d, l < L
    ŷ_i   = σ(MLP_i(t_i^(L)))                             eq. 11 (INFNet's task heads)

Defaults: INFNet's (``config.d = 64``, ``config.num_blocks = 1``, ``config.num_heads = 1``,
``config.ffn_mult = 2``, ``config.head_hidden = (64,)``, task tokens on), so it has the same width and
depth as the INFNet it is compared with; ``hubs`` is forced off whatever the config says, and the
hub-only fields (``n_cat_hubs``, ``*_hub_*``, ``fusion``, ``broadcast_unit`` ...) are unused. It takes
no ``options``. The last block computes only the task tokens' queries (nothing else is read).

FLOPs per example: INFNet's count with ``hubs=off``: per block the Q, K, V, O projections
(4 × 2 N d^2), the two attention contractions (2 × 2 N^2 d) and the FFN (2 × 2 N ffn_mult d^2), with
N_t queries instead of N in the last block -- quadratic in N.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.models.config import ModelConfig
from infnet_tf.models.infnet import INFNet
from infnet_tf.models.infnet_flops import infnet_flops
from infnet_tf.models.registry import register_model

NAME = "all_to_all"


def all_to_all_config(config: ModelConfig) -> ModelConfig:
    """``config`` with ``hubs=off`` (the INFNet switch that makes it the all-to-all ranker)."""
    if config.options:
        raise ValueError(f"model config: options: {NAME} takes no options, got {sorted(config.options)}")
    return config.replace(hubs=False)


def all_to_all_flops(layout: FeatureLayout, config: ModelConfig) -> float:
    return infnet_flops(layout, all_to_all_config(config))


@register_model(NAME, flops=all_to_all_flops)
def build_all_to_all(layout: FeatureLayout, config: ModelConfig) -> INFNet:
    return INFNet(layout, all_to_all_config(config), name=NAME)
