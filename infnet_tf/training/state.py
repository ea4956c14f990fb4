"""Streaming progress: which partitions (or Kafka chunks) are trained into the model.

The progress lives in two places:

* **inside the checkpoint** (:class:`CheckpointedProgress`, a string variable holding the JSON of a
  :class:`StreamingState`, saved by the Trainer's ``tf.train.Checkpoint`` together with the weights,
  optimizer slots and global step). A checkpoint is written atomically (CheckpointManager writes the
  files, then swaps its index), so the weights and the list of data trained into them can never
  disagree. **The checkpoint is the source of truth.**
* **in the state file** ``<model_dir>/streaming_state.json``: the same JSON plus the checkpoint path
  each entry was saved in, written atomically (temporary file, then rename) *after* the checkpoint.
  It is what operators and tests read; on start it is reconciled with the checkpoint
  (:func:`reconcile`), which repairs a crash between "checkpoint saved" and "state written".

State file format (``version`` 1)::

    {"version": 1, "source": "files" | "kafka",
     "consumed": [{"key": "dt=2026-09-20", "global_step": 4, "checkpoint": ".../ckpt-4",
                   "records": null, "offsets": null}, ...],        # in training order
     "source_offsets": {"<topic>:<partition>": <next offset>, ...},  # Kafka: first untrained offset
     "checkpoint": ".../ckpt-12", "global_step": 12, "updated_at": "2026-...Z"}
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any, Mapping

STATE_FILE = "streaming_state.json"
STATE_VERSION = 1


class StateFileError(RuntimeError):
    """The streaming state file (or its checkpointed twin) cannot be read."""


@dataclasses.dataclass(frozen=True)
class ConsumedEntry:
    """One unit of data (a time partition or a Kafka chunk) trained into the model."""

    key: str                                   # partition key "dt=..." or Kafka chunk id
    global_step: int                           # global step right after training on it
    checkpoint: str | None = None              # checkpoint that first held it (state file only)
    records: int | None = None                 # examples trained (None: not counted)
    offsets: Mapping[str, tuple[int, int]] | None = None  # Kafka: "<topic>:<p>" -> [start, end)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.offsets is not None:
            d["offsets"] = {k: [int(a), int(b)] for k, (a, b) in sorted(self.offsets.items())}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ConsumedEntry":
        offsets = d.get("offsets")
        return cls(key=str(d["key"]), global_step=int(d["global_step"]),
                   checkpoint=d.get("checkpoint"),
                   records=None if d.get("records") is None else int(d["records"]),
                   offsets=None if offsets is None else {str(k): (int(v[0]), int(v[1]))
                                                         for k, v in offsets.items()})


@dataclasses.dataclass
class StreamingState:
    """Consumed units in training order, and (Kafka) the next offset to train per partition."""

    source: str = "files"
    consumed: list[ConsumedEntry] = dataclasses.field(default_factory=list)
    source_offsets: dict[str, int] = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None
    global_step: int = 0

    # -- queries -------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return [e.key for e in self.consumed]

    def consumed_keys(self) -> set[str]:
        return {e.key for e in self.consumed}

    # -- updates -------------------------------------------------------------------------------
    def with_entry(self, entry: ConsumedEntry, source_offsets: Mapping[str, int] | None = None
                   ) -> "StreamingState":
        """A copy with ``entry`` appended (and Kafka offsets advanced)."""
        if entry.key in self.consumed_keys():
            raise ValueError(f"streaming state: {entry.key!r} is already consumed (would train it twice)")
        offsets = dict(self.source_offsets)
        offsets.update(source_offsets or {})
        return dataclasses.replace(self, consumed=self.consumed + [entry], source_offsets=offsets,
                                   global_step=entry.global_step)

    def with_checkpoint(self, path: str) -> "StreamingState":
        """A copy whose last entry (and the state itself) records checkpoint ``path``."""
        consumed = list(self.consumed)
        if consumed and consumed[-1].checkpoint is None:
            consumed[-1] = dataclasses.replace(consumed[-1], checkpoint=path)
        return dataclasses.replace(self, consumed=consumed, checkpoint=path)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self, with_checkpoints: bool = True) -> dict[str, Any]:
        consumed = [e.to_dict() for e in self.consumed]
        if not with_checkpoints:  # the checkpointed copy cannot know its own path
            for e in consumed:
                e["checkpoint"] = None
        return {"version": STATE_VERSION, "source": self.source, "consumed": consumed,
                "source_offsets": dict(sorted(self.source_offsets.items())),
                "checkpoint": self.checkpoint if with_checkpoints else None,
                "global_step": self.global_step,
                "updated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def to_json(self, with_checkpoints: bool = True) -> str:
        return json.dumps(self.to_dict(with_checkpoints), indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> "StreamingState":
        """Parse the JSON; ``where`` names the file/checkpoint in the error message."""
        try:
            d = json.loads(text)
            if not isinstance(d, dict):
                raise ValueError(f"expected a JSON object, got {type(d).__name__}")
            if d.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported version {d.get('version')!r} (expected {STATE_VERSION})")
            state = cls(source=str(d.get("source", "files")),
                        consumed=[ConsumedEntry.from_dict(e) for e in d["consumed"]],
                        source_offsets={str(k): int(v) for k, v in d.get("source_offsets", {}).items()},
                        checkpoint=d.get("checkpoint"), global_step=int(d.get("global_step", 0)))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise StateFileError(
                f"streaming state {where} is corrupt: {type(exc).__name__}: {exc}. The latest "
                f"checkpoint is the source of truth: move this file aside and restart, and it is "
                f"rebuilt from the checkpoint.") from exc
        keys = state.keys()
        if len(keys) != len(set(keys)):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise StateFileError(f"streaming state {where} is corrupt: units listed twice: {dup}")
        return state


# -- the state file -----------------------------------------------------------------------------
def state_path(model_dir: str) -> str:
    return f"{model_dir.rstrip('/')}/{STATE_FILE}"


def load_state(path: str) -> StreamingState | None:
    """The state file at ``path``; None when it does not exist; :class:`StateFileError` if corrupt."""
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    return StreamingState.from_json(text, where=f"file {path}")


def save_state(path: str, state: StreamingState) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, then a rename.

    Readers see the old file or the new one, never a torn write (a rename is atomic on local and
    HDFS filesystems; on object stores it is the closest available: copy, then delete).
    """
    import tensorflow as tf

    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(state.to_json())
    tf.io.gfile.rename(tmp, path, overwrite=True)


