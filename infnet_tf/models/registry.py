"""Registry of model builders: ``config.model`` names the entry that builds a model.

A model module registers itself with::

    @register_model("infnet", flops=infnet_flops)
    def build_infnet(layout: FeatureLayout, config: ModelConfig) -> tf.keras.Model: ...

(a ``tf.keras.Model`` subclass taking ``(layout, config)`` works as the builder too). ``flops`` is
an optional analytical ``(layout, config) -> float`` count of FLOPs per example (multiply-adds × 2)
used by :mod:`infnet_tf.models.cost`. ``reads`` names the :class:`~infnet_tf.models.config.ModelConfig`
fields the builder reads (None: all of them); the others cannot change the model, so resuming a model
dir ignores them (:mod:`infnet_tf.training.model_dir`; ``tests/models/test_registry.py`` checks that
changing them leaves the variables as they are).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

Builder = Callable[..., Any]
FlopsFn = Callable[..., float]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Builder
    flops: Optional[FlopsFn] = None
    reads: Optional[tuple[str, ...]] = None   # ModelConfig fields the builder reads; None: all

    def reads_field(self, name: str) -> bool:
        """Whether field ``name`` can change this model (``model`` always can)."""
        return self.reads is None or name == "model" or name in self.reads


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, flops: Optional[FlopsFn] = None,
                   reads: Optional[Sequence[str]] = None) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(layout, config) -> tf.keras.Model`` under ``name``."""

    def deco(builder: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not builder:
            raise ValueError(f"model registry: {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name=name, build=builder, flops=flops,
                                     reads=None if reads is None else tuple(reads))
        return builder

    return deco


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"model config: model: unknown model {name!r}; registered: {'|'.join(sorted(_REGISTRY))}"
        ) from None


def registered_models() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))
