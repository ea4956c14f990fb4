"""Masked multi-head cross-attention (eq. 5) and multi-view aggregation (eqs. 6-7) vs numpy."""
import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.aggregation import MultiViewAggregation
from infnet_tf.layers.attention import multi_head_attention

EPS = 1e-3  # Keras LayerNormalization epsilon


def np_ln(x):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS)


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_two_token_attention_matches_hand_computation():
    q = np.array([[[1.0, 0.0]]], np.float32)                   # one query, d=2
    k = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)       # two keys
    v = np.array([[[2.0, 0.0], [0.0, 4.0]]], np.float32)
    out, w = multi_head_attention(q, k, v, None, num_heads=1)
    # logits = q.k / sqrt(2) = [0.7071, 0]; softmax = [0.6698, 0.3302]
    expected_w = np.array([np.e ** (1 / np.sqrt(2)), 1.0]) / (np.e ** (1 / np.sqrt(2)) + 1.0)
    np.testing.assert_allclose(w.numpy()[0, 0, 0], expected_w, rtol=1e-6)
    np.testing.assert_allclose(out.numpy()[0, 0], [2 * expected_w[0], 4 * expected_w[1]], rtol=1e-6)


def test_padded_keys_get_exactly_zero_weight_and_all_padding_gives_zeros():
    rng = np.random.default_rng(0)
    q, k, v = (tf.constant(rng.normal(size=s), tf.float32) for s in ([2, 3, 4], [2, 5, 4], [2, 5, 4]))
    mask = tf.constant([[True, True, False, True, False], [False] * 5])
    out, w = multi_head_attention(q, k, v, mask, num_heads=2)
    w = w.numpy()
    assert np.all(w[0][..., [2, 4]] == 0.0)
    np.testing.assert_allclose(w[0].sum(-1), 1.0, rtol=1e-6)
    assert np.all(w[1] == 0.0) and np.all(out.numpy()[1] == 0.0)
    # dropping the padded keys gives the same context
    keep = [0, 1, 3]
    out_kept, _ = multi_head_attention(q[:1], tf.gather(k[:1], keep, axis=1), tf.gather(v[:1], keep, axis=1),
                                       None, num_heads=2)
    np.testing.assert_allclose(out.numpy()[0], out_kept.numpy()[0], atol=1e-6)


def test_softmax_is_float32_under_bfloat16_inputs():
    q = tf.cast(tf.random.normal([1, 2, 4]), tf.bfloat16)
    out, w = multi_head_attention(q, q, q, tf.constant([[True, False]]), num_heads=2)
    assert w.dtype == tf.float32 and out.dtype == tf.bfloat16


def _set(dense, kernel, bias=None):
    dense.set_weights([np.asarray(kernel, np.float32),
                       np.zeros(np.shape(kernel)[1], np.float32) if bias is None else np.asarray(bias, np.float32)])


@pytest.mark.parametrize("fusion", ["concat_linear", "sum"])
def test_multi_view_aggregation_matches_numpy(fusion):
    """Hub group "h" (1 hub) queries views "a" (2 tokens, one padded; all padded in example 2) and "b"
    (2 tokens), eqs. 5-7, every projection with a bias."""
    rng = np.random.default_rng(1)
    d = 2
    hub = rng.normal(size=(2, 1, d)).astype(np.float32)
    xa = rng.normal(size=(2, 2, d)).astype(np.float32)
    xb = rng.normal(size=(2, 2, d)).astype(np.float32)
    layer = MultiViewAggregation(d, 1, ["h"], ["a", "b"], fusion=fusion)
    keep_a = np.array([[True, False], [False, False]])
    masks = {"a": tf.constant(keep_a)}
    layer({"h": hub}, {"a": xa, "b": xb}, masks)
    W = {n: rng.normal(size=(d, d)).astype(np.float32) for n in ("qa", "ka", "va", "qb", "kb", "vb")}
    bias = {n: rng.normal(size=d).astype(np.float32) for n in W}
    for view in ("a", "b"):
        for kind, dense in (("q", layer.q_proj), ("k", layer.k_proj), ("v", layer.v_proj)):
            _set(dense[view], W[kind + view], bias[kind + view])
    fuse = rng.normal(size=(2 * d if fusion == "concat_linear" else d, d)).astype(np.float32)
    fuse_b = rng.normal(size=d).astype(np.float32)
    _set(layer.fuse["h"], fuse, fuse_b)
    out = layer({"h": hub}, {"a": xa, "b": xb}, masks)["h"].numpy()

    def ca(i, x, view, keep):
        if not keep.any():
            return np.zeros((1, d), np.float32)         # all keys padding: a zero context
        q = hub[i] @ W["q" + view] + bias["q" + view]
        k, v = (x[i] @ W[n + view] + bias[n + view] for n in ("k", "v"))
        logits = (q @ k.T) / np.sqrt(d)
        logits = np.where(keep, logits, -np.inf)
        return np_softmax(logits) @ v

    for i in range(2):
        za = ca(i, xa, "a", keep_a[i])
        zb = ca(i, xb, "b", np.array([True, True]))
        if i == 0:                                      # one real key: weight 1
            np.testing.assert_allclose(za, xa[0, :1] @ W["va"] + bias["va"], rtol=1e-5)
        fused_in = np.concatenate([za, zb], -1) if fusion == "concat_linear" else za + zb
        expected = np_ln(hub[i] + fused_in @ fuse + fuse_b)
        np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-6)


