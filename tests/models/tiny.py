"""Tiny layouts and random batches shared by the model and layer tests (d=8, vocab ~20, T ~5)."""
from __future__ import annotations

import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.features import (LENGTH, TIME_GAP, FeatureLayout, SequenceInput, TaskInput, TokenInput,
                                cat_key, seq_key)
from infnet_tf.models.config import ModelConfig


def tiny_layout(n_types: int = 2, max_len: int = 5, tasks=("click", "like")) -> FeatureLayout:
    item = TokenInput("video_id", 20, "video")
    cats = (TokenInput("user_id", 12, "user"), item, TokenInput("age_bucket", 6, "age", embedding_dim=4))
    seqs = tuple(
        SequenceInput(f"type{b}", max_len, (TokenInput(f"s{b}_video", 20, "video"),
                                            TokenInput(f"s{b}_author", 9, "author")), time_gap_buckets=7)
        for b in range(n_types))
    return FeatureLayout(cats, seqs, tuple(TaskInput(t, 1.0) for t in tasks))


def tiny_config(**changes) -> ModelConfig:
    base = dict(d=8, num_blocks=2, num_heads=2, n_cat_hubs=2, n_shared_task_hubs=2, cat_hub_hidden=(16,),
                seq_hub_hidden=(8,), bgu_hidden=(8,), head_hidden=(8,))
    base.update(changes)
    return ModelConfig(**base)


def random_batch(layout: FeatureLayout, batch_size: int = 4, seq_len=None, seed: int = 0,
                 lengths=None) -> dict:
    """Random ids; sequences right-padded (id 0) after ``lengths`` real items."""
    rng = np.random.default_rng(seed)
    out = {cat_key(f.name): tf.constant(rng.integers(1, f.vocab_size, batch_size), tf.int64)
           for f in layout.categorical}
    for b, seq in enumerate(layout.sequences):
        steps = seq.max_len if seq_len is None else seq_len
        n = rng.integers(0, steps + 1, batch_size) if lengths is None else np.asarray(lengths[b])
        real = np.arange(steps)[None, :] < n[:, None]
        for f in seq.fields:
            out[seq_key(seq.name, f.name)] = tf.constant(rng.integers(1, f.vocab_size, (batch_size, steps)) * real,
                                                         tf.int64)
        out[seq_key(seq.name, TIME_GAP)] = tf.constant(rng.integers(1, seq.time_gap_buckets, (batch_size, steps))
                                                       * real, tf.int64)
        out[seq_key(seq.name, LENGTH)] = tf.constant(n, tf.int64)
    return out


def pad_batch(layout: FeatureLayout, batch: dict, extra: int) -> dict:
    """The same batch with ``extra`` padded positions appended to every sequence."""
    out = dict(batch)
    for seq in layout.sequences:
        for name in [f.name for f in seq.fields] + [TIME_GAP]:
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
