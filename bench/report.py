r"""The benchmark report: INFNet vs baselines, ablations, hub sweep, scaling, efficiency, attention.

    python -m bench.report --spec=feature_specs/kuairand_synthetic.yaml --data=DIR [--smoke]
        [--sections=quality,ablations,hubs,scaling,attention,efficiency] [--seeds=3]
        [--max_epochs=8 --patience=2 | --steps=N --rounds=R] [--batch_size=0] ...
    python -m bench.report --data=DIR --sections=gbdt     # the LightGBM reference alone

Runs the documented suite (``bench/REPORT.md``) on a prepared dataset (the dataset job's output:
``<data>/{train,valid,test}/dt=*`` and ``<data>/transform/transform_artifact.json``) and writes
``<output_dir>/<run_name>/`` (default ``$INFNET_WORKDIR/bench/<UTC time>/``, i.e.
``./workdir/bench/...`` — never into the checkout's tracked files):


* ``report.md`` — the report (hardware, versions, seeds, the exact command, wall time per section,
  every table; nothing typed by hand);
* ``report.json`` — everything in the report, and the data of every figure under
  ``sections.<section>.figures.<png>``;
* ``quality_auc.png``, ``ablations.png``, ``hub_sweep.png``, ``scaling.png``,
  ``efficiency_seq_len.png``, ``attention_heatmap.png``;
* ``runs/<model>-<key>/`` — each trained model (the batch trainer's ``metrics.json``, TensorBoard
  logs, ``bench_run.json``).

Every model is trained by the product's batch mode (``Trainer`` + ``run_batch``) with the same
protocol, selected on valid/ and reported on test/. By default that is the product's own recipe
(equal treatment): up to ``--max_epochs`` full passes over train/, early stopping after
``--patience`` rounds without a better mean valid AUC, the best round restored, batch size from
``infnet_tf.training.recipe.auto_batch_size`` of the train rows (``--batch_size=0``; a value
overrides). ``--steps`` > 0 switches to a fixed budget of ``--steps`` steps in ``--rounds`` rounds
(what ``--smoke`` uses). The quality table adds "infnet (paper preset)" (the ``paper`` preset of
``infnet_tf.models.presets`` on the same base INFNet); the ablation rows are that module's
``ABLATIONS``. Flags left unset take the defaults of
:mod:`bench.report_lib.config` (or its ``SMOKE`` preset with ``--smoke``). Re-running with the same
``--run_name`` re-uses finished model runs.

Sections run independently: ``--sections`` picks any of them; ``gbdt`` (not in the default list; its
row is part of the quality table) runs the LightGBM reference without training any deep model.
``--width`` (alias ``--d``) is the base width of *every* model: the token/embedding width and, by the
width rule of :mod:`bench.report_lib.config`, every hidden width (registry default × width/64) —
unlike ``python -m infnet_tf.train --d``, which sets the token width only. Exit status: 0, 1 if any model run or section failed
(the report is still written), 2 for bad flags or data.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)

from bench.report_lib import config as cfg_lib
from bench.report_lib import environment, markdown
from bench.report_lib.config import ALL_SECTIONS, SuiteConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
SECTION_ORDER = ("gbdt", "quality", "ablations", "hubs", "scaling", "attention", "efficiency")

_HELP = {
    "data": "Dataset job output directory: {train,valid,test}/dt=... partitions + transform/transform_artifact.json.",
    "spec": "Feature spec YAML the data was built from (its fingerprint is checked against the artifact).",
    "output_dir": "Reports go to <output_dir>/<run_name>/ (default: $INFNET_WORKDIR/bench, INFNET_WORKDIR "
                  "defaulting to ./workdir of the checkout, git-ignored).",
    "run_name": "Name of this report's directory (default: UTC timestamp, '-smoke' appended with --smoke). "
                "Re-using a name re-uses its finished model runs.",
    "sections": f"Comma-separated sections to run, any of {','.join(ALL_SECTIONS)}; gbdt (the LightGBM "
                "reference alone, no deep model trained) only when named.",
    "seeds": "Quality table: train every model with seeds 0..N-1 (mean ± std).",
    "sweep_seeds": "Ablations, hub sweep and scaling: seeds 0..N-1 (<= --seeds; those runs are shared).",
    "steps": "0: the product's recipe for every model (up to --max_epochs full passes over train/, early "
             "stopping after --patience rounds without a better mean valid AUC, best round restored); "
             "> 0: a fixed budget of this many train steps per model run instead (no early stopping).",
    "rounds": "With --steps > 0: evaluation rounds on valid/ over the steps (model selection: best mean valid AUC).",
    "max_epochs": "With --steps=0: at most this many full passes over train/ per model run.",
    "patience": "With --steps=0: stop after this many rounds without a better mean valid AUC (0: never).",
    "batch_size": "Training batch size; 0: the product recipe's (infnet_tf.training.recipe.auto_batch_size "
                  "of the train rows).",
    "eval_batch_size": "Evaluation batch size.",
    "eval_steps": "Evaluate on at most this many batches of valid/ and test/; 0: all.",
    "learning_rate": "Adam learning rate of dense weights.",
    "embedding_learning_rate": "Adagrad learning rate of embedding tables.",
    "d": "Base width of EVERY model: the token/embedding width and, by the width rule, every hidden width "
         "(registry default x width/64). Not the same as python -m infnet_tf.train --d (token width only).",
    "num_blocks": "INFNet / all-to-all blocks L.",
    "num_heads": "Attention heads.",
    "n_cat_hubs": "INFNet categorical hubs n_c (base model).",
    "n_shared_task_hubs": "INFNet shared task hubs n_shared (base model).",
    "models": "Models of the quality table (must include infnet).",
    "gbdt_rounds": "LightGBM: maximum boosting rounds (early-stopped on valid AUC).",
    "gbdt_leaves": "LightGBM: leaves per tree.",
    "gbdt_learning_rate": "LightGBM: learning rate.",
    "ablations": "Ablation variants to run, or 'all': " + ",".join(cfg_lib.ABLATION_IDS) + ".",
    "hub_cat": "Hub sweep: values of n_c.",
    "hub_shared": "Hub sweep: values of n_shared.",
    "scaling_models": "Scaling: models (must include infnet).",
    "scaling_widths": "Scaling: widths d.",
    "efficiency_seq_lens": "Efficiency: behaviour-sequence lengths for the step-time scan.",
    "efficiency_steps": "Efficiency: measured steps per measurement.",
    "efficiency_batch_size": "Efficiency: batch size of the serving latency bench.",
    "jobs": "Model runs trained at once in worker processes (0: min(2, CPU cores)); 1: in this process.",
}
_BOOL_FLAGS = ("smoke", "resume", "gbdt")
_FLAG_NAMES = {"d": ("--width", "--d")}  # field -> flags (--d kept as an alias of --width)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(SuiteConfig):
        if f.name in _BOOL_FLAGS:
            p.add_argument(f"--{f.name}", dest=f.name, action="store_true", default=None)
            p.add_argument(f"--no{f.name}", dest=f.name, action="store_false", default=None)
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        names = _FLAG_NAMES.get(f.name, (f"--{f.name}",))
        p.add_argument(*names, dest=f.name, default=None, metavar=names[0][2:].upper(),
                       help=f"{_HELP.get(f.name, '')} (default: {shown}"
                            f"{'; --smoke: ' + _smoke_shown(f.name) if f.name in cfg_lib.SMOKE else ''})")
    return p


def _smoke_shown(name: str) -> str:
    v = cfg_lib.SMOKE[name]
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _coerce(name: str, default: Any, text: str) -> Any:
    if isinstance(default, tuple):
        items = [x.strip() for x in text.split(",") if x.strip()]
        if default and isinstance(default[0], int):
            try:
                return tuple(int(x) for x in items)
            except ValueError:
                raise ValueError(f"bench.report: --{name}: expected comma-separated ints, got {text!r}") from None
        return tuple(items)
    if isinstance(default, bool):
        return text
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"bench.report: --{name}: expected an int, got {text!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"bench.report: --{name}: expected a number, got {text!r}") from None
    return text


def default_output_dir() -> str:
    """``$INFNET_WORKDIR/bench``; INFNET_WORKDIR defaults to the checkout's git-ignored ``workdir/``."""
    work = os.environ.get("INFNET_WORKDIR") or os.path.join(REPO_ROOT, "workdir")
    return os.path.join(work, "bench")


