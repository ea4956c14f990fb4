"""``--strategy=auto|default|mirrored|multi_worker|parameter_server``: the ``tf.distribute`` strategy to train with.

* ``default``: no distribution (one device).
* ``mirrored``: synchronous data parallelism over this machine's GPUs; without GPUs, over the
  logical CPU devices (see :func:`split_cpu`; one CPU device means one replica).
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` (workers from ``TF_CONFIG``).
* ``parameter_server``: ``ParameterServerStrategy`` (chief, workers and ps tasks from ``TF_CONFIG``).
  Variables live on the PS tasks, partitioned by a ``MinSizePartitioner`` (shards of at least
  ``ps_min_shard_bytes``, at most ``ps_shards`` per variable; 0: one per PS task) — or, with
  ``ps_min_shard_bytes=0``, a ``FixedShardsPartitioner`` (``ps_shards`` per variable) — so big
  embedding tables (and big dense weights) are spread over the PS tasks. Only the chief runs the
  training program (a ``ClusterCoordinator`` schedules steps on the workers); the worker and ps tasks
  run the same command, which just serves (:func:`serve_if_server_task`).
* ``auto``: ``parameter_server`` when ``TF_CONFIG`` names ps tasks, ``multi_worker`` when it names
  more than one worker, else ``mirrored`` when there is more than one GPU, else ``default``.

The global batch size stays as configured: each replica gets ``batch_size / num_replicas``
examples of every batch (``strategy.experimental_distribute_dataset`` splits it).

Multi-worker input (:func:`worker_files`): with at least as many train files as workers, each
worker reads its own files (``files[index::num_workers]``, taken before any shuffle, so every file
is read by exactly one worker whatever the seeds) and tf.data auto-sharding is off; with fewer
files every worker reads all of them and keeps its share of the batches (``AutoShardPolicy.DATA``).
A worker that runs out of batches first feeds empty batches (loss 0, no gradient) until the
others finish, so a full pass trains every row exactly once. Evaluation is not sharded: every
worker predicts the whole split with the same (mirrored) weights, so metrics are exact.
"""
from __future__ import annotations

import json
import os

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.training.config import STRATEGIES


def split_cpu(num_devices: int) -> None:
    """Split the physical CPU into ``num_devices`` logical devices (before TensorFlow initialises)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
    except RuntimeError as exc:
        raise RuntimeError(
            "split_cpu: logical CPU devices must be configured before TensorFlow initialises its "
            "devices (call it first thing in the process)") from exc


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from exc


def _num_workers() -> int:
    cluster = _tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _num_ps() -> int:
    return len(_tf_config().get("cluster", {}).get("ps", []))


def serve_if_server_task(name: str) -> bool:
    """Under ``parameter_server``, a ``worker`` or ``ps`` task (from ``TF_CONFIG``) starts its gRPC
    server and serves until it is killed (never returns); any other task returns False at once."""
    task = _tf_config().get("task", {})
    if task.get("type") not in ("worker", "ps") or resolve_strategy_name(name) != "parameter_server":
        return False
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    print(f"strategy: parameter_server {resolver.task_type} {resolver.task_id} serving at "
          f"{resolver.cluster_spec().task_address(resolver.task_type, resolver.task_id)}", flush=True)
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id, protocol=resolver.rpc_layer or "grpc",
                                  start=True)
    server.join()
    return True


def worker_count_and_index(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """``(number of input workers, this worker's index)`` of a multi-worker strategy; ``(1, 0)`` else.

    The chief (when ``TF_CONFIG`` has one) is worker 0 and the ``worker`` tasks follow it."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1, 0
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1 or not resolver.task_type:
        return 1, 0
    index = resolver.task_id if resolver.task_type == "chief" else chiefs + resolver.task_id
    return chiefs + workers, index


def worker_files(strategy: tf.distribute.Strategy, files: list[str]) -> tuple[list[str], tf.data.Options]:
    """This worker's share of ``files`` and the tf.data options to give its dataset (module docstring)."""
    return split_files(files, *worker_count_and_index(strategy))


def split_files(files: list[str], num_workers: int, index: int) -> tuple[list[str], tf.data.Options]:
    """Worker ``index`` of ``num_workers``: its files and auto-shard policy (see :func:`worker_files`)."""
    options = tf.data.Options()
    if num_workers > 1 and len(files) >= num_workers:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return list(files[index::num_workers]), options
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return list(files), options


def resolve_strategy_name(name: str) -> str:
    """The concrete strategy for ``name`` (``auto`` resolved against TF_CONFIG and the GPUs)."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {'|'.join(STRATEGIES)}, got {name!r}")
    if name != "auto":
        return name
    if _num_ps():
        return "parameter_server"
    if _num_workers() > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def variable_partitioner(num_ps: int, ps_shards: int = 0, ps_min_shard_bytes: int = 256 << 10):
    """The PS variable partitioner (module docstring): at most ``ps_shards`` (0: ``num_ps``) shards."""
    shards = ps_shards or num_ps
    if ps_min_shard_bytes == 0:
        return tf.distribute.experimental.partitioners.FixedShardsPartitioner(num_shards=shards)
    return tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=ps_min_shard_bytes, max_shards=shards)


def _parameter_server(ps_shards: int, ps_min_shard_bytes: int) -> tf.distribute.Strategy:
    config = _tf_config()
    if config.get("task", {}).get("type") != "chief" or not _num_ps():
        raise ValueError("strategy parameter_server: the training program runs on the chief: TF_CONFIG "
                         "must name chief, worker and ps tasks and this task must be the chief "
                         f"(got TF_CONFIG task {config.get('task')!r}, cluster roles "
                         f"{sorted(config.get('cluster', {}))})")
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=variable_partitioner(_num_ps(), ps_shards, ps_min_shard_bytes))


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def make_strategy(name: str, ps_shards: int = 0, ps_min_shard_bytes: int = 256 << 10) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` for ``--strategy=name`` (``ps_*``: see :func:`variable_partitioner`)."""
    resolved = resolve_strategy_name(name)
    if resolved == "parameter_server":
        return _parameter_server(ps_shards, ps_min_shard_bytes)
    if resolved == "default":
        return tf.distribute.get_strategy()
    if resolved == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if _num_workers() <= 1:
        print("strategy: multi_worker without a multi-worker TF_CONFIG runs as a single worker",
              flush=True)
    return tf.distribute.MultiWorkerMirroredStrategy()


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line: strategy class and replica count."""
    return f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)"
