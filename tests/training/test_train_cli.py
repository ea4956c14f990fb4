"""The absl app: every flag documented, flags mapped onto the configs, --spec checked."""
import pytest

import infnet_tf  # noqa: F401
from absl import flags

from infnet_tf import train
from infnet_tf.models import ModelConfig
from infnet_tf.feature_spec import load_spec
from infnet_tf.training.job import JobError, check_spec
from infnet_tf.training.model_dir import MODEL_FLAG_NAME, check_model_dir, clear_model_dir, config_differences
from tests.tiny_data import layout_only_artifact, tiny_layout


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


def test_every_config_field_has_a_flag():
    import dataclasses

    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.streaming import StreamingConfig

    own = {f.name: f for f in flags.FLAGS.get_flags_for_module(train.__name__)}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in own, f"TrainConfig.{f.name} has no --{f.name} flag"
    for f in dataclasses.fields(ModelConfig):
        assert MODEL_FLAG_NAME.get(f.name, f.name) in own, f"ModelConfig.{f.name} has no flag"
    assert MODEL_FLAG_NAME["options"] == "model_options"
    for f in dataclasses.fields(StreamingConfig):
        if f.name != "batch_size":  # --batch_size is TrainConfig's
            assert own[f.name].help.endswith(f.metadata["help"]), f"StreamingConfig.{f.name}"


def test_flags_map_onto_configs(parsed_flags):
    parsed_flags("--d=16", "--num_blocks=2", "--hubs=off", "--fusion=sum", "--head_hidden=32,16",
                 "--batch_size=128", "--embedding_optimizer=adam", "--clip_norm=0", "--train_steps=7")
    model = train.model_config_from_flags()
    assert model == ModelConfig(d=16, num_blocks=2, hubs=False, fusion="sum", head_hidden=(32, 16))
    cfg = train.train_config_from_flags()
    assert (cfg.batch_size, cfg.embedding_optimizer, cfg.clip_norm, cfg.train_steps) == (128, "adam", 0.0, 7)
    parsed_flags("--mode=streaming", "--export_every=3", "--source=kafka", "--kafka_servers=h:1", "--kafka_topic=t")
    streaming = train.streaming_config_from_flags()
    assert (streaming.export_every, streaming.source, streaming.kafka_servers, streaming.kafka_topic) == \
        (3, "kafka", "h:1", "t")
    assert streaming.batch_size == 0  # no flag: the trainer's batch size


def test_defaults_are_the_paper_defaults(parsed_flags):
    parsed_flags()
    from infnet_tf.training.config import TrainConfig

    assert train.model_config_from_flags() == ModelConfig()
    assert train.train_config_from_flags() == TrainConfig()  # flag defaults = the config's defaults
    from infnet_tf.training.streaming import StreamingConfig

    assert train.streaming_config_from_flags() == StreamingConfig()


def test_spec_fingerprint_is_checked():
    path = "feature_specs/kuairand_synthetic.yaml"
    fingerprint = load_spec(path).fingerprint()
    artifact = lambda fp: layout_only_artifact(tiny_layout(), spec_fingerprint=fp)  # noqa: E731
    check_spec(path, artifact(fingerprint), "artifact.json")
    with pytest.raises(JobError, match="is not the spec the data"):
        check_spec(path, artifact("0" * 64), "artifact.json")
    with pytest.raises(JobError, match="records no spec_fingerprint"):
        check_spec(path, artifact(""), "artifact.json")


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


def _recorded(model_config, train_config, layout=None) -> dict:
    return {"layout": layout or {"tasks": ["click"]}, "model_config": model_config.to_dict(),
            "train_config": train_config.to_dict(), "precision": "float32"}


