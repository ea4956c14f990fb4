"""``python -m bench.beam_throughput`` on a tiny sample: both runs, the RATIO line, Beam flags passed
through, and a bad flag of its own exits 2 (one subprocess each, a few seconds)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "bench.beam_throughput", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_tiny_run_prints_both_rates_and_the_ratio(tmp_path):
    proc = _run("--num_impressions=2000", "--num_shards=2", f"--work_dir={tmp_path}",
                "--direct_num_workers=1", "--direct_running_mode=in_memory")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("plain loop (1 process") and "2,000 rows" in line for line in lines), proc.stdout
    beam = [line for line in lines if line.startswith("beam job (")]
    assert beam and "--direct_running_mode=in_memory" in beam[0], proc.stdout  # Beam's flag reached Beam
    assert re.fullmatch(r"RATIO beam_over_plain_seconds=\d+\.\d{3}", lines[-1]), lines[-1]
    assert (tmp_path / "plain" / "_DATASET.json").is_file() and (tmp_path / "beam" / "_DATASET.json").is_file()


def test_bad_flag_exits_2():
    proc = _run("--num_shards=many")
    assert proc.returncode == 2 and "--num_shards" in proc.stderr, proc.stderr[-3000:]
