"""Exact resume: SIGKILL at any moment, restart with the same flags -> every partition trained once.

* The CLI test kills ``python -m infnet_tf.train --mode=streaming`` with SIGKILL mid-run (right after
  the first partition is recorded, i.e. while the next one is being tested/trained), restarts it with
  the same flags and compares with an uninterrupted run; the restart runs with ``--follow`` and is
  stopped with SIGTERM, which must exit 0.
* The in-process tests kill the job deterministically inside the two windows that matter: after
  training but before the checkpoint (the partition must be trained again, from the previous
  checkpoint), and after the checkpoint but before the state file (it must *not* be trained again).
"""
import os
import signal
import subprocess
import time

import pytest

import infnet_tf  # noqa: F401
from infnet_tf.training import streaming
from infnet_tf.training.streaming import run_streaming
from tests.training.helpers import PYTHON, ROOT, TINY_MODEL_FLAGS, subprocess_env, write_data_with_artifact
from tests.training.stream_fixtures import (BATCH, ROWS, STEPS_PER_PARTITION, consumed_keys, log_records,
                                            read_state, tiny_trainer)


class Killed(BaseException):
    """Stands for SIGKILL inside the process (BaseException: nothing may catch and carry on)."""


def _write_data(root, days):
    layout = write_data_with_artifact(root, days=(days, 0, 0), rows_per_day=ROWS)
    return layout, sorted(os.listdir(os.path.join(root, "train")))


def _cli(data, model_dir, out_path, *extra):
    """Start the CLI; its output goes to ``out_path`` (read it with :func:`_out`)."""
    cmd = [PYTHON, "-m", "infnet_tf.train", f"--data={data}", f"--model_dir={model_dir}",
           "--mode=streaming", f"--batch_size={BATCH}", "--deterministic", "--log_every=1000",
           "--precision=float32", "--strategy=default", "--export_every=0", *TINY_MODEL_FLAGS, *extra]
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT)
    proc.out_path = out_path
    return proc


def _out(proc) -> str:
    with open(proc.out_path) as f:
        return f.read()


def _wait_until(predicate, proc, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"train exited ({proc.returncode}) before {what}:\n{_out(proc)[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}:\n{_out(proc)[-3000:]}")
        time.sleep(0.02)


def _assert_exactly_once(model_dir, keys, reference_steps):
    state = read_state(model_dir)
    assert [e["key"] for e in state["consumed"]] == keys            # in order, none twice, none skipped
    assert [e["global_step"] for e in state["consumed"]] == reference_steps
    assert state["global_step"] == reference_steps[-1]
    logged = [u["key"] for u in log_records(model_dir, "unit")]
    assert sorted(logged) == sorted(keys) and len(set(logged)) == len(logged)


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_trains_every_partition_exactly_once(tmp_path):
    data = str(tmp_path / "data")
    _, keys = _write_data(data, days=3)
    reference_dir, model_dir = str(tmp_path / "uninterrupted"), str(tmp_path / "model")
    reference = _cli(data, reference_dir, tmp_path / "reference.out")  # alongside the victim: saves time
    victim = _cli(data, model_dir, tmp_path / "victim.out")
    _wait_until(lambda: len(consumed_keys(model_dir)) >= 1, victim, 300, "the first partition")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    done_before_kill = consumed_keys(model_dir)
    assert 1 <= len(done_before_kill) < len(keys), "the kill must land mid-run"

    again = _cli(data, model_dir, tmp_path / "restart.out", "--follow", "--poll_interval_s=0.3")
    _wait_until(lambda: len(consumed_keys(model_dir)) == len(keys), again, 300, "the remaining partitions")
    again.send_signal(signal.SIGTERM)
    again.wait(timeout=120)
    out = _out(again)
    assert again.returncode == 0, out[-3000:]                       # SIGTERM: clean stop, status 0
    reference.wait(timeout=300)
    assert reference.returncode == 0, _out(reference)[-3000:]
    reference_steps = [e["global_step"] for e in read_state(reference_dir)["consumed"]]
    assert reference_steps == [STEPS_PER_PARTITION * (i + 1) for i in range(len(keys))]
    assert "SIGTERM received" in out
    assert f"starting at global step {reference_steps[len(done_before_kill) - 1]}" in out
    _assert_exactly_once(model_dir, keys, reference_steps)
    assert [r["event"] for r in log_records(model_dir) if r["event"] in ("start", "stop")] == \
        ["start", "start", "stop"]                                  # the killed run never logged a stop
    assert log_records(model_dir, "stop")[-1]["stop_reason"] == "signal SIGTERM"


def test_killed_before_checkpoint_or_before_state_file(tmp_path, monkeypatch):
    """Window 1: trained, not checkpointed -> trained again. Window 2: checkpointed, no state -> not."""
    data = str(tmp_path / "data")
    layout, keys = _write_data(data, days=2)
    model_dir = str(tmp_path / "model")

    # run 1: killed after training partition 2, before its checkpoint
    trainer = tiny_trainer(layout, model_dir)
    save = trainer.save_checkpoint

    def die_before_second_checkpoint():
        if trainer.global_step == 2 * STEPS_PER_PARTITION:
            raise Killed()
        return save()

    trainer.save_checkpoint = die_before_second_checkpoint
    with pytest.raises(Killed):
        run_streaming(trainer, data)
    assert consumed_keys(model_dir) == keys[:1]

    # run 2: partition 2 is trained again from checkpoint 1 (global step 4 -> 8, not 8 -> 12); killed
    # after its checkpoint, before the state file records it
    real_save_state = streaming.save_state

    def die_before_recording_second(path, state):
        if len(state.consumed) == 2:
            raise Killed()
        real_save_state(path, state)

    monkeypatch.setattr(streaming, "save_state", die_before_recording_second)
    with pytest.raises(Killed):
        run_streaming(tiny_trainer(layout, model_dir), data)
    assert consumed_keys(model_dir) == keys[:1]
    monkeypatch.setattr(streaming, "save_state", real_save_state)

    # run 3: the checkpoint already holds partition 2 -> nothing is trained, the state is repaired
    summary = run_streaming(tiny_trainer(layout, model_dir), data)
    assert summary["units"] == 0 and summary["global_step"] == 2 * STEPS_PER_PARTITION
    _assert_exactly_once(model_dir, keys, [STEPS_PER_PARTITION, 2 * STEPS_PER_PARTITION])
    recovered = [u for u in log_records(model_dir, "unit") if u.get("recovered")]
    assert [u["key"] for u in recovered] == keys[1:]
    notes = log_records(model_dir, "start")[-1]["notes"]
    assert "recovered 1 unit(s)" in notes[0] and "not trained again" in notes[0]
