"""TensorBoard output under ``<model_dir>/tensorboard``: scalars and the attention heat map.

``scalars("valid", {"click": {"auc": 0.71, ...}, "loss": 0.4}, step)`` writes ``valid/click/auc``
and ``valid/loss``; non-numeric and non-finite values are skipped. :func:`heatmap_png` renders a
matrix (e.g. task hubs × token groups, the paper's Figure 5) as a PNG with matplotlib.
"""
from __future__ import annotations

import io
import math
import numbers
from typing import Mapping, Sequence

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf


def flatten_scalars(prefix: str, metrics: Mapping, out: dict | None = None) -> dict[str, float]:
    """``{"a": {"b": 1.0}}`` -> ``{"prefix/a/b": 1.0}`` (finite numbers only)."""
    out = {} if out is None else out
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flatten_scalars(name, value, out)
        elif isinstance(value, (numbers.Number, np.number)) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                out[name] = float(value)
    return out


def heatmap_png(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
                title: str = "") -> bytes:
    """A labelled heat map of a 2-D matrix as PNG bytes (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * matrix.shape[1], 1.0 + 0.5 * matrix.shape[0]), dpi=80)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), labels=list(col_labels), rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]), labels=list(row_labels))
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


class SummaryWriter:
    """A lazily opened ``tf.summary`` file writer (nothing is written until the first call)."""

    def __init__(self, logdir: str, enabled: bool = True):
        self.logdir = logdir
        self.enabled = enabled
        self._writer = None

    def _get(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def scalars(self, prefix: str, metrics: Mapping, step: int) -> dict[str, float]:
        values = flatten_scalars(prefix, metrics)
        if self.enabled and values:
            with self._get().as_default(step=int(step)):
                for name, value in values.items():
                    tf.summary.scalar(name, value)
        return values

    def image(self, name: str, png: bytes, step: int) -> None:
        if self.enabled:
            with self._get().as_default(step=int(step)):
                tf.summary.image(name, tf.io.decode_png(png)[tf.newaxis], max_outputs=1)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
