"""``mmoe``: Multi-gate Mixture-of-Experts (Ma et al. 2018).

With x = flatten(E), E = [C; pool(S_1); ...] (see :mod:`._base`), E experts f_e (MLPs) and one gate
per task k:

    g^k(x) = softmax(W_gk x)                       W_gk in R^{E x F d}, no bias    (MMoE eq. 7)
    f^k(x) = sum_e g^k(x)_e f_e(x)                                                  (eq. 6)
    ŷ_k    = σ(h^k(f^k(x)))                        h^k: Dense(head_hidden) -> Dense(1)  (eq. 5)

Operator: :class:`infnet_tf.layers.experts.MMoE` (gate softmax in float32).

Defaults (``config.options``): ``num_experts = 4``, ``expert_hidden = (256, 128)`` (each expert has
the shared bottom's shape, so MMoE with one expert is the Shared-Bottom model plus a constant gate);
towers ``config.head_hidden = (64,)`` (2 layers); ``config.dropout``; width ``config.d`` (64).

FLOPs per example: tokenizer + E experts + N_t gates (2 F d E) + N_t mixtures (2 E h) + towers.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.experts import MMoE, mmoe_flops
from infnet_tf.models.baselines._base import (POOLED_FIELDS, Option, PooledBaseline, flatten_fields, input_flops,
                                              num_fields, read_options, tower_flops)
from infnet_tf.models.registry import register_model

NAME = "mmoe"
OPTIONS = {
    "num_experts": Option(4, "int", help="number of shared experts E"),
    "expert_hidden": Option((256, 128), "ints", help="expert MLP widths (ReLU on every layer)"),
}


def mmoe_model_flops(layout, config) -> float:
    o = read_options(NAME, config, OPTIONS)
    n = num_fields(layout) * config.d
    return (input_flops(layout, config)
            + mmoe_flops(n, o["num_experts"], o["expert_hidden"], len(layout.tasks))
            + tower_flops(layout, config, o["expert_hidden"][-1]))


@tf.keras.utils.register_keras_serializable(package="infnet")
@register_model(NAME, flops=mmoe_model_flops, reads=POOLED_FIELDS)
class MMoEModel(PooledBaseline):
    MODEL = NAME
    OPTIONS = OPTIONS

    def build_backbone(self):
        if not self.knobs["expert_hidden"]:
            raise ValueError("model config: options.expert_hidden: mmoe needs at least one layer")
        self.mmoe = MMoE(self.knobs["num_experts"], self.knobs["expert_hidden"],
                         num_gates=len(self.layout.tasks), dropout=self.model_config.dropout, name="mmoe")

    def backbone(self, fields, training=False):
        x = flatten_fields(fields, self.num_fields, self.model_config.d)
        return self.mmoe(x, training=training), None
