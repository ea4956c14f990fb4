"""Section 5, efficiency: ratios measured in this one run, with the other benches' own measuring code.

* step time vs behaviour-sequence length, INFNet vs all-to-all — :mod:`bench.block_scaling`;
* training examples/s — :mod:`bench.train_throughput` (``measure_input`` / ``measure_training``):
  the input pipeline alone, INFNet's and all-to-all's train step on a cached batch, INFNet on the
  real input;
* SavedModel serving latency — ``python -m bench.serving_latency``.

Each part calls the library the bench command is built on (:mod:`bench.measure`,
:mod:`bench.block_timing`); serving latency runs the ``python -m bench.serving_latency`` command in a
child process and reads the p50/p99 lines it prints.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
import traceback
from typing import Any

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)

from bench.report_lib import plots


def _unavailable(name: str, exc: BaseException) -> dict:
    return {"available": False, "reason": f"bench.{name} could not be used: {type(exc).__name__}: {exc}"}


# -- training throughput -------------------------------------------------------------------------
def train_throughput(ctx) -> dict:
    suite, layout = ctx.suite, ctx.layout
    try:
        from bench.measure import measure_input, measure_training
    except ImportError as exc:
        return _unavailable("measure", exc)
    import tensorflow as tf

    from infnet_tf.input import make_dataset
    from infnet_tf.training.trainer import Trainer

    steps, warmup, batch = suite.efficiency_steps, 2, suite.resolved_batch_size  # the runs' batch size
    train_dir = os.path.join(suite.data, "train")

    def train_data():
        return make_dataset(train_dir, layout, batch, shuffle=True, repeat=True, deterministic=False,
                            drop_remainder=True)

    out: dict[str, Any] = {"available": True, "batch_size": batch, "steps": steps, "warmup_steps": warmup}
    out["input_examples_per_sec"] = measure_input(train_data(), steps, warmup)
    cached = next(iter(train_data()))
    for model in ("infnet", "all_to_all"):
        cfg = suite.model_config(model)
        train_config = suite.train_config(0).replace(log_every=10**9)
        with tempfile.TemporaryDirectory() as model_dir:
            trainer = Trainer(layout, cfg, train_config, model_dir)
            out[f"{model}_step_examples_per_sec"] = measure_training(
                trainer, tf.data.Dataset.from_tensors(cached).repeat(), steps, warmup)
            if model == "infnet":
                out["infnet_end_to_end_examples_per_sec"] = measure_training(trainer, train_data(), steps, warmup)
            del trainer
            tf.keras.backend.clear_session()
        ctx.progress.line(f"efficiency: {model} train step {out[f'{model}_step_examples_per_sec']:,.0f} ex/s")
    out["ratios"] = {
        "infnet_over_all_to_all_train_examples_per_sec":
            out["infnet_step_examples_per_sec"] / out["all_to_all_step_examples_per_sec"],
        "input_over_infnet_step": out["input_examples_per_sec"] / out["infnet_step_examples_per_sec"],
        "infnet_end_to_end_over_step": out["infnet_end_to_end_examples_per_sec"] / out["infnet_step_examples_per_sec"],
    }
    return out


# -- step time vs sequence length ----------------------------------------------------------------
def block_scaling(ctx) -> dict:
    """``bench.block_timing.bench_point`` at each length: one block fwd+bwd, INFNet vs all-to-all,
    at the report's width/heads/hub counts and the dataset's token counts."""
    try:
        from bench.block_timing import BlockBench, bench_point
    except ImportError as exc:
        return _unavailable("block_timing", exc)
    suite, layout = ctx.suite, ctx.layout
    types = max(1, len(layout.sequences))
    lengths = sorted({max(types, (n // types) * types) for n in suite.efficiency_seq_lens})
    args = BlockBench(d=suite.d, heads=suite.num_heads, n_cat=len(layout.categorical), tasks=len(layout.tasks),
                      types=types, n_cat_hubs=suite.n_cat_hubs, n_shared_task_hubs=suite.n_shared_task_hubs)
    if suite.smoke:  # otherwise the bench's own batch, steps, warmup and min_seconds
        args = dataclasses.replace(args, steps=suite.efficiency_steps, warmup=1, min_seconds=0.0)
    rng = np.random.default_rng(0)
    series = {"infnet": {"seq_len": [], "step_seconds": [], "flops": []},
              "all_to_all": {"seq_len": [], "step_seconds": [], "flops": []}}
    for n in lengths:
        t_i, t_a, f_i, f_a = bench_point(args, n, rng)
        for model, t, f in (("infnet", t_i, f_i), ("all_to_all", t_a, f_a)):
            series[model]["seq_len"].append(n)
            series[model]["step_seconds"].append(t)
            series[model]["flops"].append(f)
        ctx.progress.line(f"efficiency: block step at N_s={n}: infnet {t_i * 1e3:.1f} ms, "
                          f"all-to-all {t_a * 1e3:.1f} ms ({t_a / t_i:.1f}x)")
    lo, hi = lengths[0], lengths[-1]
    ti, ta = series["infnet"]["step_seconds"], series["all_to_all"]["step_seconds"]
    ratios = {f"block_all_to_all_over_infnet_at_{hi}": ta[-1] / ti[-1]}
    if hi != lo:
        ratios[f"block_infnet_{hi}_over_{lo}"] = ti[-1] / ti[0]
        ratios[f"block_all_to_all_{hi}_over_{lo}"] = ta[-1] / ta[0]
    return {"available": True, "series": series, "ratios": ratios,
            "settings": {k: getattr(args, k) for k in ("batch_size", "steps", "warmup", "min_seconds", "d",
                                                         "heads", "n_cat", "tasks", "types", "n_cat_hubs",
                                                         "n_shared_task_hubs")},
            "title": f"One block fwd+bwd, batch {args.batch_size}, d={args.d}: INFNet vs all-to-all",
            "notes": f"One block forward+backward (`bench.block_timing.bench_point`), batch {args.batch_size}, "
                     f"d={args.d}, {args.heads} heads, N_c={args.n_cat}, {args.types} behaviour types, "
                     f"{args.tasks} tasks; median of ≥{args.steps} timed steps. Sequence length {lo}→{hi} "
                     f"({hi / lo:.0f}x): INFNet step ×{ti[-1] / ti[0]:.1f}, all-to-all ×{ta[-1] / ta[0]:.1f}."}


# -- serving latency -----------------------------------------------------------------------------
_LATENCY_ROW = re.compile(
    r"batch\s+(\d+): raw p50\s+([\d.]+) ms p99\s+([\d.]+) ms \| ids p50\s+([\d.]+) ms p99\s+([\d.]+) ms"
    r" \| keras p50\s+([\d.]+) ms p99\s+([\d.]+) ms")


def serving_latency(ctx) -> dict:
    """``python -m bench.serving_latency`` for INFNet and for all-to-all, in a child process each; the
    per-batch-size p50/p99 lines it prints are read back. Each model is exported with the transform
    artifact baked in and served through the TF1 session loader (as TF Serving does)."""
    suite = ctx.suite
    sizes = (1, 8) if suite.smoke else (1, 256)
    out: dict[str, Any] = {"available": True, "batch_sizes": list(sizes), "models": {}}
    for model in ("infnet", "all_to_all"):
        args = [f"--data={suite.data}", f"--model={model}", f"--d={suite.d}",
                f"--num_blocks={suite.num_blocks}", f"--batch_sizes={','.join(map(str, sizes))}",
                "--iterations=5", f"--max_seconds={2 if suite.smoke else 5}",
                f"--warmup={1 if suite.smoke else 3}", "--reference_model="]
        text = _run_bench("serving_latency", args)
        rows = {}
        for m in _LATENCY_ROW.finditer(text):
            b, *vals = m.groups()
            rows[int(b)] = dict(zip(("raw_p50_ms", "raw_p99_ms", "ids_p50_ms", "ids_p99_ms",
                                     "keras_p50_ms", "keras_p99_ms"), map(float, vals)))
        if not rows:
            raise RuntimeError(f"bench.serving_latency printed no latency rows:\n{text[-2000:]}")
        out["models"][model] = {"batch": rows, "output": text}
        ctx.progress.line(f"efficiency: serving {model}: " + ", ".join(
            f"batch {b} raw p50 {r['raw_p50_ms']:.1f} ms" for b, r in rows.items()))
    ref = max(sizes)
    infnet, a2a = out["models"]["infnet"]["batch"][ref], out["models"]["all_to_all"]["batch"][ref]
    out["ratios"] = {f"serving_transform_overhead_at_{ref}": infnet["raw_p50_ms"] / infnet["ids_p50_ms"],
                     f"serving_all_to_all_over_infnet_p50_at_{ref}": a2a["raw_p50_ms"] / infnet["raw_p50_ms"]}
    out["table"] = {f"{m} batch {b} {k}": v for m, d in out["models"].items()
                    for b, r in d["batch"].items() for k, v in r.items()}
    return out


def _run_bench(name: str, args: list[str]) -> str:
    """Run ``python -m bench.<name> ARGS`` from the repository root; returns what it printed on stdout."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"python -m bench.{name} exited {proc.returncode}:\n"
                           f"{(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout


