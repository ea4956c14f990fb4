"""``--help`` answers fast and with exit 0: the training CLI parses its flags before TensorFlow loads,
and ``scripts/demo.sh --help`` prints the demo's own usage without running anything."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, **extra)
    env.pop("TF_CONFIG", None)
    return env


@pytest.mark.parametrize("flag", ["--help", "--helpfull", "-h"])
def test_train_help_exits_zero(flag):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "infnet_tf.train", flag], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    print(f"python -m infnet_tf.train {flag}: exit {proc.returncode} in {time.perf_counter() - start:.2f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Train a ranking model" in proc.stdout
    for name in ("--data", "--model_dir", "--mode", "--d", "--num_blocks", "--batch_size", "overwrite_model_dir"):
        assert name in proc.stdout, name
    if flag == "--helpfull":
        assert "--flagfile" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_train_flags_do_not_import_tensorflow():
    """Flag definitions (and their defaults) must not load TensorFlow, or --help pays for it."""
    code = "import sys, infnet_tf.train; print(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout


def test_train_bad_flag_still_fails():
    proc = subprocess.run([sys.executable, "-m", "infnet_tf.train", "--no_such_flag=1"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]


def test_help_requested():
    from infnet_tf.env import help_requested

    assert help_requested(["prog", "--helpfull"]) and help_requested(["prog", "--data=x", "-h"])
    assert not help_requested(["prog", "--data=x"]) and not help_requested(["prog", "--", "--help"])


def test_demo_help_prints_usage_and_runs_nothing(tmp_path):
    work = tmp_path / "work"
    start = time.perf_counter()
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh"), "--help"], cwd=str(tmp_path),
                          env=_env(INFNET_WORKDIR=str(work)), capture_output=True, text=True, timeout=60)
    print(f"bash scripts/demo.sh --help: exit {proc.returncode} in {time.perf_counter() - start:.2f}s")
    assert proc.returncode == 0, proc.stderr
    for name in ("INFNET_WORKDIR", "NUM_IMPRESSIONS", "DEMO_TRAIN_FLAGS", "DEMO_VERBOSE"):
        assert name in proc.stdout, name
    assert not work.exists()
    assert proc.stderr == ""
