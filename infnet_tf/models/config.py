"""Model hyperparameters: one frozen :class:`ModelConfig` for every registered model.

The INFNet fields follow the paper (§3; §4.4: d=64, L=4, n_c=16, n_shared=4; single-head attention, eq. 5)
except L and n_c: the default is 1 block, as accurate as 2 on our logs at a faster step (and 2 was better
than 4), and 8 categorical hubs, as accurate as 16 on our logs at a ~15% faster step (``--preset=paper``
sets 4 and 16). The ablation switches reproduce §4.3 / Table 4:

==================  =====================================  ======================================
field               values (default first)                 meaning
==================  =====================================  ======================================
task_tokens         True | False                           False: no task tokens T, heads read a
                                                           shared representation (shared-bottom)
hubs                True | False                           False: all-to-all self-attention over
                                                           [C; S; T] (the quadratic reference)
aggregation         True | False                           False: no Phase 1 (hubs keep their
                                                           initial value; heads fuse late)
broadcast           True | False                           False: no Phase 2 (latent only; heads
                                                           read the hubs)
cat_hub_init        mlp | mean | random                    eq. 1 | mean of field chunks | learned
seq_hub_init        type_mlp | global_mean | random        eq. 3 | one hub = mean of all items |
                                                           learned
fusion              concat_linear | sum                    eq. 7 fusion of the three views
task_hubs           hybrid | specific | shared             eq. 4 | T only | shared tokens only
broadcast_unit      affine | scale | shift | pgu           eq. 9 | β=0 | no α | v1 Proxy Gated Unit
==================  =====================================  ======================================

Beyond the paper (issue 11), each a switch measured by ablation in ``bench/REPORT.md`` (defaults first;
the paper-exact model is ``infnet_tf.models.presets`` ``paper``):

==================  =====================================  ======================================
token_norm          False | True                           LayerNorm of every view's tokens before
                                                           its K/V projections and of the hubs
                                                           before the Q projection (pre-norm)
embedding_init_std  0.1 | 0.0 | float > 0                  0: Keras' U(-0.05, 0.05) embedding init
                                                           (paper); else truncated normal, this std
readout             task_token_flat_hubs | task_token |    t_i and every hub, flattened | t_i only
                    task_token_hubs                        (eq. 11, paper) | t_i and the mean of
                                                           every hub group
ordinal_encoding    auto | cumulative_with_gaps |          binned numbers (dense, counters) and the
                    cumulative | none                      sequences' time-gap buckets: the model's
                                                           choice (cumulative_with_gaps; DeepFM:
                                                           none) | bucket j = sum of rows 1..j |
                                                           the same for the binned tokens only | a
                                                           free row per bucket (paper; every model
                                                           reads it)
seq_hub_views       seq | all                              sequence hubs read S only (the user side
                                                           computed once per request) | C, S, T
                                                           (paper eqs. 5-7)
cat_hub_views       all | cat_task                         categorical hubs read C, S, T (paper
                                                           eqs. 5-7) | C and T only (measured, not
                                                           the default)
head_output_scale   1.0 | float > 0                        initial scale of each task head's output
                                                           layer (x Glorot uniform; 1 = Keras',
                                                           the paper's); every model; measured,
                                                           not the default
==================  =====================================  ======================================

Other registered models (baselines) read the generic fields they need (``d``, ``head_hidden``,
``dropout`` ...) and their own knobs from ``options`` (a JSON-able mapping), or add fields here.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from infnet_tf.config_flags import setting

CHOICES: dict[str, tuple[str, ...]] = {
    "cat_hub_init": ("mlp", "mean", "random"),
    "seq_hub_init": ("type_mlp", "global_mean", "random"),
    "fusion": ("concat_linear", "sum"),
    "task_hubs": ("hybrid", "specific", "shared"),
    "broadcast_unit": ("affine", "scale", "shift", "pgu"),
    "sequence_combiner": ("sum", "concat_linear"),
    "readout": ("task_token", "task_token_hubs", "task_token_flat_hubs"),
    "ordinal_encoding": ("auto", "cumulative_with_gaps", "cumulative", "none"),
    "seq_hub_views": ("seq", "all"),
    "cat_hub_views": ("all", "cat_task"),
}
# ``ordinal_encoding=auto``: what most models use (measured, bench/REPORT.md round 2); a model
# class may name another (DeepFM: ``none``).
ORDINAL_CHOICE = "cumulative_with_gaps"
_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of a model; ``model`` names the registry entry that builds it."""

    model: str = setting("infnet", help=(
        "Registered model to train (infnet, or a baseline such as shared_bottom, deepfm, dcnv2, mmoe, ple, "
        "all_to_all)."))
    d: int = setting(64, "Token width d (paper default 64).")
    num_blocks: int = setting(1, help=(
        "Number of INFNet blocks L. 1 (the default) measured within seed noise of 2 on three logs over 6 seeds each "
        "(mean test AUC +0.0001 on a real 20k-row log, +0.0013 on a 50k-impression sample, -0.0004 on the bundled "
        "200k sample) at 1.5-1.8x the train-step rate (bench/REPORT.md round 15); 2 was the default before, and 4 "
        "blocks scored below 2 on the real log. The paper's 4 (--preset=paper) is its choice at industrial scale: "
        "on a much larger log, measure 2 against 1."))
    num_heads: int = setting(1, help=(
        "Attention heads per attention (must divide d). 1 is the paper's single-head cross-attention "
        "(eq. 5, scaled by sqrt(d)); measured on a real log: as accurate as 4 heads, with a ~1.4x faster "
        "train step at d=32 (bench/REPORT.md)."))
    n_cat_hubs: int = setting(8, help=(
        "Number of categorical hubs n_c (paper default 16). 8 measured within seed noise of 16 with one block on "
        "three logs, 3 seeds each (mean test AUC -0.0003 on a real 20k-row log with 38 categorical fields, -0.0019 "
        "on a 50k-impression sample, -0.0002 on the bundled 200k sample; over 6 seeds -0.0001 / -0.0015 / -0.0004) at "
        "a 15-18% faster train step at d=32 and d=64 (bench/REPORT.md round 18); 4 scored -0.0004 / -0.0026 / "
        "0.0000. The paper's sensitivity study peaks at 32 on an industrial log with many more fields: with "
        "hundreds of categorical fields, measure 16."))
    n_shared_task_hubs: int = setting(4, "Number of shared task hubs n_shared (paper default 4).")
    cat_hub_hidden: tuple[int, ...] = setting((256,), help=(
        "Hidden widths of the categorical hub MLP (eq. 1), comma-separated. Measured with one block (bench/REPORT.md "
        "rounds 15, 17; 3 seeds): 128 trains a 6% faster step at d=32 and scores 0.0012 lower mean test AUC on a "
        "real log; 512 scores 0.0009 lower; both score 0.0015 higher on a 50k-impression sample, from its noisiest "
        "task (like)."))
    seq_hub_hidden: tuple[int, ...] = setting((64,), help=(
        "Hidden widths of the per-type sequence hub MLPs (eq. 3), comma-separated."))
    bgu_hidden: tuple[int, ...] = setting((64,), "Hidden widths of the BGU MLP (eq. 8), comma-separated.")
    head_hidden: tuple[int, ...] = setting((64,), help=(
        "Hidden widths of each task head MLP (eq. 11; the baselines' towers), comma-separated. Measured on INFNet "
        "(bench/REPORT.md rounds 4, 15, 17): 128 and 256,64 score the same mean test AUC as 64 within seed noise."))
    ffn_mult: int = setting(2, "FFN width multiple of self-attention blocks (hubs=off / all_to_all).")
    dropout: float = setting(0.0, "Dropout rate in [0, 1).")
    sequence_combiner: str = setting("sum", choices=CHOICES["sequence_combiner"], help=(
        "How item and side-information embeddings of a sequence position combine."))
    # -- ablation switches (§4.3, Table 4) ------------------------------------------------
    task_tokens: bool = setting(True, help=(
        "Ablation: on|off. off removes the task tokens T (heads read a shared representation)."))
    hubs: bool = setting(True, help=(
        "Ablation: on|off. off is all-to-all self-attention over [C; S; T] (quadratic reference)."))
    aggregation: bool = setting(True, "Ablation: on|off. off drops Phase 1 (hubs keep their initial value).")
    broadcast: bool = setting(True, "Ablation: on|off. off drops Phase 2 (the BGU broadcast to the tokens).")
    cat_hub_init: str = setting("mlp", choices=CHOICES["cat_hub_init"], help=(
        "Categorical hub initialisation: mlp (eq. 1), mean of field chunks, or random."))
    seq_hub_init: str = setting("type_mlp", choices=CHOICES["seq_hub_init"], help=(
        "Sequence hub initialisation: type_mlp (eq. 3), global_mean, or random."))
    fusion: str = setting("concat_linear", "Fusion of the three attention views (eq. 7).", choices=CHOICES["fusion"])
    task_hubs: str = setting("hybrid", choices=CHOICES["task_hubs"], help=(
        "Task hub group (eq. 4): hybrid = T + shared, specific = T only, shared only."))
    broadcast_unit: str = setting("affine", choices=CHOICES["broadcast_unit"], help=(
        "Broadcast unit: affine (eq. 9), scale, shift, or the v1 Proxy Gated Unit (pgu)."))
    # -- beyond the paper (issue 11; the paper preset turns them off) ----------------------
    token_norm: bool = setting(False, help=(
        "Beyond the paper: on|off. on: LayerNorm of every view's tokens before its K/V projections and of the hubs "
        "before the Q projection (pre-norm). Measured at the defaults (bench/REPORT.md, round 5): +0.0024 mean test "
        "AUC on a real log, -0.0038 on the sample, 1.33x the train-step time; so off by default."))
    embedding_init_std: float = setting(0.1, help=(
        "Beyond the paper: 0 = Keras' U(-0.05, 0.05) embedding initialisation; > 0: truncated normal with this "
        "standard deviation."))
    seq_hub_views: str = setting("seq", choices=CHOICES["seq_hub_views"], help=(
        "Beyond the paper: which views the sequence hubs aggregate in Phase 1: seq (S only: the whole sequence path "
        "is independent of the candidate, so score_candidates computes it once per request; the categorical and "
        "task hubs still read S) or all (the paper's eqs. 5-7: C, S and T)."))
    cat_hub_views: str = setting("all", choices=CHOICES["cat_hub_views"], help=(
        "Beyond the paper: which views the categorical hubs aggregate in Phase 1: all (C, S and T, the paper's "
        "eqs. 5-7) or cat_task (C and T only: per candidate, a longer sequence then costs only the task hubs' "
        "attention over it). cat_task measured (bench/REPORT.md round 16): a 12% faster train step at d=32 on "
        "the bundled sample, mean test AUC -0.0022 on a real log (6 seeds), -0.0017 on the bundled sample, "
        "+0.0013 on the 50k sample (3 seeds); not the default."))
    ordinal_encoding: str = setting("auto", choices=CHOICES["ordinal_encoding"], help=(
        "Beyond the paper (its open question 1), every model: how binned numbers (dense fields, counters) become "
        "tokens: none = one free embedding per bucket; cumulative = bucket j is the sum of rows 1..j of its "
        "table (ordered buckets, neighbours share rows); cumulative_with_gaps = the same, and the behaviour "
        "sequences' time-gap buckets too; auto = the model's measured choice: cumulative_with_gaps, but none for "
        "deepfm (its FM term diverges on summed rows)."))
    id_dropout: float = setting(0.1, help=(
        "Beyond the paper, every model: in training, each categorical token that is not a binned number (ids: user, "
        "item, attributes) is replaced by the missing id 0 with this probability, so the model also learns from "
        "the other features what an id alone would memorise (masks keyed on the seed and global step: exact "
        "resume). 0.1 measured (bench/REPORT.md round 10, 3 seeds): INFNet +0.0014 / +0.0037 / +0.0015 mean test "
        "AUC on a real log / the 50k sample / the bundled sample; every baseline +0.0008 to +0.0033 on the real "
        "log, -0.0015 to +0.0002 (within noise) on the samples. 0 = off (the paper)."))
    readout: str = setting("task_token_flat_hubs", choices=CHOICES["readout"], help=(
        "Beyond the paper: what each task head reads: task_token_flat_hubs (t_i and every hub of every group, "
        "concatenated; the default), task_token (t_i only, eq. 11, the paper) or task_token_hubs (t_i and the mean "
        "of every hub group)."))
    head_output_scale: float = setting(1.0, help=(
        "Beyond the paper, every model: each task head's output layer starts at Glorot uniform x this scale (1 = "
        "Keras' default, the paper's). 0.1 with --output_bias_init=prior starts every logit near the task's "
        "base rate: on a real log INFNet then early-stopped after 8 instead of 11 epochs at equal test AUC, but "
        "0.002 lower on the sample (bench/REPORT.md), so it is not the default."))
    # -- model-specific knobs of other registered models (JSON-able) ----------------------
    options: Mapping[str, Any] = setting(default_factory=dict, flag="model_options", help=(
        "JSON object of baseline-specific options, e.g. '{\"projection_dim\": 64}'. shared_bottom: "
        "bottom_hidden=256,128. deepfm: deep_hidden=256,128. dcnv2: cross_layers=3, projection_dim=auto (low rank "
        "n/4; null = full rank), deep_hidden=256,128, structure=stacked|parallel. mmoe: num_experts=4, "
        "expert_hidden=256,128. ple: num_levels=2, num_task_experts=1, num_shared_experts=1, expert_hidden=256,128. "
        "(WORKSPACE.md: Model options)"))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_hidden"):
                object.__setattr__(self, f.name, _as_int_tuple(f.name, value))
        object.__setattr__(self, "options", dict(self.options or {}))
        self._validate()

    # -- validation --------------------------------------------------------------------
    def _validate(self) -> None:
        def fail(field: str, msg: str) -> None:
            raise ValueError(f"model config: {field}: {msg}")

        if not isinstance(self.model, str) or not self.model:
            fail("model", f"expected a non-empty model name, got {self.model!r}")
        for name in ("d", "num_blocks", "num_heads", "n_cat_hubs", "ffn_mult"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, f"expected a positive int, got {value!r}")
        value = self.n_shared_task_hubs
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail("n_shared_task_hubs", f"expected an int >= 0, got {value!r}")
        if self.d % self.num_heads:
            fail("num_heads", f"must divide d={self.d}, got {self.num_heads}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            fail("dropout", f"expected a float in [0, 1), got {self.dropout!r}")
        if not isinstance(self.id_dropout, (int, float)) or not 0.0 <= self.id_dropout < 1.0:
            fail("id_dropout", f"expected a float in [0, 1), got {self.id_dropout!r}")
        if not isinstance(self.head_output_scale, (int, float)) or isinstance(self.head_output_scale, bool) \
                or not self.head_output_scale > 0:
            fail("head_output_scale", f"expected a float > 0, got {self.head_output_scale!r}")
        if not isinstance(self.embedding_init_std, (int, float)) or self.embedding_init_std < 0:
            fail("embedding_init_std", f"expected a float >= 0, got {self.embedding_init_std!r}")
        for name in ("task_tokens", "hubs", "aggregation", "broadcast", "token_norm"):
            if not isinstance(getattr(self, name), bool):
                fail(name, f"expected a bool, got {getattr(self, name)!r}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                fail(name, f"expected one of {'|'.join(allowed)}, got {getattr(self, name)!r}")
        if not (self.aggregation or self.broadcast):
            fail("aggregation", "aggregation=off together with broadcast=off leaves an empty block")
        if self.task_hubs == "shared" and self.n_shared_task_hubs == 0:
            fail("task_hubs", "task_hubs=shared needs n_shared_task_hubs >= 1")
        if not self.task_tokens and self.task_hubs == "specific":
            fail("task_hubs", "task_hubs=specific needs task tokens (task_tokens=on)")
        try:
            json.dumps(self.options)
        except TypeError as exc:
            fail("options", f"must be JSON-serialisable ({exc})")

    # -- helpers -----------------------------------------------------------------------
    @property
    def task_hub_parts(self) -> tuple[bool, bool]:
        """(uses task-specific hubs T, uses shared hubs) for the task hub group (eq. 4)."""
        specific = self.task_tokens and self.task_hubs in ("hybrid", "specific")
        shared = self.task_hubs in ("hybrid", "shared") or not self.task_tokens
        return specific, shared and self.n_shared_task_hubs > 0

    def tokenizer_ordinal(self, model_choice: str = ORDINAL_CHOICE) -> str:
        """The tokenizer's ordinal encoding: ``ordinal_encoding``, with ``auto`` resolved to the model's
        measured choice ``model_choice`` (a class attribute of the model: ``ORDINAL_CHOICE`` by default)."""
        return model_choice if self.ordinal_encoding == "auto" else self.ordinal_encoding

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls.from_flags_dict(d)

    @classmethod
    def from_flags_dict(cls, flags: Mapping[str, Any], *, ignore_unknown: bool = False) -> "ModelConfig":
        """Build from flag-like values (strings such as ``"off"``, ``"64,32"`` are parsed).

        Keys are field names; ``options`` takes a mapping or a JSON string, and ``options.<k>``
        sets one option. Unknown keys raise unless ``ignore_unknown`` (e.g. when passing all of a
        program's flags).
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for key, value in flags.items():
            if key.startswith("options."):
                options[key[len("options."):]] = value
                continue
            if key not in fields:
                if ignore_unknown:
                    continue
                raise ValueError(f"model config: unknown field {key!r}; expected one of {sorted(fields)}")
            kwargs[key] = _parse(key, fields[key].default, value)
        if options:
            kwargs["options"] = {**dict(kwargs.get("options", {})), **options}
        return cls(**kwargs)


def _as_int_tuple(field: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"model config: {field}: expected a list of positive ints, got {value!r}") from None
    if any(v < 1 for v in out):
        raise ValueError(f"model config: {field}: expected a list of positive ints, got {value!r}")
    return out


def _parse(field: str, default: Any, value: Any) -> Any:
    """Coerce a flag value to the type of ``default`` (strings parsed, others passed through)."""
    if field == "options":
        return json.loads(value) if isinstance(value, str) else value
    if not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"model config: {field}: expected on|off (true|false), got {value!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"model config: {field}: expected an int, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"model config: {field}: expected a float, got {value!r}") from None
    return text  # str fields and *_hidden tuples (parsed in __post_init__)
