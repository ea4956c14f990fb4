"""Task heads (eq. 11): y_hat_i = sigmoid(MLP_i(t_i)), computed and returned in float32."""
from __future__ import annotations

from typing import Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.mlp import MLP, mlp_flops


@tf.keras.utils.register_keras_serializable(package="infnet")
class TaskHead(tf.keras.layers.Layer):
    """``call(x [B, k])`` -> float32 probability [B]. The last Dense has dtype float32.

    ``output_scale`` scales the output layer's initial kernel (Glorot uniform x ``output_scale``;
    1 = Keras' default, the paper's, and ours). Beyond the paper, measured: INFNet's heads read every
    hub, a wide input of layer-normalised (unit-variance) tokens, so Glorot's output starts with random
    logits of standard deviation ~1 (first-epoch train loss 2.26 vs DCNv2's 1.39 on a real log). At 0.1
    every logit starts near its bias (``--output_bias_init=prior``: the task's positive rate) and
    training begins at the base-rate loss (1.41) -- fewer epochs to the same AUC, not a better one
    (``ModelConfig.head_output_scale``; bench/REPORT.md).
    """

    def __init__(self, hidden: Sequence[int] = (64,), dropout: float = 0.0, output_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.dropout = tuple(int(h) for h in hidden), float(dropout)
        self.output_scale = float(output_scale)
        self.mlp = MLP(self.hidden, out=1, dropout=self.dropout, output_dtype="float32",
                       out_scale=self.output_scale, name="mlp")

    @property
    def output_layer(self) -> tf.keras.layers.Dense:
        """The Dense(1) producing the logit (its bias is the logit of an input-independent guess)."""
        return self.mlp.out_layer

    @no_autograph
    def call(self, x, training=False):
        logit = tf.cast(self.mlp(x, training=training), tf.float32)
        return tf.sigmoid(logit)[:, 0]

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "dropout": self.dropout,
                "output_scale": self.output_scale}


def task_head_flops(in_dim: int, hidden: Sequence[int]) -> int:
    return mlp_flops(in_dim, hidden, 1)
