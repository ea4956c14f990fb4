"""Exact ranking metrics per task, computed from collected predictions (NumPy, no TensorFlow).

* **AUC**: rank-based (Mann-Whitney U); tied scores get their average rank, so a tie between a
  positive and a negative counts one half.
* **GAUC**: AUC per user, averaged over the users that have both a positive and a negative
  example. ``gauc`` weights users uniformly (as in the INFNet paper); ``gauc_impression`` weights
  each user by their number of labelled impressions (the other common definition).
* **LogLoss**: mean binary cross-entropy, probabilities clipped to ``[1e-7, 1 - 1e-7]``.
* **Calibration**: mean prediction and mean label (their ratio should be near 1).

Labels are 0/1; a label of -1 (missing) excludes the example from that task's metrics only.
A metric that is undefined (e.g. AUC with a single class) is NaN.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from infnet_tf.data.keys import MISSING_LABEL

EPS = 1e-7
METRIC_NAMES = ("auc", "gauc", "gauc_impression", "logloss", "pred_mean", "label_mean", "count")


def _average_ranks(sorted_values: np.ndarray, group_starts: np.ndarray | None = None) -> np.ndarray:
    """1-based ranks of an already sorted array, ties sharing their average rank.

    With ``group_starts`` (sorted start indices of groups, e.g. users), ranks restart at 1 in each
    group and ties are only looked for inside a group.
    """
    n = sorted_values.shape[0]
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = sorted_values[1:] != sorted_values[:-1]
    if group_starts is not None:
        new_run[group_starts] = True
    run_starts = np.flatnonzero(new_run)
    run_ends = np.append(run_starts[1:], n)  # exclusive
    run_rank = (run_starts + 1 + run_ends) / 2.0  # average of positions run_start+1 .. run_end
    ranks = np.repeat(run_rank, run_ends - run_starts)
    if group_starts is not None:
        group_sizes = np.diff(np.append(group_starts, n))
        ranks -= np.repeat(group_starts, group_sizes)
    return ranks


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC of 0/1 ``labels`` against ``scores`` (ties averaged); NaN with one class."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(np.sum(labels == 1))
    n_neg = labels.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = _average_ranks(scores[order])
    rank_sum = float(np.sum(ranks[labels[order] == 1]))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def per_user_auc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, impressions) of every user that has both classes, vectorised over users."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    _, user_idx = np.unique(np.asarray(users), return_inverse=True)
    order = np.lexsort((scores, user_idx))  # by user, then by score
    user_sorted = user_idx[order]
    starts = np.flatnonzero(np.r_[True, user_sorted[1:] != user_sorted[:-1]])
    ranks = _average_ranks(scores[order], group_starts=starts)
    pos = (labels[order] == 1).astype(np.float64)
    n = np.add.reduceat(np.ones_like(pos), starts)
    n_pos = np.add.reduceat(pos, starts)
    n_neg = n - n_pos
    rank_sum = np.add.reduceat(ranks * pos, starts)
    both = (n_pos > 0) & (n_neg > 0)
    user_auc = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (n_pos[both] * n_neg[both])
    return user_auc, n[both]


def gauc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> tuple[float, float]:
    """(user-uniform GAUC, impression-weighted GAUC); NaN when no user has both classes."""
    user_auc, weight = per_user_auc(labels, scores, users)
    if user_auc.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(user_auc)), float(np.sum(user_auc * weight) / np.sum(weight))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy; NaN for no examples."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.size == 0:
        return float("nan")
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0 - EPS)
    return float(-np.mean(labels * np.log(p) + (1.0 - labels) * np.log1p(-p)))


def task_metrics(labels: np.ndarray, probs: np.ndarray, users: np.ndarray | None = None) -> dict:
    """All metrics of one task; examples with label -1 are left out."""
    labels = np.asarray(labels).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    keep = labels != MISSING_LABEL
    labels, probs = labels[keep], probs[keep]
    count = int(labels.size)
    g_uniform, g_impression = (gauc(labels, probs, np.asarray(users).reshape(-1)[keep])
                               if users is not None else (float("nan"), float("nan")))
    return {
        "auc": auc(labels, probs),
        "gauc": g_uniform,
        "gauc_impression": g_impression,
        "logloss": logloss(labels, probs),
        "pred_mean": float(np.mean(probs)) if count else float("nan"),
        "label_mean": float(np.mean(labels)) if count else float("nan"),
        "count": count,
    }


class MetricCollector:
    """Accumulates predictions, labels and user keys over batches; :meth:`result` is exact."""

    def __init__(self, task_names: Iterable[str]):
        self.task_names = tuple(task_names)
        self.reset()

    def reset(self) -> None:
        self._probs: dict[str, list[np.ndarray]] = {t: [] for t in self.task_names}
        self._labels: dict[str, list[np.ndarray]] = {t: [] for t in self.task_names}
        self._users: list[np.ndarray] = []
        self.num_examples = 0

    def update(self, probs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
               users: np.ndarray | None = None) -> None:
        """Add one batch: ``{task: prob [B]}``, ``{task: label [B]}`` and user keys ``[B]``."""
        size = None
        for t in self.task_names:
            p = np.asarray(probs[t], dtype=np.float32).reshape(-1)
            y = np.asarray(labels[t]).reshape(-1).astype(np.int64)
            if p.shape != y.shape or (size is not None and p.shape[0] != size):
                raise ValueError(f"MetricCollector.update: task {t!r}: {p.shape[0]} predictions vs "
                                 f"{y.shape[0]} labels (batch size {size})")
            size = p.shape[0]
            self._probs[t].append(p)
            self._labels[t].append(y)
        if users is not None:
            users = np.asarray(users).reshape(-1)
            if users.shape[0] != size:
                raise ValueError(f"MetricCollector.update: {users.shape[0]} user keys for {size} examples")
            self._users.append(users)
        self.num_examples += size or 0

    def result(self) -> dict[str, dict]:
        """``{task: {auc, gauc, gauc_impression, logloss, pred_mean, label_mean, count}}``."""
        users = np.concatenate(self._users) if self._users else None
        if users is not None and users.shape[0] != self.num_examples:
            raise ValueError("MetricCollector: user keys were given for some batches only")
        out = {}
        for t in self.task_names:
            labels = np.concatenate(self._labels[t]) if self._labels[t] else np.zeros([0], np.int64)
            probs = np.concatenate(self._probs[t]) if self._probs[t] else np.zeros([0], np.float32)
            out[t] = task_metrics(labels, probs, users)
        return out


def mean_auc(results: Mapping[str, Mapping[str, float]]) -> float:
    """Mean AUC over the tasks whose AUC is defined (the model-selection criterion); NaN if none."""
    values = [r["auc"] for r in results.values() if np.isfinite(r["auc"])]
    return float(np.mean(values)) if values else float("nan")
