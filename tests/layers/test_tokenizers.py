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
