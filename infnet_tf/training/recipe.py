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
* **Weight average** (``weight_average_decay=-1``, the default): a window of about one round,
  decay ``1 - 1 / steps per round`` (steps per round: the train rows over the batch size, or
  ``train_steps`` over ``epochs``), never below 0.95. Measured (bench/REPORT.md rounds 7 and 12): on
  the real log (~20 steps per epoch) 0.95 — a one-epoch window — beat 0.9 and 0.98; on the bundled
  200k sample (168 steps per epoch) 0.994 beat 0.95 for every model (+0.0005 to +0.0027 mean AUC);
  on the 50k sample (42 steps, 0.976) within noise, except DCNv2 −0.002. Streaming mode (no epochs) and
  unknown train rows keep 0.95.

:func:`resolve` turns a :class:`~infnet_tf.training.config.TrainConfig` with automatic settings
into a concrete one; the trainer only ever sees concrete settings, and ``trainer_config.json``
records them.
"""
from __future__ import annotations

from infnet_tf.training.config import AUTO_WEIGHT_AVERAGE, TrainConfig

MIN_BATCH, SMALL_LOG_BATCH, MAX_BATCH = 256, 1024, 4096
ROWS_PER_EXAMPLE_OF_BATCH = 16      # small logs: batch ~ rows / 16 (~16 steps per epoch at most)
MIN_STEPS_PER_EPOCH = 160           # large logs: a batch above 1024 only when an epoch keeps this many
MIN_WEIGHT_AVERAGE_DECAY = 0.95     # the decay measured best at ~20 steps per epoch (round 7)


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def auto_batch_size(train_rows: int | None) -> int:
    """The recipe's batch size for ``train_rows`` rows (None: unknown -> the paper's 4096)."""
    if not train_rows or train_rows < 0:
        return MAX_BATCH
    small = min(SMALL_LOG_BATCH, max(MIN_BATCH, _pow2_floor(train_rows // ROWS_PER_EXAMPLE_OF_BATCH)))
    large = min(MAX_BATCH, _pow2_floor(train_rows // MIN_STEPS_PER_EPOCH))
    return int(max(small, large))


def auto_weight_average_decay(steps_per_round: int | None) -> float:
    """The recipe's weight-average decay for rounds of ``steps_per_round`` steps (None: unknown ->
    0.95): ``1 - 1 / steps_per_round`` (a window of about one round), at least 0.95."""
    if not steps_per_round or steps_per_round < 1:
        return MIN_WEIGHT_AVERAGE_DECAY
    return max(MIN_WEIGHT_AVERAGE_DECAY, 1.0 - 1.0 / steps_per_round)


def resolve(config: TrainConfig, data_dir: str | None, log=print, mode: str = "batch") -> TrainConfig:
    """``config`` with its automatic settings made concrete from ``<data_dir>/train``: ``batch_size=0``
    -> :func:`auto_batch_size` of the train rows, ``weight_average_decay=-1`` ->
    :func:`auto_weight_average_decay` of the steps per round (``mode="batch"``; streaming: 0.95)."""
    auto_batch = not config.batch_size
    auto_average = config.weight_average_decay == AUTO_WEIGHT_AVERAGE
    if not auto_batch and not auto_average:
        return config
    rows = None
    if data_dir:
        from infnet_tf.input import expected_rows

        rows = expected_rows(f"{data_dir.rstrip('/')}/train")
    known = (f"{rows:,} train rows" if rows is not None else
             "train rows unknown (no partition manifests)" if data_dir else "no data to size it by")
    changes = {}
    if auto_batch:
        changes["batch_size"] = auto_batch_size(rows)
        log(f"recipe: batch size {changes['batch_size']} ({known}; --batch_size sets it)")
    if auto_average:
        batch = changes.get("batch_size", config.batch_size)
        steps = None
        if mode == "batch":
            if config.train_steps:
                steps = -(-config.train_steps // config.epochs)
            elif rows:
                steps = -(-rows // batch)
        decay = auto_weight_average_decay(steps)
        if not steps:
            why = "streaming mode" if mode != "batch" else known
        elif 1.0 - 1.0 / steps >= MIN_WEIGHT_AVERAGE_DECAY:
            why = f"a window of one round of {steps:,} steps"
        else:
            why = f"rounds of {steps:,} steps; at least {MIN_WEIGHT_AVERAGE_DECAY}"
        log(f"recipe: weight average decay {decay:.4g} ({why}; --weight_average_decay sets it)")
        changes["weight_average_decay"] = decay
    return config.replace(**changes)
