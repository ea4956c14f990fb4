"""Version directories, the validation gate's rules and the generated TF Serving config (no TensorFlow graphs)."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from export import gate, serving_files, versions

HERE = os.path.dirname(__file__)


def _fake_version(path: str) -> None:
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    open(os.path.join(path, "saved_model.pb"), "wb").close()


# -- versions ------------------------------------------------------------------------------------
def test_versions_increase_past_everything_ever_used(tmp_path):
    root = str(tmp_path / "infnet")
    assert versions.next_version(root) == 1
    for v in (1, 2):
        _fake_version(os.path.join(root, str(v)))
    assert versions.next_version(root) == 3
    _fake_version(os.path.join(root, versions.REJECTED_DIR, "5"))
    os.makedirs(os.path.join(root, ".tmp-7-123-abcd"))
    assert versions.next_version(root) == 8
    assert versions.published_versions(root) == [1, 2] and versions.latest_version(root) == 2


def test_publish_is_a_rename_of_a_complete_directory(tmp_path):
    root = str(tmp_path / "infnet")
    os.makedirs(root)
    staging = versions.staging_path(root, 1)
    os.makedirs(staging)
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        versions.publish(staging, root, 1)  # half a model is never published
    _fake_version(staging)
    path = versions.publish(staging, root, 1)
    assert path == os.path.join(root, "1") and not os.path.exists(staging)
    assert sorted(os.listdir(root)) == ["1"]
    other = versions.staging_path(root, 1)
    _fake_version(other)
    with pytest.raises(FileExistsError):
        versions.publish(other, root, 1)


def test_reject_keeps_the_candidate_aside_with_its_reason(tmp_path):
    root = str(tmp_path / "infnet")
    staging = versions.staging_path(root, 4)
    _fake_version(staging)
    path = versions.reject(staging, root, 4, {"reason": "worse"})
    assert path == os.path.join(root, "_rejected", "4")
    assert json.load(open(os.path.join(path, versions.REASON_FILE)))["reason"] == "worse"
    assert versions.published_versions(root) == [] and versions.next_version(root) == 5


def test_keep_last_k(tmp_path):
    root = str(tmp_path / "infnet")
    for v in (3, 10, 11, 12):
        _fake_version(os.path.join(root, str(v)))
    assert versions.prune(root, keep=2) == [3, 10]
    assert versions.published_versions(root) == [11, 12]
    with pytest.raises(ValueError):
        versions.prune(root, keep=0)


def test_stale_staging_is_cleaned_and_the_lock_is_exclusive(tmp_path):
    root = str(tmp_path / "infnet")
    old = os.path.join(root, ".tmp-3-1-aaaa")
    fresh = os.path.join(root, ".tmp-4-1-bbbb")
    os.makedirs(old)
    os.makedirs(fresh)
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert versions.clean_stale_staging(root) == [old]
    assert os.path.exists(fresh)
    with versions.exclusive(root):
        with pytest.raises(TimeoutError, match="another export"):
            with versions.exclusive(root, timeout_s=0.3):
                pass
    with versions.exclusive(root, timeout_s=0.3):
        pass


# -- the gate ------------------------------------------------------------------------------------
def _preds(*values):
    return {"click": np.asarray(values, np.float32)}


def test_gate_rules():
    ok = _preds(0.1, 0.9)
    first = gate.decide(ok, candidate_metric=0.6, published_metric=None, published_version=None, threshold=0.01)
    assert first.publish and "first version" in first.reason
    nan = gate.decide(_preds(0.1, np.nan), candidate_metric=0.9, published_metric=0.5, published_version=3,
                      threshold=0.01)
    assert not nan.publish and "non-finite" in nan.reason
    worse = gate.decide(ok, candidate_metric=0.70, published_metric=0.72, published_version=3, threshold=0.01)
    assert not worse.publish and "worse" in worse.reason and "version 3" in worse.reason
    within = gate.decide(ok, candidate_metric=0.715, published_metric=0.72, published_version=3, threshold=0.01)
    assert within.publish
    undefined = gate.decide(ok, candidate_metric=float("nan"), published_metric=0.7, published_version=3,
                            threshold=0.01)
    assert undefined.publish and "only finiteness" in undefined.reason
    with pytest.raises(ValueError):
        gate.decide(ok, candidate_metric=0.7, published_metric=0.7, published_version=1, threshold=-1)
    assert json.dumps(worse.to_dict())


def test_gate_metric_is_mean_auc_over_defined_tasks():
    labels = {"click": np.array([0, 1, 0, 1, -1]), "like": np.array([0, 0, 0, 0, 0])}
    preds = {"click": np.array([0.1, 0.9, 0.2, 0.8, 0.0]), "like": np.array([0.3, 0.1, 0.2, 0.4, 0.5])}
    aucs = gate.task_aucs(labels, preds)
    assert aucs["click"] == 1.0 and np.isnan(aucs["like"])
    assert gate.mean_auc(labels, preds) == 1.0


# -- TF Serving config -----------------------------------------------------------------------------
def _message_class(name: str, fields):
    """A dynamic proto class for ``tensorflow.serving.<name>`` (the serving-api wheel lacks these protos)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(name=f"{name}.proto", package="tensorflow.serving", syntax="proto3",
                                           dependency=["google/protobuf/wrappers.proto"])
    messages = fields if isinstance(fields, dict) else {name: fields}
    for msg_name, msg_fields in messages.items():
        m = f.message_type.add(name=msg_name)
        for number, (field_name, kind, type_name, repeated) in enumerate(msg_fields, 1):
            label = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if repeated else \
                descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            m.field.add(name=field_name, number=number, type=kind, type_name=type_name, label=label)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


