"""Batch mode end to end on tiny data: learns, selects the best checkpoint, writes metrics.json."""
import glob
import json
import os

import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training import evaluation
from infnet_tf.training.batch import run_batch
from infnet_tf.training.evaluation import eval_dataset, evaluate_dir
from infnet_tf.training.trainer import Trainer
from tests.training.helpers import tiny_model_config, tiny_train_config, write_data_with_artifact


def test_batch_mode_end_to_end(tmp_path, capsys):
    data = str(tmp_path / "data")
    layout = write_data_with_artifact(data, days=(4, 1, 1), rows_per_day=256)
    model_dir = str(tmp_path / "model")
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(epochs=3, log_every=8), model_dir)
    result = run_batch(trainer, data)

    with open(os.path.join(model_dir, "metrics.json")) as f:
        written = json.load(f)
    assert written["best"] == json.loads(json.dumps(result["best"]))
    for split in ("valid", "test"):
        for task in ("click", "like"):
            assert {"auc", "gauc", "gauc_impression", "logloss", "pred_mean", "label_mean",
                    "count"} <= set(written[split][task])
    assert written["valid"]["click"]["auc"] > 0.6, written["valid"]
    assert written["test"]["click"]["auc"] > 0.6, written["test"]
    assert [h["global_step"] for h in written["history"]] == [16, 32, 48]
    for h in written["history"]:      # a round's wall time covers its training pass and more
        assert h["wall_seconds"] > h["train"]["seconds"] > 0, h
    best = written["best"]
    assert best["valid_mean_auc"] == pytest.approx(max(h["valid_mean_auc"] for h in written["history"]))
    assert tf.io.gfile.exists(best["checkpoint"] + ".index")
    assert best["checkpoint"].startswith(os.path.join(model_dir, "best"))
    out = capsys.readouterr().out
    assert "Epoch 1/3" in out and "Epoch 3/3 - 16 steps" in out and "valid_mean_auc" in out
    assert "test @ step" in out
    assert f"evaluation: {data}/valid (256 rows" in out and "kept in memory after its first evaluation" in out

    images = {}                       # the attention heat map: first round's valid + the test only
    for event_file in tf.io.gfile.glob(os.path.join(model_dir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for v in event.summary.value:
                if v.tag.endswith("/attention"):
                    images.setdefault(v.tag, []).append(event.step)
    assert images == {"valid/attention": [16], "test/attention": [best["global_step"]]}, images


@pytest.fixture()
def split(tmp_path):
    """A tiny valid/ split and an untrained tiny trainer (evaluation needs no training)."""
    data = str(tmp_path / "data")
    layout = write_data_with_artifact(data, days=(1, 1, 0), rows_per_day=128)
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(), str(tmp_path / "model"))
    return trainer, os.path.join(data, "valid")


def test_valid_split_is_kept_in_memory_after_its_first_evaluation(split, capsys):
    trainer, valid_dir = split
    cached = eval_dataset(trainer, valid_dir, cache_mb=1)
    assert f"{valid_dir} (128 rows" in capsys.readouterr().out
    uncached = eval_dataset(trainer, valid_dir)
    first = evaluate_dir(trainer, valid_dir, dataset=cached)
    assert first == evaluate_dir(trainer, valid_dir, dataset=uncached)
    assert first["click"]["count"] == 128
    for path in glob.glob(os.path.join(valid_dir, "*", "part-*")):   # only the memory can answer now
        os.remove(path)
    assert evaluate_dir(trainer, valid_dir, dataset=cached) == first
    with pytest.raises(tf.errors.NotFoundError):
        evaluate_dir(trainer, valid_dir, dataset=uncached)


def test_a_split_over_the_memory_limit_or_a_partial_evaluation_is_not_cached(split, capsys, monkeypatch):
    trainer, valid_dir = split
    monkeypatch.setattr(evaluation, "row_bytes", lambda spec: 1 << 20)   # 1 MB a row: 128 MB > 100 MB
    assert "CacheDataset" not in type(eval_dataset(trainer, valid_dir, cache_mb=100)).__name__
    assert f"{valid_dir} needs 128 MB parsed (> 100 MB)" in capsys.readouterr().out
    assert "CacheDataset" in type(eval_dataset(trainer, valid_dir, cache_mb=200)).__name__
    partial = Trainer(trainer.layout, tiny_model_config(), tiny_train_config(eval_steps=1), trainer.model_dir)
    assert "CacheDataset" not in type(eval_dataset(partial, valid_dir, cache_mb=200)).__name__


def test_starting_the_next_round_ahead_changes_no_batch(tmp_path, monkeypatch):
    """Batch mode starts each next round's input while the round checkpoints and evaluates
    (Trainer.start_pass); a deterministic run is the same as one that starts every round in place."""
    data = str(tmp_path / "data")
    layout = write_data_with_artifact(data, days=(2, 1, 1), rows_per_day=192)
    config = dict(epochs=3, deterministic=True, early_stopping_patience=0)
    calls = []
    start_pass = Trainer.start_pass

    def spy(self, dataset):
        calls.append(self.global_step)
        return start_pass(self, dataset)

    monkeypatch.setattr(Trainer, "start_pass", spy)
    ahead = run_batch(Trainer(layout, tiny_model_config(), tiny_train_config(**config), str(tmp_path / "a")), data)
    assert calls == [6, 12]              # started after rounds 1 and 2 (not after the last)
    monkeypatch.setattr(Trainer, "start_pass", lambda self, dataset: None)   # each round builds its own input
    in_place = run_batch(Trainer(layout, tiny_model_config(), tiny_train_config(**config), str(tmp_path / "b")), data)
    for a, b in zip(ahead["history"], in_place["history"], strict=True):
        assert a["train"]["loss"] == b["train"]["loss"] and a["valid_mean_auc"] == b["valid_mean_auc"]
    assert ahead["test"] == in_place["test"]
