"""Evaluation of a trainer's current weights on dataset splits, and ``metrics.json``.

Shared by batch mode (valid/ each round, test/ with the best weights) and streaming mode (a final
valid/ + test/ evaluation when a run has caught up), so both write the same ``metrics.json``
layout: ``{split: {task: {auc, gauc, gauc_impression, logloss, pred_mean, label_mean, count}}}``
plus job-specific fields.
"""
from __future__ import annotations

import json
import math

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.data import fs
from infnet_tf.data.partitions import list_partitions
from infnet_tf.input import check_rows, expected_rows, make_dataset, naming_bad_files, row_bytes
from infnet_tf.metrics import mean_auc
from infnet_tf.training.trainer import log

METRICS_FILE = "metrics.json"


def has_data(split_dir: str) -> bool:
    """Whether ``split_dir`` holds at least one complete (``_SUCCESS``) partition."""
    return bool(list_partitions(split_dir))


def eval_dataset(trainer, split_dir: str, cache_mb: int = 0) -> tf.data.Dataset:
    """The one evaluation input: every complete partition of ``split_dir``, in order, unshuffled.

    With ``cache_mb``, a split whose parsed rows fit in that many MB (the manifests' rows times
    :func:`~infnet_tf.input.row_bytes`) is kept in memory by the first full pass over the returned
    dataset (``tf.data`` cache): evaluating the same dataset object again reads no file and parses
    nothing (batch mode's valid/ every round). Not with ``--eval_steps`` (a partial pass keeps nothing).
    """
    cfg = trainer.config
    dataset = make_dataset(split_dir, trainer.layout, cfg.effective_eval_batch_size, shuffle=False,
                           repeat=False, deterministic=True)
    if cache_mb and not cfg.eval_steps:
        rows = expected_rows(split_dir)
        if rows is not None:
            megabytes = rows * row_bytes(dataset.element_spec) / (1 << 20)
            if megabytes <= cache_mb:
                log(f"evaluation: {split_dir} ({rows:,} rows, {megabytes:,.1f} MB parsed) is kept in memory "
                    f"after its first evaluation")
                return dataset.cache()
            log(f"evaluation: {split_dir} needs {megabytes:,.0f} MB parsed (> {cache_mb:,} MB): it is read "
                f"again at every evaluation")
    return dataset


def evaluate_dir(trainer, split_dir: str, log_prefix: str | None = None, attention: bool = True,
                 dataset: tf.data.Dataset | None = None) -> dict:
    """Metrics of every complete partition of ``split_dir`` (the one evaluation of a directory).

    The partitions are checked against their manifests (files before reading, rows after a full
    pass), and a corrupt or truncated file is named (:class:`~infnet_tf.data.errors.DataFileError`).
    ``dataset``: the split's :func:`eval_dataset` when the caller keeps one (a cached split); by
    default a new one is read.
    """
    dataset = eval_dataset(trainer, split_dir) if dataset is None else dataset
    with naming_bad_files(split_dir, f"evaluating {log_prefix or split_dir}"):
        metrics = trainer.evaluate(dataset, log_prefix=log_prefix, attention=attention)
    if not trainer.config.eval_steps:
        check_rows(split_dir, trainer.last_eval_examples, "evaluation of")
    return metrics


def evaluate_split(trainer, data_dir: str, split: str) -> dict | None:
    """Per-task metrics of ``<data_dir>/<split>`` (logged and written to TensorBoard), or None."""
    split_dir = fs.join(data_dir, split)
    if not has_data(split_dir):
        return None
    metrics = evaluate_dir(trainer, split_dir, log_prefix=split)
    trainer.write_scalars(split, {"mean_auc": mean_auc(metrics)})
    return metrics


def _json_safe(value):
    """NaN/inf -> None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` as JSON through a temporary file and a rename (local or object store)."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(_json_safe(payload), indent=2, sort_keys=True))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def write_metrics(trainer, payload: dict) -> str | None:
    """Write ``<model_dir>/metrics.json`` (chief only); returns its path."""
    trainer.summaries.flush()
    if not trainer.is_chief:
        return None
    path = fs.join(trainer.model_dir, METRICS_FILE)
    write_json(path, payload)
    return path
