"""What every pooled-input baseline shares: inputs, options, towers, (de)serialisation.

Inputs ("early aggregation", paper §1): the baselines read the *same* embedding tables as INFNet
through INFNet's :class:`~infnet_tf.layers.tokenizers.FeatureTokenizer` -- categorical tokens
C [B, N_c, d] and, per behaviour type b, the masked mean of its sequence tokens
s_{b,t} = e_{b,t} + p_t + r_t (eq. 2; padding excluded, so predictions do not depend on padding).
The F = N_c + B field embeddings are stacked in layout order into E [B, F, d]; MLP-style
backbones read ``flatten(E)`` [B, F·d].

Towers (paper §4.1, "task-specific towers implemented as 2-layer MLPs"): task i's tower is
``MLP(head_hidden) -> Dense(1, float32)``, with the default ``head_hidden=(64,)`` two Dense layers
-- the same shape as INFNet's heads (eq. 11). ŷ_i = σ(tower_i(h_i) [+ model-specific logit]),
returned as float32 [B].

Options: each baseline declares its knobs with defaults (:class:`Option`) and reads them from
``config.options``; unknown keys are an error (a typo must not silently train the default model).
Flag strings are accepted (``"256,128"`` for int lists, ``"null"``/``"none"`` for optional ints).
Of the generic :class:`~infnet_tf.models.config.ModelConfig` fields they read ``d``, ``head_hidden``,
``dropout`` (after every hidden layer: bottom/deep MLPs, experts, towers), the tokenizer's
(``sequence_combiner``, ``embedding_init_std``, ``ordinal_encoding``, ``id_dropout``) and
``head_output_scale`` (:data:`POOLED_FIELDS`, declared to the registry); the INFNet-only fields
(``num_blocks``, hubs, switches ...) are ignored.

FLOPs convention (:mod:`infnet_tf.models.cost`): 2 × multiply-adds of every dense contraction
(MatMul / BatchMatMul); element-wise work, reductions (the masked means, the FM term) and
embedding look-ups are not counted.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.layers.autograph import no_autograph
from infnet_tf.layers.mlp import MLP, mlp_flops
from infnet_tf.layers.tokenizers import FeatureTokenizer, tokenizer_flops
from infnet_tf.models.config import ORDINAL_CHOICE, ModelConfig

# The ModelConfig fields a pooled baseline reads (``register_model(..., reads=POOLED_FIELDS)``).
POOLED_FIELDS = ("d", "head_hidden", "dropout", "sequence_combiner", "embedding_init_std", "ordinal_encoding",
                 "id_dropout", "head_output_scale", "options")


# -- options -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Option:
    """One model-specific knob: its default and kind (``int`` | ``int0`` | ``ints`` | ``opt_int`` | choices)."""

    default: Any
    kind: str
    choices: tuple[str, ...] = ()
    help: str = ""


def _coerce(model: str, key: str, opt: Option, value: Any) -> Any:
    def fail(expected: str):
        raise ValueError(f"model config: options.{key}: expected {expected} for model {model!r}, "
                         f"got {value!r}")

    text = value.strip() if isinstance(value, str) else None
    if opt.kind in ("int", "int0"):
        lo = 1 if opt.kind == "int" else 0
        try:
            out = int(text) if text is not None else value
        except ValueError:
            fail(f"an int >= {lo}")
        if not isinstance(out, int) or isinstance(out, bool) or out < lo:
            fail(f"an int >= {lo}")
        return out
    if opt.kind == "opt_int":
        if value is None or (text is not None and text.lower() in ("", "null", "none")):
            return None
        if opt.choices and (text or value) in opt.choices:     # named values, e.g. "auto"
            return text or value
        try:
            out = int(text) if text is not None else value
        except ValueError:
            fail("a positive int or null")
        if not isinstance(out, int) or isinstance(out, bool) or out < 1:
            fail("a positive int or null")
        return out
    if opt.kind == "ints":
        items = [v for v in text.replace(" ", "").split(",") if v] if text is not None else value
        try:
            out = tuple(int(v) for v in items)
        except (TypeError, ValueError):
            fail("a list of positive ints")
        if any(isinstance(v, bool) or v < 1 for v in out):
            fail("a list of positive ints")
        return out
    if opt.kind == "choice":
        if value not in opt.choices:
            fail(f"one of {'|'.join(opt.choices)}")
        return value
    raise AssertionError(opt.kind)


def read_options(model: str, config: ModelConfig, spec: Mapping[str, Option]) -> dict[str, Any]:
    """``config.options`` validated against ``spec``, defaults filled in."""
    unknown = sorted(set(config.options) - set(spec))
    if unknown:
        raise ValueError(f"model config: options: unknown option(s) {unknown} for model {model!r}; "
                         f"expected some of {sorted(spec)}")
    return {key: _coerce(model, key, opt, config.options.get(key, opt.default))
            for key, opt in spec.items()}


# -- shapes --------------------------------------------------------------------------------------
def num_fields(layout: FeatureLayout) -> int:
    """F = N_c + number of behaviour types (one pooled field per type)."""
    return len(layout.categorical) + len(layout.sequences)


def tower_flops(layout: FeatureLayout, config: ModelConfig, in_dim: int) -> int:
    return len(layout.tasks) * mlp_flops(in_dim, config.head_hidden, 1)


def input_flops(layout: FeatureLayout, config: ModelConfig) -> int:
    """The tokenizer's contractions (projections to d, ``concat_linear`` combiner); the sequences' means
    (:meth:`FeatureTokenizer.pooled_sequences`) are segment sums, no contraction."""
    return tokenizer_flops(layout, config.d, config.sequence_combiner)


# -- the model -----------------------------------------------------------------------------------
class PooledBaseline(tf.keras.Model):
    """Base of the pooled-input baselines: ``call(features) -> {task: float32 prob [B]}``.

    Subclasses set ``MODEL`` and ``OPTIONS``, build their backbone in :meth:`build_backbone` and
    implement :meth:`backbone` (E [B, F, d] -> one representation per task, plus optional extra
    float32 logits [B, N_t] added before the sigmoid).
    """

    MODEL: str = ""
    OPTIONS: Mapping[str, Option] = {}
    ORDINAL_CHOICE = ORDINAL_CHOICE     # what ``ordinal_encoding=auto`` means for this model

    def __init__(self, layout, config, **kwargs):
        layout = layout if isinstance(layout, FeatureLayout) else FeatureLayout.from_dict(layout)
        config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        kwargs.setdefault("name", self.MODEL)
        super().__init__(**kwargs)
        if num_fields(layout) < 1:
            raise ValueError(f"{self.MODEL}: the layout has no categorical or sequence input")
        self.layout, self.model_config = layout, config
        self.knobs = read_options(self.MODEL, config, self.OPTIONS)
        self.task_names = layout.task_names
        self.num_fields = num_fields(layout)
        self.tokenizer = FeatureTokenizer(layout, config.d, combiner=config.sequence_combiner,
                                          init_std=config.embedding_init_std,
                                          ordinal=config.tokenizer_ordinal(self.ORDINAL_CHOICE),
                                          id_dropout=config.id_dropout,
                                          name="tokenizer")
        self.build_backbone()
        self.towers = [MLP(config.head_hidden, out=1, dropout=config.dropout, output_dtype="float32",
                           out_scale=config.head_output_scale,
                           name=f"tower_{i}") for i in range(len(self.task_names))]

    # -- to be provided by subclasses --------------------------------------------------------
    def build_backbone(self) -> None:
        raise NotImplementedError

    def backbone(self, fields, training=False):
        """E [B, F, d] -> (list of N_t tower inputs, float32 extra logits [B, N_t] or None)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def output_layers(self) -> dict:
        """{task: the Dense(1) producing its tower's logit} (the trainer sets their biases)."""
        return {task: tower.out_layer for task, tower in zip(self.task_names, self.towers)}

    def field_embeddings(self, features, training=False):
        """E [B, F, d]: categorical tokens then one masked-mean field per behaviour type."""
        parts = []
        c = self.tokenizer.categorical_tokens(features, training)
        if c is not None:
            parts.append(c)
        if self.layout.sequences:
            pooled = self.tokenizer.pooled_sequences(features)
            parts.append(tf.stack([pooled[s.name] for s in self.layout.sequences], axis=1))
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    @no_autograph
    def call(self, features, training=False):
        reps, extra = self.backbone(self.field_embeddings(features, training), training=training)
        out = {}
        for i, (task, tower, rep) in enumerate(zip(self.task_names, self.towers, reps)):
            logit = tf.cast(tower(rep, training=training), tf.float32)[:, 0]
            if extra is not None:
                logit = logit + extra[:, i]
            out[task] = tf.sigmoid(logit)
        return out

    def get_config(self):
        return {"layout": self.layout.to_dict(), "config": self.model_config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def flatten_fields(fields, num: int, d: int):
    """[B, F, d] -> [B, F·d] with a static last dimension."""
    return tf.reshape(fields, [-1, num * d])


def mlp_or_identity(hidden: Sequence[int], dropout: float, name: str) -> Optional[MLP]:
    return MLP(hidden, out=None, activation="relu", dropout=dropout, name=name) if hidden else None


def width_after(in_dim: int, hidden: Sequence[int]) -> int:
    return hidden[-1] if hidden else in_dim