# -- the section ---------------------------------------------------------------------------------
PARTS = (("seq_len", block_scaling), ("train_throughput", train_throughput), ("serving_latency", serving_latency))


def efficiency(ctx) -> dict:
    out: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    for name, fn in PARTS:
        start = time.perf_counter()
        ctx.progress.line(f"efficiency: {name} ...")
        try:
            part = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - one bench failing must not lose the others
            part = {"available": False, "reason": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()}
            ctx.progress.line(f"efficiency: {name} unavailable: {part['reason']}")
        part["seconds"] = time.perf_counter() - start
        out[name] = part
        for k, v in (part.get("ratios") or {}).items():
            ratios[k] = v
    out["ratios"] = ratios
    # examples/s of every model in its quality runs (same protocol and batch size; input included)
    rows = (ctx.results.get("quality") or {}).get("rows")
    if rows:
        out["quality_run_throughput"] = {r["model"]: r["train_examples_per_sec"]["mean"] for r in rows}
    seq = out["seq_len"]
    if seq.get("available") and seq.get("series"):
        fig = {"series": seq["series"], "title": seq.get("title", "Train step time vs sequence length")}
        ctx.figure("efficiency", "efficiency_seq_len.png", plots.seq_len_scaling, fig, out)
    else:
        path = os.path.join(ctx.out_dir, "efficiency_seq_len.png")
        plots.placeholder(f"step time vs sequence length unavailable:\n{seq.get('reason', '')}", path)
        out.setdefault("figures", {})["efficiency_seq_len.png"] = {"error": seq.get("reason")}
        ctx.figures["efficiency_seq_len.png"] = "efficiency"
    return out


def _finite(x) -> bool:
    return x is not None and bool(np.isfinite(x))
