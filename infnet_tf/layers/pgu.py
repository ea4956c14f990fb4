"""The v1 paper's Proxy Gated Unit, an alternative Phase 2 broadcast unit (``broadcast_unit=pgu``).

With h the mean of the group's updated hubs (its "proxy")::

    g   = sigmoid(W_g [x; h] + b_g)
    out = g ⊙ tanh(W_h [x; h] + b_h) + (1 - g) ⊙ x
    x  <- LN(out)            (the gated skip (1 - g) ⊙ x already carries the residual)

W[x; h] is computed as W_x x + W_p h (the same map, without tiling h over the tokens): the gate
and candidate share one Dense of width 2d on x and one bias-free Dense on h.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph

@tf.keras.utils.register_keras_serializable(package="infnet")
class ProxyGatedUnit(tf.keras.layers.Layer):
    """``call(x [B, N, d], hubs [B, H, d])`` -> refined tokens [B, N, d]."""

    def __init__(self, d: int, **kwargs):
        super().__init__(**kwargs)
        self.d = int(d)
        self.token_proj = tf.keras.layers.Dense(2 * self.d, name="w_x")
        self.proxy_proj = tf.keras.layers.Dense(2 * self.d, use_bias=False, name="w_h")
        self.norm = tf.keras.layers.LayerNormalization(name="ln")

    @no_autograph
    def call(self, x, hubs):
        proxy = tf.reduce_mean(hubs, axis=1)
        pre = self.token_proj(x) + self.proxy_proj(proxy)[:, None, :]
        gate_pre, cand_pre = tf.split(pre, 2, axis=-1)
        gate = tf.sigmoid(gate_pre)
        return self.norm(gate * tf.tanh(cand_pre) + (1.0 - gate) * x)

    def get_config(self):
        return {**super().get_config(), "d": self.d}


def pgu_flops(n_tokens: int, d: int) -> int:
    """FLOPs per example: the token projection for every token plus the proxy projection once."""
    return 2 * n_tokens * d * 2 * d + 2 * d * 2 * d
