"""Streaming mode: train partition by partition (or Kafka chunk by chunk), test-then-train, exact resume.

For every unit of data not yet trained (time partitions of ``<data>/train`` with ``_SUCCESS``, in
time order; or chunks of Kafka messages):

1. **test**: evaluate the current model on it (progressive validation) — printed, written to
   TensorBoard (``stream_test/<task>/<metric>``) and kept for the log record;
2. **train**: one pass over it;
3. **checkpoint**: save model + optimizer + global step + the streaming progress *including this unit*;
4. **state**: write ``<model_dir>/streaming_state.json`` atomically;
5. **log**: append a record to ``<model_dir>/streaming_log.jsonl``;
6. **commit**: Kafka commits the consumer offsets the checkpoint covers (files: nothing);
7. every ``export_every`` units: the export hook.

Exact resume (SIGKILL at any moment): the progress is saved *inside* the checkpoint, atomically
with the weights, so on start the restored model and the list of units trained into it agree. The
state file and the Kafka offsets are only ever written *after* the checkpoint that covers them, and
are reconciled to the checkpoint on start (:func:`infnet_tf.training.state.reconcile`). A unit killed
before step 3 is trained again from the previous checkpoint's weights (its partial training died
with the process); a unit killed after step 3 is never trained again.

``follow`` keeps polling for new units every ``poll_interval_s``. SIGTERM/SIGINT: the current unit is
finished (trained, checkpointed, recorded) and the job returns normally (exit status 0) — unless
it is still in its **test** phase: then the test is abandoned and the unit stays untrained (it is
tested and trained on the next start); a second signal stops at once (the default action — safe
too, see above). The summary's ``caught_up`` says whether the run ended because nothing was left
(only then does the CLI write a final ``metrics.json``).

Before a file unit is used it is checked against its partition's manifest (missing or unlisted
files, no data at all: :class:`~infnet_tf.data.errors.PartitionError`), and after its training pass
the examples read must equal the manifest's rows — otherwise the job stops *before* the checkpoint
that would mark it consumed. A corrupt or truncated file is named (:class:`~infnet_tf.data.errors.DataFileError`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
import traceback
from typing import Any, Callable, Mapping

from infnet_tf.config_flags import setting
from infnet_tf.data.errors import DataError
from infnet_tf.training.kafka_source import KafkaSourceError, KafkaUnreachableError
from infnet_tf.training.sources import FileSource, Source, Unit
from infnet_tf.training.state import (CheckpointedProgress, ConsumedEntry, StateFileError, StreamingState,
                                      load_state, read_checkpointed_state, reconcile, save_state,
                                      state_path)

LOG_FILE = "streaming_log.jsonl"
SOURCES = ("files", "kafka")
TEST_PREFIX = "stream_test"
TRAIN_PREFIX = "stream_train"

ExportHook = Callable[[Any, str], Any]  # (trainer, unit key) -> anything
# Errors that mean "fix the job's flags or files" (one clear line, no traceback, in a CLI)
JOB_ERRORS = (ValueError, DataError, StateFileError, KafkaUnreachableError, KafkaSourceError)


def log(line: str) -> None:
    print(line, flush=True)


# -- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StreamingConfig:
    """The ``--mode=streaming`` settings; each field (but ``batch_size``) is a flag of ``python -m infnet_tf.train``."""

    follow: bool = setting(False, help=(
        "Streaming: keep polling train/ for new partitions after the last one (stop with SIGTERM/SIGINT; the current "
        "partition's checkpoint finishes first)."))
    poll_interval_s: float = setting(60.0, "Streaming --follow: seconds between polls for new partitions.")
    export_every: int = setting(0, help=(
        "Streaming: export a SavedModel version every N trained partitions (Kafka: chunks); 0: never."))
    export_base: str | None = setting(None, help=(
        "Streaming: export base directory (versions go to <export_base>/<model_name>/<version>); default "
        "<model_dir>/export."))
    model_name: str = setting("infnet", "Streaming: model name in the export path and the TF Serving model config.")
    source: str = setting("files", choices=SOURCES, help=(
        "Streaming input: files = train/ partitions; kafka = serialized tf.Examples from a Kafka topic."))
    kafka_servers: str = setting("", "Kafka bootstrap servers (host:port[,host:port]).")
    kafka_topic: str = setting("", "Kafka topic of serialized tf.Examples (--source=kafka).")
    kafka_group: str = setting("infnet-trainer", help=(
        "Kafka consumer group; offsets are committed only after the checkpoint that covers them."))
    kafka_timeout_s: float = setting(10.0, help=(
        "Kafka: seconds to wait for the broker and the group join; an unreachable broker fails after this instead of "
        "reading as an empty stream."))
    kafka_chunk_messages: int = setting(100_000, help=(
        "Kafka: messages per chunk (a chunk is trained, checkpointed and committed like a partition)."))
    kafka_config: str = setting("", help=(
        "Kafka: extra librdkafka consumer settings, key=value,key=value (e.g. security.protocol=SSL)."))
    max_partitions: int = setting(0, help=(
        "Streaming: stop after training this many partitions (Kafka: chunks) in this run; 0: no limit."))
    batch_size: int = setting(0, cli=False)  # 0: the trainer's batch size (no flag: --batch_size is TrainConfig's)

    def __post_init__(self) -> None:
        def fail(name: str, msg: str) -> None:
            raise ValueError(f"streaming config: {name}: {msg}")

        if self.source not in SOURCES:
            fail("source", f"expected one of {'|'.join(SOURCES)}, got {self.source!r}")
        if not self.poll_interval_s > 0:
            fail("poll_interval_s", f"expected a positive number of seconds, got {self.poll_interval_s!r}")
        for name in ("export_every", "max_partitions", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                fail(name, f"expected an int >= 0, got {value!r}")
        if self.kafka_chunk_messages < 1:
            fail("kafka_chunk_messages", f"expected a positive int, got {self.kafka_chunk_messages!r}")
        if not self.kafka_timeout_s > 0:
            fail("kafka_timeout_s", f"expected a positive number of seconds, got {self.kafka_timeout_s!r}")
        kafka_settings(self.kafka_config)  # fails early on a malformed setting
        if self.source == "kafka":
            for name in ("kafka_servers", "kafka_topic", "kafka_group"):
                if not getattr(self, name):
                    fail(name, "required with source=kafka")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "StreamingConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"run_streaming: unknown option(s) {unknown}; expected some of {sorted(names)}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None})


def kafka_settings(text: str) -> dict[str, str]:
    """``"session.timeout.ms=6000,security.protocol=SSL"`` -> a dict of librdkafka settings."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"streaming config: kafka_config: expected key=value pairs separated by "
                             f"commas, got {item!r}")
        out[key.strip()] = value.strip()
    return out


