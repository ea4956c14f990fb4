"""Kafka as a streaming source: chunks of serialized ``tf.train.Example`` messages, each trained once.

A *chunk* (up to ``chunk_messages`` messages, or fewer when every assigned partition is caught up)
is treated exactly like a time partition by :mod:`infnet_tf.training.streaming`: tested, trained,
checkpointed, recorded — and only then are the consumer group's offsets committed
(:meth:`KafkaSource.commit`). The offsets a chunk covers (``"<topic>:<partition>" -> [start, end)``)
and the next offset per partition are stored in the checkpoint's streaming progress, which is the
source of truth: on start the consumer seeks every assigned partition to the checkpoint's offset and
commits it, so a job killed between "checkpoint saved" and "offsets committed" neither trains a
message twice nor skips one. Partitions the checkpoint does not know start from the group's committed
offset, or the earliest offset for a new group.

Why confluent-kafka's ``Consumer`` and not tensorflow-io's ``KafkaGroupIODataset``: the design asks
for tensorflow-io's dataset, and it does read the messages, but in tensorflow-io 0.37.1 it cannot
give exact resume: (1) it yields only ``(message, key)`` — no partition and no offset — so the
offsets a chunk covers cannot be known; (2) it has no commit operation: with
``enable.auto.commit=false`` nothing is ever committed, and with auto-commit librdkafka commits what
was *read* (prefetched), before training — a crash then skips messages; (3) its consumer cannot be
seeked to the offsets a checkpoint holds. So messages are consumed here with librdkafka's consumer
(``enable.auto.commit=false``, manual synchronous commits) — the same client library tensorflow-io
wraps — and each chunk becomes a ``tf.data.Dataset`` of serialized Examples parsed by
:func:`infnet_tf.input.parse_batch`, the parser every other path uses. A chunk is held in memory (it
is read twice: test, then train), so ``chunk_messages`` bounds the memory used.

Before anything is read, :func:`check_reachable` asks the brokers for metadata: an unreachable
broker fails within ``timeout_s`` with a message naming the address (tensorflow-io would read it as
an empty stream).
"""
from __future__ import annotations

import time
from typing import Mapping

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.training.sources import Unit


class KafkaUnreachableError(ConnectionError):
    """No Kafka broker answered at the configured address within the timeout."""


class KafkaSourceError(RuntimeError):
    """The consumer failed (group join, fatal broker error, missing topic, failed commit)."""


def log(line: str) -> None:
    print(line, flush=True)


def _quiet(conf: Mapping) -> dict:
    """librdkafka logs connection failures every few ms on stderr; our errors say what failed."""
    return {"log_level": 2, **conf}


