"""The model-input layout: the one contract between data, model, training and export.

A :class:`FeatureLayout` says which tensors a model receives and how large each id space is.
It is derived once from a feature spec and its transform artifact (the Beam dataset job writes it
into the artifact under ``"layout"``) and is all a model needs to build itself, so models never
depend on where data comes from.

Id conventions (shared by the Beam job, the in-graph serving transform and the model):

* every id space reserves **id 0** for "missing": a null/NaN dense value, a null categorical
  value, or a padded sequence position; real ids start at 1, so ``vocab_size`` counts id 0 too;
* categorical tokens (categorical fields, bucketized dense fields, counter features) are int64
  scalars per example;
* behaviour sequences are stored most recent **last**, right-padded with id 0 to a common length
  ``T <= max_len`` inside a batch; ``seq/<type>/length`` says how many leading positions are real;
* time-gap buckets are ids in ``[1, time_gap_buckets)`` for real positions, 0 for padding;
* labels are int64 0/1, or -1 when the label is missing (such a task contributes no loss).

Feature keys (in TFRecords and in the batched dict a model's ``call`` receives)::

    cat/<token>             int64 [B]
    seq/<type>/<field>      int64 [B, T]   item field first, then side-information fields
    seq/<type>/time_gap     int64 [B, T]
    seq/<type>/length       int64 [B]
    label/<task>            int64 [B]      (not a model input; popped by the input function)
    user_key                string [B]     (not a model input; used for GAUC)
    event_time_ms           int64 [B]      (not a model input)
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

CAT_PREFIX = "cat/"
SEQ_PREFIX = "seq/"
LABEL_PREFIX = "label/"
USER_KEY = "user_key"
EVENT_TIME = "event_time_ms"
TIME_GAP = "time_gap"
LENGTH = "length"
MISSING_LABEL = -1


def cat_key(token: str) -> str:
    return f"{CAT_PREFIX}{token}"


def seq_key(seq_type: str, field: str) -> str:
    return f"{SEQ_PREFIX}{seq_type}/{field}"


def label_key(task: str) -> str:
    return f"{LABEL_PREFIX}{task}"


@dataclasses.dataclass(frozen=True)
class TokenInput:
    """One id-valued input: its name, id-space size (id 0 included) and embedding table.

    Fields naming the same ``table`` share one embedding table (e.g. ``video_id`` as a
    categorical token and as the click sequence's item field); they must agree on ``vocab_size``.
    ``embedding_dim`` None means the model's width d; another value is projected to d.
    """

    name: str
    vocab_size: int
    table: str
    embedding_dim: int | None = None


@dataclasses.dataclass(frozen=True)
class SequenceInput:
    """One behaviour type: item field first, then side-information fields, all id inputs."""

    name: str
    max_len: int
    fields: tuple[TokenInput, ...]
    time_gap_buckets: int

    @property
    def item_field(self) -> TokenInput:
        return self.fields[0]


@dataclasses.dataclass(frozen=True)
class TaskInput:
    name: str
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """Everything a model needs to know about its inputs."""

    categorical: tuple[TokenInput, ...]
    sequences: tuple[SequenceInput, ...]
    tasks: tuple[TaskInput, ...]

    def __post_init__(self) -> None:
        sizes: dict[str, int] = {}
        for field in self.all_token_inputs():
            if field.vocab_size < 2:
                raise ValueError(f"layout: {field.name}: vocab_size must be >= 2 (id 0 is reserved)")
            if sizes.setdefault(field.table, field.vocab_size) != field.vocab_size:
                raise ValueError(
                    f"layout: table {field.table!r} is shared by fields of different vocab_size "
                    f"({sizes[field.table]} vs {field.vocab_size} for {field.name!r})"
                )
        if not self.tasks:
            raise ValueError("layout: at least one task is required")

    # -- derived views -------------------------------------------------------------------
    def all_token_inputs(self) -> tuple[TokenInput, ...]:
        out = list(self.categorical)
        for seq in self.sequences:
            out.extend(seq.fields)
        return tuple(out)

    def tables(self) -> dict[str, int]:
        """Embedding table name -> vocab size, in first-use order."""
        out: dict[str, int] = {}
        for field in self.all_token_inputs():
            out.setdefault(field.table, field.vocab_size)
        return out

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def num_sequence_tokens(self) -> int:
        return sum(s.max_len for s in self.sequences)

    def model_input_keys(self) -> tuple[str, ...]:
        keys = [cat_key(f.name) for f in self.categorical]
        for seq in self.sequences:
            keys.extend(seq_key(seq.name, f.name) for f in seq.fields)
            keys.append(seq_key(seq.name, TIME_GAP))
            keys.append(seq_key(seq.name, LENGTH))
        return tuple(keys)

    # -- serialisation (stored in the transform artifact under "layout") ------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureLayout":
        return cls(
            categorical=tuple(TokenInput(**f) for f in d["categorical"]),
            sequences=tuple(
                SequenceInput(
                    name=s["name"],
                    max_len=int(s["max_len"]),
                    fields=tuple(TokenInput(**f) for f in s["fields"]),
                    time_gap_buckets=int(s["time_gap_buckets"]),
                )
                for s in d["sequences"]
            ),
            tasks=tuple(TaskInput(**t) for t in d["tasks"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FeatureLayout":
        return cls.from_dict(json.loads(text))


# -- TFRecord <-> model inputs (TensorFlow imported lazily so the layout stays light) ----------
def parsing_spec(layout: FeatureLayout, with_labels: bool = True, with_meta: bool = True) -> dict:
    """``tf.io.parse_example`` spec for the Examples the dataset job writes."""
    import tensorflow as tf

    spec: dict[str, Any] = {cat_key(f.name): tf.io.FixedLenFeature([], tf.int64, default_value=0)
                            for f in layout.categorical}
    for seq in layout.sequences:
        for name in [f.name for f in seq.fields] + [TIME_GAP]:
            spec[seq_key(seq.name, name)] = tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)
    if with_labels:
        for task in layout.tasks:
            spec[label_key(task.name)] = tf.io.FixedLenFeature([], tf.int64, default_value=MISSING_LABEL)
    if with_meta:
        spec[USER_KEY] = tf.io.FixedLenFeature([], tf.string, default_value="")
        spec[EVENT_TIME] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
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
        names = [f.name for f in seq.fields] + [TIME_GAP]
        first = parsed[seq_key(seq.name, names[0])]
        lengths = tf.minimum(first.row_lengths(), seq.max_len)
        for name in names:
            ragged = parsed[seq_key(seq.name, name)]
            # keep the last max_len items of each row (most recent last)
            starts = ragged.row_limits() - tf.minimum(ragged.row_lengths(), seq.max_len)
            kept = tf.ragged.range(starts, ragged.row_limits())
            values = tf.gather(ragged.flat_values, kept)
            out[seq_key(seq.name, name)] = values.to_tensor(default_value=0, shape=[None, seq.max_len])
        out[seq_key(seq.name, LENGTH)] = lengths
    return out


def split_labels(layout: FeatureLayout, batch: Mapping[str, Any]) -> tuple[dict, dict]:
    """(features, labels) from a parsed batch; labels keyed by task name."""
    features = dict(batch)
    labels = {t.name: features.pop(label_key(t.name)) for t in layout.tasks}
    return features, labels
