r"""Export a trained model as a TF Serving SavedModel version, behind a validation gate.

    python -m export.export_model --model_dir=DIR --data=DIR_OR_ARTIFACT --export_base=DIR \
        --model_name=infnet [--keep=5 --gate_metric_threshold=0.01 --holdout=<partition dir>]

and, from the streaming trainer every ``--export_every`` partitions,
``export_from_trainer(trainer, partition_key, data=...)``.

What it does, in order (one exporter at a time per model directory, under a lock):

1. **Recover the model**: ``<model_dir>/trainer_config.json`` (written by the Trainer) gives the
   model config, the layout and the training precision; the newest *readable* checkpoint in
   ``<model_dir>/checkpoints`` (a truncated newest one is skipped with a warning naming both), or
   ``--checkpoint``, gives the weights. The transform artifact comes from ``--data`` (the dataset
   job's output directory, or the artifact JSON itself); its layout must equal the trainer's.
   **Skip** (exit 0, nothing written) when the newest published version was made from the same
   weights, transform artifact and precision (``source`` in its ``infnet_export.json``), unless
   ``--force``. Under the export lock, every run first **sweeps** what killed runs left: integer
   version directories without ``saved_model.pb``, ``.tmp-*`` / ``.deleting-*`` directories, and
   ``ckpt-N_temp`` directories of killed checkpoint saves in the model's checkpoint directory.
2. **Write the candidate** under ``<export_base>/<model_name>/.tmp-<version>-...``: the SavedModel
   (tag ``serve``; signatures ``serving_default`` raw features, ``predict_examples`` raw
   ``tf.train.Example``s, ``predict_model_inputs`` transformed ids — see
   :mod:`export.serving_module`), ``assets.extra/tf_serving_warmup_requests`` (PredictionLogs from
   real rows), ``assets.extra/transform_artifact.json``, ``assets.extra/sample_request.jsonl`` (a few
   raw rows of the newest test partition, in ``export.client --rows`` form) and
   ``assets.extra/infnet_export.json`` (provenance, source checkpoint and fingerprints, the gate's
   decision). Dataset partitions are read only through ``Partition.verified_files()``.
3. **Validate** the candidate as loaded from disk: on held-out rows (``--holdout``, default the
   newest complete partition of ``<data>/valid``) decoded back to raw features
   (:class:`export.raw_inputs.RawDecoder`): the exported raw signature must agree with the model
   on the TFRecord ids (<= 1e-5; proves the in-graph transform reproduces the dataset job and the
   weights made it to disk), ``predict_examples`` must agree with the raw signature, and every
   prediction must be finite. Then the gate (:mod:`export.gate`): mean AUC over tasks on the held-out rows must not be
   worse than the currently published version's (scored by its own raw signature on the same raw
   rows) by more than ``--gate_metric_threshold``.
4. **Publish** (atomic rename to ``<export_base>/<model_name>/<version>``; keep the newest
   ``--keep``) or **reject** (``<export_base>/<model_name>/_rejected/<version>/REJECTED.json``),
   then refresh ``<export_base>/serving_config/`` (models.config, batching, monitoring).

Exit status: 0 published (or already published: skipped), 3 rejected by the gate, 2 a dataset
partition does not match its manifest (one line naming the partition and file) or a flag value out of
range (one line naming the flag), 1 other errors. The settings (every flag but --model_dir, --data,
--export_base and --checkpoint) are declared once, with their help, in :class:`export.config.ExportConfig`.
"""
from __future__ import annotations

import dataclasses

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from export import serving_files
from export.config import ExportConfig
from export.exporter import (EXIT_BAD_DATA, EXIT_REJECTED, ExportError, PartitionError, client_command,
                             export_from_checkpoint)
from infnet_tf import config_flags

FLAGS = flags.FLAGS
EXIT_USAGE = 2  # a flag value out of range or a stray argument

# Inputs and outputs (no settings): where the model, the data and the exports are.
flags.DEFINE_string("model_dir", None, "Training directory (trainer_config.json + checkpoints/) written by "
                                       "python -m infnet_tf.train.")
flags.DEFINE_string("data", None, "The dataset job's output directory (transform/transform_artifact.json, "
                                  "valid/ partitions for the gate and warmup) or the transform artifact JSON.")
flags.DEFINE_string("export_base", None, "Export base: versions go to <export_base>/<model_name>/<version>/ "
                                         "(point TF Serving's --model_base_path at <export_base>/<model_name>).")
flags.DEFINE_string("checkpoint", None, "Checkpoint to export (default: the newest in <model_dir>/checkpoints).")
flags.mark_flags_as_required(["model_dir", "data", "export_base"])
# The export's settings: --model_name, --keep, --gate_metric_threshold, --holdout, --precision, --force, ...
config_flags.define_flags(ExportConfig)


def main(argv) -> int:
    f = FLAGS
    try:
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
        config = ExportConfig(**config_flags.values(ExportConfig))
    except ValueError as exc:  # a bad flag value: the command line, not the export, is wrong
        print(f"export: error: {_one_line(exc)}", flush=True)
        return EXIT_USAGE
    try:
        result = export_from_checkpoint(f.model_dir, f.data, f.export_base, checkpoint=f.checkpoint,
                                        **dataclasses.asdict(config))
    except PartitionError as exc:  # a partial / inconsistent partition: the data, not the export, is wrong
        print(f"export: error: {_one_line(exc)}", flush=True)
        return EXIT_BAD_DATA
    except (ExportError, FileNotFoundError, ValueError) as exc:
        print(f"export: error: {_one_line(exc)}", flush=True)
        return 1
    if result.skipped:
        return 0 if result.decision.publish else EXIT_REJECTED
    if result.published:
        cmds = serving_files.server_commands(f.export_base, config.model_name)
        print(f"serve it: {cmds['tensorflow_model_server']}")
        print(f"query it: {client_command(config.model_name, result.sample_request)}")
    return 0 if result.published else EXIT_REJECTED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
