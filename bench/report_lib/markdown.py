"""``report.md`` from the report's JSON dict (every number comes from the dict; nothing is typed)."""
from __future__ import annotations

import datetime
from typing import Any, Mapping

from bench.report_lib.sections import table_rows

SECTION_TITLES = {
    "gbdt": "0. Gradient-boosted trees reference (LightGBM)",
    "quality": "1. Quality: INFNet vs baselines (paper Table 3)",
    "ablations": "2. Ablations (paper Fig. 3 and Table 4)",
    "hubs": "3. Hub composition sweep (paper Fig. 4)",
    "scaling": "4. Scaling: mean AUC vs FLOPs (paper Fig. 6)",
    "efficiency": "5. Efficiency (ratios measured in this run)",
    "attention": "6. Attention heat map (paper Fig. 5)",
}
RENDER_ORDER = ("gbdt", "quality", "ablations", "hubs", "scaling", "efficiency", "attention")


# -- number formatting ---------------------------------------------------------------------------
def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    try:
        if x != x:  # NaN
            return "—"
    except TypeError:
        return str(x)
    return f"{x:.{digits}f}"


def fmt_stat(s: Mapping | None, digits: int = 4) -> str:
    if not s or s.get("mean") is None:
        return "—"
    if s.get("n", 1) > 1:
        return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
    return f"{s['mean']:.{digits}f}"


