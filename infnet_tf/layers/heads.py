"""Task heads (eq. 11): y_hat_i = sigmoid(MLP_i(t_i)), computed and returned in float32."""
from __future__ import annotations

from typing import Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.mlp import MLP, mlp_flops


@tf.keras.utils.register_keras_serializable(package="infnet")
class TaskHead(tf.keras.layers.Layer):
    """``call(x [B, k])`` -> float32 probability [B]. The last Dense has dtype float32."""

    def __init__(self, hidden: Sequence[int] = (64,), dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.dropout = tuple(int(h) for h in hidden), float(dropout)
        self.mlp = MLP(self.hidden, out=1, dropout=self.dropout, output_dtype="float32", name="mlp")

    @no_autograph
    def call(self, x, training=False):
        logit = tf.cast(self.mlp(x, training=training), tf.float32)
        return tf.sigmoid(logit)[:, 0]

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "dropout": self.dropout}


def task_head_flops(in_dim: int, hidden: Sequence[int]) -> int:
    return mlp_flops(in_dim, hidden, 1)
