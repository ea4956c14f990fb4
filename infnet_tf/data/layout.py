"""The model-input layout: which tensors a model receives and how large each id space is.

A :class:`FeatureLayout` is derived once from a feature spec and its transform artifact (the Beam
dataset job writes it into the artifact under ``"layout"``) and is all a model needs to build
itself, so models never depend on where data comes from. The tensors' keys are in
:mod:`infnet_tf.data.keys`.

Id conventions (shared by the Beam job, the in-graph serving transform and the model):

* every id space reserves **id 0** for "missing": a null/NaN dense value, a null categorical
  value, or a padded sequence position; real ids start at 1, so ``vocab_size`` counts id 0 too;
* categorical tokens (categorical fields, bucketized dense fields, counter features) are int64
  scalars per example;
* behaviour sequences are stored most recent **last**, right-padded with id 0 to a common length
  ``T <= max_len`` inside a batch; ``seq/<type>/length`` says how many leading positions are real;
* time-gap buckets are ids in ``[1, time_gap_buckets)`` for real positions, 0 for padding;
* labels are int64 0/1, or ``keys.MISSING_LABEL`` (-1) when the label is missing (such a task
  contributes no loss).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from infnet_tf.data import keys


@dataclasses.dataclass(frozen=True)
class TokenInput:
    """One id-valued input: its name, id-space size (id 0 included) and embedding table.

    Fields naming the same ``table`` share one embedding table (e.g. ``video_id`` as a
    categorical token and as the click sequence's item field); they must agree on ``vocab_size``.
    ``embedding_dim`` None means the model's width d; another value is projected to d.
    ``ordinal``: the ids are ordered buckets of a number (a binned dense field or counter feature:
    id 1 is the lowest bucket, ``vocab_size - 1`` the highest, 0 missing), so a model may encode them
    as ordered (``ModelConfig.ordinal_encoding``).
    """

    name: str
    vocab_size: int
    table: str
    embedding_dim: int | None = None
    ordinal: bool = False


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
        """Names of the model's input tensors (:func:`infnet_tf.data.keys.model_input_keys`)."""
        return tuple(k.name for k in keys.model_input_keys(self))

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
