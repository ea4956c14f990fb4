"""Hub initialisation for the categorical (eq. 1) and sequence (eq. 3) groups.

Categorical hubs [B, n_c, d] (``mode``):
  * ``mlp`` (eq. 1): Reshape(phi^cat(Flatten(C))) -- an MLP over all fields jointly;
  * ``mean``: hub j is the mean of a contiguous chunk of fields (Table 4 "Mean Pooling
    (Fields)"; with fewer fields than hubs, hubs repeat single fields) -- a fixed averaging
    matrix, no parameters;
  * ``random``: n_c learned input-independent vectors.
Sequence hubs [B, n_s, d] (``mode``):
  * ``type_mlp`` (eq. 3): one hub per behaviour type, the masked mean of a type-specific
    MLP_b^seq over the type's real items (an all-padding type gives a zero hub). The MLP runs on
    the real items only (packed sequences, :mod:`~infnet_tf.layers.packed`), and its last (linear)
    layer commutes with the mean, so it is applied once to the mean of the hidden activations
    instead of to every item: mean_t(W h_t + b) = W mean_t(h_t) + b -- the same hub without the
    per-item output matmul;
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
from infnet_tf.layers.mlp import MLP, mlp_flops
from infnet_tf.layers.packed import packed_mean, packed_sums

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
    """``call(sequences)`` -> sequence hubs [B, n_s, d]; ``sequences``: one packed sequence
    (values [R_b, d], rows [R_b, 2], mask_b [B, T_b]) per behaviour type
    (:meth:`~infnet_tf.layers.tokenizers.FeatureTokenizer.sequence_rows`,
    :func:`~infnet_tf.layers.packed.pack`)."""

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
    def call(self, sequences):
        if len(sequences) != self.n_types:
            raise ValueError(f"seq hub init: expected {self.n_types} behaviour types, got {len(sequences)}")
        if self.mode == "type_mlp":
            return tf.stack([self._type_hub(mlp, *packed) for mlp, packed in zip(self.mlps, sequences)], axis=1)
        if self.mode == "global_mean":
            # the mean over every real item of every type: all sums over all counts
            sums = tf.add_n([packed_sums(*packed) for packed in sequences])
            dtype = sums.dtype
            counts = tf.add_n([tf.reduce_sum(tf.cast(m, dtype), axis=1, keepdims=True) for _, _, m in sequences])
            return (sums / tf.maximum(counts, tf.cast(1.0, dtype)))[:, None, :]
        return self.hubs(tf.shape(sequences[0][2])[0])

    @staticmethod
    def _type_hub(mlp, values, rows, mask):
        """The mean over the real items of MLP(s) [B, d], the MLP's linear output layer after the mean
        (eq. 3); zeros for an example with no real item.

        The hidden layers run on the packed real items [R, d] (one fused matmul, bias and activation
        per layer on CPU), the mean is a segment sum by example divided by the count."""
        with tf.name_scope(mlp.name):
            h = values
            for layer in mlp.hidden_layers:
                h = layer(h)
            hub = mlp.out_layer(packed_mean(h, rows, mask))
        return hub * tf.cast(tf.reduce_any(mask, axis=1), hub.dtype)[:, None]

    def get_config(self):
        return {**super().get_config(), "n_types": self.n_types, "d": self.d, "mode": self.mode,
                "hidden": list(self.hidden)}


def sequence_hub_flops(seq_lens: Sequence[int], d: int, mode: str, hidden: Sequence[int]) -> int:
    """FLOPs per example (contractions) at ``seq_lens`` real items per type: type_mlp's hidden layers per
    item and its output layer once (the means are segment sums, no contraction); 0 for the others.
    Counted at full sequences (``max_len``) this is an upper bound: the layer runs on the real items."""
    if mode == "type_mlp":
        hidden = tuple(hidden)
        width = hidden[-1] if hidden else d
        return sum(t * mlp_flops(d, hidden, None) + mlp_flops(width, (), d) for t in seq_lens)
    return 0
