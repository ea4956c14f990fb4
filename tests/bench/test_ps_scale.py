"""``python -m bench.ps_scale``: the throughput model on hand-computed numbers, and a smoke run on tiny data."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from bench.ps_scale import ps_limit, throughput
from tests.training.helpers import ROOT, subprocess_env, write_data_with_artifact


def test_throughput_model_by_hand():
    # 1,000 ex/s at batch 100: 0.1 s compute + 1 MB / 125 MB/s = 0.008 s on the wire -> 0.108 s a step;
    # one PS moves 125 steps/s = 12,500 ex/s, reached between 13 (12,037 ex/s) and 14 workers
    assert throughput(1, 1000.0, 100, 1e6, 1.25e8, 1) == pytest.approx(100 / 0.108)
    assert throughput(13, 1000.0, 100, 1e6, 1.25e8, 1) == pytest.approx(1300 / 0.108)
    assert throughput(14, 1000.0, 100, 1e6, 1.25e8, 1) == pytest.approx(12_500)
    assert throughput(14, 1000.0, 100, 1e6, 1.25e8, 2) == pytest.approx(1400 / 0.108)   # two PS: not yet
    assert ps_limit(1000.0, 100, 1e6, 1.25e8, 1) == 14
    assert ps_limit(1000.0, 100, 1e6, 1.25e8, 2) == 27


def test_smoke_on_tiny_data(tmp_path):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(1, 0, 0), rows_per_day=128)
    proc = subprocess.run([sys.executable, "-m", "bench.ps_scale", f"--data={data}", "--batch_size=64", "--d=8",
                           "--num_blocks=1", "--steps=2", "--warmup_steps=1"], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"one process: [\d,]+ examples/s at batch 64", out), out
    assert len(re.findall(r"^\s+\d+ workers: ", out, re.M)) == 9, out
    values = dict(kv.split("=") for kv in out.strip().splitlines()[-1].split()[1:])
    assert set(values) == {"ps_limit_workers", "ps_limit_workers_gpu30x", "dense_share_of_traffic"}
    assert int(values["ps_limit_workers"]) >= int(values["ps_limit_workers_gpu30x"]) >= 1
    assert 0 < float(values["dense_share_of_traffic"]) < 1 and math.isfinite(float(values["dense_share_of_traffic"]))
