"""Throughput measurements shared by the benches (``bench.train_throughput``) and the report's
efficiency section: examples/second of an input pipeline, and of a trainer's steps; the fp32 matmul
peak that ``bench.model_efficiency`` (MFU) and ``bench.serving_latency`` (compute floor) compare with;
how full a batch's behaviour sequences are."""
from __future__ import annotations

import time


def _rate(examples: int, seconds: float) -> float:
    return examples / seconds if seconds > 0 else float("inf")


def measure_input(dataset, steps: int, warmup: int) -> float:
    """Examples/second of iterating ``dataset`` (every batch's tensors materialised)."""
    it = iter(dataset)
    for _ in range(warmup):
        next(it)
    examples, start = 0, time.perf_counter()
    for _ in range(steps):
        _, labels = next(it)
        examples += int(next(iter(labels.values())).shape[0])
    return _rate(examples, time.perf_counter() - start)


def measure_training(trainer, dataset, steps: int, warmup: int) -> float:
    """Examples/second of ``trainer.train_on`` over ``dataset`` after ``warmup`` steps."""
    trainer.train_on(dataset, max_steps=warmup)
    stats = trainer.train_on(dataset, max_steps=steps)
    return _rate(stats["examples"], stats["seconds"])


def matmul_peak(sizes, reps: int) -> tuple[float, dict]:
    """Best fp32 FLOP/s of large square matmuls (2 n^3 FLOPs each) over ``sizes``."""
    import tensorflow as tf

    per_size = {}
    for n in sizes:
        a = tf.random.uniform([n, n], dtype=tf.float32)
        b = tf.random.uniform([n, n], dtype=tf.float32)
        fn = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)[:1, :1]))
        fn(a, b).numpy()
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn(a, b).numpy()
            best = min(best, time.perf_counter() - t)
        per_size[n] = 2.0 * n ** 3 / best
    return max(per_size.values()), per_size


def sequence_fill(layout, features) -> str:
    """"click 10.0/50 (20%), ..." for the behaviour sequences of a parsed batch."""
    import numpy as np

    from infnet_tf.data.keys import LENGTH, seq_key

    parts = []
    for seq in layout.sequences:
        mean = float(np.minimum(features[seq_key(seq.name, LENGTH)].numpy(), seq.max_len).mean())
        parts.append(f"{seq.name} {mean:.1f}/{seq.max_len} ({100 * mean / seq.max_len:.0f}%)")
    return ", ".join(parts) or "no sequences"
