"""Running the dataset job's pipeline (:mod:`pipelines.pipeline`): Beam runner defaults, quiet SDK
workers, the driver's stages around the pipeline (preflight, staging, commit), and which failures are
bad input (exit 2 with one line).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time

# First: pipelines.pipeline imports apache_beam with its import-time apitools warning silenced.
from pipelines.pipeline import NAMESPACE, PipelineOptions, beam, build_pipeline, log  # isort: skip
from infnet_tf.feature_spec import SpecError, load_spec
from pipelines import io, job
from pipelines.columns import SchemaError
from pipelines.job import JobOptions
from pipelines.split import NoUsableRows


# What the SDK worker processes log (they print to this job's stderr, and relay to the runner, which
# logs each record again as "Worker: ..."). Quiet by default: the driver already logs the job's
# progress, so the workers' INFO lines (their "stage ..." lines, one per worker) would only repeat
# it, and their start-up warnings ("No semi_persistent_directory found", "Discarding unparseable
# args" for the DirectRunner's own options) are harmless. Errors still show; --verbose shows all.
QUIET_WORKER_LOG_LEVEL = "WARNING"
QUIET_WORKER_LOG_OVERRIDES = {"apache_beam.options.pipeline_options": "ERROR",
                              "apache_beam.runners.worker.sdk_worker_main": "ERROR",
                              "__main__": "ERROR"}  # the worker's entry point, sdk_worker_main


def with_runner_defaults(beam_args: list[str], verbose: bool = False) -> list[str]:
    """Add the DirectRunner defaults (two worker processes) unless the flags say otherwise, and the
    SDK workers' log levels (quiet unless ``verbose``; flags given explicitly win)."""
    def given(flag: str) -> bool:
        return any(a == flag or a.startswith(flag + "=") for a in beam_args)

    out = list(beam_args)
    if not given("--runner"):
        out.append("--runner=DirectRunner")
    runner = next((a.split("=", 1)[1] if "=" in a else beam_args[beam_args.index(a) + 1]
                   for a in out if a.startswith("--runner")), "DirectRunner")
    if runner in ("DirectRunner", "direct", "BundleBasedDirectRunner"):
        if not given("--direct_num_workers"):
            out.append("--direct_num_workers=2")
        if not given("--direct_running_mode"):
            out.append("--direct_running_mode=multi_processing")
    if not verbose:
        if not given("--default_sdk_harness_log_level"):
            out.append(f"--default_sdk_harness_log_level={QUIET_WORKER_LOG_LEVEL}")
        if not given("--sdk_harness_log_level_overrides"):
            out.append(f"--sdk_harness_log_level_overrides={json.dumps(QUIET_WORKER_LOG_OVERRIDES)}")
    return out


# The two lines each SDK worker process prints to this job's stderr while it starts, before it has
# read the pipeline options (so no log level reaches them): apache_beam's import-time apitools
# warning, and the log handler's "created" notice (printed because that warning configured the
# worker's root logger). Dropped while the workers run quiet (not --verbose); everything else the
# workers print (errors, tracebacks) passes through unchanged.
WORKER_STARTUP_LINES = (b"WARNING:root:apitools not found, and bigquery client libraries are not available",
                        b"INFO:__main__:Logging handler created.")


def _quiet_workers(beam_args: list[str]) -> bool:
    levels = [a.split("=", 1)[1] for a in beam_args if a.startswith("--default_sdk_harness_log_level=")]
    return bool(levels) and levels[-1].upper() in ("WARNING", "WARN", "ERROR", "CRITICAL")


