"""The report's sections. Each takes the :class:`Context`, runs (or re-uses) what it needs through
the :class:`~bench.report_lib.runner.Runner`, draws its figures, and returns a JSON-able dict.

Protocol shared by every trained number: same data and split, the same training recipe for every
model (by default the product's batch mode: up to ``--max_epochs`` full passes over ``train/`` with
early stopping after ``--patience`` rounds without a better mean valid AUC, batch size from the
recipe; with ``--steps`` > 0 a fixed budget of ``--steps`` steps in ``--rounds`` rounds), the best
round chosen on ``valid/`` by mean AUC and restored, metrics on ``test/``. "mean AUC" is the mean over tasks of the test AUC of one run; tables show the
mean ± sample std of that over seeds.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import numpy as np

from bench.report_lib import plots
from bench.report_lib.config import ABLATIONS, PAPER_LABEL, PAPER_PRESET
from bench.report_lib.runner import Progress, Runner, stat


@dataclasses.dataclass
class Context:
    suite: Any
    layout: Any
    runner: Runner
    progress: Progress
    out_dir: str
    figures: dict = dataclasses.field(default_factory=dict)  # png name -> section
    results: dict = dataclasses.field(default_factory=dict)  # section name -> its finished dict

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.layout.task_names

    def figure(self, section: str, name: str, draw: Callable[[Mapping, str], None], data: Mapping,
               out: dict) -> None:
        """Draw ``data`` into ``<out_dir>/<name>`` and store ``data`` under the section's figures."""
        path = os.path.join(self.out_dir, name)
        try:
            draw(data, path)
        except Exception as exc:  # noqa: BLE001 - a plotting problem must not lose the numbers
            self.progress.line(f"{section}: figure {name} failed ({type(exc).__name__}: {exc}); "
                               f"drawing a placeholder")
            plots.placeholder(f"{name}: could not be drawn ({type(exc).__name__}: {exc})", path)
            data = {**data, "error": f"{type(exc).__name__}: {exc}"}
        out.setdefault("figures", {})[name] = data
        self.figures[name] = section


# -- helpers -------------------------------------------------------------------------------------
def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if "error" not in r]


def _errors(runs: list[dict]) -> list[str]:
    return [f"seed {r['seed']}: {r['error']}" for r in runs if "error" in r]


def _task_metric(runs: list[dict], task: str, metric: str) -> dict:
    return stat([r["test"].get(task, {}).get(metric) for r in _ok(runs)])


def _first(runs: list[dict], key: str):
    ok = _ok(runs)
    return ok[0].get(key) if ok else None


def summarize_runs(label: str, model: str, runs: list[dict], tasks) -> dict:
    """One table row: params, FLOPs, per-task AUC/GAUC and mean AUC/GAUC as stats over seeds."""
    return {
        "label": label, "model": model,
        "params": _first(runs, "params"), "flops": _first(runs, "flops"),
        "tasks": {t: {"auc": _task_metric(runs, t, "auc"), "gauc": _task_metric(runs, t, "gauc")} for t in tasks},
        "mean_auc": stat([r["test_mean_auc"] for r in _ok(runs)]),
        "mean_gauc": stat([r["test_mean_gauc"] for r in _ok(runs)]),
        "valid_mean_auc": stat([r["valid_mean_auc"] for r in _ok(runs)]),
        "train_examples_per_sec": stat([r.get("train_examples_per_sec") for r in _ok(runs)]),
        # how long each model trained (the recipe protocol stops each run on its own)
        "epochs_trained": stat([r.get("epochs_trained") for r in _ok(runs)]),
        "train_steps": stat([r.get("train_steps") for r in _ok(runs)]),
        "best_epoch": stat([r.get("best_epoch") for r in _ok(runs)]),
        "stopped_early": sum(bool(r.get("stopped_early")) for r in _ok(runs)),
        "batch_size": _first(runs, "batch_size"),
        "seeds": [r["seed"] for r in _ok(runs)],
        "runs": [r["key"] for r in runs],
        "errors": _errors(runs),
    }


