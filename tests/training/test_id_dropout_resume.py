"""Id dropout's masks are keyed on the run's seed and the checkpointed global step, so a run resumed
from a checkpoint trains exactly as the uninterrupted run (the stateful generator would start over)."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.input import make_dataset
from infnet_tf.layers.tokenizers import FeatureTokenizer
from infnet_tf.training.trainer import Trainer
from tests.training.helpers import tiny_model_config, tiny_train_config, write_data_with_artifact

STEPS = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("id_dropout_data"))
    return root, write_data_with_artifact(root, days=(2, 1, 1), rows_per_day=256)


def _batches(data, skip=0):
    root, layout = data
    return make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=True, deterministic=True).skip(skip)


def _trainer(data, model_dir, id_dropout=0.5):
    _, layout = data
    return Trainer(layout, tiny_model_config(id_dropout=id_dropout), tiny_train_config(seed=3, weight_average_decay=0),
                   str(model_dir))


def test_a_resumed_run_draws_the_uninterrupted_runs_masks(data, tmp_path):
    whole = _trainer(data, tmp_path / "whole")
    whole.train_on(_batches(data), max_steps=STEPS)

    first = _trainer(data, tmp_path / "resumed")
    first.train_on(_batches(data), max_steps=STEPS // 2)
    path = first.save_checkpoint()
    tf.keras.backend.clear_session()
    second = _trainer(data, tmp_path / "resumed")
    second.restore(path)
    second.train_on(_batches(data, skip=STEPS // 2), max_steps=STEPS - STEPS // 2)
    assert second.global_step == whole.global_step == STEPS
    for a, b in zip(second.model.trainable_variables, whole.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.name)

    # the masks matter here: the same seed (same initial weights, same batches) without id dropout
    # ends elsewhere, so equal weights above mean equal masks, not masks that were never drawn
    other = _trainer(data, tmp_path / "other", id_dropout=0.0)
    other.train_on(_batches(data), max_steps=STEPS)
    table = [i for i, v in enumerate(whole.model.trainable_variables) if "user_id" in v.name][0]
    assert not np.allclose(other.model.trainable_variables[table].numpy(),
                           whole.model.trainable_variables[table].numpy())


def test_the_trainer_binds_every_tokenizer_to_its_step(data, tmp_path):
    trainer = _trainer(data, tmp_path / "bound")
    tokenizers = [m for m in trainer.model.submodules if isinstance(m, FeatureTokenizer)]
    assert tokenizers and all(t._dropout_seed is not None for t in tokenizers)
    np.testing.assert_array_equal(tokenizers[0]._dropout_seed().numpy(), [3, 0])
