"""End to end on the sample data: dataset job -> trainer checkpoint -> ``python -m export.export_model``.

The exported version is loaded the way TF Serving loads it (TF1 session loader, signature tensor
names, tensors fed through a session callable without Python-side casts) and must predict exactly
what the Keras model predicts on the dataset job's Examples for the same impressions.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from export import versions
from export.serving_client import _signature_inputs, rows_to_inputs
from export.raw_inputs import to_examples
from export.warmup import read_warmup, request_inputs
from infnet_tf.data.keys import LENGTH, seq_key
from infnet_tf.input import parse_batch
from infnet_tf.transform_graph import EVENT_TIME
from tests.export.conftest import run_module

TOL = 1e-5


def keras_predictions(sample_export, examples):
    layout = sample_export["layout"]
    features, _ = parse_batch(layout, tf.constant(examples))
    probs = sample_export["trainer"].model({k: features[k] for k in layout.model_input_keys()}, training=False)
    return {t: v.numpy() for t, v in probs.items()}


def raw_infos(served):
    return _signature_inputs(served.signature("serving_default"))


def test_version_directory_and_cli(sample_export):
    root, vdir = sample_export["model_root"], sample_export["version_dir"]
    assert versions.published_versions(root) == [1]
    assert not [n for n in os.listdir(root) if n.startswith(".tmp-")]
    for rel in ("saved_model.pb", "variables/variables.index", "assets.extra/tf_serving_warmup_requests",
                "assets.extra/transform_artifact.json", "assets.extra/infnet_export.json",
                "assets.extra/sample_request.jsonl"):
        assert os.path.exists(os.path.join(vdir, rel)), rel
    info = json.load(open(os.path.join(vdir, "assets.extra", "infnet_export.json")))
    source = info["source"]
    assert source["checkpoint"].endswith("ckpt-0") and source["global_step"] == 0
    assert len(source["weights_sha256"]) == 64 and len(source["checkpoint_index_sha256"]) == 64
    assert info["gate"]["publish"] and info["validation"]["raw_vs_model_max_abs_diff"] <= TOL
    assert info["validation"]["examples_vs_raw_max_abs_diff"] <= TOL and info["validation"]["checked_rows"] > 100
    assert "published version 1" in sample_export["cli_output"]
    assert "tensorflow_model_server" in sample_export["cli_output"]
    config = os.path.join(sample_export["export_base"], "serving_config")
    assert sorted(os.listdir(config)) == ["batching_parameters.txt", "models.config", "models.docker.config",
                                          "monitoring.config"]


def test_signatures_as_tf_serving_sees_them(served):
    assert {"serving_default", "predict_examples", "predict_model_inputs", "score_candidates"} <= set(served.signatures)
    sig = served.signature("serving_default")
    assert sig.method_name == "tensorflow/serving/predict"
    dtypes = {k: tf.dtypes.as_dtype(v.dtype).name for k, v in sig.inputs.items()}
    ranks = {k: len(v.tensor_shape.dim) for k, v in sig.inputs.items()}
    assert dtypes["user_id"] == "int64" and dtypes["category"] == "string" and dtypes["device"] == "string"
    assert dtypes["video_duration_ms"] == "float64" and dtypes["user_id_imp_1d"] == "float64"
    assert dtypes["author_id"] == "string"  # hash-bucket field: the artifact records no raw dtype
    assert dtypes["seq/click/video_id"] == "int64" and ranks["seq/click/video_id"] == 2
    assert dtypes["seq/like/event_time_ms"] == "int64" and ranks["seq/click/length"] == 1
    assert dtypes["request_time_ms"] == "int64" and len(sig.inputs) == 36
    assert set(served.signature("score_candidates").inputs) == set(sig.inputs)   # the same inputs, split by side
    for name in ("serving_default", "predict_examples", "predict_model_inputs", "score_candidates"):
        outputs = served.signature(name).outputs
        assert sorted(outputs) == ["click", "like", "long_view"]
        assert all(tf.dtypes.as_dtype(o.dtype) == tf.float32 for o in outputs.values())
    (examples,) = served.signature("predict_examples").inputs.values()
    assert tf.dtypes.as_dtype(examples.dtype) == tf.string


def _with_over_long(rows, max_lens):
    """Rows whose sequences got ``max_len`` extra, older items in front (the most recent ``max_len``
    of all of them must be used)."""
    out = []
    for row in rows:
        row = dict(row)
        for seq, max_len in max_lens.items():
            n = row[seq_key(seq, LENGTH)]
            if n == 0:
                continue
            oldest = row[seq_key(seq, EVENT_TIME)][0]
            for key in [k for k in row if k.startswith(f"seq/{seq}/") and isinstance(row[k], list)]:
                pad = [oldest - 1000 * (max_len - i) for i in range(max_len)] if key.endswith(EVENT_TIME) \
                    else [row[key][0]] * max_len
                row[key] = pad + row[key]
            row[seq_key(seq, LENGTH)] = n + max_len
        out.append(row)
    return out


def test_parity_with_the_dataset_job_and_keras(sample_export, served):
    """Raw rows of sample impressions through the exported raw signature (TF1 loader) == the Keras
    model on the Examples the dataset job wrote for them: NaN dense values, unseen ids, empty and
    over-long sequences included."""
    rows, examples = sample_export["rows"], sample_export["examples"]
    artifact = json.load(open(os.path.join(sample_export["data"], "transform", "transform_artifact.json")))
    users = set(artifact["categorical"]["user_id"]["values"])
    videos = set(artifact["categorical"]["video_id"]["values"])
    def null(v):
        return v is None or (isinstance(v, float) and np.isnan(v))

    nan_dense = [i for i, r in enumerate(rows) if null(r["video_duration_ms"]) or null(r["follow_user_num"])]
    unseen = [i for i, r in enumerate(rows) if r["user_id"] not in users or r["video_id"] not in videos]
    empty = [i for i, r in enumerate(rows) if r["seq/click/length"] == 0]
    some = list(range(0, len(rows), 7))
    pick = sorted(set(nan_dense[:60] + unseen[:60] + empty[:30] + some))[:600]
    assert len(nan_dense) and len(unseen) > 10 and len(empty) and len(pick) > 300
    rows = [rows[i] for i in pick]
    chosen = [examples[i] for i in pick]
    expected = keras_predictions(sample_export, chosen)
    infos = raw_infos(served)
    got = served.run_batched("serving_default", rows_to_inputs(rows, infos), batch_size=256)
    for task in expected:
        np.testing.assert_allclose(got[task], expected[task], atol=TOL, rtol=0, err_msg=task)
        assert np.std(expected[task]) > 1e-3  # the model really depends on its inputs

    # over-long sequences: the numpy transform path (checked equal to the job's Examples first)
    from infnet_tf.transform import TransformArtifact
    from tests.export.reference import reference_model_inputs

    layout = sample_export["layout"]
    artifact = TransformArtifact.load(os.path.join(sample_export["data"], "transform", "transform_artifact.json"))
    beam_inputs, _ = parse_batch(layout, tf.constant(chosen))
    numpy_inputs = reference_model_inputs(artifact, layout, rows)
    for key in layout.model_input_keys():
        np.testing.assert_array_equal(numpy_inputs[key], beam_inputs[key].numpy(), err_msg=key)
    max_lens = {s.name: s.max_len for s in layout.sequences}
    longer = _with_over_long(rows, max_lens)
    assert max(r["seq/click/length"] for r in longer) > max_lens["click"]
    model = sample_export["trainer"].model
    expected = {t: v.numpy() for t, v in model({k: tf.constant(v) for k, v in
                                                reference_model_inputs(artifact, layout, longer).items()},
                                               training=False).items()}
    got = served.run("serving_default", rows_to_inputs(longer, infos))
    for task in expected:
        np.testing.assert_allclose(got[task], expected[task], atol=TOL, rtol=0, err_msg=f"over-long {task}")


def test_predict_examples_equals_the_raw_signature(sample_export, served):
    infos = raw_infos(served)
    columns = rows_to_inputs(sample_export["rows"][:200], infos)
    from export.exporter import _examples_input
    from export.raw_inputs import RawDecoder
    from infnet_tf.transform import TransformArtifact

    artifact = TransformArtifact.load(os.path.join(sample_export["data"], "transform", "transform_artifact.json"))
    decoder = RawDecoder(artifact)
    by_examples = served.run("predict_examples", _examples_input(to_examples(columns, decoder.inputs)))
    rounded = {k: (v.astype(np.float32).astype(np.float64) if v.dtype == np.float64 else v) for k, v in columns.items()}
    by_raw = served.run("serving_default", rounded)
    for task in by_raw:
        np.testing.assert_allclose(by_examples[task], by_raw[task], atol=TOL, rtol=0)


def _good_columns(sample_export, served, n=3):
    return rows_to_inputs(sample_export["rows"][:n], raw_infos(served))


def test_bad_requests_fail_with_invalid_argument(sample_export, served):
    """As TF Serving feeds them (C++ session, no Python casts): never a silent wrong answer."""
    good = _good_columns(sample_export, served)
    assert np.all(np.isfinite(served.run("serving_default", good)["click"]))
    cases = {
        "wrong dtype (float ids)": (dict(good, user_id=good["user_id"].astype(np.float64)), r"Type mismatch|expect"),
        "wrong dtype (text dense)": (dict(good, video_duration_ms=np.array([b"1", b"2", b"3"], object)),
                                     r"Type mismatch|expect"),
        "wrong rank (column)": (dict(good, user_id=good["user_id"][:, None]), r"input user_id must have rank 1"),
        "wrong rank (sequence)": (dict(good, **{"seq/click/video_id": good["seq/click/video_id"][:, 0]}),
                                  r"input seq/click/video_id must have rank 2"),
        "length beyond T": (dict(good, **{"seq/click/length": np.array([0, 99, 0], np.int64)}),
                            r"seq/click/length must be in \[0, T\]"),
        "batch sizes differ": (dict(good, device=good["device"][:2]), r"has batch size"),
    }
    for what, (inputs, pattern) in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
            served.run("serving_default", inputs)
            pytest.fail(f"{what}: accepted")
    # a missing feature: the session refuses to run without it (TF Serving checks the names first)
    sig = served.signature("serving_default")
    feed = {sig.inputs[k].name: v for k, v in good.items() if k != "video_duration_ms"}
    with pytest.raises(tf.errors.InvalidArgumentError, match="serving_default_video_duration_ms"):
        served.session.run(sig.outputs["click"].name, feed)


def test_warmup_records_parse_back_and_replay(sample_export, served):
    logs = read_warmup(sample_export["version_dir"])
    assert 1 <= len(logs) <= 1000
    signatures = {log.predict_log.request.model_spec.signature_name for log in logs}
    assert signatures == {"serving_default", "predict_examples", "score_candidates"}
    for log in logs[:6]:
        request = log.predict_log.request
        assert request.model_spec.name == "infnet"
        inputs = request_inputs(log)
        assert set(inputs) == set(served.signature(request.model_spec.signature_name).inputs)
        out = served.run(request.model_spec.signature_name, inputs)
        assert all(np.all(np.isfinite(v)) for v in out.values())
    sizes = {len(next(iter(request_inputs(log).values()))) for log in logs}
    assert len(sizes) > 2  # several batch sizes


def test_saved_model_cli_run(sample_export, served):
    """``saved_model_cli run`` (plain Python literals) on the exported raw signature."""
    columns = _good_columns(sample_export, served, n=1)

    def literal(v: np.ndarray) -> str:
        def plain(x):
            return x.decode() if isinstance(x, bytes) else x

        values = v.tolist()
        return repr([[plain(x) for x in r] for r in values] if v.ndim == 2 else [plain(x) for x in values])

    columns = {k: v for k, v in columns.items()}
    for k, v in columns.items():  # saved_model_cli literals cannot spell NaN
        if v.dtype == np.float64:
            columns[k] = np.nan_to_num(v, nan=1.0)
    exprs = ";".join(f"{k}={literal(v)}" for k, v in columns.items())
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli, "run", "--dir", sample_export["version_dir"], "--tag_set", "serve",
                           "--signature_def", "serving_default", "--input_exprs", exprs],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = served.run("serving_default", columns)
    for task in ("click", "like", "long_view"):
        match = re.search(rf"Result for output key {task}:\s*\[([^\]]+)\]", proc.stdout)
        assert match, proc.stdout[-2000:]
        assert abs(float(match.group(1)) - float(expected[task][0])) < 1e-5


def test_export_from_trainer_rejected_by_the_gate(sample_export, tmp_path):
    """The streaming hook's path, with weights that are clearly worse than the published version's on
    a held-out partition: the candidate is kept aside with its reason and nothing is published."""
    from export.exporter import export_from_trainer, read_rows
    from export.raw_inputs import RawDecoder
    from export.session_model import SessionModel
    from infnet_tf.transform import TransformArtifact
    from tests.export.fixtures import write_partition

    base = str(tmp_path / "exports")
    shutil.copytree(sample_export["model_root"], os.path.join(base, "infnet"))
    root = os.path.join(base, "infnet")
    trainer, data, layout = sample_export["trainer"], sample_export["data"], sample_export["layout"]
    # a held-out partition on which the published version 1 is perfect
    artifact = TransformArtifact.load(os.path.join(data, "transform", "transform_artifact.json"))
    held = read_rows(os.path.join(data, "valid"), layout, RawDecoder(artifact), 400)
    with SessionModel(os.path.join(root, "1")) as v1:
        preds = v1.run("predict_model_inputs", held.inputs)
    labels = {t: (p > np.median(p)).astype(np.int64) for t, p in preds.items()}
    holdout = str(tmp_path / "holdout" / "dt=2026-10-03")
    write_partition(holdout, layout, held.inputs, labels, int(held.request_time_ms[0]))

    weights = trainer.model.get_weights()
    averages = trainer.average.shadows if trainer.average is not None else []
    saved = [a.numpy() for a in averages]
    rng = np.random.default_rng(7)
    try:  # the trainer moves on to other weights (and averages: what it exports)
        trainer.model.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in weights])
        for a, value in zip(averages, saved):
            a.assign(value + rng.normal(0, 0.5, value.shape).astype(value.dtype))
        result = export_from_trainer(trainer, "dt=2026-10-03", export_base=base, data=data, holdout=holdout,
                                     keep=1, gate_metric_threshold=0.01)
    finally:
        trainer.model.set_weights(weights)
        for a, value in zip(averages, saved):
            a.assign(value)
    assert not result.published and result.version == 2, str(result)
    assert "worse than published version 1" in result.decision.reason
    assert result.decision.published_metric == pytest.approx(1.0, abs=1e-3)
    assert versions.published_versions(root) == [1] and versions.rejected_versions(root) == [2]
    reason = json.load(open(os.path.join(root, "_rejected", "2", versions.REASON_FILE)))
    assert reason["partition_key"] == "dt=2026-10-03" and reason["global_step"] == 0
    assert reason["gate"]["candidate_metric"] < 0.99 and not reason["gate"]["publish"]
    assert os.path.exists(os.path.join(root, "_rejected", "2", "saved_model.pb"))
    assert not [n for n in os.listdir(root) if n.startswith(".tmp-")]


def test_a_malformed_example_is_invalid_argument(sample_export, served):
    """Bytes that are not a serialized tf.train.Example: INVALID_ARGUMENT naming the row, not a
    UnicodeDecodeError (TensorFlow's parse error embeds the raw bytes in its message)."""
    columns = _good_columns(sample_export, served, n=2)
    from export.exporter import _examples_input
    from export.raw_inputs import RawDecoder
    from infnet_tf.transform import TransformArtifact

    artifact = TransformArtifact.load(os.path.join(sample_export["data"], "transform", "transform_artifact.json"))
    good = to_examples(columns, RawDecoder(artifact).inputs)
    assert np.all(np.isfinite(served.run("predict_examples", _examples_input(good))["click"]))
    for bad in (b"\xff\xfe\x00 not an Example", b"\x0a\xff", good[1][:-3]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input examples: row\(s\)\] \[1\] \[of\] \[3\]"):
            served.run("predict_examples", _examples_input([good[0], bad, good[1]]))


def _copy_model_dir(sample_export, dst: str) -> str:
    shutil.copytree(sample_export["model_dir"], dst, ignore=shutil.ignore_patterns("tensorboard"))
    return dst


def _add_truncated_newest_checkpoint(model_dir: str) -> tuple[str, str]:
    """ckpt-0 copied as ckpt-7 (listed as the newest in the state file), its data file cut in half."""
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    for name in os.listdir(ckpt_dir):
        if name.startswith("ckpt-0."):
            shutil.copy(os.path.join(ckpt_dir, name), os.path.join(ckpt_dir, name.replace("ckpt-0.", "ckpt-7.")))
    data = os.path.join(ckpt_dir, "ckpt-7.data-00000-of-00001")
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-7"\nall_model_checkpoint_paths: "ckpt-0"\n'
                'all_model_checkpoint_paths: "ckpt-7"\n')
    return os.path.join(ckpt_dir, "ckpt-7"), os.path.join(ckpt_dir, "ckpt-0")


