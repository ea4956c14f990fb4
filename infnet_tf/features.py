"""The model-input contract under its documented name (WORKSPACE.md's TFRecord schema, users' code).

It lives in :mod:`infnet_tf.data`: the layout in :mod:`infnet_tf.data.layout`, the keys in
:mod:`infnet_tf.data.keys`, parsing and signatures in :mod:`infnet_tf.data.tensors`.
"""
from __future__ import annotations

from infnet_tf.data.keys import (CAT_PREFIX, EVENT_TIME, LABEL_PREFIX, LENGTH, MISSING_LABEL, SEQ_PREFIX,  # noqa: F401
                                 TIME_GAP, USER_KEY, cat_key, label_key, seq_key)
from infnet_tf.data.layout import FeatureLayout, SequenceInput, TaskInput, TokenInput  # noqa: F401
from infnet_tf.data.tensors import densify_sequences, parsing_spec, split_labels  # noqa: F401
