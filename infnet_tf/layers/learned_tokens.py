"""Learned, input-independent tokens: task tokens T, shared task hubs (eq. 4), random-init hubs."""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph

@tf.keras.utils.register_keras_serializable(package="infnet")
class LearnedTokens(tf.keras.layers.Layer):
    """``n`` learned vectors of width ``d``; ``call(batch_size)`` tiles them to [B, n, d]."""

    def __init__(self, n: int, d: int, **kwargs):
        super().__init__(**kwargs)
        self.n, self.d = int(n), int(d)

    def build(self, input_shape=None):
        # created in build (not __init__) so the variable is named under the layer's scope
        self.tokens = self.add_weight(name="tokens", shape=(self.n, self.d),
                                      initializer=tf.keras.initializers.RandomNormal(stddev=0.05))
        super().build(input_shape)

    @no_autograph
    def call(self, batch_size):
        tokens = tf.cast(self.tokens, self.compute_dtype)
        return tf.tile(tokens[None], tf.stack([batch_size, 1, 1]))

    def get_config(self):
        return {**super().get_config(), "n": self.n, "d": self.d}
