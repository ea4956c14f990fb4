"""Transform semantics: raw values -> ids, as pure vectorised numpy/pyarrow functions.

This module is the ground floor that both the Beam dataset job (``pipelines/``) and the in-graph
serving transform (``export/``) stand on. A :class:`TransformArtifact` holds everything learned from
the training window (boundaries, vocabularies, stats, the model-input layout) as versioned JSON, and
:meth:`TransformArtifact.transform_batch` turns a batch of raw columns into token ids. The in-graph
twin is held to it by :meth:`TransformArtifact.assert_parity`.

Id semantics (every id space reserves **id 0 for missing**):

* **Dense bucketize** (quantile and log binning, counter features): with sorted, distinct float64
  ``boundaries`` b_1 < ... < b_k (k <= num_buckets - 1)::

      id = 0                                  if x is null or NaN
      id = 1 + #{i : b_i <= x}                otherwise  (= 1 + searchsorted(b, x, side="right"))

  i.e. buckets are **closed on the left**: a value exactly on b_i lands in the bucket *above* it,
  id i + 1. Values below b_1 (and -inf) get id 1, values >= b_k (and +inf) get id k + 1, so the
  ends clamp. Comparisons are done in float64 (integers are exact up to 2**53); subnormal values
  count as 0 (TensorFlow's CPU kernels flush them to zero, so the twin does too). In TensorFlow:
  ``1 + tf.searchsorted(b_float64, x_float64, side="right")`` with NaN mapped to 0.
  ``vocab_size`` is always ``1 + num_buckets`` (fewer distinct boundaries just leave ids unused).
* **Quantile binning**: the boundaries are the interior approximate quantiles i/num_buckets
  (i = 1..num_buckets-1) of the training values (NaN and nulls ignored), de-duplicated.
* **Log binning**: f(x) = sign(x) * log1p(|x|) (defined for negative values and 0, odd and
  monotonic); [lo, hi] = [min f, max f] over the training values; num_buckets equal-width bins in
  f-space. The artifact stores the boundaries mapped back to raw space (f^-1(y) =
  sign(y) * expm1(|y|)), so applying log binning is the same bucketize as above: no logarithm is
  evaluated at transform time, which keeps numpy and TensorFlow bit-identical.
* **Vocabulary**: the training values seen at least ``min_count`` times, most frequent first, ties
  broken by value ascending (numbers numerically, strings by UTF-8 bytes). A value's id is
  ``1 + rank``; an unseen value gets ``1 + V + hash(value) mod oov_buckets``; null gets 0.
  Values are matched in the vocabulary's dtype; when a column's type differs from it (int column,
  string vocabulary or the reverse) both sides are compared in string form.
* **Hash buckets**: ``1 + hash(value) mod hash_buckets``; null gets 0.
* **hash(value)** is FarmHash Fingerprint64 of the UTF-8 string form of the value, i.e. exactly
  ``tf.strings.to_hash_bucket_fast(string_form, n)``, computed here without TensorFlow by
  :mod:`infnet_tf.fingerprint` (tested bit-exact against the op), so the serving graph
  reproduces it with the op itself. The string form of an
  integer is its decimal representation (``-12``), of a string the string itself.
* **Time-gap buckets** (fixed, nothing fitted): for an earlier event ``gap_ms`` before the
  impression, ``units = gap_ms // unit_ms`` and ``id = 1 + min(num_buckets - 1, floor(log2(1 +
  units)))``. It is computed as the bucketize above against the integer boundaries
  ``(2**k - 1) * unit_ms`` for k = 1..num_buckets-1, which is exact in integers. With the default
  unit of one minute and 16 buckets: id 1 < 1 min, 2 = 1 min, 3 = 2-3 min, ... 8 = 1-2 h, ...,
  12 = 17-34 h, ..., 16 >= 22.7 days. Padding positions are 0.

Nulls in the columns given to :meth:`TransformArtifact.transform_batch`: NaN (or None) in a
float/object array, None in an object array, or Arrow nulls in a ``pyarrow.Array``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infnet_tf.data.artifact import BinnedTransform, CategoricalTransform, TimeGapTransform
from infnet_tf.data.layout import FeatureLayout, SequenceInput, TaskInput, TokenInput
from infnet_tf.fingerprint import hash_buckets

ARTIFACT_FORMAT = "infnet.transform_artifact"
ARTIFACT_VERSION = 1
MISSING_ID = 0
HASH_FUNCTION = "farmhash_fingerprint64(utf8 string form) mod n  (= tf.strings.to_hash_bucket_fast)"
DEFAULT_TIME_GAP_UNIT_MS = 60_000
TIME_GAP_PREFIX = "time_gap/"
_TINY = np.finfo(np.float64).tiny

__all__ = [
    "ARTIFACT_FORMAT", "ARTIFACT_VERSION", "MISSING_ID", "TIME_GAP_PREFIX", "TransformArtifact",
    "bucketize", "hash_ids", "inverse_log_transform", "log_boundaries", "log_transform",
    "quantile_boundaries", "split_nulls", "string_form", "time_gap_boundaries", "time_gap_ids", "vocabulary_ids",
    "as_float", "fingerprint_buckets", "DEFAULT_TIME_GAP_UNIT_MS", "HASH_FUNCTION",
    "build_layout",
]


# ---------------------------------------------------------------------------------------------
# Value plumbing: numpy / pyarrow columns with nulls
# ---------------------------------------------------------------------------------------------
def _as_arrow(values: Any) -> pa.Array:
    """Any column (numpy, list, pyarrow) as one pyarrow Array; NaN/None/"" become nulls.

    An empty string is a missing value (id 0), as in the serving signature, where a string input
    has no other way to say null.
    """
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        np_arr = np.asarray(values)
        if np_arr.dtype.kind in "US":
            np_arr = np_arr.astype(object)
        arr = pa.array(np_arr, from_pandas=True)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    return arr


def as_float(values: Any) -> np.ndarray:
    """A numeric column as float64 with NaN for null (bools are 0/1)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    arr = _as_arrow(values)
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan)
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def string_form(values: Any) -> pa.Array:
    """The string form used for hashing and cross-type matching: decimal for integers."""
    arr = _as_arrow(values)
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        return pc.cast(arr, pa.string())
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int64())
    if pa.types.is_integer(arr.type) or pa.types.is_null(arr.type):
        return pc.cast(arr, pa.string())
    if pa.types.is_floating(arr.type):  # object columns of Python ints arrive as int64 already
        as_int = pc.cast(arr, pa.int64(), safe=True)  # raises for non-integral floats
        return pc.cast(as_int, pa.string())
    raise TypeError(f"cannot take the string form of a {arr.type} column")


