"""One user x N candidates: INFNet with the candidate-independent part computed once per request.

A ranking request scores N candidate items for one user. The model inputs split by side (the feature
spec's ``side``, :meth:`infnet_tf.feature_spec.FeatureSpec.token_sides`): the **user** side is every
behaviour sequence (``seq/*``, always the user's history) and the user-side categorical tokens
(user id and attributes, request context); the **candidate** side is the other categorical tokens
(item id and attributes, item counters, position).

Computed once, at batch 1, and broadcast to the N candidates:

* the embedding look-ups of the user-side categorical tokens (their rows of C, §3.1);
* the sequence tokens S_b = e_{b,t} + p_t + r_t of every behaviour type (eq. 2: item and
  side-information look-ups, recency positions, time-gap buckets) and their padding masks;
* the sequence hubs' initial value, the masked mean of MLP_b^seq over S_b (eq. 3) — a function of
  S_b and its mask only;
* in block 1, everything Phase 1 (eqs. 5-7) computes from S alone: its key and value projections
  S W^k_S + b^k, S W^v_S + b^v (``token_norm``: after its LayerNorm, also once), or, where the block
  folds the projections into the queries (``attention.attend_folded``), S itself. S and its
  padding mask enter the block at batch 1; the attention contractions (BatchMatMul) broadcast the
  shared keys and values over the N candidates' queries [N, heads, Q, d_h], and the padding bias
  [1, T] over [N, heads, Q, T]. Block 1's Phase 2 (eqs. 8-10: x ⊙ (1 + sigmoid(alpha_n)) + beta_n,
  then LayerNorm, with alpha_n, beta_n from candidate n's sequence hubs) is the first tensor of S
  that differs per candidate: [N, T, d] from there on. (The PGU's token projection of S is shared the
  same way.)

Per candidate: the candidate-side rows of C, the categorical hubs (eq. 1: phi^cat reads all of C),
the task tokens and hubs (eq. 4), the hubs' queries and attention weights from block 1 on (every
hub attends to C, so every hub, and every token Phase 2 refines, S included, depends on the
candidate), and blocks 2..L whole. With ``hubs=off`` the all-to-all attention mixes S with C from
the first layer on, so only the tokenizer and look-ups are shared.

With ``seq_hub_views=seq`` (the sequence hubs read only S, ``infnet_plan``) the whole sequence path
is candidate-independent: the sequence hubs' queries, attention and fusion, Phase 2's refinement of
S and the next blocks' S projections all stay at batch 1 in every block; only the categorical and
task hubs' attention over S (their queries against the shared keys and values) runs per candidate,
and the seq hubs are broadcast to the N candidates for the heads.

What that buys (with ``seq_hub_views=all``): the work shared is the tokenizer, the sequence hub MLP and block 1's S projections
(plus, in the export, the user side of the in-graph transform: string look-ups and hashing of every
sequence item); blocks 2..L run per candidate whatever is shared, because Phase 2 of block 1 makes
S candidate-dependent. So the speed-up over N full rows grows with the share of block 1 in the
model: measured on 2 cores (keras level, 1 user x 256 candidates, 1,000 sequence tokens, d=64) 1.14x
with L=4 blocks, 2.06x with L=2, 2.47x with L=1. With ``seq_hub_views=seq`` (the default) through the
exported signatures (``bench.serving_latency``, transform included, d=64, L=4): 1.60x at 70 sequence
tokens, 2.09x at 1,000, 2.54x at 4,000; with the current defaults (L=2, one head) 1.51x at 70 and 4.92x
at 1,000 (export/SERVING.md).

Why the result is identical to ``model(tile(user) ∪ candidates)``: every layer of INFNet acts on
each example (batch row) separately — look-ups, per-token MLPs, LayerNorm over the feature axis,
attention within an example's own tokens and hubs; there is no batch statistic (no batch norm, and
dropout is off at inference) — so a per-example function of the user's inputs gives the same value
whether it is computed once and broadcast or computed on N equal rows. The broadcast tensors are
the very tensors the full model would compute on each tiled row, and a contraction against a
broadcast operand is the same sum as against its copies, so the blocks, heads and outputs match (to
float rounding of matmuls run at different batch sizes, far below 1e-5).
"""
from __future__ import annotations

from typing import Mapping

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import LENGTH, cat_key, seq_key, sequence_columns
from infnet_tf.data.layout import FeatureLayout


def user_input_keys(layout: FeatureLayout, candidate_tokens) -> tuple[str, ...]:
    """The user-side model inputs: the user-side ``cat/*`` and every ``seq/*`` input, layout order."""
    candidate = set(candidate_tokens)
    cats = tuple(cat_key(f.name) for f in layout.categorical if f.name not in candidate)
    return cats + sequence_input_keys(layout)


