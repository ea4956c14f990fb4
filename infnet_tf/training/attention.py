"""The paper's Figure 5: task hubs (rows) × input tokens (columns) attention of the last block.

``model.attention_weights(features)`` gives, per block, ``{view: [B, heads, n_task_hubs, N_view]}``
with views ``cat``, ``seq/<type>`` and ``task``. The table averages the last block over batch and
heads, keeps one column per categorical field and per task token, and sums each behaviour type's
sequence positions into one column (as the paper does "for clarity").
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from infnet_tf.data.layout import FeatureLayout


def _row_labels(n_rows: int, layout: FeatureLayout, specific: bool) -> list[str]:
    tasks = list(layout.task_names)
    if specific and n_rows >= len(tasks):
        return [f"task:{t}" for t in tasks] + [f"shared {i}" for i in range(n_rows - len(tasks))]
    return [f"shared {i}" for i in range(n_rows)]


def _columns(view: str, weights: np.ndarray, layout: FeatureLayout) -> tuple[np.ndarray, list[str]]:
    """[rows, cols] columns and labels for one view of ``[rows, N_view]`` weights."""
    n = weights.shape[-1]
    if view.startswith("seq"):
        return weights.sum(axis=-1, keepdims=True), [view]
    names = {"cat": [f.name for f in layout.categorical], "task": [f"task:{t}" for t in layout.task_names]}
    labels = names.get(view, [])
    if len(labels) != n:
        labels = [f"{view}[{j}]" for j in range(n)]
    return weights, labels


def attention_table(weights_per_block: Sequence[Mapping[str, object]], layout: FeatureLayout,
                    task_hubs_specific: bool = True) -> tuple[np.ndarray, list[str], list[str]]:
    """``(matrix [task hubs, columns], row labels, column labels)`` for the last block."""
    if not weights_per_block:
        raise ValueError("attention_table: the model returned no attention weights")
    last = weights_per_block[-1]
    blocks, col_labels, n_rows = [], [], None
    order = {"cat": 0, "seq": 1, "task": 2}
    for view, w in sorted(last.items(), key=lambda kv: order.get(kv[0].split("/")[0], 3)):
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 4:
            raise ValueError(f"attention_table: view {view!r}: expected [B, heads, hubs, N], got {w.shape}")
        mean = w.mean(axis=(0, 1))  # [hubs, N]
        n_rows = mean.shape[0] if n_rows is None else n_rows
        cols, labels = _columns(view, mean, layout)
        blocks.append(cols)
        col_labels += labels
    return np.concatenate(blocks, axis=1), _row_labels(n_rows, layout, task_hubs_specific), col_labels