def split_nulls(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(filled values, is_null): nulls replaced by 0 / "" for feeding a graph that takes a mask."""
    arr = _as_arrow(values)
    is_null = arr.is_null(nan_is_null=True).to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return pc.fill_null(arr, "").to_numpy(zero_copy_only=False), is_null
    filled = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    if filled.dtype.kind == "f":
        filled = np.where(is_null, 0.0, filled)
    return filled, is_null


# ---------------------------------------------------------------------------------------------
# Dense bucketize, quantile and log boundaries
# ---------------------------------------------------------------------------------------------
def bucketize(values: Any, boundaries: Sequence[float]) -> np.ndarray:
    """``1 + searchsorted(boundaries, x, 'right')``; 0 for null/NaN (see module docstring)."""
    x = as_float(values)
    x = np.where(np.abs(x) < _TINY, 0.0, x)  # subnormals count as 0, as on TensorFlow's CPU kernels
    b = np.asarray(boundaries, dtype=np.float64)
    ids = np.searchsorted(b, x, side="right").astype(np.int64) + 1
    ids[np.isnan(x)] = MISSING_ID
    return ids


def log_transform(x: Any) -> np.ndarray:
    """f(x) = sign(x) * log1p(|x|): defined everywhere, odd, monotonic."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))


def inverse_log_transform(y: Any) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * np.expm1(np.abs(y))


def log_boundaries(lo: float, hi: float, num_buckets: int) -> list[float]:
    """Raw-space boundaries of ``num_buckets`` equal-width bins of f-space [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or num_buckets < 2:
        return []
    edges = lo + (hi - lo) * np.arange(1, num_buckets, dtype=np.float64) / num_buckets
    return _distinct(inverse_log_transform(edges))


def quantile_boundaries(quantiles: Sequence[float], num_buckets: int) -> list[float]:
    """Interior boundaries from ``num_buckets + 1`` quantiles (min, i/num_buckets ..., max).

    Beam's approximate quantiles return every value instead when there are fewer values than
    requested quantiles; the interior then is every value but the extremes, which is still a
    sensible set of cut points.
    """
    q = [float(v) for v in quantiles if v is not None and math.isfinite(float(v))]
    if len(q) <= 2:
        return []
    return _distinct(np.asarray(q[1:-1], dtype=np.float64))


def _distinct(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    return [float(v) for v in np.unique(values)]


def time_gap_boundaries(num_buckets: int, unit_ms: int = DEFAULT_TIME_GAP_UNIT_MS) -> list[int]:
    """Integer gap boundaries in ms: ``(2**k - 1) * unit_ms`` for k = 1..num_buckets-1."""
    return [((1 << k) - 1) * int(unit_ms) for k in range(1, num_buckets)]


def time_gap_ids(gap_ms: Any, boundaries_ms: Sequence[int]) -> np.ndarray:
    """Time-gap bucket ids (>= 1) for gaps in ms; exact integer comparisons."""
    gaps = np.asarray(gap_ms, dtype=np.int64)
    b = np.asarray(boundaries_ms, dtype=np.int64)
    return np.searchsorted(b, gaps, side="right").astype(np.int64) + 1


# ---------------------------------------------------------------------------------------------
# Categorical: vocabulary and hashing
# ---------------------------------------------------------------------------------------------
def fingerprint_buckets(strings: pa.Array, num_buckets: int) -> np.ndarray:
    """``tf.strings.to_hash_bucket_fast(strings, num_buckets)`` on a null-free string array.

    Computed in numpy (:mod:`infnet_tf.fingerprint`, bit-exact with the TensorFlow op), once per
    distinct string, so no TensorFlow import is needed.
    """
    if len(strings) == 0:
        return np.zeros(0, dtype=np.int64)
    encoded = pc.dictionary_encode(strings)
    hashed = hash_buckets(encoded.dictionary, int(num_buckets))
    return hashed[encoded.indices.to_numpy(zero_copy_only=False)]


def hash_ids(values: Any, num_buckets: int) -> np.ndarray:
    """``1 + hash(value) mod num_buckets``; 0 for null."""
    strings = string_form(values)
    ids = np.zeros(len(strings), dtype=np.int64)
    valid = strings.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        ids[valid] = 1 + fingerprint_buckets(strings.filter(pa.array(valid)), num_buckets)
    return ids


def _vocab_array(vocab: Sequence[Any], dtype: str) -> pa.Array:
    return pa.array(list(vocab), type=pa.int64() if dtype == "int64" else pa.string())


def vocabulary_ids(values: Any, vocab: Sequence[Any] | pa.Array, oov_buckets: int,
                   dtype: str | None = None) -> np.ndarray:
    """``1 + rank`` for vocabulary values, ``1 + V + hash mod oov_buckets`` for others, 0 for null."""
    arr = _as_arrow(values)
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int64())
    table = vocab if isinstance(vocab, pa.Array) else _vocab_array(vocab, dtype or _guess_dtype(vocab))
    if pa.types.is_integer(arr.type) and pa.types.is_integer(table.type):
        arr = pc.cast(arr, pa.int64())
    elif pa.types.is_string(arr.type) and pa.types.is_string(table.type):
        pass
    elif pa.types.is_null(arr.type):
        return np.zeros(len(arr), dtype=np.int64)
    else:  # mixed types: compare in string form
        arr, table = string_form(arr), string_form(table)
    index = pc.index_in(arr, value_set=table)
    ids = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    oov = valid & (ids == 0)
    if oov.any():
        strings = string_form(arr.filter(pa.array(oov)))
        ids[oov] = 1 + len(table) + fingerprint_buckets(strings, oov_buckets)
    ids[~valid] = MISSING_ID
    return ids


def _guess_dtype(vocab: Sequence[Any]) -> str:
    return "int64" if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vocab) else "string"


# ---------------------------------------------------------------------------------------------
# Layout from spec + artifact
# ---------------------------------------------------------------------------------------------
def build_layout(spec: Any, vocab_sizes: Mapping[str, int]) -> FeatureLayout:
    """The model-input layout for ``spec`` given every token's id-space size (id 0 included)."""
    dims = {f.name: f.embedding_dim for f in spec.categorical}
    ordinal = {f.name for f in spec.dense} | {c.name for c in spec.counter_features()}
    categorical = tuple(TokenInput(name, int(vocab_sizes[name]), name, dims.get(name), name in ordinal)
                        for name in spec.token_names())
    sequences = tuple(
        SequenceInput(
            name=s.name, max_len=s.max_len,
            fields=tuple(TokenInput(f, int(vocab_sizes[f]), f, dims.get(f)) for f in (s.item_field, *s.side_fields)),
            time_gap_buckets=1 + s.time_gap.num_buckets,
        )
        for s in spec.sequences
    )
    tasks = tuple(TaskInput(t.name, float(t.weight)) for t in spec.tasks)
    return FeatureLayout(categorical=categorical, sequences=sequences, tasks=tasks)


# ---------------------------------------------------------------------------------------------
# The artifact
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TransformArtifact:
    """Everything fitted on the training window, plus the layout; JSON round-trippable.

    * ``categorical[name]``: ``{"kind": "vocabulary", "dtype": "int64"|"string", "values": [...],
      "counts": [...], "min_count", "oov_buckets", "vocab_size"}`` or
      ``{"kind": "hash", "hash_buckets", "hash", "vocab_size"}``
    * ``dense[name]`` and ``counters[name]``: ``{"binning": "quantile"|"log", "num_buckets",
      "boundaries": [...], "log_range": [lo, hi] | null, "vocab_size", ...}`` (counters also carry
      ``key``, ``what``, ``window``, ``window_ms``)
    * every categorical, dense and counter entry also carries ``"side"``: ``user`` | ``candidate``
      (:meth:`infnet_tf.feature_spec.FeatureSpec.token_sides`; read by the ``score_candidates`` export)
    * ``time_gap[seq]``: ``{"unit_ms", "num_buckets", "boundaries_ms": [...]}``
    * ``split``: ``{"valid_start_ms", "test_start_ms", "partition", ...}``
    * ``stats``: row counts per day, label rates, sequence length percentiles, ... (train only)
    * ``layout``: :meth:`FeatureLayout.to_dict`
    """

    spec_name: str
    spec_fingerprint: str
    token_names: list[str]
    categorical: dict[str, dict]
    dense: dict[str, dict]
    counters: dict[str, dict]
    time_gap: dict[str, dict]
    split: dict[str, Any]
    stats: dict[str, Any]
    layout: dict[str, Any]
    version: int = ARTIFACT_VERSION

    def __post_init__(self) -> None:
        self.layout = json.loads(json.dumps(self.layout))  # plain lists, as after a JSON round trip
        self._vocab_cache: dict[str, pa.Array] = {}

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT, "version": self.version,
            "spec_name": self.spec_name, "spec_fingerprint": self.spec_fingerprint,
            "token_names": list(self.token_names), "categorical": self.categorical, "dense": self.dense,
            "counters": self.counters, "time_gap": self.time_gap, "split": self.split,
            "stats": self.stats, "layout": self.layout,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransformArtifact":
        if d.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"not a transform artifact (format {d.get('format')!r})")
        if int(d.get("version", -1)) != ARTIFACT_VERSION:
            raise ValueError(f"transform artifact version {d.get('version')} is not supported "
                             f"(this code reads version {ARTIFACT_VERSION})")
        return cls(spec_name=d["spec_name"], spec_fingerprint=d["spec_fingerprint"],
                   token_names=list(d["token_names"]), categorical=dict(d["categorical"]),
                   dense=dict(d["dense"]), counters=dict(d["counters"]), time_gap=dict(d["time_gap"]),
                   split=dict(d["split"]), stats=dict(d["stats"]), layout=dict(d["layout"]),
                   version=int(d["version"]))

    @classmethod
    def from_json(cls, text: str) -> "TransformArtifact":
        return cls.from_dict(json.loads(text))

    def save(self, path: str) -> None:
        """Write the JSON whole (atomically on local disks; :func:`infnet_tf.data.fs.write_text`)."""
        from infnet_tf.data import fs

        fs.write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> "TransformArtifact":
        """:func:`infnet_tf.data.artifact.load` (``path``: the data directory or the artifact JSON)."""
        from infnet_tf.data import artifact

        return artifact.load(path)

    def check_spec(self, spec: Any) -> None:
        """Raise ValueError when ``spec`` is not the spec this artifact was fitted for."""
        if spec.fingerprint() != self.spec_fingerprint:
            raise ValueError(f"transform artifact was fitted for spec fingerprint {self.spec_fingerprint[:12]}, "
                             f"not {spec.fingerprint()[:12]} ({spec.name})")

    # -- views ----------------------------------------------------------------------------
    @property
    def feature_layout(self) -> FeatureLayout:
        """The stored layout; binned tokens (dense fields, counters) are marked ``ordinal`` here too, so
        an artifact written before the flag existed gives the same layout as a new one."""
        layout = FeatureLayout.from_dict(self.layout)
        binned = set(self.dense) | set(self.counters)
        return dataclasses.replace(layout, categorical=tuple(
            dataclasses.replace(f, ordinal=f.ordinal or f.name in binned) for f in layout.categorical))

    def categorical_transform(self, token: str) -> CategoricalTransform:
        """The typed entry of a categorical token (KeyError for another token)."""
        return CategoricalTransform.from_entry(self.categorical[token])

    def binned_transform(self, token: str) -> BinnedTransform:
        """The typed entry of a dense field or counter feature (KeyError for another token)."""
        entry = self.dense.get(token) or self.counters.get(token)
        if entry is None:
            raise KeyError(f"unknown token {token!r}")
        return BinnedTransform.from_entry(entry)

    def time_gap_transform(self, seq: str) -> TimeGapTransform:
        return TimeGapTransform.from_entry(self.time_gap[seq])

    def vocab_size(self, token: str) -> int:
        if token in self.categorical:
            return self.categorical_transform(token).vocab_size
        return self.binned_transform(token).vocab_size

    def _vocab(self, name: str) -> pa.Array:
        if name not in self._vocab_cache:
            entry = self.categorical_transform(name)
            self._vocab_cache[name] = _vocab_array(entry.values, entry.dtype)
        return self._vocab_cache[name]

    # -- the transform --------------------------------------------------------------------
    def token_ids(self, token: str, values: Any) -> np.ndarray:
        """Ids of one token (categorical field, dense field or counter feature) for raw values."""
        if token in self.categorical:
            entry = self.categorical_transform(token)
            if entry.is_hash:
                return hash_ids(values, entry.hash_buckets)
            return vocabulary_ids(values, self._vocab(token), entry.oov_buckets)
        return bucketize(values, self.binned_transform(token).boundaries)

    def time_gap_ids(self, seq: str, gap_ms: Any) -> np.ndarray:
        return time_gap_ids(gap_ms, self.time_gap_transform(seq).boundaries_ms)

    def transform_batch(self, columns: Mapping[str, Any], tokens: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Token ids for a batch: ``{token: int64 ids}`` for ``tokens`` (default: every token).

        ``columns`` maps raw column names (the field names; counter features by their token
        name) to values. Keys ``time_gap/<seq>`` (gaps in ms) are transformed to time-gap ids.
        """
        names = list(self.token_names if tokens is None else tokens)
        missing = [n for n in names if n not in columns]
        if missing:
            raise KeyError(f"transform_batch: missing raw columns {missing}")
        out = {name: self.token_ids(name, columns[name]) for name in names}
        for key, values in columns.items():
            if key.startswith(TIME_GAP_PREFIX) and (tokens is None or key in names):
                out[key] = self.time_gap_ids(key[len(TIME_GAP_PREFIX):], values)
        return out

    # -- parity with another implementation (the in-graph twin) ----------------------------
    def parity_cases(self, max_vocab_values: int = 64) -> dict[str, np.ndarray]:
        """Raw inputs that probe every decision the transform makes, per token.

        Dense/counter tokens: float64 arrays with every boundary, its float neighbours, values
        below the first and above the last boundary, +-inf, 0, -0.0, negatives and NaN (= null).
        Categorical tokens: object arrays with vocabulary values (first and last ones), unseen
        values, the empty string (string vocabularies) and None (= null). ``time_gap/<seq>``:
        int64 gaps on and around each boundary. All arrays of one call have independent lengths.
        """
        cases: dict[str, np.ndarray] = {}
        for name in self.token_names:
            if name in self.categorical:
                cases[name] = self._categorical_cases(name, max_vocab_values)
            else:
                cases[name] = _dense_cases(self.binned_transform(name).boundaries)
        for seq in self.time_gap:
            b = np.asarray(self.time_gap_transform(seq).boundaries_ms, dtype=np.int64)
            gaps = np.concatenate([[0, 1, 999, 1000], b - 1, b, b + 1, [b[-1] * 4 if len(b) else 10**9, 10**12]])
            cases[f"{TIME_GAP_PREFIX}{seq}"] = np.unique(gaps[gaps >= 0]).astype(np.int64)
        return cases

    def _categorical_cases(self, name: str, k: int) -> np.ndarray:
        entry = self.categorical_transform(name)
        if not entry.is_hash:
            values = list(entry.values)
            seen = values if len(values) <= 2 * k else values[:k] + values[-k:]
            is_int = entry.dtype == "int64"
        else:
            seen, is_int = [], True
        if is_int:
            top = max([int(v) for v in seen] + [0])
            unseen: list[Any] = [top + 1, top + 1000, -1, -(2**40), 2**62, 0, 7, 123456789]
        else:
            unseen = ["", "__unseen__", "UNKNOWN", "ü-unicode", " leading space", "0"]
        values = [v for v in seen] + [v for v in unseen if v not in set(seen)] + [None]
        return np.asarray(values, dtype=object)

    def reference_ids(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The numpy reference for ``columns`` (a :meth:`parity_cases`-shaped dict)."""
        tokens = [k for k in columns if not k.startswith(TIME_GAP_PREFIX)]
        out = self.transform_batch({k: v for k, v in columns.items() if not k.startswith(TIME_GAP_PREFIX)}, tokens)
        for key, values in columns.items():
            if key.startswith(TIME_GAP_PREFIX):
                out[key] = self.time_gap_ids(key[len(TIME_GAP_PREFIX):], values)
        return out

    def assert_parity(self, fn: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
                      cases: Mapping[str, np.ndarray] | None = None) -> None:
        """Feed :meth:`parity_cases` (or ``cases``) through ``fn`` and compare with the reference.

        ``fn(columns) -> {key: ids}`` must return an id array for every key of ``columns``
        (tensors are fine: anything ``np.asarray`` accepts). Raises AssertionError listing each
        mismatching key with the first few offending inputs.
        """
        cases = dict(self.parity_cases() if cases is None else cases)
        expected = self.reference_ids(cases)
        got = fn({k: v.copy() for k, v in cases.items()})
        problems = []
        for key in cases:
            if key not in got:
                problems.append(f"{key}: missing from the candidate's output")
                continue
            g = np.asarray(got[key]).astype(np.int64).reshape(-1)
            e = expected[key]
            if g.shape != e.shape:
                problems.append(f"{key}: shape {g.shape}, expected {e.shape}")
                continue
            bad = np.flatnonzero(g != e)
            if bad.size:
                shown = ", ".join(f"{cases[key][i]!r}->{g[i]} (want {e[i]})" for i in bad[:5])
                problems.append(f"{key}: {bad.size}/{e.size} differ: {shown}")
        if problems:
            raise AssertionError("transform parity failed:\n  " + "\n  ".join(problems))


def _dense_cases(boundaries: Sequence[float]) -> np.ndarray:
    b = np.asarray(boundaries, dtype=np.float64)
    extra = [0.0, -0.0, 1.0, -1.0, -1e6, 1e6, np.inf, -np.inf, np.nan]
    if b.size:
        extra += [b[0] - 1.0, b[0] - abs(b[0]) - 10.0, b[-1] + 1.0, b[-1] * 2 + 10.0, (b[0] + b[-1]) / 2]
    around = np.concatenate([b, np.nextafter(b, -np.inf), np.nextafter(b, np.inf)])
    return np.concatenate([around, np.asarray(extra, dtype=np.float64)])