def test_config_differences_name_only_model_shaping_settings():
    """Model shape, the embedding optimizer's slots, float16 loss scaling and the data layout must
    match a model dir; batch size, steps, learning rates, precision otherwise, dropout may change."""
    from infnet_tf.training.config import TrainConfig

    old_model, old_train = ModelConfig(d=32, num_blocks=2), TrainConfig(batch_size=1024)
    recorded = _recorded(old_model, old_train)
    layout = recorded["layout"]
    resumable = TrainConfig(batch_size=64, train_steps=9, learning_rate=0.01, embedding_learning_rate=0.1,
                            precision="mixed_bfloat16", seed=3, epochs=2, clip_norm=0.0)
    assert config_differences(recorded, layout, old_model.replace(dropout=0.1), resumable) == []
    diffs = config_differences(recorded, layout, ModelConfig(hubs=False, head_hidden=(8, 8)),
                                     TrainConfig(embedding_optimizer="adam"))
    assert diffs == ["d: 32 -> 64", "num_blocks: 2 -> 1", "head_hidden: 64 -> 8,8", "hubs: on -> off",
                     "embedding_optimizer: adagrad -> adam"]   # a dir of the 2-block default (before round 15) too
    # a model dir trained with the defaults before the sixth session (4 blocks, 4 heads) is named on resume
    previous_defaults = _recorded(ModelConfig(num_blocks=4, num_heads=4), old_train)
    assert config_differences(previous_defaults, layout, ModelConfig(), old_train) == \
        ["num_blocks: 4 -> 1", "num_heads: 4 -> 1"]
    assert config_differences(recorded, layout, old_model, old_train, "mixed_bfloat16") == []
    assert config_differences(recorded, layout, old_model, old_train, "mixed_float16") == \
        ["precision: float32 -> mixed_float16"]
    layout_diff = config_differences(recorded, {"tasks": ["click", "like"]}, old_model, old_train)
    assert len(layout_diff) == 1 and layout_diff[0].startswith("data layout (tasks)")
    # a model dir recorded before a field existed was trained with that field's value of then
    older = {**recorded, "model_config": {k: v for k, v in recorded["model_config"].items()
                                          if k not in ("ordinal_encoding", "seq_hub_views")}}
    then = old_model.replace(ordinal_encoding="none", seq_hub_views="all")
    assert config_differences(older, layout, then, old_train) == []
    assert config_differences(older, layout, then.replace(ordinal_encoding="cumulative"), old_train) == \
        ["ordinal_encoding: none -> cumulative"]
    # ordinal_encoding=auto compares as the encoding it stands for, for the recorded model
    assert config_differences(older, layout, old_model, old_train) == \
        ["seq_hub_views: all -> seq", "ordinal_encoding: none -> cumulative_with_gaps"]
    explicit = _recorded(old_model.replace(ordinal_encoding="cumulative_with_gaps"), old_train)
    assert config_differences(explicit, layout, old_model, old_train) == []
    deepfm = ModelConfig(model="deepfm", d=32)
    deepfm_older = {**_recorded(deepfm, old_train)}
    deepfm_older["model_config"] = {k: v for k, v in deepfm_older["model_config"].items() if k != "ordinal_encoding"}
    assert config_differences(deepfm_older, deepfm_older["layout"], deepfm, old_train) == []   # auto = none
    # a baseline does not read INFNet's fields: a DCNv2 dir recorded with the old INFNet defaults resumes
    dcnv2 = _recorded(ModelConfig(model="dcnv2", num_blocks=4, num_heads=4, seq_hub_views="all"), old_train)
    assert config_differences(dcnv2, layout, ModelConfig(model="dcnv2"), old_train) == []
    assert config_differences(dcnv2, layout, ModelConfig(model="dcnv2", d=32, head_hidden=(8,)), old_train) == \
        ["d: 64 -> 32", "head_hidden: 64 -> 8"]
    assert config_differences(dcnv2, layout, ModelConfig(), old_train) == \
        ["model: dcnv2 -> infnet", "num_blocks: 4 -> 1", "num_heads: 4 -> 1", "seq_hub_views: all -> seq"]
    # the layout's ordinal marks come from the artifact: a layout recorded without them is the same data
    marked = {"categorical": [{"name": "price", "vocab_size": 5, "ordinal": True}]}
    unmarked = {**recorded, "layout": {"categorical": [{"name": "price", "vocab_size": 5}]}}
    assert config_differences(unmarked, marked, old_model, old_train) == []