def _run_all(ctx: Context, label: str, items: list[tuple[str, Any, int]]) -> list[dict]:
    """Plan then run ``(label, model_config, seed)`` items (seed-major order is the caller's)."""
    ctx.runner.plan([(cfg, seed) for _, cfg, seed in items])
    ctx.runner.run_many(items)
    return [ctx.runner.run(lbl, cfg, seed) for lbl, cfg, seed in items]


# -- what each section trains (also used up front, for the whole suite's progress count) ----------
def _ablation_variants(suite):
    variants, invalid = [], {}
    for ab in (a for a in ABLATIONS if a.id in suite.ablations):
        try:
            variants.append((ab, suite.model_config("infnet", **dict(ab.changes))))
        except ValueError as exc:
            invalid[ab.id] = str(exc)
    return variants, invalid


def _hub_configs(suite):
    axes = {"n_cat_hubs": sorted(set(suite.hub_cat) | {suite.n_cat_hubs}),
            "n_shared_task_hubs": sorted(set(suite.hub_shared) | {suite.n_shared_task_hubs})}
    configs = {(axis, v): suite.model_config("infnet", **{axis: v}) for axis, values in axes.items() for v in values}
    return axes, configs


def _scaling_configs(suite):
    widths = sorted(set(suite.scaling_widths))
    return widths, {(m, w): suite.model_config(m, d=w) for m in suite.scaling_models for w in widths}


def _quality_configs(suite) -> list[tuple[str, Any]]:
    """``(row id, model config)`` of the quality table: every ``--models`` model (infnet = the
    recommended ModelConfig defaults), then the paper preset on top of the same base INFNet."""
    rows = [(m, suite.model_config(m)) for m in suite.models]
    return rows + [(PAPER_ROW_ID, suite.paper_config())]


PAPER_ROW_ID = "infnet_paper"


def planned_runs(suite, section: str) -> list[tuple[Any, int]]:
    """``(model_config, seed)`` of every model run ``section`` needs."""
    if section == "quality":
        return [(cfg, s) for s in suite.seed_list for _, cfg in _quality_configs(suite)]
    if section == "ablations":
        full = suite.model_config("infnet")
        return [(full, s) for s in suite.sweep_seed_list] + \
               [(cfg, s) for s in suite.sweep_seed_list for _, cfg in _ablation_variants(suite)[0]]
    if section == "hubs":
        return [(cfg, s) for s in suite.sweep_seed_list for cfg in _hub_configs(suite)[1].values()]
    if section == "scaling":
        return [(cfg, s) for s in suite.sweep_seed_list for cfg in _scaling_configs(suite)[1].values()]
    if section == "attention":
        return [(suite.model_config("infnet"), suite.seed_list[0])]
    return []


# -- 0. the gradient-boosted-trees reference -----------------------------------------------------
def gbdt_reference(ctx: Context) -> dict:
    """The LightGBM reference (``{**run_gbdt(...), "row": quality-table row}`` or ``{"error": ...}``),
    computed once per report: the quality table and the ``gbdt`` section share it."""
    if "_gbdt_reference" in ctx.results:
        return ctx.results["_gbdt_reference"]
    from bench.report_lib.gbdt import run_gbdt

    suite, tasks = ctx.suite, ctx.tasks
    ctx.progress.line(f"LightGBM reference ({len(tasks)} tasks x {len(suite.seed_list)} seeds)")
    try:
        gbdt = run_gbdt(suite, ctx.layout, ctx.progress)
        row = {
            "label": "LightGBM (GBDT)", "model": "lightgbm", "params": None, "flops": None,
            "tasks": {t: {"auc": stat([r["test"][t]["auc"] for r in gbdt["runs"]]),
                          "gauc": stat([r["test"][t]["gauc"] for r in gbdt["runs"]])} for t in tasks},
            "mean_auc": stat([np.nanmean([r["test"][t]["auc"] for t in tasks]) for r in gbdt["runs"]]),
            "mean_gauc": stat([np.nanmean([r["test"][t]["gauc"] for t in tasks]) for r in gbdt["runs"]]),
            "trees": {t: stat([r["trees"][t] for r in gbdt["runs"]])["mean"] for t in tasks},
            "leaves": {t: stat([r["leaves"][t] for r in gbdt["runs"]])["mean"] for t in tasks},
            "seeds": [r["seed"] for r in gbdt["runs"]], "errors": [],
        }
        result = {**gbdt, "row": row}
    except Exception as exc:  # noqa: BLE001
        import traceback

        ctx.progress.line(f"LightGBM reference FAILED: {type(exc).__name__}: {exc}")
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    ctx.results["_gbdt_reference"] = result
    return result


