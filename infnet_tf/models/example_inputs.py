"""Placeholder model inputs for a layout (all ids 0 / empty sequences): builds a model's variables."""
from __future__ import annotations

from typing import Optional

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.features import LENGTH, TIME_GAP, FeatureLayout, cat_key, seq_key


def dummy_features(layout: FeatureLayout, batch_size: int = 2, seq_len: Optional[int] = None) -> dict:
    """A batch of the model-input dict with every id 0 and every sequence empty."""
    out = {cat_key(f.name): tf.zeros([batch_size], tf.int64) for f in layout.categorical}
    for seq in layout.sequences:
        steps = seq.max_len if seq_len is None else seq_len
        for name in [f.name for f in seq.fields] + [TIME_GAP]:
            out[seq_key(seq.name, name)] = tf.zeros([batch_size, steps], tf.int64)
        out[seq_key(seq.name, LENGTH)] = tf.zeros([batch_size], tf.int64)
    return out
