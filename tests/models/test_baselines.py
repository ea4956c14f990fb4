"""Every baseline on the tiny layout: build, masked training step, counts, save/reload, padding."""
import dataclasses
import math

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf
from tensorflow.python.profiler import model_analyzer, option_builder

from infnet_tf.layers.self_attention import SelfAttentionBlock
from infnet_tf.models import ModelConfig, build_model, get_entry, registered_models
from infnet_tf.models.baselines import MODELS
from infnet_tf.models.cost import flops_per_example, param_count
from infnet_tf.models.infnet import INFNet
from infnet_tf.models.infnet_flops import infnet_flops
from infnet_tf.models.losses import multitask_loss
from infnet_tf.precision import precision_scope
from tests.models.tiny import pad_batch, random_batch, tiny_config, tiny_layout

LAYOUT = tiny_layout(n_types=2, max_len=5, tasks=("click", "like", "finish"))
B = 4

# model -> tiny options; extra ids exercise the non-default structures
CASES = {
    "shared_bottom": ("shared_bottom", {"bottom_hidden": [16, 8]}),
    "deepfm": ("deepfm", {"deep_hidden": [16, 8]}),
    "dcnv2": ("dcnv2", {"cross_layers": 2, "deep_hidden": [16, 8]}),
    "dcnv2-lowrank-parallel": ("dcnv2", {"cross_layers": 2, "projection_dim": 3, "deep_hidden": [16],
                                         "structure": "parallel"}),
    "mmoe": ("mmoe", {"num_experts": 3, "expert_hidden": [16, 8]}),
    "ple": ("ple", {"num_levels": 2, "num_task_experts": 1, "num_shared_experts": 2,
                    "expert_hidden": [16, 8]}),
    "ple-single-cgc": ("ple", {"num_levels": 1, "num_task_experts": 2, "num_shared_experts": 0,
                               "expert_hidden": [8]}),
    "all_to_all": ("all_to_all", {}),
}
BASIC = [c for c in CASES if "-" not in c]                          # one case per model
_MODELS: dict = {}


def config_for(case: str, **changes) -> ModelConfig:
    model, options = CASES[case]
    return tiny_config(model=model, options=options, **changes)


def model_for(case: str):
    """One built model per case, shared by the tests that do not train it."""
    if case not in _MODELS:
        _MODELS[case] = build_model(LAYOUT, config_for(case))
    return _MODELS[case]


def test_every_baseline_is_registered_and_covered():
    assert set(MODELS) <= set(registered_models())
    assert {m for m, _ in CASES.values()} == set(MODELS)


@pytest.mark.parametrize("case", BASIC)
def test_builds_and_returns_float32_probabilities_per_task(case):
    model = model_for(case)
    out = model(random_batch(LAYOUT, B, seed=1))
    assert tuple(model.task_names) == LAYOUT.task_names == tuple(out)
    for p in out.values():
        assert p.dtype == tf.float32 and p.shape == (B,)
        assert np.all((p.numpy() > 0) & (p.numpy() < 1))


@pytest.mark.parametrize("case", BASIC)
def test_one_training_step_with_masked_labels(case):
    tf.keras.utils.set_random_seed(0)  # dropout masks: a fixed draw (unseeded, a variable could get no update)
    model = build_model(LAYOUT, config_for(case, dropout=0.1))
    features = random_batch(LAYOUT, B, seed=2)
    weights = {t.name: t.weight for t in LAYOUT.tasks}
    # some rows of every task masked; then the same batch with no "like" label at all
    labels = {"click": tf.constant([1, 0, -1, 1], tf.int64), "like": tf.constant([-1, 1, -1, 0], tf.int64),
              "finish": tf.constant([0, -1, 1, 0], tf.int64)}
    no_like = {**labels, "like": tf.constant([-1, -1, -1, -1], tf.int64)}
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        probs = model(features, training=True)
        total, _ = multitask_loss(labels, probs, weights)
        total_no_like, per_task_no_like = multitask_loss(no_like, probs, weights)
    grads, grads_no_like = tape.gradient(total, variables), tape.gradient(total_no_like, variables)

    missing = [v.name for v, g in zip(variables, grads) if g is None]
    assert not missing, f"no gradient for {missing}"
    before = [v.numpy().copy() for v in variables]
    tf.keras.optimizers.legacy.Adam(0.01).apply_gradients(zip(grads, variables))
    assert math.isfinite(float(total)) and float(total) > 0
    unchanged = [v.name for b, v in zip(before, variables) if np.array_equal(b, v.numpy())]
    assert not unchanged, f"not updated: {unchanged}"

    # a task with no label in the batch contributes exactly nothing, and its head gets no gradient
    assert float(per_task_no_like["like"]) == 0.0 and math.isfinite(float(total_no_like))
    head = (model.towers if hasattr(model, "towers") else model.heads)[1]
    head_vars = {v.ref() for v in head.trainable_variables}
    assert head_vars and all(not np.any(tf.convert_to_tensor(g).numpy())
                             for v, g in zip(variables, grads_no_like) if v.ref() in head_vars)


