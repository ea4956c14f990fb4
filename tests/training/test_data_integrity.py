"""Readers never lose data silently: partitions are checked against their manifests, bad files are
named, a truncated newest checkpoint falls back, a stop says what it does (issue 13, reader side)."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal

import pytest

import infnet_tf  # noqa: F401
from infnet_tf.data.errors import PartitionError
from infnet_tf.data.partitions import Partition, list_partitions, manifest_text
from tests.training.helpers import write_data_with_artifact
from tests.training.stream_fixtures import (ROWS, add_partition, consumed_keys, mark_success,
                                            tiny_trainer)


@pytest.fixture()
def data(tmp_path):
    root = str(tmp_path / "data")
    layout = write_data_with_artifact(root, days=(2, 1, 1), rows_per_day=ROWS, files_per_day=2)
    return root, layout


def _train_parts(root):
    return list_partitions(os.path.join(root, "train"))


# -- the manifest --------------------------------------------------------------------------------
def test_manifest_round_trip_and_verified_files(data):
    root, _ = data
    part = _train_parts(root)[0]
    manifest = part.manifest()
    assert manifest.rows == ROWS and sorted(manifest.files) == ["part-00000.tfrecord.gz", "part-00001.tfrecord.gz"]
    assert [os.path.basename(f) for f in part.verified_files()] == sorted(manifest.files)
    assert part.expected_rows() == ROWS


def test_missing_part_file_is_refused_naming_it(data):
    root, layout = data
    from infnet_tf.input import make_dataset

    part = _train_parts(root)[1]
    victim = os.path.join(part.path, "part-00001.tfrecord.gz")
    os.remove(victim)
    with pytest.raises(PartitionError, match="part-00001.tfrecord.gz") as err:
        part.verified_files()
    assert part.key in str(err.value) and "1 of 2" in str(err.value)
    with pytest.raises(PartitionError, match="part-00001"):           # every directory read
        make_dataset(os.path.join(root, "train"), layout, 64, shuffle=False, repeat=False, deterministic=True)


def test_unlisted_file_is_refused(data):
    root, _ = data
    part = _train_parts(root)[0]
    with open(os.path.join(part.path, "part-00009.tfrecord.gz"), "wb"):
        pass
    with pytest.raises(PartitionError, match="part-00009.tfrecord.gz is not listed"):
        part.verified_files()


def test_marker_without_files_is_not_a_complete_partition(tmp_path):
    part_dir = tmp_path / "train" / "dt=2026-10-01"
    part_dir.mkdir(parents=True)
    mark_success(str(part_dir))                                        # empty legacy marker, no data
    (part,) = list_partitions(str(tmp_path / "train"))
    with pytest.raises(PartitionError, match="holds no data file"):
        part.verified_files()


def test_legacy_marker_falls_back_to_the_dataset_summary(data):
    root, _ = data
    part = _train_parts(root)[0]
    names = sorted(part.manifest().files)
    open(os.path.join(part.path, "_SUCCESS"), "w").close()            # a dataset from before manifests
    summary = {"partitions": {"train": [{"partition": part.key, "rows": 999, "files": 2}]},
               "files": [f"train/{part.key}/{n}" for n in names]}
    with open(os.path.join(root, "_DATASET.json"), "w") as f:
        json.dump(summary, f)
    assert part.expected_rows() == 999
    os.remove(os.path.join(part.path, names[0]))
    with pytest.raises(PartitionError, match=names[0]):
        part.verified_files()


def test_unreadable_manifest_is_named(data):
    root, _ = data
    part = _train_parts(root)[0]
    with open(os.path.join(part.path, "_SUCCESS"), "w") as f:
        f.write("{not json")
    with pytest.raises(PartitionError, match="unreadable partition manifest"):
        part.verified_files()


# -- streaming -----------------------------------------------------------------------------------
def test_streaming_refuses_an_empty_partition_then_trains_it_when_its_files_arrive(data, tmp_path):
    from infnet_tf.training.streaming import run_streaming

    root, layout = data
    train_dir = os.path.join(root, "train")
    late = os.path.join(train_dir, "dt=2026-09-30")                   # after the two existing days
    os.makedirs(late)
    mark_success(late)                                                # the marker came before the files
    model_dir = str(tmp_path / "model")
    trainer = tiny_trainer(layout, model_dir)
    with pytest.raises(PartitionError, match="dt=2026-09-30.*holds no data file"):
        run_streaming(trainer, root)
    assert "dt=2026-09-30" not in consumed_keys(model_dir)            # never marked done
    shutil.rmtree(late)
    add_partition(train_dir, "dt=2026-09-30", seed=7)                  # now the files are there
    summary = run_streaming(tiny_trainer(layout, model_dir), root)
    assert "dt=2026-09-30" in consumed_keys(model_dir)
    assert summary["caught_up"] is True
    with open(os.path.join(model_dir, "streaming_state.json")) as f:
        records = {e["key"]: e["records"] for e in json.load(f)["consumed"]}
    assert records["dt=2026-09-30"] == ROWS


def test_follow_mode_waits_for_an_incomplete_partition_instead_of_skipping_it(data):
    from infnet_tf.training.sources import FileSource
    from infnet_tf.training.state import StreamingState

    root, layout = data
    parts = _train_parts(root)
    os.remove(os.path.join(parts[0].path, "part-00000.tfrecord.gz"))
    lines = []
    source = FileSource(os.path.join(root, "train"), layout, 64, shuffle=False, deterministic=True,
                        wait_for_incomplete=True, log=lines.append)
    state = StreamingState()
    assert source.next_unit(state) is None and source.next_unit(state) is None   # not the later one either
    assert len(lines) == 1 and "waiting for" in lines[0] and "part-00000" in lines[0]


def test_streaming_row_count_mismatch_stops_before_the_checkpoint(data, tmp_path):
    root, layout = data
    from infnet_tf.training.streaming import run_streaming

    part = _train_parts(root)[0]
    with open(os.path.join(part.path, "_SUCCESS"), "w") as f:         # one file lost rows
        f.write(manifest_text({"part-00000.tfrecord.gz": ROWS // 2 + 5, "part-00001.tfrecord.gz": ROWS // 2}))
    model_dir = str(tmp_path / "model")
    with pytest.raises(PartitionError, match=f"read {ROWS:,} examples but its manifest records {ROWS + 5:,}"):
        run_streaming(tiny_trainer(layout, model_dir), root)
    assert consumed_keys(model_dir) == []
    assert not glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.index"))


def _corrupt(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64
    open(path, "wb").write(bytes(data))


def test_corrupt_file_is_named_in_batch_and_streaming(data, tmp_path):
    from infnet_tf.data.errors import DataFileError
    from infnet_tf.training.batch import run_batch
    from infnet_tf.training.streaming import run_streaming

    root, layout = data
    victim = os.path.join(_train_parts(root)[1].path, "part-00001.tfrecord.gz")
    _corrupt(victim)
    with pytest.raises(DataFileError, match=f"{victim} is corrupt or truncated"):
        run_batch(tiny_trainer(layout, str(tmp_path / "batch")), root)
    with pytest.raises(DataFileError, match=f"{victim} is corrupt or truncated"):
        run_streaming(tiny_trainer(layout, str(tmp_path / "stream")), root)
    assert consumed_keys(str(tmp_path / "stream")) == [_train_parts(root)[0].key]


def test_evaluation_checks_rows_against_the_manifest(data, tmp_path):
    from infnet_tf.training.evaluation import evaluate_split

    root, layout = data
    (part,) = list_partitions(os.path.join(root, "valid"))
    with open(os.path.join(part.path, "_SUCCESS"), "w") as f:
        f.write(manifest_text({"part-00000.tfrecord.gz": ROWS // 2, "part-00001.tfrecord.gz": ROWS // 2 + 1}))
    with pytest.raises(PartitionError, match="evaluation of .*valid.*manifests record 257 rows"):
        evaluate_split(tiny_trainer(layout, str(tmp_path / "m")), root, "valid")


# -- checkpoints and stops -----------------------------------------------------------------------
def test_truncated_newest_checkpoint_falls_back_to_the_previous(data, tmp_path, capsys):
    root, layout = data
    model_dir = str(tmp_path / "model")
    trainer = tiny_trainer(layout, model_dir)
    first = trainer.save_checkpoint()
    trainer._global_step.assign(5)
    newest = trainer.save_checkpoint()
    data_file = glob.glob(newest + ".data-*")[0]
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 3)
    fresh = tiny_trainer(layout, model_dir)
    assert fresh.restore_latest()
    assert fresh.restored_checkpoint == first and fresh.global_step == 0
    out = capsys.readouterr().out
    assert f"{newest} cannot be restored" in out and f"falling back to {first}" in out


def test_stop_message_says_what_happens_to_the_unit(capsys):
    from infnet_tf.training.streaming import StopRequest

    with StopRequest() as stop:
        stop.phase = "test dt=2026-10-02"
        stop._handle(signal.SIGTERM, None)
    assert stop.is_set()
    out = capsys.readouterr().out
    assert "abandoning the test phase of dt=2026-10-02" in out and "tested and trained when the job starts again" in out
    with StopRequest() as stop:
        stop.phase = "train dt=2026-10-03"
        stop._handle(signal.SIGINT, None)
    assert "finishing the training of dt=2026-10-03" in capsys.readouterr().out


def test_stop_during_test_phase_leaves_the_unit_untrained_and_not_caught_up(data, tmp_path):
    from infnet_tf.training.streaming import StopRequest, run_streaming

    root, layout = data
    model_dir = str(tmp_path / "model")
    trainer = tiny_trainer(layout, model_dir)
    stop = StopRequest()
    original = trainer.evaluate

    def evaluate_then_signal(*args, **kwargs):          # SIGTERM lands while the unit is tested
        result = original(*args, **kwargs)
        stop.request("signal SIGTERM")
        return result

    trainer.evaluate = evaluate_then_signal
    summary = run_streaming(trainer, root, stop=stop)
    assert summary["units"] == 0 and summary["caught_up"] is False
    assert consumed_keys(model_dir) == []


def test_unreachable_s3_endpoint_is_reported_as_such(monkeypatch):
    import socket

    from infnet_tf.data.artifact import load
    from infnet_tf.data.errors import StorageUnreachableError

    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(StorageUnreachableError, match=f"cannot reach the S3 endpoint.*127.0.0.1:{port}"):
        load("s3://bucket/data")
