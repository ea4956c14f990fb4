"""TensorFlow views of the key schema (:mod:`infnet_tf.data.keys`): parsing, signatures, placeholders.

* :func:`parsing_spec` — the ``tf.io.parse_example`` spec for the dataset's Examples;
* :func:`densify_sequences` / :func:`split_labels` — parsed Examples -> ``(features, labels)``;
* :func:`input_signature` — the ``tf.TensorSpec`` of every model input (SavedModel signatures);
* :func:`placeholder_inputs` — a model-input batch of id 0 / empty sequences (builds variables).

TensorFlow is imported inside the functions, so importing this module stays light.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from infnet_tf.data import keys
from infnet_tf.data.layout import FeatureLayout


def parsing_spec(layout: FeatureLayout, with_labels: bool = True, with_meta: bool = True) -> dict:
    """``tf.io.parse_example`` spec for the Examples the dataset job writes (a missing label parses
    as ``MISSING_LABEL``, a missing id as 0)."""
    import tensorflow as tf

    spec: dict[str, Any] = {}
    for key in keys.record_keys(layout, with_labels=with_labels, with_meta=with_meta):
        if key.kind == keys.IDS:
            spec[key.name] = tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)
        elif key.kind == keys.STRING:
            spec[key.name] = tf.io.FixedLenFeature([], tf.string, default_value="")
        else:
            default = keys.MISSING_LABEL if key.role == keys.LABEL else 0
            spec[key.name] = tf.io.FixedLenFeature([], tf.int64, default_value=default)
    return spec


def densify_sequences(layout: FeatureLayout, parsed: Mapping[str, Any]) -> dict:
    """Turn parsed ragged sequences into right-padded dense ``[B, max_len]`` plus ``length``.

    Sequences longer than ``max_len`` keep their most recent (last) ``max_len`` items. Padding
    to the full ``max_len`` keeps batch shapes static (XLA/GPU friendly); the model is padding
    invariant, so this changes no prediction.
    """
    import tensorflow as tf

    out = dict(parsed)
    for seq in layout.sequences:
        names = keys.sequence_columns(seq)
        first = parsed[keys.seq_key(seq.name, names[0])]
        lengths = tf.minimum(first.row_lengths(), seq.max_len)
        for name in names:
            ragged = parsed[keys.seq_key(seq.name, name)]
            # keep the last max_len items of each row (most recent last)
            starts = ragged.row_limits() - tf.minimum(ragged.row_lengths(), seq.max_len)
            kept = tf.ragged.range(starts, ragged.row_limits())
            values = tf.gather(ragged.flat_values, kept)
            out[keys.seq_key(seq.name, name)] = values.to_tensor(default_value=0, shape=[None, seq.max_len])
        out[keys.seq_key(seq.name, keys.LENGTH)] = lengths
    return out


def split_labels(layout: FeatureLayout, batch: Mapping[str, Any]) -> tuple[dict, dict]:
    """(features, labels) from a parsed batch; labels keyed by task name."""
    features = dict(batch)
    labels = {t.name: features.pop(keys.label_key(t.name)) for t in layout.tasks}
    return features, labels


def input_signature(layout: FeatureLayout) -> dict:
    """``{key: tf.TensorSpec}`` of every model input: ids ``[None]``, sequences ``[None, None]``."""
    import tensorflow as tf

    return {k.name: tf.TensorSpec([None, None] if k.kind == keys.IDS else [None], tf.int64, name=k.name)
            for k in keys.model_input_keys(layout)}


def placeholder_inputs(layout: FeatureLayout, batch_size: int = 2, seq_len: Optional[int] = None) -> dict:
    """A batch of the model-input dict with every id 0 and every sequence empty (``seq_len``
    positions, default each type's ``max_len``)."""
    import tensorflow as tf

    steps = {keys.seq_key(s.name, c): s.max_len if seq_len is None else seq_len
             for s in layout.sequences for c in keys.sequence_columns(s)}
    return {k.name: tf.zeros([batch_size, steps[k.name]] if k.kind == keys.IDS else [batch_size], tf.int64)
            for k in keys.model_input_keys(layout)}
