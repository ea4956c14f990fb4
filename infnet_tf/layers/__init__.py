"""INFNet Keras layers (paper §3), one concept per module.

=====================  ==========================================================  ===========
module                 layer                                                       paper
=====================  ==========================================================  ===========
``autograph``          ``no_autograph`` (skip AutoGraph for a ``call``)            —
``mlp``                ``MLP`` (Dense stack, optional float32 output)              —
``masking``            ``masked_mean``, ``LARGE_NEGATIVE``                         —
``attention``          ``multi_head_attention`` (masked, float32 softmax),         eq. 5
                       ``folded_attention`` (K/V projections folded into Q), fused
                       softmax + contraction gradient
``learned_tokens``     ``LearnedTokens`` (task tokens, shared hubs, random hubs)   eq. 4
``embeddings``         ``EmbeddingTables`` (shared tables, projection to d, init)  §3.1
``tokenizers``         ``FeatureTokenizer`` (C, S + mask)                          §3.1, eq. 2
``hub_init``           ``CategoricalHubInit``, ``SequenceHubInit``                 eqs. 1, 3
``aggregation``        ``MultiViewAggregation`` (Phase 1; optional token pre-norm) eqs. 5-7
``bgu``                ``BroadcastGatedUnit`` (Phase 2: affine | scale | shift)    eqs. 8-10
``pgu``                ``ProxyGatedUnit`` (v1 paper's broadcast unit)              v1
``infnet_block``       ``INFNetBlock`` (Phase 1 then Phase 2)                      §3.2
``self_attention``     ``SelfAttentionBlock`` (all-to-all reference)               §3.2 (cost)
``heads``              ``TaskHead``                                                eq. 11
=====================  ==========================================================  ===========

Layer ``call`` methods have no data-dependent Python control flow and are marked
``autograph.no_autograph``: AutoGraph would otherwise transpile every layer on the first trace of
a ``tf.function`` (tens of seconds on a 2-core machine) for nothing.
"""
