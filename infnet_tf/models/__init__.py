"""Models: ``build_model(layout, config)`` dispatches on ``config.model`` through the registry.

Every model is a subclassed ``tf.keras.Model`` whose ``call(features, training=False)`` takes the
batched input dict of :mod:`infnet_tf.data.keys` and returns ``{task_name: float32 probability [B]}``,
and which exposes ``model.task_names``. Model modules register themselves on import (add new ones
to ``_MODEL_MODULES``).
"""
from __future__ import annotations

import importlib

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.models.config import ORDINAL_CHOICE, ModelConfig
from infnet_tf.models import registry as _registry
from infnet_tf.models.registry import ModelEntry, register_model

_MODEL_MODULES = ("infnet_tf.models.infnet", "infnet_tf.models.baselines")


def _load_models() -> None:
    for module in _MODEL_MODULES:
        importlib.import_module(module)


def get_entry(name: str) -> ModelEntry:
    """The registry entry (builder, analytical FLOPs) of model ``name``."""
    _load_models()
    return _registry.get_entry(name)


def ordinal_choice(name: str) -> str:
    """What ``ordinal_encoding=auto`` means for model ``name``: its class's ``ORDINAL_CHOICE``
    (``ModelConfig.tokenizer_ordinal``), the config module's ``ORDINAL_CHOICE`` when it names none."""
    return getattr(get_entry(name).build, "ORDINAL_CHOICE", ORDINAL_CHOICE)


def registered_models() -> tuple[str, ...]:
    _load_models()
    return _registry.registered_models()


def build_model(layout: FeatureLayout, config: ModelConfig):
    """The ``tf.keras.Model`` named by ``config.model`` for ``layout``, its variables created.

    The model is called once on :func:`~infnet_tf.data.tensors.placeholder_inputs` so that
    optimizers, checkpoints and ``param_count`` see every variable right away.
    """
    from infnet_tf.data.tensors import placeholder_inputs

    model = get_entry(config.model).build(layout, config)
    model(placeholder_inputs(layout), training=False)
    return model


__all__ = ["FeatureLayout", "ModelConfig", "ModelEntry", "build_model", "get_entry",
           "ordinal_choice", "register_model", "registered_models"]