def fmt_count(x, style: str = "si") -> str:
    if x is None:
        return "—"
    x = float(x)
    if style == ",":
        return f"{x:,.0f}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def fmt_seconds(s) -> str:
    if s is None:
        return "—"
    s = int(round(s))
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_pct(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:+.{digits}f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _bold_best(rows: list[list[str]], values: list[list[float | None]], higher_is_better: list[bool | None]):
    """Bold the best value of each column (ties all bold); ``None`` in higher_is_better: no bolding."""
    for j, hib in enumerate(higher_is_better):
        if hib is None:
            continue
        col = [v[j] for v in values if v[j] is not None]
        if not col:
            continue
        best = max(col) if hib else min(col)
        for i, v in enumerate(values):
            if v[j] is not None and v[j] == best:
                rows[i][j] = f"**{rows[i][j]}**"


# -- header --------------------------------------------------------------------------------------
def header(report: Mapping) -> list[str]:
    meta = report["meta"]
    hw, suite, data = meta["hardware"], meta["suite"], meta["data"]
    gpus = ", ".join(hw["gpus"]) if hw["gpus"] else "none"
    lines = [f"# INFNet benchmark report — `{meta['run_name']}`", ""]
    if suite["smoke"]:
        lines += ["> **Smoke configuration** (`--smoke`): 1 seed, a fixed handful of steps, tiny models and "
                  "reduced grids. The numbers only show that every section runs; they say nothing "
                  "about model quality.", ""]
    lines += [
        f"Generated {meta['finished_utc']} (UTC) in {fmt_seconds(meta['wall_seconds'])} by",
        "", "```", meta["command"], "```", "",
        f"run from `{meta['cwd']}` with `{meta['python']}`; git commit `{meta['git']['commit']}`"
        f"{' (with uncommitted changes)' if meta['git']['dirty'] else ''}.", "",
        "## Setup", "",
        f"* **Hardware**: {hw['cpu']}, {hw['cpu_cores']} CPU cores ({hw['usable_cores']} usable), "
        f"{hw['memory_gib']} GiB memory, GPU: {gpus}; load average at start {hw['load_average_at_start']}.",
        "* **Versions**: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        f"* **Data**: `{data['path']}`" + (f" (dataset `{data['name']}`)" if data.get("name") else "")
        + ": " + ", ".join(f"{s} {n:,} examples" for s, n in data["examples"].items())
        + f"; tasks {', '.join(data['tasks'])}; {data['num_categorical']} categorical tokens (ids, "
          f"bucketized dense, counters); sequences " + ", ".join(f"{n} (max_len {l})" for n, l in data["sequences"])
        + (f"; spec `{data['spec']}` (fingerprint checked)" if data.get("spec") else "") + ".",
        protocol_line(meta, suite, data),
        f"* **Seeds**: quality table {meta['seeds']['quality']}; ablations, hub sweep and scaling "
        f"{meta['seeds']['sweeps']}.",
        f"* **Base model** (width rule: hidden widths = registry default × d/64): d={suite['d']}, "
        f"L={suite['num_blocks']} blocks, {suite['num_heads']} heads, n_c={suite['n_cat_hubs']}, "
        f"n_shared={suite['n_shared_task_hubs']}.",
        "",
        "### Wall time per section", "",
    ]
    rows = [[name, fmt_seconds(s.get("wall_seconds")), s.get("status", "ok")]
            for name, s in report["sections"].items()]
    lines += _table(["section", "wall time", "status"], rows)
    lines += ["", f"Model runs: {meta['runs']['trained']} trained, {meta['runs']['reused']} re-used from "
                  f"an earlier invocation, {meta['runs']['failed']} failed.", ""]
    return lines


def protocol_line(meta: Mapping, suite: Mapping, data: Mapping) -> str:
    """The setup's protocol bullet: which protocol ran (recipe with early stopping, or fixed steps)."""
    p = meta.get("protocol") or {}
    batch = p.get("batch_size", suite["batch_size"])
    batch_text = (f"batch {batch} (the recipe's `auto_batch_size` of the train rows; `--batch_size` overrides)"
                  if p.get("batch_size_source") == "recipe" else f"batch {batch} (`--batch_size`)")
    if p.get("name", "fixed_steps" if suite.get("steps") else "recipe") == "recipe":
        budget = (f"**the product's batch-mode recipe** (`--steps=0`): up to {suite['max_epochs']} full passes "
                  f"over train/ (`--max_epochs`), stopping after {suite['patience']} round(s) without a better "
                  f"mean valid AUC (`--patience`), at {batch_text}; each model stops on its own (epochs "
                  f"trained per model in the tables)")
    else:
        budget = (f"**fixed steps** (`--steps` > 0): {suite['steps']} train steps at {batch_text} "
                  f"(≈{data.get('epochs_per_run') or 0:.2f} epochs of train/) in {suite['rounds']} rounds "
                  f"(`--rounds`), no early stopping")
    warmup = p.get("warmup_steps")
    return (f"* **Protocol** (every deep model alike): {budget}; Adam lr {suite['learning_rate']} (dense) + "
            f"Adagrad lr {suite['embedding_learning_rate']} (embeddings)"
            + (f", {warmup} warm-up steps" if warmup else "")
            + "; valid/ is evaluated after every round and the round with the best mean valid AUC is "
              f"restored and evaluated on test/. Eval batches: "
              f"{'all' if not suite['eval_steps'] else suite['eval_steps']}. Model runs trained "
              f"{meta['jobs']} at a time (`--jobs`).")


def _trained(r: Mapping) -> str:
    """``epochs (steps)`` a table row trained, means over its seeds."""
    e, st = (r.get("epochs_trained") or {}).get("mean"), (r.get("train_steps") or {}).get("mean")
    if e is None and st is None:
        return "—"
    return f"{fmt(e, 1)} ({fmt_count(st, ',')})"


# -- sections ------------------------------------------------------------------------------------
def quality(sec: Mapping, report_jobs: int = 1) -> list[str]:
    tasks = sec["tasks"]
    rows_in = table_rows(sec)
    gbdt = sec.get("gbdt", {})
    recipe = (sec.get("protocol") or {}).get("name") == "recipe"
    header = ["Model", "Params", "FLOPs/ex"] + [f"{t} {m}" for t in tasks for m in ("AUC", "GAUC")] \
        + ["mean AUC", "mean GAUC", "train ex/s", "epochs (steps)" if recipe else "rounds (steps)"]
    rows, values = [], []
    for r in rows_in:
        cells = [r["label"], fmt_count(r["params"]), fmt_count(r["flops"])]
        vals: list[float | None] = [None, None, None]
        for t in tasks:
            for m in ("auc", "gauc"):
                cells.append(fmt_stat(r["tasks"][t][m]))
                vals.append(r["tasks"][t][m]["mean"])
        cells += [fmt_stat(r["mean_auc"]), fmt_stat(r["mean_gauc"]),
                  fmt_count((r.get("train_examples_per_sec") or {}).get("mean"), ","), _trained(r)]
        vals += [r["mean_auc"]["mean"], r["mean_gauc"]["mean"], None, None]
        if r["model"] == "lightgbm":
            cells[1] = f"{fmt_count(sum((r.get('leaves') or {}).values()))} leaves"
        rows.append(cells)
        values.append(vals)
    _bold_best(rows, values, [None, None, None] + [True] * (2 * len(tasks)) + [True, True, None, None])
    lines = _table(header, rows)
    paper = sec.get("paper_row")
    if paper is not None:
        changes = ", ".join(f"`{k}={v}`" for k, v in (paper.get("changes") or {}).items())
        lines += ["", f"`{paper['label']}`: the same base INFNet with the `paper` preset "
                      f"(`infnet_tf.models.presets`) applied — " + (
                          changes if changes else "no field differs from the recommended defaults here, so it "
                                                  "is the same model run as `infnet`")
                  + "; same seeds, same protocol."]
    p = sec.get("protocol") or {}
    if recipe:
        lines += ["", f"Protocol: the product's batch-mode recipe for every model — up to {p.get('max_epochs')} "
                      f"full passes over train/, early stopping after {p.get('early_stopping_patience')} round(s) "
                      f"without a better mean valid AUC, the best round restored; batch {p.get('batch_size')}. "
                      "`epochs (steps)`: passes over train/ each model ran and its train steps, means over seeds "
                      "(the last `patience` epochs of an early-stopped run are the ones after its best round)."]
    elif p:
        lines += ["", f"Protocol: fixed budget — {p.get('steps')} steps at batch {p.get('batch_size')} in "
                      f"{p.get('rounds')} rounds for every model, no early stopping. `rounds (steps)`: means over "
                      "seeds."]
    lines += ["", f"Test metrics, mean ± sample std over seeds {sec['seeds']} (best per column in bold). "
                  "Params and FLOPs/example (forward, 2 × multiply-adds, analytical count of "
                  "`infnet_tf.models.cost`) per model; train ex/s: training examples/s of each run's last "
                  "round (after tracing/warm-up, input pipeline included; — with one round)"
                  + (f", while {report_jobs} runs shared the machine — see section 5 for clean "
                     "throughput ratios." if report_jobs > 1 else ".")]
    if "row" in gbdt:
        trees = gbdt["row"].get("trees") or {}
        lines += ["", f"LightGBM: one classifier per task on the {len(gbdt['features'])} non-sequence tokens as "
                      f"categorical features, {gbdt['params']['num_leaves']} leaves, lr "
                      f"{gbdt['params']['learning_rate']}, ≤ {gbdt['params']['max_rounds']} rounds early-stopped "
                      f"on valid AUC (trees kept: " + ", ".join(f"{t} {fmt(v, 0)}" for t, v in trees.items())
                  + "); no behaviour sequences; no FLOPs count."]
    elif gbdt.get("error"):
        lines += ["", f"LightGBM reference failed: `{gbdt['error']}`"]
    for r in sec["rows"] + ([paper] if paper is not None else []):
        if r["errors"]:
            lines += ["", f"**{r['label']}: failed runs** — " + "; ".join(r["errors"])]
    f = sec.get("findings") or {}
    if "best_baseline" in f:
        verdict = "INFNet has the best mean test AUC" if f["infnet_rank"] == 1 else \
            f"INFNet ranks {f['infnet_rank']} of {f['num_compared']} by mean test AUC"
        lines += ["", "**Findings (computed).** " + verdict +
                  f": {fmt(f['infnet_mean_auc'])} vs the best other model, {f['best_baseline']}, "
                  f"{fmt(f['best_baseline_mean_auc'])} (Δ {f['delta_mean_auc']:+.4f}, "
                  f"{fmt_pct(f['delta_mean_auc_pct'])}); "
                  + (f"the difference is {'within' if f['within_noise'] else 'larger than'} the combined "
                     f"seed std ({fmt(f['combined_seed_std'])}). " if len(sec["seeds"]) > 1 else
                     "one seed only, so no seed noise estimate. ")
                  + f"INFNet is best on AUC for "
                  f"{len(f['tasks_won_auc'])}/{len(tasks)} tasks ({', '.join(f['tasks_won_auc']) or 'none'}) and on "
                  f"GAUC for {len(f['tasks_won_gauc'])}/{len(tasks)} ({', '.join(f['tasks_won_gauc']) or 'none'})."
                  + (f" Among the deep models only: vs the best ({f['best_deep_baseline']}) Δ mean AUC "
                     f"{f['delta_vs_best_deep']:+.4f}; INFNet is best on AUC for "
                     f"{len(f['deep_tasks_won_auc'])}/{len(tasks)} tasks and on GAUC for "
                     f"{len(f['deep_tasks_won_gauc'])}/{len(tasks)} "
                     f"({', '.join(f['deep_tasks_won_gauc']) or 'none'})" if "best_deep_baseline" in f else "")
                  + (f"; its mean GAUC ranks {f['deep_gauc_rank']} of {f['num_deep']} deep models "
                     f"(Δ {f['delta_mean_gauc_vs_best_deep']:+.4f} vs {f['best_deep_gauc_baseline']})."
                     if "deep_gauc_rank" in f else ("." if "best_deep_baseline" in f else ""))
                  + (f" vs LightGBM: Δ mean AUC {f['delta_vs_gbdt']:+.4f}." if "delta_vs_gbdt" in f else "")
                  + (f" Recommended defaults vs the paper preset: Δ mean AUC {f['delta_vs_paper_preset']:+.4f}."
                     if "delta_vs_paper_preset" in f else "")]
    lines += ["", "![quality](quality_auc.png)"]
    return lines


def gbdt(sec: Mapping) -> list[str]:
    """``--sections=gbdt`` alone: the LightGBM rows of the quality table, without the deep models."""
    ref, tasks = sec["gbdt"], sec["tasks"]
    row = ref["row"]
    header = ["Model", "Leaves"] + [f"{t} {m}" for t in tasks for m in ("AUC", "GAUC")] + ["mean AUC", "mean GAUC"]
    cells = [row["label"], fmt_count(sum((row.get("leaves") or {}).values()))]
    cells += [fmt_stat(row["tasks"][t][m]) for t in tasks for m in ("auc", "gauc")]
    cells += [fmt_stat(row["mean_auc"]), fmt_stat(row["mean_gauc"])]
    trees = row.get("trees") or {}
    return _table(header, [cells]) + [
        "", f"Test metrics, mean ± sample std over seeds {sec['seeds']}. One LightGBM classifier per task on the "
            f"{len(ref['features'])} non-sequence tokens as categorical features, {ref['params']['num_leaves']} "
            f"leaves, lr {ref['params']['learning_rate']}, ≤ {ref['params']['max_rounds']} rounds early-stopped on "
            f"valid AUC (trees kept: " + ", ".join(f"{t} {fmt(v, 0)}" for t, v in trees.items())
        + "); no behaviour sequences. The same row appears in the quality table when that section runs."]


def ablations(sec: Mapping) -> list[str]:
    ref = sec["reference"]
    rows = [["**INFNet (full)**", "—", fmt_stat(ref["mean_auc"]), "—", "—", fmt_count(ref["params"]),
             fmt_count(ref["flops"]), _trained(ref)]]
    same = []
    for r in sec["rows"]:
        if "error" in r:
            rows.append([r["label"], r["group"], "—", "—", r["error"], "—", "—", "—"])
            continue
        if r["errors"]:
            rows.append([r["label"], r["group"], "failed: " + "; ".join(r["errors"]), "—", "—", "—", "—", "—"])
            continue
        td = ", ".join(f"{t} {v:+.4f}" for t, v in r["task_delta_auc"].items() if v is not None)
        label = r["label"] + (" ¹" if r.get("same_as_reference") else "")
        same += [r["id"]] if r.get("same_as_reference") else []
        rows.append([label, r["group"], fmt_stat(r["mean_auc"]), fmt_pct(r["rel_change_pct"]), td,
                     fmt_count(r["params"]), fmt_count(r["flops"]), _trained(r)])
    lines = _table(["Variant", "Design aspect", "mean AUC", "rel. change", "Δ AUC per task", "Params",
                    "FLOPs/ex", "epochs (steps)"], rows)
    if same:
        lines += ["", "¹ " + ", ".join(f"`{i}`" for i in same) + ": the switch already has this value in the "
                  "recommended defaults, so the variant is the full INFNet's own run (Δ = 0 by construction)."]
    noise = sec.get("seed_std_pct")
    lines += ["", f"Seeds {sec['seeds']}; the relative change is the mean over those seeds of the paired "
                  "difference (variant − full INFNet, same seed) in mean test AUC, divided by the full "
                  "model's mean AUC. `macro` rows are the paper's Fig. 3 regressions, `Beyond the paper` rows turn one "
                  "of the recommended defaults' fixes back to the paper's choice, the others are Table 4. Rows "
                  "come from `infnet_tf.models.presets.ABLATIONS` (also `python -m infnet_tf.train --preset`)."]
    if noise is not None:
        lines += ["", f"Seed noise: the full INFNet's mean AUC varies by ±{noise:.2f}% (1 sample std over "
                      f"{sec['quality_seed_stat']['n']} quality seeds); changes inside that band are not "
                      "distinguishable from seed noise at this budget."]
    lines += ["", "![ablations](ablations.png)"]
    return lines


def hubs(sec: Mapping) -> list[str]:
    lines = []
    for axis, title in (("n_cat_hubs", "categorical hubs n_c"), ("n_shared_task_hubs", "shared task hubs n_shared")):
        rows = []
        for p in sec[axis]:
            mark = " (default)" if p["value"] == sec["defaults"][axis] else ""
            rows.append([f"{p['value']}{mark}", fmt_stat(p["mean_auc"]), fmt_stat(p["mean_gauc"]),
                         fmt_count(p["flops"]), fmt_count(p["params"]),
                         "failed: " + "; ".join(p["errors"]) if p["errors"] else ""])
        lines += [f"**{title}** (other hub count at its default)", ""]
        lines += _table([axis, "mean AUC", "mean GAUC", "FLOPs/ex", "Params", ""], rows) + [""]
    lines += [f"Seeds {sec['seeds']}. With n_shared = 0 the task hub group is the task tokens alone "
              "(Table 4's \"Specific only\" variant).", "", "![hub sweep](hub_sweep.png)"]
    return lines


def scaling(sec: Mapping) -> list[str]:
    rows = []
    for model, points in sec["series"].items():
        for p in points:
            rows.append([model, str(p["d"]), str(p["num_blocks"]), fmt_count(p["params"]), fmt_count(p["flops"]),
                         fmt_stat(p["mean_auc"]), "failed: " + "; ".join(p["errors"]) if p["errors"] else ""])
    lines = _table(["Model", "d", "blocks", "Params", "FLOPs/ex", "mean AUC", ""], rows)
    slopes = ", ".join(f"{m} {fmt(s, 4) if s is not None else '—'}" for m, s in sec["auc_per_decade_of_flops"].items())
    lines += ["", f"Width scaled with the width rule (all hidden widths ∝ d); seeds {sec['seeds']}. Least-squares "
                  f"slope of mean AUC per decade of FLOPs: {slopes}.", "", "![scaling](scaling.png)"]
    return lines


def efficiency(sec: Mapping) -> list[str]:
    lines = []
    ratios = sec.get("ratios") or {}
    if ratios:
        lines += _table(["ratio", "value"], [[k, f"{v:.3f}"] for k, v in ratios.items()]) + [""]
    seq = sec.get("seq_len", {})
    lines += ["**Step time vs sequence length** (`bench.block_scaling`)", ""]
    if seq.get("available"):
        series = seq["series"]
        models = list(series)
        lens = series[models[0]]["seq_len"]
        rows = []
        for i, L in enumerate(lens):
            rows.append([str(L)] + [fmt((series[m]["step_seconds"][i] or 0) * 1e3, 1) for m in models])
        lines += _table(["seq len"] + [f"{m} step (ms)" for m in models], rows)
        if seq.get("notes"):
            lines += ["", seq["notes"]]
    else:
        lines += [f"Unavailable: {seq.get('reason', 'not measured')}"]
    lines += ["", "![step time vs sequence length](efficiency_seq_len.png)", "",
              "**Training throughput** (`bench.train_throughput`)", ""]
    tt = sec.get("train_throughput", {})
    if tt.get("available"):
        rows = [["input pipeline alone", fmt_count(tt["input_examples_per_sec"])],
                ["INFNet train step (cached batch)", fmt_count(tt["infnet_step_examples_per_sec"])],
                ["all-to-all train step (cached batch)", fmt_count(tt["all_to_all_step_examples_per_sec"])],
                ["INFNet input + train step", fmt_count(tt["infnet_end_to_end_examples_per_sec"])]]
        lines += _table(["measurement", "examples/s"], rows)
        lines += ["", f"Batch {tt['batch_size']}, {tt['steps']} measured steps after {tt['warmup_steps']} warm-up."]
    else:
        lines += [f"Unavailable: {tt.get('reason', 'not measured')}"]
    sl = sec.get("serving_latency", {})
    lines += ["", "**SavedModel serving latency** (`bench.serving_latency`)", ""]
    if sl.get("available"):
        rows = []
        for model, d in sl["models"].items():
            for b, r in d["batch"].items():
                rows.append([model, str(b)] + [fmt(r[k], 2) for k in ("raw_p50_ms", "raw_p99_ms", "ids_p50_ms",
                                                                       "ids_p99_ms", "keras_p50_ms", "keras_p99_ms")])
        lines += _table(["model", "batch", "raw p50 ms", "raw p99 ms", "ids p50 ms", "ids p99 ms",
                         "Keras p50 ms", "Keras p99 ms"], rows)
        lines += ["", "`raw`: the exported SavedModel's `serving_default` (raw features → in-graph transform → "
                      "model) through the TF1 session loader, as TF Serving runs it; `ids`: the same SavedModel's "
                      "model-input signature (no transform); `Keras`: the in-process model. Random weights "
                      "(latency does not depend on them), same d and blocks as the report's base model."]
    else:
        lines += [f"Unavailable: {sl.get('reason', 'not measured')}"]
    q = sec.get("quality_run_throughput")
    if q:
        lines += ["", "Training examples/s inside the quality runs (input included, same batch size): "
                  + ", ".join(f"{m} {fmt_count(v)}" for m, v in q.items()) + "."]
    return lines


def attention(sec: Mapping) -> list[str]:
    if "error" in sec:
        return [f"Unavailable: {sec['error']}"]
    views = sec["views"]
    cat, task, seqs = views.get("categorical"), views.get("task"), views.get("sequence_totals", {})
    header = ["task hub"]
    if cat:
        header += ["top categorical token (× uniform)", f"categorical entropy (over {cat['tokens']})"]
    if task:
        header += [f"task-token entropy (over {task['tokens']})"]
    header += [f"{c} total" for c in seqs]
    rows = []
    for i, r in enumerate(sec["rows"]):
        row = [r]
        if cat:
            row += [f"{cat['top'][i]} ({cat['top_over_uniform'][i]:.2f}×)", fmt(cat["entropy"][i], 3)]
        if task:
            row += [fmt(task["entropy"][i], 3)]
        row += [fmt(v[i], 3) for v in seqs.values()]
        rows.append(row)
    lines = ["![attention heat map](attention_heatmap.png)", "",
             f"Last block of the full INFNet (seed {sec['seed']}, its best-on-valid checkpoint), attention of "
             f"each task hub over the input tokens averaged over {sec['examples']} test examples and all "
             "heads; each behaviour type's positions are summed into one column. Each view (categorical "
             "tokens, each behaviour type, task tokens) is its own softmax, so weights compare only within a "
             "view: entropy 1.000 means uniform attention over that view's tokens (no token preferred), "
             "\"× uniform\" is the top token's weight over the uniform weight, and a behaviour type's total "
             "is the share of examples whose sequence of that type is not empty.", ""]
    lines += _table(header, rows)
    if cat:
        lines += ["", f"Computed: the most selective hub's categorical entropy is {min(cat['entropy']):.3f} and "
                      f"its top token gets {max(cat['top_over_uniform']):.2f}× the uniform weight."]
    return lines


RENDERERS = {"gbdt": gbdt, "quality": quality, "ablations": ablations, "hubs": hubs, "scaling": scaling,
             "efficiency": efficiency, "attention": attention}


def runs_table(runs: list[Mapping]) -> list[str]:
    rows = []
    for r in runs:
        if "error" in r:
            rows.append([f"`{r['key']}`", r["label"], str(r["seed"]), "FAILED", "—", "—", "—",
                         fmt_seconds(r.get("wall_seconds"))])
            continue
        best = r.get("best") or {}
        trained = f"{r.get('epochs_trained', '—')} ({r.get('train_steps', '—')})" \
            + (" early stop" if r.get("stopped_early") else "")
        rows.append([f"`{r['key']}`", r["label"], str(r["seed"]), fmt(r["test_mean_auc"]), fmt(r["valid_mean_auc"]),
                     trained, str(best.get("global_step", "—")), fmt_seconds(r.get("wall_seconds"))])
    return _table(["run", "first needed by", "seed", "test mean AUC", "valid mean AUC", "rounds (steps)",
                   "best step", "wall time"], rows)


def render(report: Mapping) -> str:
    lines = header(report)
    for name in RENDER_ORDER:
        sec = report["sections"].get(name)
        if sec is None:
            continue
        lines += [f"## {SECTION_TITLES[name]}", "", f"Wall time {fmt_seconds(sec.get('wall_seconds'))}.", ""]
        if sec.get("status") == "failed":
            lines += [f"**Section failed**: `{sec.get('error')}`", ""]
            continue
        extra = {"report_jobs": report["meta"].get("jobs", 1)} if name == "quality" else {}
        lines += RENDERERS[name](sec, **extra) + [""]
    lines += ["## Model runs", "", "Every trained model of this report (runs shared between sections are "
              "trained once); run directories under `runs/`.", ""]
    lines += (runs_table(report["runs"]) if report["runs"] else ["(none: no section trained a model)"]) + [""]
    lines += [f"Figures: " + ", ".join(f"`{n}`" for n in report["figures"]) + "; every figure's data is in "
              "`report.json` under `sections.<section>.figures.<png>`.", ""]
    return "\n".join(lines)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
