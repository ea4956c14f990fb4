"""Batch mode: rounds of training on ``train/``, evaluation on ``valid/`` after each, the best
checkpoint by mean valid AUC, a final evaluation on ``test/`` with the best weights.

* ``train_steps == 0``: each round is one full pass (epoch) over ``train/``; at most ``epochs`` rounds.
* ``train_steps > 0``: exactly ``train_steps`` global steps over the repeated ``train/`` data,
  split into ``epochs`` evaluation rounds. A model_dir that already holds checkpoints continues
  from the latest one (the step budget counts from step 0; epoch mode runs its epochs again).

Early stopping: with valid data and ``early_stopping_patience`` P > 0, training stops after P rounds
in a row without a better mean valid AUC; the best round's weights are restored either way. With
``weight_average_decay`` on (the default) the evaluations, hence the best round, are of the weights'
moving average (:mod:`infnet_tf.training.weight_average`), which the checkpoints hold beside them.

Each ``history`` entry of ``metrics.json`` records the round's ``wall_seconds``: training, the
checkpoint and the valid evaluation (``train.seconds`` is the training pass alone). valid/ is kept
in memory, parsed, after its first evaluation when it fits ``cache_valid_mb``. In one process the next
round's input (iterator, first batch) starts on a thread while a round checkpoints and evaluates
(:meth:`Trainer.start_pass`): the same batches, without the wait for them.

Every round saves a checkpoint (``<model_dir>/checkpoints``); a round with a better mean valid
AUC is also copied to ``<model_dir>/best`` (kept apart so rotation never deletes it;
:mod:`infnet_tf.training.best_checkpoint`), and its path is recorded in ``<model_dir>/metrics.json`` together with the per-task metrics of every split.
"""
from __future__ import annotations

import math
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)

from infnet_tf.data import fs
from infnet_tf.data.dataset_dir import SPLITS
from infnet_tf.input import check_rows, make_dataset, naming_bad_files, resolve_files
from infnet_tf.metrics import mean_auc
from infnet_tf.training.best_checkpoint import BEST_SUBDIR, keep_best
from infnet_tf.training.coordinated import per_worker_dataset, train_scheduled
from infnet_tf.training.evaluation import eval_dataset, evaluate_dir, evaluate_split, has_data, write_metrics
from infnet_tf.training.started_input import StartedInput
from infnet_tf.training.trainer import Trainer, log


def _round_line(round_no: int, rounds: int, stats: dict, valid_auc: float | None) -> str:
    parts = [f"Epoch {round_no}/{rounds}", f"{stats['steps']} steps", f"{stats['seconds']:.0f}s",
             f"loss: {stats['loss']:.4f}"]
    parts += [f"{t}_loss: {v:.4f}" for t, v in stats["task_losses"].items()]
    parts.append(f"{stats['examples_per_sec']:,.0f} ex/s")
    if valid_auc is not None:
        parts.append(f"valid_mean_auc: {valid_auc:.4f}")
    return " - ".join(parts)


def _train_dataset(trainer: Trainer, train_dir: str, round_no: int) -> "tf.data.Dataset":
    """Round ``round_no``'s training input read by this process: this worker's share of the train
    files (all of them for one process and for the parameter-server chief, which schedules each
    batch on a worker), shuffled with the round's seed; repeated under ``--train_steps``."""
    cfg = trainer.config
    files, options = trainer.input_files(resolve_files(train_dir))  # this worker's share
    return make_dataset(files, trainer.layout, cfg.batch_size, shuffle=cfg.shuffle,
                        repeat=bool(cfg.train_steps), deterministic=cfg.deterministic,
                        seed=cfg.seed + round_no, shuffle_buffer=cfg.shuffle_buffer or None,
                        with_meta=False).with_options(options)


def _round(trainer: Trainer, train_dir: str, round_no: int, max_steps: int | None,
           started: StartedInput | None = None) -> dict:
    """One round read by this process (``started``: its input, already started by
    :meth:`Trainer.start_pass`): one full pass (checked against the manifests) or ``max_steps`` steps."""
    cfg = trainer.config
    train_data = started if started is not None else _train_dataset(trainer, train_dir, round_no)
    with naming_bad_files(train_dir, f"training epoch {round_no}"):
        stats = trainer.train_on(train_data, max_steps=max_steps)
    if not cfg.train_steps:      # a full pass: every row the manifests record was read
        check_rows(train_dir, stats["examples"], "training pass over")
    return stats


def _scheduled_round(trainer: Trainer, train_dir: str, max_steps: int) -> dict:
    """One ``--train_steps`` round under parameter_server: ``max_steps`` steps over every worker's
    own repeated, differently shuffled train files (see :mod:`infnet_tf.training.coordinated`)."""
    cfg = trainer.config
    files = resolve_files(train_dir)
    dataset = per_worker_dataset(trainer, lambda: make_dataset(
        files, trainer.layout, cfg.batch_size, shuffle=True, repeat=True, deterministic=False, seed=None,
        shuffle_buffer=cfg.shuffle_buffer or None))
    return train_scheduled(trainer, dataset, max_steps)


