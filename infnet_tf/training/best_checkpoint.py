"""Batch mode's best-on-valid checkpoint, kept apart in ``<model_dir>/best`` so rotation never deletes it.

The best round's checkpoint is the round checkpoint just written to ``<model_dir>/checkpoints`` (same
variables, same global step), so it is kept by copying that checkpoint's files, not by serialising
the model a second time: a TF checkpoint save walks the whole object graph in Python (~0.3 s per save
for INFNet's defaults on our CPUs, a tenth of an epoch of a 20k-row log), a copy moves bytes only.
The data files are copied first and the ``.index`` last (a checkpoint without its index does not
exist for a restore), then the directory's ``checkpoint`` state file names the copy (what
``tf.train.latest_checkpoint`` reads), then the previous best's files are deleted: a kill at any
point leaves the previous best or the new one whole.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management

from infnet_tf.data import fs

BEST_SUBDIR = "best"
BEST_NAME = "best"


def checkpoint_files(prefix: str) -> list[str]:
    """The files of the checkpoint ``prefix``, data files first and the ``.index`` last; raises
    ``FileNotFoundError`` when its index is missing."""
    files = tf.io.gfile.glob(prefix + ".*")
    index = prefix + ".index"
    if index not in files:
        raise FileNotFoundError(f"best checkpoint: {index} not found (was {prefix} written?)")
    return sorted(f for f in files if f != index) + [index]


def keep_best(source_prefix: str, directory: str, number: int) -> str:
    """Copy the checkpoint ``source_prefix`` to ``<directory>/best-<number>``, make it the directory's
    latest checkpoint and delete every other checkpoint there; returns the copy's prefix."""
    tf.io.gfile.makedirs(directory)
    name = f"{BEST_NAME}-{int(number)}"
    target = fs.join(directory, name)
    source_name = source_prefix.rsplit("/", 1)[-1]
    for path in checkpoint_files(source_prefix):
        suffix = path.rsplit("/", 1)[-1][len(source_name):]        # ".index", ".data-00000-of-00001"
        tf.io.gfile.copy(path, target + suffix, overwrite=True)
    checkpoint_management.update_checkpoint_state_internal(
        directory, model_checkpoint_path=name, all_model_checkpoint_paths=[name], save_relative_paths=True)
    for path in tf.io.gfile.glob(fs.join(directory, f"{BEST_NAME}-*")):
        if not path.rsplit("/", 1)[-1].startswith(name + "."):
            tf.io.gfile.remove(path)
    return target