def test_truncated_newest_checkpoint_falls_back_and_a_rerun_is_skipped(sample_export, tmp_path):
    """CLI rerun with nothing changed (issue 14.3): the newest checkpoint is unreadable, so the previous
    one is used with a warning naming both; its weights are already version 1, so nothing is written
    and the one line says which version (exit 0)."""
    base = str(tmp_path / "exports")
    shutil.copytree(sample_export["model_root"], os.path.join(base, "infnet"))
    model_dir = _copy_model_dir(sample_export, str(tmp_path / "model"))
    truncated, previous = _add_truncated_newest_checkpoint(model_dir)
    before = sorted(os.listdir(os.path.join(base, "infnet")))
    proc = run_module("export.export_model", f"--model_dir={model_dir}", f"--data={sample_export['data']}",
                      f"--export_base={base}", "--model_name=infnet")
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    warning = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warning) == 1 and truncated in warning[0] and previous in warning[0], out
    skipped = [line for line in out.splitlines() if "already published" in line]
    assert len(skipped) == 1 and "as version 1" in skipped[0] and "--force" in skipped[0], out
    assert "writing candidate" not in out and "serve it:" not in out
    assert sorted(os.listdir(os.path.join(base, "infnet"))) == before


def test_export_sweeps_leftovers_skips_the_same_weights_and_force_publishes(sample_export, tmp_path):
    """Issue 13.3: what a kill during pruning / writing / checkpointing left is swept by the next export
    (also when it is skipped); the streaming hook skips weights already published; --force publishes."""
    from export.exporter import export_from_checkpoint, export_from_trainer

    base = str(tmp_path / "exports")
    root = os.path.join(base, "infnet")
    shutil.copytree(sample_export["model_root"], root)
    model_dir = _copy_model_dir(sample_export, str(tmp_path / "model"))
    os.makedirs(os.path.join(root, "2", "variables"))                 # a prune killed mid-delete
    open(os.path.join(root, "2", "variables", "variables.index"), "w").close()
    os.makedirs(os.path.join(root, ".tmp-3-999-dead", "variables"))   # an export killed mid-write
    os.makedirs(os.path.join(root, ".deleting-0-beef"))              # a retire killed mid-delete
    temp = os.path.join(model_dir, "checkpoints", "ckpt-0_temp")      # a checkpoint save killed mid-write
    os.makedirs(temp)
    open(os.path.join(temp, "part-00000-of-00001.data-00000-of-00001"), "w").close()

    trainer, data = sample_export["trainer"], sample_export["data"]
    hooked = export_from_trainer(trainer, "dt=2026-10-03", export_base=base, data=data)
    assert hooked.skipped and not hooked.published and hooked.version == 1, str(hooked)
    assert "already published as version 1" in str(hooked)
    assert sorted(os.path.basename(p) for p in hooked.swept) == [".deleting-0-beef", ".tmp-3-999-dead", "2"]
    assert os.path.exists(temp)  # the hook sweeps the trainer's own checkpoint directory, not this copy
    assert sorted(n for n in os.listdir(root) if not n.startswith(".")) == ["1"]

    result = export_from_checkpoint(model_dir, data, base, "infnet", force=True, keep=5)
    assert result.published and not result.skipped and result.version == 4, str(result)  # 2 and 3 stay used
    assert result.swept == [temp] and not os.path.exists(temp)
    assert versions.published_versions(root) == [1, 4]
    assert not [n for n in os.listdir(root) if n.startswith((".tmp-", ".deleting-"))]
    info = json.load(open(os.path.join(root, "4", "assets.extra", "infnet_export.json")))
    v1 = json.load(open(os.path.join(root, "1", "assets.extra", "infnet_export.json")))
    assert info["forced"] and info["source"]["fingerprint"] == v1["source"]["fingerprint"]


