"""The embedding optimizer's update equals Keras' Adagrad bit for bit, on both of its paths."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training.config import TrainConfig
from infnet_tf.training.optimizers import EmbeddingAdagrad, _embedding_optimizer

ROWS, DIM = 50, 4


def _train(optimizer_cls, n_lookups, steps=3):
    """``steps`` Adagrad steps on a [ROWS, DIM] table looked up ``n_lookups`` times per step (ids with
    duplicates, a sparse gradient), every step with its own ids and weights; the table and accumulator."""
    rng = np.random.default_rng(n_lookups)
    table = tf.Variable(rng.normal(size=(ROWS, DIM)).astype(np.float32))
    optimizer = optimizer_cls(0.05, initial_accumulator_value=0.1)
    batches = [(tf.constant(rng.integers(0, ROWS // 2, size=n_lookups)),   # half the rows never looked up
                tf.constant(rng.normal(size=(n_lookups, DIM)).astype(np.float32))) for _ in range(steps)]

    @tf.function
    def step(ids, weights):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, ids) * weights)
        grad = tape.gradient(loss, table)
        assert isinstance(grad, tf.IndexedSlices)
        optimizer.apply_gradients([(grad, table)])

    for ids, weights in batches:
        step(ids, weights)
    return table.numpy(), optimizer.get_slot(table, "accumulator").numpy()


@pytest.mark.parametrize("n_lookups", [ROWS // 5, 4 * ROWS], ids=["fewer_ids_than_rows", "more_ids_than_rows"])
def test_embedding_adagrad_is_keras_adagrad_bit_for_bit(n_lookups):
    """Fewer looked-up ids than rows: the sparse update (duplicates summed first); more: the gradient
    summed into a dense table gradient. Both give Keras' Adagrad's table and accumulator exactly, and
    rows no step looked up keep their initial values."""
    want_table, want_acc = _train(tf.keras.optimizers.legacy.Adagrad, n_lookups)
    table, acc = _train(EmbeddingAdagrad, n_lookups)
    np.testing.assert_array_equal(table, want_table)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(acc[ROWS // 2:], 0.1)
    assert np.any(acc[:ROWS // 2] > 0.1)


def test_the_product_uses_it_for_adagrad_tables():
    assert isinstance(_embedding_optimizer(TrainConfig()), EmbeddingAdagrad)
    assert not isinstance(_embedding_optimizer(TrainConfig(embedding_optimizer="adam")), EmbeddingAdagrad)