# -- stop requests (SIGTERM / SIGINT) -----------------------------------------------------------
class StopRequest:
    """Sets an event on the first SIGTERM/SIGINT; the next one gets the default action (stop now)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.phase = "idle"          # idle | test <key> | train <key>: what a signal interrupts
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        else:
            log("streaming: not in the main thread; SIGTERM/SIGINT will not stop the job cleanly")
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        self.request(f"signal {name}")
        what, _, key = self.phase.partition(" ")
        if what == "train":
            doing = f"finishing the training of {key} (checkpoint + state), then stopping"
        elif what == "test":
            doing = (f"abandoning the test phase of {key}; it stays untrained and is tested and trained "
                     f"when the job starts again")
        else:
            doing = "stopping before the next unit"
        log(f"streaming: {name} received - {doing}; send {name} again to stop at once")
        signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


# -- the log ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars to Python, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class StreamLog:
    """``<model_dir>/streaming_log.jsonl``: one JSON record per line (start, unit, stop, ...)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        import tensorflow as tf

        line = json.dumps(_plain(dict(record, time=round(time.time(), 3))), sort_keys=True) + "\n"
        try:
            with tf.io.gfile.GFile(self.path, "a") as f:
                f.write(line)
        except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):  # no append (object stores)
            old = self.read_text()
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(old + line)

    def read_text(self) -> str:
        import tensorflow as tf

        if not tf.io.gfile.exists(self.path):
            return ""
        with tf.io.gfile.GFile(self.path, "r") as f:
            return f.read()

    def records(self) -> list[dict]:
        """All well-formed records (a line torn by a kill is skipped)."""
        out = []
        for line in self.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


