"""The in-graph transform against the numpy transform (tiny hand-fitted artifact, eager, no SavedModel)."""
from __future__ import annotations

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from export.serving_client import InputInfo, rows_to_inputs
from export.raw_inputs import RawDecoder, to_examples
from infnet_tf.data.keys import LENGTH, seq_key
from infnet_tf.transform_graph import INT_NULL, TransformGraph, raw_inputs
from tests.export.fixtures import raw_rows, tiny_artifact
from tests.export.reference import reference_model_inputs
from tests.tiny_data import random_model_inputs

_DT = {"int64": "DT_INT64", "float64": "DT_DOUBLE", "string": "DT_STRING"}


@pytest.fixture(scope="module")
def tiny():
    artifact = tiny_artifact()
    graph = TransformGraph(artifact)
    infos = {r.name: InputInfo(r.name, _DT[r.dtype], r.rank) for r in graph.inputs}
    return artifact, graph, infos


def _numpy(d):
    return {k: v.numpy() for k, v in d.items()}


def test_parity_helper_boundaries_nan_null_unseen(tiny):
    artifact, graph, _ = tiny
    cases = artifact.parity_cases()
    assert any(np.isnan(v.astype(float)).any() for k, v in cases.items() if k in artifact.dense)
    artifact.assert_parity(graph.parity_fn())


def test_parity_helper_catches_a_wrong_side(tiny):
    """The helper is sharp: bucketizing with the other inclusive side fails it."""
    artifact, graph, _ = tiny
    fn = graph.parity_fn()

    def wrong(columns):
        out = fn(columns)
        b = np.asarray(artifact.dense["duration"]["boundaries"])
        x = np.asarray(columns["duration"], dtype=float)
        out["duration"] = np.where(np.isnan(x), 0, 1 + np.searchsorted(b, x, side="left"))
        return out

    with pytest.raises(AssertionError, match="duration"):
        artifact.assert_parity(wrong)


def test_raw_contract(tiny):
    artifact, graph, _ = tiny
    by_name = {r.name: r for r in raw_inputs(artifact)}
    assert by_name["user_id"].dtype == "int64" and by_name["category"].dtype == "string"
    assert by_name["duration"].dtype == "float64" and by_name["user_id_imp_1d"].dtype == "float64"
    assert by_name["seq/click/author_id"].rank == 2 and by_name["seq/click/length"].rank == 1
    assert by_name["request_time_ms"].dtype == "int64"


def test_raw_requests_match_the_numpy_transform(tiny):
    """Boundary values, NaN, nulls, unseen ids/strings, empty and over-long sequences."""
    artifact, graph, infos = tiny
    rows = raw_rows(40)
    lengths = [len(r["seq/click/video_id"]) for r in rows]
    assert 0 in lengths and max(lengths) > artifact.feature_layout.sequences[0].max_len
    assert any(r["author_id"] is None for r in rows) and any(np.isnan(r["duration"]) for r in rows)
    expected = reference_model_inputs(artifact, artifact.feature_layout, rows)
    columns = rows_to_inputs(rows, infos)
    got = _numpy(graph.transform({k: tf.constant(v) for k, v in columns.items()}))
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # padding beyond `length` is ignored whatever it holds
    noisy = dict(columns)
    for name, value in columns.items():
        if value.ndim == 2 and value.dtype != object:
            noisy[name] = np.concatenate([value, np.full((len(value), 3), 777, value.dtype)], axis=1)
        elif value.ndim == 2:
            noisy[name] = np.concatenate([value, np.full((len(value), 3), b"junk", object)], axis=1)
    again = _numpy(graph.transform({k: tf.constant(v) for k, v in noisy.items()}))
    for key in expected:
        np.testing.assert_array_equal(again[key], expected[key], err_msg=key)


def test_examples_match_the_numpy_transform(tiny):
    artifact, graph, infos = tiny
    rows = raw_rows(30, seed=3)
    for row in rows:  # an Example's FloatList is float32
        for name in ("duration", "fans", "user_id_imp_1d"):
            row[name] = float(np.float32(row[name]))
    expected = reference_model_inputs(artifact, artifact.feature_layout, rows)
    examples = to_examples(rows_to_inputs(rows, infos), graph.inputs)
    got = _numpy(graph.transform_examples(tf.constant(examples)))
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_decoder_round_trip(tiny):
    """decode(ids) -> raw values the transform maps back to the very same ids (OOV and hash included)."""
    artifact, graph, _ = tiny
    inputs = random_model_inputs(artifact.feature_layout, 200, seed=5)
    raw = RawDecoder(artifact).decode(inputs)
    got = _numpy(graph.transform({k: tf.constant(v) for k, v in raw.items()}))
    for key, value in inputs.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_inconsistent_requests_fail_with_the_input_named(tiny):
    artifact, graph, infos = tiny
    columns = rows_to_inputs(raw_rows(4), infos)
    fn = tf.function(lambda f: graph.transform(f), input_signature=[graph.input_signature()], autograph=False)

    bad = dict(columns, **{seq_key("click", LENGTH): np.array([1, 2, 99, 0], np.int64)})
    with pytest.raises(tf.errors.InvalidArgumentError, match="seq/click/length"):
        fn({k: tf.constant(v) for k, v in bad.items()})
    bad = dict(columns, user_id=np.array([101, 102], np.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="video_id has batch size"):
        fn({k: tf.constant(v) for k, v in bad.items()})
    bad = dict(columns, **{"seq/click/category": columns["seq/click/category"][:, :1]})
    with pytest.raises(tf.errors.InvalidArgumentError, match="seq/click/category"):
        fn({k: tf.constant(v) for k, v in bad.items()})
    assert INT_NULL == -(2**63)


def test_zero_width_sequences_and_synthetic_rows(tiny):
    """Sequence matrices with no columns at all (every row empty) are fine; so are synthetic rows."""
    from export.exporter import synthetic_rows

    artifact, graph, infos = tiny
    rows = raw_rows(5)
    for row in rows:
        for key in [k for k in row if k.startswith("seq/")]:
            row[key] = []
    columns = rows_to_inputs(rows, infos)
    for name, value in columns.items():
        if value.ndim == 2:
            columns[name] = value[:, :0]
    got = _numpy(graph.transform({k: tf.constant(v) for k, v in columns.items()}))
    expected = reference_model_inputs(artifact, artifact.feature_layout, rows)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    synthetic = synthetic_rows(artifact.feature_layout, RawDecoder(artifact), n=32)
    got = _numpy(graph.transform({k: tf.constant(v) for k, v in synthetic.raw.items()}))
    for key, value in synthetic.inputs.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
