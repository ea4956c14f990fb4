"""``bench.diagnostics``: its weight-change measure by hand, and the CLI on tiny data.

The CLI runs in a subprocess (an entry module: it defines absl flags at import, and it trains a model)
on ``tests.tiny_data`` partitions plus a transform artifact holding the layout.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.weight_change import relative_change
from tests.tiny_data import write_data_with_artifact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_relative_change_is_the_group_frobenius_ratio():
    then = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]            # |then| = 5
    now = [np.array([3.0, 1.0]), np.array([[0.0], [4.0]])]             # |now - then| = 1
    assert relative_change(now, then) == pytest.approx(0.2)
    assert relative_change(then, then) == 0.0
    assert relative_change([np.zeros(2)], [np.zeros(2)]) == 0.0
    assert relative_change([np.ones(2)], [np.zeros(2)]) == math.inf


def test_cli_records_drift_from_initialisation(tmp_path):
    data, out = str(tmp_path / "data"), str(tmp_path / "diag.json")
    write_data_with_artifact(data, rows_per_day=96)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    cmd = [sys.executable, "-m", "bench.diagnostics", f"--data={data}", "--presets=default", "--steps=3",
           "--every=1", "--batch_size=32", "--d=8", "--num_blocks=1", f"--output={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("DIAG default: "), proc.stdout[-2000:]
    with open(out) as f:
        records = json.load(f)
    assert [r["step"] for r in records] == [1, 2, 3]
    first, last = records[0], records[-1]
    groups = [k.split("/", 1)[1] for k in first if k.startswith("drift/")]
    assert "embeddings" in groups and "heads" in groups
    for g in groups:
        # after one step the drift from the initialisation is that step's update
        assert first[f"drift/{g}"] == pytest.approx(first[f"update/{g}"], rel=1e-6), g
        assert last[f"drift/{g}"] > 0, g
    # three steps move a group further from its start than the last step alone did
    assert any(last[f"drift/{g}"] > 1.01 * last[f"update/{g}"] for g in groups), last