# -- the job ------------------------------------------------------------------------------------
class StreamingJob:
    """Drives one :class:`~infnet_tf.training.trainer.Trainer` over a :class:`Source`."""

    def __init__(self, trainer, source: Source, config: StreamingConfig, stop: StopRequest,
                 export_hook: ExportHook | None = None) -> None:
        self.trainer = trainer
        self.source = source
        self.config = config
        self.stop = stop
        self.export_hook = export_hook
        self.model_dir = trainer.model_dir.rstrip("/")
        self.state_file = state_path(self.model_dir)
        self.log = StreamLog(f"{self.model_dir}/{LOG_FILE}")
        self.is_chief = getattr(trainer, "is_chief", True)
        self.state = self._restore()
        self.progress = CheckpointedProgress(trainer.checkpoint)
        self._export_missing_logged = False
        self.units_done = 0                                   # units trained in this run

    # -- start: restore and reconcile ----------------------------------------------------------
    def _restore(self) -> StreamingState:
        on_disk = load_state(self.state_file)
        self.trainer.restore_latest()
        ckpt = self.trainer.restored_checkpoint   # the newest *readable* one (see restore_latest)
        state, notes = reconcile(read_checkpointed_state(ckpt), on_disk, ckpt)
        state = dataclasses.replace(state, source=self.source.name)
        for note in notes:
            log(f"streaming: {note}")
        if self.is_chief:
            if notes or on_disk is None:
                save_state(self.state_file, state)
            self._log_recovered(state)
        log(f"streaming: starting at global step {self.trainer.global_step} with {len(state.consumed)} "
            f"unit(s) already trained (source {self.source.name}, state {self.state_file})")
        if self.is_chief:
            self.log.append({"event": "start", "global_step": self.trainer.global_step,
                             "consumed": len(state.consumed), "checkpoint": ckpt, "notes": notes})
        return state

    def _log_recovered(self, state: StreamingState) -> None:
        """Units the checkpoint holds but the log missed (killed between state and log): log them."""
        logged = {r.get("key") for r in self.log.records() if r.get("event") == "unit"}
        for entry in state.consumed:
            if entry.key not in logged:
                self.log.append({"event": "unit", "key": entry.key, "global_step": entry.global_step,
                                 "records": entry.records, "offsets": entry.offsets,
                                 "checkpoint": entry.checkpoint, "recovered": True})

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> dict:
        reason = "caught up"
        caught_up = False
        self.source.bind(self.state)
        while True:
            if self.stop.is_set():
                reason = self.stop.reason or "stop requested"
                break
            if self.config.max_partitions and self.units_done >= self.config.max_partitions:
                reason = f"max_partitions={self.config.max_partitions} reached"
                break
            unit = self.source.next_unit(self.state)
            if unit is None:
                if not self.config.follow:
                    caught_up = True
                    break
                self.stop.wait(self.config.poll_interval_s)
                continue
            if self.process(unit):
                self.units_done += 1
        summary = {"units": self.units_done, "total_units": len(self.state.consumed),
                   "global_step": self.trainer.global_step, "stop_reason": reason, "caught_up": caught_up,
                   "state_file": self.state_file, "checkpoint": self.state.checkpoint}
        log(f"streaming: stopped ({reason}): {self.units_done} unit(s) trained in this run, "
            f"{len(self.state.consumed)} in total, global step {self.trainer.global_step}")
        self.trainer.summaries.flush()   # an image drawn in a test phase that no checkpoint followed
        if self.is_chief:
            self.log.append(dict(summary, event="stop"))
        return summary

    def process(self, unit: Unit) -> bool:
        """Test, train, checkpoint, record, commit one unit; False when stopped before training."""
        trainer = self.trainer
        index = len(self.state.consumed) + 1
        step_before = trainer.global_step
        start = time.perf_counter()
        log(f"streaming: [{index}] {unit.key}: {unit.description} - test, then train "
            f"(global step {step_before})")
        test_ds = unit.dataset(False)
        self.stop.phase = f"test {unit.key}"
        with self._naming_bad_files(unit, "test"):
            test = self._test(test_ds, attention=self.units_done == 0 or self._exports_after(index))
        if self.stop.is_set():
            self.stop.phase = "idle"
            log(f"streaming: stop requested during the test phase of {unit.key}; it stays untrained "
                f"and is tested and trained on the next start")
            return False
        self.stop.phase = f"train {unit.key}"
        train_ds = unit.dataset(True)
        with self._naming_bad_files(unit, "train"):
            train = trainer.train_on(train_ds) if train_ds is not None else {"steps": 0, "examples": 0}
        if unit.partition is not None and unit.records is not None:   # before the checkpoint marking it consumed
            unit.partition.check_rows(int(train.get("examples", 0)), unit.records)
        entry = ConsumedEntry(key=unit.key, global_step=trainer.global_step,
                              records=int(train.get("examples", 0)), offsets=unit.offsets)
        state = self.state.with_entry(entry, unit.next_offsets)
        self.progress.set(state)
        path = trainer.save_checkpoint()                       # 3. the source of truth
        state = state.with_checkpoint(path)
        self.state = state
        seconds = time.perf_counter() - start
        if self.is_chief:
            save_state(self.state_file, state)                 # 4. after the checkpoint
            self.log.append({"event": "unit", "key": unit.key, "index": index,
                             "global_step_before": step_before, "global_step": trainer.global_step,
                             "records": entry.records, "offsets": unit.offsets, "checkpoint": path,
                             "test": test, "train": train, "seconds": seconds})
        self.source.commit(unit)                               # 6. Kafka offsets, after all that
        trainer.write_scalars(TRAIN_PREFIX, {"loss": train.get("loss", float("nan")),
                                             "examples": train.get("examples", 0),
                                             "examples_per_sec": train.get("examples_per_sec", 0.0)})
        log(f"streaming: [{index}] {unit.key} consumed - steps {step_before}->{trainer.global_step}, "
            f"{entry.records} examples, train loss {train.get('loss', float('nan')):.4f}"
            + "".join(f", test {t} auc {m.get('auc', float('nan')):.4f}" for t, m in test.items())
            + f" ({seconds:.1f}s)")
        self.stop.phase = "idle"
        self._maybe_export(unit.key)
        return True

    @staticmethod
    def _naming_bad_files(unit: Unit, what: str):
        """Name the corrupt file when reading a file unit fails (Kafka units have no files)."""
        if unit.partition is None:
            return contextlib.nullcontext()
        from infnet_tf.input import naming_bad_files

        return naming_bad_files(unit.partition, f"streaming {what} of {unit.key}")

    def _test(self, dataset, attention: bool) -> dict:
        """Progressive validation of the model as it is before training on ``dataset``: metrics
        printed and written to TensorBoard as ``stream_test/...``; the attention image only when
        ``attention`` (the first unit of a run and every export)."""
        if dataset is None:
            return {}
        return self.trainer.evaluate(dataset, log_prefix=TEST_PREFIX, attention=attention)

    def _exports_after(self, count: int) -> bool:
        every = self.config.export_every
        return bool(every) and count % every == 0

    def _maybe_export(self, key: str) -> None:
        if not self._exports_after(len(self.state.consumed)) or not self.is_chief:
            return
        if self.export_hook is None:
            if not self._export_missing_logged:
                log("streaming: export_every is set but no export hook was given; skipping exports")
                self._export_missing_logged = True
            return
        try:
            result = self.export_hook(self.trainer, key)
            self.log.append({"event": "export", "key": key, "global_step": self.trainer.global_step,
                             "result": str(result)})
            log(f"streaming: exported after {key}: {result}")
        except Exception as exc:  # noqa: BLE001 - training progress is saved; the next export retries
            traceback.print_exc()
            self.log.append({"event": "export_failed", "key": key, "error": f"{type(exc).__name__}: {exc}"})
            log(f"streaming: EXPORT FAILED after {key}: {type(exc).__name__}: {exc} (training continues)")


