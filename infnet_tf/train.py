r"""Train a ranking model: ``python -m infnet_tf.train --data=DIR --model_dir=DIR --mode=batch|streaming``.

The model-input layout comes from the dataset job's transform artifact
(``<data>/transform/transform_artifact.json``); ``--spec`` is optional and, when given, must be the
spec the data was built from (its fingerprint is checked against the artifact's).

  batch:      epochs (or --train_steps) over train/, evaluation on valid/ each epoch, the best
              checkpoint by mean valid AUC, final evaluation on test/, <model_dir>/metrics.json.
  streaming:  partition by partition over train/ (test-then-train), checkpoint + exact resume,
              periodic SavedModel export; --follow keeps polling for new partitions.

Examples:
  python -m infnet_tf.train --data=/data/kuairand --model_dir=/models/run1 --mode=batch --epochs=3
  python -m infnet_tf.train --data=s3://bucket/kuairand --model_dir=s3://bucket/models/run1 \
      --mode=streaming --follow --export_every=4
"""
from __future__ import annotations

import functools

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from infnet_tf import config_flags
from infnet_tf.models.config import ModelConfig
from infnet_tf.models.presets import PRESET_NAMES, preset_changes
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.streaming import StreamingConfig

FLAGS = flags.FLAGS

# -- job (the flags that are no config field) -----------------------------------------------------
flags.DEFINE_string("data", None, "Dataset job output directory (local, s3://, hdfs://) holding "
                    "{train,valid,test}/dt=... partitions and transform/transform_artifact.json.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, TensorBoard logs (tensorboard/), "
                    "metrics.json and trainer_config.json go (local or object store).")
flags.DEFINE_string("spec", None, "Optional feature spec YAML; if given, its fingerprint must match "
                    "the transform artifact's spec_fingerprint (guards against mixing datasets).")
flags.DEFINE_enum("mode", "batch", ["batch", "streaming"], "batch: epochs over train/ with "
                  "valid/test evaluation; streaming: test-then-train partition by partition.")
flags.DEFINE_enum("preset", "default", list(PRESET_NAMES), "Named model settings (infnet_tf/models/presets.py): "
                  "default = the recommended INFNet; paper = the paper-exact INFNet (token_norm=off, "
                  "embedding_init_std=0, readout=task_token); or one ablation row of bench.report "
                  "(e.g. no_hubs, fusion_sum). Model flags given explicitly override the preset.")
flags.DEFINE_bool("overwrite_model_dir", False, "Start over: delete what an earlier run left in "
                  "--model_dir (checkpoints, TensorBoard logs, state, metrics, trainer_config.json; "
                  "<model_dir>/export is kept) before training. Without it, a --model_dir whose "
                  "trainer_config.json records other model-shaping settings is refused (exit 2).")
flags.mark_flags_as_required(["data", "model_dir"])

# -- one flag per config field (help text: the field's setting(...)) -------------------------------
config_flags.define_flags(ModelConfig, bools="on_off")
config_flags.define_flags(TrainConfig)
config_flags.define_flags(StreamingConfig)


def model_config_from_flags() -> ModelConfig:
    """The ModelConfig of the flags: the ``--preset``'s settings, overridden by flags given explicitly."""
    preset = preset_changes(FLAGS.preset)
    given = config_flags.explicit(ModelConfig)
    values = {name: preset[name] if name in preset and name not in given else value
              for name, value in config_flags.values(ModelConfig).items()}
    return ModelConfig.from_flags_dict(values)


def train_config_from_flags() -> TrainConfig:
    return TrainConfig(**config_flags.values(TrainConfig))


def streaming_config_from_flags() -> StreamingConfig:
    return StreamingConfig.from_kwargs(**config_flags.values(StreamingConfig))


def export_hook(export_base: str | None, model_name: str, model_dir: str, data: str):
    """The streaming trainer's periodic export: ``export.exporter.export_from_trainer`` into
    ``<export_base or model_dir/export>/<model_name>``, with the transform and held-out rows of ``data``."""
    from export.exporter import export_from_trainer

    base = export_base or f"{model_dir.rstrip('/')}/export"
    return functools.partial(export_from_trainer, export_base=base, model_name=model_name, data=data)


def main(argv) -> int:
    if len(argv) > 1:
        raise flags.Error(f"unexpected arguments: {' '.join(argv[1:])}")
    from infnet_tf.training import job

    paths = job.JobPaths(data=FLAGS.data, model_dir=FLAGS.model_dir, spec=FLAGS.spec, mode=FLAGS.mode,
                         overwrite_model_dir=FLAGS.overwrite_model_dir)
    if FLAGS.mode == "batch":
        return job.run(paths, model_config_from_flags, train_config_from_flags)
    hook = export_hook(FLAGS.export_base, FLAGS.model_name, FLAGS.model_dir, FLAGS.data)
    return job.run(paths, model_config_from_flags, train_config_from_flags, streaming_config_from_flags, hook)


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
