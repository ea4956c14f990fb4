"""The report's figures (matplotlib, Agg). Each function draws exactly the data dict it is given —
the same dict the report's JSON stores for that figure — so every PNG can be redrawn from the JSON.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def _nan(values):
    return [np.nan if v is None else v for v in values]


def quality(data: Mapping[str, Any], path: str) -> None:
    """Grouped bars: test AUC per task and model (mean ± std over seeds)."""
    plt = _plt()
    models, tasks = data["models"], data["tasks"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(models) * len(tasks) / 2 + 2), 4.0))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(tasks))
    for i, model in enumerate(models):
        mean = _nan(data["auc_mean"][model])
        std = _nan(data["auc_std"][model])
        ax.bar(x + (i - (len(models) - 1) / 2) * width, mean, width, yerr=std, label=model, capsize=2)
    finite = [v for m in models for v in data["auc_mean"][m] if v is not None]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.02), min(1.0, max(finite) + 0.01))
    ax.set_xticks(x, labels=tasks)
    ax.set_ylabel("test AUC")
    ax.set_title(f"Test AUC per task (mean ± std over {data['num_seeds']} seed(s))", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def ablations(data: Mapping[str, Any], path: str) -> None:
    """Horizontal bars: relative change of mean test AUC vs the full INFNet (paper Fig. 3 / Table 4)."""
    plt = _plt()
    labels, rel, groups = data["labels"], _nan(data["rel_change_pct"]), data["groups"]
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.35 * max(len(labels), 1)))
    colors = ["tab:red" if g == "macro" else "tab:blue" for g in groups]
    y = np.arange(len(labels))
    ax.barh(y, rel, color=colors)
    ax.set_yticks(y, labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.0, color="k", lw=0.8)
    noise = data.get("seed_std_pct")
    if noise:
        ax.axvspan(-noise, noise, color="grey", alpha=0.2, label=f"±1 seed std of full INFNet ({noise:.2f}%)")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("relative change of mean test AUC vs full INFNet (%)")
    ax.set_title(f"Ablations (full INFNet mean AUC {data['reference_mean_auc']:.4f}); red = macro (Fig. 3)",
                 fontsize=9)
    _save(fig, path)


def hub_sweep(data: Mapping[str, Any], path: str) -> None:
    """Two panels (paper Fig. 4): mean test AUC and FLOPs vs n_c and vs n_shared."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, axis, title in zip(axes, ("n_cat_hubs", "n_shared_task_hubs"),
                               ("categorical hubs $n_c$", "shared task hubs $n_{shared}$")):
        panel = data[axis]
        xs = [str(v) for v in panel["values"]]
        ax.errorbar(xs, _nan(panel["auc_mean"]), yerr=_nan(panel["auc_std"]), marker="o", color="tab:blue",
                    capsize=3)
        ax.set_xlabel(title)
        ax.set_ylabel("mean test AUC", color="tab:blue")
        twin = ax.twinx()
        twin.plot(xs, [f / 1e6 for f in panel["flops"]], marker="s", ls="--", color="tab:orange")
        twin.set_ylabel("MFLOPs / example", color="tab:orange")
    fig.suptitle("Hub composition sweep (paper Fig. 4)", fontsize=10)
    _save(fig, path)


def scaling(data: Mapping[str, Any], path: str) -> None:
    """Mean test AUC vs FLOPs per example (log x), one line per model (paper Fig. 6)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for model, series in data["series"].items():
        flops = [f / 1e6 for f in series["flops"]]
        ax.errorbar(flops, _nan(series["auc_mean"]), yerr=_nan(series["auc_std"]), marker="o", capsize=3,
                    label=model)
        for f, a, d in zip(flops, series["auc_mean"], series["d"]):
            if a is not None:
                ax.annotate(f"d={d}", (f, a), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("forward MFLOPs / example (log)")
    ax.set_ylabel("mean test AUC")
    ax.set_title("Scaling: mean AUC vs FLOPs (paper Fig. 6)", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)


def seq_len_scaling(data: Mapping[str, Any], path: str) -> None:
    """Train step time vs sequence length, INFNet vs all-to-all (log-log)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for model, series in data["series"].items():
        ax.plot(series["seq_len"], [s * 1e3 if s is not None else np.nan for s in series["step_seconds"]],
                marker="o", label=model)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("behaviour sequence length")
    ax.set_ylabel("train step time (ms)")
    ax.set_title(data.get("title", "Step time vs sequence length"), fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)


def heatmap(data: Mapping[str, Any], path: str) -> None:
    """Task hubs × token groups (paper Fig. 5), drawn by the training package's heat map renderer."""
    from infnet_tf.training.summaries import heatmap_png

    png = heatmap_png(np.asarray(data["matrix"]), data["rows"], data["cols"], title=data.get("title", ""))
    with open(path, "wb") as f:
        f.write(png)


def placeholder(message: str, path: str) -> None:
    """A figure that says why there is no data (a section that could not be measured)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=9)
    _save(fig, path)
