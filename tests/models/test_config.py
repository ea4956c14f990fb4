"""ModelConfig validation and flag parsing; the model registry."""
import pytest

import infnet_tf  # noqa: F401

from infnet_tf.models import build_model, register_model, registered_models
from infnet_tf.models.config import ModelConfig
from tests.models.tiny import tiny_layout


def test_defaults_follow_the_paper():
    c = ModelConfig()
    assert (c.model, c.d, c.num_heads, c.n_shared_task_hubs) == ("infnet", 64, 1, 4)
    assert (c.num_blocks, c.n_cat_hubs) == (1, 8)   # measured (the paper's 4 and 16 are --preset=paper's)
    assert (c.task_tokens, c.hubs, c.aggregation, c.broadcast) == (True, True, True, True)
    assert (c.cat_hub_init, c.seq_hub_init, c.fusion, c.task_hubs, c.broadcast_unit) == (
        "mlp", "type_mlp", "concat_linear", "hybrid", "affine")


def test_from_flags_dict_parses_strings_and_round_trips():
    c = ModelConfig.from_flags_dict({"hubs": "off", "d": "32", "head_hidden": "16,8", "dropout": "0.1",
                                     "broadcast_unit": "pgu", "options.experts": 4})
    assert (c.hubs, c.d, c.head_hidden, c.dropout, c.broadcast_unit) == (False, 32, (16, 8), 0.1, "pgu")
    assert c.options == {"experts": 4}
    assert ModelConfig.from_dict(c.to_dict()) == c
    assert ModelConfig.from_flags_dict({"d": 16, "learning_rate": 1.0}, ignore_unknown=True).d == 16
    assert c.replace(d=16).d == 16


@pytest.mark.parametrize("flags,match", [
    ({"d": 10, "num_heads": 4}, "num_heads: must divide d=10"),
    ({"fusion": "mean"}, "fusion: expected one of concat_linear|sum"),
    ({"hubs": "maybe"}, "hubs: expected on|off"),
    ({"d": "x"}, "d: expected an int"),
    ({"d": 0}, "d: expected a positive int"),
    ({"head_hidden": "8,-1"}, "head_hidden: expected a list of positive ints"),
    ({"aggregation": False, "broadcast": False}, "empty block"),
    ({"task_hubs": "shared", "n_shared_task_hubs": 0}, "n_shared_task_hubs >= 1"),
    ({"task_tokens": False, "task_hubs": "specific"}, "needs task tokens"),
    ({"dropout": 1.5}, "dropout"),
    ({"learning_rate": 1.0}, "unknown field 'learning_rate'"),
    ({"options": {"f": object()}}, "JSON"),
])
def test_validation_errors_name_the_field(flags, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig.from_flags_dict(flags)


def test_registry_dispatch_and_unknown_model():
    assert "infnet" in registered_models()
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model(tiny_layout(), ModelConfig(model="nope"))

    @register_model("test_dummy")
    def build_dummy(layout, config):
        raise RuntimeError("called")

    with pytest.raises(RuntimeError, match="called"):
        build_model(tiny_layout(), ModelConfig(model="test_dummy"))
    with pytest.raises(ValueError, match="already registered"):
        register_model("test_dummy")(lambda layout, config: None)
