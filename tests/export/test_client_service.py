"""``export.client`` against the fake prediction service (gRPC PredictionService + REST predict) that
serves the exported SavedModel through TF Serving's protos; bad requests come back INVALID_ARGUMENT."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import infnet_tf  # noqa: F401

from export.serving_client import (ClientError, format_predictions, make_client, predict_rows, read_rows,
                                   rows_to_inputs)
from tests.export.conftest import run_module
from tests.fake_prediction_service import FakePredictionService


@pytest.fixture(scope="module")
def service(sample_export):
    svc = FakePredictionService(sample_export["model_root"], "infnet").start()
    yield svc
    svc.stop()


def _direct(served, rows):
    from export.serving_client import _signature_inputs

    return served.run("serving_default", rows_to_inputs(rows, _signature_inputs(served.signature("serving_default"))))


def test_rest_and_grpc_clients(sample_export, served, service):
    rows = sample_export["rows"][:40]
    expected = _direct(served, rows)
    for protocol, port in (("rest", service.rest_port), ("grpc", service.grpc_port)):
        client = make_client(f"127.0.0.1:{port}", protocol, "infnet")
        inputs = client.signature_inputs()
        assert inputs["seq/click/video_id"].rank == 2 and inputs["video_duration_ms"].dtype == "DT_DOUBLE"
        got = predict_rows(client, rows, batch_size=16)  # other batch widths, same answers
        assert sorted(got) == ["click", "like", "long_view"]
        for task in expected:
            np.testing.assert_allclose(got[task], expected[task], atol=1e-6, rtol=0, err_msg=f"{protocol} {task}")


def test_client_command_line(sample_export, service, tmp_path):
    """``python -m export.client`` over gRPC with Parquet rows; JSON-lines rows over REST in-process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sample_export["rows"][:5]
    parquet = str(tmp_path / "rows.parquet")
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    proc = run_module("export.client", f"--server=127.0.0.1:{service.grpc_port}", "--protocol=grpc",
                      "--model_name=infnet", f"--rows={parquet}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("row=")]
    assert len(lines) == 5 and all("click=" in line and "long_view=" in line for line in lines)

    jsonl = str(tmp_path / "rows.jsonl")
    with open(jsonl, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    client = make_client(f"localhost:{service.rest_port}", "rest", "infnet")
    by_rest = format_predictions(predict_rows(client, read_rows(jsonl)))
    assert [line.split()[1:] for line in by_rest] == [line.split()[1:] for line in lines]


def test_bad_requests_come_back_invalid_argument(sample_export, service):

    for protocol, port, code in (("grpc", service.grpc_port, "INVALID_ARGUMENT"),
                                 ("rest", service.rest_port, "HTTP 400")):
        client = make_client(f"127.0.0.1:{port}", protocol, "infnet")
        good = rows_to_inputs(sample_export["rows"][:2], client.signature_inputs())
        client.predict(good)
        bad = {
            "wrong dtype": dict(good, user_id=good["user_id"].astype(np.float64) + 0.5),
            "missing feature": {k: v for k, v in good.items() if k != "video_duration_ms"},
            "wrong rank": dict(good, user_id=good["user_id"][:, None]),
            "length beyond T": dict(good, **{"seq/like/length": np.array([7, 0], np.int64) + 100}),
        }
        messages = {}
        for what, inputs in bad.items():
            with pytest.raises(ClientError) as info:
                client.predict(inputs)
            assert code in str(info.value), f"{protocol} {what}: {info.value}"
            messages[what] = str(info.value)
        assert "video_duration_ms" in messages["missing feature"]
        assert "user_id" in messages["wrong rank"] and "rank 1" in messages["wrong rank"]
        assert "seq/like/length" in messages["length beyond T"]
        if protocol == "grpc":
            assert "double" in messages["wrong dtype"] or "int64" in messages["wrong dtype"]


def test_the_export_writes_a_sample_request_the_client_sends(sample_export, service):
    """Issue 14.6: each version carries assets.extra/sample_request.jsonl (raw test rows in the
    --rows format), and the export prints one serve command and one client command using it."""
    sample = os.path.join(sample_export["version_dir"], "assets.extra", "sample_request.jsonl")
    rows = read_rows(sample)
    assert 1 <= len(rows) <= 10 and "request_time_ms" in rows[0]
    lines = sample_export["cli_output"].splitlines()
    serve = [line for line in lines if "tensorflow_model_server " in line]
    query = [line for line in lines if "python -m export.client " in line]
    assert len(serve) == 1 and "--batching_parameters_file=" in serve[0] and "--monitoring_config_file=" in serve[0]
    assert len(query) == 1 and query[0].endswith(f"--rows={sample}") and "--model_name=infnet" in query[0]
    args = query[0].split("python -m export.client ", 1)[1].split()
    args = [a for a in args if not a.startswith("--server=")] + [f"--server=127.0.0.1:{service.rest_port}"]
    proc = run_module("export.client", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([line for line in proc.stdout.splitlines() if line.startswith("row=")]) == len(rows)


def test_score_candidates_over_rest_and_grpc(sample_export, served, service):
    """The version's sample one-user request through both protocols and the command line equals
    serving_default on the same user tiled next to each candidate."""
    from export.serving_client import candidates_inputs, predict_candidates

    path = os.path.join(sample_export["version_dir"], "assets.extra", "sample_candidates_request.jsonl")
    (request,) = read_rows(path)
    n = len(request["candidates"])
    assert n == 5 and "user_id" in request["user"] and "seq/click/video_id" in request["user"]
    assert "video_id" in request["candidates"][0] and "video_id" not in request["user"]
    pairs = [{**request["user"], **c} for c in request["candidates"]]
    expected = _direct(served, pairs)
    for protocol, port in (("rest", service.rest_port), ("grpc", service.grpc_port)):
        client = make_client(f"127.0.0.1:{port}", protocol, "infnet")
        (got,) = predict_candidates(client, [request])
        for task in expected:
            np.testing.assert_allclose(got[task], expected[task], atol=1e-5, rtol=0, err_msg=f"{protocol} {task}")
        inputs = candidates_inputs(request, client.signature_inputs("score_candidates"))
        assert len(inputs["user_id"]) == 1 and len(inputs["video_id"]) == n
    proc = run_module("export.client", f"--server=127.0.0.1:{service.rest_port}", "--protocol=rest",
                      "--model_name=infnet", "--signature_name=score_candidates", f"--rows={path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("request=0 candidate=")]
    assert len(lines) == n and float(lines[2].split("click=")[1].split()[0]) == pytest.approx(
        float(expected["click"][2]), abs=1e-5)
    # a user-side input left out of "user" must come with every candidate; sent so, the server names it
    client = make_client(f"127.0.0.1:{service.grpc_port}", "grpc", "infnet")
    short = {"user": {k: v for k, v in request["user"].items() if k != "user_id"}, "candidates": request["candidates"]}
    with pytest.raises(ValueError, match=r"candidate 0: missing input\(s\) \['user_id'\]"):
        predict_candidates(client, [short])
    short["candidates"] = [dict(c, user_id=request["user"]["user_id"]) for c in request["candidates"]]
    with pytest.raises(ClientError, match="INVALID_ARGUMENT.*input user_id is on the user side"):
        predict_candidates(client, [short])
