"""Hub initialisation (eqs. 1, 3) and its ablation variants."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.hub_init import CategoricalHubInit, SequenceHubInit, chunk_mean_matrix
from infnet_tf.layers.packed import pack


def packed(s, m):
    return [pack(x, mask) for x, mask in zip(s, m)]


@pytest.mark.parametrize("mode", ["mlp", "mean", "random"])
def test_categorical_hub_shapes(mode):
    layer = CategoricalHubInit(n_fields=5, n_hubs=3, d=4, mode=mode, hidden=(8,))
    assert layer(tf.random.normal([2, 5, 4])).shape == (2, 3, 4)


def test_mean_hubs_average_contiguous_field_chunks():
    np.testing.assert_allclose(chunk_mean_matrix(2, 4), [[.5, .5, 0, 0], [0, 0, .5, .5]])
    np.testing.assert_allclose(chunk_mean_matrix(3, 2), [[1, 0], [1, 0], [0, 1]])
    c = tf.random.normal([1, 4, 3])
    hubs = CategoricalHubInit(4, 2, 3, mode="mean")(c).numpy()
    np.testing.assert_allclose(hubs[0, 1], c.numpy()[0, 2:].mean(0), rtol=1e-6)


def test_mlp_hubs_are_reshaped_mlp_of_flattened_fields():
    layer = CategoricalHubInit(2, 2, 2, mode="mlp", hidden=())
    c = tf.constant([[[1.0, 2.0], [3.0, 4.0]]])
    layer(c)
    kernel = np.eye(4, dtype=np.float32)[::-1]
    layer.mlp.out_layer.set_weights([kernel, np.zeros(4, np.float32)])
    np.testing.assert_allclose(layer(c).numpy(), [[[4.0, 3.0], [2.0, 1.0]]])


def test_sequence_hubs_masked_mean_of_type_mlp_and_all_padding_is_zero():
    layer = SequenceHubInit(2, 4, mode="type_mlp", hidden=(4,))
    s = [tf.random.normal([2, 3, 4]), tf.random.normal([2, 5, 4])]
    m = [tf.constant([[True, True, False], [False, False, False]]), tf.ones([2, 5], tf.bool)]
    hubs = layer(packed(s, m)).numpy()
    assert hubs.shape == (2, 2, 4) and np.all(np.isfinite(hubs))
    np.testing.assert_allclose(hubs[0, 0], layer.mlps[0](s[0][0, :2]).numpy().mean(0), rtol=1e-5)
    np.testing.assert_array_equal(hubs[1, 0], 0.0)          # all-padding type -> zero hub


def test_sequence_hub_variants():
    s = [tf.random.normal([2, 3, 4]), tf.random.normal([2, 5, 4])]
    m = [tf.ones([2, 3], tf.bool), tf.constant([[True] * 2 + [False] * 3] * 2)]
    g = SequenceHubInit(2, 4, mode="global_mean")(packed(s, m)).numpy()
    assert g.shape == (2, 1, 4)
    expected = np.concatenate([s[0].numpy()[0], s[1].numpy()[0, :2]]).mean(0)
    np.testing.assert_allclose(g[0, 0], expected, rtol=1e-5)
    assert SequenceHubInit(2, 4, mode="random")(packed(s, m)).shape == (2, 2, 4)
    with pytest.raises(ValueError, match="seq_hub_init"):
        SequenceHubInit(2, 4, mode="bogus")


def test_type_mlp_hub_ignores_padding_and_padded_length():
    """Padding invariance of eq. 3 as the layer runs it (the real items packed, mean by segment sum):
    more padded steps (T 3 -> 6, zero tokens past the length) change no hub, and the gradient of the
    padded steps' tokens is exactly zero."""
    layer = SequenceHubInit(1, 4, mode="type_mlp", hidden=(8,))
    s = tf.random.normal([2, 3, 4], seed=3)
    m = tf.constant([[True, True, False], [True, True, True]])
    short = layer(packed([s * tf.cast(m, tf.float32)[..., None]], [m])).numpy()
    s_long = tf.concat([s * tf.cast(m, tf.float32)[..., None], tf.random.normal([2, 3, 4])], axis=1)
    m_long = tf.concat([m, tf.zeros([2, 3], tf.bool)], axis=1)
    with tf.GradientTape() as tape:
        tape.watch(s_long)
        long = layer(packed([s_long], [m_long]))
        loss = tf.reduce_sum(long)
    np.testing.assert_allclose(long.numpy(), short, rtol=1e-6, atol=1e-7)
    grad = tape.gradient(loss, s_long).numpy()
    assert np.all(grad[0, 2:] == 0) and np.all(grad[1, 3:] == 0) and np.any(grad[1, :3] != 0)


def test_type_mlp_hub_equals_the_padded_masked_mean_by_hand():
    """eq. 3 by hand on the padded tensor: hub = W mean_t relu(s_t U + c) + b over the real steps."""
    layer = SequenceHubInit(1, 4, mode="type_mlp", hidden=(8,))
    s = tf.random.normal([3, 5, 4], seed=4)
    m = tf.constant([[True] * 5, [True, True, False, False, False], [False] * 5])
    hub = layer(packed([s], [m])).numpy()[:, 0]
    (u, c), (w, b) = [l.get_weights() for l in layer.mlps[0].hidden_layers + [layer.mlps[0].out_layer]]
    x, mm = s.numpy(), m.numpy()
    for i in range(2):
        h = np.maximum(x[i][mm[i]] @ u + c, 0.0)
        np.testing.assert_allclose(hub[i], h.mean(0) @ w + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(hub[2], 0.0)
