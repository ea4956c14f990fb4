"""Throughput measurements shared by the benches (``bench.train_throughput``) and the report's
efficiency section: examples/second of an input pipeline, and of a trainer's steps."""
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
