"""The suite's configuration: sizes, seeds, grids, and the model configs every section trains.

Two presets fill in whatever the command line leaves unset:

* ``DEFAULTS`` — the documented default run. Every deep model is trained with the product's own
  batch-mode recipe (equal treatment): up to ``--max_epochs`` full passes over train/, early stopping
  after ``--patience`` rounds without a better mean valid AUC (the best round restored), batch size
  from :func:`infnet_tf.training.recipe.auto_batch_size` of the train rows (``--batch_size=0``);
* ``SMOKE`` (``--smoke``) — 1 seed, a fixed handful of steps (``--steps`` > 0: the fixed-step
  protocol), tiny models and reduced grids; every section is still produced (used by
  ``tests/bench/test_report.py``).

Width rule (used by every section, so ``--d=64`` reproduces the registry defaults exactly): every
width-like hyperparameter — INFNet's hub/BGU/head MLP widths and each baseline's ``*_hidden``
option — is its registry default scaled by ``d / 64``. The scaling section varies ``d`` with this
rule, so all models grow together.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import time
from typing import Any, Mapping

from infnet_tf.config_flags import setting
from infnet_tf.models.config import ModelConfig
from infnet_tf.training.config import TrainConfig
from infnet_tf.models.presets import ABLATIONS as PRESET_ABLATIONS, PAPER_CHOICES, Preset

SECTIONS = ("quality", "ablations", "hubs", "scaling", "attention", "efficiency")  # the default run
# Sections run only when asked for by --sections: "gbdt", the LightGBM reference on its own (the
# quality table includes it anyway), so it can be run without training any deep model.
OPTIONAL_SECTIONS = ("gbdt",)
ALL_SECTIONS = OPTIONAL_SECTIONS + SECTIONS
ALL_MODELS = ("infnet", "shared_bottom", "deepfm", "dcnv2", "mmoe", "ple", "all_to_all")
REFERENCE_D = 64  # the registry defaults are written for d = 64 (paper §4.4)


# The ablation rows are the presets of :mod:`infnet_tf.models.presets` (defined once there, shared with
# ``python -m infnet_tf.train --preset``): ``Preset(id, label, group, changes)``.
ABLATIONS: tuple[Preset, ...] = PRESET_ABLATIONS
ABLATION_IDS = tuple(a.id for a in ABLATIONS)
# Default: every switch once — the four macro regressions (Fig. 3), one alternative per Table 4
# aspect, and each beyond-the-paper fix turned back to the paper's choice alone. ("Task hubs:
# specific only" is also the n_shared = 0 point of the hub sweep.) ``--ablations=all`` runs every row.
DEFAULT_ABLATIONS = ("no_task_tokens", "no_hubs", "no_aggregation", "no_broadcast", "cat_init_mean",
                     "seq_init_global_mean", "fusion_sum", "task_hubs_shared", "bgu_shift",
                     "paper_embedding_init", "readout_task_token", "readout_mean_hubs", "token_norm",
                     "ordinal_none", "ordinal_tokens_only", "paper_no_id_dropout", "seq_hubs_read_all", "multi_head")
# The quality table's extra INFNet row: the paper-exact preset on top of the suite's base INFNet.
PAPER_PRESET = "paper"
PAPER_LABEL = "infnet (paper preset)"


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """Everything that decides what the suite runs (recorded verbatim in the report); every field is a
    ``python -m bench.report`` flag (``d`` is ``--width``, alias ``--d``)."""

    data: str = setting(help="Dataset job output directory: {train,valid,test}/dt=... partitions + "
                        "transform/transform_artifact.json.")
    spec: str | None = setting(None, "Feature spec YAML the data was built from (its fingerprint is checked "
                               "against the artifact).")
    output_dir: str = setting("", "Reports go to <output_dir>/<run_name>/ (default: $INFNET_WORKDIR/bench, "
                              "INFNET_WORKDIR defaulting to ./workdir of the checkout, git-ignored).")
    run_name: str = setting("", "Name of this report's directory (default: UTC timestamp, '-smoke' appended with "
                            "--smoke). Re-using a name re-uses its finished model runs.")
    sections: tuple[str, ...] = setting(SECTIONS, f"Comma-separated sections to run, any of {','.join(ALL_SECTIONS)}; "
                                        "gbdt (the LightGBM reference alone, no deep model trained) only when named.")
    smoke: bool = setting(False, "Every flag left unset takes the SMOKE preset (1 seed, a few fixed steps, tiny "
                          "models, reduced grids; every section still produced) instead of the default run's value.")
    resume: bool = setting(True, "Re-use the finished model runs of an existing --run_name (--noresume: train them "
                           "again).")
    jobs: int = setting(0, "Model runs trained at once in worker processes (0: min(2, CPU cores)); 1: in this "
                        "process.")
    # -- protocol ------------------------------------------------------------------------
    seeds: int = setting(3, "Quality table: train every model with seeds 0..N-1 (mean ± std).")
    sweep_seeds: int = setting(1, "Ablations, hub sweep and scaling: seeds 0..N-1 (<= --seeds; those runs are "
                               "shared).")
    # Default protocol ("recipe", --steps=0): the product's batch-mode recipe for every model — up
    # to max_epochs full passes over train/, early stopping after `patience` rounds without a better
    # mean valid AUC, the best round restored; batch size from the recipe (batch_size=0).
    # --steps > 0 ("fixed steps"): the old fixed budget, `steps` steps in `rounds` rounds, no early stop.
    steps: int = setting(0, "0: the product's recipe for every model (up to --max_epochs full passes over train/, "
                         "early stopping after --patience rounds without a better mean valid AUC, best round "
                         "restored); > 0: a fixed budget of this many train steps per model run instead (no early "
                         "stopping).")
    rounds: int = setting(2, "With --steps > 0: evaluation rounds on valid/ over the steps (model selection: best "
                          "mean valid AUC).")
    max_epochs: int = setting(8, "With --steps=0: at most this many full passes over train/ per model run.")
    patience: int = setting(2, "With --steps=0: stop after this many rounds without a better mean valid AUC "
                            "(0: never).")
    batch_size: int = setting(0, "Training batch size; 0: the product recipe's "
                              "(infnet_tf.training.recipe.auto_batch_size of the train rows).")
    eval_batch_size: int = setting(2048, "Evaluation batch size.")
    eval_steps: int = setting(0, "Evaluate on at most this many batches of valid/ and test/; 0: all.")
    # the product's TrainConfig defaults (INFNet is unstable at 5e-3 dense)
    learning_rate: float = setting(TrainConfig.learning_rate, "Adam learning rate of dense weights "
                                   "(default: the product's).")
    embedding_learning_rate: float = setting(TrainConfig.embedding_learning_rate, "Adagrad learning rate of "
                                             "embedding tables (default: the product's).")
    # -- base model ----------------------------------------------------------------------
    d: int = setting(32, "Base width of EVERY model: the token/embedding width and, by the width rule, every "
                     "hidden width (registry default x width/64). Not the same as python -m infnet_tf.train --d "
                     "(token width only). Alias: --d.", flag="width")
    num_blocks: int = setting(ModelConfig.num_blocks, "INFNet / all-to-all blocks L (default: the product's).")
    num_heads: int = setting(ModelConfig.num_heads, "Attention heads (default: the product's).")
    n_cat_hubs: int = setting(ModelConfig.n_cat_hubs, "INFNet categorical hubs n_c (base model; default: the product's).")
    n_shared_task_hubs: int = setting(ModelConfig.n_shared_task_hubs, "INFNet shared task hubs n_shared (base model; "
                                      "default: the product's).")
    # -- quality -------------------------------------------------------------------------
    models: tuple[str, ...] = setting(ALL_MODELS, "Models of the quality table (must include infnet).")
    gbdt: bool = setting(True, "Quality section: add the LightGBM reference row (--nogbdt: skip it).")
    gbdt_rounds: int = setting(200, "LightGBM: maximum boosting rounds (early-stopped on valid AUC).")
    gbdt_leaves: int = setting(63, "LightGBM: leaves per tree.")
    gbdt_learning_rate: float = setting(0.1, "LightGBM: learning rate.")
    # -- sweeps --------------------------------------------------------------------------
    ablations: tuple[str, ...] = setting(DEFAULT_ABLATIONS, "Ablation variants to run, or 'all': "
                                         + ",".join(ABLATION_IDS) + ".")
    hub_cat: tuple[int, ...] = setting((1, 4, 16, 32), "Hub sweep: values of n_c.")
    hub_shared: tuple[int, ...] = setting((0, 1, 4, 8), "Hub sweep: values of n_shared.")
    scaling_models: tuple[str, ...] = setting(("infnet", "dcnv2", "ple"), "Scaling: models (must include infnet).")
    scaling_widths: tuple[int, ...] = setting((8, 16, 32), "Scaling: widths d.")
    # -- efficiency ----------------------------------------------------------------------
    efficiency_seq_lens: tuple[int, ...] = setting((64, 256, 1024, 4096), "Efficiency: behaviour-sequence lengths "
                                                   "for the step-time scan.")
    efficiency_steps: int = setting(10, "Efficiency: measured steps per measurement.")
    efficiency_batch_size: int = setting(256, "Efficiency: batch size of the serving latency bench.")

    def __post_init__(self) -> None:
        def fail(name: str, msg: str) -> None:
            raise ValueError(f"bench.report: --{name}: {msg}")

        unknown = sorted(set(self.sections) - set(ALL_SECTIONS))
        if unknown:
            fail("sections", f"unknown section(s) {unknown}; expected some of {','.join(ALL_SECTIONS)}")
        if not self.sections:
            fail("sections", "select at least one section")
        for name in ("seeds", "sweep_seeds", "rounds", "max_epochs", "eval_batch_size", "d",
                     "num_blocks", "num_heads", "n_cat_hubs", "gbdt_rounds", "gbdt_leaves",
                     "efficiency_steps", "efficiency_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, f"expected a positive int, got {value!r}")
        for name, what in (("steps", "0: full passes with early stopping"), ("patience", "0: no early stopping"),
                           ("batch_size", "0: the recipe's automatic batch size"),
                           ("eval_steps", "0: all"), ("jobs", "0: automatic")):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                fail(name, f"expected an int >= 0 ({what}), got {value!r}")
        if self.sweep_seeds > self.seeds:
            fail("sweep_seeds", f"must be <= --seeds ({self.seeds}) so sweeps reuse the quality runs' seeds")
        if self.steps and self.rounds > self.steps:
            fail("rounds", f"must be <= --steps ({self.steps})")
        if self.d % self.num_heads:
            fail("num_heads", f"must divide --d={self.d}")
        if tuple(self.ablations) == ("all",):
            object.__setattr__(self, "ablations", ABLATION_IDS)
        unknown = sorted(set(self.ablations) - set(ABLATION_IDS))
        if unknown:
            fail("ablations", f"unknown ablation(s) {unknown}; expected some of {','.join(ABLATION_IDS)}")
        for name in ("models", "scaling_models"):
            if not getattr(self, name):
                fail(name, "expected at least one model")
        if "infnet" not in self.models:
            fail("models", "must include infnet (the model the report is about)")
        if "infnet" not in self.scaling_models:
            fail("scaling_models", "must include infnet")
        for name in ("hub_cat", "scaling_widths", "efficiency_seq_lens"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                fail(name, "expected a non-empty list of positive ints")
        if not self.hub_shared or min(self.hub_shared) < 0:
            fail("hub_shared", "expected a non-empty list of ints >= 0")

    # -- derived -------------------------------------------------------------------------
    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    @property
    def sweep_seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.sweep_seeds))

    @property
    def effective_jobs(self) -> int:
        return self.jobs or max(1, min(2, os.cpu_count() or 1))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SuiteConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @property
    def protocol(self) -> str:
        """``"recipe"`` (full passes, early stopping; ``--steps=0``) or ``"fixed_steps"`` (``--steps`` > 0)."""
        return "fixed_steps" if self.steps else "recipe"

    @property
    def resolved_batch_size(self) -> int:
        """``--batch_size``, or (0) the product recipe's batch size for the train rows of ``--data``."""
        return self.batch_size or auto_batch_size(self.data)

    def train_config(self, seed: int):
        """The TrainConfig of every model run (only the seed differs between runs), batch size resolved.

        Recipe protocol: ``epochs=max_epochs`` full passes (``train_steps=0``) with
        ``early_stopping_patience=patience``; fixed-step protocol: ``train_steps=steps`` in ``rounds``
        rounds, no early stopping. Everything else not set here (warm-up, clipping, optimizers) is the
        product's ``TrainConfig`` default, for every model alike; the weight-average decay is the
        recipe's for these rounds (:func:`infnet_tf.training.recipe.resolve`).
        """
        if self.steps:
            budget = dict(epochs=self.rounds, train_steps=self.steps, early_stopping_patience=0,
                          log_every=max(1, self.steps // 4))
        else:
            budget = dict(epochs=self.max_epochs, train_steps=0, early_stopping_patience=self.patience,
                          log_every=100)
        config = TrainConfig(batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                             learning_rate=self.learning_rate,
                             embedding_learning_rate=self.embedding_learning_rate,
                             precision="auto", strategy="default", eval_steps=self.eval_steps,
                             keep_checkpoints=1, **budget)
        return recipe_resolved(config, self.data).replace(seed=seed)

    def protocol_dict(self) -> dict[str, Any]:
        """What the report records about the training protocol (``meta.protocol``)."""
        tc = self.train_config(0)
        out: dict[str, Any] = {"name": self.protocol, "batch_size": tc.batch_size,
                               "batch_size_source": "--batch_size" if self.batch_size else "recipe",
                               "warmup_steps": tc.warmup_steps, "weight_average_decay": tc.weight_average_decay}
        if self.steps:
            out.update(steps=self.steps, rounds=self.rounds, early_stopping_patience=0)
        else:
            out.update(max_epochs=self.max_epochs, early_stopping_patience=self.patience)
        return out

    # -- model configs -------------------------------------------------------------------
    def model_config(self, model: str, d: int | None = None, **changes: Any):
        """``model`` at width ``d`` (default ``--d``) under the width rule, with ``changes``."""
        base = dict(num_blocks=self.num_blocks, num_heads=self.num_heads, n_cat_hubs=self.n_cat_hubs,
                    n_shared_task_hubs=self.n_shared_task_hubs)
        base.update(changes)
        return scaled_model_config(model, d or self.d, **base)

    def paper_config(self):
        """The quality table's "infnet (paper preset)": the base INFNet with the ``paper`` preset's switches
        (``PAPER_CHOICES``) at the suite's size (``--num_blocks``, ``--num_heads``, ...), so the row measures
        the switches, not a deeper model."""
        return self.model_config("infnet", **PAPER_CHOICES)


# The documented presets. Flags left unset on the command line take these values.
DEFAULTS: dict[str, Any] = {}  # the dataclass defaults above
SMOKE: dict[str, Any] = dict(
    seeds=1, sweep_seeds=1, steps=4, rounds=2, max_epochs=2, patience=1, batch_size=64, eval_batch_size=256,
    eval_steps=4,
    d=8, num_blocks=1, num_heads=2, n_cat_hubs=4, n_shared_task_hubs=2,
    gbdt_rounds=10, gbdt_leaves=7,
    ablations=("no_task_tokens",), hub_cat=(1,), hub_shared=(0,),
    scaling_widths=(4, 8), efficiency_seq_lens=(4, 8), efficiency_steps=2, efficiency_batch_size=32,
)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_output_dir() -> str:
    """``$INFNET_WORKDIR/bench``; INFNET_WORKDIR defaults to the checkout's git-ignored ``workdir/``."""
    work = os.environ.get("INFNET_WORKDIR") or os.path.join(REPO_ROOT, "workdir")
    return os.path.join(work, "bench")


def field_value(name: str, default: Any, value: Any) -> Any:
    """A flag's parsed value as the field's type: comma-separated text -> a tuple (of ints where the
    default holds ints); absl has typed the scalar flags already. ValueError names the flag."""
    if not isinstance(default, tuple) or not isinstance(value, str):
        return value
    items = [x.strip() for x in value.split(",") if x.strip()]
    if default and isinstance(default[0], int):
        try:
            return tuple(int(x) for x in items)
        except ValueError:
            flag = "width" if name == "d" else name
            raise ValueError(f"bench.report: --{flag}: expected comma-separated ints, got {value!r}") from None
    return tuple(items)


def suite_from_flags(values: Mapping[str, Any], given: set[str]) -> SuiteConfig:
    """The :class:`SuiteConfig` of a command line: ``values`` (``{field: flag value}``) of the fields in
    ``given`` (flags set on the command line) win; the others take the ``SMOKE`` preset with ``--smoke``,
    else the defaults. Unset ``output_dir``/``run_name``: :func:`default_output_dir` / the UTC time."""
    smoke = bool(values.get("smoke"))
    chosen: dict[str, Any] = {}
    for f in dataclasses.fields(SuiteConfig):
        if f.name in given:
            chosen[f.name] = field_value(f.name, f.default, values[f.name])
        elif smoke and f.name in SMOKE:
            chosen[f.name] = SMOKE[f.name]
        elif f.name in values and f.default is dataclasses.MISSING:
            chosen[f.name] = values[f.name]
    chosen["smoke"] = smoke
    if not chosen.get("output_dir"):
        chosen["output_dir"] = default_output_dir()
    if not chosen.get("run_name"):
        chosen["run_name"] = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + ("-smoke" if smoke else "")
    return SuiteConfig(**chosen)


@functools.lru_cache(maxsize=None)
def recipe_resolved(config: TrainConfig, data_dir: str) -> TrainConfig:
    """``config`` with the product recipe's automatic settings made concrete for ``<data_dir>/train``
    (:func:`infnet_tf.training.recipe.resolve`; the manifests are read once per distinct config)."""
    from infnet_tf.training.recipe import resolve

    return resolve(config, data_dir, log=lambda *_: None)


def auto_batch_size(data_dir: str) -> int:
    """The product recipe's batch size for ``<data_dir>/train``."""
    return recipe_resolved(TrainConfig(batch_size=0), data_dir).batch_size


def _scale(width: int, d: int) -> int:
    return max(1, int(round(width * d / REFERENCE_D)))


def _heads_for(d: int, heads: int) -> int:
    while heads > 1 and d % heads:
        heads -= 1
    return heads


def scaled_model_config(model: str, d: int, *, num_heads: int, **changes: Any):
    """A :class:`ModelConfig` for ``model`` at width ``d`` under the width rule (module docstring);
    ``changes`` are further ModelConfig fields (``num_blocks``, ``n_cat_hubs``, ablation switches ...).

    Only the width-like fields are scaled; every other ModelConfig field (``token_norm``,
    ``embedding_init_std``, ``readout``, ...) keeps its ModelConfig default unless ``changes`` (a
    preset) sets it."""

    ref = ModelConfig()
    fields: dict[str, Any] = dict(model=model, d=d, num_heads=_heads_for(d, num_heads))
    for name in ("cat_hub_hidden", "seq_hub_hidden", "bgu_hidden", "head_hidden"):
        fields[name] = tuple(_scale(w, d) for w in getattr(ref, name))
    options = {}
    for key, opt in baseline_options(model).items():
        if key.endswith("_hidden") and opt.kind == "ints":
            options[key] = [_scale(w, d) for w in opt.default]
    fields["options"] = options
    fields.update(changes)
    return ModelConfig(**fields)


def baseline_options(model: str) -> dict:
    """The ``OPTIONS`` table of a pooled baseline module (empty for infnet / all_to_all)."""
    try:
        module = importlib.import_module(f"infnet_tf.models.baselines.{model}")
    except ImportError:
        return {}
    return dict(getattr(module, "OPTIONS", {}) or {})

