"""The numpy transform semantics (infnet_tf.transform): bucket ids, vocabularies, hashing, artifact."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from infnet_tf import transform as T
from infnet_tf.fingerprint import hash_buckets
from pipelines import analyze


# -- dense bucketize ------------------------------------------------------------------------------
def test_bucket_ids_on_below_above_boundaries_nan_and_null():
    b = [1.0, 2.0, 5.0]
    values = np.array([1.0, 2.0, 5.0,           # exactly on a boundary -> the bucket above it
                       0.5, -1e9, -np.inf,      # below the first -> 1
                       5.0001, 1e12, np.inf,    # above the last -> k + 1 = 4
                       1.5, 4.999,              # interior
                       np.nan])                 # NaN -> 0
    assert T.bucketize(values, b).tolist() == [2, 3, 4, 1, 1, 1, 4, 4, 4, 2, 3, 0]
    nulls = np.array([None, 1, 7, None], dtype=object)
    assert T.bucketize(nulls, b).tolist() == [0, 2, 4, 0]
    assert T.bucketize(pa.array([None, 2.0, 0.0]), b).tolist() == [0, 3, 1]
    # no boundaries (constant training column): every non-null value is bucket 1
    assert T.bucketize(np.array([3.0, np.nan, -1.0]), []).tolist() == [1, 0, 1]


def test_subnormals_count_as_zero():
    b = [0.0, 1.0]
    tiny = np.array([np.nextafter(0.0, -1.0), -0.0, 0.0, np.nextafter(0.0, 1.0)])
    assert T.bucketize(tiny, b).tolist() == [2, 2, 2, 2]


def test_log_binning_defined_for_negatives_and_equal_width_in_log_space():
    values = np.array([-1000.0, -3.0, -1.0, 0.0, 0.5, 2.0, 10.0, 99.0, 1e4])
    f = T.log_transform(values)
    assert np.all(np.diff(f) > 0) and f[3] == 0.0 and f[2] == -np.log(2.0)
    lo, hi, n = float(f.min()), float(f.max()), 8
    boundaries = T.log_boundaries(lo, hi, n)
    assert len(boundaries) == n - 1 and boundaries == sorted(boundaries)
    # ids equal equal-width bins of f-space (away from the exact edges)
    rng = np.random.default_rng(0)
    x = np.sign(rng.normal(size=2000)) * rng.lognormal(sigma=3.0, size=2000)
    x = x[(T.log_transform(x) > lo) & (T.log_transform(x) < hi)]
    expected = 1 + np.clip(np.floor((T.log_transform(x) - lo) / (hi - lo) * n), 0, n - 1).astype(int)
    edges = lo + (hi - lo) * np.arange(1, n) / n
    away = np.min(np.abs(T.log_transform(x)[:, None] - edges[None, :]), axis=1) > 1e-9
    assert np.array_equal(T.bucketize(x, boundaries)[away], expected[away])
    assert T.log_boundaries(1.0, 1.0, 8) == []  # constant column


def test_quantile_boundaries_dedupe_interior():
    assert T.quantile_boundaries([0, 1, 1, 1, 3, 9], 5) == [1.0, 3.0]
    assert T.quantile_boundaries([5], 4) == []
    assert T.quantile_boundaries([], 4) == []


def test_time_gap_buckets_are_log2_of_units():
    b = T.time_gap_boundaries(6, unit_ms=60_000)
    assert b == [60_000, 180_000, 420_000, 900_000, 1_860_000]
    gaps = np.array([0, 59_999, 60_000, 179_999, 180_000, 419_999, 420_000, 10**12])
    ids = T.time_gap_ids(gaps, b)
    units = gaps // 60_000
    assert ids.tolist() == (1 + np.minimum(5, np.floor(np.log2(1 + units)).astype(int))).tolist()
    assert ids.tolist() == [1, 1, 2, 2, 3, 3, 4, 6]


# -- categorical ----------------------------------------------------------------------------------
def _vocab_table(values, counts):
    return pa.table({"values": values, "counts": pa.array(counts, pa.int64())})


def test_vocabulary_order_min_count_and_tie_break():
    dtype, values, counts, distinct = analyze._vocabulary(
        _vocab_table([7, 3, 9, 1, 5], [2, 5, 2, 1, 5]), min_count=2)
    assert (dtype, values, counts, distinct) == ("int64", [3, 5, 7, 9], [5, 5, 2, 2], 5)
    dtype, values, _, _ = analyze._vocabulary(_vocab_table(["b", "a", "ä", "c"], [1, 1, 1, 2]), min_count=1)
    assert (dtype, values) == ("string", ["c", "a", "b", "ä"])


def test_vocabulary_ids_oov_hash_and_null():
    vocab = [30, 10, 20]
    ids = T.vocabulary_ids(np.array([10, 20, 30, None, 99, -4], dtype=object), vocab, oov_buckets=4, dtype="int64")
    assert ids[:4].tolist() == [2, 3, 1, 0]
    expected_oov = 1 + 3 + hash_buckets(pa.array(["99", "-4"]), 4)
    assert ids[4:].tolist() == expected_oov.tolist()
    assert np.all((ids[4:] >= 4) & (ids[4:] < 8))
    # int values against a string vocabulary (and back) match through the string form
    assert T.vocabulary_ids(np.array([10, 7]), ["10", "x"], 1, "string").tolist() == [1, 3]
    assert T.vocabulary_ids(np.array(["20", "x"], dtype=object), vocab, 1, "int64")[0] == 3


def test_hash_ids_match_tensorflow_and_null_is_zero():
    import tensorflow as tf

    values = np.array([0, 1, -1, 123456789012, None, 42], dtype=object)
    ids = T.hash_ids(values, 1000)
    strings = np.array(["0", "1", "-1", "123456789012", "42"], dtype=object)
    tf_ids = 1 + tf.strings.to_hash_bucket_fast(strings, 1000).numpy()
    assert ids[[0, 1, 2, 3, 5]].tolist() == tf_ids.tolist() and ids[4] == 0


def test_fingerprint64_is_bit_exact_with_tensorflow_for_every_length_class():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    strings = [""] + ["".join(map(chr, rng.integers(32, 127, n))) for n in range(1, 200)]
    strings += ["ü-ünïcödé", "日本語" * 30, "x" * 64, "y" * 65, "z" * 128, "w" * 129]
    buckets = 2**62 + 11
    ours = hash_buckets(pa.array(strings), buckets)
    theirs = tf.strings.to_hash_bucket_fast(np.array(strings, dtype=object), buckets).numpy()
    assert np.array_equal(ours, theirs)


# -- the artifact ---------------------------------------------------------------------------------
def _artifact() -> T.TransformArtifact:
    from infnet_tf.data.layout import FeatureLayout, SequenceInput, TaskInput, TokenInput

    layout = FeatureLayout(
        categorical=(TokenInput("item", 1 + 3 + 2, "item"), TokenInput("tag", 11, "tag"), TokenInput("price", 5, "price"),
                     TokenInput("item_imp_all", 5, "item_imp_all")),
        sequences=(SequenceInput("click", 4, (TokenInput("item", 6, "item"),), 6),),
        tasks=(TaskInput("click"),))
    return T.TransformArtifact(
        spec_name="t", spec_fingerprint="f" * 64, token_names=["item", "tag", "price", "item_imp_all"],
        categorical={"item": {"kind": "vocabulary", "dtype": "int64", "values": [5, 9, 2], "counts": [3, 2, 2],
                              "min_count": 1, "oov_buckets": 2, "vocab_size": 6},
                     "tag": {"kind": "hash", "hash_buckets": 10, "hash": "farmhash_fingerprint64", "vocab_size": 11}},
        dense={"price": {"binning": "quantile", "num_buckets": 4, "boundaries": [0.5, 1.0, 2.5], "vocab_size": 5,
                         "log_range": None}},
        counters={"item_imp_all": {"binning": "log", "num_buckets": 4, "boundaries": T.log_boundaries(0.0, 3.0, 4),
                                   "vocab_size": 5, "log_range": [0.0, 3.0]}},
        time_gap={"click": {"unit_ms": 60_000, "num_buckets": 5, "boundaries_ms": T.time_gap_boundaries(5)}},
        split={"valid_start_ms": 1, "test_start_ms": 2, "partition": "daily"}, stats={}, layout=layout.to_dict())


def test_artifact_json_round_trip_and_version_check(tmp_path):
    art = _artifact()
    path = str(tmp_path / "a" / "transform_artifact.json")
    art.save(path)
    again = T.TransformArtifact.load(path)
    assert again.to_dict() == art.to_dict()
    assert again.feature_layout.tables()["item"] == 6
    data = json.loads(open(path).read())
    data["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        T.TransformArtifact.from_dict(data)


def test_transform_batch_and_parity_helper():
    art = _artifact()
    out = art.transform_batch({"item": np.array([9, 4, None], dtype=object), "tag": np.array(["a", None], dtype=object),
                               "price": np.array([1.0, np.nan]), "item_imp_all": np.array([0, 5, 1000])})
    assert out["item"][[0, 2]].tolist() == [2, 0] and 4 <= out["item"][1] < 6
    assert out["tag"][1] == 0 and 1 <= out["tag"][0] <= 10
    assert out["price"].tolist() == [3, 0]
    assert out["item_imp_all"].tolist()[0] == 1 and out["item_imp_all"].tolist()[2] == 4
    with pytest.raises(KeyError, match="price"):
        art.transform_batch({"item": [1], "tag": ["a"], "item_imp_all": [0]})

    cases = art.parity_cases()
    assert set(cases) == {"item", "tag", "price", "item_imp_all", "time_gap/click"}
    assert any(v is None for v in cases["item"]) and np.isnan(cases["price"]).any()
    art.assert_parity(art.reference_ids)  # the reference agrees with itself

    def off_by_one_at_boundaries(columns):  # closed on the right instead of the left
        out = art.reference_ids(columns)
        x = np.asarray(columns["price"], dtype=float)
        out["price"] = np.where(np.isnan(x), 0, np.searchsorted([0.5, 1.0, 2.5], x, side="left") + 1)
        return out

    with pytest.raises(AssertionError, match=r"price: \d+/\d+ differ: 0.5->1 \(want 2\)"):
        art.assert_parity(off_by_one_at_boundaries)


def test_split_nulls_for_graph_feeding():
    filled, null = T.split_nulls(np.array([3, None, 5], dtype=object))
    assert filled.tolist() == [3, 0, 5] and null.tolist() == [False, True, False]
    filled, null = T.split_nulls(np.array([1.5, np.nan]))
    assert filled.tolist() == [1.5, 0.0] and null.tolist() == [False, True]


def test_empty_string_is_a_missing_value_like_in_the_serving_signature():
    from infnet_tf.transform import hash_ids, split_nulls, vocabulary_ids

    assert vocabulary_ids(np.array(["", None, "a", "b"], dtype=object), ["a"], 2).tolist()[:3] == [0, 0, 1]
    assert vocabulary_ids(np.array(["b"], dtype=object), ["a"], 2)[0] >= 2  # a real unseen value is OOV
    assert hash_ids(np.array(["", "x"], dtype=object), 10)[0] == 0
    assert split_nulls(np.array(["", "x"], dtype=object))[1].tolist() == [True, False]