def test_model_dir_with_other_settings_is_refused_before_anything_is_written(tmp_path):
    import json

    from infnet_tf.training.config import TrainConfig

    model_dir = tmp_path / "model"
    check_model_dir(str(model_dir), {}, ModelConfig(), TrainConfig())  # fresh: fine
    assert not model_dir.exists()
    model_dir.mkdir()
    (model_dir / "trainer_config.json").write_text(json.dumps(_recorded(ModelConfig(d=32), TrainConfig())))
    before = (model_dir / "trainer_config.json").read_text()
    check_model_dir(str(model_dir), {"tasks": ["click"]}, ModelConfig(d=32), TrainConfig(batch_size=8))
    with pytest.raises(JobError) as err:
        check_model_dir(str(model_dir), {"tasks": ["click"]}, ModelConfig(d=64), TrainConfig())
    message = str(err.value)
    assert "\n" not in message and "d: 32 -> 64" in message
    assert "new --model_dir" in message and "--overwrite_model_dir" in message
    assert (model_dir / "trainer_config.json").read_text() == before


def test_overwrite_model_dir_clears_all_but_exports(tmp_path):
    model_dir = tmp_path / "model"
    (model_dir / "checkpoints").mkdir(parents=True)
    (model_dir / "checkpoints" / "ckpt-1.index").write_text("x")
    (model_dir / "export" / "infnet" / "1").mkdir(parents=True)
    for name in ("trainer_config.json", "streaming_state.json", "metrics.json"):
        (model_dir / name).write_text("{}")
    removed = clear_model_dir(str(model_dir))
    assert removed == ["checkpoints", "metrics.json", "streaming_state.json", "trainer_config.json"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["export"]
    assert clear_model_dir(str(tmp_path / "missing")) == []


def test_preset_then_explicit_flags_override_it(parsed_flags):
    from infnet_tf.models.presets import PAPER_CHOICES

    parsed_flags("--preset=paper")
    paper = train.model_config_from_flags()
    assert {k: getattr(paper, k) for k in PAPER_CHOICES} == dict(PAPER_CHOICES)
    assert (paper.num_blocks, paper.num_heads, paper.n_cat_hubs) == (4, 1, 16)   # the paper's size, eq. 5's one head
    parsed_flags("--preset=paper", "--token_norm=on")                 # an explicit flag wins
    assert train.model_config_from_flags().token_norm is True
    parsed_flags("--preset=no_hubs")
    assert train.model_config_from_flags().hubs is False
    parsed_flags()
    assert train.model_config_from_flags() == ModelConfig()            # default preset = the defaults


def test_export_hook_calls_the_exporter(monkeypatch):
    """The streaming export hook is wiring done by the entry module (the library imports no serving code)."""
    import inspect

    from export import exporter

    calls = []
    real = exporter.export_from_trainer
    monkeypatch.setattr(exporter, "export_from_trainer", lambda *args, **kwargs: calls.append((args, kwargs)) or "v1")
    hook = train.export_hook(None, "ranker", "/models/run1/", "/data/kuairand")
    assert hook("TRAINER", "dt=2026-09-21") == "v1"
    args, kwargs = calls[0]
    assert args == ("TRAINER", "dt=2026-09-21")
    assert kwargs == {"export_base": "/models/run1/export", "model_name": "ranker", "data": "/data/kuairand"}
    inspect.signature(real).bind(*args, **kwargs)   # the real function accepts exactly this call
    train.export_hook("s3://bucket/exports", "infnet", "/models/run1", "/data")("TRAINER", "dt=2026-09-22")
    assert calls[1][1]["export_base"] == "s3://bucket/exports"
