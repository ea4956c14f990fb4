"""``--help`` answers fast and with exit 0: the training and export CLIs parse their flags before
TensorFlow loads, and ``scripts/demo.sh --help`` prints the demo's own usage without running anything."""
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


# module -> flags its --help must list
EXPORT_CLIS = {
    "export.export_model": ("--model_dir", "--data", "--export_base", "--model_name", "--keep",
                            "--gate_metric_threshold", "--holdout", "--holdout_max_rows", "--checkpoint",
                            "--precision", "--warmup_records", "--serve_versions", "--force"),
    "export.client": ("--server", "--protocol", "--model_name", "--rows", "--signature_name", "--model_version",
                      "--batch_size", "--timeout", "--describe"),
    "export.serving_config": ("--export_base", "--serve_versions"),
}


@pytest.mark.parametrize("flag", ["--help", "--helpfull"])
@pytest.mark.parametrize("module", sorted(EXPORT_CLIS))
def test_export_cli_help_exits_zero(module, flag):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", module, flag], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    print(f"python -m {module} {flag}: exit {proc.returncode} in {time.perf_counter() - start:.2f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in EXPORT_CLIS[module]:
        assert name in proc.stdout, name
    if flag == "--helpfull":
        assert "--flagfile" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_export_help_does_not_import_tensorflow():
    """``python -m export.export_model --help`` answers before TensorFlow loads (-X importtime lists every
    module a process imports, on stderr), and importing the library (:mod:`export.exporter`) for its
    functions does not load it either (TensorFlow loads on first use)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "export.export_model", "--help"], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert imported, proc.stderr[-3000:]
    assert "export.export_model" not in imported  # run as __main__, not imported a second time
    assert not imported & {"tensorflow", "tf_keras"}, "--help imported TensorFlow"
    code = ("import sys, export.exporter as m; print(sorted(k for k in ('tensorflow', 'tf_keras') if k in "
            "sys.modules)); from export.exporter import RawDecoder, export_from_trainer, tf; "
            "print(tf.__name__, RawDecoder.__module__, callable(export_from_trainer))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:2] == ["[]", "tensorflow export.raw_inputs True"], proc.stdout


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


# module -> flags its --help must list (the bench, sample-data and spec commands; no TensorFlow needed)
OTHER_CLIS = {
    "bench.report": ("--data", "--spec", "--sections", "--width", "--d:", "--[no]smoke", "--hub_cat", "--jobs"),
    "bench.beam_throughput": ("--num_impressions", "--num_shards", "--work_dir", "--[no]skip_plain", "--spec"),
    "pipelines.make_sample_data": ("--output", "--num_impressions", "--num_users", "--num_items", "--days",
                                   "--start_date", "--seed"),
    "infnet_tf.spec": ("FILE",),
}


@pytest.mark.parametrize("module", sorted(OTHER_CLIS))
def test_other_cli_help_exits_zero(module):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in OTHER_CLIS[module]:
        assert name in proc.stdout, name
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert imported and not imported & {"tensorflow", "tf_keras"}, "--help imported TensorFlow"
