"""Tiny datasets and configs for the training tests (d=8, one block, batch 64)."""
from __future__ import annotations

import os
import sys

from tests.tiny_data import layout_only_artifact, tiny_model_config, write_data_with_artifact, write_dataset  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable
TINY_MODEL_FLAGS = ["--d=8", "--num_blocks=1", "--num_heads=2", "--n_cat_hubs=4",
                    "--n_shared_task_hubs=2", "--cat_hub_hidden=16", "--head_hidden=16"]
# The distribution-equivalence tests compare two strategies' training on the same tiny data, a few
# steps, near chance: they check the distribution, not the recipe, so they pin the tokenizer whose
# first steps depend least on batch and reduction order. The default ordinal_encoding
# (cumulative_with_gaps) sums up to 16 time-gap rows per token, whose Adagrad steps move a token
# most in the first steps: 2 workers reading other batch orders ended 4.2% from one process's train
# loss after 8 steps of 64 rows (1.0% with this setting; bench/REPORT.md, round 2). And no id dropout:
# its masks are drawn per replica (the seed folded with the replica id), so N replicas drop other ids
# than one device does on the same rows — the runs would differ by design, not by the distribution.
ORDER_STABLE_MODEL = {"ordinal_encoding": "cumulative", "id_dropout": 0.0}
ORDER_STABLE_MODEL_FLAGS = [f"--{k}={v}" for k, v in ORDER_STABLE_MODEL.items()]


def tiny_train_config(**changes):
    from infnet_tf.training.config import TrainConfig

    base = dict(batch_size=64, log_every=16, precision="float32", strategy="default")
    return TrainConfig(**{**base, **changes})


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, **extra)
    env.pop("TF_CONFIG", None)
    return env
