"""Training under ``ParameterServerStrategy``: a ``ClusterCoordinator`` on the chief schedules train
steps on the workers; the variables (embedding tables partitioned, see
:func:`infnet_tf.training.distribution.variable_partitioner`) live on the PS tasks.

Each worker builds its own input pipeline (``create_per_worker_dataset``): the train files,
repeated forever and shuffled with a seed of its own (``ParameterServerStrategy`` gives the dataset
function no worker index, so workers cannot split the files among themselves; different seeds
keep them from reading the same rows in the same order). The chief schedules exactly
``train_steps`` steps; this counts examples, it does not promise that each row is read exactly once.

A worker that dies mid-run does not stop training: the coordinator reschedules its pending steps
on the remaining workers (and re-creates its dataset when it comes back), so the step count is
still exact. Losses are fetched every ``log_every`` steps (the progress line) and at the end.

Epochs (batch mode without ``train_steps``), streaming mode and any other one-pass
:meth:`Trainer.train_on` under this strategy use :func:`train_fed` instead: the chief reads the partition and schedules each batch as one step, so
every batch of a partition is trained once whichever worker runs it (exact per-partition progress,
resumed from the chief's checkpoint as in one process), at the price of the chief's input
bandwidth.
"""
from __future__ import annotations

import math
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.input import model_inputs


def sharded_tables(model: tf.keras.Model) -> list[tuple[str, int]]:
    """``(name, shards)`` of the model's embedding tables partitioned into more than one shard."""
    out = []
    for module in model.submodules:
        if isinstance(module, tf.keras.layers.Embedding):
            table = getattr(module, "embeddings", None)
            shards = len(getattr(table, "variables", ())) if table is not None else 0
            if shards > 1:
                out.append((module.name, shards))
    return out


def per_worker_dataset(trainer, make_train_dataset):
    """The coordinator's per-worker dataset of ``make_train_dataset()`` mapped to model inputs.

    ``make_train_dataset``: builds an infinite (repeated) ``(features, labels)`` dataset; it runs
    once per worker on the chief and is then executed on that worker."""
    layout = trainer.layout

    def dataset_fn():
        ds = make_train_dataset()
        return ds.map(tf.autograph.experimental.do_not_convert(lambda f, l: (model_inputs(layout, f), l)))

    return trainer.coordinator.create_per_worker_dataset(dataset_fn)


class _Progress:
    """Results of scheduled steps -> the statistics of :meth:`Trainer.train_on` and its progress lines."""

    def __init__(self, trainer):
        self.trainer, self.tasks = trainer, trainer.layout.task_names
        self.steps = self.examples = self.window_examples = 0
        self.loss_sum, self.last_loss = 0.0, float("nan")
        self.task_sums = dict.fromkeys(self.tasks, 0.0)
        self.start = self.window_start = time.perf_counter()

    def add(self, remote_values) -> None:
        """Wait for ``remote_values`` (one per scheduled step), add them up, log when a line is due."""
        from infnet_tf.training.trainer import NonFiniteLossError, format_progress, log

        trainer = self.trainer
        trainer.coordinator.join()
        values = {}
        for value in remote_values:
            loss, task_losses, batch = value.fetch()
            self.last_loss = float(loss)
            if not math.isfinite(self.last_loss):
                raise NonFiniteLossError(
                    f"non-finite training loss {self.last_loss} at global step {trainer.global_step}; stopped "
                    f"before saving, so the last good checkpoint ({trainer.latest_checkpoint or 'none yet'}) is "
                    f"intact. Lower --learning_rate/--embedding_learning_rate, set --clip_norm, or check the data.")
            values = {t: float(task_losses[t]) for t in self.tasks}
            self.loss_sum += self.last_loss
            for t in self.tasks:
                self.task_sums[t] += values[t]
            self.steps += 1
            self.examples += int(batch)
            self.window_examples += int(batch)
        step = trainer.global_step
        if remote_values and step % trainer.config.log_every == 0:
            now = time.perf_counter()
            rate = self.window_examples / max(now - self.window_start, 1e-9)
            self.window_start, self.window_examples = now, 0
            log(format_progress(step, now - self.start, self.last_loss, values, rate))
            trainer.write_scalars("train", {"loss": self.last_loss, "loss_per_task": values,
                                            "examples_per_sec": rate, "learning_rate": trainer.learning_rates()},
                                  step)

    def chunk(self) -> int:
        """Steps to schedule before the next progress line is due."""
        every = self.trainer.config.log_every
        return every - self.trainer.global_step % every

    def stats(self) -> dict:
        seconds, n = time.perf_counter() - self.start, self.steps
        return {"steps": n, "examples": self.examples, "loss": self.loss_sum / n if n else float("nan"),
                "last_loss": self.last_loss,
                "task_losses": {t: self.task_sums[t] / n if n else float("nan") for t in self.tasks},
                "seconds": seconds, "examples_per_sec": self.examples / seconds if seconds > 0 else 0.0,
                "global_step": self.trainer.global_step}


def _step_fn(trainer, name: str, fn):
    if not hasattr(trainer, name):   # one traced function per trainer
        setattr(trainer, name, tf.function(fn, reduce_retracing=True, autograph=False))
    return getattr(trainer, name)


def train_scheduled(trainer, dataset, steps: int) -> dict:
    """Schedule ``steps`` train steps on the workers, each reading its own iterator of ``dataset``
    (from :func:`per_worker_dataset`); returns the same statistics as :meth:`Trainer.train_on`."""
    step_fn = _step_fn(trainer, "_worker_step", lambda it: trainer._distributed_train_step(*next(it)))  # noqa: SLF001
    iterator, progress = iter(dataset), _Progress(trainer)
    while progress.steps < steps:
        chunk = min(progress.chunk(), steps - progress.steps)
        progress.add([trainer.coordinator.schedule(step_fn, args=(iterator,)) for _ in range(chunk)])
    return progress.stats()


def train_fed(trainer, inputs: tf.data.Dataset, max_steps: int | None = None) -> dict:
    """One pass over ``inputs`` (model-input batches read by the chief), each batch scheduled as one
    step on whichever worker is free: every batch is trained once, even when a worker dies (the
    coordinator runs its unfinished steps again elsewhere). Streaming mode trains partitions this
    way; returns the same statistics as :meth:`Trainer.train_on`."""
    step_fn = _step_fn(trainer, "_fed_step", trainer._distributed_train_step)  # noqa: SLF001
    progress, pending = _Progress(trainer), []
    for i, (features, labels) in enumerate(inputs):
        if max_steps is not None and i >= max_steps:
            break
        if i == 0:
            trainer.init_output_biases(labels)     # before the first step is scheduled
        pending.append(trainer.coordinator.schedule(step_fn, args=(features, labels)))
        if len(pending) >= progress.chunk():
            progress.add(pending)
            pending = []
    progress.add(pending)
    return progress.stats()
