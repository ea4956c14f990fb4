"""All-to-all self-attention block: the quadratic reference (``hubs=off``, ``all_to_all`` baseline).

A post-LN Transformer layer over all original tokens [C; S; T] with padded keys masked::

    h   = LN(x_q + W_o MHA(x_q W_q, x W_k, x W_v))      (every token attends to every real token)
    out = LN(h + FFN(h))                                 FFN: d -> ffn_mult·d (ReLU) -> d

``query_last=n`` computes only the last n tokens' outputs (e.g. the task tokens in a final block
whose other outputs nobody reads); keys and values are always all tokens. Cost
O(N_q · N · d + N · d²): quadratic in N when every token is a query.
"""
from __future__ import annotations

from typing import Optional

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.attention import attention_flops, multi_head_attention
from infnet_tf.layers.mlp import MLP, mlp_flops


@tf.keras.utils.register_keras_serializable(package="infnet")
class SelfAttentionBlock(tf.keras.layers.Layer):
    """``call(x [B, N, d], mask [B, N] or None)`` -> [B, N_q, d] (N_q = N or ``query_last``)."""

    def __init__(self, d: int, num_heads: int, ffn_mult: int = 2, dropout: float = 0.0,
                 query_last: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.d, self.num_heads, self.ffn_mult = int(d), int(num_heads), int(ffn_mult)
        self.dropout = float(dropout)
        self.query_last = None if query_last is None else int(query_last)
        dense = tf.keras.layers.Dense
        self.q_proj, self.k_proj = dense(self.d, name="q"), dense(self.d, name="k")
        self.v_proj, self.o_proj = dense(self.d, name="v"), dense(self.d, name="o")
        self.ffn = MLP((self.ffn_mult * self.d,), out=self.d, name="ffn")
        self.ln_attention = tf.keras.layers.LayerNormalization(name="ln_attention")
        self.ln_ffn = tf.keras.layers.LayerNormalization(name="ln_ffn")
        self.drop = tf.keras.layers.Dropout(self.dropout) if self.dropout else None

    def _dropout(self, x, training):
        return x if self.drop is None else self.drop(x, training=training)

    @no_autograph
    def call(self, x, mask=None, training=False, return_attention: bool = False):
        x_q = x if self.query_last is None else x[:, -self.query_last:]
        z, weights = multi_head_attention(self.q_proj(x_q), self.k_proj(x), self.v_proj(x), mask,
                                          self.num_heads)
        h = self.ln_attention(x_q + self._dropout(self.o_proj(z), training))
        out = self.ln_ffn(h + self._dropout(self.ffn(h), training))
        return (out, weights) if return_attention else out

    def get_config(self):
        return {**super().get_config(), "d": self.d, "num_heads": self.num_heads,
                "ffn_mult": self.ffn_mult, "dropout": self.dropout, "query_last": self.query_last}


def self_attention_flops(n_tokens: int, n_queries: int, d: int, ffn_mult: int) -> int:
    """FLOPs per example of one :class:`SelfAttentionBlock`."""
    projections = 2 * n_queries * d * d * 2 + 2 * 2 * n_tokens * d * d   # q, o on queries; k, v on all
    return projections + attention_flops(n_queries, n_tokens, d) + n_queries * mlp_flops(d, (ffn_mult * d,), d)
