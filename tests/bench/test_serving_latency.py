"""``python -m bench.serving_latency`` on a tiny dataset built by the dataset job: both exports serve, the
reference's row is printed, and the RATIO line's reference ratios are the printed latencies' quotients.

Runs the real CLI in a subprocess (it exports two SavedModels and loads them the way TF Serving does).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from tests.export import sample_data

    return sample_data.build(str(tmp_path_factory.mktemp("serving_latency")), num_impressions=600)["data"]


def run_bench(data: str, *extra: str) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "bench.serving_latency", f"--data={data}", "--batch_sizes=4", "--iterations=5",
           "--max_seconds=1", "--warmup=1", "--seq_lens=", "--d=8", "--peak_sizes=128", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def ratios(out: str) -> dict[str, float]:
    last = out.strip().splitlines()[-1]
    assert last.startswith("RATIO "), last
    return {k: float(v) for k, v in (kv.split("=") for kv in last.split()[1:])}


def test_the_reference_model_is_served_beside_ours_and_the_ratios_are_its_latencies(dataset):
    out = run_bench(dataset)   # the default reference: DCNv2
    assert "exported the reference dcnv2 (d=8)" in out, out[-3000:]
    ours = re.search(r"batch\s+4: raw p50\s+([\d.]+) ms p99\s+([\d.]+) ms", out)
    ref = re.search(r"reference dcnv2 raw p50\s+([\d.]+) ms p99\s+([\d.]+) ms", out)
    floor = re.search(r"reference dcnv2 compute floor: batch 4 ([\d.]+) ms", out)
    assert ours and ref and floor, out[-3000:]
    got = ratios(out)
    assert set(got) == {"transform_overhead_at_4", "p99_ms_at_4", "p99_over_floor_at_4",
                        "p99_over_reference_at_4", "reference_p99_over_floor_at_4"}, got
    # the printed milliseconds are rounded to 0.01, the ratios computed from the unrounded values
    lo, hi = lambda x: float(x) - 0.005, lambda x: float(x) + 0.005
    assert lo(ours[2]) / hi(ref[2]) <= got["p99_over_reference_at_4"] <= hi(ours[2]) / lo(ref[2]), got
    assert got["reference_p99_over_floor_at_4"] >= lo(ref[2]) / hi(floor[1]), got
    if lo(floor[1]) > 0:
        assert got["reference_p99_over_floor_at_4"] <= hi(ref[2]) / lo(floor[1]), got


def test_an_empty_reference_model_times_ours_alone_at_the_given_precision(dataset):
    out = run_bench(dataset, "--reference_model=", "--precision=mixed_bfloat16")
    assert "exported infnet (d=8, 1 blocks, mixed_bfloat16)" in out, out[-3000:]
    assert "reference" not in out.split("requests:", 1)[1], out[-3000:]
    assert set(ratios(out)) == {"transform_overhead_at_4", "p99_ms_at_4", "p99_over_floor_at_4"}
