"""The key schema: every key of a dataset Example and of a model's input dict, in one place.

Every reader and writer derives its keys from :func:`record_keys` / :func:`model_input_keys`
(the Beam job's Example encoder, ``tf.io.parse_example``'s spec, the SavedModel's input signature,
placeholder inputs, test writers), so a key is spelt once::

    cat/<token>             int64 [B]      every token of the spec (categorical, bucketized dense, counters)
    seq/<type>/<field>      int64 [B, T]   item field first, then side-information fields; most recent last
    seq/<type>/time_gap     int64 [B, T]
    seq/<type>/length       int64 [B]      model input only (the records hold ragged lists)
    label/<task>            int64 [B]      0/1, or MISSING_LABEL (-1); not a model input
    user_key                string [B]     not a model input; used for GAUC
    event_time_ms           int64 [B]      not a model input

Pure Python: no TensorFlow (the TensorFlow views are in :mod:`infnet_tf.data.tensors`).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no runtime import: layout.py uses this module
    from infnet_tf.data.layout import FeatureLayout, SequenceInput

CAT_PREFIX = "cat/"
SEQ_PREFIX = "seq/"
LABEL_PREFIX = "label/"
USER_KEY = "user_key"
EVENT_TIME = "event_time_ms"
TIME_GAP = "time_gap"
LENGTH = "length"
MISSING_LABEL = -1  # a task's label when the raw label is null: no loss, left out of that task's metrics

# kinds of value per example
ID = "id"          # one int64
IDS = "ids"        # a list of int64 (ragged in a record, [B, T] in a batch)
STRING = "string"  # one byte string

# roles
INPUT = "input"
LABEL = "label"
META = "meta"


def cat_key(token: str) -> str:
    return f"{CAT_PREFIX}{token}"


def seq_key(seq_type: str, field: str) -> str:
    return f"{SEQ_PREFIX}{seq_type}/{field}"


def label_key(task: str) -> str:
    return f"{LABEL_PREFIX}{task}"


@dataclasses.dataclass(frozen=True)
class Key:
    """One key: its name, the kind of value per example, and its role."""

    name: str
    kind: str
    role: str = INPUT


def sequence_columns(seq: "SequenceInput") -> tuple[str, ...]:
    """The per-position columns of one behaviour type: its fields, then ``time_gap``."""
    return (*(f.name for f in seq.fields), TIME_GAP)


def _id_keys(layout: "FeatureLayout", with_length: bool) -> list[Key]:
    out = [Key(cat_key(f.name), ID) for f in layout.categorical]
    for seq in layout.sequences:
        out += [Key(seq_key(seq.name, c), IDS) for c in sequence_columns(seq)]
        if with_length:
            out.append(Key(seq_key(seq.name, LENGTH), ID))
    return out


def record_keys(layout: "FeatureLayout", with_labels: bool = True, with_meta: bool = True) -> tuple[Key, ...]:
    """The keys of a dataset Example, in the order the dataset job writes them."""
    out = _id_keys(layout, with_length=False)
    if with_labels:
        out += [Key(label_key(t.name), ID, LABEL) for t in layout.tasks]
    if with_meta:
        out += [Key(USER_KEY, STRING, META), Key(EVENT_TIME, ID, META)]
    return tuple(out)


def model_input_keys(layout: "FeatureLayout") -> tuple[Key, ...]:
    """The keys of a model's input dict (sequences padded, with a ``length`` per type)."""
    return tuple(_id_keys(layout, with_length=True))

