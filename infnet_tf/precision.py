"""Mixed precision (``--precision=auto|float32|mixed_float16|mixed_bfloat16``).

Compute runs in float16 (GPU) or bfloat16; the layers keep softmax, LayerNorm statistics, the loss
and the output probabilities in float32 themselves. ``auto`` picks ``mixed_float16`` when a GPU is
visible and ``float32`` otherwise. Under float16 the optimizer must scale the loss:
:func:`wrap_optimizer` wraps it in a ``LossScaleOptimizer``.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Union

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.training.config import PRECISIONS


def resolve_precision(name: str) -> str:
    """The concrete policy name for ``name`` (``auto`` resolved against the visible devices)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision: expected one of {'|'.join(PRECISIONS)}, got {name!r}")
    if name == "auto":
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    return name


def set_precision(name: str) -> str:
    """Set the global Keras mixed-precision policy; returns the resolved policy name."""
    resolved = resolve_precision(name)
    tf.keras.mixed_precision.set_global_policy(resolved)
    return resolved


@contextlib.contextmanager
def precision_scope(name: str) -> Iterator[str]:
    """Set a policy for the duration of a ``with`` block, then restore the previous one."""
    previous = tf.keras.mixed_precision.global_policy()
    try:
        yield set_precision(name)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, policy: Union[str, "tf.keras.mixed_precision.Policy", None] = None):
    """``optimizer`` wrapped for dynamic loss scaling if ``policy`` computes in float16.

    ``policy`` defaults to the global policy; wrapping twice is a no-op.
    """
    if policy is None:
        policy = tf.keras.mixed_precision.global_policy()
    elif isinstance(policy, str):
        policy = tf.keras.mixed_precision.Policy(resolve_precision(policy))
    if policy.compute_dtype != "float16":
        return optimizer
    if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
        return optimizer
    return tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
