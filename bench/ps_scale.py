r"""Simulated parameter-server scale: throughput vs workers from one measured step and the PS traffic.

  python -m bench.ps_scale --data=DIR [--batch_size=1024 --d=32 --num_blocks=2 --nic_gbit=10 --ps=1]

Measured in one run, on one process:

* the train step's examples/s (``Trainer.train_on`` over one real batch cached in memory);
* the bytes one step moves between a worker and the PS tasks under ``--strategy=parameter_server``:
  the embedding rows the batch looks up (unique ids per table x width x 4 bytes, fetched) and their
  gradients (the same rows plus int64 ids, pushed), and every dense weight (read) and its gradient
  (pushed). Unique ids are counted per table lookup, so a table looked up by several inputs (an item
  table shared with sequences) counts its rows once per lookup: an upper bound.

The model: a worker's step takes ``compute + bytes_one_way / nic``; the PS tasks together move at
most ``ps x nic`` bytes per second each way, so throughput(N) = min(N x worker rate,
ps x nic / bytes_one_way x batch). It prints the table for N = 1..256 workers and the worker count
where the PS network becomes the limit, for this step time and for a 30x faster (GPU) step. The
last line is ``RATIO ps_limit_workers=<n> ps_limit_workers_gpu30x=<n> dense_share_of_traffic=<x>``.
"""
from __future__ import annotations

import math
import tempfile

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This command's flags (defined when it runs, not on import: tests import the throughput model)."""
    flags.DEFINE_string("data", None, "Dataset job output directory (train/ partitions and the transform artifact).")
    flags.DEFINE_integer("batch_size", 1024, "Global batch size of one step.")
    flags.DEFINE_integer("steps", 10, "Measured steps.")
    flags.DEFINE_integer("warmup_steps", 3, "Steps run before the measurement (tracing).")
    flags.DEFINE_integer("d", 32, "Token width of the INFNet measured.")
    flags.DEFINE_integer("num_blocks", 2, "INFNet blocks of the model measured.")
    flags.DEFINE_float("nic_gbit", 10.0, "Network bandwidth of each worker and PS task, Gbit/s each way.")
    flags.DEFINE_integer("ps", 1, "PS tasks in the model (their bandwidth adds up).")
    flags.mark_flag_as_required("data")


WORKERS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
GPU_SPEEDUP = 30.0


def step_traffic(trainer, features) -> dict:
    """Bytes one parameter-server step moves for this batch (see the module docstring)."""
    import tensorflow as tf

    from infnet_tf.input import model_inputs
    from infnet_tf.training.optimizers import dense_variables

    rows: dict[str, int] = {}
    widths: dict[str, int] = {}
    original = tf.keras.layers.Embedding.call

    def counting_call(layer, ids):   # an eager forward pass: count each lookup's unique ids
        rows[layer.name] = rows.get(layer.name, 0) + int(tf.size(tf.unique(tf.reshape(ids, [-1]))[0]))
        widths[layer.name] = int(layer.output_dim)
        return original(layer, ids)

    tf.keras.layers.Embedding.call = counting_call
    try:
        trainer.model(model_inputs(trainer.layout, features), training=False)
    finally:
        tf.keras.layers.Embedding.call = original
    dense = sum(int(tf.size(v)) for v in dense_variables(trainer.model))
    fetched_rows = sum(rows[n] * widths[n] * 4 for n in rows)
    pushed_rows = sum(rows[n] * (widths[n] * 4 + 8) for n in rows)
    return {"embedding_rows": rows, "embedding_fetch_bytes": fetched_rows, "embedding_push_bytes": pushed_rows,
            "dense_params": dense, "dense_bytes": 4 * dense,
            "one_way_bytes": max(fetched_rows, pushed_rows) + 4 * dense}


def throughput(workers: int, worker_rate: float, batch: int, one_way_bytes: float, nic: float, ps: int) -> float:
    """Examples/s of ``workers`` workers (module docstring's model)."""
    step_s = batch / worker_rate + one_way_bytes / nic
    return min(workers * batch / step_s, ps * nic / one_way_bytes * batch)


def ps_limit(worker_rate: float, batch: int, one_way_bytes: float, nic: float, ps: int) -> int:
    """The smallest worker count whose throughput the PS network caps."""
    step_s = batch / worker_rate + one_way_bytes / nic
    return max(1, math.ceil(ps * nic / one_way_bytes * step_s - 1e-9))   # (float noise at an exact fit)


def main(argv) -> int:
    del argv
    import tensorflow as tf

    from bench.measure import measure_training
    from infnet_tf.data.artifact import load_layout
    from infnet_tf.input import make_dataset
    from infnet_tf.models import ModelConfig
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.trainer import Trainer

    layout = load_layout(FLAGS.data)
    trainer = Trainer(layout, ModelConfig(d=FLAGS.d, num_blocks=FLAGS.num_blocks),
                      TrainConfig(batch_size=FLAGS.batch_size, precision="float32", strategy="default",
                                  log_every=10**9), tempfile.mkdtemp(prefix="ps_scale-"))
    batch = next(iter(make_dataset(FLAGS.data.rstrip("/") + "/train", layout, FLAGS.batch_size, shuffle=True,
                                   repeat=True, deterministic=True, drop_remainder=True)))
    traffic = step_traffic(trainer, batch[0])
    rate = measure_training(trainer, tf.data.Dataset.from_tensors(batch).repeat(),
                            FLAGS.steps, FLAGS.warmup_steps)
    nic, b, one_way = FLAGS.nic_gbit * 1e9 / 8, FLAGS.batch_size, traffic["one_way_bytes"]
    print(f"one process: {rate:,.0f} examples/s at batch {b} (d={FLAGS.d}, {FLAGS.num_blocks} blocks)")
    print(f"PS traffic per step: embedding rows {traffic['embedding_fetch_bytes'] / 1e6:.2f} MB fetched, "
          f"{traffic['embedding_push_bytes'] / 1e6:.2f} MB of gradients pushed; dense weights "
          f"{traffic['dense_bytes'] / 1e6:.2f} MB each way ({traffic['dense_params']:,} params); "
          f"{one_way / 1e6:.2f} MB one way = {one_way / b:,.0f} B/example")
    limit = ps_limit(rate, b, one_way, nic, FLAGS.ps)
    limit_gpu = ps_limit(rate * GPU_SPEEDUP, b, one_way, nic, FLAGS.ps)
    print(f"model: {FLAGS.ps} PS task(s), {FLAGS.nic_gbit:g} Gbit/s NICs; examples/s vs workers "
          f"(this step | a {GPU_SPEEDUP:g}x faster step)")
    for n in WORKERS:
        cpu = throughput(n, rate, b, one_way, nic, FLAGS.ps)
        gpu = throughput(n, rate * GPU_SPEEDUP, b, one_way, nic, FLAGS.ps)
        print(f"  {n:>4} workers: {cpu:>12,.0f} | {gpu:>12,.0f}")
    print(f"the PS network becomes the limit at {limit} workers ({limit_gpu} with the faster step)")
    dense_share = traffic["dense_bytes"] / one_way
    print(f"RATIO ps_limit_workers={limit} ps_limit_workers_gpu30x={limit_gpu} dense_share_of_traffic={dense_share:.3f}")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    define_flags()
    run_main(main)
