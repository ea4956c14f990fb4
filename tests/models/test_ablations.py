"""Every ablation switch (§4.3, Table 4) builds, trains one step with a gradient for every trainable
variable, and moves the parameter / FLOP counts the way its definition says."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.models import build_model, get_entry
from infnet_tf.models.cost import flops_per_example, param_count
from tests.models.tiny import random_batch, random_labels, tiny_config, tiny_layout, train_step

LAYOUT = tiny_layout()
LESS, MORE, CHANGED, SAME = -1, +1, 0, "same"
# switch -> (expected parameter change, expected FLOP change) relative to the default config
EXPECTED = {
    "task_tokens=off": ({"task_tokens": False}, LESS, LESS),          # no T tokens, no task-specific hubs
    "aggregation=off": ({"aggregation": False}, LESS, LESS),          # no Phase 1 attention
    "broadcast=off": ({"broadcast": False}, LESS, CHANGED),           # no BGU; last block aggregates all hubs
    "cat_hub_init=mean": ({"cat_hub_init": "mean"}, LESS, LESS),      # no phi^cat MLP
    "cat_hub_init=random": ({"cat_hub_init": "random"}, LESS, LESS),
    "seq_hub_init=global_mean": ({"seq_hub_init": "global_mean"}, LESS, LESS),  # no MLP_b, 1 hub
    "seq_hub_init=random": ({"seq_hub_init": "random"}, LESS, LESS),
    # Linear(d) instead of Linear(3d); the same FLOPs: each view's context meets the fusion kernel
    # separately (a folded view's value map multiplied in), summed or concatenated alike
    "fusion=sum": ({"fusion": "sum"}, LESS, SAME),
    "task_hubs=specific": ({"task_hubs": "specific"}, LESS, LESS),    # fewer task hubs
    "task_hubs=shared": ({"task_hubs": "shared"}, LESS, LESS),
    "broadcast_unit=scale": ({"broadcast_unit": "scale"}, LESS, LESS),  # MLP_bgu emits d, not 2d
    "broadcast_unit=shift": ({"broadcast_unit": "shift"}, LESS, LESS),
    "broadcast_unit=pgu": ({"broadcast_unit": "pgu"}, CHANGED, MORE),   # per-token projections
    "sequence_combiner=concat_linear": ({"sequence_combiner": "concat_linear"}, MORE, MORE),
    "hubs=off": ({"hubs": False}, CHANGED, CHANGED),                  # see the scaling test below
    # seq hubs read 3 views: Linear(3d) fusion, their queries against C and T too (at one head every
    # view folds; at 2 heads the tiny config's fold/project choices happen to give equal FLOPs)
    "seq_hub_views=all": ({"seq_hub_views": "all", "num_heads": 1}, MORE, MORE),
    # categorical hubs read C and T only: Linear(2d) fusion, no queries against S
    "cat_hub_views=cat_task": ({"cat_hub_views": "cat_task", "num_heads": 1}, LESS, LESS),
}
# switch -> settings its reference config shares with it (default: the tiny config itself)
REFERENCE = {"seq_hub_views=all": {"num_heads": 1}, "cat_hub_views=cat_task": {"num_heads": 1}}


@pytest.fixture(scope="module")
def default_counts():
    return param_count(build_model(LAYOUT, tiny_config())), flops_per_example(LAYOUT, tiny_config())


def _direction(new, old):
    return (new > old) - (new < old)


@pytest.mark.parametrize("name", EXPECTED, ids=list(EXPECTED))
def test_switch_builds_trains_and_changes_cost(name, default_counts):
    changes, param_dir, flop_dir = EXPECTED[name]
    config = tiny_config(**changes)
    model = get_entry(config.model).build(LAYOUT, config)    # built by the training step itself
    batch, labels = random_batch(LAYOUT, 2, seed=3), random_labels(LAYOUT, 2, seed=3)
    loss, grads = train_step(model, tf.keras.optimizers.SGD(0.1), batch, labels, LAYOUT)
    assert np.isfinite(loss.numpy())
    dead = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not dead, f"variables without gradient: {dead}"
    params, flops = param_count(model), flops_per_example(LAYOUT, config)
    if name in REFERENCE:
        reference = tiny_config(**REFERENCE[name])
        default_counts = param_count(build_model(LAYOUT, reference)), flops_per_example(LAYOUT, reference)
    for what, new, old, want in (("params", params, default_counts[0], param_dir),
                                 ("flops", flops, default_counts[1], flop_dir)):
        got = _direction(new, old)
        if want == SAME:
            assert got == 0, f"{what}: {old} -> {new}"
        else:
            assert got != 0 and (want == CHANGED or got == want), f"{what}: {old} -> {new}"


@pytest.mark.parametrize("num_heads", [1, 2])
def test_default_has_no_dead_variable_and_nonzero_gradients(num_heads):
    """Every variable gets a gradient, nonzero but for the attention key biases: b^k shifts all of a
    query's logits by the same q · b^k, so the softmax does not depend on it and its exact gradient
    is zero (the folded attention, every view at one head, computes it as such)."""
    model = build_model(LAYOUT, tiny_config(num_heads=num_heads))
    _, grads = train_step(model, tf.keras.optimizers.SGD(0.1), random_batch(LAYOUT, 4), random_labels(LAYOUT),
                          LAYOUT)
    for v, g in zip(model.trainable_variables, grads):
        assert g is not None, v.name
        norm = tf.norm(tf.convert_to_tensor(g)).numpy()
        if "/aggregation/k_" in v.name and "/bias" in v.name:
            assert norm < 1e-6, f"{v.name}: a key bias' gradient {norm}"
            continue
        assert norm > 0.0, f"{v.name} has an all-zero gradient"


def _flops_at(max_len, **changes):
    return flops_per_example(tiny_layout(max_len=max_len), tiny_config(**changes))


def test_default_flops_grow_linearly_and_hubs_off_quadratically_with_sequence_length():
    lens = (64, 128, 192, 256)
    infnet = np.array([_flops_at(n) for n in lens], float)
    dense = np.array([_flops_at(n, hubs=False) for n in lens], float)
    # equal steps in N_s: linear -> constant first differences, quadratic -> growing ones
    np.testing.assert_allclose(np.diff(infnet, 2), 0.0)
    assert np.all(np.diff(dense, 2) > 0)
    np.testing.assert_allclose(np.diff(dense, 3), 0.0)          # exactly quadratic
    assert dense[-1] / infnet[-1] > dense[0] / infnet[0]
