"""Mixture-of-experts operators for multi-task baselines: MMoE (Ma et al. 2018) and CGC / PLE
(Tang et al. 2020).

Gate mixture (MMoE eqs. 6-7; PLE eqs. 2-4). With expert outputs f_1(x)..f_E(x) in R^h and a gate
input q,

    w(q)  = softmax(W_g q)                 W_g in R^{E x dim(q)}, no bias      (MMoE eq. 7)
    g(q)  = sum_e w(q)_e f_e(x)                                                (MMoE eq. 6)

The gate softmax runs in float32 (mixed-precision rule); the weighted sum is one batched matmul
[B, 1, E] x [B, E, h], counted as 2 E h FLOPs like an attention-weighted sum.

* :class:`MMoE` -- E shared experts and one softmax gate per task, all reading x:
  ``f^k(x) = sum_e softmax(W_gk x)_e f_e(x)``; task k's tower reads f^k(x) (eqs. 5-7).
* :class:`CGC` -- Customized Gate Control, one extraction layer of PLE: each task k owns m_t
  experts E_k, the tasks share m_s experts E_s. Task k's gate mixes S^k = [E_k; E_s] (PLE eqs. 2-4):
  ``g^k(x) = softmax(W_g^k x) S^k(x)``. In a multi-level PLE (eq. 5) level j reads the previous
  level's per-task outputs and its shared output: task k's experts and gate read g^{k,j-1}, the
  shared experts read g^{s,j-1}; every level but the last also has a shared gate that mixes *all*
  experts of the level (``shared_gate=True``) to feed the next level's shared experts.

Experts are :class:`~infnet_tf.layers.mlp.MLP` stacks with ReLU on every layer (the expert output is
the last hidden layer's activation).
"""
from __future__ import annotations

from typing import Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.mlp import MLP, mlp_flops


def gate_mixture(gate_logits, experts, return_weights: bool = False):
    """softmax(gate_logits) over experts, then the weighted sum of ``experts``.

    ``gate_logits`` [B, E] (any float dtype), ``experts`` [B, E, h]. Returns [B, h] in the dtype
    of ``experts`` (and the float32 weights [B, E] if ``return_weights``).
    """
    weights = tf.nn.softmax(tf.cast(gate_logits, tf.float32), axis=-1)
    mixed = tf.matmul(tf.cast(weights, experts.dtype)[:, None, :], experts)[:, 0, :]
    return (mixed, weights) if return_weights else mixed


def _experts(n: int, hidden: Sequence[int], dropout: float, prefix: str) -> list:
    return [MLP(hidden, out=None, activation="relu", dropout=dropout, name=f"{prefix}_{i}")
            for i in range(n)]


def _apply(experts, x, training):
    return [e(x, training=training) for e in experts]


@tf.keras.utils.register_keras_serializable(package="infnet")
class MMoE(tf.keras.layers.Layer):
    """Multi-gate mixture of experts: x [B, n] -> list of ``num_gates`` tensors [B, h]."""

    def __init__(self, num_experts: int, expert_hidden: Sequence[int], num_gates: int,
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_experts) < 1 or int(num_gates) < 1 or not expert_hidden:
            raise ValueError("MMoE: num_experts, num_gates >= 1 and a non-empty expert_hidden needed")
        self.num_experts, self.num_gates = int(num_experts), int(num_gates)
        self.expert_hidden = tuple(int(h) for h in expert_hidden)
        self.dropout = float(dropout)
        self.experts = _experts(self.num_experts, self.expert_hidden, self.dropout, "expert")
        self.gates = [tf.keras.layers.Dense(self.num_experts, use_bias=False, name=f"gate_{k}")
                      for k in range(self.num_gates)]

    @no_autograph
    def call(self, x, training=False):
        stacked = tf.stack(_apply(self.experts, x, training), axis=1)  # [B, E, h]
        return [gate_mixture(gate(x), stacked) for gate in self.gates]

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_hidden": list(self.expert_hidden), "num_gates": self.num_gates,
                "dropout": self.dropout}