def test_aggregation_shares_key_value_projections_across_hub_groups():
    layer = MultiViewAggregation(4, 2, ["g1", "g2", "g3"], ["a"])
    hubs = {g: tf.random.normal([2, n, 4]) for g, n in (("g1", 3), ("g2", 1), ("g3", 2))}
    out, weights = layer(hubs, {"a": tf.random.normal([2, 5, 4])}, return_attention=True)
    assert {g: o.shape for g, o in out.items()} == {g: h.shape for g, h in hubs.items()}
    assert weights["a"].shape == (2, 2, 6, 5)           # all 6 hubs in one attention
    assert len(layer.k_proj) == len(layer.v_proj) == 1  # one K/V projection per view


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_folded_attention_equals_projected_keys_and_values(num_heads):
    """folded_attention(q, x, W^k, b^k, W^v, b^v) == multi_head_attention(q, x W^k + b^k, x W^v + b^v)."""
    from infnet_tf.layers.attention import folded_attention

    rng = np.random.default_rng(2)
    d = 8
    q, x = (tf.constant(rng.normal(size=s), tf.float32) for s in ([3, 2, d], [3, 5, d]))
    wk, wv = (tf.constant(rng.normal(size=(d, d)), tf.float32) for _ in range(2))
    bk, bv = (tf.constant(rng.normal(size=d), tf.float32) for _ in range(2))
    mask = tf.constant([[True, True, False, True, False], [False] * 5, [True] * 5])
    for m in (mask, None):
        ref, ref_w = multi_head_attention(q, tf.matmul(x, wk) + bk, tf.matmul(x, wv) + bv, m, num_heads)
        out, w = folded_attention(q, x, wk, bk, wv, bv, m, num_heads)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5)
        np.testing.assert_allclose(w.numpy(), ref_w.numpy(), atol=1e-6)
        _, none = folded_attention(q, x, wk, bk, wv, bv, m, num_heads, return_weights=False)
        assert none is None
    assert np.all(w.numpy()[1] == 0.0) or m is None


def test_aggregation_folds_small_query_sets_and_projects_large_ones():
    """Same outputs either way: a layer whose rule picks folding vs the projected reference."""
    from infnet_tf.layers import attention

    rng = np.random.default_rng(3)
    hubs = {"g": tf.constant(rng.normal(size=(2, 2, 8)), tf.float32)}
    tokens = {"a": tf.constant(rng.normal(size=(2, 40, 8)), tf.float32)}
    masks = {"a": tf.sequence_mask([40, 3], 40)}
    layer = MultiViewAggregation(8, 2, ["g"], ["a"])
    assert attention.use_folded(2, 40, 8, 2) and not attention.use_folded(40, 40, 8, 2)
    folded = layer(hubs, tokens, masks)["g"].numpy()
    ratio = attention.FOLD_FLOP_RATIO
    attention.FOLD_FLOP_RATIO = 0.0                           # force the projected path
    try:
        projected = layer(hubs, tokens, masks)["g"].numpy()
    finally:
        attention.FOLD_FLOP_RATIO = ratio
    np.testing.assert_allclose(folded, projected, atol=1e-5)


