"""``bench.compare_runs``: a run's AUC is the Trainer's own, a user draw brings whole users, a model compared
with itself differs by exactly 0, and the CLI prints its DIFF line."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import infnet_tf  # noqa: F401

from bench.run_comparison import compare, run_predictions, user_draws
from tests.training.helpers import tiny_model_config, tiny_train_config, write_data_with_artifact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny data (train, valid, test) and two trained model dirs (seeds 0 and 1), newest checkpoint only;
    with each run's own test metrics from its Trainer."""
    from infnet_tf.training.evaluation import eval_dataset
    from infnet_tf.input import make_dataset
    from infnet_tf.training.trainer import Trainer

    root = str(tmp_path_factory.mktemp("compare_runs"))
    data = os.path.join(root, "data")
    layout = write_data_with_artifact(data, days=(2, 1, 1), rows_per_day=256)
    out = []
    for seed in (0, 1):
        model_dir = os.path.join(root, f"run{seed}")
        trainer = Trainer(layout, tiny_model_config(), tiny_train_config(seed=seed), model_dir)
        trainer.train_on(make_dataset(f"{data}/train", layout, 64, shuffle=True, repeat=False, deterministic=True))
        trainer.save_checkpoint()
        out.append((model_dir, trainer.evaluate(eval_dataset(trainer, f"{data}/test"), attention=False)))
    return data, out


def test_a_run_predicts_the_split_as_its_trainer_evaluated_it(runs):
    data, trained = runs
    for model_dir, metrics in trained:
        got = run_predictions(model_dir, data, "test")
        assert set(got["auc"]) == {"click", "like"}
        for task, value in got["auc"].items():
            assert value == pytest.approx(metrics[task]["auc"], abs=1e-6), task
        assert len(got["users"]) == 256 and len(np.unique(got["users"])) > 20


def test_a_user_draw_brings_every_row_of_each_drawn_user():
    users = np.array([7, 3, 7, 9, 3, 7, 5])                 # rows per user: 3 -> 2, 5 -> 1, 7 -> 3, 9 -> 1
    rows_of = {u: set(np.flatnonzero(users == u)) for u in np.unique(users)}
    for idx in user_draws(users, resamples=50, seed=1):
        drawn = users[idx]
        counts = {u: int(np.sum(drawn == u)) for u in np.unique(drawn)}
        assert all(counts[u] % len(rows_of[u]) == 0 for u in counts), (drawn, counts)
        assert all(set(idx[drawn == u]) == rows_of[u] for u in counts)   # all of a drawn user's rows
        assert sum(counts[u] // len(rows_of[u]) for u in counts) == 4  # as many draws as users


def test_a_model_compared_with_itself_differs_by_exactly_zero_and_with_another_by_its_auc(runs):
    data, trained = runs
    first, second = (run_predictions(model_dir, data, "test") for model_dir, _ in trained)
    same = compare([first], [first], resamples=20, seed=0)
    assert all(r["diff"] == 0 and r["sd"] == 0 and r["lo"] == r["hi"] == 0 and r["a_ahead"] == 0
               for r in same.values()), same
    other = compare([first, second], [second], resamples=20, seed=0)
    for task, r in other.items():
        assert r["a"] == pytest.approx((first["auc"][task] + second["auc"][task]) / 2)
        assert r["diff"] == pytest.approx(r["a"] - second["auc"][task])
        assert r["lo"] <= r["hi"] and 0 <= r["a_ahead"] <= 1


def test_the_cli_prints_the_diff_line(runs):
    data, trained = runs
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    a, b = (model_dir for model_dir, _ in trained)
    proc = subprocess.run([sys.executable, "-m", "bench.compare_runs", f"--data={data}", f"--a={a}", f"--b={b}",
                           "--resamples=10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("DIFF click=") and " like=" in last, last


def test_rows_without_user_keys_are_drawn_one_by_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)

    def run(noise):
        probs = labels + rng.normal(0, noise, 400)
        return {"auc": {"click": float("nan")}, "probs": {"click": probs}, "labels": {"click": labels},
                "users": np.full(400, -1)}   # what the Trainer yields without USER_KEY

    got = compare([run(0.8)], [run(1.5)], resamples=50, seed=0)["click"]
    assert got["sd"] > 0 and got["lo"] < got["hi"], got   # one "user" would give every draw the same rows

