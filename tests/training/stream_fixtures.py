"""Streaming-test pieces on top of ``tests.training.helpers``: a tiny trainer, late partitions, readers."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import infnet_tf  # noqa: F401

from tests.tiny_data import write_dataset
from tests.training.helpers import tiny_model_config, tiny_train_config

BATCH = 64
ROWS = 256                     # rows per partition -> 4 steps per partition
STEPS_PER_PARTITION = ROWS // BATCH


def tiny_trainer(layout, model_dir: str):
    """The tiny model (d=8, one block) at batch 64, deterministic, quiet progress."""
    from infnet_tf.training.trainer import Trainer

    config = tiny_train_config(batch_size=BATCH, deterministic=True, log_every=1000)
    return Trainer(layout, tiny_model_config(), config, model_dir)


def add_partition(train_dir: str, key: str, seed: int, success: bool = True) -> str:
    """Write one more train partition ``<train_dir>/<key>`` (tiny data), with or without ``_SUCCESS``."""
    scratch = tempfile.mkdtemp()
    try:
        write_dataset(scratch, days=(1, 0, 0), rows_per_day=ROWS, seed=seed)
        (made,) = os.listdir(os.path.join(scratch, "train"))
        target = os.path.join(train_dir, key)
        os.makedirs(target)
        for name in os.listdir(os.path.join(scratch, "train", made)):
            if name != "_SUCCESS":
                shutil.copy(os.path.join(scratch, "train", made, name), target)
    finally:
        shutil.rmtree(scratch)
    if success:
        mark_success(target)
    return target


def mark_success(partition_dir: str) -> None:
    open(os.path.join(partition_dir, "_SUCCESS"), "w").close()


def read_state(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "streaming_state.json")) as f:
        return json.load(f)


def consumed_keys(model_dir: str) -> list[str]:
    """Keys in the state file ([] while it does not exist yet)."""
    path = os.path.join(model_dir, "streaming_state.json")
    if not os.path.exists(path):
        return []
    return [e["key"] for e in read_state(model_dir)["consumed"]]


def log_records(model_dir: str, event: str | None = None) -> list[dict]:
    path = os.path.join(model_dir, "streaming_log.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if event is None or r["event"] == event]
