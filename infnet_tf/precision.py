"""Mixed precision (``--precision=auto|float32|mixed_float16|mixed_bfloat16``).

Compute runs in float16 (GPU) or bfloat16; the layers keep softmax, LayerNorm statistics, the loss
and the output probabilities in float32 themselves. ``auto`` picks ``mixed_float16`` when a GPU is
visible and ``float32`` otherwise. Under float16 the optimizer must scale the loss:
:func:`wrap_optimizer` wraps it in a ``LossScaleOptimizer``.

On a CPU with native bfloat16 instructions ``mixed_bfloat16`` can be faster: on an AMD EPYC with
AVX512_BF16 it trained INFNet's defaults 1.3x faster per step and 1.14-1.27x per run at the same test AUC
(bench/REPORT.md, twenty-seventh session), while an earlier Intel machine with AMX-BF16 saw no gain for an
older model. ``auto`` stays ``float32`` on CPU (the gain depends on the CPU, and the export serves
float32); :func:`bfloat16_hint` says so when ``auto`` runs on such a CPU.
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


CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")   # /proc/cpuinfo names of native bfloat16 instructions


def cpu_bfloat16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The native bfloat16 instruction sets in the first ``flags`` line of ``cpuinfo`` (Linux); () when
    there are none or the file cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    listed = set(line.partition(":")[2].split())
                    return tuple(flag for flag in CPU_BFLOAT16_FLAGS if flag in listed)
    except OSError:
        pass
    return ()


def bfloat16_hint(requested: str, resolved: str, cpu_flags: tuple[str, ...]) -> str | None:
    """A line for the log when ``auto`` chose float32 on a CPU listing ``cpu_flags`` (else None)."""
    if requested != "auto" or resolved != "float32" or not cpu_flags:
        return None
    return (f"precision: float32 (auto without a GPU); this CPU has {'/'.join(cpu_flags)}: "
            "--precision=mixed_bfloat16 trained INFNet 1.14-1.27x faster per run at the same test AUC on an AVX512_BF16 "
            "CPU (bench/REPORT.md); time it here with python -m bench.model_efficiency --compare_bf16 --d=64")


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
