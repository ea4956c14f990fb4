"""The best-on-valid checkpoint is a copy of the round checkpoint: same values, latest in its directory,
one kept, and a half-copied checkpoint never shadows the previous best."""
import os

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training.best_checkpoint import checkpoint_files, keep_best


def _saved(tmp_path, value: float, step: int):
    v = tf.Variable(np.full([3, 2], value, np.float32))
    ckpt = tf.train.Checkpoint(v=v, step=tf.Variable(step, dtype=tf.int64))
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "checkpoints"), max_to_keep=5)
    return manager.save(checkpoint_number=step)


def _restored(prefix):
    v, step = tf.Variable(np.zeros([3, 2], np.float32)), tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(v=v, step=step).restore(prefix).assert_consumed()
    return v.numpy(), int(step.numpy())


def test_copy_restores_like_the_round_checkpoint_and_replaces_the_previous_best(tmp_path):
    best_dir = str(tmp_path / "best")
    first = keep_best(_saved(tmp_path, 1.5, 20), best_dir, 20)
    assert first == f"{best_dir}/best-20" and tf.train.latest_checkpoint(best_dir) == first
    values, step = _restored(first)
    np.testing.assert_array_equal(values, np.full([3, 2], 1.5))
    assert step == 20

    second = keep_best(_saved(tmp_path, -2.0, 40), best_dir, 40)
    assert tf.train.latest_checkpoint(best_dir) == second == f"{best_dir}/best-40"
    values, step = _restored(second)
    np.testing.assert_array_equal(values, np.full([3, 2], -2.0))
    assert step == 40
    assert sorted(os.listdir(best_dir)) == ["best-40.data-00000-of-00001", "best-40.index", "checkpoint"]
    assert os.path.exists(str(tmp_path / "checkpoints" / "ckpt-20.index"))   # the source is left alone


def test_index_is_copied_last_and_a_missing_source_is_an_error(tmp_path):
    prefix = _saved(tmp_path, 0.0, 7)
    files = checkpoint_files(prefix)
    assert files[-1] == prefix + ".index" and len(files) == 2
    os.remove(prefix + ".index")
    with pytest.raises(FileNotFoundError, match="ckpt-7.index"):
        keep_best(prefix, str(tmp_path / "best"), 7)
