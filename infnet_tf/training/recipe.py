"""The default training recipe: settings that follow the data instead of needing a tune.

* **Batch size** (``batch_size=0``, the default): the largest power of two ≤ train rows / 16, clamped
  to [256, 1024]; a log big enough for at least 160 steps per epoch at a larger power of two gets
  that one, up to the paper's 4096. So a 4k-row train split trains with batch 256, 16k–328k rows with
  1024 (a 171k-row one: 168 steps per epoch), 328k rows with 2048 and 655k rows and more with 4096.
  Measured (bench/REPORT.md, 3 seeds, early stopping): on the real KuaiRand dev log (19.7k train rows)
  batch 1024 beat 256 for INFNet (+0.003 click / +0.007 long_view AUC) and for DCNv2 (+0.011 /
  +0.009) — small logs overfit their id embeddings within one or two epochs, and fewer, larger steps
  generalise better; on the bundled 200k sample (171k rows) 1024 beat 4096 for both (mean +0.0035
  INFNet, +0.0025 DCNv2: 42 steps per epoch were too few for INFNet to learn in). The train rows
  come from the partitions' manifests (:func:`infnet_tf.input.expected_rows`); without them, 4096.
* Batch mode trains up to ``epochs`` rounds and stops after ``early_stopping_patience`` rounds
  without a better mean valid AUC, restoring the best round (:mod:`infnet_tf.training.batch`).

:func:`resolve` turns a :class:`~infnet_tf.training.config.TrainConfig` with automatic settings
into a concrete one; the trainer only ever sees concrete settings, and ``trainer_config.json``
records them.
"""
from __future__ import annotations

from infnet_tf.training.config import TrainConfig

MIN_BATCH, SMALL_LOG_BATCH, MAX_BATCH = 256, 1024, 4096
ROWS_PER_EXAMPLE_OF_BATCH = 16      # small logs: batch ~ rows / 16 (~16 steps per epoch at most)
MIN_STEPS_PER_EPOCH = 160           # large logs: a batch above 1024 only when an epoch keeps this many


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def auto_batch_size(train_rows: int | None) -> int:
    """The recipe's batch size for ``train_rows`` rows (None: unknown -> the paper's 4096)."""
    if not train_rows or train_rows < 0:
        return MAX_BATCH
    small = min(SMALL_LOG_BATCH, max(MIN_BATCH, _pow2_floor(train_rows // ROWS_PER_EXAMPLE_OF_BATCH)))
    large = min(MAX_BATCH, _pow2_floor(train_rows // MIN_STEPS_PER_EPOCH))
    return int(max(small, large))


def resolve(config: TrainConfig, data_dir: str | None, log=print) -> TrainConfig:
    """``config`` with ``batch_size=0`` replaced by :func:`auto_batch_size` of ``<data_dir>/train``."""
    if config.batch_size:
        return config
    rows = None
    if data_dir:
        from infnet_tf.input import expected_rows

        rows = expected_rows(f"{data_dir.rstrip('/')}/train")
    batch = auto_batch_size(rows)
    known = f"{rows:,} train rows" if rows is not None else "train rows unknown (no partition manifests)"
    log(f"recipe: batch size {batch} ({known}; --batch_size sets it)")
    return config.replace(batch_size=batch)
