"""``python -m bench.model_efficiency --smoke`` on tiny data: every part runs and the RATIO line parses.

Runs the real CLI in a subprocess (it sets global Keras policies and builds several trainers) on
``tests.tiny_data`` partitions plus a transform artifact holding the layout.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

from tests.tiny_data import write_data_with_artifact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_smoke_prints_every_section_and_the_ratio_line(tmp_path):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, rows_per_day=96)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    cmd = [sys.executable, "-m", "bench.model_efficiency", "--smoke", f"--data={data}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for part in ("fp32 matmul peak", "train step (fwd+bwd+optimizer)", "infnet d=", "dcnv2 d=",
                 "top op types", "top layer scopes", "end to end (run_batch", "sequence fill of the batch"):
        assert part in out, f"missing {part!r} in:\n{out[-3000:]}"
    last = out.strip().splitlines()[-1]
    assert last.startswith("RATIO "), last
    values = dict(kv.split("=") for kv in last.split()[1:])
    assert set(values) == {"infnet_over_dcnv2_step", "mfu_infnet", "end_to_end_over_step"}
    assert all(math.isfinite(float(v)) and float(v) > 0 for v in values.values()), last


def test_sequence_fill_is_the_mean_real_length_over_max_len():
    import infnet_tf  # noqa: F401
    import tensorflow as tf

    from bench.measure import sequence_fill
    from tests.tiny_data import multi_type_layout

    layout = multi_type_layout(n_types=2, max_len=5)
    features = {"seq/type0/length": tf.constant([5, 0, 2, 9]), "seq/type1/length": tf.constant([2, 2, 2, 2])}
    assert sequence_fill(layout, features) == "type0 3.0/5 (60%), type1 2.0/5 (40%)"   # 9 counts as 5
