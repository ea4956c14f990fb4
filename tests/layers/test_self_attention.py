"""All-to-all self-attention block (the quadratic reference for hubs=off / all_to_all)."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.self_attention import SelfAttentionBlock


def test_padded_tokens_do_not_change_real_outputs():
    block = SelfAttentionBlock(8, 2)
    x = tf.random.normal([2, 4, 8])
    mask = tf.constant([[True, True, True, False], [True, False, True, True]])
    out = block(x, mask).numpy()
    noise = tf.random.normal([2, 4, 8]) * tf.cast(~mask, tf.float32)[..., None]
    out2 = block(x + 100.0 * noise, mask).numpy()
    m = mask.numpy()
    np.testing.assert_allclose(out[m], out2[m], atol=1e-5)


def test_query_last_equals_the_tail_of_the_full_block():
    full = SelfAttentionBlock(8, 2)
    x = tf.random.normal([2, 5, 8])
    full(x)
    tail = SelfAttentionBlock(8, 2, query_last=2)
    tail(x)
    tail.set_weights(full.get_weights())
    np.testing.assert_allclose(tail(x).numpy(), full(x).numpy()[:, -2:], atol=1e-6)
