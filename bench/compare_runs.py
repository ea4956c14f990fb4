"""Is one model's mean test AUC really above another's? A paired bootstrap over the split's users.

  python -m bench.compare_runs --data=DIR --a=RUN_A0,RUN_A1,RUN_A2 --b=RUN_B0,RUN_B1,RUN_B2 [--split=test]

Each RUN is a model dir a finished ``infnet_tf.train`` run left (one seed each). Every run's best-on-valid
checkpoint (the newest checkpoint when it recorded none) is restored into a Trainer built from its
``trainer_config.json``, under the weights its evaluations used (the moving average), and predicts every row
of ``<data>/<split>``; each run's AUC per task is printed (it equals the run's ``metrics.json`` for the test
split). Then ``--resamples`` times the split's users are drawn with replacement (all of a drawn user's rows
come along: a user's rows are correlated, so resampling rows alone would understate the noise) and, on each
draw, the mean AUC of the A runs minus that of the B runs is computed per task — the same rows for every run,
so the noise the two sides share cancels. Printed per task: both means, their difference on the split, the
bootstrap sd and 95% interval of the difference, and the share of draws in which A is ahead. A difference
whose interval holds 0 is one this split cannot order.

Last line: ``DIFF <task>=<diff>[<lo>,<hi>] ...`` (A minus B, 95% interval).
"""
from __future__ import annotations

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from bench.run_comparison import compare, run_predictions

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "Dataset job output directory the runs were trained on.")
flags.DEFINE_list("a", [], "Model dirs of the first model's runs (one seed each).")
flags.DEFINE_list("b", [], "Model dirs of the second model's runs (one seed each).")
flags.DEFINE_string("split", "test", "Split directory under --data to predict.")
flags.DEFINE_integer("resamples", 1000, "Bootstrap draws of the split's users.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the bootstrap draws.")


def main(argv) -> int:
    del argv
    if not FLAGS.data or not FLAGS.a or not FLAGS.b:
        raise SystemExit("compare_runs: --data, --a and --b are required (see --help)")
    try:
        a = [run_predictions(d, FLAGS.data, FLAGS.split) for d in FLAGS.a]
        b = [run_predictions(d, FLAGS.data, FLAGS.split) for d in FLAGS.b]
        result = compare(a, b, FLAGS.resamples, FLAGS.seed)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    print(f"A: {len(a)} run(s), B: {len(b)} run(s); {FLAGS.resamples} draws of the {FLAGS.split} split's "
          f"{len(np.unique(a[0]['users'])):,} users")
    print(f"{'task':<12} {'A mean':>8} {'B mean':>8} {'A - B':>8} {'sd':>7} {'95% interval':>20} {'A ahead':>8}")
    for task, r in result.items():
        print(f"{task:<12} {r['a']:8.4f} {r['b']:8.4f} {r['diff']:+8.4f} {r['sd']:7.4f} "
              f"[{r['lo']:+.4f}, {r['hi']:+.4f}] {r['a_ahead']:8.0%}")
    print("DIFF " + " ".join(f"{t}={r['diff']:+.4f}[{r['lo']:+.4f},{r['hi']:+.4f}]" for t, r in result.items()))
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