# -- parameter counts: by hand from the layout and the config ------------------------------------
def _dense(a, b, bias=True):
    return a * b + (b if bias else 0)


def _mlp(a, hidden, out=None):
    dims = [a, *hidden] + ([out] if out else [])
    return sum(_dense(x, y) for x, y in zip(dims[:-1], dims[1:]))


def _tokenizer_params(layout, d):
    tables = {}
    for f in layout.all_token_inputs():
        tables[f.table] = f.vocab_size * (f.embedding_dim or d) + (0 if (f.embedding_dim or d) == d
                                                                     else (f.embedding_dim * d))
    return sum(tables.values()) + sum(s.max_len * d + s.time_gap_buckets * d for s in layout.sequences)


def expected_params(case: str) -> int:
    c = config_for(case)
    o = dict(CASES[case][1])
    d, n_t = c.d, len(LAYOUT.tasks)
    n = (len(LAYOUT.categorical) + len(LAYOUT.sequences)) * d
    total = _tokenizer_params(LAYOUT, d)
    towers = lambda width: n_t * _mlp(width, c.head_hidden, 1)  # noqa: E731
    model = CASES[case][0]
    if model == "shared_bottom":
        return total + _mlp(n, o["bottom_hidden"]) + towers(o["bottom_hidden"][-1])
    if model == "deepfm":
        return total + _dense(n, n_t) + _mlp(n, o["deep_hidden"]) + towers(o["deep_hidden"][-1])
    if model == "dcnv2":
        r = o.get("projection_dim", "auto")          # the default: low rank n // 4 (DCN-V2 §5)
        r = n // 4 if r == "auto" else r
        cross = _dense(n, n) if r is None else _dense(n, r, bias=False) + _dense(r, n)
        deep = _mlp(n, o["deep_hidden"])
        width = n + o["deep_hidden"][-1] if o.get("structure") == "parallel" else o["deep_hidden"][-1]
        return total + o["cross_layers"] * cross + deep + towers(width)
    if model == "mmoe":
        e = o["num_experts"]
        return total + e * _mlp(n, o["expert_hidden"]) + n_t * n * e + towers(o["expert_hidden"][-1])
    if model == "ple":
        m_t, m_s, h = o["num_task_experts"], o["num_shared_experts"], o["expert_hidden"]
        width = n
        for level in range(o["num_levels"]):
            experts = n_t * m_t + m_s
            total += experts * _mlp(width, h) + n_t * width * (m_t + m_s)
            if level < o["num_levels"] - 1:
                total += width * experts                        # shared gate
            width = h[-1]
        return total + towers(width)
    if model == "all_to_all":
        block = 4 * _dense(d, d) + _mlp(d, (c.ffn_mult * d,), d) + 2 * 2 * d   # attention, FFN, 2 LN
        return total + n_t * d + c.num_blocks * block + towers(d)
    raise AssertionError(case)


@pytest.mark.parametrize("case", list(CASES))
def test_param_count_matches_hand_count_of_variables(case):
    model = model_for(case)
    assert param_count(model) == expected_params(case) > 0
    assert param_count(model) == sum(int(np.prod(v.shape)) for v in model.trainable_variables)


# -- FLOPs: the analytical count equals the traced graph's MatMul / BatchMatMul float ops ---------
def profiled_matmul_flops(model, features) -> float:
    specs = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in features.items()}
    graph = tf.function(lambda f: model(f, training=False), autograph=False).get_concrete_function(specs).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["account_type_regexes"] = ["^MatMul$", "^BatchMatMul.*"]
    opts["output"] = "none"
    return model_analyzer.profile(graph, options=opts).total_float_ops / B


@pytest.mark.parametrize("case", list(CASES))
def test_flops_match_profiled_contractions(case):
    flops = flops_per_example(LAYOUT, config_for(case))
    assert flops > 0
    assert profiled_matmul_flops(model_for(case), random_batch(LAYOUT, B)) == flops