def run_batch(trainer: Trainer, data_dir: str) -> dict:
    """Train, select the best checkpoint on valid/, evaluate it on test/; returns metrics.json's content."""
    cfg, layout = trainer.config, trainer.layout
    data_dir = data_dir.rstrip("/")
    train_dir, valid_dir, test_dir = (fs.join(data_dir, s) for s in SPLITS)
    has_valid, has_test = has_data(valid_dir), has_data(test_dir)
    if not has_valid:
        log(f"batch: no complete partitions under {valid_dir}: no model selection, the last round is kept")
    if not has_test:
        log(f"batch: no complete partitions under {test_dir}: no test evaluation")

    if trainer.restore_latest():
        log(f"batch: continuing from global step {trainer.global_step}")
    best_dir = trainer.worker_path(BEST_SUBDIR)
    valid_data = eval_dataset(trainer, valid_dir, cache_mb=cfg.cache_valid_mb) if has_valid else None
    rounds = cfg.epochs
    steps_per_round = math.ceil(cfg.train_steps / rounds) if cfg.train_steps else None
    best = {"valid_mean_auc": -math.inf, "checkpoint": None}
    history, valid_metrics, start = [], None, time.perf_counter()
    # one process: the next round's input starts while this round checkpoints and evaluates
    ahead = trainer.is_single_process
    next_input = None
    try:
        for round_no in range(1, rounds + 1):
            max_steps = None
            if cfg.train_steps:
                max_steps = min(steps_per_round, cfg.train_steps - trainer.global_step)
                if max_steps <= 0:
                    log(f"batch: reached --train_steps={cfg.train_steps}")
                    break
            log(f"Epoch {round_no}/{rounds}")
            round_start = time.perf_counter()
            if trainer.coordinator is not None and max_steps is not None:   # parameter_server, --train_steps
                stats = _scheduled_round(trainer, train_dir, max_steps)
            else:   # one process, each worker of several, or a parameter-server epoch fed by the chief
                stats = _round(trainer, train_dir, round_no, max_steps, started=next_input)
                next_input = None
            if ahead and round_no < rounds and (not cfg.train_steps or trainer.global_step < cfg.train_steps):
                next_input = trainer.start_pass(_train_dataset(trainer, train_dir, round_no + 1))
            checkpoint = trainer.save_checkpoint()
            valid_auc = None
            entry = {"epoch": round_no, "global_step": trainer.global_step, "train": stats,
                     "checkpoint": checkpoint}
            if has_valid:
                valid_metrics = evaluate_dir(trainer, valid_dir, log_prefix="valid", attention=round_no == 1,
                                             dataset=valid_data)
                valid_auc = mean_auc(valid_metrics)
                entry.update(valid=valid_metrics, valid_mean_auc=valid_auc)
                trainer.write_scalars("valid", {"mean_auc": valid_auc})
                if math.isfinite(valid_auc) and valid_auc > best["valid_mean_auc"]:
                    best = {"valid_mean_auc": valid_auc, "epoch": round_no, "global_step": trainer.global_step,
                            "checkpoint": keep_best(checkpoint, best_dir, trainer.global_step),
                            "valid": valid_metrics}
                    log(f"batch: new best mean valid AUC {valid_auc:.4f} -> {best['checkpoint']}")
            entry["wall_seconds"] = time.perf_counter() - round_start   # train + checkpoint + valid evaluation
            wall_rate = stats["examples"] / max(entry["wall_seconds"], 1e-9)
            trainer.write_scalars("epoch", {"loss": stats["loss"], "examples_per_sec": stats["examples_per_sec"],
                                            "wall_examples_per_sec": wall_rate})
            history.append(entry)
            log(_round_line(round_no, rounds, stats, valid_auc))
            stale = round_no - best.get("epoch", round_no)
            if has_valid and cfg.early_stopping_patience and stale >= cfg.early_stopping_patience:
                log(f"batch: early stop - mean valid AUC has not improved for {stale} round(s) "
                    f"(best {best['valid_mean_auc']:.4f} at round {best['epoch']}; --early_stopping_patience="
                    f"{cfg.early_stopping_patience})")
                break
    finally:   # a round that will not run (early stop, the last round, an error)
        if next_input is not None:
            next_input.close()

    if best["checkpoint"] is None:  # no valid data (or no defined AUC): keep the last weights
        best = {"valid_mean_auc": None, "epoch": len(history), "global_step": trainer.global_step,
                "checkpoint": trainer.latest_checkpoint, "valid": valid_metrics}
    elif best["global_step"] != trainer.global_step:
        trainer.restore(best["checkpoint"])
    result = {
        "model_dir": trainer.model_dir,
        "data": data_dir,
        "best": {k: v for k, v in best.items() if k != "valid"},
        "valid": best["valid"],
        "test": evaluate_split(trainer, data_dir, "test"),
        "history": history,
        "seconds": time.perf_counter() - start,
        "model_config": trainer.model_config.to_dict(),
        "train_config": cfg.to_dict(),
    }
    path = write_metrics(trainer, result)
    if path:
        log(f"batch: wrote {path} (best checkpoint {best['checkpoint']})")
    return result
