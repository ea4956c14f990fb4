"""Embedding tables of a :class:`FeatureLayout`, one per ``table`` name (§3.1).

Inputs naming the same table share it (e.g. ``video_id`` as a categorical token and as a sequence's
item field). A table whose ``embedding_dim`` differs from d is followed by a bias-free linear
projection to d (shared with the table). Keras ``Embedding`` returns float32 under mixed
precision (TF issue 41614), so look-ups are cast to the compute dtype here.

Ordinal inputs (binned numbers, ``TokenInput.ordinal``) may be encoded as ordered
(``ordinal="cumulative"``, beyond the paper; its §5 open question 1 asks how to represent numbers):
the token of bucket j >= 1 is the sum of the table's rows 1..j (a thermometer code times the table),
so neighbouring buckets share all rows but one and a bucket seen rarely in training still sits
between its neighbours; row 0 (missing) stays a free vector. Same table, same variables as the
plain look-up (``ordinal="none"``). ``ordinal="cumulative_with_gaps"`` also encodes the behaviour
sequences' time-gap buckets so (:class:`~infnet_tf.layers.tokenizers.FeatureTokenizer`; log-binned gaps,
bucket 0 = padding).
"""
from __future__ import annotations

import re

import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.data.layout import FeatureLayout, TokenInput


ORDINAL_ENCODINGS = ("none", "cumulative", "cumulative_with_gaps")


def layer_name(prefix: str, name: str) -> str:
    """A Keras/TF-safe layer name for a feature or table name."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"


def table_dims(layout: FeatureLayout, d: int) -> dict[str, tuple[int, int]]:
    """Table name -> (vocab size, embedding dim); fields sharing a table must agree on the dim."""
    dims: dict[str, tuple[int, int]] = {}
    for field in layout.all_token_inputs():
        spec = (field.vocab_size, field.embedding_dim or d)
        if dims.setdefault(field.table, spec) != spec:
            raise ValueError(f"layout: table {field.table!r} is shared by fields of different "
                             f"embedding_dim ({dims[field.table][1]} vs {spec[1]} for {field.name!r})")
    return dims


@tf.keras.utils.register_keras_serializable(package="infnet")
class EmbeddingTables(tf.keras.layers.Layer):
    """``lookup(field, ids)`` -> embeddings [..., d] in the compute dtype."""

    def __init__(self, layout, d: int, init_std: float = 0.0, ordinal: str = "none", **kwargs):
        super().__init__(**kwargs)
        if ordinal not in ORDINAL_ENCODINGS:
            raise ValueError(f"embeddings: ordinal must be one of {'|'.join(ORDINAL_ENCODINGS)}, got {ordinal!r}")
        self.layout = layout if isinstance(layout, FeatureLayout) else FeatureLayout.from_dict(layout)
        self.d, self.init_std, self.ordinal = int(d), float(init_std), ordinal
        self.dims = table_dims(self.layout, self.d)
        self.tables = {t: tf.keras.layers.Embedding(vocab, dim, embeddings_initializer=embedding_initializer(init_std),
                                                    name=layer_name("emb", t))
                       for t, (vocab, dim) in self.dims.items()}
        self.projections = {t: tf.keras.layers.Dense(self.d, use_bias=False, name=layer_name("proj", t))
                            for t, (_, dim) in self.dims.items() if dim != self.d}

    def lookup(self, field: TokenInput, ids):
        if field.ordinal and self.ordinal != "none":
            x = cumulative_lookup(self.tables[field.table], ids)
        else:
            x = self.tables[field.table](ids)
        x = tf.cast(x, self.compute_dtype)
        if field.table in self.projections:
            x = self.projections[field.table](x)
        return x

    @no_autograph
    def call(self, ids_by_table):
        """{table: ids} -> {table: embeddings}; mostly for building and tests."""
        fields = {f.table: f for f in self.layout.all_token_inputs()}
        return {t: self.lookup(fields[t], ids) for t, ids in ids_by_table.items()}

    def get_config(self):
        return {**super().get_config(), "layout": self.layout.to_dict(), "d": self.d, "init_std": self.init_std,
                "ordinal": self.ordinal}


def cumulative_lookup(layer, ids):
    """Ordered-bucket look-up in Keras ``Embedding`` ``layer``: row 0 as stored, id j >= 1 the sum of
    rows 1..j (float32, as the layer's own look-up).

    The table of sums is ``cumsum(rows * keep) + first * rows[0]`` (keep = 0 for row 0, 1 after;
    first = its complement), bit-identical to concatenating row 0 with the cumsum of rows 1.. (adding
    an exact zero first changes no sum) but built without a concat: the look-up's gradient (one row
    per id, [R, d] for the R real items of a sequence's time gaps) is summed into the small table
    once, instead of first being split by index ranges for the two pieces of a concat (a dozen ops
    per field per step over every looked-up row; bench/REPORT.md, Efficiency, nineteenth session)."""
    if not layer.built:   # build as a Keras call would (scoped variable name, checkpoint path)
        layer(tf.zeros([1], tf.int64))
    rows = tf.convert_to_tensor(layer.embeddings)
    first = np.zeros([rows.shape[0], 1], rows.dtype.as_numpy_dtype)
    first[0] = 1.0
    return tf.gather(tf.math.cumsum(rows * (1.0 - first), axis=0) + first * rows[:1], ids)


def embedding_initializer(init_std: float = 0.0):
    """Keras' default ``U(-0.05, 0.05)`` for ``init_std == 0``, else a truncated normal of that std."""
    if init_std > 0:
        return tf.keras.initializers.TruncatedNormal(stddev=float(init_std))
    return "uniform"


def projection_flops(layout: FeatureLayout, field: TokenInput, d: int) -> int:
    """FLOPs of projecting one look-up of ``field`` to width d (0 when it already has width d)."""
    dim = field.embedding_dim or d
    return 0 if dim == d else 2 * dim * d
