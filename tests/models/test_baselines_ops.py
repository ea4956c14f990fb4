"""Hand-computed checks of the baselines' core operators: FM term, TFRS Cross, MMoE/CGC gates."""
import itertools

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from infnet_tf.layers.experts import CGC, MMoE, gate_mixture
from infnet_tf.layers.fm import FMInteraction, fm_second_order


def test_fm_second_order_equals_brute_force_pairwise_dot_products():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 5, 4)).astype(np.float32)            # [B, F, d]
    brute = np.array([sum(v[b, i] @ v[b, j] for i, j in itertools.combinations(range(5), 2))
                      for b in range(3)])
    np.testing.assert_allclose(fm_second_order(tf.constant(v)).numpy(), brute, rtol=1e-5, atol=1e-5)
    # tiny hand example: fields (1, 2), (3, -1), (0, 1): <1,2>.<3,-1> + <1,2>.<0,1> + <3,-1>.<0,1> = 1 + 2 - 1
    hand = tf.constant([[[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]]])
    assert FMInteraction()(hand).numpy().tolist() == [2.0]


def test_fm_is_float32_under_bfloat16_inputs():
    x = tf.constant(np.ones((2, 3, 4)), tf.bfloat16)
    out = fm_second_order(x)
    assert out.dtype == tf.float32 and out.numpy().tolist() == [12.0, 12.0]   # 3 pairs × 4


@pytest.mark.parametrize("projection_dim", [None, 1])
def test_tfrs_cross_matches_documented_formula_on_a_3_dim_input(projection_dim):
    """x_{l+1} = x0 ⊙ (W x_l + b) + x_l (TFRS docstring; DCN-V2 eq. 1, low rank W = U V eq. 2)."""
    x0 = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], np.float32)
    xl = np.array([[1.0, 2.0, -1.0], [0.25, -0.5, 1.5]], np.float32)
    layer = tfrs.layers.dcn.Cross(projection_dim=projection_dim)
    layer(x0, xl)                                                  # build
    if projection_dim is None:
        w = np.array([[0.1, -0.2, 0.3], [0.0, 0.5, -0.4], [0.2, 0.1, 0.0]], np.float32)
        b = np.array([0.1, -0.1, 0.2], np.float32)
        layer._dense.set_weights([w, b])                           # Dense: x @ kernel + bias
        expected = x0 * (xl @ w + b) + xl
    else:
        u = np.array([[0.5], [-1.0], [0.25]], np.float32)
        v = np.array([[0.2, -0.3, 0.4]], np.float32)
        b = np.array([0.0, 0.1, -0.1], np.float32)
        layer._dense_u.set_weights([u])
        layer._dense_v.set_weights([v, b])
        expected = x0 * ((xl @ u) @ v + b) + xl
    np.testing.assert_allclose(layer(x0, xl).numpy(), expected, rtol=1e-6, atol=1e-6)
    # row 0 by hand for the full-rank case: x_l W = (-0.1, 0.7, -0.5); + b = (0.0, 0.6, -0.3)
    if projection_dim is None:
        np.testing.assert_allclose(expected[0], [0.5 * 0.0 + 1.0, -1.0 * 0.6 + 2.0, 2.0 * -0.3 - 1.0],
                                   rtol=1e-6, atol=1e-7)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_gate_mixture_matches_numpy():
    logits = np.array([[0.0, 1.0, -1.0], [2.0, 2.0, 2.0]], np.float32)
    experts = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mixed, weights = gate_mixture(tf.constant(logits), tf.constant(experts), return_weights=True)
    w = _softmax(logits)
    np.testing.assert_allclose(weights.numpy(), w, rtol=1e-6)
    np.testing.assert_allclose(mixed.numpy(), np.einsum("be,beh->bh", w, experts), rtol=1e-5)
    np.testing.assert_allclose(mixed.numpy()[1], experts[1].mean(0), rtol=1e-5)   # equal gates: mean


def _relu_mlp(x, layers):
    for kernel, bias in layers:
        x = np.maximum(x @ kernel + bias, 0.0)
    return x


def _mlp_weights(mlp):
    return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in mlp.hidden_layers]


def test_mmoe_layer_matches_numpy():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    layer = MMoE(num_experts=3, expert_hidden=(5, 2), num_gates=2)
    outs = layer(tf.constant(x))
    experts = np.stack([_relu_mlp(x, _mlp_weights(e)) for e in layer.experts], axis=1)   # [B, E, h]
    for gate, out in zip(layer.gates, outs):
        w = _softmax(x @ gate.kernel.numpy())
        np.testing.assert_allclose(out.numpy(), np.einsum("be,beh->bh", w, experts), rtol=1e-5, atol=1e-6)
    assert len(outs) == 2 and outs[0].shape == (4, 2)


def test_cgc_gates_task_and_shared_experts_like_numpy():
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(3)]   # task0, task1, shared inputs
    layer = CGC(num_tasks=2, num_task_experts=2, num_shared_experts=1, expert_hidden=(3,),
                shared_gate=True)
    outs, shared = layer([tf.constant(xs[0]), tf.constant(xs[1])], tf.constant(xs[2]))
    own = [[_relu_mlp(xs[k], _mlp_weights(e)) for e in layer.task_experts[k]] for k in range(2)]
    sh = [_relu_mlp(xs[2], _mlp_weights(e)) for e in layer.shared_experts]
    for k in range(2):
        w = _softmax(xs[k] @ layer.task_gates[k].kernel.numpy())             # over [E_k; E_s]
        expected = np.einsum("be,beh->bh", w, np.stack(own[k] + sh, axis=1))
        np.testing.assert_allclose(outs[k].numpy(), expected, rtol=1e-5, atol=1e-6)
    w = _softmax(xs[2] @ layer.shared_gate_layer.kernel.numpy())            # over every expert
    expected = np.einsum("be,beh->bh", w, np.stack(own[0] + own[1] + sh, axis=1))
    np.testing.assert_allclose(shared.numpy(), expected, rtol=1e-5, atol=1e-6)
    last, none = CGC(2, 1, 1, (3,), shared_gate=False)([tf.constant(xs[0])] * 2, tf.constant(xs[2]))
    assert none is None and len(last) == 2


@pytest.mark.parametrize("layer", [
    FMInteraction(name="fm"),
    MMoE(2, (4,), 3, dropout=0.1, name="m"),
    CGC(2, 1, 2, (4, 3), shared_gate=True, name="c"),
], ids=["fm", "mmoe", "cgc"])
def test_operator_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
