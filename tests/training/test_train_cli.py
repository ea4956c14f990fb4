"""The absl app: every flag documented, flags mapped onto the configs, --spec checked."""
import pytest

import infnet_tf  # noqa: F401
from absl import flags

from infnet_tf import train
from infnet_tf.models import ModelConfig
from infnet_tf.spec import load_spec


@pytest.fixture
def parsed_flags():
    def parse(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train", "--data=/d", "--model_dir=/m", *args])
        return flags.FLAGS

    yield parse
    flags.FLAGS.unparse_flags()


def test_every_flag_has_help():
    own = flags.FLAGS.get_flags_for_module(train.__name__)
    names = {f.name for f in own}
    assert {"data", "model_dir", "spec", "mode", "model", "d", "num_blocks", "num_heads", "n_cat_hubs",
            "n_shared_task_hubs", "hubs", "aggregation", "broadcast", "task_tokens", "batch_size",
            "learning_rate", "embedding_learning_rate", "embedding_optimizer", "clip_norm", "precision",
            "strategy", "epochs", "train_steps", "deterministic", "follow", "poll_interval_s",
            "export_every", "export_base", "model_name", "source", "kafka_servers", "kafka_topic",
            "kafka_group", "kafka_timeout_s", "max_partitions"} <= names
    for f in own:
        assert f.help and len(f.help) > 10, f.name


def test_flags_map_onto_configs(parsed_flags):
    parsed_flags("--d=16", "--num_blocks=2", "--hubs=off", "--fusion=sum", "--head_hidden=32,16",
                 "--batch_size=128", "--embedding_optimizer=adam", "--clip_norm=0", "--train_steps=7")
    model = train.model_config_from_flags()
    assert model == ModelConfig(d=16, num_blocks=2, hubs=False, fusion="sum", head_hidden=(32, 16))
    cfg = train.train_config_from_flags()
    assert (cfg.batch_size, cfg.embedding_optimizer, cfg.clip_norm, cfg.train_steps) == (128, "adam", 0.0, 7)
    assert set(train.STREAMING_FLAGS) <= set(flags.FLAGS)


def test_defaults_are_the_paper_defaults(parsed_flags):
    parsed_flags()
    assert train.model_config_from_flags() == ModelConfig()
    assert train.train_config_from_flags().batch_size == 4096


def test_spec_fingerprint_is_checked():
    path = "feature_specs/kuairand_synthetic.yaml"
    fingerprint = load_spec(path).fingerprint()
    train.check_spec(path, {"spec_fingerprint": fingerprint}, "artifact.json")
    with pytest.raises(train.JobError, match="is not the spec the data"):
        train.check_spec(path, {"spec_fingerprint": "0" * 64}, "artifact.json")
    with pytest.raises(train.JobError, match="records no spec_fingerprint"):
        train.check_spec(path, {}, "artifact.json")


def test_streaming_flag_defaults_are_streaming_config_defaults(parsed_flags):
    streaming = pytest.importorskip("infnet_tf.training.streaming")
    parsed_flags()
    defaults = streaming.StreamingConfig()
    for name in train.STREAMING_FLAGS:
        assert flags.FLAGS[name].value == getattr(defaults, name), name


def test_streaming_cli_run_ends_with_valid_and_test_metrics(tmp_path):
    """A streaming run that catches up evaluates valid/ and test/ and writes metrics.json; a bad
    streaming flag is a one-line error with exit status 2, not a traceback."""
    import json
    import subprocess

    from tests.training.helpers import PYTHON, TINY_MODEL_FLAGS, subprocess_env, write_data_with_artifact

    data, model_dir = tmp_path / "data", tmp_path / "model"
    write_data_with_artifact(str(data), days=(2, 1, 1), rows_per_day=128)
    cmd = [PYTHON, "-m", "infnet_tf.train", f"--data={data}", f"--model_dir={model_dir}", "--mode=streaming",
           "--batch_size=64", *TINY_MODEL_FLAGS]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["mode"] == "streaming" and metrics["streaming"]["total_units"] == 2
    for split in ("valid", "test"):
        assert set(metrics[split]) == {"click", "like"}
        assert metrics[split]["click"]["count"] == 128
    bad = subprocess.run(cmd + ["--poll_interval_s=-1"], env=subprocess_env(), capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "train: error:" in bad.stderr and "Traceback" not in bad.stderr