def check_reachable(servers: str, timeout_s: float, topic: str | None = None):
    """Cluster metadata from ``servers`` within ``timeout_s``; raises :class:`KafkaUnreachableError`.

    With ``topic``, also raises :class:`KafkaSourceError` when the topic does not exist.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    start = time.monotonic()
    admin = AdminClient(_quiet({"bootstrap.servers": servers, "socket.timeout.ms": max(int(timeout_s * 1000), 10)}))
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnreachableError(
            f"Kafka: no broker reachable at {servers!r} within {timeout_s:g}s "
            f"({exc.args[0].str() if exc.args else exc}); check --kafka_servers, that the brokers run and "
            f"that this machine can reach them") from None
    if topic is not None and topic not in metadata.topics:
        known = sorted(t for t in metadata.topics if not t.startswith("__"))
        raise KafkaSourceError(f"Kafka: topic {topic!r} does not exist on {servers!r} "
                               f"(topics there: {known or 'none'})")
    log(f"kafka: {len(metadata.brokers)} broker(s) reachable at {servers} "
        f"({time.monotonic() - start:.1f}s)")
    return metadata


def tp_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def chunk_key(topic: str, ranges: Mapping[str, tuple[int, int]]) -> str:
    """``kafka/<topic>/p0:0-100,p1:0-96``: unique, since trained ranges never overlap."""
    parts = sorted(ranges.items(), key=lambda kv: int(kv[0].rsplit(":", 1)[1]))
    return f"kafka/{topic}/" + ",".join(f"p{k.rsplit(':', 1)[1]}:{a}-{b}" for k, (a, b) in parts)


def records_dataset(records, layout: FeatureLayout, batch_size: int, *, shuffle: bool, seed: int | None):
    """Batched ``(features, labels)`` from serialized Examples (a list or a string tensor), parsed
    by :func:`infnet_tf.input.batch_parser` like every other input."""
    import tensorflow as tf

    from infnet_tf.input import batch_parser, input_options

    records = tf.convert_to_tensor(records, dtype=tf.string)
    ds = tf.data.Dataset.from_tensor_slices(records)
    if shuffle:
        ds = ds.shuffle(int(records.shape[0]), seed=seed, reshuffle_each_iteration=False)
    ds = ds.batch(batch_size).map(batch_parser(layout), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(input_options())


class KafkaSource:
    """Chunks of a Kafka topic through a consumer group with manual, checkpoint-aligned commits.

    Args:
      servers, topic, group: bootstrap servers, topic, consumer group id.
      timeout_s: the reachability check and the wait for the group to assign partitions.
      chunk_messages: messages per chunk (fewer when every assigned partition is caught up).
      follow: when False a missing topic is an error; when True the job keeps polling.
      poll_s: one consumer poll's timeout.
      consumer_config: extra librdkafka settings (e.g. ``session.timeout.ms``, security).
    """

    name = "kafka"

    def __init__(self, layout: FeatureLayout, *, servers: str, topic: str, group: str, timeout_s: float,
                 chunk_messages: int, batch_size: int, follow: bool = False, shuffle: bool = True,
                 seed: int | None = 0, poll_s: float = 0.5, consumer_config: Mapping | None = None) -> None:
        from confluent_kafka import Consumer

        check_reachable(servers, timeout_s, topic=None if follow else topic)
        self.layout = layout
        self.servers, self.topic, self.group = servers, topic, group
        self.timeout_s = timeout_s
        self.chunk_messages = chunk_messages
        self.batch_size = batch_size
        self.shuffle, self.seed = shuffle, seed
        self.poll_s = poll_s
        self.follow = follow
        conf = {"bootstrap.servers": servers, "group.id": group,
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest", "enable.partition.eof": True,
                **(consumer_config or {})}
        self._consumer = Consumer(_quiet(conf))
        self._session_timeout_s = float(conf.get("session.timeout.ms", 45_000)) / 1000
        self._checkpointed: dict[str, int] = {}   # next offset per partition, as in the checkpoint
        self._next_read: dict[str, int] = {}      # next offset per partition this process reads
        self._assigned: set[str] = set()
        self._at_end: set[str] = set()
        self._to_commit: dict[str, int] = {}
        self._subscribed_at: float | None = None

    # -- assignment: seek to the checkpoint ----------------------------------------------------
    def bind(self, state) -> None:
        """Seek to the offsets in the restored checkpoint's state once partitions are assigned."""
        self._checkpointed = {k: v for k, v in state.source_offsets.items()
                              if k.rsplit(":", 1)[0] == self.topic}
        self._next_read = dict(self._checkpointed)
        self._consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._subscribed_at = time.monotonic()
        log(f"kafka: subscribed to {self.topic!r} as group {self.group!r} at {self.servers}; "
            f"{len(self._checkpointed)} partition offset(s) from the checkpoint")

    def _on_assign(self, consumer, partitions) -> None:
        """Seek to where this process stopped reading (at start: the checkpoint's offsets), so a
        rebalance in the middle of a run neither re-reads nor skips; commit the checkpoint's offsets
        so the group's committed offsets agree with the checkpoint."""
        seeks = []
        for tp in partitions:
            key = tp_key(tp.topic, tp.partition)
            self._assigned.add(key)
            self._at_end.discard(key)
            if key in self._next_read:
                tp.offset = self._next_read[key]
                seeks.append(f"p{tp.partition}@{tp.offset}")
            if key in self._checkpointed:
                self._to_commit[key] = self._checkpointed[key]
        consumer.assign(partitions)
        log(f"kafka: assigned {len(partitions)} partition(s)"
            + (f"; reading on from {', '.join(seeks)}" if seeks else ""))

    def _on_revoke(self, consumer, partitions) -> None:
        for tp in partitions:
            self._assigned.discard(tp_key(tp.topic, tp.partition))
            self._at_end.discard(tp_key(tp.topic, tp.partition))

    # -- reading -------------------------------------------------------------------------------
    def _caught_up(self) -> bool:
        return bool(self._assigned) and self._assigned <= self._at_end

    def next_unit(self, state) -> Unit | None:
        """Up to ``chunk_messages`` messages; None when there is nothing new right now.

        A chunk ends early once every assigned partition is at its end, or when no message came
        for ``timeout_s`` (an idle topic).
        """
        from confluent_kafka import KafkaError

        records: list[bytes] = []
        ranges: dict[str, list[int]] = {}
        idle_since = time.monotonic()
        while len(records) < self.chunk_messages:
            msg = self._consumer.poll(self.poll_s)
            if self._to_commit:  # just assigned: align the group's offsets with the checkpoint
                self._commit(self._to_commit)
                self._to_commit = {}
            if msg is None:
                if not self._assigned:
                    self._check_join_timeout()
                elif records or self._caught_up() or time.monotonic() - idle_since > self.timeout_s:
                    break
                continue
            key = tp_key(msg.topic(), msg.partition()) if msg.topic() else self.topic
            if msg.error():
                code = msg.error().code()
                if code == KafkaError._PARTITION_EOF:
                    self._at_end.add(key)
                    if self._caught_up():
                        break
                    continue
                missing_topic = code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
                if msg.error().fatal() or (missing_topic and not self.follow):
                    raise KafkaSourceError(f"Kafka: consumer error on {key}: {msg.error().str()}")
                log(f"kafka: consumer error on {key} (retrying): {msg.error().str()}")
                continue
            self._at_end.discard(key)
            idle_since = time.monotonic()
            records.append(msg.value())
            ranges.setdefault(key, [msg.offset(), msg.offset()])[1] = msg.offset() + 1
            self._next_read[key] = msg.offset() + 1
        if not records:
            return None
        import tensorflow as tf

        payload = tf.constant(records, dtype=tf.string)  # one copy, read twice (test, then train)
        offsets = {k: (a, b) for k, (a, b) in ranges.items()}
        return Unit(key=chunk_key(self.topic, offsets),
                    dataset=lambda training: records_dataset(payload, self.layout, self.batch_size,
                                                             shuffle=training and self.shuffle, seed=self.seed),
                    description=f"{len(records)} Kafka message(s) from {self.topic!r}",
                    records=len(records), offsets=offsets,
                    next_offsets={k: b for k, (a, b) in offsets.items()})

    def _check_join_timeout(self) -> None:
        """No partition assigned yet: fail clearly once a join should long have succeeded.

        A restart after a kill may wait up to the group's session timeout for the dead member to
        expire, so the limit is that timeout plus ``timeout_s``.
        """
        waited = time.monotonic() - (self._subscribed_at or time.monotonic())
        if waited > self._session_timeout_s + self.timeout_s:
            raise KafkaSourceError(
                f"Kafka: group {self.group!r} got no partition of {self.topic!r} from {self.servers!r} "
                f"after {waited:.0f}s (does the topic exist; does another member of the group hold all "
                f"its partitions?)")

    # -- committing ----------------------------------------------------------------------------
    def commit(self, unit: Unit) -> None:
        """Commit the offsets after ``unit`` (call only once the checkpoint holding it is saved)."""
        if unit.next_offsets:
            self._commit(unit.next_offsets)
            for k, v in unit.next_offsets.items():
                self._checkpointed[k] = v

    def _commit(self, offsets: Mapping[str, int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        tps = [TopicPartition(k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]), int(v))
               for k, v in sorted(offsets.items())]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # Not fatal: the checkpoint holds these offsets and the next start seeks to them.
            log(f"kafka: WARNING: committing offsets {dict(offsets)} failed ({exc}); the checkpoint "
                f"holds them, so a restart still resumes exactly")

    def close(self) -> None:
        """Leave the group (no commit: ``enable.auto.commit`` is off)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
