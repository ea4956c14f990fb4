"""The embedding Adagrad: a dense apply of a small table's gradient is the sparse apply, bit for bit."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training.optimizers import EmbeddingAdagrad

ROWS, D = 12, 3


def _train(optimizer_cls, ids_per_step, dynamic: bool, steps: int = 3):
    """The table after ``steps`` updates with duplicated ids; the number of update ops of each kind."""
    table = tf.Variable(np.arange(ROWS * D, dtype=np.float32).reshape(ROWS, D) / 7.0)
    optimizer = optimizer_cls(0.3, initial_accumulator_value=0.1)
    spec = tf.TensorSpec([None] if dynamic else [ids_per_step], tf.int32)

    @tf.function(input_signature=[spec, tf.TensorSpec([None, D], tf.float32)])
    def step(ids, values):
        optimizer.apply_gradients([(tf.IndexedSlices(values, ids, tf.constant([ROWS, D])), table)])

    rng = np.random.default_rng(0)
    for _ in range(steps):
        ids = rng.integers(0, ROWS // 2, ids_per_step).astype(np.int32)     # rows 6-11 never touched
        step(ids, rng.normal(size=(ids_per_step, D)).astype(np.float32))
    ops = [op.type for op in step.get_concrete_function().graph.get_operations()]
    return table.numpy(), {kind: ops.count(kind) for kind in ("Unique", "ResourceApplyAdagradV2",
                                                            "ResourceSparseApplyAdagradV2", "If")}


@pytest.mark.parametrize("ids_per_step, dense", [(6, True), (40, True), (5, False)])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static_batch", "dynamic_batch"])
def test_dense_apply_is_the_sparse_apply(ids_per_step, dense, dynamic):
    reference, _ = _train(tf.keras.optimizers.legacy.Adagrad, ids_per_step, dynamic)
    table, ops = _train(EmbeddingAdagrad, ids_per_step, dynamic)
    np.testing.assert_array_equal(table, reference)
    untouched = np.arange(ROWS // 2 * D, ROWS * D, dtype=np.float32).reshape(ROWS // 2, D) / 7.0
    np.testing.assert_array_equal(table[ROWS // 2:], untouched)
    if dynamic:        # both branches traced (inside the If), the batch size picks one at run time
        assert ops == {"Unique": 0, "ResourceApplyAdagradV2": 0, "ResourceSparseApplyAdagradV2": 0, "If": 1}
    elif dense:        # at least ROWS / 2 ids: summed into the whole table, no de-duplication
        assert ops == {"Unique": 0, "ResourceApplyAdagradV2": 1, "ResourceSparseApplyAdagradV2": 0, "If": 0}
    else:
        assert ops == {"Unique": 1, "ResourceApplyAdagradV2": 0, "ResourceSparseApplyAdagradV2": 1, "If": 0}
