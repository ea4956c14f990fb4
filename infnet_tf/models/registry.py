"""Registry of model builders: ``config.model`` names the entry that builds a model.

A model module registers itself with::

    @register_model("infnet", flops=infnet_flops)
    def build_infnet(layout: FeatureLayout, config: ModelConfig) -> tf.keras.Model: ...

(a ``tf.keras.Model`` subclass taking ``(layout, config)`` works as the builder too). ``flops`` is
an optional analytical ``(layout, config) -> float`` count of FLOPs per example (multiply-adds × 2)
used by :mod:`infnet_tf.models.cost`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

Builder = Callable[..., Any]
FlopsFn = Callable[..., float]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Builder
    flops: Optional[FlopsFn] = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, flops: Optional[FlopsFn] = None) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(layout, config) -> tf.keras.Model`` under ``name``."""

    def deco(builder: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not builder:
            raise ValueError(f"model registry: {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name=name, build=builder, flops=flops)
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
