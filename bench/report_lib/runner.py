"""Model runs for the report: the batch training path (``Trainer`` + ``run_batch``), cached by config.

Every model run of every section goes through :func:`train_one`, a thin wrapper around the product's
batch mode — ``Trainer(layout, model_config, train_config, model_dir)`` then
``run_batch(trainer, data)`` with the TrainConfig of :meth:`SuiteConfig.train_config` — by default
the product's recipe (up to ``--max_epochs`` full passes over ``train/``, early stopping after
``--patience`` rounds without a better mean valid AUC, batch size from
:func:`infnet_tf.training.recipe.auto_batch_size` unless ``--batch_size`` is given), or with
``--steps`` > 0 a fixed budget of ``--steps`` steps in ``--rounds`` rounds. Either way ``valid/`` is
evaluated after each round, the best checkpoint by mean valid AUC is restored and evaluated on
``test/``. There is no second training loop here. The trainer's own output goes to ``<run>/train.log``.

Runs are keyed by (effective model config, train config incl. seed, data directory): a config that
two sections need (e.g. the full INFNet of the quality table, the ablation reference and the
default point of the hub sweep) is trained once. Each finished run leaves
``<run_dir>/runs/<model>-<key>/bench_run.json``; re-running the same command with the same
``--run_name`` picks finished runs up again (``--noresume`` retrains).

``--jobs=N`` (N > 1) trains up to N runs at once in worker processes (``spawn``), each with
``cores / N`` TensorFlow threads: small ranking models neither fill two cores from one process nor
trace their ``tf.function`` s in parallel, so two runs side by side finish sooner than one after
the other. Throughput numbers measured *inside* such runs are then shared-machine numbers; the
efficiency section measures alone, after the workers are gone.

The one deviation from the stock Trainer (:class:`BenchTrainer`): it does not render the attention
heat map into TensorBoard at every evaluation — the report draws Fig. 5 itself, once, from the
trained INFNet — which saves a few seconds per run.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from typing import Any, Mapping

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)

SUMMARY_FILE = "bench_run.json"
LOG_FILE = "train.log"
ATTENTION_BATCHES = 4


def _stamp(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress lines for long runs: elapsed time, run counter, ETA from the runs done so far."""

    def __init__(self, stream=None, jobs: int = 1, start_epoch: float | None = None):
        self.stream = stream or sys.stdout
        self.start_epoch = time.time() if start_epoch is None else start_epoch
        self.jobs = max(1, jobs)
        self.total = 0
        self.done = 0
        self.run_seconds: list[float] = []

    def elapsed(self) -> float:
        return time.time() - self.start_epoch

    def line(self, message: str) -> None:
        print(f"[bench {_stamp(self.elapsed())}] {message}", file=self.stream, flush=True)

    def plan(self, count: int) -> None:
        self.total += count

    def eta(self) -> str:
        left = max(self.total - self.done, 0)
        if not self.run_seconds or not left:
            return ""
        return f"; ~{_stamp(left * float(np.mean(self.run_seconds)) / self.jobs)} left for {left} planned run(s)"

    def run_done(self, seconds: float | None) -> None:
        self.done += 1
        if seconds is not None:
            self.run_seconds.append(seconds)


def canonical_model_config(config):
    """The config that decides what is built: INFNet with ``hubs=off`` *is* the all_to_all model."""
    if config.model == "infnet" and not config.hubs:
        config = config.replace(model="all_to_all")
    if config.model == "all_to_all":
        config = config.replace(hubs=False)
    return config


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value)}")


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, payload: Mapping) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    os.replace(tmp, path)


def _bench_trainer_class():
    from infnet_tf.training.trainer import Trainer

    class BenchTrainer(Trainer):
        """The product Trainer minus the per-evaluation TensorBoard attention image."""

        def log_attention(self, name, features, step=None) -> bool:  # noqa: D401
            return False

    return BenchTrainer


