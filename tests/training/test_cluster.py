"""``python -m infnet_tf.cluster``: real local clusters of separate processes talking gRPC on 127.0.0.1.

* multi_worker_mirrored (2 workers, each reading its own files) trains like one process;
* parameter_server (chief + 2 workers + 2 PS, embedding tables sharded) survives a worker killed
  mid-run; its sharded checkpoint restores into a one-process model with the same metrics and
  exports with every signature; in streaming mode every partition is trained once through a worker
  and a chief failure;
* the launcher stops every role on Ctrl-C and when a role dies (no process is left behind).
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time

import pytest

from infnet_tf.training.local_cluster import LocalCluster, Role, cluster_spec, free_ports, plan_roles, tf_config
from tests.training.helpers import (ORDER_STABLE_MODEL_FLAGS, PYTHON, ROOT, TINY_MODEL_FLAGS, subprocess_env,
                                   write_data_with_artifact)

_STARTED = re.compile(r"cluster: started (\S+) pid (\d+)")


def _train_flags(data, model_dir, *extra):
    return [f"--data={data}", f"--model_dir={model_dir}", "--mode=batch", "--batch_size=64",
            "--precision=float32", "--log_every=4", *TINY_MODEL_FLAGS, *extra]


def _launch(strategy, workers, ps, train_flags):
    return subprocess.Popen([PYTHON, "-m", "infnet_tf.cluster", f"--strategy={strategy}", f"--workers={workers}",
                             f"--ps={ps}", "--", *train_flags], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Run:
    """A launcher process whose output is read line by line; always killed (with its roles) at the end."""

    def __init__(self, *args):
        self.proc = _launch(*args)
        self.lines: list[str] = []
        self.pids: dict[str, int] = {}

    def read_until(self, predicate, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if m := _STARTED.search(line):
                self.pids[m.group(1)] = int(m.group(2))
            if predicate(line):
                return line
            if time.monotonic() > deadline:
                break
        return None

    def finish(self, timeout_s: float) -> int:
        self.read_until(lambda _: False, timeout_s)
        return self.proc.wait(timeout=timeout_s)

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.pids.values()]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait(timeout=30)


@pytest.fixture
def cluster_run():
    runs = []

    def start(*args):
        runs.append(_Run(*args))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


# -- the plan (no processes) --------------------------------------------------------------------------
def test_roles_ports_and_tf_config():
    assert plan_roles("multi_worker_mirrored", 3, 0) == [Role("worker", i) for i in range(3)]
    roles = plan_roles("parameter_server", 2, 2)
    assert [r.name for r in roles] == ["chief0", "worker0", "worker1", "ps0", "ps1"]
    ports = free_ports(len(roles))
    assert len(set(ports)) == 5
    spec = cluster_spec(roles, ports)
    assert spec == {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{p}" for p in ports[1:3]],
                    "ps": [f"127.0.0.1:{p}" for p in ports[3:]]}
    assert json.loads(tf_config(spec, roles[2])) == {"cluster": spec, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="--ps"):
        plan_roles("parameter_server", 2, 0)
    with pytest.raises(ValueError, match="--ps"):
        plan_roles("multi_worker_mirrored", 2, 1)
    with pytest.raises(ValueError, match="--workers"):
        plan_roles("multi_worker_mirrored", 0, 0)


class _Exited:
    """A finished role process as ``LocalCluster.wait`` sees it (``poll()`` -> its status)."""

    def __init__(self, status):
        self.status = status

    def poll(self):
        return self.status


@pytest.mark.parametrize("statuses, want", [
    ({"worker0": 1, "worker1": -signal.SIGKILL}, 128 + signal.SIGKILL),   # the killed peer, not its victim
    ({"worker0": 1, "worker1": None}, 1),
    ({"worker0": 0, "worker1": 3}, 3),
    ({"worker0": 0, "worker1": 0}, 0),
])
def test_wait_reports_the_role_killed_by_a_signal_first(statuses, want):
    """When one poll finds several roles failed (worker1 killed, worker0's collective aborted by the dead
    peer and exited 1), the launcher's status is the signal's, 128 + N: the cause, whatever the roles'
    order. A single failure is reported as is; every worker done is 0."""
    launcher = LocalCluster("multi_worker_mirrored", 2, 0, [], out=io.StringIO())
    launcher.procs = {name: _Exited(status) for name, status in statuses.items()}
    assert launcher.wait(poll_s=0) == want


def test_launcher_help_is_fast_and_documents_every_flag():
    proc = subprocess.run([PYTHON, "-m", "infnet_tf.cluster", "--help"], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in ("Train on a local tf.distribute cluster", "--strategy", "--workers", "--ps", "CLUSTER strategy="):
        assert text in proc.stdout, text
    code = "import sys, infnet_tf.cluster; print('tensorflow' in sys.modules)"
    imports = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                             timeout=120)
    assert imports.stdout.strip() == "False", imports.stdout + imports.stderr   # flags parse before TF loads


def test_launcher_rejects_bad_counts_with_exit_2():
    proc = subprocess.run([PYTHON, "-m", "infnet_tf.cluster", "--strategy=parameter_server", "--workers=2",
                           "--ps=0", "--", "--data=/d", "--model_dir=/m"], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--ps: parameter_server needs at least 1 PS task" in proc.stderr


# -- real clusters --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_multi_worker_mirrored_trains_like_one_process(tmp_path, cluster_run):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(2, 1, 0), rows_per_day=256, files_per_day=2)  # 4 train files
    flags = ["--epochs=1", "--deterministic", *ORDER_STABLE_MODEL_FLAGS]   # the workers see other batch orders
    single = subprocess.run([PYTHON, "-m", "infnet_tf.train", "--strategy=default",
                             *_train_flags(data, tmp_path / "single", *flags)], cwd=ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    run = cluster_run("multi_worker_mirrored", 2, 0, _train_flags(data, tmp_path / "cluster", *flags))
    assert run.finish(timeout_s=300) == 0, run.output()
    assert run.lines[-1] == "CLUSTER strategy=multi_worker_mirrored workers=2 ps=0 sharded_tables=0 steps=8"
    assert any(l.startswith("[worker1] trainer: ") and "2 replica(s)" in l for l in run.lines), run.output()
    one = json.load(open(tmp_path / "single" / "metrics.json"))
    two = json.load(open(tmp_path / "cluster" / "metrics.json"))   # written by the chief worker only
    assert not (tmp_path / "cluster" / "workers" / "worker1" / "metrics.json").exists()
    for a, b in zip(one["history"], two["history"]):
        # every train row exactly once per epoch (the manifests' row check passed in both runs)
        assert a["train"]["examples"] == b["train"]["examples"] == 512
        assert b["train"]["loss"] == pytest.approx(a["train"]["loss"], rel=0.02)
        assert b["valid_mean_auc"] == pytest.approx(a["valid_mean_auc"], abs=0.05)
    assert two["valid"]["click"]["count"] == one["valid"]["click"]["count"] == 256  # unsharded evaluation


@pytest.mark.slow
def test_parameter_server_survives_a_killed_worker_and_exports_like_one_process(tmp_path, cluster_run):
    from tests.export.fixtures import tiny_artifact, write_data

    data = str(tmp_path / "data")
    write_data(data, tiny_artifact(), rows=256)                        # train + valid, a full artifact
    model_dir = tmp_path / "ps"
    run = cluster_run("parameter_server", 2, 2, _train_flags(
        data, model_dir, "--train_steps=24", "--epochs=1", "--ps_min_shard_bytes=256"))
    assert run.read_until(lambda l: l.startswith("[chief0] step 4 "), timeout_s=240), run.output()
    os.kill(run.pids["worker1"], signal.SIGKILL)                      # a worker dies mid-run
    assert run.finish(timeout_s=240) == 0, run.output()
    text = run.output()
    assert "cluster: worker1 exited with status -9; training goes on with worker0" in text
    assert re.search(r"\[chief0\] trainer: [1-9]\d* embedding table\(s\) sharded over 2 PS task\(s\)", text), text
    assert re.fullmatch(r"CLUSTER strategy=parameter_server workers=2 ps=2 sharded_tables=[1-9]\d* steps=24",
                        run.lines[-1]), run.lines[-1]
    assert not any(_alive(pid) for pid in run.pids.values())
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["history"][-1]["train"]["steps"] == 24 and metrics["history"][-1]["train"]["examples"] == 24 * 64

    # the usual export restores the sharded checkpoint into one process: every signature, the
    # SavedModel equal to the restored model, and its valid AUCs are the chief's
    exports = tmp_path / "exports"
    proc = subprocess.run([PYTHON, "-m", "export.export_model", f"--model_dir={model_dir}", f"--data={data}",
                           f"--export_base={exports}"], cwd=ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.load(open(exports / "infnet" / "1" / "assets.extra" / "infnet_export.json"))
    assert record["checkpoint"] == metrics["best"]["checkpoint"] and record["gate"]["publish"]
    assert set(record["signatures"]) == {"serving_default", "predict_examples", "predict_model_inputs",
                                         "score_candidates"}
    assert record["validation"]["raw_vs_model_max_abs_diff"] <= 1e-5
    assert record["holdout"].endswith("valid/dt=2026-09-21")             # the one valid partition
    for task, auc in record["gate"]["per_task"].items():
        assert auc == pytest.approx(metrics["valid"][task]["auc"], abs=1e-6), task


@pytest.mark.slow
def test_launcher_stops_the_cluster_when_a_role_dies(tmp_path, cluster_run):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(1, 0, 0), rows_per_day=128)
    run = cluster_run("multi_worker_mirrored", 2, 0,
                      _train_flags(data, tmp_path / "m", "--train_steps=100000", "--epochs=1"))
    assert run.read_until(lambda l: l.startswith("[worker0] step "), timeout_s=240), run.output()
    assert set(run.pids) == {"worker0", "worker1"} and all(_alive(p) for p in run.pids.values())
    os.kill(run.pids["worker1"], signal.SIGKILL)                      # worker0 now waits on a dead peer
    assert run.finish(timeout_s=60) == 128 + signal.SIGKILL, run.output()
    assert "cluster: worker1 exited with status -9; stopping the cluster" in run.output()
    assert run.lines[-1].startswith("CLUSTER strategy=multi_worker_mirrored workers=2 ps=0 ")
    assert "cluster: stopped worker0" in run.output()
    assert not any(_alive(p) for p in run.pids.values()), run.output()


@pytest.mark.slow
def test_parameter_server_streaming_trains_every_partition_once_through_failures(tmp_path, cluster_run):
    """Streaming under parameter_server: a worker killed mid-partition, then Ctrl-C on the launcher
    mid-partition (every role stopped, none left behind); the same command again resumes from the
    chief's checkpoint and every partition is trained exactly once, in order (16, 16 and 64 steps: the
    last partition is long enough that the Ctrl-C lands inside it however the coordinator batches
    its steps; the chief's progress lines can skip a multiple of --log_every)."""
    from tests.training.stream_fixtures import read_state

    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(3, 1, 0), rows_per_day=(512, 512, 2048, 512))
    model_dir = tmp_path / "m"
    flags = _train_flags(data, model_dir, "--ps_min_shard_bytes=256")
    flags = [f for f in flags if not f.startswith(("--mode=", "--batch_size=", "--log_every="))]
    flags += ["--mode=streaming", "--batch_size=32", "--log_every=8"]

    first = cluster_run("parameter_server", 2, 2, flags)
    assert first.read_until(lambda l: l.startswith("[chief0] step 8 "), timeout_s=240), first.output()
    os.kill(first.pids["worker1"], signal.SIGKILL)                    # a worker dies mid-partition 1
    in_third = lambda l: l.startswith("[chief0] step ") and 32 < int(l.split()[2]) < 96   # noqa: E731
    assert first.read_until(in_third, timeout_s=240), first.output()
    assert "training goes on with worker0" in first.output()
    assert [e["global_step"] for e in read_state(str(model_dir))["consumed"]] == [16, 32]
    first.proc.send_signal(signal.SIGINT)                             # Ctrl-C mid-partition 3
    assert first.finish(timeout_s=60) == 130, first.output()
    assert "cluster: stopped chief0, ps0, ps1, worker0" in first.output()
    assert first.lines[-1].startswith("CLUSTER strategy=parameter_server workers=2 ps=2 ")
    assert not any(_alive(p) for p in first.pids.values()), first.output()   # nothing left behind

    again = cluster_run("parameter_server", 2, 2, flags)             # the same command again
    assert again.finish(timeout_s=300) == 0, again.output()
    # the chief was stopped mid-partition 3 (SIGTERM, then SIGKILL after the grace period): the
    # restart resumes from the last checkpoint the state file records
    restored = re.search(r"\[chief0\] checkpoint: restored \S+ \(global step (\d+)\)", again.output())
    assert restored and int(restored.group(1)) in (32, 96), again.output()
    state = read_state(str(model_dir))
    keys = sorted(os.listdir(os.path.join(data, "train")))
    assert [e["key"] for e in state["consumed"]] == keys                 # in order, none twice, none skipped
    assert [e["global_step"] for e in state["consumed"]] == [16, 32, 96]
    assert again.lines[-1] == "CLUSTER strategy=parameter_server workers=2 ps=2 sharded_tables=3 steps=96"
