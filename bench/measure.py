"""Throughput measurements shared by the benches (``bench.train_throughput``) and the report's
efficiency section: examples/second of an input pipeline, and of a trainer's steps; the fp32 matmul
peak that ``bench.model_efficiency`` (MFU) and ``bench.serving_latency`` (compute floor) compare with."""
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