def test_a_partial_holdout_partition_is_refused_with_exit_2(sample_export, tmp_path):
    """Export reads partitions only through Partition.verified_files(): a file listed in the manifest
    (_SUCCESS) but missing refuses the export with one line naming the partition and the file."""
    from infnet_tf.data.partitions import list_partitions, manifest_text

    newest = list_partitions(os.path.join(sample_export["data"], "valid"))[-1]
    partial = str(tmp_path / "holdout" / newest.key)
    shutil.copytree(newest.path, partial)
    files = {os.path.basename(f): 1 for f in newest.files()}
    files["part-00099-of-00100.tfrecord.gz"] = 5
    with open(os.path.join(partial, "_SUCCESS"), "w") as f:
        f.write(manifest_text(files))
    proc = run_module("export.export_model", f"--model_dir={sample_export['model_dir']}",
                      f"--data={sample_export['data']}", f"--export_base={tmp_path / 'exports'}",
                      "--model_name=infnet", f"--holdout={partial}", "--force")
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    errors = [line for line in proc.stdout.splitlines() if line.startswith("export: error:")]
    assert len(errors) == 1 and partial in errors[0] and "part-00099-of-00100.tfrecord.gz" in errors[0], proc.stdout
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "exports" / "infnet" / "1")


def test_an_artifact_built_before_sides_exports_without_score_candidates(sample_export, tmp_path, capsys):
    """A dataset built before specs declared sides still exports (a streaming job keeps publishing after an
    upgrade): every other signature, and one warning line saying why ``score_candidates`` is missing."""
    from export.exporter import export_from_trainer
    from export.session_model import SessionModel

    with open(os.path.join(sample_export["data"], "transform", "transform_artifact.json")) as f:
        artifact = json.load(f)
    stripped = 0
    for kind in ("categorical", "dense", "counters"):
        for entry in artifact.get(kind, {}).values():
            stripped += entry.pop("side", None) is not None
    assert stripped
    old = str(tmp_path / "old_data")   # the same dataset, its artifact as written before sides existed
    shutil.copytree(sample_export["data"], old)
    with open(os.path.join(old, "transform", "transform_artifact.json"), "w") as f:
        json.dump(artifact, f)
    base = str(tmp_path / "exports")
    result = export_from_trainer(sample_export["trainer"], export_base=base, data=old, keep=1)
    assert result.published, str(result)
    assert "warning: this version has no score_candidates signature" in capsys.readouterr().out
    version = os.path.join(base, "infnet", str(result.version))
    assert not os.path.exists(os.path.join(version, "assets.extra", "sample_candidates_request.jsonl"))
    with SessionModel(version) as served:
        assert "score_candidates" not in served.signatures and "serving_default" in served.signatures


def test_an_export_from_the_artifact_alone_self_checks_on_synthetic_rows(sample_export, tmp_path, capsys):
    """``--data=<transform_artifact.json>`` (no TFRecords at hand): the self-check runs on synthetic ids,
    which must be ids a raw value can produce (the sample's ``position`` reserves 17 ids, its deduplicated
    quantile boundaries reach 12) — before, such an export was always rejected for a parity gap."""
    from export.exporter import export_from_trainer

    artifact = os.path.join(sample_export["data"], "transform", "transform_artifact.json")
    result = export_from_trainer(sample_export["trainer"], export_base=str(tmp_path / "exports"), data=artifact,
                                 keep=1)
    assert "synthetic rows" in capsys.readouterr().out
    assert result.published, str(result)