def test_all_to_all_is_infnet_with_hubs_off():
    model = model_for("all_to_all")
    assert isinstance(model, INFNet) and model.model_config.hubs is False
    assert all(isinstance(b, SelfAttentionBlock) for b in model.block_layers)
    assert len(model.block_layers) == model.model_config.num_blocks
    config = config_for("all_to_all")
    assert flops_per_example(LAYOUT, config) == infnet_flops(LAYOUT, config.replace(hubs=False))
    with pytest.raises(ValueError, match="takes no options"):
        build_model(LAYOUT, config.replace(options={"num_experts": 2}))


# a value other than the tiny config's for every field a model may leave unread
UNREAD_VALUES = dict(num_blocks=3, num_heads=4, n_cat_hubs=3, n_shared_task_hubs=1, cat_hub_hidden=(5,),
                     seq_hub_hidden=(5,), bgu_hidden=(5,), ffn_mult=3, task_tokens=False, hubs=False,
                     aggregation=False, broadcast=False, cat_hub_init="mean", seq_hub_init="global_mean",
                     fusion="sum", task_hubs="shared", broadcast_unit="pgu", token_norm=True,
                     seq_hub_views="all", cat_hub_views="cat_task", readout="task_token")
CHANGED_APART = ("broadcast",)   # off together with aggregation=off is an invalid config


@pytest.mark.parametrize("case", [c for c in BASIC if get_entry(CASES[c][0]).reads is not None])
def test_fields_a_model_does_not_read_leave_it_unchanged(case):
    """What the registry's ``reads`` promises (resuming a model dir ignores the other fields): changing
    every other field builds the same variables (shapes, in creation order), initialised alike, with the
    same predictions."""
    entry = get_entry(CASES[case][0])
    unread = [f.name for f in dataclasses.fields(ModelConfig) if not entry.reads_field(f.name)]
    missing = sorted(set(unread) - set(UNREAD_VALUES))
    assert not missing, f"add a non-default value for {missing} to UNREAD_VALUES"
    base = config_for(case)
    groups = [[n for n in unread if n not in CHANGED_APART], [n for n in unread if n in CHANGED_APART]]
    variants = [base.replace(**{n: UNREAD_VALUES[n] for n in group}) for group in groups if group]
    assert all(getattr(v, n) != getattr(base, n) for v, group in zip(variants, groups) for n in group)
    batch = random_batch(LAYOUT, B, seed=2)
    built = []
    for config in (base, *variants):
        tf.keras.utils.set_random_seed(0)
        model = build_model(LAYOUT, config)
        built.append(([tuple(v.shape) for v in model.variables], model(batch)))   # names: Keras numbers layers
    (variables, out), *changed = built
    for variables_changed, out_changed in changed:
        assert variables_changed == variables
        for task in out:
            np.testing.assert_array_equal(out_changed[task].numpy(), out[task].numpy())


# -- save / reload --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", BASIC)
def test_weights_round_trip_and_get_config(case, tmp_path):
    model = model_for(case)
    features = random_batch(LAYOUT, B, seed=3)
    expected = model(features)
    model.save_weights(str(tmp_path / "ckpt"))
    clone = type(model).from_config(model.get_config())           # get_config round trip
    assert clone.get_config() == model.get_config() and clone.name == model.name
    clone(features)
    clone.load_weights(str(tmp_path / "ckpt")).assert_consumed()
    for task, p in clone(features).items():
        np.testing.assert_array_equal(p.numpy(), expected[task].numpy())


def _serving_function(model, specs):
    return tf.function(lambda f: model(f, training=False), input_signature=[specs], autograph=False)


# SavedModel saving costs seconds per model on 2 cores; these cover every new operator (FM, TFRS Cross,
# CGC/gates; MMoE uses the same gate and MLP code, shared_bottom is a sub-part of each, all_to_all is
# INFNet's code). The weights round trip above covers all six.
SAVED_MODEL_CASES = ("deepfm", "dcnv2", "ple")


