"""``--strategy=auto|default|mirrored|multi_worker``: the ``tf.distribute`` strategy to train with.

* ``default``: no distribution (one device).
* ``mirrored``: synchronous data parallelism over this machine's GPUs; without GPUs, over the
  logical CPU devices (see :func:`split_cpu`; one CPU device means one replica).
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` (workers from ``TF_CONFIG``).
* ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one worker, else ``mirrored`` when
  there is more than one GPU, else ``default``.

The global batch size stays as configured: each replica gets ``batch_size / num_replicas``
examples of every batch (``strategy.experimental_distribute_dataset`` splits it).
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


def _num_workers() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from exc
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def resolve_strategy_name(name: str) -> str:
    """The concrete strategy for ``name`` (``auto`` resolved against TF_CONFIG and the GPUs)."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {'|'.join(STRATEGIES)}, got {name!r}")
    if name != "auto":
        return name
    if _num_workers() > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` for ``--strategy=name``."""
    resolved = resolve_strategy_name(name)
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
