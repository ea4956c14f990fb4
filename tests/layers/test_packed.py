"""Packed sequences: the real items of a padded batch as rows (pack, to_dense, packed_mean), and the
tokenizer building the sequence tokens from the real items only."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.masking import masked_mean
from infnet_tf.layers.packed import pack, packed_mean, to_dense
from infnet_tf.layers.tokenizers import FeatureTokenizer
from tests.models.tiny import random_batch, tiny_layout

LAYOUT = tiny_layout()
MASK = tf.constant([[True, True, False, False], [False] * 4, [True] * 4])


def test_pack_keeps_the_real_items_in_row_major_order_and_to_dense_restores_zeros_at_padding():
    x = tf.reshape(tf.range(3 * 4 * 2, dtype=tf.float32) + 1.0, [3, 4, 2])
    values, rows, mask = pack(x, MASK)
    np.testing.assert_array_equal(rows.numpy(), [[0, 0], [0, 1], [2, 0], [2, 1], [2, 2], [2, 3]])
    np.testing.assert_array_equal(values.numpy(), x.numpy()[MASK.numpy()])
    dense = to_dense(values, rows, mask).numpy()
    expected = x.numpy() * MASK.numpy()[..., None]
    np.testing.assert_array_equal(dense, expected)


def test_packed_mean_by_hand_and_zero_for_an_all_padding_example():
    x = tf.constant([[[1.0, 2.0], [3.0, 6.0], [9.0, 9.0], [9.0, 9.0]],
                     [[5.0, 5.0]] * 4,
                     [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [6.0, 2.0]]])
    mean = packed_mean(*pack(x, MASK)).numpy()
    np.testing.assert_allclose(mean, [[2.0, 4.0], [0.0, 0.0], [3.0, 2.0]])
    np.testing.assert_allclose(mean, masked_mean(x, MASK).numpy(), rtol=1e-6)


def test_tokenizer_rows_are_the_padded_tokens_at_the_real_items():
    tok = FeatureTokenizer(LAYOUT, 8)
    batch = random_batch(LAYOUT, 4, lengths=[[0, 2, 5, 3], [1, 1, 4, 0]])
    dense = tok.sequence_tokens(batch)
    for (values, rows, mask), (s, m) in zip(tok.sequence_rows(batch), dense):
        np.testing.assert_array_equal(mask.numpy(), m.numpy())
        assert values.shape[0] == int(m.numpy().sum())
        np.testing.assert_array_equal(values.numpy(), s.numpy()[m.numpy()])
        assert np.all(s.numpy()[~m.numpy()] == 0.0)


def test_sequence_lookups_touch_only_the_real_items():
    """The sequences' embedding look-ups (so their sparse gradients) cover the real items, not every
    padded step: the author table (sequence-only) gets one gradient row per real item."""
    tok = FeatureTokenizer(LAYOUT, 8)
    lengths = [[0, 2, 5, 3], [1, 1, 4, 0]]
    batch = random_batch(LAYOUT, 4, lengths=lengths)
    tok(batch)
    author = tok.embeddings.tables["author"].embeddings
    with tf.GradientTape() as tape:
        loss = sum(tf.reduce_sum(packed_mean(*p)) for p in tok.sequence_rows(batch))
    grad = tape.gradient(loss, author)
    assert isinstance(grad, tf.IndexedSlices)
    assert grad.indices.shape[0] == sum(sum(l) for l in lengths)      # 10 + 6 real items, not 2 x 4 x 5


def test_a_batch_without_any_real_item_trains():
    """R = 0 (e.g. the first hour of a log: nobody has a history yet): empty look-ups, an empty
    scatter and segment sums over no rows still give finite losses and gradients."""
    from infnet_tf.models import build_model
    from tests.models.tiny import random_labels, tiny_config, train_step

    batch = random_batch(LAYOUT, 4, lengths=[[0] * 4, [0] * 4])
    for name in ("infnet", "shared_bottom"):
        model = build_model(LAYOUT, tiny_config(model=name))
        loss, grads = train_step(model, tf.keras.optimizers.Adam(), batch, random_labels(LAYOUT, 4), LAYOUT)
        assert np.isfinite(float(loss))
        assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads if g is not None)
