"""The Trainer: one model, its optimizers, a distributed train step, evaluation and checkpoints.

Batch mode (:mod:`infnet_tf.training.batch`) and streaming mode (:mod:`infnet_tf.training.streaming`)
drive the same object::

    trainer = Trainer(layout, model_config, train_config, model_dir)
    trainer.restore_latest()                       # -> bool
    stats = trainer.train_on(dataset, max_steps=None)
    metrics = trainer.evaluate(dataset, log_prefix="valid")
    trainer.save_checkpoint()                      # -> checkpoint path

``dataset`` is what :func:`infnet_tf.input.make_dataset` yields: batches of ``(features, labels)``
at the *global* batch size; the strategy splits each batch across its replicas.

Train step (``tf.function``, ``strategy.run`` per replica): forward pass, multi-task loss (eq. 12)
with each task's BCE summed over the replica's rows and divided by the *global* batch's labelled
rows (counts all-reduced first; regularisation losses divided by the number of replicas), loss
scaling under mixed_float16, gradients summed across replicas (= one device's gradients), clipped
by global norm, then applied by the composite optimizer (dense Adam + embedding Adagrad/Adam); then,
still per replica, the weights' moving average takes its step (each replica its own copy). A
non-finite loss raises :class:`NonFiniteLossError` before anything is saved.

Checkpoints (``<model_dir>/checkpoints``, the last ``keep_checkpoints``) hold the model, the
optimizers' slots, the global step and, with ``weight_average_decay`` on, the moving average of the
weights (:mod:`infnet_tf.training.weight_average`), which every evaluation uses. TensorBoard goes to
``<model_dir>/tensorboard``.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Mapping

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.data.keys import USER_KEY
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.input import model_inputs
from infnet_tf.layers.tokenizers import bind_dropout_seeds
from infnet_tf.metrics import MetricCollector
from infnet_tf.models import ModelConfig, build_model
from infnet_tf.models.cost import param_count
from infnet_tf.data.tensors import placeholder_inputs
from infnet_tf.models.losses import labelled_count, multitask_loss
from infnet_tf.data import fs
from infnet_tf.data.fs import ensure_filesystem
from infnet_tf.precision import bfloat16_hint, cpu_bfloat16_flags, set_precision
from infnet_tf.training.attention import attention_table
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.coordinated import sharded_tables, train_fed
from infnet_tf.training.distribution import (describe, is_parameter_server, make_strategy, worker_count_and_index,
                                             worker_files)
from infnet_tf.training.optimizers import build_optimizer, learning_rates, loss_scale_optimizer
from infnet_tf.training.recipe import resolve
from infnet_tf.training.started_input import StartedInput
from infnet_tf.training.summaries import SummaryWriter, heatmap_png
from infnet_tf.training.weight_average import CHECKPOINT_KEY as AVERAGE_KEY, WeightAverage
from infnet_tf.training.weight_average import matches as average_matches

CHECKPOINT_SUBDIR = "checkpoints"
TENSORBOARD_SUBDIR = "tensorboard"
CONFIG_FILE = "trainer_config.json"
_USER_HASH_BUCKETS = 2**62
ATTENTION_ROWS = 256  # examples averaged into the attention image (an eager forward pass)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; nothing was saved after the last good checkpoint."""


def log(line: str) -> None:
    print(line, flush=True)


def format_progress(step: int, seconds: float, loss: float, task_losses: Mapping[str, float],
                    examples_per_sec: float) -> str:
    """Keras-style progress line: ``step 200 - 12s - loss: 0.5123 - click_loss: 0.4100 - 5,321 ex/s``."""
    parts = [f"step {step}", f"{seconds:.0f}s", f"loss: {loss:.4f}"]
    parts += [f"{t}_loss: {v:.4f}" for t, v in task_losses.items()]
    parts.append(f"{examples_per_sec:,.0f} ex/s")
    return " - ".join(parts)


def format_metrics(prefix: str, metrics: Mapping[str, Mapping[str, float]]) -> str:
    """``valid - click: auc 0.7120 gauc 0.6511 logloss 0.4410 pred/label 0.312/0.305 (n=1024) - ...``."""
    parts = [prefix]
    for task, m in metrics.items():
        parts.append(f"{task}: auc {m['auc']:.4f} gauc {m['gauc']:.4f} logloss {m['logloss']:.4f} "
                     f"pred/label {m['pred_mean']:.3f}/{m['label_mean']:.3f} (n={m['count']})")
    return " - ".join(parts)