def suite_from_args(args: argparse.Namespace) -> SuiteConfig:
    """Unset flags take the SMOKE preset (with --smoke) or the defaults; set flags win."""
    values: dict[str, Any] = {}
    smoke = bool(args.smoke)
    for f in dataclasses.fields(SuiteConfig):
        given = getattr(args, f.name)
        if given is None:
            if smoke and f.name in cfg_lib.SMOKE:
                values[f.name] = cfg_lib.SMOKE[f.name]
            continue
        default = f.default if f.default is not dataclasses.MISSING else ""
        values[f.name] = given if f.name in _BOOL_FLAGS else _coerce(f.name, default, given)
    values["smoke"] = smoke
    if not values.get("output_dir"):
        values["output_dir"] = default_output_dir()
    if not values.get("run_name"):
        values["run_name"] = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + ("-smoke" if smoke else "")
    return SuiteConfig(**values)


# -- data ----------------------------------------------------------------------------------------
def describe_data(suite: SuiteConfig, artifact: dict, layout) -> dict:
    """Examples per split (counted from the TFRecords), tasks, tokens, the spec check."""
    import tensorflow as tf

    from infnet_tf.input import resolve_files

    examples = _dataset_counts(suite.data)
    for split in (s for s in ("train", "valid", "test") if s not in examples):
        files = resolve_files(os.path.join(suite.data, split))
        ds = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=4)
        examples[split] = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())
    return {
        "path": os.path.abspath(suite.data), "name": artifact.spec_name, "spec": suite.spec,
        "spec_fingerprint": artifact.spec_fingerprint, "examples": examples,
        "tasks": list(layout.task_names), "num_categorical": len(layout.categorical),
        "categorical": [f.name for f in layout.categorical],
        "sequences": [[s.name, s.max_len] for s in layout.sequences],
        # fixed-step protocol: the budget in passes over train/ (the recipe protocol counts epochs itself)
        "epochs_per_run": (suite.steps * suite.resolved_batch_size / max(examples["train"], 1)
                           if suite.steps else None),
    }