# -- entry point --------------------------------------------------------------------------------
def make_source(config: StreamingConfig, trainer, data_dir: str | None) -> Source:
    batch_size = config.batch_size or trainer.config.batch_size
    if config.source == "kafka":
        from infnet_tf.training.kafka_source import KafkaSource  # confluent-kafka only when used

        return KafkaSource(trainer.layout, servers=config.kafka_servers, topic=config.kafka_topic,
                           group=config.kafka_group, timeout_s=config.kafka_timeout_s,
                           chunk_messages=config.kafka_chunk_messages, batch_size=batch_size,
                           follow=config.follow, shuffle=trainer.config.shuffle,
                           seed=trainer.config.seed, consumer_config=kafka_settings(config.kafka_config))
    if not data_dir:
        raise ValueError("streaming: --data is required with --source=files")
    return FileSource(f"{data_dir.rstrip('/')}/train", trainer.layout, batch_size,
                      shuffle=trainer.config.shuffle, deterministic=trainer.config.deterministic,
                      seed=trainer.config.seed, wait_for_incomplete=config.follow, log=log)


def run_streaming(trainer, data_dir: str | None = None, config: StreamingConfig | None = None, *,
                  export_hook: ExportHook | None = None, source: Source | str | None = None,
                  stop: StopRequest | None = None, **options: Any) -> dict:
    """Streaming training (see the module docstring); returns a summary of the run.

    Args:
      trainer: a :class:`~infnet_tf.training.trainer.Trainer` (restored here from its latest checkpoint).
      data_dir: the dataset job's output (``<data_dir>/train`` holds the partitions); unused for Kafka.
      config: a :class:`StreamingConfig`; or pass its fields as keyword ``options`` (the CLI flags).
      export_hook: ``hook(trainer, unit_key)``, called every ``export_every`` units (the job that starts
        training passes it: ``python -m infnet_tf.train`` builds it from ``export.exporter``); None: no exports.
      source: a ready :class:`~infnet_tf.training.sources.Source` object (tests), or the source name.
    """
    if isinstance(source, str):
        options["source"] = source
        source = None
    if config is None:
        config = StreamingConfig.from_kwargs(**options)
    elif options:
        config = dataclasses.replace(config, **options)
    src = source or make_source(config, trainer, data_dir)
    try:
        with (stop or StopRequest()) as stop_request:
            return StreamingJob(trainer, src, config, stop_request, export_hook).run()
    finally:
        src.close()
