"""INFNet model: outputs, padding invariance, permutation invariance, attention introspection."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.models import build_model
from tests.models.tiny import pad_batch, random_batch, tiny_config, tiny_layout

LAYOUT = tiny_layout()
VARIANTS = {
    "default": {},
    "hubs_off": {"hubs": False},
    "task_tokens_off": {"task_tokens": False},
    "aggregation_off": {"aggregation": False},
    "broadcast_off": {"broadcast": False},
    "pgu_global_mean": {"broadcast_unit": "pgu", "seq_hub_init": "global_mean"},
    "hubs_off_task_tokens_off": {"hubs": False, "task_tokens": False},
    "cat_hubs_read_c_t": {"cat_hub_views": "cat_task"},
}


def _predict(model, batch):
    return {k: v.numpy() for k, v in model(batch).items()}


def test_outputs_are_float32_probabilities_per_task():
    model = build_model(LAYOUT, tiny_config())
    out = model(random_batch(LAYOUT, 4))
    assert tuple(model.task_names) == ("click", "like") and set(out) == {"click", "like"}
    for p in out.values():
        assert p.dtype == tf.float32 and p.shape == (4,)
        assert np.all((p.numpy() > 0) & (p.numpy() < 1))


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_padding_invariance(variant):
    """Appending padded positions (T=3 -> 5 = max_len) leaves every output unchanged."""
    model = build_model(LAYOUT, tiny_config(**VARIANTS[variant]))
    batch = random_batch(LAYOUT, 4, seq_len=3, lengths=[[0, 1, 3, 2], [3, 0, 2, 1]])
    ref = _predict(model, batch)
    padded = _predict(model, pad_batch(LAYOUT, batch, 2))
    for task in ref:
        np.testing.assert_allclose(padded[task], ref[task], atol=1e-6, rtol=0)


@pytest.mark.parametrize("views", ["all", "cat_task"])
def test_categorical_hubs_read_the_sequences_only_with_cat_hub_views_all(views):
    """cat_hub_views=cat_task: the categorical hubs aggregate C and T only, so after the block they are
    the same for two rows that differ only in their behaviour sequences; with all (the paper) they
    differ. The task hubs read S either way."""
    model = build_model(LAYOUT, tiny_config(cat_hub_views=views, num_blocks=1))
    batch = random_batch(LAYOUT, 4, seed=1)
    other = random_batch(LAYOUT, 4, seed=2)
    mixed = {k: (other[k] if k.startswith("seq/") else v) for k, v in batch.items()}
    hubs, hubs_mixed = (model.encode(b)[2] for b in (batch, mixed))
    same = np.allclose(hubs["cat"].numpy(), hubs_mixed["cat"].numpy(), atol=1e-6, rtol=0)
    assert same == (views == "cat_task")
    assert not np.allclose(hubs["task"].numpy(), hubs_mixed["task"].numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", ["default", "hubs_off", "task_tokens_off"])
def test_all_padding_behaviour_type_is_finite(variant):
    model = build_model(LAYOUT, tiny_config(**VARIANTS[variant]))
    batch = random_batch(LAYOUT, 3, lengths=[[0, 0, 0], [0, 2, 5]])
    for p in _predict(model, batch).values():
        assert np.all(np.isfinite(p))


def test_permuting_categorical_fields_with_matching_weights_gives_same_prediction():
    config = tiny_config()
    model = build_model(LAYOUT, config)
    order = [2, 0, 1]
    permuted_layout = FeatureLayout(tuple(LAYOUT.categorical[i] for i in order), LAYOUT.sequences, LAYOUT.tasks)
    permuted = build_model(permuted_layout, config)
    source = {v.name: v.numpy() for v in model.variables}
    assert set(source) == {v.name for v in permuted.variables}
    d = config.d
    for v in permuted.variables:
        value = source[v.name]
        if "phi_cat/hidden_0/kernel" in v.name:       # eq. 1 flattens C: permute its row blocks
            blocks = value.reshape(len(order), d, -1)
            value = blocks[order].reshape(value.shape)
        v.assign(value)
    batch = random_batch(LAYOUT, 4)
    ref, out = _predict(model, batch), _predict(permuted, batch)
    for task in ref:
        np.testing.assert_allclose(out[task], ref[task], atol=1e-6)


@pytest.mark.parametrize("variant", ["default", "hubs_off"])
def test_attention_weights_of_task_hubs(variant):
    config = tiny_config(**VARIANTS[variant])
    model = build_model(LAYOUT, config)
    batch = random_batch(LAYOUT, 3, lengths=[[0, 2, 5], [1, 1, 4]])
    weights = model.attention_weights(batch)
    assert len(weights) == config.num_blocks
    n_rows = 4 if config.hubs else 2            # N_t + n_shared task hubs | N_t task tokens
    for block in weights:
        assert set(block) == {"cat", "seq/type0", "seq/type1", "task"}
        assert block["cat"].shape == (3, 2, n_rows, 3) and block["seq/type0"].shape == (3, 2, n_rows, 5)
        lengths = batch[seq_key("type0", "length")].numpy()
        w0 = block["seq/type0"].numpy()
        for b, n in enumerate(lengths):
            assert np.all(w0[b, :, :, n:] == 0.0)  # padded keys: exactly zero weight
        if config.hubs:                                # one distribution per view
            np.testing.assert_allclose(block["cat"].numpy().sum(-1), 1.0, rtol=1e-5)
        else:                                          # one distribution over all tokens
            total = sum(w.numpy().sum(-1) for w in block.values())
            np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def test_attention_weights_need_aggregation():
    model = build_model(LAYOUT, tiny_config(aggregation=False))
    with pytest.raises(ValueError, match="aggregation"):
        model.attention_weights(random_batch(LAYOUT, 2))


def test_layout_without_sequences_or_categorical_fields():
    no_seq = FeatureLayout(LAYOUT.categorical, (), LAYOUT.tasks)
    no_cat = FeatureLayout((), LAYOUT.sequences, LAYOUT.tasks)
    for layout in (no_seq, no_cat):
        for changes in ({}, {"hubs": False}):
            out = build_model(layout, tiny_config(**changes))(random_batch(layout, 2))
            assert all(np.all(np.isfinite(p.numpy())) for p in out.values())
