"""The readout switch (beyond the paper): what each task head reads, and the last block's work."""
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.models import ModelConfig, build_model
from infnet_tf.data.tensors import placeholder_inputs
from infnet_tf.models.infnet_plan import make_plan
from tests.tiny_data import tiny_layout

LAYOUT = tiny_layout()
BASE = dict(d=8, num_blocks=2, num_heads=2, n_cat_hubs=4, n_shared_task_hubs=2)


@pytest.mark.parametrize("readout, width", [("task_token", 1), ("task_token_hubs", 1 + 3),
                                            ("task_token_flat_hubs", 1 + 4 + 1 + 4)])
def test_head_input_width_and_last_block(readout, width):
    config = ModelConfig(readout=readout, **BASE)
    plan = make_plan(LAYOUT, config)
    assert plan.readout_tokens == width          # cat 4 hubs, seq 1 hub (one type), task 2 + 2 hubs
    if readout != "task_token":                  # the last block now updates every hub group it reads
        assert set(plan.blocks[-1].aggregate) == {"cat", "seq", "task"}
    model = build_model(LAYOUT, config)
    features = placeholder_inputs(LAYOUT)
    tokens, masks, hubs = model.encode(features)
    inputs = model.readout(tokens, masks, hubs)
    assert [int(x.shape[-1]) for x in inputs] == [width * 8] * len(LAYOUT.tasks)
    probs = model(features)
    assert all(float(tf.reduce_min(p)) >= 0.0 and float(tf.reduce_max(p)) <= 1.0 for p in probs.values())
    assert ModelConfig.from_dict(model.get_config()["config"]).readout == readout