def gbdt(ctx: Context) -> dict:
    """``--sections=gbdt``: the LightGBM reference on its own (no deep model is trained)."""
    ref = gbdt_reference(ctx)
    if "error" in ref:
        raise RuntimeError(f"LightGBM reference failed: {ref['error']}")
    return {"tasks": list(ctx.tasks), "seeds": list(ctx.suite.seed_list), "gbdt": ref}


# -- 1. quality ----------------------------------------------------------------------------------
def quality(ctx: Context) -> dict:
    suite, tasks = ctx.suite, ctx.tasks
    table = _quality_configs(suite)
    configs = dict(table)
    order = [(rid, s) for s in suite.seed_list for rid, _ in table]  # seed-major: a full table early
    results = _run_all(ctx, "quality", [(f"quality: {rid}", configs[rid], s) for rid, s in order])
    by_row: dict[str, list[dict]] = {rid: [] for rid, _ in table}
    for (rid, _), r in zip(order, results):
        by_row[rid].append(r)
    rows = [summarize_runs(m, m, by_row[m], tasks) for m in suite.models]
    paper = summarize_runs(PAPER_LABEL, "infnet", by_row[PAPER_ROW_ID], tasks)
    paper.update(id=PAPER_ROW_ID, preset=PAPER_PRESET,
                 changes={k: v for k, v in configs[PAPER_ROW_ID].to_dict().items()
                          if configs["infnet"].to_dict().get(k) != v})
    out: dict[str, Any] = {"tasks": list(tasks), "seeds": list(suite.seed_list), "rows": rows,
                           "paper_row": paper, "protocol": suite.protocol_dict(),
                           "model_configs": {rid: c.to_dict() for rid, c in configs.items()}}
    out["gbdt"] = gbdt_reference(ctx) if suite.gbdt else {"skipped": "--nogbdt"}
    out["findings"] = quality_findings(out, tasks)
    all_rows = table_rows(out)
    fig = {"models": [r["label"] for r in all_rows], "tasks": list(tasks), "num_seeds": len(suite.seed_list),
           "auc_mean": {r["label"]: [r["tasks"][t]["auc"]["mean"] for t in tasks] for r in all_rows},
           "auc_std": {r["label"]: [r["tasks"][t]["auc"]["std"] for t in tasks] for r in all_rows},
           "gauc_mean": {r["label"]: [r["tasks"][t]["gauc"]["mean"] for t in tasks] for r in all_rows}}
    ctx.figure("quality", "quality_auc.png", plots.quality, fig, out)
    return out


def table_rows(section: Mapping) -> list[dict]:
    """The quality table's rows in order: infnet, infnet (paper preset), the other models, LightGBM."""
    out = []
    for r in section["rows"]:
        out.append(r)
        if r["model"] == "infnet" and section.get("paper_row"):
            out.append(section["paper_row"])
    if "row" in (section.get("gbdt") or {}):
        out.append(section["gbdt"]["row"])
    return out