# -- one run (in this process or in a worker) ------------------------------------------------------
def train_one(suite, layout, label: str, config, seed: int, key: str, model_dir: str,
              attention: bool) -> dict:
    """Train ``config`` with ``seed`` through the batch mode; the run's summary (or its error)."""
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)  # a run that did not finish: start it again from scratch
    os.makedirs(model_dir, exist_ok=True)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    with open(os.path.join(model_dir, LOG_FILE), "w") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            summary = _train(suite, layout, label, config, seed, key, model_dir, attention)
        except Exception as exc:  # noqa: BLE001 - one failed run must not lose the whole report
            traceback.print_exc()
            summary = {"key": key, "label": label, "model": config.model, "seed": seed,
                       "model_config": config.to_dict(), "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()}
        finally:
            _cleanup()
    summary["wall_seconds"] = time.perf_counter() - start
    summary["cpu_seconds"] = _cpu_seconds() - cpu_start
    summary["log"] = os.path.join(model_dir, LOG_FILE)
    if "error" not in summary:
        _write_json(os.path.join(model_dir, SUMMARY_FILE), summary)
    return summary


def _train(suite, layout, label: str, config, seed: int, key: str, model_dir: str, attention: bool) -> dict:
    from infnet_tf.metrics import mean_auc
    from infnet_tf.models.cost import flops_per_example, param_count
    from infnet_tf.training.batch import run_batch

    from infnet_tf.training.recipe import resolve

    train_config = resolve(suite.train_config(seed), suite.data)  # already concrete: a no-op guard
    trainer = _bench_trainer_class()(layout, config, train_config, model_dir)
    result = run_batch(trainer, suite.data)
    history = result.get("history") or []
    best = result.get("best") or {}
    train_examples = sum(h["train"]["examples"] for h in history)
    train_seconds = sum(h["train"]["seconds"] for h in history)
    # throughput of the last round: after the first round's tracing / warm-up (input included)
    warm_rate = history[-1]["train"].get("examples_per_sec") if len(history) > 1 else None
    test, valid = result.get("test") or {}, result.get("valid") or {}
    summary = {
        "key": key, "label": label, "model": config.model, "seed": seed,
        "model_config": config.to_dict(), "train_config": train_config.to_dict(),
        "model_dir": model_dir,
        "params": param_count(trainer.model),
        "flops": float(flops_per_example(layout, config)),
        "test": test, "valid": valid,
        "test_mean_auc": mean_auc(test) if test else float("nan"),
        "test_mean_gauc": _mean_metric(test, "gauc"),
        "valid_mean_auc": mean_auc(valid) if valid else float("nan"),
        "best": result.get("best"),
        "batch_size": train_config.batch_size,
        # steps trained in all rounds (the trainer's step is the restored best round's afterwards)
        "train_steps": history[-1]["global_step"] if history else trainer.global_step,
        # rounds trained (full passes with the recipe protocol) and the one restored
        "epochs_trained": len(history),
        "best_epoch": best.get("epoch"),
        "best_step": best.get("global_step"),
        "stopped_early": bool(not train_config.train_steps and len(history) < train_config.epochs),
        "train_examples": train_examples,
        "train_seconds": train_seconds,
        "train_examples_per_sec": warm_rate,
        "train_examples_per_sec_all_rounds": train_examples / train_seconds if train_seconds > 0 else None,
        "valid_auc_by_round": [h.get("valid_mean_auc") for h in history],
        "eval_seconds": result.get("seconds", 0.0) - train_seconds,
    }
    if attention:
        summary["attention"] = attention_of(suite, layout, trainer, config)
    else:
        _drop_checkpoints(model_dir)
    return summary


def attention_of(suite, layout, trainer, config) -> dict:
    """Task hubs × token groups attention of the last block, averaged over a few test batches."""
    from infnet_tf.input import make_dataset, model_inputs
    from infnet_tf.training.attention import attention_table

    data = make_dataset(os.path.join(suite.data, "test"), layout, suite.eval_batch_size, shuffle=False,
                        repeat=False, deterministic=True)
    total, weight, rows, cols = None, 0, None, None
    try:
        for features, labels in data.take(ATTENTION_BATCHES):
            weights = trainer.model.attention_weights(model_inputs(layout, features))
            matrix, rows, cols = attention_table(weights, layout, config.task_hub_parts[0])
            n = int(next(iter(labels.values())).shape[0])
            total = matrix * n if total is None else total + matrix * n
            weight += n
    except (ValueError, AttributeError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if total is None:
        return {"error": "test/ yielded no batch"}
    return {"matrix": (total / weight).tolist(), "rows": rows, "cols": cols, "examples": weight,
            "checkpoint": trainer.latest_checkpoint}


def _cleanup() -> None:
    import tensorflow as tf

    tf.keras.backend.clear_session()
    gc.collect()


# -- worker processes ----------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_init(suite_dict: dict, layout_dict: dict, threads: int, start_epoch: float) -> None:
    import tensorflow as tf

    from bench.report_lib.config import SuiteConfig
    from infnet_tf.data.layout import FeatureLayout

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER.update(suite=SuiteConfig.from_dict(suite_dict), layout=FeatureLayout.from_dict(layout_dict),
                   progress=Progress(jobs=1, start_epoch=start_epoch))


def _worker_train(label: str, config_dict: dict, seed: int, key: str, model_dir: str, attention: bool) -> dict:
    from infnet_tf.models import ModelConfig

    config = ModelConfig.from_dict(config_dict)
    _WORKER["progress"].line(f"  start {label} seed={seed}: {config.model} [{key}] (worker {os.getpid()})")
    return train_one(_WORKER["suite"], _WORKER["layout"], label, config, seed, key, model_dir, attention)


class Runner:
    """Trains (or re-uses) one model run per (model config, seed) and returns its summary dict."""

    def __init__(self, suite, layout, runs_dir: str, progress: Progress, jobs: int = 1):
        self.suite = suite
        self.layout = layout
        self.runs_dir = runs_dir
        self.progress = progress
        self.jobs = max(1, jobs)
        self._results: dict[str, dict] = {}
        self._planned: set[str] = set()
        self._pool = None
        self._attention_key = None
        os.makedirs(runs_dir, exist_ok=True)

    # -- keys ------------------------------------------------------------------------------------
    def key(self, model_config, seed: int) -> str:
        config = canonical_model_config(model_config)
        payload = {"model": config.to_dict(), "train": self.suite.train_config(seed).to_dict(),
                   "data": os.path.abspath(self.suite.data)}
        digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
        return f"{config.model}-{digest}"

    def _wants_attention(self, key: str) -> bool:
        """The full INFNet's first seed is the Fig. 5 model: keep its attention (and checkpoint)."""
        if self._attention_key is None:
            self._attention_key = self.key(self.suite.model_config("infnet"), self.suite.seed_list[0])
        return key == self._attention_key

    def plan(self, model_configs_and_seeds) -> int:
        """Register runs a section will need (for the progress counter); returns how many are new."""
        new = 0
        for config, seed in model_configs_and_seeds:
            key = self.key(config, seed)
            if key not in self._planned:
                self._planned.add(key)
                new += 1
        self.progress.plan(new)
        return new

    @property
    def results(self) -> list[dict]:
        return list(self._results.values())

    # -- running ---------------------------------------------------------------------------------
    def run(self, label: str, model_config, seed: int, attention: bool = False) -> dict:
        """Summary of ``model_config`` trained with ``seed`` (trained now unless already done)."""
        self.run_many([(label, model_config, seed)], attention=attention)
        return self._results[self.key(model_config, seed)]

    def run_many(self, items, attention: bool = False) -> None:
        """Make sure every ``(label, model_config, seed)`` has a result (``--jobs`` at a time)."""
        todo, seen = [], set()
        for label, model_config, seed in items:
            key = self.key(model_config, seed)
            want = attention or self._wants_attention(key)
            if key in seen or self._known(key, label, model_config, seed, want):
                continue
            seen.add(key)
            todo.append((label, canonical_model_config(model_config), seed, key, want))
        if not todo:
            return
        if self.jobs == 1 or len(todo) == 1:
            for label, config, seed, key, want in todo:
                self.progress.line(f"  start {label} seed={seed}: {config.model} [{key}]")
                self._finish(label, seed, key, train_one(self.suite, self.layout, label, config, seed, key,
                                                         os.path.join(self.runs_dir, key), want))
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pool = self._get_pool()
        futures = {pool.submit(_worker_train, label, config.to_dict(), seed, key,
                               os.path.join(self.runs_dir, key), want): (label, config, seed, key)
                   for label, config, seed, key, want in todo}
        for future in as_completed(futures):
            label, config, seed, key = futures[future]
            try:
                summary = future.result()
            except BrokenProcessPool as exc:  # a worker died (e.g. out of memory): report, go on
                self._pool = None
                summary = {"key": key, "label": label, "model": config.model, "seed": seed,
                           "model_config": config.to_dict(), "error": f"worker process died: {exc}",
                           "wall_seconds": None}
            self._finish(label, seed, key, summary)

    def _known(self, key: str, label: str, model_config, seed: int, attention: bool) -> bool:
        """True when the run's result is in memory or (with resume) on disk."""
        cached = self._results.get(key)
        if cached is not None and (not attention or "attention" in cached or "error" in cached):
            return True
        model_dir = os.path.join(self.runs_dir, key)
        summary_path = os.path.join(model_dir, SUMMARY_FILE)
        summary = _read_json(summary_path) if self.suite.resume else None
        if summary is None or "error" in summary:
            return False
        if attention and "attention" not in summary:
            self._add_attention(summary, canonical_model_config(model_config), seed, model_dir, summary_path)
        summary["_reused"] = True  # in memory only: trained by an earlier invocation
        if key not in self._results:
            self.progress.run_done(None)
            self.progress.line(f"({self.progress.done}/{self.progress.total}) {label} seed={seed}: "
                               f"re-used {key} (test mean AUC {summary['test_mean_auc']:.4f})")
        self._results[key] = summary
        return True

    def _finish(self, label: str, seed: int, key: str, summary: dict) -> None:
        self.progress.run_done(summary.get("wall_seconds"))
        head = f"({self.progress.done}/{self.progress.total}) {label} seed={seed}"
        if "error" in summary:
            self.progress.line(f"{head}: FAILED {summary['error']} (log: {summary.get('log', '-')})")
        else:
            self.progress.line(f"{head}: test mean AUC {summary['test_mean_auc']:.4f}, valid "
                               f"{summary['valid_mean_auc']:.4f}, {summary['wall_seconds']:.0f}s "
                               f"(cpu {summary['cpu_seconds']:.0f}s){self.progress.eta()}")
        self._results[key] = summary

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.suite.to_dict(), self.layout.to_dict(), threads, self.progress.start_epoch))
            self.progress.line(f"started {self.jobs} worker processes ({threads} TensorFlow thread(s) each)")
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (before anything is timed in this process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- attention for a re-used run -------------------------------------------------------------
    def _add_attention(self, summary: dict, config, seed: int, model_dir: str, summary_path: str) -> None:
        """Restore the re-used run's best checkpoint into a fresh trainer and compute its attention."""
        best = (summary.get("best") or {}).get("checkpoint")
        if not best or not os.path.exists(best + ".index"):
            summary["attention"] = {"error": "the run's checkpoints were not kept; rerun with --noresume"}
            return
        try:
            trainer = _bench_trainer_class()(self.layout, config, self.suite.train_config(seed),
                                             os.path.join(model_dir, "attention"))
            trainer.restore(best)
            summary["attention"] = attention_of(self.suite, self.layout, trainer, config)
        finally:
            _cleanup()
        _write_json(summary_path, {k: v for k, v in summary.items() if k != "_reused"})


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _mean_metric(results: Mapping[str, Mapping[str, float]], name: str) -> float:
    values = [r[name] for r in results.values() if r.get(name) is not None and np.isfinite(r[name])]
    return float(np.mean(values)) if values else float("nan")


def _drop_checkpoints(model_dir: str) -> None:
    """Checkpoints of finished runs are not needed by the report (keeps disk use small)."""
    for sub in ("checkpoints", "best"):
        shutil.rmtree(os.path.join(model_dir, sub), ignore_errors=True)


def stat(values) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of the finite values (sample std; 0 for one value)."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return {"mean": float(np.mean(vals)), "std": std, "n": len(vals), "values": vals}
