"""What the streaming trainer reads: *units* of data, each trained exactly once.

A :class:`Unit` is one time partition (:class:`FileSource`) or one chunk of Kafka messages
(:class:`infnet_tf.training.kafka_source.KafkaSource`). Every source has the same four methods:

* ``bind(state)``: called once with the restored state before the first ``next_unit`` (Kafka seeks
  its partitions to the offsets the checkpoint holds);
* ``next_unit(state)``: the next unit not in ``state`` (a :class:`~infnet_tf.training.state.StreamingState`),
  or None when nothing new is available right now;
* ``commit(unit)``: called once the checkpoint holding the unit is saved and the state file written
  (Kafka commits the consumer group's offsets here; files need nothing);
* ``close()``.

Both build their datasets with :mod:`infnet_tf.input`, so batches are parsed exactly as in batch mode.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Protocol

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.data.errors import PartitionError
from infnet_tf.data.partitions import Partition, list_partitions


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of streaming work.

    ``dataset(training)`` returns batched ``(features, labels)`` (shuffled when ``training`` and the
    source shuffles), or None when the unit holds no example.
    """

    key: str
    dataset: Callable[[bool], object]
    description: str
    records: int | None = None                                  # known up front (Kafka, file manifests)
    offsets: Mapping[str, tuple[int, int]] | None = None        # Kafka: "<topic>:<p>" -> [start, end)
    next_offsets: Mapping[str, int] | None = None               # Kafka: first offset after the unit
    partition: Partition | None = None                          # files: the partition (error messages)


class Source(Protocol):
    name: str

    def bind(self, state) -> None: ...

    def next_unit(self, state) -> Unit | None: ...

    def commit(self, unit: Unit) -> None: ...

    def close(self) -> None: ...


class FileSource:
    """Complete (``_SUCCESS``) time partitions of ``<data>/train`` in time order.

    Partitions are listed once per round and handed out one by one; a new listing happens only when
    the round is used up, so a long history on an object store is not re-listed per partition. A
    partition that appears late with an *earlier* date is still trained once (when it is seen),
    never skipped.

    Every partition is checked against its manifest before it is handed out
    (:meth:`Partition.verified_files`): a partition marked complete whose files are missing, partial
    or not yet there raises :class:`PartitionError` (the job stops with exit 2) — or, with
    ``wait_for_incomplete`` (``--follow``), is reported once and retried on the next poll, holding
    back every later partition so none is trained out of order or marked done without its rows.
    The unit's ``records`` is the manifest's row count, checked by the streaming job after training.
    """

    name = "files"

    def __init__(self, split_dir: str, layout: FeatureLayout, batch_size: int, *, shuffle: bool,
                 deterministic: bool, seed: int = 0, wait_for_incomplete: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.split_dir = split_dir.rstrip("/")
        self._layout = layout
        self._batch_size = batch_size
        self._shuffle = shuffle
        self._deterministic = deterministic
        self._seed = seed
        self._wait = wait_for_incomplete
        self._log = log
        self._reported: set[str] = set()
        self._queue: list[Partition] = []

    def pending(self, consumed: set[str]) -> list[Partition]:
        """Complete partitions not in ``consumed``, in time order (lists the directory)."""
        return [p for p in list_partitions(self.split_dir) if p.key not in consumed]

    def bind(self, state) -> None:
        self._queue = []

    def next_unit(self, state) -> Unit | None:
        consumed = state.consumed_keys()
        self._queue = [p for p in self._queue if p.key not in consumed]
        if not self._queue:
            self._queue = self.pending(consumed)
        if not self._queue:
            return None
        part = self._queue[0]
        try:
            files, manifest = part.verify()
        except PartitionError as exc:
            if not self._wait:
                raise
            if str(exc) not in self._reported:
                self._reported.add(str(exc))
                self._log(f"streaming: waiting for {part.key}: {exc}")
            self._queue = []          # list again on the next poll; later partitions wait for it
            return None
        self._queue.pop(0)
        records = manifest.rows if manifest is not None and manifest.rows >= 0 else None
        rows = f", {records:,} rows" if records is not None else ""
        return Unit(key=part.key, dataset=lambda training: self._dataset(files, training),
                    description=f"{part.path} ({len(files)} file{'s' if len(files) != 1 else ''}{rows})",
                    records=records, partition=part)

    def _dataset(self, files: list[str], training: bool):
        if not files:
            return None
        from infnet_tf.input import make_dataset

        shuffle = training and self._shuffle
        return make_dataset(files, self._layout, self._batch_size, shuffle=shuffle, repeat=False,
                            deterministic=self._deterministic, seed=self._seed,
                            with_meta=not training)   # training reads the model inputs only

    def commit(self, unit: Unit) -> None:  # the state file is the only record files need
        pass

    def close(self) -> None:
        pass
