"""Hub initialisation for the categorical (eq. 1) and sequence (eq. 3) groups.

Categorical hubs [B, n_c, d] (``mode``):
  * ``mlp`` (eq. 1): Reshape(phi^cat(Flatten(C))) -- an MLP over all fields jointly;
  * ``mean``: hub j is the mean of a contiguous chunk of fields (Table 4 "Mean Pooling
    (Fields)"; with fewer fields than hubs, hubs repeat single fields) -- a fixed averaging
    matrix, no parameters;
  * ``random``: n_c learned input-independent vectors.
Sequence hubs [B, n_s, d] (``mode``):
  * ``type_mlp`` (eq. 3): one hub per behaviour type, the masked mean of a type-specific
    MLP_b^seq over the type's real items (an all-padding type gives a zero hub). The MLP's last
    (linear) layer commutes with the mean, so it is applied once to the mean of the hidden
    activations instead of to every item: mean_t(W h_t + b) = W mean_t(h_t) + b -- the same hub
    without the per-item output matmul;
  * ``global_mean``: a single hub, the masked mean of all sequence tokens of all types;
  * ``random``: one learned vector per type.
Task hubs (eq. 4) are a concatenation of learned tokens, assembled by the model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.learned_tokens import LearnedTokens
from infnet_tf.layers.masking import masked_mean, masked_mean_flops
from infnet_tf.layers.mlp import MLP, mlp_flops

CAT_MODES = ("mlp", "mean", "random")
SEQ_MODES = ("type_mlp", "global_mean", "random")


def chunk_mean_matrix(n_hubs: int, n_fields: int) -> np.ndarray:
    """[n_hubs, n_fields] row-stochastic matrix: hub j averages a contiguous chunk of fields."""
    m = np.zeros((n_hubs, n_fields), np.float32)
    if n_fields >= n_hubs:
        for i in range(n_fields):
            m[i * n_hubs // n_fields, i] = 1.0
    else:
        for j in range(n_hubs):
            m[j, j * n_fields // n_hubs] = 1.0
    return m / m.sum(axis=1, keepdims=True)


@tf.keras.utils.register_keras_serializable(package="infnet")
class CategoricalHubInit(tf.keras.layers.Layer):
    """``call(C [B, N_c, d])`` -> categorical hubs [B, n_hubs, d]."""

    def __init__(self, n_fields: int, n_hubs: int, d: int, mode: str = "mlp",
                 hidden: Sequence[int] = (256,), **kwargs):
        super().__init__(**kwargs)
        if mode not in CAT_MODES:
            raise ValueError(f"cat_hub_init: expected one of {'|'.join(CAT_MODES)}, got {mode!r}")
        self.n_fields, self.n_hubs, self.d, self.mode = int(n_fields), int(n_hubs), int(d), mode
        self.hidden = tuple(int(h) for h in hidden)
        if mode == "mlp":
            self.mlp = MLP(self.hidden, out=self.n_hubs * self.d, name="phi_cat")
        elif mode == "mean":
            self.averaging = tf.constant(chunk_mean_matrix(self.n_hubs, self.n_fields))
        else:
            self.hubs = LearnedTokens(self.n_hubs, self.d, name="hubs")

    @no_autograph
    def call(self, tokens):
        batch = tf.shape(tokens)[0]
        if self.mode == "mlp":
            flat = tf.reshape(tokens, [batch, self.n_fields * self.d])
            return tf.reshape(self.mlp(flat), [batch, self.n_hubs, self.d])
        if self.mode == "mean":
            return tf.matmul(tf.cast(self.averaging, tokens.dtype), tokens)
        return self.hubs(batch)

    def get_config(self):
        return {**super().get_config(), "n_fields": self.n_fields, "n_hubs": self.n_hubs, "d": self.d,
                "mode": self.mode, "hidden": list(self.hidden)}


def categorical_hub_flops(n_fields: int, n_hubs: int, d: int, mode: str, hidden: Sequence[int]) -> int:
    if mode == "mlp":
        return mlp_flops(n_fields * d, hidden, n_hubs * d)
    if mode == "mean":
        return 2 * n_hubs * n_fields * d
    return 0


def sequence_hub_count(n_types: int, mode: str) -> int:
    return 1 if mode == "global_mean" else n_types


@tf.keras.utils.register_keras_serializable(package="infnet")
class SequenceHubInit(tf.keras.layers.Layer):
    """``call(tokens: [S_b [B, T_b, d]], masks: [mask_b [B, T_b]])`` -> sequence hubs [B, n_s, d]."""

    def __init__(self, n_types: int, d: int, mode: str = "type_mlp", hidden: Sequence[int] = (64,), **kwargs):
        super().__init__(**kwargs)
        if mode not in SEQ_MODES:
            raise ValueError(f"seq_hub_init: expected one of {'|'.join(SEQ_MODES)}, got {mode!r}")
        self.n_types, self.d, self.mode = int(n_types), int(d), mode
        self.hidden = tuple(int(h) for h in hidden)
        if mode == "type_mlp":
            self.mlps = [MLP(self.hidden, out=self.d, name=f"mlp_seq_{b}") for b in range(self.n_types)]
        elif mode == "random":
            self.hubs = LearnedTokens(self.n_types, self.d, name="hubs")

    @no_autograph
    def call(self, tokens, masks):
        if len(tokens) != self.n_types or len(masks) != self.n_types:
            raise ValueError(f"seq hub init: expected {self.n_types} behaviour types, got {len(tokens)}")
        if self.mode == "type_mlp":
            return tf.stack([self._type_hub(mlp, s, m) for mlp, s, m in zip(self.mlps, tokens, masks)], axis=1)
        if self.mode == "global_mean":
            return masked_mean(tf.concat(tokens, axis=1), tf.concat(masks, axis=1))[:, None, :]
        return self.hubs(tf.shape(tokens[0])[0])

    @staticmethod
    def _type_hub(mlp, s, mask):
        """masked_mean(MLP(s), mask) [B, d] with the MLP's linear output layer after the mean (eq. 3).

        The hidden layers run on the items as one [B·T, d] matrix (a 2-D Dense is one fused matmul,
        bias and activation on CPU; on [B, T, d] Keras runs a tensordot and a separate bias pass), and
        the masked mean is one batched matmul of the mask with the activations, divided by the count
        (:func:`~infnet_tf.layers.masking.masked_mean`)."""
        steps, width = tf.shape(s)[1], s.shape[-1]
        with tf.name_scope(mlp.name):
            h = tf.reshape(s, [-1, width])
            for layer in mlp.hidden_layers:
                h = layer(h)
            h = tf.reshape(h, tf.stack([-1, steps, h.shape[-1]]))
            hub = mlp.out_layer(masked_mean(h, mask))
        if mask is None:
            return hub
        return hub * tf.cast(tf.reduce_any(tf.cast(mask, tf.bool), axis=1), hub.dtype)[:, None]

    def get_config(self):
        return {**super().get_config(), "n_types": self.n_types, "d": self.d, "mode": self.mode,
                "hidden": list(self.hidden)}


def sequence_hub_flops(seq_lens: Sequence[int], d: int, mode: str, hidden: Sequence[int]) -> int:
    if mode == "type_mlp":   # hidden layers per item, the masked mean (a matmul), the output layer once
        hidden = tuple(hidden)
        width = hidden[-1] if hidden else d
        return sum(t * mlp_flops(d, hidden, None) + masked_mean_flops(t, width) + mlp_flops(width, (), d)
                   for t in seq_lens)
    if mode == "global_mean":
        return masked_mean_flops(sum(seq_lens), d)
    return 0