def test_fused_attention_gradients_match_autodiff():
    """attend()'s custom gradient (dC · C row sums) equals TF's softmax gradient, masked and not."""
    from infnet_tf.layers.attention import folded_attention

    rng = np.random.default_rng(4)
    d = 8
    q, x = (tf.constant(rng.normal(size=s), tf.float32) for s in ([3, 4, d], [3, 6, d]))
    wk, wv = (tf.constant(rng.normal(size=(d, d)), tf.float32) for _ in range(2))
    bk, bv = (tf.constant(rng.normal(size=d), tf.float32) for _ in range(2))
    mask = tf.constant([[True] * 3 + [False] * 3, [False] * 6, [True] * 6])
    target = tf.constant(rng.normal(size=(3, 4, d)), tf.float32)

    def grads(fn, m):
        with tf.GradientTape() as tape:
            tape.watch([q, x, wk, bk, wv, bv])
            out, _ = fn(m)
            loss = tf.reduce_sum(tf.sin(out) * target)
        return tape.gradient(loss, [q, x, wk, bk, wv, bv])

    for m in (mask, None):
        projected = lambda m, w: multi_head_attention(q, tf.matmul(x, wk) + bk, tf.matmul(x, wv) + bv, m, 2,  # noqa: E731
                                                      return_weights=w)
        reference = grads(lambda m: projected(m, True), m)          # plain TF ops
        for fused in (lambda m: projected(m, False),
                      lambda m: folded_attention(q, x, wk, bk, wv, bv, m, 2, return_weights=False)):
            for g, r in zip(grads(fused, m), reference):
                np.testing.assert_allclose(g.numpy(), r.numpy(), atol=2e-5)


def _contractions(fn) -> int:
    return [op.type for op in tf.function(fn).get_concrete_function().graph.get_operations()].count("BatchMatMulV2")


def test_groups_reading_a_view_attend_to_it_as_one_query_set():
    """Hub groups "g" (views a, b) and "s" (view a only) share view a's projections: one attention over
    a (2 contractions) and one over b, not one per group and view (6); groups named ``shared`` (held at
    batch 1 by score_candidates) keep their own query set, and the result is the same either way."""
    layer = MultiViewAggregation(4, 1, ["g", "s"], ["a", "b"], group_views={"s": ["a"]})
    hubs = {"g": tf.random.normal([2, 3, 4], seed=1), "s": tf.random.normal([2, 2, 4], seed=2)}
    tokens = {"a": tf.random.normal([2, 9, 4], seed=3), "b": tf.random.normal([2, 4, 4], seed=4)}
    merged = layer(hubs, tokens)
    apart = layer(hubs, tokens, shared=("s",))
    for g in hubs:
        np.testing.assert_allclose(apart[g].numpy(), merged[g].numpy(), atol=1e-6)
    assert _contractions(lambda: layer(hubs, tokens)) == 4
    assert _contractions(lambda: layer(hubs, tokens, shared=("s",))) == 6


def test_a_group_reading_some_views_ignores_the_others():
    """group_views: hub group "s" reads only view "a" — changing view "b" leaves it unchanged while
    group "g" (all views) moves; both share view "a"'s projections; weights rows follow view_rows."""
    layer = MultiViewAggregation(4, 2, ["g", "s"], ["a", "b"], group_views={"s": ["a"]})
    hubs = {"g": tf.random.normal([2, 3, 4], seed=1), "s": tf.random.normal([2, 2, 4], seed=2)}
    xa, xb = tf.random.normal([2, 9, 4], seed=3), tf.random.normal([2, 4, 4], seed=4)
    out, w = layer(hubs, {"a": xa, "b": xb}, return_attention=True)
    moved = layer(hubs, {"a": xa, "b": xb + 1.0})
    np.testing.assert_allclose(moved["s"].numpy(), out["s"].numpy())
    assert not np.allclose(moved["g"].numpy(), out["g"].numpy())
    assert layer.view_rows("a") == ("g", "s") and layer.view_rows("b") == ("g",)
    assert w["a"].shape == (2, 2, 5, 9) and w["b"].shape == (2, 2, 3, 4)
    assert layer.fuse["s"].kernel.shape == (4, 4) and layer.fuse["g"].kernel.shape == (8, 4)
    # the same as a layer of group "s" alone over view "a" with the same weights
    alone = MultiViewAggregation(4, 2, ["s"], ["a"])
    alone({"s": hubs["s"]}, {"a": xa})
    for name in ("q_proj", "k_proj", "v_proj"):
        getattr(alone, name)["a"].set_weights(getattr(layer, name)["a"].get_weights())
    alone.fuse["s"].set_weights(layer.fuse["s"].get_weights())
    alone.norm["s"].set_weights(layer.norm["s"].get_weights())
    np.testing.assert_allclose(alone({"s": hubs["s"]}, {"a": xa})["s"].numpy(), out["s"].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="non-empty subset"):
        MultiViewAggregation(4, 2, ["g"], ["a"], group_views={"g": ["zz"]})
