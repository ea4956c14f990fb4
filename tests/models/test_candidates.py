"""``INFNet.score_candidates``: one user x N candidates equals the full model on the tiled rows."""
from __future__ import annotations

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import cat_key
from infnet_tf.models import build_model
from infnet_tf.models.candidates import candidate_input_keys, user_input_keys
from tests.models.tiny import random_batch, tiny_config, tiny_layout

CANDIDATE_TOKENS = ("video_id", "age_bucket")   # user_id is the one user-side categorical token


def _split(layout, batch, user_row: int):
    """(user inputs of row ``user_row`` at batch 1, candidate inputs of every row, full tiled batch)."""
    user = {k: batch[k][user_row:user_row + 1] for k in user_input_keys(layout, CANDIDATE_TOKENS)}
    candidates = {k: batch[k] for k in candidate_input_keys(layout, CANDIDATE_TOKENS)}
    n = int(next(iter(candidates.values())).shape[0])
    tiled = {k: tf.repeat(v, n, axis=0) for k, v in user.items()}
    return user, candidates, {**tiled, **candidates}


def test_input_keys_partition_the_layout():
    layout = tiny_layout()
    user, cand = user_input_keys(layout, CANDIDATE_TOKENS), candidate_input_keys(layout, CANDIDATE_TOKENS)
    assert cand == (cat_key("video_id"), cat_key("age_bucket"))
    assert set(user) | set(cand) == set(layout.model_input_keys()) and not set(user) & set(cand)
    assert user[0] == cat_key("user_id") and all(k.startswith("seq/") for k in user[1:])


@pytest.mark.parametrize("changes", [
    {},                                                            # default switches, 2 blocks
    {"num_blocks": 1, "readout": "task_token"},                    # the single block aggregates and reads T
    {"hubs": False},                                               # all-to-all reference
    {"seq_hub_init": "global_mean", "cat_hub_init": "mean", "token_norm": True},
    {"n_cat_hubs": 8},                                             # many queries: K/V projected, not folded
    {"aggregation": False},                                        # late fusion reads the S tokens
    {"broadcast": False, "broadcast_unit": "pgu"},                 # S never refined: stays at batch 1
    {"broadcast_unit": "pgu", "num_blocks": 3},
    {"seq_hub_views": "all", "num_blocks": 3},                     # paper: S depends on the candidate from block 2
    {"seq_hub_views": "all", "n_cat_hubs": 8, "token_norm": True},
    {"ordinal_encoding": "none"},
    {"ordinal_encoding": "cumulative"},
    {"cat_hub_views": "cat_task"},                                  # only the task hubs read S per candidate
    {"cat_hub_views": "cat_task", "seq_hub_views": "all", "num_blocks": 3},
], ids=["default", "one-block", "hubs-off", "global-mean", "projected-kv", "no-aggregation", "no-broadcast",
        "pgu", "seq-hubs-read-all", "seq-hubs-read-all-projected", "ordinal-none", "ordinal-tokens-only",
        "cat-hubs-read-c-t", "cat-hubs-read-c-t-seq-hubs-all"])
def test_equals_the_full_model_on_tiled_rows(changes):
    """Lengths 0 (empty sequences: masked out, zero hubs), partial and full; unseen-id buckets
    (the highest ids of each table, the transform's OOV range) among the candidates."""
    layout = tiny_layout()
    tf.keras.utils.set_random_seed(0)   # the weights, whatever ran before (a tiny head can be all-dead)
    model = build_model(layout, tiny_config(**changes))
    n = 7
    lengths = [np.array([0, 3, 5, 1, 0, 2, 4]), np.array([2, 0, 5, 0, 1, 3, 0])]
    batch = random_batch(layout, n, seed=3, lengths=lengths)
    batch[cat_key("video_id")] = tf.constant([19, 1, 18, 5, 19, 2, 7], tf.int64)
    for row in (1, 0):   # row 1: type1 empty; row 0: type0 empty
        user, candidates, tiled = _split(layout, batch, row)
        got = model.score_candidates(user, candidates)
        want = model(tiled, training=False)
        for task in layout.task_names:
            assert got[task].shape == (n,)
            np.testing.assert_allclose(got[task].numpy(), want[task].numpy(), atol=1e-6, rtol=0)
        # the candidates really differ (else the test could not see a broadcasting mistake)
        assert np.ptp(want[layout.task_names[0]].numpy()) > 0


@pytest.mark.parametrize("n", [1, 6])
@pytest.mark.parametrize("blocks", [1, 2])
def test_graph_mode_with_unknown_lengths_folds_the_attention(n, blocks):
    """As served (T unknown): with few queries a block folds the K/V projections into the queries and
    attends to the raw S (``use_folded``), here S shared at batch 1 in the one-block model."""
    layout = tiny_layout()
    model = build_model(layout, tiny_config(num_blocks=blocks, readout="task_token"))
    batch = random_batch(layout, n, seed=5)
    user, candidates, tiled = _split(layout, batch, 0)
    spec = lambda d: {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in d.items()}  # noqa: E731
    fn = tf.function(model.score_candidates, input_signature=[spec(user), spec(candidates)], autograph=False)
    got, want = fn(user, candidates), model(tiled)
    np.testing.assert_allclose(got["click"].numpy(), want["click"].numpy(), atol=1e-6, rtol=0)


def test_inputs_on_the_wrong_side_are_named():
    layout = tiny_layout()
    model = build_model(layout, tiny_config())
    batch = random_batch(layout, 3)
    user, candidates, _ = _split(layout, batch, 0)
    with pytest.raises(ValueError, match=r"in both: \['cat/user_id'\]"):
        model.score_candidates(user, {**candidates, cat_key("user_id"): batch[cat_key("user_id")]})
    del user[cat_key("user_id")]
    with pytest.raises(ValueError, match=r"in neither: \['cat/user_id'\]"):
        model.score_candidates(user, candidates)
    user, candidates, _ = _split(layout, batch, 0)
    del user["seq/type1/length"]
    with pytest.raises(ValueError, match=r"missing from user: \['seq/type1/length'\]"):
        model.score_candidates(user, candidates)


def test_sequence_path_is_computed_once_when_sequence_hubs_read_only_s():
    """seq_hub_views=seq: every block's S and sequence hubs keep batch 1 inside score_candidates
    (else the user side would be recomputed per candidate though the result stays equal)."""
    layout = tiny_layout()
    model = build_model(layout, tiny_config(seq_hub_views="seq", num_blocks=3))
    batch = random_batch(layout, 5, seed=2)
    user, candidates, _ = _split(layout, batch, 0)
    seen = []
    for block in model.block_layers:
        original = block.call

        def spy(tokens, hubs, masks=None, _original=original, **kw):
            out = _original(tokens, hubs, masks, **kw)
            seen.append((int(out[0]["seq"].shape[0]), int(out[1]["seq"].shape[0]), int(out[1]["cat"].shape[0])))
            return out
        block.call = spy
    model.score_candidates(user, candidates)
    assert seen == [(1, 1, 5)] * 3
