"""Timing ONE block forward+backward step, INFNet against all-to-all self-attention (the library of
``python -m bench.block_scaling`` and of the report's efficiency section; see that command's docstring)."""
from __future__ import annotations

import dataclasses
import statistics
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import numpy as np
import tensorflow as tf

from infnet_tf.config_flags import setting
from infnet_tf.layers.infnet_block import INFNetBlock, infnet_block_flops
from infnet_tf.layers.self_attention import SelfAttentionBlock, self_attention_flops

GROUPS = ("cat", "seq", "task")


@dataclasses.dataclass(frozen=True)
class BlockBench:
    """The sizes and the timing protocol of one block step (each field is a ``bench.block_scaling`` flag)."""

    batch_size: int = setting(2, "Examples per step (same for both models).")
    steps: int = setting(5, "Minimum timed steps per point (median reported).")
    min_seconds: float = setting(1.0, "Keep timing a cheap point until this many seconds have been measured.")
    warmup: int = setting(2, "Untimed steps per point (the first one traces).")
    d: int = setting(64, "Token width.")
    heads: int = setting(4, "Attention heads.")
    n_cat: int = setting(16, "Categorical tokens N_c.")
    tasks: int = setting(3, "Task tokens N_t.")
    types: int = setting(4, "Behaviour types (one sequence hub each).")
    n_cat_hubs: int = setting(16, "Categorical hubs n_c.")
    n_shared_task_hubs: int = setting(4, "Shared task hubs n_shared.")


def warm(step, warmup: int) -> None:
    for _ in range(warmup):
        step().numpy()


def sample(step, steps: int, min_seconds: float) -> list[float]:
    """Wall seconds of at least ``steps`` calls of ``step()`` (results fetched to host), continuing
    until ``min_seconds`` have been measured."""
    times: list[float] = []
    while len(times) < steps or sum(times) < min_seconds:
        start = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - start)
    return times


def make_step(block, inputs: list, forward):
    """A tf.function forward+backward step; returns a scalar that depends on every gradient."""

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = forward()
            loss = tf.add_n([tf.reduce_mean(o) for o in tf.nest.flatten(outputs)])
        grads = tape.gradient(loss, block.trainable_variables + inputs)
        return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g)) for g in grads if g is not None])

    return step


def bench_point(args: "BlockBench", n_seq: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Median seconds of one INFNet block step and one all-to-all step at ``n_seq`` sequence tokens, and
    their FLOPs per example: ``(t_infnet, t_all_to_all, flops_infnet, flops_all_to_all)``."""
    d, b = args.d, args.batch_size
    n_tokens = {"cat": args.n_cat, "seq": n_seq, "task": args.tasks}
    n_hubs = {"cat": args.n_cat_hubs, "seq": args.types, "task": args.tasks + args.n_shared_task_hubs}

    def rand(n):
        return tf.constant(rng.normal(size=(b, n, d)).astype(np.float32))

    tokens = {g: rand(n) for g, n in n_tokens.items()}
    hubs = {g: rand(n) for g, n in n_hubs.items()}
    masks = {"seq": tf.ones([b, n_seq], tf.bool)}

    infnet = INFNetBlock(d, args.heads, GROUPS, GROUPS, GROUPS)
    infnet_inputs = [tokens[g] for g in GROUPS] + [hubs[g] for g in GROUPS]
    infnet_step = make_step(infnet, infnet_inputs, lambda: infnet(tokens, hubs, masks, training=True))

    dense = SelfAttentionBlock(d, args.heads)
    x = tf.concat([tokens[g] for g in GROUPS], axis=1)
    mask = tf.concat([tf.ones([b, args.n_cat], tf.bool), masks["seq"], tf.ones([b, args.tasks], tf.bool)], 1)
    dense_step = make_step(dense, [x], lambda: dense(x, mask, training=True))

    warm(infnet_step, args.warmup)
    warm(dense_step, args.warmup)
    # INFNet is timed before and after all-to-all so both see the same machine conditions
    half = max(1, (args.steps + 1) // 2)
    infnet_times = sample(infnet_step, half, args.min_seconds / 2)
    t_dense = statistics.median(sample(dense_step, args.steps, args.min_seconds))
    infnet_times += sample(infnet_step, half, args.min_seconds / 2)
    t_infnet = statistics.median(infnet_times)
    f_infnet = infnet_block_flops(d, n_tokens, n_hubs, GROUPS, GROUPS, "concat_linear", "affine", (64,))
    n_all = sum(n_tokens.values())
    f_dense = self_attention_flops(n_all, n_all, d, 2)
    return t_infnet, t_dense, f_infnet, f_dense
