"""Every layer's get_config round-trips: from_config(get_config()) rebuilds an equivalent layer."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.aggregation import MultiViewAggregation
from infnet_tf.layers.bgu import BroadcastGatedUnit
from infnet_tf.layers.embeddings import EmbeddingTables
from infnet_tf.layers.heads import TaskHead
from infnet_tf.layers.hub_init import CategoricalHubInit, SequenceHubInit
from infnet_tf.layers.infnet_block import INFNetBlock
from infnet_tf.layers.learned_tokens import LearnedTokens
from infnet_tf.layers.mlp import MLP
from infnet_tf.layers.packed import pack
from infnet_tf.layers.pgu import ProxyGatedUnit
from infnet_tf.layers.self_attention import SelfAttentionBlock
from infnet_tf.layers.tokenizers import FeatureTokenizer
from tests.models.tiny import random_batch, tiny_layout

LAYOUT = tiny_layout()
X = tf.random.normal([2, 5, 8], seed=1)
H = tf.random.normal([2, 3, 8], seed=2)
MASK = tf.constant([[True] * 5, [True, True, False, False, False]])
FEATURES = random_batch(LAYOUT, 2)

CASES = [
    (lambda: MLP((4,), out=3, dropout=0.1, output_dtype="float32"), lambda l: l(X)),
    (lambda: LearnedTokens(3, 8), lambda l: l(2)),
    (lambda: EmbeddingTables(LAYOUT, 8), lambda l: l({"age": tf.constant([1, 2])})),
    (lambda: FeatureTokenizer(LAYOUT, 8, combiner="concat_linear"), lambda l: l(FEATURES)),
    (lambda: FeatureTokenizer(LAYOUT, 8, ordinal="cumulative", id_dropout=0.1), lambda l: l(FEATURES)),
    (lambda: CategoricalHubInit(5, 2, 8, mode="mlp", hidden=(4,)), lambda l: l(X)),
    (lambda: SequenceHubInit(1, 8, mode="type_mlp", hidden=(4,)), lambda l: l([pack(X, MASK)])),
    (lambda: MultiViewAggregation(8, 2, ["g"], ["v"], fusion="sum"),
     lambda l: l({"g": H}, {"v": X}, {"v": MASK})),
    (lambda: MultiViewAggregation(8, 2, ["g", "s"], ["v", "w"], group_views={"s": ["w"]}),
     lambda l: l({"g": H, "s": H}, {"v": X, "w": X}, {"v": MASK})),
    (lambda: BroadcastGatedUnit(8, mode="scale", hidden=(4,)), lambda l: l(X, H)),
    (lambda: ProxyGatedUnit(8), lambda l: l(X, H)),
    (lambda: INFNetBlock(8, 2, ["v"], ["v"], ["v"], broadcast_unit="shift", bgu_hidden=(4,)),
     lambda l: l({"v": X}, {"v": H}, {"v": MASK})),
    (lambda: SelfAttentionBlock(8, 2, ffn_mult=1, query_last=2), lambda l: l(X, MASK)),
    (lambda: TaskHead((4,)), lambda l: l(X[:, 0])),
    (lambda: TaskHead((4,), output_scale=0.1), lambda l: l(X[:, 0])),
]


@pytest.mark.parametrize("make,run", CASES, ids=[c[0]().__class__.__name__ for c in CASES])
def test_get_config_round_trip(make, run):
    layer = make()
    out = run(layer)
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    run(clone)
    clone.set_weights(layer.get_weights())
    for a, b in zip(tf.nest.flatten(out), tf.nest.flatten(run(clone))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the config is plain data (JSON-able) and the class is registered for deserialisation
    assert tf.keras.utils.get_registered_object(tf.keras.utils.get_registered_name(layer.__class__)) is layer.__class__
    import json
    json.dumps(config)


def test_head_output_scale_scales_the_initial_output_kernel_only():
    """TaskHead(output_scale=s): the output Dense starts at Glorot uniform x s (its bound is
    s * sqrt(6 / (fan_in + fan_out))); the hidden layers keep Glorot; the bias starts at 0."""
    x = tf.random.normal([512, 40], seed=3)
    for scale in (1.0, 0.1):
        tf.keras.utils.set_random_seed(7)
        head = TaskHead((64,), output_scale=scale)
        head(x)
        kernel = head.output_layer.kernel.numpy()
        bound = scale * np.sqrt(6.0 / (64 + 1))
        assert np.abs(kernel).max() <= bound + 1e-7
        assert np.abs(kernel).max() > 0.8 * bound          # uniform on [-bound, bound]: 64 draws reach it
        assert np.abs(head.mlp.hidden_layers[0].kernel.numpy()).max() > 0.8 * np.sqrt(6.0 / (40 + 64))
        np.testing.assert_array_equal(head.output_layer.bias.numpy(), [0.0])
    tf.keras.utils.set_random_seed(7)
    small = TaskHead((64,), output_scale=0.1)
    tf.keras.utils.set_random_seed(7)
    glorot = TaskHead((64,))
    small(x), glorot(x)
    logits = lambda h: h.mlp(x).numpy()  # noqa: E731
    assert logits(small).std() < 0.2 * logits(glorot).std()   # the initial logits are ~10x smaller
