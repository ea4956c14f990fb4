"""Learning works: loss decreases on a tiny learnable problem; a mixed_bfloat16 step works."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import cat_key, seq_key
from infnet_tf.models import build_model
from infnet_tf.models.losses import multitask_loss
from infnet_tf.precision import set_precision, wrap_optimizer
from tests.models.tiny import random_batch, random_labels, tiny_config, tiny_layout, train_step

LAYOUT = tiny_layout()


def test_loss_decreases_over_50_steps_on_a_learnable_problem():
    layout = tiny_layout(n_types=1)          # one block, one behaviour type: a fast first trace
    batch = random_batch(layout, 32, seed=11)
    labels = {  # click: a function of the user; like: whether the last type0 item has an even id
        "click": tf.cast(batch[cat_key("user_id")] % 2, tf.int64),
        "like": tf.cast(tf.reduce_sum(batch[seq_key("type0", "s0_video")], 1) % 2, tf.int64),
    }
    model = build_model(layout, tiny_config(num_blocks=1))
    optimizer = tf.keras.optimizers.legacy.Adam(1e-2)     # fused update ops: a small graph
    weights = {t.name: t.weight for t in layout.tasks}

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = multitask_loss(labels, model(batch, training=True), weights)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(50)]
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses


def test_mixed_bfloat16_training_step_outputs_float32():
    assert set_precision("mixed_bfloat16") == "mixed_bfloat16"       # the fixture restores the policy
    model = build_model(LAYOUT, tiny_config())
    assert model.tokenizer.compute_dtype == "bfloat16"
    block = model.block_layers[0]
    assert block.aggregation.q_proj["cat"].compute_dtype == "bfloat16"
    optimizer = wrap_optimizer(tf.keras.optimizers.Adam(1e-3))
    before = [v.numpy().copy() for v in model.trainable_variables]
    loss, grads = train_step(model, optimizer, random_batch(LAYOUT, 4), random_labels(LAYOUT), LAYOUT)
    assert loss.dtype == tf.float32 and np.isfinite(loss.numpy())
    assert all(g is not None for g in grads)
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    out = model(random_batch(LAYOUT, 4))
    assert all(p.dtype == tf.float32 for p in out.values())
    assert all(w.dtype == tf.float32 for w in model.attention_weights(random_batch(LAYOUT, 2))[0].values())


def test_mixed_float16_wraps_the_optimizer_for_loss_scaling():
    opt = tf.keras.optimizers.Adam()
    assert isinstance(wrap_optimizer(opt, "mixed_float16"), tf.keras.mixed_precision.LossScaleOptimizer)
    assert wrap_optimizer(opt, "float32") is opt and wrap_optimizer(opt, "mixed_bfloat16") is opt
