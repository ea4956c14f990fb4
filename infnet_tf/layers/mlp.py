"""A Dense stack: hidden layers with an activation, then an optional linear output layer."""
from __future__ import annotations

from typing import Optional, Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph

@tf.keras.utils.register_keras_serializable(package="infnet")
class MLP(tf.keras.layers.Layer):
    """``hidden`` Dense layers (``activation``) then a linear Dense of width ``out`` (if given).

    ``output_dtype="float32"`` makes the last layer compute in float32 under mixed precision (task
    heads, so output probabilities stay float32). ``out_scale`` multiplies the output layer's initial
    kernel (Glorot uniform, the Keras default, at ``out_scale=1``): task heads start with small logits
    (see :class:`~infnet_tf.layers.heads.TaskHead`).
    """

    def __init__(self, hidden: Sequence[int] = (), out: Optional[int] = None, activation: str = "relu",
                 dropout: float = 0.0, output_dtype: Optional[str] = None, out_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden = tuple(int(h) for h in hidden)
        self.out = None if out is None else int(out)
        self.activation = activation
        self.dropout = float(dropout)
        self.output_dtype = output_dtype
        self.out_scale = float(out_scale)
        self.hidden_layers = [tf.keras.layers.Dense(h, activation=activation, name=f"hidden_{i}")
                              for i, h in enumerate(self.hidden)]
        self.dropout_layer = tf.keras.layers.Dropout(self.dropout) if self.dropout else None
        self.out_layer = None
        if self.out is not None:
            extra = {"dtype": output_dtype} if output_dtype else {}
            if self.out_scale != 1.0:   # Glorot uniform with its variance times out_scale**2; at 1 Keras'
                # own default initializer stays, so existing seeds draw exactly the weights they drew before
                extra["kernel_initializer"] = tf.keras.initializers.VarianceScaling(
                    self.out_scale ** 2, mode="fan_avg", distribution="uniform")
            self.out_layer = tf.keras.layers.Dense(self.out, name="out", **extra)

    @no_autograph
    def call(self, x, training=False):
        for layer in self.hidden_layers:
            x = layer(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x if self.out_layer is None else self.out_layer(x)

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "out": self.out,
                "activation": self.activation, "dropout": self.dropout,
                "output_dtype": self.output_dtype, "out_scale": self.out_scale}


def mlp_flops(in_dim: int, hidden: Sequence[int], out: Optional[int]) -> int:
    """Analytical FLOPs (2 × multiply-adds) of one :class:`MLP` application to one vector."""
    dims = [in_dim, *hidden] + ([out] if out is not None else [])
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))
