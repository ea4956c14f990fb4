"""Parameter count and the analytical FLOPs count, cross-checked with TensorFlow's profiler.

Tolerance: the analytical count covers the contractions (MatMul / BatchMatMul), which must agree
with the profiler's float_ops for those op types *exactly* (to 0.1%); all other ops the profiler
counts (element-wise: softmax, LayerNorm, masks, adds) add at most 30% at d=8 (less at larger d).
"""
import pytest

import infnet_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from infnet_tf.data.keys import LENGTH, seq_key
from infnet_tf.models import build_model
from infnet_tf.models.cost import flops_per_example, param_count
from tests.models.tiny import random_batch, tiny_config, tiny_layout

LAYOUT = tiny_layout()
BATCH = 4


def profiler_flops(model, batch, op_regex):
    """The profiler's float ops of ``op_regex`` ops (both regexes used here match MatMul) in the traced
    forward pass, plus the MatMuls over packed sequence rows, whose row count is dynamic so the
    profiler skips them: counted here from their kernels' shapes at R = every sequence step (``batch``
    has full sequences)."""
    spec = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()}
    graph = tf.function(lambda f: model(f)).get_concrete_function(spec).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    options["account_type_regexes"] = [op_regex]
    total = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    # [R_b, k] x [k, n] over the packed rows of one behaviour type: 2·k·n per row; the tiny layout's
    # types have one length and every sequence is full, so each type has rows / n_types rows
    rows = sum(int(batch[seq_key(s.name, LENGTH)].numpy().sum()) for s in LAYOUT.sequences)
    per_row = sum(2 * op.inputs[1].shape[0] * op.inputs[1].shape[1] for op in graph.get_operations()
                  if op.type == "MatMul" and op.inputs[0].shape[0] is None)
    total += per_row * rows // len(LAYOUT.sequences)
    return total


CONTRACTIONS = "MatMul|BatchMatMul.*"


def full_batch(n):
    """``n`` random rows whose every behaviour sequence is full (what the analytical count assumes)."""
    return random_batch(LAYOUT, n, lengths=[[s.max_len] * n for s in LAYOUT.sequences])


@pytest.mark.parametrize("changes", [{}, {"hubs": False, "task_tokens": False},
                                     {"broadcast_unit": "pgu", "cat_hub_init": "mean", "fusion": "sum",
                                      "sequence_combiner": "concat_linear", "num_blocks": 1}],
                         ids=["default", "hubs_off", "variants"])
def test_analytical_flops_match_the_profiler(changes):
    config = tiny_config(**changes)
    model = build_model(LAYOUT, config)
    batch = full_batch(BATCH)
    analytical = flops_per_example(LAYOUT, config)
    # per example = the growth from BATCH to 2·BATCH rows (products of weights, computed once per
    # batch, e.g. the folded attention's query and value maps, cancel)
    double = full_batch(2 * BATCH)
    contractions, everything = ((profiler_flops(model, double, ops) - profiler_flops(model, batch, ops)) / BATCH
                                for ops in (CONTRACTIONS, ".*"))
    np.testing.assert_allclose(contractions, analytical, rtol=1e-3)
    assert analytical <= everything <= 1.3 * analytical


def test_param_count():
    model = build_model(LAYOUT, tiny_config())
    assert param_count(model) == sum(int(np.prod(v.shape)) for v in model.variables)
    assert param_count(model, trainable_only=True) <= param_count(model)


def _longer(layout, extra):
    """``layout`` with ``extra`` more tokens in its first behaviour sequence."""
    import dataclasses

    first = dataclasses.replace(layout.sequences[0], max_len=layout.sequences[0].max_len + extra)
    return dataclasses.replace(layout, sequences=(first, *layout.sequences[1:]))


@pytest.mark.parametrize("cat_hub_views", ["all", "cat_task"])
def test_candidate_flops_grow_with_the_sequence_only_by_the_other_hubs_attention(cat_hub_views):
    """seq_hub_views=seq: a longer sequence adds, per candidate, only the categorical and task hubs'
    two attention contractions over the extra tokens (2 · 2 · hubs · extra · d per block that
    aggregates them); its projections, the sequence hubs and Phase 2 on S are shared. With
    cat_hub_views=cat_task only the task hubs' (the categorical hubs do not read S)."""
    from infnet_tf.models.infnet_flops import candidate_flops, infnet_flops
    from infnet_tf.models.infnet_plan import make_plan

    config = tiny_config(seq_hub_views="seq", cat_hub_views=cat_hub_views)
    plan = make_plan(LAYOUT, config)
    readers = ("task",) if cat_hub_views == "cat_task" else ("cat", "task")
    queries = sum(sum(plan.n_hubs[g] for g in b.aggregate if g in readers) for b in plan.blocks)
    assert queries > 0
    extra = 7
    grown = candidate_flops(_longer(LAYOUT, extra), config) - candidate_flops(LAYOUT, config)
    assert grown == 2 * 2 * queries * extra * config.d
    assert infnet_flops(_longer(LAYOUT, extra), config) - infnet_flops(LAYOUT, config) > 2 * grown   # a row pays S projections, seq hubs, Phase 2


def test_candidate_flops_without_sharing_are_the_rows():
    """Nothing of a layout without sequences is shared; with hubs off only the tokenizer (no
    sequence projections here: the whole row); with the paper's sequence hubs (``all``) the sequence
    hub initialisation and block 1's S projections (4 · T · d^2)."""
    import dataclasses

    from infnet_tf.layers.hub_init import sequence_hub_flops
    from infnet_tf.models.infnet_flops import candidate_flops, infnet_flops

    no_seq = dataclasses.replace(LAYOUT, sequences=())
    config = tiny_config()
    assert candidate_flops(no_seq, config) == infnet_flops(no_seq, config)
    off = tiny_config(hubs=False, task_tokens=False)
    assert candidate_flops(LAYOUT, off) == infnet_flops(LAYOUT, off)
    paper = tiny_config(seq_hub_views="all")
    t = LAYOUT.num_sequence_tokens
    seq_init = sequence_hub_flops([s.max_len for s in LAYOUT.sequences], paper.d, paper.seq_hub_init,
                                  paper.seq_hub_hidden)
    assert infnet_flops(LAYOUT, paper) - candidate_flops(LAYOUT, paper) == seq_init + 4 * t * paper.d ** 2
    assert candidate_flops(LAYOUT, tiny_config(seq_hub_views="seq")) < candidate_flops(LAYOUT, paper)
