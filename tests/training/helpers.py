"""Tiny datasets and configs for the training tests (d=8, one block, batch 64)."""
from __future__ import annotations

import os
import sys

from tests.tiny_data import layout_only_artifact, tiny_model_config, write_data_with_artifact, write_dataset  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable
TINY_MODEL_FLAGS = ["--d=8", "--num_blocks=1", "--num_heads=2", "--n_cat_hubs=4",
                    "--n_shared_task_hubs=2", "--cat_hub_hidden=16", "--head_hidden=16"]


def tiny_train_config(**changes):
    from infnet_tf.training.config import TrainConfig

    base = dict(batch_size=64, log_every=16, precision="float32", strategy="default")
    return TrainConfig(**{**base, **changes})


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, **extra)
    env.pop("TF_CONFIG", None)
    return env