def test_serving_config_files_parse_as_their_protos(tmp_path):
    from google.protobuf import descriptor_pb2, text_format
    from tensorflow_serving.config import model_server_config_pb2

    base = str(tmp_path / "exports")
    _fake_version(os.path.join(base, "infnet", "7"))
    paths = serving_files.write_serving_config(base, serve_versions=2)
    config = text_format.Parse(open(paths["models.config"]).read(), model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert entry.name == "infnet" and entry.base_path == os.path.join(os.path.abspath(base), "infnet")
    assert entry.model_platform == "tensorflow" and entry.model_version_policy.latest.num_versions == 2
    docker = text_format.Parse(open(paths["models.docker.config"]).read(), model_server_config_pb2.ModelServerConfig())
    assert docker.model_config_list.config[0].base_path == "/models/infnet"

    t = descriptor_pb2.FieldDescriptorProto
    i64, s = (t.TYPE_MESSAGE, ".google.protobuf.Int64Value"), (t.TYPE_MESSAGE, ".google.protobuf.StringValue")
    batching = _message_class("BatchingParameters", [
        ("max_batch_size", *i64, False), ("batch_timeout_micros", *i64, False), ("max_enqueued_batches", *i64, False),
        ("num_batch_threads", *i64, False), ("thread_pool_name", *s, False),
        ("allowed_batch_sizes", t.TYPE_INT64, None, True), ("pad_variable_length_inputs", t.TYPE_BOOL, None, False)])
    params = text_format.Parse(open(paths["batching_parameters.txt"]).read(), batching())
    assert params.max_batch_size.value == 1024 and params.pad_variable_length_inputs
    assert params.num_batch_threads.value >= 1 and params.batch_timeout_micros.value == 1000
    monitoring = _message_class("MonitoringConfig", {
        "PrometheusConfig": [("enable", t.TYPE_BOOL, None, False), ("path", t.TYPE_STRING, None, False)],
        "MonitoringConfig": [("prometheus_config", t.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False)]})
    mon = text_format.Parse(open(paths["monitoring.config"]).read(), monitoring())
    assert mon.prometheus_config.enable and mon.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_serving_commands_are_documented():
    cmds = serving_files.server_commands("/srv/exports", "infnet")
    server = cmds["tensorflow_model_server"]
    for flag in ("--model_config_file=/srv/exports/serving_config/models.config", "--enable_batching",
                 "--batching_parameters_file=", "--monitoring_config_file="):
        assert flag in server
    assert cmds["docker"] == ("docker run --rm -p 8501:8501 -p 8500:8500 -v /srv/exports/infnet:/models/infnet "
                              "-e MODEL_NAME=infnet tensorflow/serving:2.16.1")
    doc = open(os.path.join(HERE, "..", "..", "export", "SERVING.md")).read()
    assert "tensorflow_model_server --port=8500 --rest_api_port=8501 --model_config_file=" in doc
    assert "-e MODEL_NAME=infnet tensorflow/serving:2.16.1" in doc


# -- pruning and sweeping (issue 13.3: a kill during --keep pruning left a version without saved_model.pb)
def test_prune_moves_a_version_out_of_the_integer_namespace_before_deleting_it(tmp_path, monkeypatch):
    root = str(tmp_path / "infnet")
    for v in (1, 2, 3):
        _fake_version(os.path.join(root, str(v)))

    def killed(path, *args, **kwargs):  # the process dies while deleting
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(versions.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        versions.prune(root, keep=2)
    monkeypatch.undo()
    names = os.listdir(root)
    assert "1" not in names and [n for n in names if n.startswith(".deleting-1-")]  # never a broken "1/"
    assert versions.published_versions(root) == [2, 3]


def test_sweep_removes_what_killed_exports_left(tmp_path):
    root = str(tmp_path / "infnet")
    _fake_version(os.path.join(root, "1"))
    os.makedirs(os.path.join(root, "2", "variables"))           # killed mid-delete by the old prune
    os.makedirs(os.path.join(root, ".tmp-5-123-abcd", "variables"))  # killed mid-write
    os.makedirs(os.path.join(root, ".deleting-0-ffff"))          # killed mid-retire
    _fake_version(os.path.join(root, versions.REJECTED_DIR, "4"))
    swept = dict(versions.sweep(root))
    assert sorted(os.path.basename(p) for p in swept) == [".deleting-0-ffff", ".tmp-5-123-abcd", "2"]
    assert "saved_model.pb" in swept[os.path.join(root, "2")]
    assert sorted(n for n in os.listdir(root) if not n.startswith(".last_version")) == ["1", "_rejected"]
    assert versions.next_version(root) == 6  # swept numbers are never handed out again
    assert versions.sweep(root) == []


def test_best_checkpoint_is_the_batch_runs_best_round_unless_superseded(tmp_path):
    import json

    import tensorflow as tf

    from export.exporter import best_checkpoint

    model_dir = str(tmp_path / "model")
    ckpt = tf.train.Checkpoint(v=tf.Variable(1.0))
    rounds = tf.train.CheckpointManager(ckpt, f"{model_dir}/checkpoints", max_to_keep=3, checkpoint_name="ckpt")
    best_dir = tf.train.CheckpointManager(ckpt, f"{model_dir}/best", max_to_keep=1, checkpoint_name="best")
    first = rounds.save(checkpoint_number=10)
    best = best_dir.save(checkpoint_number=10)                      # round 1 was the best on valid
    last = rounds.save(checkpoint_number=20)                        # round 2 was not
    assert best_checkpoint(model_dir) is None                       # no metrics.json: no batch run
    with open(f"{model_dir}/metrics.json", "w") as f:
        json.dump({"best": {"checkpoint": best}, "history": [{"checkpoint": first}, {"checkpoint": last}]}, f)
    assert best_checkpoint(model_dir) == f"{model_dir}/best/best-10"
    rounds.save(checkpoint_number=30)                               # a later run trained on
    assert best_checkpoint(model_dir) is None
