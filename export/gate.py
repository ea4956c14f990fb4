"""The validation gate: may a candidate SavedModel version be published?

A candidate is published only if

1. every prediction it makes on the validation rows is finite (no NaN/inf from any task head), and
2. its held-out metric — the mean over tasks of AUC on a held-out partition (tasks whose AUC is
   undefined, e.g. a single class, are left out of the mean) — is not worse than the currently
   published version's metric *on the same rows* by more than ``threshold``:
   ``candidate >= published - threshold``.

When there is no published version yet, or either metric is undefined (no held-out partition, or no
task with both classes), only rule 1 applies and the decision says why the comparison was skipped.
A rejected candidate is kept aside (``<model>/_rejected/<version>/`` with the reason), never deleted.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from infnet_tf import metrics as _metrics
from infnet_tf.data.keys import MISSING_LABEL


@dataclasses.dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str
    candidate_metric: float | None = None
    published_metric: float | None = None
    published_version: int | None = None
    threshold: float = 0.0
    per_task: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["per_task"] = dict(self.per_task)
        return out


def nonfinite_count(predictions: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(number of non-finite values, total values) over all tasks."""
    bad = total = 0
    for values in predictions.values():
        values = np.asarray(values)
        bad += int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        total += int(np.size(values))
    return bad, total


def task_aucs(labels: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """AUC per task on rows whose label is not missing (-1); NaN where undefined."""
    out = {}
    for task, scores in predictions.items():
        y = np.asarray(labels[task])
        keep = y != MISSING_LABEL
        out[task] = float(_metrics.auc(y[keep], np.asarray(scores)[keep])) if np.any(keep) else float("nan")
    return out


def mean_auc(labels: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray]) -> float:
    """Mean AUC over the tasks where it is defined; NaN when it is defined for none."""
    values = [v for v in task_aucs(labels, predictions).values() if math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def decide(predictions: Mapping[str, np.ndarray], *, candidate_metric: float | None,
           published_metric: float | None, published_version: int | None, threshold: float,
           per_task: Mapping[str, float] | None = None) -> GateDecision:
    """Apply the two rules of the module docstring."""
    if threshold < 0 or not math.isfinite(threshold):
        raise ValueError(f"gate threshold must be a finite number >= 0, got {threshold!r}")
    common = dict(candidate_metric=candidate_metric, published_metric=published_metric,
                  published_version=published_version, threshold=threshold, per_task=dict(per_task or {}))
    bad, total = nonfinite_count(predictions)
    if total == 0:
        return GateDecision(False, "no predictions were made on the validation rows", **common)
    if bad:
        return GateDecision(False, f"non-finite predictions: {bad} of {total} values are NaN or inf", **common)
    if published_version is None:
        return GateDecision(True, "first version: predictions finite, nothing published to compare with",
                            **common)
    if not (_finite(candidate_metric) and _finite(published_metric)):
        return GateDecision(True, "predictions finite; held-out metric undefined for the candidate or the "
                                  f"published version {published_version} (no held-out rows, or no task with "
                                  "both classes), so only finiteness was checked", **common)
    assert candidate_metric is not None and published_metric is not None
    if candidate_metric < published_metric - threshold:
        return GateDecision(
            False, f"held-out mean AUC {candidate_metric:.5f} is worse than published version "
                   f"{published_version}'s {published_metric:.5f} by {published_metric - candidate_metric:.5f} "
                   f"(> threshold {threshold})", **common)
    return GateDecision(True, f"held-out mean AUC {candidate_metric:.5f} vs published version {published_version}'s "
                              f"{published_metric:.5f} (threshold {threshold}); predictions finite", **common)