def quality_findings(section: Mapping, tasks) -> dict:
    """Computed comparisons of INFNet with the best baseline (and the GBDT), for the report's text."""
    rows = {r["model"]: r for r in section["rows"]}
    infnet = rows.get("infnet")
    if infnet is None or infnet["mean_auc"]["mean"] is None:
        return {"error": "no successful INFNet run"}
    baselines = [r for m, r in rows.items() if m != "infnet" and r["mean_auc"]["mean"] is not None]
    gbdt = section.get("gbdt", {}).get("row")
    if gbdt is not None:
        baselines.append(gbdt)
    out: dict[str, Any] = {"infnet_mean_auc": infnet["mean_auc"]["mean"], "infnet_mean_auc_std": infnet["mean_auc"]["std"]}
    paper = section.get("paper_row")
    if paper is not None and paper["mean_auc"]["mean"] is not None:  # recommended vs paper-exact INFNet
        out["delta_vs_paper_preset"] = infnet["mean_auc"]["mean"] - paper["mean_auc"]["mean"]
    if not baselines:
        return out
    best = max(baselines, key=lambda r: r["mean_auc"]["mean"])
    delta = infnet["mean_auc"]["mean"] - best["mean_auc"]["mean"]
    noise = float(np.hypot(infnet["mean_auc"]["std"] or 0.0, best["mean_auc"]["std"] or 0.0))
    out.update(best_baseline=best["label"], best_baseline_mean_auc=best["mean_auc"]["mean"],
               delta_mean_auc=delta, delta_mean_auc_pct=100.0 * delta / best["mean_auc"]["mean"],
               combined_seed_std=noise, within_noise=bool(abs(delta) <= noise),
               infnet_rank=1 + sum(r["mean_auc"]["mean"] > infnet["mean_auc"]["mean"] for r in baselines),
               num_compared=len(baselines) + 1)
    for metric in ("auc", "gauc"):
        wins = []
        for t in tasks:
            mine = infnet["tasks"][t][metric]["mean"]
            others = [r["tasks"][t][metric]["mean"] for r in baselines if r["tasks"][t][metric]["mean"] is not None]
            if mine is not None and others and mine >= max(others):
                wins.append(t)
        out[f"tasks_won_{metric}"] = wins
    if gbdt is not None and gbdt["mean_auc"]["mean"] is not None:
        out["delta_vs_gbdt"] = infnet["mean_auc"]["mean"] - gbdt["mean_auc"]["mean"]
    deep = [r for r in baselines if r is not gbdt]
    if deep:
        best_deep = max(deep, key=lambda r: r["mean_auc"]["mean"])
        out.update(best_deep_baseline=best_deep["label"],
                   delta_vs_best_deep=infnet["mean_auc"]["mean"] - best_deep["mean_auc"]["mean"])
        for metric in ("auc", "gauc"):
            out[f"deep_tasks_won_{metric}"] = [
                t for t in tasks if infnet["tasks"][t][metric]["mean"] is not None and all(
                    infnet["tasks"][t][metric]["mean"] >= r["tasks"][t][metric]["mean"]
                    for r in deep if r["tasks"][t][metric]["mean"] is not None)]
        gauc_ok = [r for r in deep if r["mean_gauc"]["mean"] is not None]
        if infnet["mean_gauc"]["mean"] is not None and gauc_ok:
            best_g = max(gauc_ok, key=lambda r: r["mean_gauc"]["mean"])
            out.update(deep_gauc_rank=1 + sum(r["mean_gauc"]["mean"] > infnet["mean_gauc"]["mean"] for r in gauc_ok),
                       num_deep=len(deep) + 1, best_deep_gauc_baseline=best_g["label"],
                       delta_mean_gauc_vs_best_deep=infnet["mean_gauc"]["mean"] - best_g["mean_gauc"]["mean"])
    return out


