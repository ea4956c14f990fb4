"""``ple``: Progressive Layered Extraction (Tang et al. 2020), stacked CGC layers.

Customized Gate Control (PLE eqs. 2-4): task k owns m_t experts E_k, all tasks share m_s experts
E_s; with S^k(x) = [E_{k,1}(x); ...; E_{k,m_t}(x); E_{s,1}(x); ...; E_{s,m_s}(x)],

    g^k(x) = w^k(x) S^k(x),     w^k(x) = softmax(W_g^k x)                (eqs. 2-4)
    ŷ_k    = σ(t^k(g^k(x)))                        t^k: Dense(head_hidden) -> Dense(1)  (eqs. 1, 6)

PLE (eq. 5) stacks J extraction levels: at level j, task k's experts and gate read g^{k,j-1}, the
shared experts read g^{s,j-1}; every level but the last also has a shared gate over *all* its
experts, g^{s,j} = softmax(W_g^{s,j} g^{s,j-1}) [E_1; ...; E_{N_t}; E_s]. Level 1 reads
x = flatten(E), E = [C; pool(S_1); ...] (see :mod:`._base`). Operator:
:class:`infnet_tf.layers.experts.CGC` (gate softmax in float32).

Defaults (``config.options``): ``num_levels = 2`` (two extraction levels, the smallest true PLE;
1 is the single-level CGC model), ``num_task_experts = 1``, ``num_shared_experts = 1``, ``expert_hidden = (256, 128)`` (the
shared bottom's shape, at every level); towers ``config.head_hidden = (64,)`` (2 layers);
``config.dropout``; width ``config.d`` (64).

FLOPs per example: tokenizer + per level (experts + task gates + mixtures [+ shared gate]) + towers.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.experts import CGC, cgc_flops
from infnet_tf.models.baselines._base import (POOLED_FIELDS, Option, PooledBaseline, flatten_fields, input_flops,
                                              num_fields, read_options, tower_flops)
from infnet_tf.models.registry import register_model

NAME = "ple"
OPTIONS = {
    "num_levels": Option(2, "int", help="extraction (CGC) levels J"),
    "num_task_experts": Option(1, "int0", help="task-specific experts per task and level m_t"),
    "num_shared_experts": Option(1, "int0", help="shared experts per level m_s"),
    "expert_hidden": Option((256, 128), "ints", help="expert MLP widths (ReLU on every layer)"),
}


def ple_flops(layout, config) -> float:
    o = read_options(NAME, config, OPTIONS)
    in_dim = num_fields(layout) * config.d
    total = input_flops(layout, config)
    for level in range(o["num_levels"]):
        total += cgc_flops(in_dim, len(layout.tasks), o["num_task_experts"], o["num_shared_experts"],
                           o["expert_hidden"], shared_gate=level < o["num_levels"] - 1)
        in_dim = o["expert_hidden"][-1]
    return total + tower_flops(layout, config, o["expert_hidden"][-1])


@tf.keras.utils.register_keras_serializable(package="infnet")
@register_model(NAME, flops=ple_flops, reads=POOLED_FIELDS)
class PLE(PooledBaseline):
    MODEL = NAME
    OPTIONS = OPTIONS

    def build_backbone(self):
        o = self.knobs
        if not o["expert_hidden"]:
            raise ValueError("model config: options.expert_hidden: ple needs at least one layer")
        if o["num_task_experts"] + o["num_shared_experts"] < 1:
            raise ValueError("model config: options: ple needs num_task_experts + "
                             "num_shared_experts >= 1")
        self.levels = [CGC(len(self.layout.tasks), o["num_task_experts"], o["num_shared_experts"],
                           o["expert_hidden"], shared_gate=j < o["num_levels"] - 1,
                           dropout=self.model_config.dropout, name=f"cgc_{j}")
                       for j in range(o["num_levels"])]

    def backbone(self, fields, training=False):
        x = flatten_fields(fields, self.num_fields, self.model_config.d)
        task_inputs, shared = [x] * len(self.task_names), x
        for level in self.levels:
            task_inputs, shared = level(task_inputs, shared, training=training)
        return task_inputs, None
