"""Step time of ONE block vs total sequence length: INFNet (hub aggregate-and-broadcast) against
all-to-all self-attention (``hubs=off``, the quadratic reference), measured in the same run.

    python -m bench.block_scaling [--batch_size 2 --steps 5 --warmup 2 --lengths 64,256,1024,4096]

For each N_s the script builds one INFNet block (every hub group aggregates over C, S and T and
every token group is broadcast to, i.e. an inner block of the paper's model: n_c=16 categorical
hubs (``--n_cat_hubs``; the product's default is 8), one hub per behaviour type, N_t + 4 task hubs)
and one all-to-all :class:`SelfAttentionBlock` over [C; S; T], at the same width d and head count,
and times a ``tf.function`` forward+backward step (gradients w.r.t. the block's variables and its
input tokens) -- the median of at least ``--steps`` timed steps (and at least ``--min_seconds`` of
timing) after ``--warmup`` untimed ones; INFNet's steps are split before and after the all-to-all
ones so that both see the same machine load. Sequences are full (no padding), split evenly over
``--types`` behaviour types.

Prints a table, then the last line exactly::

    RATIO infnet_4096_over_256=<x> all_to_all_4096_over_256=<y> all_to_all_over_infnet_at_4096=<z>

Targets: x <= 24 (linear scaling is 16), z >= 10.
"""
from __future__ import annotations

import sys

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import numpy as np
from absl import flags

from bench.block_timing import BlockBench, bench_point
from infnet_tf import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("lengths", "64,256,1024,4096", "Comma-separated total sequence lengths N_s (must include "
                    "256 and 4096).")
config_flags.define_flags(BlockBench)


def lengths_or_error(text: str, types: int) -> tuple[list[int], str | None]:
    """The ``--lengths`` as ints, and what is wrong with them (None: fine)."""
    try:
        lengths = [int(x) for x in text.split(",") if x]
    except ValueError:
        return [], f"--lengths: expected comma-separated ints, got {text!r}"
    if 256 not in lengths or 4096 not in lengths:
        return lengths, "--lengths must include 256 and 4096 (the RATIO line compares them)"
    if any(n % types for n in lengths):
        return lengths, f"every length must be a multiple of --types={types}"
    return lengths, None


def main(argv) -> int:
    if len(argv) > 1:
        raise flags.Error(f"unexpected arguments: {' '.join(argv[1:])}")
    args = BlockBench(**config_flags.values(BlockBench))
    lengths, error = lengths_or_error(FLAGS.lengths, args.types)
    if error:
        print(f"block_scaling: error: {error}", file=sys.stderr, flush=True)
        return 2
    rng = np.random.default_rng(0)
    print(f"one block, forward+backward, d={args.d}, heads={args.heads}, batch={args.batch_size}, "
          f"N_c={args.n_cat}, N_t={args.tasks}, types={args.types}; median of >= {args.steps} steps "
          f"(>= {args.min_seconds}s) after {args.warmup} warmup")
    print(f"{'N_s':>6} {'infnet_ms':>10} {'all_to_all_ms':>14} {'a2a/infnet':>10} "
          f"{'infnet_MFLOP/ex':>16} {'a2a_MFLOP/ex':>13}")
    results = {}
    for n in lengths:
        t_i, t_a, f_i, f_a = bench_point(args, n, rng)
        results[n] = (t_i, t_a)
        print(f"{n:>6} {t_i * 1e3:>10.2f} {t_a * 1e3:>14.2f} {t_a / t_i:>10.1f} {f_i / 1e6:>16.2f} {f_a / 1e6:>13.2f}",
              flush=True)
    x = results[4096][0] / results[256][0]
    y = results[4096][1] / results[256][1]
    z = results[4096][1] / results[4096][0]
    print(f"RATIO infnet_4096_over_256={x:.2f} all_to_all_4096_over_256={y:.2f} all_to_all_over_infnet_at_4096={z:.2f}")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
