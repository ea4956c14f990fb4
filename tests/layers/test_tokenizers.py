"""Tokenizers (§3.1, eq. 2): recency positions, padding, shared tables, projections."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import seq_key
from infnet_tf.layers.tokenizers import FeatureTokenizer
from infnet_tf.precision import precision_scope
from tests.models.tiny import pad_batch, random_batch, tiny_layout

LAYOUT = tiny_layout()


def test_shapes_masks_and_zeroed_padding():
    tok = FeatureTokenizer(LAYOUT, 8)
    batch = random_batch(LAYOUT, 4, lengths=[[0, 2, 5, 3], [1, 1, 4, 0]])
    cat, seqs = tok(batch)
    assert cat.shape == (4, 3, 8) and len(seqs) == 2
    s, m = seqs[0]
    assert s.shape == (4, 5, 8)
    np.testing.assert_array_equal(m.numpy().sum(1), [0, 2, 5, 3])
    assert np.all(s.numpy()[~m.numpy()] == 0.0)


def test_position_is_recency_so_padding_does_not_shift_it():
    tok = FeatureTokenizer(LAYOUT, 8)
    batch = random_batch(LAYOUT, 2, seq_len=3, lengths=[[3, 2], [1, 3]])
    _, short = tok(batch)
    _, long = tok(pad_batch(LAYOUT, batch, 2))
    for (s1, _), (s2, _) in zip(short, long):
        np.testing.assert_array_equal(s1.numpy(), s2.numpy()[:, :3])
    # the most recent real item uses position row 0: e + p_0 + r
    s, _ = short[0]
    ids = batch[seq_key("type0", "s0_video")].numpy()
    author = batch[seq_key("type0", "s0_author")].numpy()
    gaps = batch[seq_key("type0", "time_gap")].numpy()
    last = 1                                                  # row 1 has length 2
    emb = tok.embeddings.tables
    expected = (emb["video"](tf.constant(ids[1, last])) + emb["author"](tf.constant(author[1, last]))
                + tok.positions["type0"](tf.constant(0)) + tok.time_gaps["type0"](tf.constant(gaps[1, last])))
    np.testing.assert_allclose(s.numpy()[1, last], expected.numpy(), rtol=1e-6)


def test_shared_table_and_projection():
    tok = FeatureTokenizer(LAYOUT, 8)
    batch = random_batch(LAYOUT, 2)
    tok(batch)
    tables = {v.name.split("/")[-2] for v in tok.trainable_variables if "emb_" in v.name}
    assert tables == {"emb_user", "emb_video", "emb_age", "emb_author"}   # video shared by 3 fields
    assert tok.embeddings.tables["age"].output_dim == 4 and "age" in tok.embeddings.projections


def test_concat_linear_combiner_and_pooled_sequences():
    tok = FeatureTokenizer(LAYOUT, 8, combiner="concat_linear")
    batch = random_batch(LAYOUT, 3, lengths=[[0, 2, 5], [1, 0, 4]])
    pooled = tok.pooled_sequences(batch)
    assert set(pooled) == {"type0", "type1"} and pooled["type0"].shape == (3, 8)
    assert np.all(pooled["type0"].numpy()[0] == 0.0) and np.all(np.isfinite(pooled["type1"].numpy()))
    _, seqs = tok(batch)
    s, m = seqs[0]
    np.testing.assert_allclose(pooled["type0"].numpy()[1], s.numpy()[1, :2].mean(0), rtol=1e-6)


def test_embeddings_are_cast_to_compute_dtype():
    with precision_scope("mixed_bfloat16"):
        tok = FeatureTokenizer(LAYOUT, 8)
        cat, seqs = tok(random_batch(LAYOUT, 2))
    assert cat.dtype == tf.bfloat16 and seqs[0][0].dtype == tf.bfloat16


def test_cumulative_ordinal_encoding_sums_the_rows_up_to_the_bucket():
    """ordinal="cumulative": bucket j of an ordinal input is rows 1..j of its table summed (then its
    projection), id 0 (missing) its own row; other inputs and the plain encoding are look-ups."""
    plain = FeatureTokenizer(LAYOUT, 8)
    ordered = FeatureTokenizer(LAYOUT, 8, ordinal="cumulative")
    batch = random_batch(LAYOUT, 6)
    batch["cat/age_bucket"] = tf.constant([0, 1, 2, 5, 3, 1], tf.int64)
    cat_plain, _ = plain(batch)
    cat, _ = ordered(batch)
    ordered.set_weights(plain.get_weights())   # same variables: the encoding is the only difference
    cat, _ = ordered(batch)
    table = plain.embeddings.tables["age"].embeddings.numpy()                 # [6, 4]
    kernel = plain.embeddings.projections["age"].kernel.numpy()               # [4, 8]
    want = np.stack([table[0]] + [table[1:j + 1].sum(0) for j in (1, 2, 5, 3, 1)]) @ kernel
    np.testing.assert_allclose(cat.numpy()[:, 2], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cat.numpy()[:, :2], cat_plain.numpy()[:, :2])   # user_id, video_id: look-ups
    np.testing.assert_allclose(cat_plain.numpy()[:, 2], table[[0, 1, 2, 5, 3, 1]] @ kernel, rtol=1e-5, atol=1e-6)
    # every bucket's row receives the gradient of the buckets above it
    with tf.GradientTape() as tape:
        c, _ = ordered({**batch, "cat/age_bucket": tf.constant([3], tf.int64),
                        **{k: v[:1] for k, v in batch.items() if k != "cat/age_bucket"}})
        loss = tf.reduce_sum(c[:, 2])
    grad = tf.convert_to_tensor(tape.gradient(loss, ordered.embeddings.tables["age"].embeddings)).numpy()
    # d loss / d row i = the projection's row sums for rows 1..3, exactly zero elsewhere (row 0 too)
    kernel = ordered.embeddings.projections["age"].kernel.numpy()
    np.testing.assert_allclose(grad[1:4], np.tile(kernel.sum(1), (3, 1)), rtol=1e-6)
    assert np.all(grad[0] == 0) and np.all(grad[4:] == 0)
    # a bucket-0 (missing) id trains row 0 alone
    with tf.GradientTape() as tape:
        c, _ = ordered({**batch, "cat/age_bucket": tf.constant([0], tf.int64),
                        **{k: v[:1] for k, v in batch.items() if k != "cat/age_bucket"}})
        loss = tf.reduce_sum(c[:, 2])
    grad = tf.convert_to_tensor(tape.gradient(loss, ordered.embeddings.tables["age"].embeddings)).numpy()
    np.testing.assert_allclose(grad[0], kernel.sum(1), rtol=1e-6)
    assert np.all(grad[1:] == 0)


def test_id_dropout_replaces_ids_by_missing_only_in_training():
    """id_dropout p: in training each non-ordinal categorical id becomes 0 (missing) with probability
    p; ordinal tokens (binned numbers) and inference are untouched."""
    tok = FeatureTokenizer(LAYOUT, 8, id_dropout=0.5)
    batch = random_batch(LAYOUT, 400, seed=4)
    plain, _ = tok(batch)
    np.testing.assert_array_equal(tok(batch, training=False)[0].numpy(), plain.numpy())
    tf.random.set_seed(7)
    dropped, _ = tok(batch, training=True)
    missing = tok.embeddings.lookup(LAYOUT.categorical[0], tf.zeros([1], tf.int64)).numpy()[0]
    for i in (0, 1):                                              # user_id, video_id: ids
        gone = np.all(np.isclose(dropped.numpy()[:, i], missing if i == 0 else
                                 tok.embeddings.lookup(LAYOUT.categorical[1], tf.zeros([1], tf.int64)).numpy()[0]),
                      axis=-1)
        kept = np.all(dropped.numpy()[:, i] == plain.numpy()[:, i], axis=-1)
        assert np.all(gone | kept) and 0.4 < gone.mean() < 0.6
    np.testing.assert_array_equal(dropped.numpy()[:, 2], plain.numpy()[:, 2])   # age_bucket: ordinal


def test_bound_id_dropout_masks_are_a_function_of_the_seed():
    """Bound to a seed (the trainer's (seed, global step)), the masks repeat for the same seed, change
    with it, differ between the id fields and keep the rate p."""
    tok = FeatureTokenizer(LAYOUT, 8, id_dropout=0.5)
    batch = random_batch(LAYOUT, 400, seed=4)
    plain = tok(batch)[0].numpy()
    step = tf.Variable(0, dtype=tf.int64)
    tok.bind_dropout_seed(lambda: tf.stack([tf.constant(3, tf.int64), step.read_value()]))
    first, again = tok(batch, training=True)[0].numpy(), tok(batch, training=True)[0].numpy()
    np.testing.assert_array_equal(first, again)
    kept = np.all(first == plain, axis=-1)                                       # [B, N_c]
    assert 0.4 < 1 - kept[:, 0].mean() < 0.6 and 0.4 < 1 - kept[:, 1].mean() < 0.6
    assert not np.array_equal(kept[:, 0], kept[:, 1])                           # one mask per field
    step.assign(1)
    assert not np.array_equal(np.all(tok(batch, training=True)[0].numpy() == plain, axis=-1)[:, :2], kept[:, :2])


def test_cumulative_with_gaps_also_orders_the_time_gap_buckets():
    """ordinal="cumulative_with_gaps": a real position's time-gap term is rows 1..j of the type's
    gap table summed; padding stays zero; the binned categorical tokens are encoded as with "cumulative"."""
    plain = FeatureTokenizer(LAYOUT, 8, ordinal="cumulative")
    tok = FeatureTokenizer(LAYOUT, 8, ordinal="cumulative_with_gaps")
    batch = random_batch(LAYOUT, 3, lengths=[[2, 5, 0], [1, 0, 3]])
    plain(batch)
    tok(batch)
    tok.set_weights(plain.get_weights())
    cat, seqs = tok(batch)
    np.testing.assert_array_equal(cat.numpy(), plain(batch)[0].numpy())
    gaps = batch[seq_key("type0", "time_gap")].numpy()
    table = tok.time_gaps["type0"].embeddings.numpy()
    (s, mask), (s_plain, _) = seqs[0], plain(batch)[1][0]
    for row, t in ((0, 0), (0, 1), (1, 4)):
        j = gaps[row, t]
        want = s_plain.numpy()[row, t] - table[j] + table[1:j + 1].sum(0)
        np.testing.assert_allclose(s.numpy()[row, t], want, rtol=1e-5, atol=1e-6)
    assert np.all(s.numpy()[~mask.numpy()] == 0.0)
