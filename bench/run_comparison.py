"""A paired bootstrap of two models' multi-seed AUC on one split (the logic of ``python -m bench.compare_runs``).

:func:`run_predictions` restores a finished run's best (else newest) checkpoint under its evaluation weights and
predicts a split; :func:`user_draws` draws a split's users with replacement (all of a drawn user's rows come
along); :func:`compare` takes the A runs' mean AUC minus the B runs' on the split and on every draw.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)


def run_predictions(model_dir: str, data: str, split: str) -> dict:
    """{"auc": {task: AUC}, "probs": {task: [N]}, "labels": {task: [N]}, "users": [N]} of ``model_dir``'s
    best (else newest) checkpoint over every row of ``<data>/<split>``, in the split's order."""
    from export.exporter import best_checkpoint, latest_checkpoint, load_trainer_config
    from infnet_tf.data import artifact as artifact_lib
    from infnet_tf.metrics import auc
    from infnet_tf.models import ModelConfig
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.evaluation import eval_dataset
    from infnet_tf.training.trainer import Trainer

    recorded = load_trainer_config(model_dir)
    train_config = TrainConfig.from_dict({**recorded["train_config"], "precision": recorded["precision"]})
    layout = artifact_lib.load(data).feature_layout
    with tempfile.TemporaryDirectory(prefix="compare_runs_") as scratch:
        trainer = Trainer(layout, ModelConfig.from_dict(recorded["model_config"]), train_config, scratch)
        checkpoint = best_checkpoint(model_dir) or latest_checkpoint(model_dir)
        trainer.restore(checkpoint)
        with trainer.evaluation_weights():
            chunks = list(trainer.predict_batches(eval_dataset(trainer, os.path.join(data, split))))
    if not chunks:
        raise ValueError(f"compare_runs: {os.path.join(data, split)} holds no rows")
    tasks = sorted(chunks[0][0])
    probs = {t: np.concatenate([np.reshape(p[t], [-1]) for p, _, _ in chunks]) for t in tasks}
    labels = {t: np.concatenate([np.reshape(y[t], [-1]) for _, y, _ in chunks]) for t in tasks}
    users = np.concatenate([np.reshape(u, [-1]) for _, _, u in chunks])
    scores = {t: auc(labels[t][labels[t] >= 0], probs[t][labels[t] >= 0]) for t in tasks}
    print(f"{model_dir}: {checkpoint}, {len(users):,} rows: "
          + ", ".join(f"{t} auc {v:.5f}" for t, v in scores.items()), flush=True)
    return {"auc": scores, "probs": probs, "labels": labels, "users": users}


def user_draws(users: np.ndarray, resamples: int, seed: int):
    """Yields ``resamples`` row-index arrays, each every row of len(unique users) users drawn with
    replacement (a user drawn twice brings its rows twice)."""
    order = np.argsort(users, kind="stable")
    _, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        drawn = rng.integers(0, len(starts), len(starts))
        lengths = counts[drawn]
        offsets = np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        yield order[offsets]


def compare(a: list[dict], b: list[dict], resamples: int, seed: int) -> dict[str, dict]:
    """{task: {"a", "b", "diff", "sd", "lo", "hi", "a_ahead"}}: the A runs' mean AUC minus the B runs'
    on the split and over user draws (every run sees the same draws)."""
    from infnet_tf.metrics import auc

    users = a[0]["users"]
    for run in a + b:
        if len(run["users"]) != len(users) or not np.array_equal(run["users"], users):
            raise ValueError("compare_runs: the runs did not predict the same rows in the same order")
    if len(np.unique(users)) < 2:   # rows without a user key all hash to -1: one "user" would make every draw equal
        print("compare_runs: the split's rows carry no user key; drawing rows instead of users", flush=True)
        users = np.arange(len(users))
    out = {}
    for task in sorted(a[0]["auc"]):
        labels = a[0]["labels"][task]

        def mean_auc(runs, idx):
            y = labels[idx]
            keep = y >= 0
            return float(np.mean([auc(y[keep], r["probs"][task][idx][keep]) for r in runs]))

        diffs = np.array([mean_auc(a, idx) - mean_auc(b, idx) for idx in user_draws(users, resamples, seed)])
        mean_a = float(np.mean([r["auc"][task] for r in a]))
        mean_b = float(np.mean([r["auc"][task] for r in b]))
        lo, hi = np.percentile(diffs, [2.5, 97.5])
        out[task] = {"a": mean_a, "b": mean_b, "diff": mean_a - mean_b, "sd": float(np.std(diffs)),
                     "lo": float(lo), "hi": float(hi), "a_ahead": float(np.mean(diffs > 0))}
    return out
