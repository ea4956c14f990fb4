"""Model cost: parameter count and analytical FLOPs per example.

``flops_per_example(layout, config)`` is the analytical count provided by the registry entry of
``config.model`` (see :mod:`infnet_tf.models.registry`). Convention for every model: the FLOPs of
the dense contractions of one forward pass for one example -- every matrix multiply (Dense layers,
attention scores and attention-weighted sums) counted as 2 × multiply-adds. Element-wise work
(activations, softmax, LayerNorm, residual adds, masking) and embedding look-ups are not counted;
they are O(tokens · d) and small next to the contractions at d >= 32. Behaviour sequences are counted
full (all ``max_len`` steps real items): the work done per item on packed sequences
(:mod:`infnet_tf.layers.packed`: the tokenizer's projections, INFNet's eq. 3 hidden layers) runs on
the real items only, so on short histories the executed FLOPs are lower. The tests cross-check this
count against TensorFlow's profiler (``MatMul``/``BatchMatMul`` float_ops of a concrete forward
function) on small configs.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import numpy as np

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.models.config import ModelConfig


def param_count(model, trainable_only: bool = False) -> int:
    """Number of scalars in the model's (trainable) variables; the model must be built."""
    variables = model.trainable_variables if trainable_only else model.variables
    return int(sum(int(np.prod(v.shape)) for v in variables))


def flops_per_example(layout: FeatureLayout, config: ModelConfig) -> float:
    """Analytical forward FLOPs per example (2 × multiply-adds of all contractions)."""
    from infnet_tf.models import get_entry

    entry = get_entry(config.model)
    if entry.flops is None:
        raise ValueError(f"model {config.model!r} registers no analytical FLOPs count")
    return float(entry.flops(layout, config))
