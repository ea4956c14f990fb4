"""Kafka source against librdkafka's mock cluster (a real broker protocol on 127.0.0.1, in this process).

The mock cluster lives inside the producing process, so the trainer runs in the test process too; a
"kill" is an exception raised at the chosen moment, and a "restart" is a new Trainer and consumer.
"""
import time
import types

import numpy as np
import pytest

import infnet_tf  # noqa: F401
from infnet_tf.training import kafka_source
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.kafka_source import KafkaUnreachableError, check_reachable
from infnet_tf.training.streaming import StreamingConfig, make_source, run_streaming
from tests.tiny_data import make_examples, tiny_layout
from tests.training.stream_fixtures import BATCH, log_records, read_state, tiny_trainer

pytest.importorskip("confluent_kafka")
# A killed member is only replaced once its session expires: keep that short for the restart.
FAST_REJOIN = "session.timeout.ms=6000,heartbeat.interval.ms=500"
PER_PARTITION = 100
CHUNK = 64


class Killed(BaseException):
    """Stands for SIGKILL (BaseException: nothing may catch it and carry on)."""


@pytest.fixture(scope="module")
def kafka():
    from confluent_kafka import Producer

    producer = Producer({"test.mock.num.brokers": 1, "log_level": 2})
    metadata = producer.list_topics(timeout=10)
    servers = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    return types.SimpleNamespace(producer=producer, servers=servers)


def _produce(kafka, topic, layout):
    """2 x PER_PARTITION serialized Examples on partitions 0 and 1 (the topic has 4: 2 stay empty)."""
    examples = make_examples(layout, 2 * PER_PARTITION, np.random.default_rng(3), day=0)
    for i, example in enumerate(examples):
        kafka.producer.produce(topic, value=example, partition=i % 2)
    assert kafka.producer.flush(10) == 0
    return examples


def _committed(kafka, topic, group):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": kafka.servers, "group.id": group, "log_level": 2})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def test_unreachable_broker_fails_fast_with_the_address():
    config = StreamingConfig(source="kafka", kafka_servers="127.0.0.1:1", kafka_topic="examples",
                             kafka_timeout_s=3.0)
    trainer = types.SimpleNamespace(layout=tiny_layout(), config=TrainConfig(batch_size=BATCH))
    start = time.monotonic()
    with pytest.raises(KafkaUnreachableError, match=r"no broker reachable at '127\.0\.0\.1:1' within 3s"):
        make_source(config, trainer, None)   # what run_streaming does first
    assert time.monotonic() - start < 3.0 + 2.0


def test_missing_topic_is_a_clear_error(kafka):
    with pytest.raises(kafka_source.KafkaSourceError, match="topic 'no-such-topic' does not exist"):
        check_reachable(kafka.servers, 5.0, topic="no-such-topic")


def test_trains_on_kafka_messages_and_resumes_exactly_after_a_kill(kafka, tmp_path, monkeypatch):
    layout = tiny_layout()
    topic, group = "examples-resume", "trainer-resume"
    produced = _produce(kafka, topic, layout)
    model_dir = str(tmp_path / "model")
    flags = dict(source="kafka", kafka_servers=kafka.servers, kafka_topic=topic, kafka_group=group,
                 kafka_timeout_s=5.0, kafka_chunk_messages=CHUNK, kafka_config=FAST_REJOIN, export_every=0)
    trained_ids = []

    def recording(trainer):
        train_on = trainer.train_on

        def train_on_and_record(dataset, max_steps=None):
            trained_ids.extend(int(t) for features, _ in dataset for t in features["event_time_ms"].numpy())
            return train_on(dataset, max_steps)

        trainer.train_on = train_on_and_record
        return trainer

    # run 1: killed after the 2nd chunk is checkpointed and recorded, before its offsets are committed
    commit = kafka_source.KafkaSource.commit
    commits = []

    def commit_then_die_on_second(self, unit):
        commits.append(unit.key)
        if len(commits) == 2:
            raise Killed()
        commit(self, unit)

    monkeypatch.setattr(kafka_source.KafkaSource, "commit", commit_then_die_on_second)
    with pytest.raises(Killed):
        run_streaming(recording(tiny_trainer(layout, model_dir)), None, **flags)
    monkeypatch.setattr(kafka_source.KafkaSource, "commit", commit)
    state = read_state(model_dir)
    assert len(state["consumed"]) == 2
    first_end = {int(k.split(":")[1]): v[1] for k, v in state["consumed"][0]["offsets"].items()}
    assert {p: o for p, o in _committed(kafka, topic, group).items() if o >= 0} == first_end  # lags

    # run 2 (restart): seeks to the checkpoint's offsets, not the group's lagging ones
    summary = run_streaming(recording(tiny_trainer(layout, model_dir)), None, **flags)
    assert summary["stop_reason"] == "caught up"
    state = read_state(model_dir)

    # every message trained exactly once: by identity ...
    expected_ids = sorted(int(t) for t in _event_times(produced))
    assert sorted(trained_ids) == expected_ids
    # ... and by offsets: per partition, the chunks tile [0, PER_PARTITION) without gap or overlap
    spans = {}
    for entry in state["consumed"]:
        assert entry["records"] == sum(b - a for a, b in entry["offsets"].values())
        for key, (a, b) in entry["offsets"].items():
            spans.setdefault(key, []).append((a, b))
    for key, ranges in spans.items():
        ranges.sort()
        assert ranges[0][0] == 0 and ranges[-1][1] == PER_PARTITION, (key, ranges)
        assert all(prev[1] == nxt[0] for prev, nxt in zip(ranges, ranges[1:])), (key, ranges)
    assert state["source_offsets"] == {f"{topic}:0": PER_PARTITION, f"{topic}:1": PER_PARTITION}
    assert _committed(kafka, topic, group) == {0: PER_PARTITION, 1: PER_PARTITION}
    assert state["global_step"] == sum(-(-e["records"] // BATCH) for e in state["consumed"])
    # test-then-train records per chunk
    units = log_records(model_dir, "unit")
    assert [u["key"] for u in units] == [e["key"] for e in state["consumed"]]
    assert not any(u.get("recovered") for u in units)
    assert all(u["test"]["click"]["count"] == u["records"] for u in units)


def _event_times(serialized):
    import tensorflow as tf

    for example in serialized:
        yield tf.train.Example.FromString(example).features.feature["event_time_ms"].int64_list.value[0]