def test_saved_model_round_trip(tmp_path):
    """One SavedModel holding a serving function per model (one save keeps the test quick)."""
    features = random_batch(LAYOUT, B, seed=3)
    specs = {k: tf.TensorSpec([None, *v.shape[1:]], v.dtype) for k, v in features.items()}
    module, expected = tf.Module(), {}
    module.variables_by_case = {c: list(model_for(c).variables) for c in SAVED_MODEL_CASES}
    for case in SAVED_MODEL_CASES:
        model = model_for(case)
        expected[case] = {k: v.numpy() for k, v in model(features).items()}
        setattr(module, f"serve_{case}", _serving_function(model, specs))
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    for case in SAVED_MODEL_CASES:
        out = getattr(loaded, f"serve_{case}")(features)
        assert set(out) == set(LAYOUT.task_names)
        for task, p in out.items():
            assert p.dtype == tf.float32
            np.testing.assert_allclose(p.numpy(), expected[case][task], rtol=1e-6, atol=1e-7)


def test_keras_save_and_load_model_rebuild_from_get_config(tmp_path):
    """Keras SavedModel without traces: ``load_model`` rebuilds through ``from_config`` (the model
    class and TFRS's ``Cross`` are Keras-serialisable). All six pass; one here keeps the test quick."""
    model = model_for("dcnv2")
    features = random_batch(LAYOUT, B, seed=6)
    expected = model(features)
    model.save(str(tmp_path / "keras"), save_traces=False)
    reloaded = tf.keras.models.load_model(str(tmp_path / "keras"))
    assert type(reloaded) is type(model) and reloaded.model_config == model.model_config
    for task, p in reloaded(features).items():
        np.testing.assert_array_equal(p.numpy(), expected[task].numpy())


# -- padding invariance ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", BASIC)
def test_predictions_and_pooled_sequences_do_not_depend_on_padding(case):
    model = model_for(case)
    short = random_batch(LAYOUT, B, seq_len=3, seed=4, lengths=[[3, 0, 2, 1], [1, 3, 0, 2]])
    padded = pad_batch(LAYOUT, short, extra=2)                       # T = max_len
    out_short, out_padded = model(short), model(padded)
    for task in model.task_names:
        np.testing.assert_allclose(out_short[task].numpy(), out_padded[task].numpy(), rtol=1e-6, atol=1e-7)
    if hasattr(model, "field_embeddings"):                           # the pooled inputs themselves
        np.testing.assert_allclose(model.field_embeddings(short).numpy(),
                                   model.field_embeddings(padded).numpy(), rtol=1e-6, atol=1e-7)


# -- mixed precision ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", BASIC)
def test_mixed_bfloat16_keeps_float32_outputs(case):
    with precision_scope("mixed_bfloat16"):
        model = build_model(LAYOUT, config_for(case))
        out = model(random_batch(LAYOUT, B, seed=5))
    for p in out.values():
        assert p.dtype == tf.float32 and np.all(np.isfinite(p.numpy()))


# -- options --------------------------------------------------------------------------------------
def test_options_from_flag_strings_and_errors():
    config = ModelConfig.from_flags_dict({"model": "dcnv2", "d": "8", "num_heads": "2", "head_hidden": "8",
                                          "options.cross_layers": "1", "options.projection_dim": "null",
                                          "options.deep_hidden": "16,8", "options.structure": "parallel"})
    model = build_model(LAYOUT, config)
    assert model.knobs == {"cross_layers": 1, "projection_dim": None, "deep_hidden": (16, 8),
                           "structure": "parallel"}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_expert'\] for model 'mmoe'"):
        build_model(LAYOUT, config_for("mmoe").replace(options={"num_expert": 2}))
    with pytest.raises(ValueError, match="options.num_experts: expected an int >= 1"):
        flops_per_example(LAYOUT, config_for("mmoe").replace(options={"num_experts": 0}))
    with pytest.raises(ValueError, match="options.structure: expected one of stacked|parallel"):
        build_model(LAYOUT, config_for("dcnv2").replace(options={"structure": "side"}))


@pytest.mark.parametrize("model,auto", [("infnet", "cumulative_with_gaps"), ("dcnv2", "cumulative_with_gaps"),
                                        ("shared_bottom", "cumulative_with_gaps"), ("deepfm", "none")])
def test_ordinal_encoding_auto_is_the_models_choice_and_an_explicit_value_wins(model, auto):
    """``ordinal_encoding=auto`` (the default) resolves per model: summed rows for every model but
    DeepFM, whose FM pair sum diverged on them (real log); a value given explicitly is used as is."""
    assert ModelConfig().ordinal_encoding == "auto"
    assert build_model(LAYOUT, ModelConfig(model=model, d=8)).tokenizer.ordinal == auto
    assert build_model(LAYOUT, ModelConfig(model=model, d=8, ordinal_encoding="cumulative")).tokenizer.ordinal == \
        "cumulative"
