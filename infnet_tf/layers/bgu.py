"""Phase 2, global-to-local broadcast with the Broadcast Gated Unit (eqs. 8-10).

    alpha_g, beta_g = Split(MLP_bgu(Flatten(X~_g)))                      (eq. 8)
    BGU(x_i)        = x_i ⊙ sigmoid(alpha_g) + beta_g   for every token  (eq. 9)
    x_i            <- LN(x_i + BGU(x_i))                                   (eq. 10)

``mode`` selects the Table 4 variants: ``affine`` (eq. 9), ``scale`` (beta = 0: the MLP emits only
alpha) and ``shift`` (no alpha term: x_i <- LN(x_i + beta_g)). Width-preserving: the output has the
shape of ``x``. The LayerNorm computes its statistics in float32 under mixed precision.
The residual is folded into the gate on the small [B, 1, d] parameters,
x + x ⊙ sigmoid(alpha) + beta = x ⊙ (1 + sigmoid(alpha)) + beta, so the large [B, N, d] tokens
see one multiply and one add before the LayerNorm.
"""
from __future__ import annotations

from typing import Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.mlp import MLP, mlp_flops

BGU_MODES = ("affine", "scale", "shift")


@tf.keras.utils.register_keras_serializable(package="infnet")
class BroadcastGatedUnit(tf.keras.layers.Layer):
    """``call(x [B, N, d], hubs [B, H, d])`` -> refined tokens [B, N, d] (eq. 10)."""

    def __init__(self, d: int, mode: str = "affine", hidden: Sequence[int] = (64,), **kwargs):
        super().__init__(**kwargs)
        if mode not in BGU_MODES:
            raise ValueError(f"broadcast_unit: expected one of {'|'.join(BGU_MODES)}, got {mode!r}")
        self.d, self.mode = int(d), mode
        self.hidden = tuple(int(h) for h in hidden)
        self.mlp = MLP(self.hidden, out=bgu_outputs(self.d, mode), name="mlp_bgu")
        self.norm = tf.keras.layers.LayerNormalization(name="ln")

    def modulation(self, hubs):
        """(alpha or None, beta or None), each [B, 1, d] (eq. 8)."""
        flat = tf.reshape(hubs, [tf.shape(hubs)[0], hubs.shape[1] * hubs.shape[2]])
        params = self.mlp(flat)[:, None, :]
        if self.mode == "affine":
            alpha, beta = tf.split(params, 2, axis=-1)
            return alpha, beta
        return (params, None) if self.mode == "scale" else (None, params)

    @no_autograph
    def call(self, x, hubs):
        alpha, beta = self.modulation(hubs)
        # x + BGU(x) (eqs. 9-10) = x ⊙ (1 + sigmoid(alpha)) + beta
        y = x if alpha is None else x * (1.0 + tf.sigmoid(alpha))
        if beta is not None:
            y = y + beta
        return self.norm(y)                                                  # eq. 10

    def get_config(self):
        return {**super().get_config(), "d": self.d, "mode": self.mode, "hidden": list(self.hidden)}


def bgu_outputs(d: int, mode: str) -> int:
    return 2 * d if mode == "affine" else d


def bgu_flops(n_hubs: int, d: int, mode: str, hidden: Sequence[int]) -> int:
    """FLOPs per example of one BGU (the element-wise broadcast is not a contraction)."""
    return mlp_flops(n_hubs * d, hidden, bgu_outputs(d, mode))