@contextlib.contextmanager
def worker_startup_lines_dropped(enabled: bool = True):
    """While the pipeline runs, pass this process's stderr (which the worker processes inherit)
    through a pipe that drops :data:`WORKER_STARTUP_LINES`."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no usable fd 2: nothing to quiet
        yield
        return

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not line.startswith(WORKER_STARTUP_LINES):
                    try:
                        os.write(saved, line)
                    except OSError:
                        pass
        os.close(saved)

    thread = threading.Thread(target=pump, name="worker-stderr", daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe ends (EOF) once the worker processes holding it have exited
        thread.join(timeout=2)


def _metrics_lines(result) -> list[str]:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return []
    totals: dict[str, int] = {}
    for c in counters:
        if c.key.metric.namespace == NAMESPACE:
            totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(c.committed or c.attempted or 0)
    return [f"  {name:<40} {value:>12,}" for name, value in sorted(totals.items())]


LOCAL_RUNNERS = ("DirectRunner", "direct", "BundleBasedDirectRunner", "SwitchingDirectRunner", "PrismRunner")


class RunnerPathError(ValueError):
    """A local --raw/--output with a runner whose workers run on other machines."""


def check_runner_paths(options: JobOptions, beam_args: list[str]) -> None:
    """Refuse local ``--output``/``--raw`` paths under a distributed runner (Dataflow, Flink, Spark):
    its workers run elsewhere and could not read the inputs or write the output (exit 2)."""
    runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), "DirectRunner")
    if runner in LOCAL_RUNNERS:
        return
    for flag, path in (("--output", options.output), ("--raw", options.raw)):
        if path and not io.is_remote(path):
            raise RunnerPathError(f"{flag}={path} is a local path, but --runner={runner} runs its workers on other "
                                  f"machines: use a shared filesystem URL (gs://, s3://, hdfs://)")


def run(options: JobOptions, beam_args: list[str]) -> dict:
    """Run the job; returns the dataset summary. Raises on failure (nothing is committed then)."""
    started = time.time()
    check_runner_paths(options, beam_args)
    log.info("stage spec: %s", options.spec_path)
    spec = load_spec(options.spec_path)
    options, plan, files = preflight(spec, options)
    for name, paths in files.items():
        log.info("source %s: %d file(s), e.g. %s", name, len(paths), paths[0])
    staging = job.prepare_output(options)
    log.info("stage pipeline: staging under %s (runner flags: %s)", staging, " ".join(beam_args))
    try:
        pipeline_options = PipelineOptions(beam_args)
        with worker_startup_lines_dropped(_quiet_workers(beam_args)):
            with beam.Pipeline(options=pipeline_options) as p:
                build_pipeline(p, spec, options, files, staging)
        result = p.result if hasattr(p, "result") else None
        log.info("stage pipeline: done in %.1fs", time.time() - started)
        if result is not None:
            lines = _metrics_lines(result)
            if lines:
                print("counters:\n" + "\n".join(lines), flush=True)
        manifest = json.loads(io.read_text(io.join(staging, job.MANIFEST_FILE)))
        counts = json.loads(io.read_text(io.join(staging, job.COUNTS_FILE)))
        counts.setdefault("read", {})
        counts.setdefault("rejected", {})
        log.info("stage commit: markers, _DATASET.json, reconcile")
        runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), "DirectRunner")
        summary = job.finalize(staging, options, spec, manifest, counts, started, {"runner": runner})
    except BaseException:
        job.abort(staging)
        raise
    print(f"dataset written to {options.output} in {summary['job']['elapsed_s']}s "
          f"({sum(c['written'] for c in summary['counts'].values()):,} examples, "
          f"{sum(c['rejected'] for c in summary['counts'].values()):,} rejected)", flush=True)
    return summary


preflight = job.preflight


_BAD_INPUT = (SpecError, SchemaError, FileNotFoundError, job.OutputExists, NoUsableRows, RunnerPathError)


def _bad_input(exc: BaseException) -> BaseException | None:
    """The bad-input error behind ``exc`` (Beam may wrap a worker's exception), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _BAD_INPUT):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


_REMOTE_BAD_INPUT = re.compile(r"\b(?:SchemaError|InputError|NoUsableRows|SpecError): ([^\n]+)")


def bad_input_message(exc: BaseException) -> str | None:
    """One line for a bad-input failure, also when a remote worker's error arrives as text."""
    bad = _bad_input(exc)
    if bad is not None:
        text = str(bad).strip()
        return text.splitlines()[0] if text else repr(bad)
    match = _REMOTE_BAD_INPUT.findall(str(exc))
    return match[-1].strip() if match else None
