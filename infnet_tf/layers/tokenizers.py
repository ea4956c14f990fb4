"""Group-wise tokenization (§3.1): categorical tokens C and sequence tokens S (eq. 2).

* C [B, N_c, d]: one token per categorical input (dense features arrive as bucket ids; with
  ``ordinal="cumulative"`` their buckets are encoded as ordered, see :mod:`.embeddings`).
* S per behaviour type b: s_{b,t} = e_{b,t} + p_t + r_t (eq. 2) where
  - e combines the item and side-information embeddings: their **sum** (``combiner="sum"``,
    default) or a linear map of their concatenation (``"concat_linear"``);
  - p is a learned position embedding (one table per type) indexed by **recency**: position 0 is
    the most recent item, computed from ``length``. Sequences are right-padded with the most recent
    item last, so indexing by recency gives every real item the same position whatever the padding
    (padding invariance) and whatever the batch's T;
  - r is the time-gap bucket embedding (one table per type; bucket 0 = padding).
  Padded positions (t >= length) are zeroed and masked out ([B, T_b] bool mask). The tokens are
  computed for the real items only (``sequence_rows``, packed: :mod:`~infnet_tf.layers.packed`) and
  scattered into the padded [B, T_b, d] tensor where attention needs it (``sequence_tokens``).
Task tokens are :class:`~infnet_tf.layers.learned_tokens.LearnedTokens`.

The tokenizer is reusable by baselines: ``categorical_tokens``, ``sequence_tokens`` and
``pooled_sequences`` (masked mean per type) share the same embedding tables.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.data.keys import LENGTH, TIME_GAP, cat_key, seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.embeddings import (EmbeddingTables, cumulative_lookup, embedding_initializer, layer_name,
                                         projection_flops)
from infnet_tf.layers.packed import packed_mean, to_dense

COMBINERS = ("sum", "concat_linear")


@tf.keras.utils.register_keras_serializable(package="infnet")
class FeatureTokenizer(tf.keras.layers.Layer):
    """``call(features)`` -> (C [B, N_c, d] or None, [(S_b [B, T_b, d], mask_b [B, T_b]) per type])."""

    def __init__(self, layout, d: int, combiner: str = "sum", init_std: float = 0.0, ordinal: str = "none",
                 id_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if combiner not in COMBINERS:
            raise ValueError(f"tokenizer: combiner must be one of {'|'.join(COMBINERS)}, got {combiner!r}")
        self.layout = layout if isinstance(layout, FeatureLayout) else FeatureLayout.from_dict(layout)
        self.d, self.combiner, self.init_std, self.ordinal = int(d), combiner, float(init_std), ordinal
        self.id_dropout = float(id_dropout)
        self._dropout_seed = None       # see bind_dropout_seed
        init = lambda: embedding_initializer(self.init_std)  # noqa: E731  (a new instance per table)
        self.embeddings = EmbeddingTables(self.layout, self.d, self.init_std, ordinal, name="tables")
        self.positions = {s.name: tf.keras.layers.Embedding(s.max_len, self.d, embeddings_initializer=init(),
                                                            name=layer_name("pos", s.name))
                          for s in self.layout.sequences}
        self.time_gaps = {s.name: tf.keras.layers.Embedding(s.time_gap_buckets, self.d, embeddings_initializer=init(),
                                                            name=layer_name("gap", s.name))
                          for s in self.layout.sequences}
        self.combiners = {s.name: tf.keras.layers.Dense(self.d, name=layer_name("combine", s.name))
                          for s in self.layout.sequences if combiner == "concat_linear" and len(s.fields) > 1}

    # -- categorical ---------------------------------------------------------------------
    def categorical_tokens(self, features, training=False):
        """C [B, N_c, d] in layout order, or None when the layout has no categorical input. Training
        with ``id_dropout`` p: each non-ordinal token's id is replaced by 0 (missing) with probability p."""
        if not self.layout.categorical:
            return None
        return tf.stack([self.embeddings.lookup(f, self._drop(i, f, features[cat_key(f.name)], training))
                         for i, f in enumerate(self.layout.categorical)], axis=1)

    def bind_dropout_seed(self, seed_fn) -> None:
        """Draw id dropout's masks from ``seed_fn()`` (an int64 [2] seed, read at every training call)
        instead of TensorFlow's stateful generator.

        The trainer binds (its seed, the global step): the masks of a step are then a function of the
        checkpointed step, so a run resumed from a checkpoint draws the masks the uninterrupted run drew
        (exact resume), and a stateless draw per field and replica (the seed folded with the field's
        index and ``replica_id_in_sync_group``) gives every replica its own masks. Unbound (a direct
        ``call(training=True)``), the masks come from ``tf.random.uniform``."""
        self._dropout_seed = seed_fn

    def _drop(self, index, field, ids, training):
        if not training or not self.id_dropout or field.ordinal:
            return ids
        if self._dropout_seed is None:
            noise = tf.random.uniform(tf.shape(ids))
        else:
            seed = tf.random.experimental.stateless_fold_in(tf.cast(self._dropout_seed(), tf.int64), index)
            replica = tf.distribute.get_replica_context()
            if replica is not None:
                seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
            noise = tf.random.stateless_uniform(tf.shape(ids), seed)
        return tf.where(noise < self.id_dropout, tf.zeros_like(ids), ids)

    # -- sequences -----------------------------------------------------------------------
    def sequence_rows(self, features):
        """[(values [R_b, d], rows [R_b, 2] int64, mask_b [B, T_b] bool)] in layout order: the tokens of
        eq. 2 of the real items only, as packed sequences (:mod:`~infnet_tf.layers.packed`; the
        look-ups, and so the embeddings' sparse gradients, cover the R_b real items, not the B·T_b steps)."""
        out = []
        for seq in self.layout.sequences:
            ids = [features[seq_key(seq.name, f.name)] for f in seq.fields]
            steps = tf.shape(ids[0], out_type=tf.int64)[1]
            length = tf.minimum(tf.cast(features[seq_key(seq.name, LENGTH)], tf.int64), steps)
            mask = tf.range(steps, dtype=tf.int64)[None, :] < length[:, None]
            rows = tf.where(mask)
            embs = [self.embeddings.lookup(f, tf.gather_nd(i, rows)) for f, i in zip(seq.fields, ids)]
            if seq.name in self.combiners:
                e = self.combiners[seq.name](tf.concat(embs, axis=-1))
            else:
                e = tf.add_n(embs) if len(embs) > 1 else embs[0]
            recency = tf.clip_by_value(tf.gather(length, rows[:, 0]) - 1 - rows[:, 1], 0, seq.max_len - 1)
            p = tf.cast(self.positions[seq.name](recency), self.compute_dtype)
            gaps = tf.gather_nd(features[seq_key(seq.name, TIME_GAP)], rows)
            if self.ordinal == "cumulative_with_gaps":
                r = tf.cast(cumulative_lookup(self.time_gaps[seq.name], gaps), self.compute_dtype)
            else:
                r = tf.cast(self.time_gaps[seq.name](gaps), self.compute_dtype)
            out.append((e + p + r, rows, mask))
        return out

    def sequence_tokens(self, features):
        """[(S_b [B, T_b, d], mask_b [B, T_b] bool)] in layout order (eq. 2), zeros at padding."""
        return [(to_dense(v, rows, mask), mask) for v, rows, mask in self.sequence_rows(features)]

    def pooled_sequences(self, features):
        """{type: masked mean of its tokens [B, d]} (zeros for an all-padding row)."""
        return {seq.name: packed_mean(*packed)
                for seq, packed in zip(self.layout.sequences, self.sequence_rows(features))}

    @no_autograph
    def call(self, features, training=False, packed=False):
        """(C, sequences): the sequences as :meth:`sequence_tokens`, or with ``packed`` as
        :meth:`sequence_rows`."""
        seqs = self.sequence_rows(features) if packed else self.sequence_tokens(features)
        return self.categorical_tokens(features, training), seqs

    def get_config(self):
        return {**super().get_config(), "layout": self.layout.to_dict(), "d": self.d,
                "combiner": self.combiner, "init_std": self.init_std, "ordinal": self.ordinal,
                "id_dropout": self.id_dropout}


def bind_dropout_seeds(model, seed_fn) -> None:
    """:meth:`FeatureTokenizer.bind_dropout_seed` on every tokenizer of ``model``."""
    for module in model.submodules:
        if isinstance(module, FeatureTokenizer):
            module.bind_dropout_seed(seed_fn)


def tokenizer_flops(layout: FeatureLayout, d: int, combiner: str) -> int:
    """FLOPs per example of the tokenizer's contractions (projections to d, concat_linear), every
    sequence counted full (``max_len`` real items; an upper bound, the sequences' work runs on the real
    items). :meth:`FeatureTokenizer.pooled_sequences` adds none (segment sums)."""
    total = sum(projection_flops(layout, f, d) for f in layout.categorical)
    for seq in layout.sequences:
        per_step = sum(projection_flops(layout, f, d) for f in seq.fields)
        if combiner == "concat_linear" and len(seq.fields) > 1:
            per_step += 2 * len(seq.fields) * d * d
        total += seq.max_len * per_step
    return total
