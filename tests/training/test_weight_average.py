"""The moving average of the weights: hand-computed updates, evaluation on the averages, checkpoints
(resume; a checkpoint without averages, or with those of other weights) and the export's weights."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.input import make_dataset
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.optimizers import dense_variables, embedding_variables
from infnet_tf.training.trainer import Trainer
from infnet_tf.training.weight_average import WeightAverage, stored_shapes
from tests.training.helpers import tiny_model_config, tiny_train_config, write_data_with_artifact

DECAY = 0.5


class _Tiny(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.emb = tf.keras.layers.Embedding(3, 2)
        self.dense = tf.keras.layers.Dense(1)

    def call(self, ids):
        return self.dense(self.emb(ids))


def _tiny_model():
    model = _Tiny()
    model(tf.constant([0, 1]))
    return model


@pytest.mark.parametrize("embeddings", [True, False], ids=["all", "dense_only"])
def test_update_matches_the_hand_computed_average(embeddings):
    model = _tiny_model()
    kernel = model.dense.kernel
    kernel.assign([[1.0], [2.0]])
    average = WeightAverage(model, decay=0.9, embeddings=embeddings)
    expected = model.trainable_variables if embeddings else dense_variables(model)
    assert [v.ref() for v in average.variables] == [v.ref() for v in expected]
    assert bool({v.ref() for v in embedding_variables(model)} & {v.ref() for v in average.variables}) == embeddings
    shadow = np.array([[1.0], [2.0]])                       # starts at the weights
    for step, value in enumerate([3.0, 5.0, 7.0]):
        kernel.assign([[value], [value]])
        average.update(step)
        decay = min(0.9, (1 + step) / (10 + step))          # 0.1, 2/11, 3/12
        shadow = decay * shadow + (1 - decay) * value
    i = [v.ref() for v in average.variables].index(kernel.ref())
    np.testing.assert_allclose(average.shadows[i].numpy(), shadow, rtol=1e-6)


def test_swapped_puts_the_averages_in_and_the_weights_back_also_on_error():
    model = _tiny_model()
    average = WeightAverage(model, decay=0.9)
    raw = [v.numpy().copy() for v in average.variables]
    for a in average.shadows:
        a.assign(a + 1.0)
    with average.swapped():
        np.testing.assert_allclose(average.variables[0].numpy(), raw[0] + 1.0)
    np.testing.assert_allclose(average.variables[0].numpy(), raw[0])
    with average.swapped():
        with average.swapped():                              # nested (evaluate -> attention image): still in
            np.testing.assert_allclose(average.variables[0].numpy(), raw[0] + 1.0)
        np.testing.assert_allclose(average.variables[0].numpy(), raw[0] + 1.0)
    np.testing.assert_allclose(average.variables[0].numpy(), raw[0])
    with pytest.raises(KeyError):
        with average.swapped():
            raise KeyError("during an evaluation")
    np.testing.assert_allclose(average.variables[0].numpy(), raw[0])
    np.testing.assert_allclose(average.shadows[0].numpy(), raw[0] + 1.0)


@pytest.mark.parametrize("decay", [-0.1, -0.5, -2.0, 1.0, 1.5, True, False])
def test_decay_outside_zero_one_is_rejected(decay):   # -1 is the recipe's automatic window
    with pytest.raises(ValueError, match="weight_average_decay"):
        TrainConfig(weight_average_decay=decay)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("average_data"))
    return root, write_data_with_artifact(root, days=(2, 1, 1), rows_per_day=256)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root, layout = data
    model_dir = str(tmp_path_factory.mktemp("average_model"))
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(weight_average_decay=DECAY), model_dir)
    trainer.train_on(make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=False, deterministic=True))
    return trainer, trainer.save_checkpoint()


def _valid(data):
    root, layout = data
    return make_dataset(f"{root}/valid", layout, 64, shuffle=False, repeat=False, deterministic=True)


def test_evaluation_uses_the_averages_and_leaves_the_trained_weights(trained, data):
    trainer, _ = trained
    average = trainer.average
    raw = [v.numpy().copy() for v in average.variables]
    assert any(not np.allclose(a.numpy(), w) for a, w in zip(average.shadows, raw))   # 8 steps moved them apart
    metrics = trainer.evaluate(_valid(data))
    for v, w in zip(average.variables, raw):
        np.testing.assert_array_equal(v.numpy(), w)
    # the same evaluation of the averages copied in by hand, averaging off
    trainer.average = None
    try:
        for v, a in zip(average.variables, average.shadows):
            v.assign(a)
        by_hand = trainer.evaluate(_valid(data))
    finally:
        trainer.average = average
        for v, w in zip(average.variables, raw):
            v.assign(w)
    for task in metrics:
        assert metrics[task]["auc"] == pytest.approx(by_hand[task]["auc"], abs=1e-9)
        assert metrics[task]["logloss"] == pytest.approx(by_hand[task]["logloss"], rel=1e-6)


def test_checkpoint_resumes_the_average(trained, data, tmp_path):
    trainer, path = trained
    assert stored_shapes(path) == [tuple(v.shape) for v in trainer.model.trainable_variables]
    _, layout = data
    resumed = Trainer(layout, tiny_model_config(), tiny_train_config(weight_average_decay=DECAY), trainer.model_dir)
    assert resumed.restore_latest()
    for a, b in zip(resumed.average.shadows, trainer.average.shadows):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("before", [dict(weight_average_decay=0), dict(weight_average_embeddings=False)],
                         ids=["averaging_off", "dense_only"])
def test_a_checkpoint_without_these_averages_starts_them_at_its_weights(data, tmp_path, before):
    """Resuming with averaging on from a checkpoint written with it off, or averaging another set of weights."""
    root, layout = data
    earlier = Trainer(layout, tiny_model_config(), tiny_train_config(**before), str(tmp_path / "run"))
    earlier.train_on(make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=True, deterministic=True),
                     max_steps=2)
    path = earlier.save_checkpoint()
    averaged = Trainer(layout, tiny_model_config(), tiny_train_config(weight_average_decay=DECAY), str(tmp_path / "run"))
    averaged.restore(path)
    assert averaged.global_step == 2
    for v, a, w in zip(averaged.average.variables, averaged.average.shadows, earlier.model.trainable_variables):
        np.testing.assert_array_equal(v.numpy(), w.numpy())
        np.testing.assert_array_equal(a.numpy(), w.numpy())


def test_export_restores_the_averaged_weights(trained, data):
    from export.exporter import build_serving_model, restore_weights

    trainer, path = trained
    _, layout = data
    model = build_serving_model(layout, trainer.model_config, "float32")
    restore_weights(model, path)
    for v, a in zip(model.trainable_variables, trainer.average.shadows, strict=True):
        np.testing.assert_array_equal(v.numpy(), a.numpy())


def test_export_of_dense_only_averages_keeps_the_trained_tables(data, tmp_path):
    from export.exporter import build_serving_model, restore_weights

    root, layout = data
    trainer = Trainer(layout, tiny_model_config(), tiny_train_config(weight_average_decay=DECAY,
                                                                     weight_average_embeddings=False), str(tmp_path))
    trainer.train_on(make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=True, deterministic=True),
                     max_steps=3)
    path = trainer.save_checkpoint()
    model = build_serving_model(layout, trainer.model_config, "float32")
    restore_weights(model, path)
    for v, a in zip(dense_variables(model), trainer.average.shadows, strict=True):
        np.testing.assert_array_equal(v.numpy(), a.numpy())
    for v, w in zip(embedding_variables(model), embedding_variables(trainer.model), strict=True):
        np.testing.assert_array_equal(v.numpy(), w.numpy())