# -- 2. ablations --------------------------------------------------------------------------------
def ablations(ctx: Context) -> dict:
    suite, tasks = ctx.suite, ctx.tasks
    seeds = suite.sweep_seed_list
    full = suite.model_config("infnet")
    variants, invalid = _ablation_variants(suite)
    items = [("ablations: full INFNet", full, s) for s in seeds]
    items += [(f"ablations: {ab.id}", cfg, s) for s in seeds for ab, cfg in variants]
    variant_config = {ab.id: cfg for ab, cfg in variants}
    _run_all(ctx, "ablations", items)
    ref_runs = [ctx.runner.run("ablations: full INFNet", full, s) for s in seeds]
    ref = summarize_runs("INFNet (full)", "infnet", ref_runs, tasks)
    ref_by_seed = {r["seed"]: r for r in _ok(ref_runs)}
    # seed noise of the full model, from the quality seeds when they were run
    quality_runs = [ctx.runner.run("quality: infnet", full, s) for s in suite.seed_list] \
        if "quality" in suite.sections else ref_runs
    q = stat([r["test_mean_auc"] for r in _ok(quality_runs)])
    noise_pct = 100.0 * q["std"] / q["mean"] if q["n"] > 1 and q["mean"] else None
    rows = []
    for ab in (a for a in ABLATIONS if a.id in suite.ablations):
        if ab.id in invalid:
            rows.append({"id": ab.id, "label": ab.label, "group": ab.group, "changes": dict(ab.changes),
                         "error": f"invalid config: {invalid[ab.id]}"})
            continue
        cfg = variant_config[ab.id]
        runs = [ctx.runner.run(f"ablations: {ab.id}", cfg, s) for s in seeds]
        row = summarize_runs(ab.label, cfg.model, runs, tasks)
        paired = [r["test_mean_auc"] - ref_by_seed[r["seed"]]["test_mean_auc"]
                  for r in _ok(runs) if r["seed"] in ref_by_seed]
        delta = stat(paired)
        ref_mean = ref["mean_auc"]["mean"]
        row.update(id=ab.id, group=ab.group, changes=dict(ab.changes), delta_mean_auc=delta,
                   same_as_reference=ctx.runner.key(cfg, seeds[0]) == ctx.runner.key(full, seeds[0]),
                   rel_change_pct=(100.0 * delta["mean"] / ref_mean) if delta["mean"] is not None and ref_mean else None,
                   task_delta_auc={t: (row["tasks"][t]["auc"]["mean"] - ref["tasks"][t]["auc"]["mean"])
                                   if row["tasks"][t]["auc"]["mean"] is not None
                                   and ref["tasks"][t]["auc"]["mean"] is not None else None for t in tasks})
        rows.append(row)
    out = {"seeds": list(seeds), "reference": ref, "rows": rows, "seed_std_pct": noise_pct,
           "quality_seed_stat": q}
    shown = [r for r in rows if "error" not in r]
    fig = {"labels": [r["label"] for r in shown], "groups": [r["group"] for r in shown],
           "rel_change_pct": [r["rel_change_pct"] for r in shown],
           "mean_auc": [r["mean_auc"]["mean"] for r in shown],
           "reference_mean_auc": ref["mean_auc"]["mean"] or float("nan"), "seed_std_pct": noise_pct}
    ctx.figure("ablations", "ablations.png", plots.ablations, fig, out)
    return out


# -- 3. hub sweep --------------------------------------------------------------------------------
def hubs(ctx: Context) -> dict:
    suite, tasks = ctx.suite, ctx.tasks
    seeds = suite.sweep_seed_list
    axes, configs = _hub_configs(suite)
    items = [(f"hubs: {axis}={v}", cfg, s) for s in seeds for (axis, v), cfg in configs.items()]
    _run_all(ctx, "hubs", items)
    out: dict[str, Any] = {"seeds": list(seeds), "defaults": {"n_cat_hubs": suite.n_cat_hubs,
                                                             "n_shared_task_hubs": suite.n_shared_task_hubs}}
    fig: dict[str, Any] = {}
    for axis, values in axes.items():
        points = []
        for v in values:
            runs = [ctx.runner.run(f"hubs: {axis}={v}", configs[(axis, v)], s) for s in seeds]
            row = summarize_runs(f"{axis}={v}", "infnet", runs, tasks)
            row["value"] = v
            points.append(row)
        out[axis] = points
        fig[axis] = {"values": values, "auc_mean": [p["mean_auc"]["mean"] for p in points],
                     "auc_std": [p["mean_auc"]["std"] for p in points],
                     "flops": [p["flops"] or 0.0 for p in points], "params": [p["params"] for p in points]}
    ctx.figure("hubs", "hub_sweep.png", plots.hub_sweep, fig, out)
    return out


