"""The model and layer tests' fixtures (d=8, vocab ~20, T ~5), built on the shared ones in :mod:`tests.tiny_data`."""
from __future__ import annotations

import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import seq_key, sequence_columns
from infnet_tf.data.layout import FeatureLayout
from tests.tiny_data import SMALL_WIDTHS, random_model_inputs, tiny_model_config
from tests.tiny_data import multi_type_layout as tiny_layout  # noqa: F401  (the model tests' layout)


def tiny_config(**changes):
    """The shared tiny config, two blocks, ``SMALL_WIDTHS``."""
    return tiny_model_config(**{"num_blocks": 2, **SMALL_WIDTHS, **changes})


def random_batch(layout: FeatureLayout, batch_size: int = 4, seq_len=None, seed: int = 0,
                 lengths=None) -> dict:
    """Random ids (none missing) as tensors; sequences right-padded (id 0) after ``lengths`` real items."""
    inputs = random_model_inputs(layout, batch_size, seed, with_missing=False, seq_len=seq_len, lengths=lengths)
    return {k: tf.constant(v, tf.int64) for k, v in inputs.items()}


def pad_batch(layout: FeatureLayout, batch: dict, extra: int) -> dict:
    """The same batch with ``extra`` padded positions appended to every sequence."""
    out = dict(batch)
    for seq in layout.sequences:
        for name in sequence_columns(seq):
            key = seq_key(seq.name, name)
            out[key] = tf.pad(batch[key], [[0, 0], [0, extra]])
    return out


def random_labels(layout: FeatureLayout, batch_size: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {t.name: tf.constant(rng.integers(0, 2, batch_size), tf.int64) for t in layout.tasks}


def train_step(model, optimizer, batch: dict, labels: dict, layout: FeatureLayout):
    """One eager optimisation step; returns (loss, gradients aligned with trainable_variables)."""
    from infnet_tf.models.losses import multitask_loss

    with tf.GradientTape() as tape:
        probs = model(batch, training=True)
        loss, _ = multitask_loss(labels, probs, {t.name: t.weight for t in layout.tasks})
        scaled = optimizer.get_scaled_loss(loss) if hasattr(optimizer, "get_scaled_loss") else loss
    grads = tape.gradient(scaled, model.trainable_variables)
    if hasattr(optimizer, "get_unscaled_gradients"):
        grads = optimizer.get_unscaled_gradients(grads)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss, grads
