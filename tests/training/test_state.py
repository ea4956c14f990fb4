"""Streaming state: JSON round trip, atomic write, corruption errors, checkpointed twin, reconcile."""
import os

import pytest

import infnet_tf  # noqa: F401
from infnet_tf.training.state import (CheckpointedProgress, ConsumedEntry, StateFileError, StreamingState,
                                      load_state, read_checkpointed_state, reconcile, save_state)


def _state(*keys, offsets=None):
    state = StreamingState()
    for i, key in enumerate(keys):
        state = state.with_entry(ConsumedEntry(key, global_step=4 * (i + 1), records=256))
    if offsets:
        state = state.with_entry(ConsumedEntry("kafka/t/p0:0-5", 99, offsets={"t:0": (0, 5)}), offsets)
    return state


def test_round_trip_and_atomic_write(tmp_path):
    path = str(tmp_path / "streaming_state.json")
    assert load_state(path) is None
    state = _state("dt=2026-09-20", "dt=2026-09-21", offsets={"t:0": 5}).with_checkpoint("/m/ckpt-99")
    save_state(path, state)
    assert os.listdir(tmp_path) == ["streaming_state.json"]  # no temporary file left behind
    back = load_state(path)
    assert back.keys() == ["dt=2026-09-20", "dt=2026-09-21", "kafka/t/p0:0-5"]
    assert back.consumed[-1].offsets == {"t:0": (0, 5)} and back.source_offsets == {"t:0": 5}
    assert back.checkpoint == "/m/ckpt-99" and back.consumed[-1].checkpoint == "/m/ckpt-99"
    assert back.global_step == 99


def test_no_unit_twice():
    with pytest.raises(ValueError, match="already consumed"):
        _state("dt=2026-09-20").with_entry(ConsumedEntry("dt=2026-09-20", 8))


@pytest.mark.parametrize("text, match", [
    ("{not json", "corrupt: JSONDecodeError"),
    ("[]", "expected a JSON object"),
    ('{"version": 7, "consumed": []}', "unsupported version 7"),
    ('{"version": 1}', "KeyError"),
    ('{"version": 1, "consumed": [{"key": "a", "global_step": 1}, {"key": "a", "global_step": 2}]}',
     "listed twice"),
])
def test_corrupt_file_is_a_clear_error(tmp_path, text, match):
    path = tmp_path / "streaming_state.json"
    path.write_text(text)
    with pytest.raises(StateFileError, match=match) as err:
        load_state(str(path))
    assert str(path) in str(err.value)


def test_progress_travels_inside_the_checkpoint(tmp_path):
    import tensorflow as tf

    weights = tf.Variable(1.0)
    ckpt = tf.train.Checkpoint(w=weights)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=2)
    plain = manager.save()                       # e.g. a batch-mode checkpoint: no progress
    progress = CheckpointedProgress(ckpt)
    progress.set(_state("dt=2026-09-20"))
    with_progress = manager.save()
    assert read_checkpointed_state(plain) is None
    assert read_checkpointed_state(None) is None
    assert read_checkpointed_state(with_progress).keys() == ["dt=2026-09-20"]
    # a fresh Checkpoint restores a progress-less checkpoint without complaint, then attaches progress
    ckpt2 = tf.train.Checkpoint(w=tf.Variable(0.0))
    ckpt2.restore(plain).assert_existing_objects_matched()
    CheckpointedProgress(ckpt2)


def test_reconcile_checkpoint_wins():
    a, ab = _state("a"), _state("a", "b")
    same, notes = reconcile(ab, ab.with_checkpoint("/c/2"), "/c/2")
    assert same.keys() == ["a", "b"] and notes == []
    # killed after the checkpoint, before the state file: b is recovered, not retrained
    ahead, notes = reconcile(ab, a, "/c/2")
    assert ahead.keys() == ["a", "b"] and ahead.consumed[-1].checkpoint == "/c/2"
    assert "recovered 1 unit" in notes[0]
    # state file ahead of the checkpoint (checkpoints rolled back): the checkpoint wins
    behind, notes = reconcile(a, ab, "/c/1")
    assert behind.keys() == ["a"] and "trained again" in notes[0] and "'b'" in notes[0]
    # fresh start, or a batch-mode checkpoint without progress
    fresh, notes = reconcile(None, None, None)
    assert fresh.keys() == [] and notes == []
    with pytest.raises(StateFileError, match="checkpoints it describes are gone"):
        reconcile(None, ab, None)
