"""The ``score_candidates`` signature on the tiny hand-fitted artifact (a saved and reloaded export):
one user x N candidates equals ``serving_default`` on the same pairs, nulls, unseen ids and empty
and over-long sequences included."""
from __future__ import annotations

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from export.candidates import (SCORE_CANDIDATES, candidate_raw_inputs, candidate_tokens, candidates_request,
                               tiled_request)
from export.serving_client import InputInfo, rows_to_inputs
from export.serving_module import SERVING_DEFAULT, ServingModule
from export.session_model import SessionModel
from infnet_tf.models import build_model
from infnet_tf.transform_graph import TransformGraph
from tests.export.fixtures import raw_rows, tiny_artifact, tiny_model_config

_DT = {"int64": "DT_INT64", "float64": "DT_DOUBLE", "string": "DT_STRING"}
CANDIDATE_INPUTS = ("video_id", "author_id", "category", "duration")   # items' fields and the item key


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    artifact = tiny_artifact()
    layout = artifact.feature_layout
    model = build_model(layout, tiny_model_config(num_blocks=2))
    transform = TransformGraph(artifact, layout)
    path = str(tmp_path_factory.mktemp("candidates") / "saved_model")
    ServingModule(model, transform, layout, candidates=candidate_tokens(artifact)).save(path)
    infos = {r.name: InputInfo(r.name, _DT[r.dtype], r.rank) for r in transform.inputs}
    with SessionModel(path) as served:
        yield artifact, transform, served, rows_to_inputs(raw_rows(24), infos)


def test_sides_from_the_artifact(export):
    artifact, transform, served, _ = export
    assert candidate_tokens(artifact) == ("video_id", "author_id", "category", "duration")
    assert candidate_raw_inputs(transform.inputs, candidate_tokens(artifact)) == CANDIDATE_INPUTS
    sig, default = served.signature(SCORE_CANDIDATES).inputs, served.signature(SERVING_DEFAULT).inputs
    assert {k: (v.dtype, v.tensor_shape) for k, v in sig.items()} == {
        k: (v.dtype, v.tensor_shape) for k, v in default.items()}   # the same inputs, split by side


@pytest.mark.parametrize("user_row", [0, 2, 3, 7], ids=["empty-seqs", "full", "over-long", "unseen-user"])
def test_one_user_n_candidates_equals_serving_default_on_the_pairs(export, user_row):
    """raw_rows: row 0 has empty sequences and a NaN duration, row 3 over-long sequences, row 7 the
    unseen user 99999; the 24 candidates hold unseen items, null authors and an OOV category."""
    _, _, served, columns = export
    request = candidates_request(columns, CANDIDATE_INPUTS, user_row)
    assert len(request["user_id"]) == 1 and len(request["video_id"]) == 24
    got = served.run(SCORE_CANDIDATES, request)
    want = served.run(SERVING_DEFAULT, tiled_request(request, CANDIDATE_INPUTS))
    for task in ("click", "like"):
        assert got[task].shape == (24,)
        np.testing.assert_allclose(got[task], want[task], atol=1e-5, rtol=0)
    assert np.ptp(want["click"]) > 0   # the candidates' scores differ: a mix-up would show


def test_one_candidate(export):
    _, _, served, columns = export
    request = candidates_request({k: v[4:5] for k, v in columns.items()}, CANDIDATE_INPUTS)
    got = served.run(SCORE_CANDIDATES, request)
    np.testing.assert_allclose(got["click"], served.run(SERVING_DEFAULT, request)["click"], atol=1e-5, rtol=0)


def test_more_than_one_user_row_is_invalid_argument_naming_the_input(export):
    _, _, served, columns = export
    request = candidates_request(columns, CANDIDATE_INPUTS)
    request["fans"] = columns["fans"][:2]
    with pytest.raises(tf.errors.InvalidArgumentError, match="input fans is on the user side of score_candidates"):
        served.run(SCORE_CANDIDATES, request)
    request = candidates_request(columns, CANDIDATE_INPUTS)
    request["category"] = columns["category"][:3]      # candidates disagree on N: the transform's own check
    with pytest.raises(tf.errors.InvalidArgumentError, match="category has batch size"):
        served.run(SCORE_CANDIDATES, request)


def test_an_artifact_without_sides_is_refused_by_name():
    artifact = tiny_artifact()
    del artifact.dense["duration"]["side"]
    with pytest.raises(ValueError, match=r"no side \(user \| candidate\) for token\(s\) \['duration'\]"):
        candidate_tokens(artifact)


def test_warmup_records_replay(export):
    """The warmup records of the exporter replay through the loaded version."""
    from export import warmup
    from export.exporter import Rows, warmup_logs
    from export.raw_inputs import RawDecoder

    artifact, _, served, columns = export
    rows = Rows({}, {}, np.zeros(24, np.int64), columns)
    logs = warmup_logs("infnet", rows, RawDecoder(artifact), 9, candidate_tokens(artifact))
    kinds = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert kinds.count(SCORE_CANDIDATES) == 3
    for log in logs:
        if log.predict_log.request.model_spec.signature_name == SCORE_CANDIDATES:
            inputs = warmup.request_inputs(log)
            assert len(inputs["user_id"]) == 1
            out = served.run(SCORE_CANDIDATES, inputs)
            assert out["click"].shape == (len(inputs["video_id"]),)


def test_a_model_without_score_candidates_scores_the_pairs(export):
    """A baseline (DCNv2) has no user-side sharing: the scorer repeats the user's ids (eager, no export)."""
    from export.candidates import CandidateScorer

    artifact, transform, _, columns = export
    layout = artifact.feature_layout
    model = build_model(layout, tiny_model_config(model="dcnv2"))
    request = candidates_request(columns, CANDIDATE_INPUTS, 2)
    scorer = CandidateScorer(model, transform, layout, candidate_tokens(artifact))
    got = scorer({k: tf.constant(v) for k, v in request.items()})
    pairs = {k: tf.constant(v) for k, v in tiled_request(request, CANDIDATE_INPUTS).items()}
    want = model(transform.transform(pairs), training=False)
    np.testing.assert_allclose(got["click"].numpy().reshape(-1), want["click"].numpy().reshape(-1), atol=1e-6)
