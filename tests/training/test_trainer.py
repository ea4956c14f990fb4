"""The Trainer API on tiny data: train/evaluate/checkpoint, non-finite loss, TensorBoard output."""
import glob
import math
import os
import threading

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.input import make_dataset
from infnet_tf.training import trainer as trainer_module
from infnet_tf.training.trainer import NonFiniteLossError, Trainer
from tests.training.helpers import tiny_model_config, tiny_train_config, write_data_with_artifact


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("trainer_data"))
    return root, write_data_with_artifact(root, days=(2, 1, 1), rows_per_day=256)


def _train(root, layout):
    return make_dataset(f"{root}/train", layout, 64, shuffle=True, repeat=False, deterministic=False)


def _valid(root, layout):
    return make_dataset(f"{root}/valid", layout, 64, shuffle=False, repeat=False, deterministic=True)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root, layout = data
    model_dir = str(tmp_path_factory.mktemp("trainer_model"))
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(log_every=4), model_dir)
    stats = trainer.train_on(_train(root, layout))
    path = trainer.save_checkpoint()
    return trainer, stats, path


def test_train_on_counts_steps_and_examples(trained):
    trainer, stats, _ = trained
    assert stats["steps"] == 8 and stats["examples"] == 512  # 2 days x 256 rows, batch 64
    assert trainer.global_step == 8 and stats["global_step"] == 8
    assert math.isfinite(stats["loss"]) and set(stats["task_losses"]) == {"click", "like"}
    assert stats["examples_per_sec"] > 0
    assert trainer.learning_rates() == pytest.approx({"dense": 1e-3, "embedding": 0.05})


def test_max_steps_stops_early(trained, data):
    trainer, _, _ = trained
    root, layout = data
    before = trainer.global_step
    stats = trainer.train_on(make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=True,
                                          deterministic=True), max_steps=3)
    assert stats["steps"] == 3 and trainer.global_step == before + 3


def test_evaluate_returns_every_metric_per_task(trained, data):
    trainer, _, _ = trained
    root, layout = data
    metrics = trainer.evaluate(_valid(root, layout), log_prefix="valid")
    assert set(metrics) == {"click", "like"}
    for m in metrics.values():
        assert set(m) == {"auc", "gauc", "gauc_impression", "logloss", "pred_mean", "label_mean", "count"}
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["gauc"] <= 1.0 and m["logloss"] > 0
    assert metrics["click"]["count"] == 256 and metrics["like"]["count"] < 256  # like has -1 labels


def test_checkpoint_restores_weights_and_step(trained, data):
    trainer, _, path = trained
    root, layout = data
    assert os.path.basename(path) == "ckpt-8"
    fresh = Trainer(layout, tiny_model_config(), tiny_train_config(), trainer.model_dir)
    assert fresh.global_step == 0
    assert fresh.restore_latest() and fresh.latest_checkpoint == path
    assert fresh.global_step == 8
    features, _ = next(iter(_valid(root, layout)))
    trainer.restore(path)
    a = trainer.model(features, training=False)["click"].numpy()
    b = fresh.model(features, training=False)["click"].numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_non_finite_loss_stops_before_saving(trained, data, monkeypatch):
    root, layout = data
    model_dir, good = trained[0].model_dir, trained[2]
    files_before = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))

    real_loss = trainer_module.multitask_loss

    def nan_loss(labels, probs, weights, labelled=None):  # inject a NaN into the traced loss
        total, per_task = real_loss(labels, probs, weights, labelled)
        return total * float("nan"), per_task

    monkeypatch.setattr(trainer_module, "multitask_loss", nan_loss)
    poisoned = Trainer(layout, tiny_model_config(), tiny_train_config(), model_dir)
    assert poisoned.restore_latest()
    with pytest.raises(NonFiniteLossError, match="non-finite training loss nan at global step 9") as err:
        poisoned.train_on(_train(root, layout))
    assert good in str(err.value) and "intact" in str(err.value)
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == files_before
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")) == good


