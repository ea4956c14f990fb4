"""MirroredStrategy over two logical CPU devices trains like one device at the same global batch.

Logical devices must be configured before TensorFlow initialises, so the comparison runs in a
fresh subprocess.
"""
import json
import subprocess
import textwrap

import pytest

from tests.training.helpers import PYTHON, ROOT, subprocess_env, write_data_with_artifact

_SCRIPT = textwrap.dedent("""
    import json, sys
    import infnet_tf
    from infnet_tf.training.distribution import split_cpu
    split_cpu(2)
    from infnet_tf.input import load_layout, make_dataset
    from infnet_tf.training.trainer import Trainer
    from tests.training.helpers import tiny_model_config, tiny_train_config

    data, out = sys.argv[1], {}
    layout = load_layout(data)
    for strategy in ("default", "mirrored"):
        trainer = Trainer(layout, tiny_model_config(), tiny_train_config(strategy=strategy, seed=3),
                          f"{sys.argv[2]}/{strategy}")
        train = make_dataset(f"{data}/train", layout, 64, shuffle=False, repeat=False, deterministic=True)
        first = trainer.train_on(train, max_steps=1)
        rest = trainer.train_on(train.skip(1))
        valid = make_dataset(f"{data}/valid", layout, 64, shuffle=False, repeat=False, deterministic=True)
        metrics = trainer.evaluate(valid)
        out[strategy] = {"replicas": trainer.strategy.num_replicas_in_sync, "first_loss": first["loss"],
                         "loss": rest["loss"], "examples": first["examples"] + rest["examples"],
                         "auc": metrics["click"]["auc"], "count": metrics["click"]["count"]}
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_mirrored_two_cpu_devices_matches_single_device(tmp_path):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(2, 1, 0), rows_per_day=256)
    proc = subprocess.run([PYTHON, "-c", _SCRIPT, data, str(tmp_path / "models")], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    single, mirrored = result["default"], result["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert "MirroredStrategy with 2 replica(s), global batch 64" in proc.stdout
    assert mirrored["examples"] == single["examples"] == 512  # global batch unchanged: 8 steps of 64
    assert mirrored["first_loss"] == pytest.approx(single["first_loss"], rel=2e-3)
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-2)
    assert mirrored["count"] == single["count"] == 256  # every valid example predicted once
    assert mirrored["auc"] == pytest.approx(single["auc"], abs=0.02)
