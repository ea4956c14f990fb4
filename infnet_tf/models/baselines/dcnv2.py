"""``dcnv2``: DCN-V2 (Wang et al. 2021) with TFRS's ``Cross`` layer and per-task towers.

Cross network (DCN-V2 eq. 1, full rank; eq. 2 low rank W = U V with ``projection_dim`` r)::

    x_0     = flatten(E)                                   E = [C; pool(S_1); ...] (see :mod:`._base`)
    x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l                  l = 0..L_c-1  (tfrs.layers.dcn.Cross)

Deep network: h = MLP_deep(·) (ReLU). Combination (DCN-V2 §3, Fig. 2), ``structure``:

* ``stacked`` (default, as in TFRS's DCN tutorial; DCN-V2 §3/§7 finds neither structure better
  on every data set): h = MLP_deep(x_{L_c});
* ``parallel``: h = [x_{L_c}; MLP_deep(x_0)].

Then per-task towers (paper §4.1): ŷ_i = σ(tower_i(h)), tower_i = Dense(head_hidden) -> Dense(1).

Defaults (``config.options``): ``cross_layers = 3``, ``projection_dim = "auto"`` (low rank r = n/4, the
setting DCN-V2 reports keeps accuracy; ``null`` gives the full-rank W of (F d)^2 weights per layer), ``deep_hidden = (256, 128)`` (as the other baselines), ``structure = "stacked"``;
towers ``config.head_hidden = (64,)``; ``config.dropout``; width ``config.d`` (64).

FLOPs per example (n = F d): per cross layer 2 n^2 (full) or 4 n r (low rank), + MLP_deep + towers
+ tokenizer; the ⊙ and residual are element-wise, not counted.
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from infnet_tf.layers.mlp import mlp_flops
from infnet_tf.models.baselines._base import (POOLED_FIELDS, Option, PooledBaseline, flatten_fields, input_flops,
                                              mlp_or_identity, num_fields, read_options,
                                              tower_flops, width_after)
from infnet_tf.models.registry import register_model

NAME = "dcnv2"
OPTIONS = {
    "cross_layers": Option(3, "int0", help="number of Cross layers L_c"),
    "projection_dim": Option("auto", "opt_int", ("auto",),
                             help="low-rank r of W = U V; auto: n/4 (DCN-V2 §5: keeps accuracy at half "
                                  "the full-rank cost); null: full rank"),
    "deep_hidden": Option((256, 128), "ints", help="deep network MLP widths"),
    "structure": Option("stacked", "choice", ("stacked", "parallel"), help="stacked | parallel"),
}


def rank(n: int, projection_dim) -> int | None:
    """The cross layers' rank r for input width n: None (full rank), an int, or "auto" = n // 4."""
    return max(1, n // 4) if projection_dim == "auto" else projection_dim


def cross_flops(n: int, projection_dim) -> int:
    r = rank(n, projection_dim)
    return 2 * n * n if r is None else 2 * 2 * n * r


def dcnv2_flops(layout, config) -> float:
    o = read_options(NAME, config, OPTIONS)
    n = num_fields(layout) * config.d
    deep = mlp_flops(n, o["deep_hidden"], None)
    width = width_after(n, o["deep_hidden"])
    if o["structure"] == "parallel":
        width = n + (o["deep_hidden"][-1] if o["deep_hidden"] else n)
    return (input_flops(layout, config) + o["cross_layers"] * cross_flops(n, o["projection_dim"])
            + deep + tower_flops(layout, config, width))


@tf.keras.utils.register_keras_serializable(package="infnet")
@register_model(NAME, flops=dcnv2_flops, reads=POOLED_FIELDS)
class DCNv2(PooledBaseline):
    MODEL = NAME
    OPTIONS = OPTIONS

    def build_backbone(self):
        n = self.num_fields * self.model_config.d
        self.cross = [tfrs.layers.dcn.Cross(projection_dim=rank(n, self.knobs["projection_dim"]),
                                            name=f"cross_{i}")
                      for i in range(self.knobs["cross_layers"])]
        self.deep = mlp_or_identity(self.knobs["deep_hidden"], self.model_config.dropout, "deep")

    def backbone(self, fields, training=False):
        x0 = flatten_fields(fields, self.num_fields, self.model_config.d)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        if self.knobs["structure"] == "parallel":
            deep = x0 if self.deep is None else self.deep(x0, training=training)
            h = tf.concat([x, deep], axis=-1)
        else:
            h = x if self.deep is None else self.deep(x, training=training)
        return [h] * len(self.task_names), None
