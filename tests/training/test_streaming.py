"""Streaming mode on tiny partitions: order, test-then-train records, _SUCCESS, follow, SIGTERM."""
import os
import signal
import threading
import time

import pytest

import infnet_tf  # noqa: F401
from infnet_tf.training.sources import FileSource
from infnet_tf.training.state import StreamingState, ConsumedEntry
from infnet_tf.training.streaming import StreamingConfig, run_streaming
from tests.tiny_data import write_dataset
from tests.training.stream_fixtures import (STEPS_PER_PARTITION, ROWS, add_partition, consumed_keys,
                                            log_records, mark_success, read_state, tiny_trainer)

TASKS = ("click", "like")


@pytest.fixture()
def data(tmp_path):
    root = str(tmp_path / "data")
    layout = write_dataset(root, days=(2, 0, 0), rows_per_day=ROWS)
    train = os.path.join(root, "train")
    complete = sorted(os.listdir(train))
    add_partition(train, "dt=2026-12-31", seed=9, success=False)   # still being written
    return root, layout, complete


def test_file_source_walks_complete_partitions_in_time_order(data):
    root, layout, complete = data
    source = FileSource(os.path.join(root, "train"), layout, 64, shuffle=False, deterministic=True)
    state = StreamingState()
    seen = []
    while (unit := source.next_unit(state)) is not None:
        seen.append(unit.key)
        state = state.with_entry(ConsumedEntry(unit.key, len(seen)))
    assert seen == complete  # dt=2026-12-31 has no _SUCCESS: never read


def test_consumes_in_order_test_then_train_sigterm_finishes_the_unit_and_resumes(data, tmp_path, capsys):
    root, layout, complete = data
    model_dir = str(tmp_path / "model")
    exports = []
    hook = lambda trainer, key: exports.append((key, trainer.global_step))  # noqa: E731

    # run 1: SIGTERM arrives while the first partition trains -> it is finished, nothing after it
    trainer = tiny_trainer(layout, model_dir)
    train_on = trainer.train_on

    def train_and_get_terminated(dataset, max_steps=None):
        os.kill(os.getpid(), signal.SIGTERM)
        return train_on(dataset, max_steps)

    trainer.train_on = train_and_get_terminated
    handler = signal.getsignal(signal.SIGTERM)
    first = run_streaming(trainer, root, export_every=2, export_hook=hook)
    assert first["units"] == 1 and first["stop_reason"] == "signal SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is handler           # handlers restored
    state = read_state(model_dir)
    assert [e["key"] for e in state["consumed"]] == complete[:1] and exports == []
    assert state["checkpoint"].endswith(f"ckpt-{STEPS_PER_PARTITION}")

    # run 2: a new process (new trainer) continues with the second partition only
    second = run_streaming(tiny_trainer(layout, model_dir), root, max_partitions=1, export_every=2,
                           export_hook=hook)
    assert second["units"] == 1 and second["stop_reason"] == "max_partitions=1 reached"
    assert exports == [(complete[1], 2 * STEPS_PER_PARTITION)]   # every 2 units, counted across runs
    state = read_state(model_dir)
    assert [e["key"] for e in state["consumed"]] == complete
    assert [e["global_step"] for e in state["consumed"]] == [STEPS_PER_PARTITION * i for i in (1, 2)]
    assert all(e["records"] == ROWS for e in state["consumed"])
    assert state["checkpoint"].endswith(f"ckpt-{2 * STEPS_PER_PARTITION}")
    assert os.path.exists(state["checkpoint"] + ".index")

    units = log_records(model_dir, "unit")
    assert [u["key"] for u in units] == complete
    for before, unit in zip([0] + [u["global_step"] for u in units], units):
        # tested at the step *before* training on it, then trained one pass
        assert unit["global_step_before"] == before
        assert unit["global_step"] == before + STEPS_PER_PARTITION
        assert set(unit["test"]) == set(TASKS) and unit["test"]["click"]["count"] == ROWS
        assert 0.0 <= unit["test"]["click"]["auc"] <= 1.0 and unit["test"]["click"]["logloss"] > 0
        assert unit["train"]["steps"] == STEPS_PER_PARTITION
    assert [r["event"] for r in log_records(model_dir)] == ["start", "unit", "stop",
                                                             "start", "unit", "export", "stop"]
    tags = _tensorboard_tags(os.path.join(model_dir, "tensorboard"))
    assert {"stream_test/click/auc", "stream_test/like/gauc", "stream_test/click/logloss",
            "stream_train/loss", "stream_test/attention"} <= tags
    printed = capsys.readouterr().out
    assert "stream_test @ step 0 - click: auc" in printed and f"stream_test @ step {STEPS_PER_PARTITION}" in printed


def _tensorboard_tags(log_dir):
    import glob

    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_follow_picks_up_a_late_partition_and_sigterm_stops_cleanly(data, tmp_path):
    root, layout, complete = data
    model_dir = str(tmp_path / "model")
    train = os.path.join(root, "train")
    late = "dt=2026-10-15"
    seen_incomplete = {}

    def producer():
        deadline = time.monotonic() + 90
        while len(consumed_keys(model_dir)) < len(complete) and time.monotonic() < deadline:
            time.sleep(0.05)
        part = add_partition(train, late, seed=5, success=False)
        time.sleep(1.0)                               # several polls see it without _SUCCESS
        seen_incomplete["consumed"] = late in consumed_keys(model_dir)
        mark_success(part)
        while late not in consumed_keys(model_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)          # stop the follow loop (the bound of this test)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    summary = run_streaming(tiny_trainer(layout, model_dir), root, follow=True, poll_interval_s=0.2)
    thread.join(5)
    assert summary["stop_reason"] == "signal SIGTERM"
    assert seen_incomplete == {"consumed": False}
    assert consumed_keys(model_dir) == complete + [late]
    assert log_records(model_dir)[-1]["event"] == "stop"


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="source: expected one of files|kafka"):
        StreamingConfig(source="pulsar")
    with pytest.raises(ValueError, match="kafka_servers: required with source=kafka"):
        StreamingConfig(source="kafka", kafka_topic="t")
    with pytest.raises(ValueError, match="kafka_config: expected key=value"):
        StreamingConfig(kafka_config="session.timeout.ms")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['folow'\]"):
        StreamingConfig.from_kwargs(folow=True)
