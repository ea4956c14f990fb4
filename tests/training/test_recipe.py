"""The default recipe: batch size and weight-average window from the data's size; presets are valid
model configs."""
import pytest

import infnet_tf  # noqa: F401
from infnet_tf.models import ModelConfig
from infnet_tf.models.presets import PRESETS, preset_changes
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.recipe import auto_batch_size, auto_weight_average_decay, resolve
from tests.training.helpers import tiny_model_config, write_data_with_artifact


@pytest.mark.parametrize("rows, batch", [(None, 4096), (1_000, 256), (8_000, 256), (16_383, 512), (19_746, 1024),
                                         (36_000, 1024), (171_424, 1024), (327_679, 1024), (327_680, 2048),
                                         (655_359, 2048), (655_360, 4096), (10_000_000, 4096)])
def test_auto_batch_size(rows, batch):
    assert auto_batch_size(rows) == batch


@pytest.mark.parametrize("rows", [20_000, 171_424, 400_000, 700_000, 1_000_000, 10_000_000])
def test_a_big_log_keeps_at_least_160_steps_per_epoch_above_batch_1024(rows):
    batch = auto_batch_size(rows)
    assert batch & (batch - 1) == 0 and 1024 <= batch <= 4096
    assert batch == 1024 or rows // batch >= 160


def test_resolve_reads_the_train_rows_from_the_manifests(tmp_path):
    write_data_with_artifact(str(tmp_path), days=(3, 1, 1), rows_per_day=256)
    lines = []
    resolved = resolve(TrainConfig(), str(tmp_path), log=lines.append)
    assert resolved.batch_size == 256 and "768 train rows" in lines[0]
    assert resolve(TrainConfig(batch_size=64), str(tmp_path)).batch_size == 64   # explicit wins
    assert resolve(TrainConfig(), None, log=lines.append).batch_size == 4096      # unknown size


@pytest.mark.parametrize("steps, decay", [(None, 0.95), (0, 0.95), (1, 0.95), (16, 0.95), (20, 0.95),
                                          (42, 1 - 1 / 42), (168, 1 - 1 / 168), (2_442, 1 - 1 / 2_442)])
def test_auto_weight_average_decay_is_a_one_round_window_never_below_095(steps, decay):
    assert auto_weight_average_decay(steps) == pytest.approx(decay, abs=1e-12)


def test_resolve_sizes_the_weight_average_by_the_steps_per_round(tmp_path):
    write_data_with_artifact(str(tmp_path), days=(3, 1, 1), rows_per_day=256)   # 768 train rows
    lines = []
    # batch 16 -> 48 steps per epoch -> 1 - 1/48; the batch the recipe picks (256) -> 3 steps -> 0.95
    assert resolve(TrainConfig(batch_size=16), str(tmp_path), log=lines.append).weight_average_decay == \
        pytest.approx(1 - 1 / 48)
    assert "weight average decay 0.9792 (a window of one round of 48 steps" in lines[-1]
    assert resolve(TrainConfig(batch_size=100), str(tmp_path)).weight_average_decay == 0.95   # 8 steps: floor
    auto = resolve(TrainConfig(), str(tmp_path))
    assert (auto.batch_size, auto.weight_average_decay) == (256, 0.95)
    # --train_steps split into --epochs rounds: a round is train_steps / epochs steps
    assert resolve(TrainConfig(batch_size=16, train_steps=200, epochs=2), str(tmp_path)).weight_average_decay == \
        pytest.approx(0.99)
    # streaming mode has no epochs; no data or no manifests: 0.95; an explicit decay (0: off) is kept
    assert resolve(TrainConfig(batch_size=16), str(tmp_path), mode="streaming").weight_average_decay == 0.95
    assert resolve(TrainConfig(batch_size=16), None).weight_average_decay == 0.95
    for explicit in (0.0, 0.9, 0.999):
        assert resolve(TrainConfig(batch_size=16, weight_average_decay=explicit),
                       str(tmp_path)).weight_average_decay == explicit


@pytest.mark.parametrize("mode, decay", [("batch", 1 - 1 / 32), ("streaming", 0.95)])
def test_the_train_job_gives_the_trainer_the_window_of_its_mode(tmp_path, monkeypatch, mode, decay):
    from infnet_tf.training import job, trainer as trainer_lib

    class Built(Exception):
        pass

    def trainer(layout, model_config, train_config, model_dir):
        raise Built(train_config)

    write_data_with_artifact(str(tmp_path / "data"), days=(2, 1, 1), rows_per_day=128)   # 256 train rows
    monkeypatch.setattr(trainer_lib, "Trainer", trainer)
    with pytest.raises(Built) as built:
        job.run(job.JobPaths(data=str(tmp_path / "data"), model_dir=str(tmp_path / "model"), mode=mode),
                tiny_model_config(), TrainConfig(batch_size=8))     # 32 steps per epoch
    assert built.value.args[0].weight_average_decay == pytest.approx(decay)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_model_config(name):
    config = ModelConfig(**preset_changes(name))
    for key, value in preset_changes(name).items():
        assert getattr(config, key) == value


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown preset 'nope'; expected one of default, paper"):
        preset_changes("nope")
