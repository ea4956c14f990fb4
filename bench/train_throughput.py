r"""Training throughput: the input pipeline alone vs the training step alone vs both, in one run.

  python -m bench.train_throughput --data=DIR [--batch_size=4096 --steps=20 --precision=auto]

* **input**: batches of :func:`infnet_tf.input.make_dataset` over ``<data>/train`` (repeated,
  shuffled, non-deterministic — the training configuration), consumed as fast as possible;
* **model**: ``Trainer.train_on`` over one real batch cached in memory (no file reading or parsing);
* **both**: ``Trainer.train_on`` over the real input pipeline (what a training job does).

All three use the default model config (``--model``/``--d``/``--num_blocks`` override it) and the
same global batch size. The input pipeline should deliver at least 3x what the model consumes, so
the accelerator never waits on input. The last line is ``RATIO input_over_model=<x>``.
"""
from __future__ import annotations

import tempfile

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from bench.measure import measure_input, measure_training

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "Dataset job output directory (train/ partitions and the "
                    "transform artifact), local or s3://.")
flags.DEFINE_integer("batch_size", 4096, "Global batch size (the paper's 4096 by default).")
flags.DEFINE_integer("steps", 20, "Measured batches per measurement.")
flags.DEFINE_integer("warmup_steps", 3, "Batches run before each measurement (tracing, buffers).")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "Mixed-precision policy (auto: mixed_float16 on GPU, float32 on CPU).")
flags.DEFINE_enum("strategy", "default", ["auto", "default", "mirrored", "multi_worker"],
                  "tf.distribute strategy of the trainer.")
flags.DEFINE_string("model", "infnet", "Registered model name.")
flags.DEFINE_integer("d", None, "Token width override (default: the ModelConfig default).")
flags.DEFINE_integer("num_blocks", None, "Number of blocks override (default: the ModelConfig default).")
flags.mark_flag_as_required("data")


def main(argv) -> int:
    del argv
    import tensorflow as tf

    from infnet_tf.data.artifact import load_layout
    from infnet_tf.input import make_dataset
    from infnet_tf.models import ModelConfig
    from infnet_tf.models.cost import flops_per_example
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.trainer import Trainer

    layout = load_layout(FLAGS.data)
    overrides = {k: FLAGS[k].value for k in ("d", "num_blocks") if FLAGS[k].value is not None}
    model_config = ModelConfig(model=FLAGS.model, **overrides)
    train_config = TrainConfig(batch_size=FLAGS.batch_size, precision=FLAGS.precision,
                               strategy=FLAGS.strategy, log_every=10**9)
    train_dir = FLAGS.data.rstrip("/") + "/train"

    def train_data():
        return make_dataset(train_dir, layout, FLAGS.batch_size, shuffle=True, repeat=True,
                            deterministic=False, drop_remainder=True)

    with tempfile.TemporaryDirectory() as model_dir:
        trainer = Trainer(layout, model_config, train_config, model_dir)
        try:
            flops = flops_per_example(layout, model_config)
        except ValueError:
            flops = float("nan")
        print(f"bench: model {model_config.model} d={model_config.d} L={model_config.num_blocks}, "
              f"{flops / 1e6:.2f} MFLOP/example forward, batch {FLAGS.batch_size}, "
              f"precision {trainer.precision}, {FLAGS.steps} measured steps", flush=True)
        input_rate = measure_input(train_data(), FLAGS.steps, FLAGS.warmup_steps)
        print(f"input pipeline alone : {input_rate:12,.0f} examples/s", flush=True)
        cached = next(iter(train_data()))
        model_rate = measure_training(trainer, tf.data.Dataset.from_tensors(cached).repeat(),
                                      FLAGS.steps, FLAGS.warmup_steps)
        print(f"train step alone     : {model_rate:12,.0f} examples/s (one cached batch)", flush=True)
        both_rate = measure_training(trainer, train_data(), FLAGS.steps, FLAGS.warmup_steps)
        print(f"input + train step   : {both_rate:12,.0f} examples/s", flush=True)
    print(f"ratio input/model    : {input_rate / model_rate:8.2f}x  (target >= 3x)")
    print(f"ratio both/model     : {both_rate / model_rate:8.2f}x  (1.0 = input costs the step nothing)")
    print(f"RATIO input_over_model={input_rate / model_rate:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
