"""TensorBoard output under ``<model_dir>/tensorboard``: scalars and the attention heat map.

``scalars("valid", {"click": {"auc": 0.71, ...}, "loss": 0.4}, step)`` writes ``valid/click/auc``
and ``valid/loss``; non-numeric and non-finite values are skipped. :func:`heatmap_png` renders a
matrix (e.g. task hubs × token groups, the paper's Figure 5) as a PNG with matplotlib.

Images are drawn off the training thread: ``image_later(name, render, step)`` hands ``render`` (a
function returning PNG bytes) to one background thread, which draws and writes it while training goes
on; ``flush`` (every checkpoint, ``metrics.json``) first waits for the images handed over before it.
Measured on a real 20k-row log: the two attention images of a batch run held the training thread
for 1.1-1.4 s each (0.9-1.2 s of them matplotlib), 3.8% of a 65 s run; 0.1-0.16 s each now
(bench/REPORT.md, twenty-sixth session).
"""
from __future__ import annotations

import concurrent.futures
import io
import math
import numbers
import sys
import threading
from typing import Callable, Mapping, Sequence

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
    """A labelled heat map of a 2-D matrix as PNG bytes (matplotlib's Agg canvas).

    Uses a ``Figure`` of its own, not ``pyplot`` (whose global figure registry is not thread-safe), so
    it may run on a background thread (:meth:`SummaryWriter.image_later`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix, dtype=np.float64)
    fig = Figure(figsize=(1.2 + 0.9 * matrix.shape[1], 1.0 + 0.5 * matrix.shape[0]), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
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
    return buf.getvalue()


class SummaryWriter:
    """A lazily opened ``tf.summary`` file writer (nothing is written until the first call).

    ``image_later`` draws and writes images on one background thread (started on first use);
    ``flush`` waits for them."""

    def __init__(self, logdir: str, enabled: bool = True):
        self.logdir = logdir
        self.enabled = enabled
        self._writer = None
        self._lock = threading.Lock()   # the writer is opened once, by whichever thread asks first
        self._drawer: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: list[concurrent.futures.Future] = []

    def _get(self):
        with self._lock:
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

    def image_later(self, name: str, render: Callable[[], bytes | None], step: int) -> None:
        """Call ``render()`` (PNG bytes, or None for no image) on the background thread and write the
        result as image ``name`` at ``step``. A failure is printed (``summaries: image <name> at step
        <step> not written: <error>``), not raised: an image never stops training."""
        if not self.enabled:
            return
        if self._drawer is None:
            self._drawer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="summary-images")
        step = int(step)

        def draw() -> None:
            try:
                png = render()
                if png is not None:
                    self.image(name, png, step)
            except Exception as exc:  # noqa: BLE001 - reported, and training goes on
                print(f"summaries: image {name} at step {step} not written: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)

        self._pending = [f for f in self._pending if not f.done()] + [self._drawer.submit(draw)]

    def wait_for_images(self) -> None:
        """Block until every image handed to :meth:`image_later` is written (or has failed)."""
        pending, self._pending = self._pending, []
        concurrent.futures.wait(pending)

    def flush(self) -> None:
        self.wait_for_images()
        if self._writer is not None:
            self._writer.flush()
