"""The default recipe: batch size from the data's size; presets are valid model configs."""
import pytest

import infnet_tf  # noqa: F401
from infnet_tf.models import ModelConfig
from infnet_tf.models.presets import PRESETS, preset_changes
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.recipe import auto_batch_size, resolve
from tests.training.helpers import write_data_with_artifact


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


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_model_config(name):
    config = ModelConfig(**preset_changes(name))
    for key, value in preset_changes(name).items():
        assert getattr(config, key) == value


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown preset 'nope'; expected one of default, paper"):
        preset_changes("nope")
