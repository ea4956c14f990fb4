"""BGU (eqs. 8-10, affine/scale/shift) and PGU against numpy on a 2-token example."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.bgu import BroadcastGatedUnit
from infnet_tf.layers.pgu import ProxyGatedUnit
from tests.layers.test_attention import np_ln

X = np.array([[[1.0, -2.0], [0.5, 3.0]]], np.float32)      # 2 tokens, d=2
HUBS = np.array([[[0.2, -0.1], [1.0, 0.3]]], np.float32)   # 2 hubs


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("mode", ["affine", "scale", "shift"])
def test_bgu_matches_hand_computation(mode):
    unit = BroadcastGatedUnit(2, mode=mode, hidden=())      # MLP_bgu = one Linear for the test
    unit(X, HUBS)
    n_out = 4 if mode == "affine" else 2
    kernel = np.arange(4 * n_out, dtype=np.float32).reshape(4, n_out) / 10.0 - 0.5
    bias = np.linspace(-0.2, 0.3, n_out).astype(np.float32)
    unit.mlp.out_layer.set_weights([kernel, bias])
    params = HUBS.reshape(1, 4) @ kernel + bias             # eq. 8 on Flatten(hubs)
    if mode == "affine":
        alpha, beta = params[:, :2], params[:, 2:]
        update = X * sigmoid(alpha) + beta                  # eq. 9
    elif mode == "scale":
        update = X * sigmoid(params)
    else:
        update = np.broadcast_to(params, X.shape)
    expected = np_ln(X + update)                            # eq. 10
    np.testing.assert_allclose(unit(X, HUBS).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_pgu_matches_hand_computation():
    unit = ProxyGatedUnit(2)
    unit(X, HUBS)
    wx = np.array([[0.1, -0.2, 0.3, 0.4], [0.5, 0.6, -0.7, 0.8]], np.float32)
    bx = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
    wh = np.array([[-0.3, 0.2, 0.1, 0.0], [0.4, -0.5, 0.6, -0.1]], np.float32)
    unit.token_proj.set_weights([wx, bx])
    unit.proxy_proj.set_weights([wh])
    h = HUBS.mean(axis=1, keepdims=True)
    xh = np.concatenate([X, np.broadcast_to(h, X.shape)], -1)     # [x; h]
    w_full = np.concatenate([wx, wh], 0)                           # W [x; h] = W_x x + W_h h
    pre = xh @ w_full + bx
    g, cand = sigmoid(pre[..., :2]), np.tanh(pre[..., 2:])
    expected = np_ln(g * cand + (1 - g) * X)
    np.testing.assert_allclose(unit(X, HUBS).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("unit", [BroadcastGatedUnit(8), ProxyGatedUnit(8)])
def test_broadcast_is_width_preserving(unit):
    x = tf.random.normal([3, 7, 8])
    assert unit(x, tf.random.normal([3, 4, 8])).shape == x.shape