def _dataset_counts(data_dir: str) -> dict[str, int]:
    """Examples per split from the dataset job's ``_DATASET.json`` (empty when it is not there)."""
    import tensorflow as tf

    path = os.path.join(data_dir, "_DATASET.json")
    try:
        with tf.io.gfile.GFile(path) as f:
            counts = json.load(f).get("counts", {})
        return {s: int(counts[s]["written"]) for s in ("train", "valid", "test") if s in counts}
    except (tf.errors.OpError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def check_spec(spec_path: str, artifact) -> None:
    from infnet_tf.spec import load_spec

    spec = load_spec(spec_path)
    expected = artifact.spec_fingerprint
    if expected and spec.fingerprint() != expected:
        raise ValueError(f"--spec={spec_path} (fingerprint {spec.fingerprint()[:12]}) is not the spec the data "
                         f"was built from (artifact fingerprint {str(expected)[:12]})")


# -- output --------------------------------------------------------------------------------------
def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _json_safe(value.item())
    return value


def write_report(run_dir: str, report: dict) -> None:
    safe = _json_safe(report)
    for name, text in ((REPORT_JSON, json.dumps(safe, indent=1, sort_keys=False)),
                       (REPORT_MD, markdown.render(safe))):
        tmp = os.path.join(run_dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(run_dir, name))


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not args.data:
        print("bench.report: error: --data is required", file=sys.stderr)
        return 2
    try:
        suite = suite_from_args(args)
    except ValueError as exc:
        print(f"bench.report: error: {exc}", file=sys.stderr)
        return 2
    from infnet_tf.data import artifact as artifact_lib

    try:
        artifact = artifact_lib.load(suite.data)
        layout = artifact.feature_layout
        if suite.spec:
            check_spec(suite.spec, artifact)
    except (ValueError, FileNotFoundError) as exc:
        print(f"bench.report: error: {exc}", file=sys.stderr)
        return 2

    from bench.report_lib import sections as sec_lib
    from bench.report_lib.efficiency import efficiency
    from bench.report_lib.runner import Progress, Runner

    progress = Progress(jobs=suite.effective_jobs)
    run_dir = os.path.join(suite.output_dir, suite.run_name)
    os.makedirs(run_dir, exist_ok=True)
    progress.line(f"report -> {run_dir} (sections: {','.join(suite.sections)}; "
                  f"{'smoke' if suite.smoke else 'default'} configuration)")
    data = describe_data(suite, artifact, layout)
    budget = (f"fixed budget {suite.steps} steps x batch {suite.resolved_batch_size} = "
              f"{data['epochs_per_run']:.2f} epochs per run in {suite.rounds} rounds" if suite.steps else
              f"recipe: up to {suite.max_epochs} epochs at batch {suite.resolved_batch_size}"
              f"{'' if suite.batch_size else ' (auto)'}, early stopping patience {suite.patience}")
    progress.line("data: " + ", ".join(f"{s} {n:,}" for s, n in data["examples"].items())
                  + f" examples; {budget}")
    runner = Runner(suite, layout, os.path.join(run_dir, "runs"), progress, jobs=suite.effective_jobs)
    ctx = sec_lib.Context(suite=suite, layout=layout, runner=runner, progress=progress, out_dir=run_dir)
    report: dict[str, Any] = {
        "meta": {
            "run_name": suite.run_name, "command": environment.command_line(argv), "cwd": os.getcwd(),
            "python": environment.interpreter(), "started_utc": markdown.utc_now(),
            "hardware": environment.hardware(), "versions": environment.versions(),
            "git": environment.git_state(REPO_ROOT),
            "suite": suite.to_dict(), "data": data,
            "seeds": {"quality": list(suite.seed_list), "sweeps": list(suite.sweep_seed_list)},
            "jobs": suite.effective_jobs,
            "base_model_config": suite.model_config("infnet").to_dict(),
            "train_config": suite.train_config(0).to_dict(),
            "protocol": suite.protocol_dict(),
            "paper_model_config": suite.paper_config().to_dict(),
        },
        "sections": {}, "figures": ctx.figures, "runs": [],
    }
    functions = {"gbdt": sec_lib.gbdt, "quality": sec_lib.quality, "ablations": sec_lib.ablations, "hubs": sec_lib.hubs,
                 "scaling": sec_lib.scaling, "attention": sec_lib.attention, "efficiency": efficiency}
    planned = runner.plan([run for name in suite.sections for run in sec_lib.planned_runs(suite, name)])
    progress.line(f"{planned} distinct model runs planned, {suite.effective_jobs} at a time")
    failed_sections = []
    for name in (s for s in SECTION_ORDER if s in suite.sections):
        if name == "efficiency":
            runner.close()  # nothing else runs while the efficiency section times things
        start = time.perf_counter()
        progress.line(f"== section {name} ==")
        try:
            result = functions[name](ctx)
            result["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - later sections still run; the report says what failed
            import traceback

            traceback.print_exc()
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
            failed_sections.append(name)
        result["wall_seconds"] = time.perf_counter() - start
        ctx.results[name] = result
        report["sections"][name] = result
        progress.line(f"== section {name}: {result['status']} in {result['wall_seconds']:.0f}s ==")
        _finish_meta(report, runner, progress)
        write_report(run_dir, report)
    runner.close()
    _finish_meta(report, runner, progress)
    write_report(run_dir, report)
    failed_runs = [r for r in runner.results if "error" in r]
    progress.line(f"wrote {os.path.join(run_dir, REPORT_MD)}, {REPORT_JSON} and {len(ctx.figures)} figures "
                  f"in {progress.elapsed():.0f}s"
                  + (f"; FAILED: {len(failed_runs)} run(s), sections {failed_sections}"
                     if failed_runs or failed_sections else ""))
    return 1 if failed_runs or failed_sections else 0


def _finish_meta(report: dict, runner, progress) -> None:
    results = runner.results
    report["runs"] = results
    trained = sum(1 for r in results if "error" not in r and r.get("wall_seconds") is not None
                  and not r.get("_reused"))
    report["meta"].update(
        finished_utc=markdown.utc_now(), wall_seconds=progress.elapsed(),
        runs={"total": len(results), "failed": sum(1 for r in results if "error" in r),
              "reused": sum(1 for r in results if r.get("_reused")),
              "trained": trained})


if __name__ == "__main__":
    from infnet_tf.env import hard_exit

    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    hard_exit(status)