def mmoe_flops(in_dim: int, num_experts: int, expert_hidden: Sequence[int], num_gates: int) -> int:
    """Experts + gates + mixtures for one example."""
    h = expert_hidden[-1]
    return (num_experts * mlp_flops(in_dim, expert_hidden, None)
            + num_gates * (2 * in_dim * num_experts + 2 * num_experts * h))


@tf.keras.utils.register_keras_serializable(package="infnet")
class CGC(tf.keras.layers.Layer):
    """One Customized Gate Control (PLE extraction) layer.

    ``call(task_inputs, shared_input)`` with ``task_inputs`` a list of ``num_tasks`` tensors [B, n]
    returns ``(task_outputs, shared_output)``: ``num_tasks`` tensors [B, h] and, when
    ``shared_gate``, the shared mixture [B, h] (else None). At the first level pass x everywhere.
    """

    def __init__(self, num_tasks: int, num_task_experts: int, num_shared_experts: int,
                 expert_hidden: Sequence[int], shared_gate: bool = False, dropout: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if int(num_tasks) < 1 or int(num_task_experts) < 0 or int(num_shared_experts) < 0:
            raise ValueError("CGC: num_tasks >= 1 and non-negative expert counts needed")
        if int(num_task_experts) + int(num_shared_experts) < 1 or not expert_hidden:
            raise ValueError("CGC: at least one expert and a non-empty expert_hidden needed")
        self.num_tasks = int(num_tasks)
        self.num_task_experts = int(num_task_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_hidden = tuple(int(h) for h in expert_hidden)
        self.shared_gate = bool(shared_gate)
        self.dropout = float(dropout)
        self.task_experts = [_experts(self.num_task_experts, self.expert_hidden, self.dropout,
                                      f"task{k}_expert") for k in range(self.num_tasks)]
        self.shared_experts = _experts(self.num_shared_experts, self.expert_hidden, self.dropout,
                                       "shared_expert")
        per_task = self.num_task_experts + self.num_shared_experts
        self.task_gates = [tf.keras.layers.Dense(per_task, use_bias=False, name=f"task{k}_gate")
                           for k in range(self.num_tasks)]
        self.shared_gate_layer = None
        if self.shared_gate:
            total = self.num_tasks * self.num_task_experts + self.num_shared_experts
            self.shared_gate_layer = tf.keras.layers.Dense(total, use_bias=False, name="shared_gate")

    @no_autograph
    def call(self, task_inputs, shared_input, training=False):
        if len(task_inputs) != self.num_tasks:
            raise ValueError(f"CGC: expected {self.num_tasks} task inputs, got {len(task_inputs)}")
        shared_out = _apply(self.shared_experts, shared_input, training)
        task_out = [_apply(experts, x, training) for experts, x in zip(self.task_experts, task_inputs)]
        outputs = [gate_mixture(gate(x), tf.stack(own + shared_out, axis=1))
                   for gate, x, own in zip(self.task_gates, task_inputs, task_out)]
        shared = None
        if self.shared_gate_layer is not None:
            every = [e for own in task_out for e in own] + shared_out
            shared = gate_mixture(self.shared_gate_layer(shared_input), tf.stack(every, axis=1))
        return outputs, shared

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "num_task_experts": self.num_task_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_hidden": list(self.expert_hidden), "shared_gate": self.shared_gate,
                "dropout": self.dropout}


def cgc_flops(in_dim: int, num_tasks: int, num_task_experts: int, num_shared_experts: int,
              expert_hidden: Sequence[int], shared_gate: bool) -> int:
    """One CGC layer for one example (every input of width ``in_dim``)."""
    h = expert_hidden[-1]
    n_experts = num_tasks * num_task_experts + num_shared_experts
    per_task = num_task_experts + num_shared_experts
    flops = n_experts * mlp_flops(in_dim, expert_hidden, None)
    flops += num_tasks * (2 * in_dim * per_task + 2 * per_task * h)
    if shared_gate:
        flops += 2 * in_dim * n_experts + 2 * n_experts * h
    return flops
