"""Step time of ONE block vs total sequence length: INFNet (hub aggregate-and-broadcast) against
all-to-all self-attention (``hubs=off``, the quadratic reference), measured in the same run.

    python -m bench.block_scaling [--batch_size 2 --steps 5 --warmup 2 --lengths 64,256,1024,4096]

For each N_s the script builds one INFNet block (every hub group aggregates over C, S and T and
every token group is broadcast to, i.e. an inner block of the default model: n_c=16 categorical
hubs, one hub per behaviour type, N_t + 4 task hubs) and one all-to-all
:class:`SelfAttentionBlock` over [C; S; T], at the same width d and head count, and times a
``tf.function`` forward+backward step (gradients w.r.t. the block's variables and its input
tokens) -- the median of at least ``--steps`` timed steps (and at least ``--min_seconds`` of
timing) after ``--warmup`` untimed ones; INFNet's steps are split before and after the
all-to-all ones so that both see the same machine load. Sequences are
full (no padding), split evenly over ``--types`` behaviour types.

Prints a table, then the last line exactly::

    RATIO infnet_4096_over_256=<x> all_to_all_4096_over_256=<y> all_to_all_over_infnet_at_4096=<z>

Targets: x <= 24 (linear scaling is 16), z >= 10.
"""
from __future__ import annotations

import argparse
import statistics
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import numpy as np
import tensorflow as tf

from infnet_tf.layers.infnet_block import INFNetBlock, infnet_block_flops
from infnet_tf.layers.self_attention import SelfAttentionBlock, self_attention_flops

GROUPS = ("cat", "seq", "task")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.block_scaling", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="64,256,1024,4096",
                   help="comma-separated total sequence lengths N_s (must include 256 and 4096)")
    p.add_argument("--batch_size", type=int, default=2, help="examples per step (same for both models)")
    p.add_argument("--steps", type=int, default=5, help="minimum timed steps per point (median reported)")
    p.add_argument("--min_seconds", type=float, default=1.0,
                   help="keep timing a cheap point until this many seconds have been measured")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per point (first one traces)")
    p.add_argument("--d", type=int, default=64, help="token width")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--n_cat", type=int, default=16, help="categorical tokens N_c")
    p.add_argument("--tasks", type=int, default=3, help="task tokens N_t")
    p.add_argument("--types", type=int, default=4, help="behaviour types (one sequence hub each)")
    p.add_argument("--n_cat_hubs", type=int, default=16)
    p.add_argument("--n_shared_task_hubs", type=int, default=4)
    args = p.parse_args(argv)
    args.lengths = [int(x) for x in args.lengths.split(",") if x]
    if 256 not in args.lengths or 4096 not in args.lengths:
        p.error("--lengths must include 256 and 4096 (the RATIO line compares them)")
    if any(n % args.types for n in args.lengths):
        p.error(f"every length must be a multiple of --types={args.types}")
    return args


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


def bench_point(args, n_seq: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
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


def main(argv=None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"one block, forward+backward, d={args.d}, heads={args.heads}, batch={args.batch_size}, "
          f"N_c={args.n_cat}, N_t={args.tasks}, types={args.types}; median of >= {args.steps} steps "
          f"(>= {args.min_seconds}s) after {args.warmup} warmup")
    print(f"{'N_s':>6} {'infnet_ms':>10} {'all_to_all_ms':>14} {'a2a/infnet':>10} "
          f"{'infnet_MFLOP/ex':>16} {'a2a_MFLOP/ex':>13}")
    results = {}
    for n in args.lengths:
        t_i, t_a, f_i, f_a = bench_point(args, n, rng)
        results[n] = (t_i, t_a)
        print(f"{n:>6} {t_i * 1e3:>10.2f} {t_a * 1e3:>14.2f} {t_a / t_i:>10.1f} {f_i / 1e6:>16.2f} {f_a / 1e6:>13.2f}",
              flush=True)
    x = results[4096][0] / results[256][0]
    y = results[4096][1] / results[256][1]
    z = results[4096][1] / results[4096][0]
    print(f"RATIO infnet_4096_over_256={x:.2f} all_to_all_4096_over_256={y:.2f} all_to_all_over_infnet_at_4096={z:.2f}")


if __name__ == "__main__":
    main()
