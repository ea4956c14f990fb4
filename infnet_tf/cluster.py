r"""Train on a local tf.distribute cluster of separate processes talking gRPC on 127.0.0.1.

  python -m infnet_tf.cluster --strategy=multi_worker_mirrored --workers=2 -- \
      --data=DIR --model_dir=DIR --mode=batch --epochs=1
  python -m infnet_tf.cluster --strategy=parameter_server --workers=2 --ps=2 -- \
      --data=DIR --model_dir=DIR --mode=batch --train_steps=200

Everything after ``--`` is passed to ``python -m infnet_tf.train`` in every role (the launcher adds
``--strategy``). Each role gets its own ``TF_CONFIG`` on a free loopback port; output is streamed
with a ``[role]`` prefix; the whole cluster is stopped when the job ends, when any role fails, or on
Ctrl-C/SIGTERM. The last line is ``CLUSTER strategy=<s> workers=<n> ps=<n> sharded_tables=<n>
steps=<n>``. On a real cluster, set ``TF_CONFIG`` per machine and run ``python -m infnet_tf.train
--strategy=...`` yourself (WORKSPACE.md).
"""
from __future__ import annotations

import sys

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from infnet_tf.training.local_cluster import CLUSTER_STRATEGIES, LocalCluster, run_cluster

FLAGS = flags.FLAGS
flags.DEFINE_enum("strategy", None, list(CLUSTER_STRATEGIES), "multi_worker_mirrored: synchronous "
                  "all-reduce over --workers processes (worker 0 is the chief); parameter_server: a "
                  "chief (coordinator) plus --workers workers and --ps parameter servers that hold the "
                  "sharded embedding tables.")
flags.DEFINE_integer("workers", 2, "Number of worker processes.", lower_bound=1)
flags.DEFINE_integer("ps", 0, "Number of parameter-server processes (parameter_server only; >= 1 there).",
                     lower_bound=0)
flags.mark_flag_as_required("strategy")


def main(argv) -> int:
    train_args = [a for a in argv[1:] if a != "--"]
    if not train_args:
        print("cluster: error: no train flags after '--' (e.g. -- --data=DIR --model_dir=DIR)",
              file=sys.stderr, flush=True)
        return 2
    try:
        cluster = LocalCluster(FLAGS.strategy, FLAGS.workers, FLAGS.ps, train_args)
    except ValueError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return run_cluster(cluster)


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