# -- 4. scaling ----------------------------------------------------------------------------------
def scaling(ctx: Context) -> dict:
    suite, tasks = ctx.suite, ctx.tasks
    seeds = suite.sweep_seed_list
    widths, configs = _scaling_configs(suite)
    items = [(f"scaling: {m} d={w}", cfg, s) for s in seeds for (m, w), cfg in configs.items()]
    _run_all(ctx, "scaling", items)
    series, fig = {}, {"series": {}}
    for m in suite.scaling_models:
        points = []
        for w in widths:
            runs = [ctx.runner.run(f"scaling: {m} d={w}", configs[(m, w)], s) for s in seeds]
            row = summarize_runs(f"{m} d={w}", m, runs, tasks)
            row.update(d=w, num_blocks=configs[(m, w)].num_blocks)
            points.append(row)
        series[m] = points
        fig["series"][m] = {"d": widths, "flops": [p["flops"] or np.nan for p in points],
                            "params": [p["params"] for p in points],
                            "auc_mean": [p["mean_auc"]["mean"] for p in points],
                            "auc_std": [p["mean_auc"]["std"] for p in points]}
    slopes = {}
    for m, s in fig["series"].items():
        xs = [np.log10(f) for f, a in zip(s["flops"], s["auc_mean"]) if a is not None and f and np.isfinite(f)]
        ys = [a for f, a in zip(s["flops"], s["auc_mean"]) if a is not None and f and np.isfinite(f)]
        slopes[m] = float(np.polyfit(xs, ys, 1)[0]) if len(xs) >= 2 else None
    out = {"seeds": list(seeds), "widths": widths, "series": series,
           "auc_per_decade_of_flops": slopes}
    ctx.figure("scaling", "scaling.png", plots.scaling, fig, out)
    return out


# -- 6. attention heat map -----------------------------------------------------------------------
def attention(ctx: Context) -> dict:
    suite = ctx.suite
    cfg = suite.model_config("infnet")
    ctx.runner.plan([(cfg, suite.seed_list[0])])
    run = ctx.runner.run("attention: infnet", cfg, suite.seed_list[0], attention=True)
    att = run.get("attention") or {"error": run.get("error", "no attention recorded")}
    out: dict[str, Any] = {"run": run.get("key"), "seed": suite.seed_list[0]}
    if "error" in att:
        out["error"] = att["error"]
        path = os.path.join(ctx.out_dir, "attention_heatmap.png")
        plots.placeholder(f"attention heat map unavailable: {att['error']}", path)
        out["figures"] = {"attention_heatmap.png": {"error": att["error"]}}
        ctx.figures["attention_heatmap.png"] = "attention"
        return out
    out.update(rows=att["rows"], cols=att["cols"], examples=att.get("examples"),
               views=attention_view_stats(np.asarray(att["matrix"], dtype=np.float64), att["cols"]))
    fig = {"matrix": att["matrix"], "rows": att["rows"], "cols": att["cols"],
           "title": f"INFNet task hubs × input tokens, last block (test, {att.get('examples')} examples)"}
    ctx.figure("attention", "attention_heatmap.png", plots.heatmap, fig, out)
    return out


def attention_view_stats(matrix: np.ndarray, cols: list[str]) -> dict[str, Any]:
    """Per task hub and view: how far the attention is from uniform.

    Each view (categorical tokens, each behaviour type, task tokens) is its own softmax (eq. 6), so
    rows are only comparable within a view. For the categorical and task views: the normalised
    entropy (1 = uniform over the view's tokens, 0 = one token), the most attended token and its
    weight relative to uniform. For a behaviour type (positions summed): the mean total weight,
    i.e. the share of examples whose sequence of that type is not empty.
    """
    out: dict[str, Any] = {}
    groups = {"categorical": [j for j, c in enumerate(cols) if not c.startswith(("seq/", "task:"))],
              "task": [j for j, c in enumerate(cols) if c.startswith("task:")]}
    for view, idx in groups.items():
        if not idx:
            continue
        w = matrix[:, idx]
        p = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        n = len(idx)
        ent = -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1) / np.log(max(n, 2))
        top = p.argmax(axis=1)
        out[view] = {"entropy": ent.tolist(), "top": [cols[idx[int(t)]] for t in top],
                     "top_over_uniform": (p.max(axis=1) * n).tolist(), "tokens": n}
    out["sequence_totals"] = {c: matrix[:, j].tolist() for j, c in enumerate(cols) if c.startswith("seq/")}
    return out
