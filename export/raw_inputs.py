"""Raw serving requests built from real rows: the transform run backwards, columns, Examples.

The dataset job's TFRecords hold *transformed* rows (ids). To warm up, validate and benchmark the
raw-feature signature on real rows, :class:`RawDecoder` maps each id back to a raw value that the
transform maps to that very id:

* vocabulary id ``1 + r`` -> the r-th vocabulary value; an OOV id -> a value outside the vocabulary
  whose hash falls in that OOV bucket (found by search over decimal integers (as ints or strings));
* hash-bucket id -> a value whose hash is that bucket (same search);
* dense/counter id k -> ``b[k-2]`` (the boundary itself: buckets are closed on the left, so this also
  exercises the boundary rule), id 1 -> ``b[0] - 1``, id 0 -> NaN;
* time-gap id k -> an event time ``request_time - b[k-2]`` (id 1: the request time itself);
* id 0 (missing) -> the null of the column (NaN, "", ``INT_NULL``).

So ``transform(decode(inputs)) == inputs`` exactly, and ``serving_default(decode(x))`` must equal
``predict_model_inputs(x)`` — the export's self-check (:func:`export.exporter.validate`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from infnet_tf.data.keys import LENGTH, TIME_GAP, cat_key, seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.transform import TransformArtifact
from infnet_tf.transform_graph import EVENT_TIME, INT_NULL, REQUEST_TIME, STRING_NULL, RawInput, raw_inputs

_SEARCH_CHUNK = 1 << 16
_SEARCH_LIMIT = 1 << 24


def _hash_buckets(strings: Sequence[bytes], n: int) -> np.ndarray:
    import tensorflow as tf

    return tf.strings.to_hash_bucket_fast(np.asarray(strings, dtype=object), n).numpy()


class RawDecoder:
    """Model inputs (ids) -> raw serving columns; see the module docstring."""

    def __init__(self, artifact: TransformArtifact, layout: FeatureLayout | None = None):
        self.artifact = artifact
        self.layout = layout or artifact.feature_layout
        self.inputs = raw_inputs(artifact, self.layout)
        self.by_name = {r.name: r for r in self.inputs}
        self._preimages: dict[str, dict[int, Any]] = {}

    # -- id -> value per token -----------------------------------------------------------------
    def _search(self, token: str, dtype: str, wanted: set[int], n: int, exclude: set) -> dict[int, Any]:
        """Raw values whose ``hash mod n`` is each wanted bucket (values in ``exclude`` skipped).

        Candidates are the decimal integers 0, 1, 2, ... (as ints or as strings), hashed in growing
        chunks; each bucket takes the first candidate that lands in it.
        """
        found: dict[int, Any] = {}
        start, chunk = 0, 4096
        excluded = {int(v) for v in exclude if not isinstance(v, bytes)} if dtype == "int64" else \
            {v for v in exclude if isinstance(v, bytes)}
        while wanted - set(found) and start < _SEARCH_LIMIT:
            candidates = np.arange(start, start + chunk, dtype=np.int64)
            strings = candidates.astype(str).astype(object)
            strings = np.array([x.encode() for x in strings], dtype=object)
            buckets = _hash_buckets(strings, n)
            first_bucket, first_index = np.unique(buckets, return_index=True)
            for b, i in zip(first_bucket.tolist(), first_index.tolist()):
                if b in wanted and b not in found:
                    value = int(candidates[i]) if dtype == "int64" else strings[i]
                    if value in excluded:  # a vocabulary value: look at every candidate of this bucket
                        for j in np.flatnonzero(buckets == b).tolist():
                            value = int(candidates[j]) if dtype == "int64" else strings[j]
                            if value not in excluded:
                                found[b] = value
                                break
                    else:
                        found[b] = value
            start += chunk
            chunk = min(chunk * 4, _SEARCH_CHUNK)
        missing = wanted - set(found)
        if missing:
            raise ValueError(f"{token}: no raw value found for hash bucket(s) {sorted(missing)[:5]}")
        return found

    def categorical_values(self, token: str, ids: np.ndarray, dtype: str) -> np.ndarray:
        """Raw values (``dtype``: int64 | string) that the transform maps to ``ids`` (vectorised)."""
        entry = self.artifact.categorical_transform(token)
        ids = np.asarray(ids, dtype=np.int64)
        if not entry.is_hash:
            values = list(entry.values)
            n, offset = entry.oov_buckets, 1 + len(values)
            exclude = set(v.encode() if isinstance(v, str) else v for v in values)
        else:
            values, n, offset, exclude = [], entry.hash_buckets, 1, set()
        null = STRING_NULL if dtype == "string" else INT_NULL
        if dtype == "string":
            table = [null] + [v.encode() if isinstance(v, str) else str(v).encode() for v in values]
        else:
            table = [null] + [int(v) for v in values]
        unique, inverse = np.unique(ids, return_inverse=True)
        wanted = {int(i) - offset for i in unique if i >= offset}
        cache = self._preimages.setdefault(token, {})
        todo = wanted - set(cache)
        if todo:
            cache.update(self._search(token, dtype, todo, n, exclude))
        decoded = [table[i] if i < offset else cache[i - offset] for i in unique.tolist()]
        out = np.empty(len(decoded), dtype=object if dtype == "string" else np.int64)
        out[:] = decoded
        return out[inverse].reshape(ids.shape)

    def dense_values(self, token: str, ids: np.ndarray) -> np.ndarray:
        b = np.asarray(self.artifact.binned_transform(token).boundaries, dtype=np.float64)
        table = np.concatenate([[np.nan, (b[0] - 1.0) if b.size else 0.0], b])
        return table[np.clip(np.asarray(ids, dtype=np.int64), 0, table.size - 1)]

    def id_count(self, token: str, vocab_size: int) -> int:
        """How many ids (``0 .. n-1``) raw values of ``token`` can map to. A binned token's vocabulary
        reserves ``num_buckets + 1`` ids, but deduplicated quantile boundaries reach fewer of them."""
        if token in self.artifact.categorical:
            return vocab_size
        return min(vocab_size, len(self.artifact.binned_transform(token).boundaries) + 2)

    def gap_id_count(self, seq: str, buckets: int) -> int:
        """How many time-gap ids (``0 .. n-1``) raw event times of ``seq`` can map to."""
        return min(buckets, len(self.artifact.time_gap_transform(seq).boundaries_ms) + 2)

    def gap_ms(self, seq: str, ids: np.ndarray) -> np.ndarray:
        b = np.asarray(self.artifact.time_gap_transform(seq).boundaries_ms, dtype=np.int64)
        table = np.concatenate([[0, 0], b]).astype(np.int64)
        return table[np.clip(np.asarray(ids, dtype=np.int64), 0, table.size - 1)]

    # -- whole batches --------------------------------------------------------------------------------
    def decode(self, inputs: Mapping[str, np.ndarray],
               request_time_ms: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw serving columns (numpy, the signature's dtypes) for a batch of model inputs."""
        batch = len(next(iter(inputs.values())))
        now = np.asarray(request_time_ms if request_time_ms is not None else np.full(batch, 1_800_000_000_000),
                         dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        for raw in self.inputs:
            if raw.kind in ("categorical", "dense", "counter"):
                ids = np.asarray(inputs[cat_key(raw.token)])
                out[raw.name] = (self.categorical_values(raw.token, ids, raw.dtype) if raw.kind == "categorical"
                                 else self.dense_values(raw.token, ids))
        for seq in self.layout.sequences:
            length = np.asarray(inputs[seq_key(seq.name, LENGTH)], dtype=np.int64)
            for f in seq.fields:
                raw = self.by_name[seq_key(seq.name, f.name)]
                ids = np.asarray(inputs[seq_key(seq.name, f.name)])
                out[raw.name] = self.categorical_values(f.name, ids, raw.dtype)
            gaps = self.gap_ms(seq.name, np.asarray(inputs[seq_key(seq.name, TIME_GAP)]))
            out[seq_key(seq.name, EVENT_TIME)] = now[:, None] - gaps
            out[seq_key(seq.name, LENGTH)] = length
        if self.layout.sequences:
            out[REQUEST_TIME] = now
        return out


# -- columns <-> rows <-> Examples ---------------------------------------------------------------------
def to_rows(columns: Mapping[str, np.ndarray], inputs: Sequence[RawInput]) -> list[dict[str, Any]]:
    """JSON-able raw rows (the client's ``--rows`` format): nulls as None, sequences cut to length."""
    n = len(next(iter(columns.values())))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for raw in inputs:
            value = columns[raw.name][i]
            if raw.rank == 2:
                length = int(columns[seq_key(raw.seq, LENGTH)][i])
                row[raw.name] = [_plain(v, raw) for v in value[:length]]
            else:
                row[raw.name] = _plain(value, raw)
        rows.append(row)
    return rows


def _plain(value: Any, raw: RawInput) -> Any:
    if raw.dtype == "float64":
        v = float(value)
        return None if np.isnan(v) else v
    if raw.dtype == "string":
        return None if value == STRING_NULL else (value.decode() if isinstance(value, bytes) else str(value))
    v = int(value)
    return None if v == INT_NULL and raw.kind in ("categorical", "seq_field") else v


def to_examples(columns: Mapping[str, np.ndarray], inputs: Sequence[RawInput]) -> list[bytes]:
    """Serialized raw ``tf.train.Example``s for the ``predict_examples`` signature (nulls absent)."""
    import tensorflow as tf

    def feature(values: Iterable[Any], dtype: str) -> "tf.train.Feature":
        values = list(values)
        if dtype == "float64":
            return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
        if dtype == "string":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(v) for v in values]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    n = len(next(iter(columns.values())))
    out = []
    for i in range(n):
        feats = {}
        for raw in inputs:
            if raw.kind == "seq_length":
                continue
            value = columns[raw.name][i]
            if raw.rank == 2:
                length = int(columns[seq_key(raw.seq, LENGTH)][i])
                feats[raw.name] = feature(value[:length], raw.dtype)
                continue
            if raw.dtype == "float64" and np.isnan(value) or raw.dtype == "string" and value == STRING_NULL or \
                    raw.dtype == "int64" and raw.kind == "categorical" and int(value) == INT_NULL:
                continue  # null: the feature is absent
            feats[raw.name] = feature([value], raw.dtype)
        out.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return out


def slice_columns(columns: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[start:stop] for k, v in columns.items()}


def concat_columns(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate raw column batches, right-padding rank-2 columns to the widest."""
    out = {}
    for key in parts[0]:
        arrays = [np.asarray(p[key]) for p in parts]
        if arrays[0].ndim == 2:
            width = max(a.shape[1] for a in arrays)
            pad = STRING_NULL if arrays[0].dtype == object else 0
            arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])], constant_values=pad) if a.shape[1] < width else a
                      for a in arrays]
        out[key] = np.concatenate(arrays)
    return out
