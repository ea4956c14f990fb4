"""The export's settings: one frozen :class:`ExportConfig`; each field is a ``python -m export.export_model``
flag with the help text given in its :func:`~infnet_tf.config_flags.setting`, and the default of the
same keyword argument of :func:`export.exporter.export_model` / ``export_from_checkpoint`` /
``export_from_trainer``. Importing this module does not import TensorFlow (``--help`` answers first).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from export.warmup import MAX_WARMUP_RECORDS
from infnet_tf.config_flags import setting

# Compute precision of the exported graph: a Keras policy, or "trained" for the training job's.
SERVING_PRECISIONS = ("float32", "trained", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    model_name: str = setting("infnet", "Model name: the directory under --export_base and TF Serving's model name.")
    keep: int = setting(5, "Keep the newest N published versions (older ones are deleted); >= 1.")
    gate_metric_threshold: float = setting(0.01, "Reject the candidate if its held-out mean AUC is worse than the "
                                                 "published version's by more than this; >= 0.")
    holdout: str | None = setting(None, "Held-out partition directory (or file pattern) for the gate; default: the "
                                        "newest complete partition of <data>/valid.")
    holdout_max_rows: int = setting(10_000, "Score the gate on at most this many held-out rows; >= 1.")
    precision: str = setting("float32", "Compute precision of the exported graph: float32 (fastest on CPU serving "
                                        "hosts), or 'trained' for the training policy. Outputs are float32 either "
                                        "way.", choices=SERVING_PRECISIONS)
    warmup_records: int = setting(32, f"PredictionLog warmup records to write (1..{MAX_WARMUP_RECORDS}).")
    serve_versions: int = setting(1, "models.config version policy: serve the latest N versions; >= 1.")
    force: bool = setting(False, "Export even when the newest published version was made from the same checkpoint "
                                 "(same weights, transform artifact and precision); without it such a rerun prints "
                                 "which version that is and exits 0 without writing.")

    def __post_init__(self):
        check_settings(**dataclasses.asdict(self))


def check_settings(**settings: Any) -> None:
    """Raise ``ValueError`` naming the flag for a setting out of its range (those given; by field name)."""
    def fail(name: str, what: str) -> None:
        raise ValueError(f"--{name} must be {what}, got {settings[name]!r}")

    for name in ("keep", "holdout_max_rows", "serve_versions"):
        if name in settings and settings[name] < 1:
            fail(name, ">= 1")
    if "warmup_records" in settings and not 1 <= settings["warmup_records"] <= MAX_WARMUP_RECORDS:
        fail("warmup_records", f"in [1, {MAX_WARMUP_RECORDS}]")
    if "gate_metric_threshold" in settings and not settings["gate_metric_threshold"] >= 0:
        fail("gate_metric_threshold", ">= 0")
    if "precision" in settings and settings["precision"] not in SERVING_PRECISIONS:
        fail("precision", f"one of {'|'.join(SERVING_PRECISIONS)}")


DEFAULTS = ExportConfig()
