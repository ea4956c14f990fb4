"""Baselines on INFNet's inputs (issue 5; paper §4.1), each registered under its ``config.model`` name.

=================  =================================================  ==================================
model              what                                               knobs (``config.options``)
=================  =================================================  ==================================
``shared_bottom``  MLP over [C; pooled S], one tower per task         bottom_hidden=(256, 128)
``deepfm``         FM (1st order per task + 2nd order) + deep MLP     deep_hidden=(256, 128)
``dcnv2``          TFRS ``Cross`` stack + deep MLP                    cross_layers=3, projection_dim=None,
                                                                      deep_hidden=(256, 128),
                                                                      structure=stacked
``mmoe``           shared experts, one softmax gate per task          num_experts=4,
                                                                      expert_hidden=(256, 128)
``ple``            stacked CGC (task-specific + shared experts)       num_levels=2, num_task_experts=1,
                                                                      num_shared_experts=1,
                                                                      expert_hidden=(256, 128)
``all_to_all``     INFNet with ``hubs=off``: self-attention over      (none; INFNet's d, num_blocks,
                   [C; S; T]                                          num_heads, ffn_mult)
=================  =================================================  ==================================

All read the same embedding tables through INFNet's tokenizer; every pooled baseline sees each
behaviour sequence as the masked mean of its tokens ("early aggregation"), and ends in per-task
2-layer towers (``config.head_hidden``). Outputs: ``{task: float32 probability [B]}``.
"""
from infnet_tf.models.baselines import all_to_all, dcnv2, deepfm, mmoe, ple, shared_bottom  # noqa: F401

MODELS = ("shared_bottom", "deepfm", "dcnv2", "mmoe", "ple", "all_to_all")