# -- the checkpointed twin ----------------------------------------------------------------------
CHECKPOINT_ATTRIBUTE = "streaming"  # tf.train.Checkpoint attribute holding the progress
_VARIABLE_KEY = f"{CHECKPOINT_ATTRIBUTE}/progress/.ATTRIBUTES/VARIABLE_VALUE"


def read_checkpointed_state(checkpoint_path: str | None) -> StreamingState | None:
    """The progress saved inside ``checkpoint_path``; None when there is no checkpoint or it holds
    no streaming progress (e.g. a batch-mode checkpoint used as the starting model)."""
    import tensorflow as tf

    if not checkpoint_path:
        return None
    reader = tf.train.load_checkpoint(checkpoint_path)
    if not reader.has_tensor(_VARIABLE_KEY):
        return None
    text = reader.get_tensor(_VARIABLE_KEY)
    text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    return StreamingState.from_json(text, where=f"inside checkpoint {checkpoint_path}") if text else None


class CheckpointedProgress:
    """Adds the streaming progress to a ``tf.train.Checkpoint`` (attribute ``streaming``).

    Attach it *after* restoring the checkpoint, so that restoring a checkpoint without streaming
    progress (a batch-mode one) still passes ``assert_existing_objects_matched``; read the restored
    progress with :func:`read_checkpointed_state`. Call :meth:`set` before every save.
    """

    def __init__(self, checkpoint) -> None:
        import tensorflow as tf

        module = tf.Module(name="streaming_progress")
        module.progress = tf.Variable("", dtype=tf.string, trainable=False, name="streaming_progress")
        self._variable = module.progress
        setattr(checkpoint, CHECKPOINT_ATTRIBUTE, module)

    def set(self, state: StreamingState) -> None:
        self._variable.assign(state.to_json(with_checkpoints=False))


# -- reconciliation ------------------------------------------------------------------------------
def reconcile(checkpointed: StreamingState | None, on_disk: StreamingState | None,
              checkpoint_path: str | None) -> tuple[StreamingState, list[str]]:
    """The state to continue from, and notes on what was repaired. The checkpoint wins.

    * state file == checkpoint: nothing to do;
    * checkpoint ahead (the job died after saving the checkpoint, before writing the state file):
      the missing entries are taken from the checkpoint — those units are *not* trained again;
    * state file ahead or diverging (checkpoints deleted or rolled back): the checkpoint wins; the
      units it lacks are trained again, and a note says which;
    * a state file with entries but no checkpoint at all is an error (the model it describes is gone).
    """
    notes: list[str] = []
    if checkpointed is None:
        if on_disk is not None and on_disk.consumed:
            where = f"checkpoint {checkpoint_path}" if checkpoint_path else "no checkpoint"
            raise StateFileError(
                f"the streaming state file lists {len(on_disk.consumed)} consumed unit(s) (last "
                f"{on_disk.consumed[-1].key!r}) but the model has no streaming progress ({where}): "
                f"the checkpoints it describes are gone. Restore them, or move the state file aside "
                f"to start streaming again from the current model.")
        base = StreamingState(source=on_disk.source if on_disk else "files", checkpoint=checkpoint_path)
        return base, notes
    paths = {e.key: e.checkpoint for e in (on_disk.consumed if on_disk else [])}
    consumed = [dataclasses.replace(e, checkpoint=paths.get(e.key)) for e in checkpointed.consumed]
    if consumed and consumed[-1].checkpoint is None:
        consumed[-1] = dataclasses.replace(consumed[-1], checkpoint=checkpoint_path)
    state = dataclasses.replace(checkpointed, consumed=consumed, checkpoint=checkpoint_path)
    disk_keys = on_disk.keys() if on_disk else []
    ckpt_keys = state.keys()
    if disk_keys == ckpt_keys:
        if on_disk is not None and on_disk.source_offsets != state.source_offsets:
            notes.append("state file offsets differ from the checkpoint's; using the checkpoint's")
        return state, notes
    if ckpt_keys[:len(disk_keys)] == disk_keys:
        notes.append(f"recovered {len(ckpt_keys) - len(disk_keys)} unit(s) trained and checkpointed "
                     f"but missing from the state file: {ckpt_keys[len(disk_keys):]} (not trained again)")
    else:
        lost = [k for k in disk_keys if k not in set(ckpt_keys)]
        notes.append(f"the state file lists unit(s) the latest checkpoint ({checkpoint_path}) does not "
                     f"hold: {lost}; the checkpoint is the source of truth, so they will be trained again")
    return state, notes
