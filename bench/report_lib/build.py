"""The benchmark report's run: check the data, run the sections, write ``report.md``/``report.json``
(the library of ``python -m bench.report``; the suite's settings are :class:`bench.report_lib.config.SuiteConfig`)."""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from bench.report_lib import environment, markdown
from bench.report_lib.config import REPO_ROOT, SuiteConfig

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
SECTION_ORDER = ("gbdt", "quality", "ablations", "hubs", "scaling", "attention", "efficiency")


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
    from infnet_tf.feature_spec import load_spec

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


def load_data(suite: SuiteConfig):
    """The transform artifact of ``--data`` and its feature layout, the ``--spec`` checked against it.
    ValueError / FileNotFoundError: bad data or spec (the command exits 2)."""
    from infnet_tf.data import artifact as artifact_lib

    artifact = artifact_lib.load(suite.data)
    layout = artifact.feature_layout
    if suite.spec:
        check_spec(suite.spec, artifact)
    return artifact, layout


def run(suite: SuiteConfig, artifact, layout, argv: list[str]) -> int:
    """Run ``suite`` on the data of :func:`load_data` and write its report under
    ``<output_dir>/<run_name>/``; ``argv`` is the command line recorded in the report (no program name).
    Returns the exit status: 0, or 1 if any model run or section failed (the report is still written)."""
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
    budget += f", weight average decay {suite.train_config(0).weight_average_decay:.4g}"
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
