"""The in-graph twin of :mod:`infnet_tf.transform`: raw serving features -> model inputs.

:class:`TransformGraph` is a ``tf.Module`` built from a :class:`~infnet_tf.transform.TransformArtifact`.
Everything it needs is inside the graph: vocabularies are ``tf.lookup.StaticHashTable``s initialised
from constants when the SavedModel loads (no "Table not initialized", no Python-side state), dense
and counter boundaries and time-gap boundaries are constants. The semantics are exactly those of the
numpy transform (see that module's docstring), held together by
``TransformArtifact.assert_parity`` (``tests/export/test_transform_graph.py``):

* dense / counter: ``1 + searchsorted(boundaries_f64, x_f64, side="right")``, 0 for null (NaN);
* vocabulary: ``1 + rank``; unseen ``1 + V + to_hash_bucket_fast(string form, oov_buckets)``; null 0;
* hash buckets: ``1 + to_hash_bucket_fast(string form, n)``; null 0 (string form of an int: decimal);
* time gaps: ``gap_ms = request_time_ms - event_time_ms`` (int64), ``1 + searchsorted(boundaries_ms,
  gap_ms, side="right")``; padding positions 0;
* sequences: positions ``>= length`` are padding whatever they hold; of the ``length`` real items
  (most recent last) the most recent ``max_len`` are kept, right-padded with 0 to ``max_len``,
  exactly as :func:`infnet_tf.data.tensors.densify_sequences` does for TFRecords.

The raw serving contract (:func:`raw_inputs`) — one tensor per raw feature, by name:

==============================  ============================  ====================  =================
input                           dtype                         shape                 null / padding
==============================  ============================  ====================  =================
``<categorical field>``         int64 or string (raw column)  [B]                   ``INT_NULL`` / ""
``<dense field>``               float64                       [B]                   NaN
``<counter token>``             float64 (the raw count)       [B]                   NaN
``seq/<type>/<item field>``     like the categorical field    [B, T] (any T >= 0)   beyond ``length``
``seq/<type>/<side field>``     like the categorical field    [B, T]                ``INT_NULL`` / ""
``seq/<type>/event_time_ms``    int64 epoch ms                [B, T]                beyond ``length``
``seq/<type>/length``           int64, 0 <= length <= T       [B]
``request_time_ms``             int64 epoch ms                [B]                   (only with sequences)
==============================  ============================  ====================  =================

Nulls: a raw tensor cannot hold "no value", so :meth:`TransformGraph.transform` reads NaN (floats),
the empty string (string columns) and ``INT_NULL`` = -2**63 (int64 columns) as null. The numpy
transform treats only None/NaN as null; the functions taking an explicit ``is_null`` mask
(:meth:`TransformGraph.categorical_ids`) are the exact twin, and the ``tf.train.Example`` path
(:meth:`TransformGraph.transform_examples`: an absent feature is null) uses them.

Every input is checked at run time (rank, equal batch sizes, equal sequence widths within a type,
``0 <= length <= T``); a violation fails the call with ``InvalidArgumentError`` naming the input —
never a silently wrong answer. (Static signature shapes alone are not enough: TF Serving feeds
tensors without checking them against the placeholders' shapes.)
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from infnet_tf.data.keys import LENGTH, TIME_GAP, cat_key, seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.transform import TIME_GAP_PREFIX, TransformArtifact

import tensorflow as tf

REQUEST_TIME = "request_time_ms"
EVENT_TIME = "event_time_ms"
INT_NULL = int(np.iinfo(np.int64).min)
STRING_NULL = b""
_TF_DTYPES = {"int64": tf.int64, "float64": tf.float64, "string": tf.string}

def _assert(condition: tf.Tensor, data: list, summarize: int = 16) -> tf.Operation:
    """A plain ``Assert`` op (``tf.debugging.Assert`` wraps it in a cond: slower to trace, same effect)."""
    data = [tf.constant(d) if isinstance(d, str) else d for d in data]
    return tf.raw_ops.Assert(condition=condition, data=data, summarize=summarize)


__all__ = ["EVENT_TIME", "INT_NULL", "REQUEST_TIME", "RawInput", "STRING_NULL", "TransformGraph", "raw_inputs",
           "raw_dtype"]


@dataclasses.dataclass(frozen=True)
class RawInput:
    """One raw serving input. ``kind``: categorical | dense | counter | seq_field | seq_time | seq_length |
    request_time; ``token`` is the transform token it goes through (None for times and lengths)."""

    name: str
    dtype: str  # int64 | float64 | string
    rank: int
    kind: str
    token: str | None = None
    seq: str | None = None

    @property
    def tf_dtype(self) -> tf.DType:
        return _TF_DTYPES[self.dtype]

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None] * self.rank, self.tf_dtype, name=self.name)

    @property
    def null_value(self) -> Any:
        return {"int64": INT_NULL, "float64": float("nan"), "string": STRING_NULL}[self.dtype]


def raw_dtype(artifact: TransformArtifact, token: str) -> str:
    """The raw column dtype of a categorical token (int64 | string), float64 for dense/counters.

    A vocabulary's dtype is its column's. A hash-bucket field records its column's dtype under
    ``"dtype"`` when the dataset job knows it; without it the input is a string (the hash is taken of
    the string form anyway, so an integer id sent as its decimal string gives the same id).
    """
    if token in artifact.categorical:
        entry = artifact.categorical_transform(token)
        dtype = entry.raw_dtype or entry.dtype
        if dtype not in ("int64", "string"):
            raise ValueError(f"transform artifact: categorical[{token}]: unsupported dtype {dtype!r}")
        return dtype
    if token in artifact.dense or token in artifact.counters:
        return "float64"
    raise KeyError(f"transform artifact has no token {token!r}")


def raw_inputs(artifact: TransformArtifact, layout: FeatureLayout | None = None) -> list[RawInput]:
    """The raw serving inputs, in order: tokens (artifact order), sequences, request time."""
    layout = layout or artifact.feature_layout
    out: list[RawInput] = []
    for f in layout.categorical:
        kind = "categorical" if f.name in artifact.categorical else (
            "dense" if f.name in artifact.dense else "counter")
        out.append(RawInput(f.name, raw_dtype(artifact, f.name), 1, kind, token=f.name))
    for seq in layout.sequences:
        names = [f.name for f in seq.fields]
        for reserved in (EVENT_TIME, LENGTH, TIME_GAP):
            if reserved in names:
                raise ValueError(f"sequence {seq.name!r}: a field may not be called {reserved!r}")
        if seq.name not in artifact.time_gap:
            raise ValueError(f"transform artifact has no time_gap entry for sequence {seq.name!r}")
        for f in seq.fields:
            out.append(RawInput(seq_key(seq.name, f.name), raw_dtype(artifact, f.name), 2, "seq_field",
                                token=f.name, seq=seq.name))
        out.append(RawInput(seq_key(seq.name, EVENT_TIME), "int64", 2, "seq_time", seq=seq.name))
        out.append(RawInput(seq_key(seq.name, LENGTH), "int64", 1, "seq_length", seq=seq.name))
    if layout.sequences:
        out.append(RawInput(REQUEST_TIME, "int64", 1, "request_time"))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise ValueError(f"raw serving inputs collide: {sorted(n for n in names if names.count(n) > 1)}")
    return out


class TransformGraph(tf.Module):
    """Raw features -> model inputs, in TensorFlow, from a transform artifact (see module docstring)."""

    def __init__(self, artifact: TransformArtifact, layout: FeatureLayout | None = None, name: str = "transform",
                 tables: Mapping[str, Any] | None = None):
        super().__init__(name=name)
        self._artifact = artifact
        self.layout = layout or artifact.feature_layout
        self.inputs = raw_inputs(artifact, self.layout)
        self.input_by_name = {r.name: r for r in self.inputs}
        self._dtype = {t: raw_dtype(artifact, t) for t in artifact.categorical}
        if tables is not None:   # another TransformGraph's vocabulary tables (see :meth:`restricted`)
            self.tables = dict(tables)
            return
        tables = {}
        for token in sorted(artifact.categorical):
            entry = artifact.categorical_transform(token)
            if not entry.is_hash and entry.values:
                key_dtype = tf.int64 if entry.dtype == "int64" else tf.string
                keys = tf.constant(list(entry.values), dtype=key_dtype)
                ids = tf.range(1, len(entry.values) + 1, dtype=tf.int64)
                tables[token] = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=0, name=f"vocab_{token}")
        self.tables = tables

    def restricted(self, layout: FeatureLayout, name: str) -> "TransformGraph":
        """The same transform for a part of the layout (e.g. one side of a ranking request: its raw
        inputs, checks and model inputs only), sharing this graph's vocabulary tables."""
        return TransformGraph(self._artifact, layout, name=name, tables=self.tables)

    # -- signature specs ----------------------------------------------------------------------
    def input_signature(self) -> dict[str, tf.TensorSpec]:
        return {r.name: r.spec() for r in self.inputs}

    # -- per-token id functions (the exact twins of infnet_tf.transform) --------------------------
    def dense_ids(self, token: str, values: tf.Tensor) -> tf.Tensor:
        """Bucket ids of a dense or counter token; ``values`` float64 (NaN = null), any shape."""
        x = tf.cast(values, tf.float64)
        b = tf.constant(np.asarray(self._artifact.binned_transform(token).boundaries, dtype=np.float64),
                        dtype=tf.float64)
        flat = tf.reshape(x, [-1])
        ids = 1 + tf.searchsorted(b, flat, side="right", out_type=tf.int64)
        ids = tf.where(tf.math.is_nan(flat), tf.zeros_like(ids), ids)
        return tf.reshape(ids, tf.shape(x, out_type=tf.int64))

    def _string_form(self, values: tf.Tensor) -> tf.Tensor:
        return values if values.dtype == tf.string else tf.strings.as_string(values)

    def categorical_ids(self, token: str, values: tf.Tensor, is_null: tf.Tensor | None = None) -> tf.Tensor:
        """Ids of a categorical token for raw ``values`` (its raw dtype), 0 where ``is_null``."""
        entry = self._artifact.categorical_transform(token)
        if entry.is_hash:
            ids = 1 + tf.strings.to_hash_bucket_fast(self._string_form(values), entry.hash_buckets)
        else:
            vocab_dtype = tf.int64 if entry.dtype == "int64" else tf.string
            if values.dtype != vocab_dtype:
                raise TypeError(f"{token}: raw values of dtype {values.dtype.name}, but the vocabulary holds "
                                f"{vocab_dtype.name}")
            if token in self.tables:
                found = self.tables[token].lookup(values)
            else:
                found = tf.zeros_like(values, dtype=tf.int64)
            ids = self._with_oov(found, values, len(entry.values), entry.oov_buckets)
        if is_null is not None:
            ids = tf.where(is_null, tf.zeros_like(ids), ids)
        return ids

    def _with_oov(self, found: tf.Tensor, values: tf.Tensor, vocab_len: int, oov_buckets: int) -> tf.Tensor:
        """``found`` where > 0, else ``1 + V + hash mod oov_buckets`` — hashing only the unseen values."""
        flat_found = tf.reshape(found, [-1])
        flat_values = tf.reshape(values, [-1])
        oov_pos = tf.where(tf.equal(flat_found, 0))
        oov_ids = 1 + vocab_len + tf.strings.to_hash_bucket_fast(
            self._string_form(tf.gather_nd(flat_values, oov_pos)), oov_buckets)
        flat = tf.tensor_scatter_nd_update(flat_found, oov_pos, oov_ids)
        return tf.reshape(flat, tf.shape(found, out_type=tf.int64))

    def time_gap_ids(self, seq: str, gap_ms: tf.Tensor) -> tf.Tensor:
        """Time-gap bucket ids (>= 1) for int64 gaps in ms, any shape."""
        b = tf.constant(np.asarray(self._artifact.time_gap_transform(seq).boundaries_ms, dtype=np.int64),
                        dtype=tf.int64)
        gap = tf.cast(gap_ms, tf.int64)
        ids = 1 + tf.searchsorted(b, tf.reshape(gap, [-1]), side="right", out_type=tf.int64)
        return tf.reshape(ids, tf.shape(gap, out_type=tf.int64))

    def token_ids(self, token: str, values: tf.Tensor, is_null: tf.Tensor | None = None) -> tf.Tensor:
        if token in self._artifact.categorical:
            return self.categorical_ids(token, values, is_null)
        ids = self.dense_ids(token, values)
        return ids if is_null is None else tf.where(is_null, tf.zeros_like(ids), ids)

    # -- whole requests ---------------------------------------------------------------------------
    def null_spec(self) -> dict[str, tf.TensorSpec]:
        """Specs of the explicit null masks :meth:`transform` accepts (per-row categorical inputs)."""
        return {r.name: tf.TensorSpec([None], tf.bool, name=f"{r.name}/is_null")
                for r in self.inputs if r.kind == "categorical"}

    def null_masks(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """:meth:`null_spec` masks from the signature-level convention."""
        return {name: self.null_mask(self.input_by_name[name], features[name]) for name in self.null_spec()}

    def null_mask(self, raw: RawInput, values: tf.Tensor) -> tf.Tensor | None:
        """The signature-level null convention: NaN, "" or INT_NULL."""
        if raw.dtype == "float64":
            return None  # NaN is null inside dense_ids already
        if raw.dtype == "string":
            return tf.equal(values, STRING_NULL)
        return tf.equal(values, tf.constant(INT_NULL, tf.int64))

    def validate(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Runtime checks of a raw request; returns the inputs gated on the checks passing."""
        checks = []
        first = self.inputs[0].name
        batch = tf.shape(features[first], out_type=tf.int64)[0]
        for raw in self.inputs:
            x = features[raw.name]
            shape = tf.shape(x, out_type=tf.int64)
            want = "[batch]" if raw.rank == 1 else "[batch, T]"
            checks.append(_assert(
                tf.equal(tf.raw_ops.Rank(input=x), raw.rank),
                [f"input {raw.name} must have rank {raw.rank} {want}; got shape", shape]))
        with tf.control_dependencies(checks):
            sizes = []
            for raw in self.inputs:
                x = features[raw.name]
                shape = tf.shape(x, out_type=tf.int64)
                sizes.append(_assert(
                    tf.equal(shape[0], batch),
                    [f"input {raw.name} has batch size", shape[0], f"but {first} has", batch]))
            for seq in self.layout.sequences:
                names = [seq_key(seq.name, f.name) for f in seq.fields] + [seq_key(seq.name, EVENT_TIME)]
                width = tf.shape(features[names[0]], out_type=tf.int64)[1]
                for name in names[1:]:
                    sizes.append(_assert(
                        tf.equal(tf.shape(features[name], out_type=tf.int64)[1], width),
                        [f"input {name} has width", tf.shape(features[name])[1], f"but {names[0]} has",
                         width, f"(all seq/{seq.name}/* matrices must have the same shape)"]))
                length = features[seq_key(seq.name, LENGTH)]
                sizes.append(_assert(
                    tf.reduce_all((length >= 0) & (length <= width)),
                    [f"input seq/{seq.name}/length must be in [0, T] with T =", width,
                     f"(the width of the seq/{seq.name}/* matrices); got", length], summarize=16))
        with tf.control_dependencies(sizes):
            return {k: tf.identity(v) for k, v in features.items()}

    def transform(self, features: Mapping[str, tf.Tensor], validate: bool = True,
                  nulls: Mapping[str, tf.Tensor] | None = None) -> dict[str, tf.Tensor]:
        """Model inputs (:meth:`FeatureLayout.model_input_keys`) for a raw request.

        ``nulls`` (optional, by input name) are explicit null masks; without one the signature-level
        convention (:meth:`null_mask`) applies.
        """
        missing = [r.name for r in self.inputs if r.name not in features]
        if missing:
            raise KeyError(f"raw features missing: {missing}")
        if validate:
            features = self.validate(features)
        nulls = dict(nulls or {})

        def is_null(raw: RawInput, values: tf.Tensor):
            return nulls[raw.name] if raw.name in nulls else self.null_mask(raw, values)

        out: dict[str, tf.Tensor] = {}
        for f in self.layout.categorical:
            raw = self.input_by_name[f.name]
            x = features[raw.name]
            out[cat_key(f.name)] = self.token_ids(f.name, x, is_null(raw, x))
        for seq in self.layout.sequences:
            length = tf.cast(features[seq_key(seq.name, LENGTH)], tf.int64)
            kept = tf.minimum(length, seq.max_len)
            start = length - kept
            positions = tf.range(seq.max_len, dtype=tf.int64)
            valid = positions[tf.newaxis, :] < kept[:, tf.newaxis]            # [B, max_len]
            index = start[:, tf.newaxis] + positions[tf.newaxis, :]            # into [B, T]

            def window(x, pad):
                """The kept positions of a [B, T] matrix as [B, max_len], ``pad`` elsewhere."""
                width = tf.shape(x, out_type=tf.int64)[1]
                padded = tf.concat([x, tf.fill([tf.shape(x)[0], 1], tf.cast(pad, x.dtype))], axis=1)
                idx = tf.where(valid, index, width)  # column `width` is the pad column
                return tf.gather(padded, idx, batch_dims=1)

            for f in seq.fields:
                raw = self.input_by_name[seq_key(seq.name, f.name)]
                x = features[raw.name]
                null = is_null(raw, x)
                pad = STRING_NULL if raw.dtype == "string" else 0
                xw = window(x, pad)
                nw = window(tf.cast(null, tf.int64), 0) > 0 if null is not None else None
                ids = self.token_ids(f.name, xw, nw)
                out[seq_key(seq.name, f.name)] = tf.where(valid, ids, tf.zeros_like(ids))
            times = window(tf.cast(features[seq_key(seq.name, EVENT_TIME)], tf.int64), 0)
            gaps = tf.cast(features[REQUEST_TIME], tf.int64)[:, tf.newaxis] - times
            gap_ids = self.time_gap_ids(seq.name, gaps)
            out[seq_key(seq.name, TIME_GAP)] = tf.where(valid, gap_ids, tf.zeros_like(gap_ids))
            out[seq_key(seq.name, LENGTH)] = kept
        return out

    # -- tf.train.Example requests ------------------------------------------------------------------
    def example_parsing_spec(self) -> dict[str, Any]:
        """``tf.io.parse_example`` spec of raw Examples (see :meth:`transform_examples`)."""
        spec = {}
        for raw in self.inputs:
            if raw.kind == "seq_length":
                continue
            dtype = tf.float32 if raw.dtype == "float64" else raw.tf_dtype  # FloatList holds float32
            spec[raw.name] = tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)
        return spec

    def transform_examples(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        """Model inputs for a batch of serialized raw ``tf.train.Example``s (see :meth:`parse_examples`)."""
        features, nulls = self.parse_examples(serialized)
        return self.transform(features, validate=False, nulls=nulls)

    def parse_examples(self, serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """(raw features, explicit null masks of the per-row categorical inputs) of raw Examples.

        Each per-row feature holds at most one value (absent = null, exactly the numpy semantics); each
        sequence feature of a type is a list (most recent last) of the same length as the type's item
        list, event times included (a list cannot have holes, so a null side-information value inside
        a list is written as "" / ``INT_NULL``, as in the tensor signature); the item list's length
        is the sequence length; ``request_time_ms`` is required. Dense and counter values travel as
        FloatList, i.e. float32: a value within float32 rounding of a bucket boundary can land in
        the neighbouring bucket — send float64 through ``serving_default`` where that matters.
        """
        parsed = tf.io.parse_example(serialized, self.example_parsing_spec())
        features: dict[str, tf.Tensor] = {}
        nulls: dict[str, tf.Tensor] = {}
        checks = []
        for raw in self.inputs:
            if raw.kind == "seq_length":
                continue
            rt = parsed[raw.name]
            counts = rt.row_lengths()
            if raw.rank == 1:
                limit = "exactly one value" if raw.kind == "request_time" else "at most one value"
                ok = tf.equal(counts, 1) if raw.kind == "request_time" else counts <= 1
                checks.append(_assert(
                    tf.reduce_all(ok), [f"Example feature {raw.name} must hold {limit}; value counts:", counts],
                    summarize=16))
                dense = rt.to_tensor(default_value=tf.cast(0, rt.dtype) if raw.dtype != "string" else STRING_NULL,
                                     shape=[None, 1])[:, 0]
                if raw.dtype == "float64":
                    dense = tf.where(counts > 0, tf.cast(dense, tf.float64), tf.constant(np.nan, tf.float64))
                features[raw.name] = dense
                nulls[raw.name] = tf.equal(counts, 0)
            else:  # a list cannot hold "no value": inside sequences the sentinels ("" / INT_NULL) mean null
                pad = STRING_NULL if raw.dtype == "string" else 0
                features[raw.name] = rt.to_tensor(default_value=pad)
        for seq in self.layout.sequences:
            item = seq_key(seq.name, seq.fields[0].name)
            lengths = parsed[item].row_lengths()
            for name in [seq_key(seq.name, f.name) for f in seq.fields[1:]] + [seq_key(seq.name, EVENT_TIME)]:
                checks.append(_assert(
                    tf.reduce_all(tf.equal(parsed[name].row_lengths(), lengths)),
                    [f"Example feature {name} must have as many values as {item}; got", parsed[name].row_lengths(),
                     "vs", lengths], summarize=16))
            features[seq_key(seq.name, LENGTH)] = lengths
            width = tf.shape(features[item], out_type=tf.int64)[1]
            for name in [seq_key(seq.name, f.name) for f in seq.fields] + [seq_key(seq.name, EVENT_TIME)]:
                # pad every matrix of the type to the item matrix's width (to_tensor pads per feature)
                x = features[name]
                extra = tf.maximum(width - tf.shape(x, out_type=tf.int64)[1], 0)
                features[name] = tf.pad(x, [[0, 0], [0, extra]],
                                        constant_values=STRING_NULL if x.dtype == tf.string else 0)[:, :width]
        with tf.control_dependencies(checks):
            features = {k: tf.identity(v) for k, v in features.items()}
        return features, {k: v for k, v in nulls.items() if self.input_by_name[k].kind == "categorical"}

    # -- the parity helper's view ----------------------------------------------------------------------
    def parity_fn(self):
        """``fn(columns) -> {key: ids}`` for ``TransformArtifact.assert_parity`` (eager, explicit nulls)."""
        from infnet_tf.transform import split_nulls

        def fn(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            out = {}
            for key, values in columns.items():
                if key.startswith(TIME_GAP_PREFIX):
                    out[key] = self.time_gap_ids(key[len(TIME_GAP_PREFIX):], tf.constant(values, tf.int64)).numpy()
                    continue
                filled, null = split_nulls(values)
                dtype = raw_dtype(self._artifact, key)
                if dtype == "float64":
                    x = tf.constant(np.where(null, np.nan, np.asarray(filled, dtype=np.float64)), tf.float64)
                elif dtype == "int64":
                    x = tf.constant(np.asarray(filled, dtype=np.int64), tf.int64)
                else:
                    x = tf.constant([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in filled], tf.string)
                out[key] = self.token_ids(key, x, tf.constant(null)).numpy()
            return out

        return fn