def sequence_input_keys(layout: FeatureLayout) -> tuple[str, ...]:
    """Every ``seq/*`` model input (always user side), layout order."""
    return tuple(seq_key(seq.name, name) for seq in layout.sequences for name in (*sequence_columns(seq), LENGTH))


def candidate_input_keys(layout: FeatureLayout, candidate_tokens) -> tuple[str, ...]:
    """The candidate-side model inputs (``cat/<token>``), layout order."""
    candidate = set(candidate_tokens)
    return tuple(cat_key(f.name) for f in layout.categorical if f.name in candidate)


def check_sides(layout: FeatureLayout, user: Mapping, candidates: Mapping) -> None:
    """Every categorical input in exactly one of ``user`` / ``candidates``, every sequence input in
    ``user``, at least one candidate input; a ValueError naming the offending inputs otherwise."""
    cats = [cat_key(f.name) for f in layout.categorical]
    both = [k for k in cats if k in user and k in candidates]
    neither = [k for k in cats if k not in user and k not in candidates]
    seqs = [k for k in sequence_input_keys(layout) if k not in user]
    if both or neither or seqs or not candidates:
        raise ValueError("score_candidates: every cat/* input goes in exactly one of user / candidates and every "
                         f"seq/* input in user; in both: {both}, in neither: {neither}, sequence inputs missing "
                         f"from user: {seqs}" + ("" if candidates else "; no candidate input"))


def tiled_inputs(user: Mapping, candidates: Mapping) -> dict:
    """The full model's inputs for the same pairs: every user input repeated for the N candidates."""
    n = tf.shape(next(iter(candidates.values())))[0]
    return {**{k: tf.repeat(v, n, axis=0) for k, v in user.items()}, **candidates}


def score_candidates(model, user: Mapping, candidates: Mapping) -> dict:
    """``model`` (an :class:`~infnet_tf.models.infnet.INFNet`) scoring one user x N candidates.

    ``user``: user-side model inputs at batch 1 (see :func:`user_input_keys`); ``candidates``: the
    candidate-side ``cat/*`` inputs [N]. Returns {task: probability [N]} (see the module docstring
    for what is computed once).
    """
    layout, tokenizer = model.layout, model.tokenizer
    check_sides(layout, user, candidates)
    n = tf.shape(next(iter(candidates.values())))[0]

    def broadcast(x):
        """A batch-1 tensor viewed as N equal rows."""
        return tf.broadcast_to(x, tf.concat([[n], tf.shape(x)[1:]], axis=0))

    cat = None
    if layout.categorical:
        rows = []
        for f in layout.categorical:
            key = cat_key(f.name)
            if key in candidates:
                rows.append(tokenizer.embeddings.lookup(f, candidates[key]))          # [N, d]
            else:
                rows.append(broadcast(tokenizer.embeddings.lookup(f, user[key])))   # [1, d] once
        cat = tf.stack(rows, axis=1)                                                 # C [N, N_c, d]
    seqs = tokenizer.sequence_rows(user)                                             # eq. 2, batch 1
    # S and its mask stay at batch 1 ([1, T, d], [1, T]); C and the task tokens are [N, ...]
    tokens, masks, _, batch = model._group_tokens(cat, seqs)
    hubs = {}
    seq_path_shared = model.plan.group_views.get("seq") == ("seq",)   # seq_hub_views=seq: S never meets C
    if model.model_config.hubs:
        hubs = model._hubs(tokens, seqs, batch)
        if "seq" in hubs and not seq_path_shared:
            hubs["seq"] = broadcast(hubs["seq"])                                     # eq. 3, batch 1
    else:                                                   # all-to-all: one [N, C+S+T, d] sequence
        tokens = {g: broadcast(t) if g == "seq" else t for g, t in tokens.items()}
        masks = {g: broadcast(m) for g, m in masks.items()}
    tokens, masks, hubs = model._blocks(tokens, masks, hubs, training=False,
                                        shared=("seq",) if seq_path_shared and "seq" in hubs else ())
    if seq_path_shared:                                     # S and its hubs stayed at batch 1 in every block
        hubs["seq"] = broadcast(hubs["seq"])
    if "seq" in tokens and "seq" in model.plan.summaries and model.plan.summary_source == "tokens":
        tokens["seq"] = broadcast(tokens["seq"])            # no block refined S: its mean is the user's
    inputs = model.readout(tokens, masks, hubs)
    return {name: head(x, training=False) for name, head, x in zip(model.task_names, model.heads, inputs)}
