"""``shared_bottom``: a Shared-Bottom multi-task MLP (Caruana 1997; the paper's multi-task adaptation
of single-task baselines, §4.1).

    E   = [C; pool(S_1); ...; pool(S_B)]            [F, d]  (see :mod:`._base`)
    h   = MLP_bottom(flatten(E))                    ReLU after every layer
    ŷ_i = σ(tower_i(h))                             tower_i: Dense(head_hidden) -> Dense(1)

Defaults (``config.options``):

* ``bottom_hidden = (256, 128)``: widths of the shared bottom MLP (the DeepFM/DCNv2 deep part uses
  the same widths, so the baselines differ only in their interaction operator);
* towers: ``config.head_hidden = (64,)`` (2 layers); ``config.dropout`` after every hidden layer;
  embedding width ``config.d`` (shared with INFNet, default 64).

FLOPs per example: tokenizer contractions + MLP_bottom(F·d) + N_t towers (2 × multiply-adds).
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.layers.mlp import mlp_flops
from infnet_tf.models.baselines._base import (POOLED_FIELDS, Option, PooledBaseline, flatten_fields, input_flops,
                                              mlp_or_identity, num_fields, read_options,
                                              tower_flops, width_after)
from infnet_tf.models.registry import register_model

NAME = "shared_bottom"
OPTIONS = {"bottom_hidden": Option((256, 128), "ints", help="shared bottom MLP widths")}


def shared_bottom_flops(layout, config) -> float:
    o = read_options(NAME, config, OPTIONS)
    n = num_fields(layout) * config.d
    return (input_flops(layout, config) + mlp_flops(n, o["bottom_hidden"], None)
            + tower_flops(layout, config, width_after(n, o["bottom_hidden"])))


@tf.keras.utils.register_keras_serializable(package="infnet")
@register_model(NAME, flops=shared_bottom_flops, reads=POOLED_FIELDS)
class SharedBottom(PooledBaseline):
    MODEL = NAME
    OPTIONS = OPTIONS

    def build_backbone(self):
        self.bottom = mlp_or_identity(self.knobs["bottom_hidden"], self.model_config.dropout, "bottom")

    def backbone(self, fields, training=False):
        h = flatten_fields(fields, self.num_fields, self.model_config.d)
        if self.bottom is not None:
            h = self.bottom(h, training=training)
        return [h] * len(self.task_names), None
