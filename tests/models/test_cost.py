"""Parameter count and the analytical FLOPs count, cross-checked with TensorFlow's profiler.

Tolerance: the analytical count covers the contractions (MatMul / BatchMatMul), which must agree
with the profiler's float_ops for those op types *exactly* (to 0.1%); all other ops the profiler
counts (element-wise: softmax, LayerNorm, masks, adds) add at most 30% at d=8 (less at larger d).
"""
import pytest

import infnet_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from infnet_tf.models import build_model
from infnet_tf.models.cost import flops_per_example, param_count
from tests.models.tiny import random_batch, tiny_config, tiny_layout

LAYOUT = tiny_layout()
BATCH = 4


def profiler_flops(model, batch, op_regex):
    spec = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()}
    graph = tf.function(lambda f: model(f)).get_concrete_function(spec).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    options["account_type_regexes"] = [op_regex]
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


@pytest.mark.parametrize("changes", [{}, {"hubs": False, "task_tokens": False},
                                     {"broadcast_unit": "pgu", "cat_hub_init": "mean", "fusion": "sum",
                                      "sequence_combiner": "concat_linear", "num_blocks": 1}],
                         ids=["default", "hubs_off", "variants"])
def test_analytical_flops_match_the_profiler(changes):
    config = tiny_config(**changes)
    model = build_model(LAYOUT, config)
    batch = random_batch(LAYOUT, BATCH)
    analytical = flops_per_example(LAYOUT, config)
    contractions = profiler_flops(model, batch, "MatMul|BatchMatMul.*") / BATCH
    everything = profiler_flops(model, batch, ".*") / BATCH
    np.testing.assert_allclose(contractions, analytical, rtol=1e-3)
    assert analytical <= everything <= 1.3 * analytical


def test_param_count():
    model = build_model(LAYOUT, tiny_config())
    assert param_count(model) == sum(int(np.prod(v.shape)) for v in model.variables)
    assert param_count(model, trainable_only=True) <= param_count(model)