class Trainer:
    """Builds the model under the distribution strategy and trains, evaluates and checkpoints it.

    Args:
      layout: the model-input layout (from the transform artifact).
      model_config: which model and its hyperparameters.
      train_config: optimizers, batch size, precision, strategy, ...
      model_dir: checkpoints, TensorBoard logs and ``trainer_config.json`` go here (local or s3://).
    """

    def __init__(self, layout: FeatureLayout, model_config: ModelConfig, train_config: TrainConfig,
                 model_dir: str):
        self.layout = layout
        self.model_config = model_config
        train_config = resolve(train_config, None, log=log)  # automatic settings without data to size them by
        self.config = train_config
        self.model_dir = model_dir.rstrip("/")
        ensure_filesystem(self.model_dir)
        self.precision = set_precision(train_config.precision)
        if train_config.deterministic:
            tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(train_config.seed)
        self.strategy = make_strategy(train_config.strategy, train_config.ps_shards,
                                      train_config.ps_min_shard_bytes)
        self.coordinator = (tf.distribute.experimental.coordinator.ClusterCoordinator(self.strategy)
                            if is_parameter_server(self.strategy) else None)
        self.task_weights = {t.name: float(t.weight) for t in layout.tasks}
        with self.strategy.scope():
            self.model = build_model(layout, model_config)
            self.model(placeholder_inputs(layout), training=False)  # every variable exists before the optimizer
            self.optimizer = build_optimizer(self.model, train_config)
            self._global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            # id dropout's masks keyed on (seed, global step): a resumed run draws the same masks
            seed = tf.constant(train_config.seed, tf.int64)
            bind_dropout_seeds(self.model, lambda: tf.stack([seed, self._global_step.read_value()]))
            self.average = None
            if train_config.weight_average_decay and self.coordinator is not None:
                # the PS tasks hold the variables in shards that the one-process export cannot match to
                # averages kept per shard: not supported yet, so evaluation and export see the same weights
                log("trainer: weight averaging is not supported with parameter_server (yet); evaluating and "
                    "exporting the trained weights")
            elif train_config.weight_average_decay:
                self.average = WeightAverage(self.model, train_config.weight_average_decay,
                                             train_config.weight_average_embeddings)
        tracked = {"model": self.model, "optimizer": self.optimizer, "global_step": self._global_step}
        if self.average is not None:
            tracked[AVERAGE_KEY] = self.average.trackable
        self._tracked = tracked
        self.checkpoint = tf.train.Checkpoint(**tracked)
        self.checkpoint_dir = self.worker_path(CHECKPOINT_SUBDIR)
        self._manager = tf.train.CheckpointManager(self.checkpoint, self.checkpoint_dir,
                                                   max_to_keep=train_config.keep_checkpoints,
                                                   checkpoint_name="ckpt")
        self.summaries = SummaryWriter(fs.join(self.model_dir, TENSORBOARD_SUBDIR), enabled=self.is_chief)
        # autograph off: the step has no tensor-dependent Python control flow, and converting the
        # Keras/TFRS optimizer code costs ~20 s per trace on our CPUs.
        self._train_fn = tf.function(self._distributed_train_step, reduce_retracing=True, autograph=False)
        self._predict_fn = tf.function(self._distributed_predict_step, reduce_retracing=True,
                                       autograph=False)
        self._local_predict_fn = tf.function(lambda f, l, u: (self.model(f, training=False), l, u),
                                             reduce_retracing=True, autograph=False)
        self.restored_checkpoint: str | None = None   # the checkpoint the weights came from
        self.last_eval_examples = 0          # examples of the latest evaluate() (manifest row checks)
        self._output_biases_done = False     # init_output_biases runs once
        self._write_config()
        log(f"trainer: model {model_config.model} ({param_count(self.model):,} parameters), "
            f"precision {self.precision}, {describe(self.strategy)}, global batch {train_config.batch_size}")
        hint = bfloat16_hint(train_config.precision, self.precision, cpu_bfloat16_flags())
        if hint:
            log(hint)
        if self.coordinator is not None:
            tables = sharded_tables(self.model)
            log(f"trainer: {len(tables)} embedding table(s) sharded over "
                f"{self.strategy.extended._num_ps} PS task(s): "  # noqa: SLF001 - no public count
                + (", ".join(f"{name} ({n} shards)" for name, n in tables) or "none (all below "
                   f"--ps_min_shard_bytes={train_config.ps_min_shard_bytes})"))

    # -- state ---------------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """Train steps taken so far (restored with the checkpoint)."""
        return int(self._global_step.numpy())

    @property
    def is_chief(self) -> bool:
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or not resolver.task_type:
            return True
        return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                                 and "chief" not in resolver.cluster_spec().as_dict())

    @property
    def num_workers(self) -> int:
        """Workers training together (MultiWorkerMirroredStrategy from TF_CONFIG); 1 otherwise."""
        return worker_count_and_index(self.strategy)[0]

    @property
    def is_single_process(self) -> bool:
        """Training runs in this process alone (no parameter-server chief, no worker of several)."""
        return self.coordinator is None and self.num_workers == 1

    def input_files(self, files: list[str]) -> tuple[list[str], tf.data.Options]:
        """This worker's share of the train ``files`` and the tf.data options for its dataset
        (see :func:`infnet_tf.training.distribution.worker_files`)."""
        return worker_files(self.strategy, files)

    def worker_path(self, name: str) -> str:
        """Chief writes ``<model_dir>/name``; other workers a private scratch copy (MWMS saves on all)."""
        if self.is_chief:
            return fs.join(self.model_dir, name)
        resolver = self.strategy.cluster_resolver
        return fs.join(self.model_dir, "workers", f"{resolver.task_type}{resolver.task_id}", name)

    def _write_config(self) -> None:
        if not self.is_chief:
            return
        tf.io.gfile.makedirs(self.model_dir)
        payload = {"layout": self.layout.to_dict(), "model_config": self.model_config.to_dict(),
                   "train_config": self.config.to_dict(), "precision": self.precision}
        with tf.io.gfile.GFile(fs.join(self.model_dir, CONFIG_FILE), "w") as f:
            f.write(json.dumps(payload, indent=2, sort_keys=True))

    def learning_rates(self) -> dict[str, float]:
        return learning_rates(self.optimizer)

    # -- training ------------------------------------------------------------------------------
    def _replica_step(self, features, labels):
        num_replicas = self.strategy.num_replicas_in_sync
        scaler = loss_scale_optimizer(self.optimizer)
        variables = self.model.trainable_variables
        labelled = self._global_labelled(labels) if num_replicas > 1 else None
        with tf.GradientTape() as tape:
            probs = self.model(features, training=True)
            # each task's mean over the whole global batch's labelled rows: replicas' gradients then sum
            # to one device's even when the replicas' shares hold different numbers of labels
            # (one replica: its own batch's counts, labelled=None)
            replica_loss, task_losses = multitask_loss(labels, probs, self.task_weights, labelled)
            if self.model.losses:
                replica_loss += tf.add_n([tf.cast(x, tf.float32) for x in self.model.losses]) / num_replicas
            scaled = scaler.get_scaled_loss(replica_loss) if scaler else replica_loss
        grads = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = [g for g, _ in pairs]
        if scaler:
            grads = scaler.get_unscaled_gradients(grads)
        if num_replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.config.clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.config.clip_norm)
        # summed above; ParameterServerStrategy (one replica per worker) only accepts True
        self.optimizer.apply_gradients(zip(grads, [v for _, v in pairs]),
                                       experimental_aggregate_gradients=self.coordinator is not None)
        if self.average is not None:   # in replica context: every replica updates its own copy of the shadows
            self.average.update(self._global_step)
        batch = tf.shape(next(iter(labels.values())))[0]
        return replica_loss, task_losses, batch

    def _global_labelled(self, labels: Mapping) -> dict[str, tf.Tensor]:
        """{task: labelled rows of the global batch}: this replica's counts summed over the replicas in
        sync (one all-reduce); inside a replica step."""
        tasks = sorted(self.task_weights)
        local = tf.stack([labelled_count(labels[t]) for t in tasks])
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
        return {t: total[i] for i, t in enumerate(tasks)}

    def _distributed_train_step(self, features, labels):
        loss, task_losses, batch = self.strategy.run(self._replica_step, args=(features, labels))
        total = lambda x: self.strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)  # noqa: E731
        self._global_step.assign_add(1)
        return total(loss), {t: total(v) for t, v in task_losses.items()}, total(batch)

    def _distribute(self, dataset: tf.data.Dataset) -> "tf.distribute.DistributedDataset":
        return self.strategy.experimental_distribute_dataset(dataset)

    @property
    def _is_default_strategy(self) -> bool:
        """No distribution: the default strategy, outside any strategy scope."""
        return self.strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()

    @staticmethod
    def _trace_any_batch(fn, *specs) -> None:
        """Trace ``fn`` once for any batch size (dimension 0 of every spec left open) before its first
        call. ``reduce_retracing`` alone traces the concrete batch first and again, relaxed, at the
        first partial batch -- every pass over data whose rows are not a multiple of the batch size;
        a trace of INFNet's train step (d=32, 2 blocks) takes ~3 s on 2 cores. The relaxed step runs
        as fast as the concrete one (5,596 vs 5,644 ex/s, same batch, interleaved)."""
        if fn.experimental_get_tracing_count():
            return

        def any_batch(spec):
            if isinstance(spec, tf.TensorSpec) and spec.shape.rank:
                return tf.TensorSpec(tf.TensorShape([None]).concatenate(spec.shape[1:]), spec.dtype, spec.name)
            return spec

        fn.get_concrete_function(*tf.nest.map_structure(any_batch, specs))

    def _model_input_batches(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """``dataset`` with only the model's inputs in its features (meta such as ``user_key`` dropped);
        a dataset parsed without meta (``make_dataset(..., with_meta=False)``) is used as it is, which
        spares a map (its trace costs ~0.07 s per pass on our CPUs)."""
        if set(dataset.element_spec[0]) == set(self.layout.model_input_keys()):
            return dataset
        # no AutoGraph: the map has no tensor-dependent control flow, and converting model_inputs
        # costs seconds per pass on our CPUs
        return dataset.map(tf.autograph.experimental.do_not_convert(lambda f, l: (model_inputs(self.layout, f), l)))

    def start_pass(self, dataset: tf.data.Dataset) -> StartedInput:
        """``dataset``'s batches as :meth:`train_on` reads them, their iterator and first batch already
        being fetched on a background thread (:mod:`infnet_tf.training.started_input`): start the next
        pass while this one checkpoints and evaluates. One process only (not under a cluster)."""
        if not self.is_single_process:
            raise ValueError("start_pass: one process only (not a parameter-server chief or a worker of several)")
        inputs = self._model_input_batches(dataset)
        batches = self._distribute(inputs)
        return StartedInput(inputs.element_spec, lambda: iter(batches))

    def train_on(self, dataset: tf.data.Dataset | StartedInput, max_steps: int | None = None) -> dict:
        """One pass over ``dataset`` (at most ``max_steps`` steps); returns the pass's statistics.
        ``dataset`` may be a :meth:`start_pass` of it.

        Returns ``{"steps", "examples", "loss" (mean over steps), "last_loss", "task_losses" (means),
        "seconds", "examples_per_sec", "global_step"}``. Every ``log_every`` global steps a progress
        line is printed and ``train/*`` scalars are written. Raises :class:`NonFiniteLossError` as
        soon as a step's loss is NaN/inf (nothing is saved by this method).
        """
        if isinstance(dataset, StartedInput):   # already mapped to model inputs and distributed
            spec, batches = dataset.element_spec, dataset
        else:
            inputs = self._model_input_batches(dataset)
            if self.coordinator is not None:   # parameter_server: the chief feeds each batch to a worker
                stats = train_fed(self, inputs, max_steps)
                if stats["steps"] == 0:
                    log("train: the dataset yielded no batch (nothing trained)")
                return stats
            spec, batches = inputs.element_spec, self._distribute(inputs)
        if self._is_default_strategy:
            self._trace_any_batch(self._train_fn, *spec)
        tasks = self.layout.task_names
        steps = examples = 0
        loss_sum, last_loss = 0.0, float("nan")
        task_sums = dict.fromkeys(tasks, 0.0)
        window = {"start": time.perf_counter(), "examples": 0}
        start = time.perf_counter()
        for features, labels in batches:
            if max_steps is not None and steps >= max_steps:
                break
            if steps == 0:
                self.init_output_biases(labels)
            loss, task_losses, batch = self._train_fn(features, labels)
            last_loss = float(loss)
            step = self.global_step
            task_values = {t: float(task_losses[t]) for t in tasks}
            if not math.isfinite(last_loss):
                raise NonFiniteLossError(
                    f"non-finite training loss {last_loss} at global step {step} (per task: "
                    f"{task_values}); stopped before saving, so the last good checkpoint "
                    f"({self._manager.latest_checkpoint or 'none yet'}) is intact. Lower "
                    f"--learning_rate/--embedding_learning_rate, set --clip_norm, or check the data.")
            steps += 1
            examples += int(batch)
            window["examples"] += int(batch)
            loss_sum += last_loss
            for t in tasks:
                task_sums[t] += task_values[t]
            if step % self.config.log_every == 0:
                now = time.perf_counter()
                rate = window["examples"] / max(now - window["start"], 1e-9)
                window.update(start=now, examples=0)
                log(format_progress(step, now - start, last_loss, task_values, rate))
                self.write_scalars("train", {"loss": last_loss, "loss_per_task": task_values,
                                             "examples_per_sec": rate,
                                             "learning_rate": self.learning_rates()}, step)
        seconds = time.perf_counter() - start
        stats = {
            "steps": steps,
            "examples": examples,
            "loss": loss_sum / steps if steps else float("nan"),
            "last_loss": last_loss,
            "task_losses": {t: task_sums[t] / steps if steps else float("nan") for t in tasks},
            "seconds": seconds,
            "examples_per_sec": examples / seconds if seconds > 0 else 0.0,
            "global_step": self.global_step,
        }
        if steps == 0:
            log("train: the dataset yielded no batch (nothing trained)")
        return stats

    def init_output_biases(self, labels: Mapping) -> dict[str, float]:
        """``output_bias_init=prior``: before a new model's first step (global step 0), set each task's
        output bias to logit(p), p = (positives + 1) / (labelled + 2) in this first batch ``labels``;
        returns {task: p} ({} when not applied). Per-replica labels are summed over every replica and
        worker (one all-reduce), so all replicas set the same bias. Runs once per trainer; a resumed
        model (global step > 0) keeps its weights."""
        if self._output_biases_done or self.config.output_bias_init != "prior" or self.global_step != 0:
            return {}
        self._output_biases_done = True
        layers = self.model.output_layers() if hasattr(self.model, "output_layers") else {}
        rates = {}
        for task, (positives, labelled) in self._label_counts(labels, tuple(layers)).items():
            rates[task] = p = (positives + 1.0) / (labelled + 2.0)
            layers[task].bias.assign(np.full(layers[task].bias.shape, math.log(p / (1.0 - p)), dtype=np.float32))
        if rates and self.average is not None:
            self.average.reset()   # the average starts at the weights training starts from
        if rates:
            log("trainer: output biases set to the first batch's positive rates (--output_bias_init=prior): "
                + ", ".join(f"{t} {p:.4f}" for t, p in rates.items()))
        return rates

    def _label_counts(self, labels: Mapping, tasks: tuple[str, ...]) -> dict[str, tuple[float, float]]:
        """{task: (positives, labelled)} of a label batch; per-replica batches are summed over every replica
        and worker by one all-reduce of all tasks' counts."""
        if not tasks:
            return {}

        def counts(*ys):
            return tf.stack([tf.stack([tf.reduce_sum(tf.cast(tf.equal(y, 1), tf.float32)),
                                       labelled_count(y)]) for y in ys])   # [tasks, 2]

        ys = tuple(labels[t] for t in tasks)
        if isinstance(ys[0], tf.distribute.DistributedValues):
            total = self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(counts, args=ys), axis=None)
        else:
            total = counts(*(tf.convert_to_tensor(y) for y in ys))
        return {t: (float(pos), float(n)) for t, (pos, n) in zip(tasks, np.asarray(total))}

    # -- evaluation ----------------------------------------------------------------------------
    def _eval_inputs(self, features, labels):
        if USER_KEY in features:
            users = tf.strings.to_hash_bucket_fast(features[USER_KEY], _USER_HASH_BUCKETS)
        else:
            users = tf.fill(tf.shape(next(iter(labels.values()))), tf.constant(-1, tf.int64))
        return model_inputs(self.layout, features), labels, users

    def _distributed_predict_step(self, features, labels, users):
        return self.strategy.run(lambda f, l, u: (self.model(f, training=False), l, u),
                                 args=(features, labels, users))

    def predict_batches(self, dataset: tf.data.Dataset, max_steps: int | None = None):
        """Yields ``(probs, labels, user_hashes)`` as NumPy per replica chunk of every batch."""
        local = self.strategy.experimental_local_results
        self._first_eval_features = None
        predicts_locally = self._is_default_strategy or self.num_workers > 1 or self.coordinator is not None
        if predicts_locally:
            feature_spec, label_spec = dataset.element_spec
            self._trace_any_batch(self._local_predict_fn, model_inputs(self.layout, feature_spec), label_spec,
                                  tf.TensorSpec([None], tf.int64))
            # the default strategy, one worker of several (each predicts the whole split with the
            # mirrored weights: exact metrics, no cross-worker gather) or the parameter-server chief
            # (weights read from the PS tasks): iterate the batches as they come (no distributed
            # iterator, no traced map) and keep the first one's raw features for the attention image
            def batches():
                for raw_features, raw_labels in dataset:
                    if self._first_eval_features is None:
                        self._first_eval_features = raw_features
                    yield self._eval_inputs(raw_features, raw_labels)
            stream = batches()
        else:
            inputs = dataset.map(tf.autograph.experimental.do_not_convert(self._eval_inputs))  # see train_on
            stream = self._distribute(inputs)
        for i, (features, labels, users) in enumerate(stream):
            if max_steps is not None and i >= max_steps:
                break
            predict = self._local_predict_fn if predicts_locally else self._predict_fn
            probs, labels_out, users_out = predict(features, labels, users)
            for p, y, u in zip(local(probs), local(labels_out), local(users_out)):
                yield ({t: v.numpy() for t, v in p.items()}, {t: v.numpy() for t, v in y.items()},
                       u.numpy())

    def evaluate(self, dataset: tf.data.Dataset, max_steps: int | None = None,
                 log_prefix: str | None = None, attention: bool = True) -> dict[str, dict]:
        """Exact metrics over ``dataset``: ``{task: {auc, gauc, gauc_impression, logloss, pred_mean,
        label_mean, count}}``.

        With ``log_prefix`` the metrics are printed, written as TensorBoard scalars
        ``<log_prefix>/<task>/<metric>`` at the global step, and the attention image of the first
        batch (when the model exposes ``attention_weights``) is logged as ``<log_prefix>/attention``
        unless ``attention=False`` (the image costs about a second of matplotlib, drawn on the
        summaries' thread while the other batches are predicted: batch mode draws it for the first
        round and the test evaluation only). With weight averaging on, the averaged weights are
        evaluated (:meth:`evaluation_weights`).
        """
        with self.evaluation_weights():
            return self._evaluate(dataset, max_steps, log_prefix, attention)

    def _evaluate(self, dataset, max_steps, log_prefix, attention) -> dict[str, dict]:
        has_users = USER_KEY in dataset.element_spec[0]
        max_steps = max_steps if max_steps is not None else (self.config.eval_steps or None)
        collector = MetricCollector(self.layout.task_names)
        start = time.perf_counter()
        # only the chief writes TensorBoard; the image of the first batch is handed to the drawing thread
        # as soon as that batch is known, so it is drawn while the other batches are predicted
        image = bool(log_prefix) and attention and self.is_chief
        for probs, labels, users in self.predict_batches(dataset, max_steps):
            collector.update(probs, labels, users if has_users else None)
            if image and self._first_eval_features is not None:
                image = False
                self.log_attention(f"{log_prefix}/attention", self._first_eval_features)
        metrics = collector.result()
        self.last_eval_examples = collector.num_examples
        if log_prefix:
            log(format_metrics(f"{log_prefix} @ step {self.global_step}", metrics)
                + f" [{collector.num_examples} examples, {time.perf_counter() - start:.1f}s]")
            self.write_scalars(log_prefix, metrics)
        if image:   # a distributed evaluation keeps no raw features: read the first batch again
            batch = next(iter(dataset.take(1)), None)
            if batch is not None:
                self.log_attention(f"{log_prefix}/attention", batch[0])
        return metrics

    def evaluation_weights(self):
        """Context: the weights an evaluation (and the export) uses in the model's variables -- the
        averaged weights when ``--weight_average_decay`` is on, the raw ones otherwise."""
        return self.average.swapped() if self.average is not None else contextlib.nullcontext()

    # -- TensorBoard ---------------------------------------------------------------------------
    def write_scalars(self, prefix: str, metrics: Mapping, step: int | None = None) -> dict[str, float]:
        """Write (nested) numeric ``metrics`` as ``<prefix>/<key>[/<key>...]`` at ``step`` (default:
        the global step); returns the flattened values written."""
        return self.summaries.scalars(prefix, metrics, self.global_step if step is None else step)

    def attention_image(self, features: Mapping[str, tf.Tensor]) -> bytes | None:
        """PNG heat map of the task hubs' attention over input tokens (paper Fig. 5; last block, mean
        over heads and the first ATTENTION_ROWS examples, sequences summed per behaviour type); None
        when the model has none."""
        render = self._attention_render(features)
        return None if render is None else render()

    def _attention_render(self, features):
        """The forward pass of :meth:`attention_image` now, with the weights in the model now; its
        drawing as a function to call later (on any thread); None when the model has no task-hub
        attention."""
        if not hasattr(self.model, "attention_weights"):
            return None
        inputs = {k: v[:ATTENTION_ROWS] for k, v in model_inputs(self.layout, features).items()}
        try:
            weights = self.model.attention_weights(inputs)
        except ValueError:  # this configuration has no task-hub attention (e.g. aggregation=off)
            return None
        matrix, rows, cols = attention_table(weights, self.layout, self.model_config.task_hub_parts[0])
        title = f"task hubs × input tokens, last block (step {self.global_step})"
        return lambda: heatmap_png(matrix, rows, cols, title=title)

    def log_attention(self, name: str, features: Mapping[str, tf.Tensor], step: int | None = None) -> bool:
        """Write :meth:`attention_image` to TensorBoard as ``name``; False when unsupported.

        The forward pass runs here (with the evaluation weights); the drawing and the write run on
        the summaries' background thread (:meth:`SummaryWriter.image_later`), so training goes on
        meanwhile; the next checkpoint (or ``metrics.json``) waits for the image."""
        with self.evaluation_weights():
            render = self._attention_render(features)
        if render is None:
            return False
        self.summaries.image_later(name, render, self.global_step if step is None else step)
        return True

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> str:
        """Save model, optimizer slots and global step; returns the checkpoint path."""
        path = self._manager.save(checkpoint_number=self.global_step)
        self.summaries.flush()
        log(f"checkpoint: saved {path} (global step {self.global_step})")
        return path

    @property
    def latest_checkpoint(self) -> str | None:
        return self._manager.latest_checkpoint

    def restore(self, path: str) -> None:
        """Restore a given checkpoint (model, optimizer slots, global step, weight averages). A
        checkpoint without these averages (averaging was off, or it averaged another set of weights)
        starts them at its weights."""
        if self.average is not None and not average_matches(self.average.variables, path):
            tracked = {k: v for k, v in self._tracked.items() if k != AVERAGE_KEY}
            tf.train.Checkpoint(**tracked).restore(path).assert_existing_objects_matched()
            self.average.reset()
            log(f"checkpoint: {path} holds no averages of these weights; the average starts at its weights")
        else:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        self.restored_checkpoint = path
        log(f"checkpoint: restored {path} (global step {self.global_step})")

    def restore_latest(self) -> bool:
        """Restore the newest readable checkpoint in ``<model_dir>/checkpoints``; False when there is none.

        A newest checkpoint that cannot be read (truncated or missing data file, e.g. a disk that
        filled up) is skipped with a warning naming it and the one restored instead; when no kept
        checkpoint is readable the first error is raised.
        """
        candidates = list(reversed(self._manager.checkpoints))
        if not candidates:
            return False
        first_error = None
        for i, path in enumerate(candidates):
            try:
                self.restore(path)
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as exc:
                detail = (getattr(exc, "message", None) or str(exc)).splitlines()[0][:200]
                first_error = first_error or exc
                fallback = candidates[i + 1] if i + 1 < len(candidates) else None
                log(f"checkpoint: WARNING: {path} cannot be restored ({type(exc).__name__}: {detail}); "
                    + (f"falling back to {fallback}" if fallback else "no older checkpoint is left"))
                continue
            return True
        raise first_error