def test_tensorboard_scalars_and_attention_image(trained, data):
    trainer, _, _ = trained
    root, layout = data
    trainer.evaluate(_valid(root, layout), log_prefix="valid")   # valid/* scalars and the attention image,
    features, _ = next(iter(_valid(root, layout)))              # not left to another test of this file
    png = trainer.attention_image(features)
    assert png is not None and png.startswith(b"\x89PNG")
    written = trainer.write_scalars("valid", {"click": {"auc": 0.7, "gauc": float("nan")}, "loss": 0.5}, 8)
    assert written == {"valid/click/auc": 0.7, "valid/loss": 0.5}
    trainer.summaries.flush()
    tags = set()
    for event_file in glob.glob(os.path.join(trainer.model_dir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"valid/click/auc", "valid/click/gauc", "valid/attention", "train/loss"} <= tags
    assert "train/learning_rate/dense" in tags and "train/examples_per_sec" in tags


def test_the_attention_image_is_drawn_while_training_goes_on(trained, data, monkeypatch):
    """log_attention returns before the heat map is drawn; the drawing shows the weights of the call,
    not those the model has when the background thread gets to it, and flush waits for it."""
    trainer, _, _ = trained
    root, layout = data
    features, _ = next(iter(_valid(root, layout)))
    with trainer.evaluation_weights():
        expected = trainer._attention_render(features)   # noqa: SLF001 - the same forward pass, drawn here
    release, drawn = threading.Event(), []

    def blocked_heatmap(matrix, rows, cols, title=""):
        assert release.wait(30)
        drawn.append(np.asarray(matrix))
        return b"not drawn"

    monkeypatch.setattr(trainer_module, "heatmap_png", blocked_heatmap)
    monkeypatch.setattr(trainer.summaries, "image", lambda name, png, step: drawn.append((name, png, step)))
    assert trainer.log_attention("valid/attention", features, step=11)
    assert not drawn                                     # returned while the drawing waits
    saved = [v.numpy() for v in trainer.model.trainable_variables]
    try:
        for v in trainer.model.trainable_variables:     # the model moves on before the drawing starts
            v.assign(v * 0.5)
        release.set()
        trainer.summaries.flush()
    finally:                                             # the module's trained model, as it was
        for v, w in zip(trainer.model.trainable_variables, saved):
            v.assign(w)
    monkeypatch.setattr(trainer_module, "heatmap_png", lambda matrix, rows, cols, title="": np.asarray(matrix))
    np.testing.assert_allclose(drawn[0], expected(), rtol=1e-6)
    assert drawn[1] == ("valid/attention", b"not drawn", 11)


def _output_biases(trainer):
    return {t: float(layer.bias.numpy()[0]) for t, layer in trainer.model.output_layers().items()}


def test_output_biases_start_at_the_first_batch_positive_rates(data, tmp_path, capsys):
    """--output_bias_init=prior: before a new model's first step every task's output bias is
    logit((positives + 1) / (labelled + 2)) of the first batch (missing labels -1 left out); once per
    trainer; 'zero' (the default) and a resumed model (global step > 0) keep the biases."""
    root, layout = data
    labels = {"click": tf.constant([1, 0, 0, -1, 1, 0], tf.int64),
              "like": tf.constant([0, 0, 0, 0, -1, -1], tf.int64)}
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(output_bias_init="prior"), str(tmp_path / "a"))
    assert _output_biases(trainer) == {"click": 0.0, "like": 0.0}
    rates = trainer.init_output_biases(labels)
    assert rates == pytest.approx({"click": 3 / 7, "like": 1 / 6})       # (2 + 1) / (5 + 2), (0 + 1) / (4 + 2)
    assert _output_biases(trainer) == pytest.approx({"click": math.log(3 / 4), "like": math.log(1 / 5)}, abs=1e-6)
    for w, a in zip(trainer.average.variables, trainer.average.shadows):   # the weight average starts there too
        np.testing.assert_array_equal(a.numpy(), w.numpy())
    assert "output biases set to the first batch's positive rates" in capsys.readouterr().out
    assert trainer.init_output_biases({"click": tf.ones([4], tf.int64), "like": tf.ones([4], tf.int64)}) == {}

    zero = Trainer(layout, tiny_model_config(), tiny_train_config(), str(tmp_path / "b"))   # the default
    assert zero.init_output_biases(labels) == {} and _output_biases(zero) == {"click": 0.0, "like": 0.0}

    prior = tiny_train_config(output_bias_init="prior")
    fresh = Trainer(layout, tiny_model_config(model="shared_bottom"), prior, str(tmp_path / "c"))
    ordered = lambda: make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=False,  # noqa: E731
                                   deterministic=True)
    first_labels = next(iter(ordered()))[1]
    fresh.train_on(ordered(), max_steps=1)       # train_on sets them before its first step
    for task, bias in _output_biases(fresh).items():
        y = first_labels[task].numpy()
        p = ((y == 1).sum() + 1) / ((y >= 0).sum() + 2)
        assert bias == pytest.approx(math.log(p / (1 - p)), abs=0.01), task   # one Adam step (lr 1e-3) later
    fresh.save_checkpoint()
    resumed = Trainer(layout, tiny_model_config(model="shared_bottom"), prior, str(tmp_path / "c"))
    assert resumed.restore_latest() and resumed.global_step == 1
    before = _output_biases(resumed)
    assert resumed.init_output_biases(labels) == {} and _output_biases(resumed) == before


def test_train_and_predict_steps_are_traced_once_for_any_batch_size(data, tmp_path):
    """A pass whose last batch is partial (512 rows in batches of 96 -> 5 x 96 + 32) must not trace the
    train step again: it is traced once with the batch dimension open, before its first call (the same
    for the evaluation's predict step)."""
    root, layout = data
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(batch_size=96), str(tmp_path / "m"))
    stats = trainer.train_on(make_dataset(f"{root}/train", layout, 96, shuffle=True, repeat=False, deterministic=False))
    assert stats["steps"] == 6 and stats["examples"] == 512
    stats = trainer.train_on(make_dataset(f"{root}/train", layout, 128, shuffle=True, repeat=False, deterministic=False))
    assert stats["steps"] == 4
    assert trainer._train_fn.experimental_get_tracing_count() == 1        # noqa: SLF001
    valid = make_dataset(f"{root}/valid", layout, 96, shuffle=False, repeat=False, deterministic=True)
    assert trainer.evaluate(valid)["click"]["count"] == 256                 # 2 x 96 + 64
    assert trainer._local_predict_fn.experimental_get_tracing_count() == 1  # noqa: SLF001


def test_auto_precision_on_a_bfloat16_cpu_logs_the_hint_and_trains_float32(data, tmp_path, capsys, monkeypatch):
    root, layout = data
    monkeypatch.setattr(trainer_module, "cpu_bfloat16_flags", lambda: ("avx512_bf16",))
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(precision="auto"), str(tmp_path / "auto"))
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("auto is mixed_float16 with a GPU")
    assert trainer.precision == "float32"
    assert "this CPU has avx512_bf16: --precision=mixed_bfloat16" in capsys.readouterr().out
    Trainer(layout, tiny_model_config(), tiny_train_config(), str(tmp_path / "chosen"))   # float32 chosen
    assert "this CPU has" not in capsys.readouterr().out
