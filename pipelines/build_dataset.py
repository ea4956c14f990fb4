"""The dataset job: raw logs + feature spec -> transform artifact + time-split TFRecords (Apache Beam).

    python -m pipelines.build_dataset --spec=feature_specs/kuairand_synthetic.yaml \\
        --raw=/data/kuairand --output=/data/kuairand_tfrecords [--overwrite] [Beam options]

Runs on the DirectRunner with two worker processes unless told otherwise
(``--direct_num_workers=2 --direct_running_mode=multi_processing``); every flag this job does
not know is passed to Beam's ``PipelineOptions``, so ``--runner=FlinkRunner ...`` or
``--runner=DataflowRunner --project=... --temp_location=...`` run the same pipeline.

The pipeline (all stages work on Arrow record batches, never on single rows)::

    (driver, before anything runs: every file's schema and rows, the time unit, users/items keys;
     --num_shards=auto from the rows)
    ReadEvents (Parquet batched / CSV)  ReadUsers, ReadItems -> canonical tables (side inputs)
        |
    CheckAndJoin ------------------------------> rejects: JSON lines + counts per reason/split
        | good rows (canonical, joined)
        +-> MaxTime -> Cuts (train < valid < test)
        |
    [per other counter key: shuffle by key shard -> point-in-time counters]
    shuffle by user shard -> Block (per-user sort, sequence ranges, user counters)
        +-> Analyze (train rows only): vocabularies, dense/counter quantiles or log ranges,
        |   stats, sequence length percentiles  -> transform artifact (JSON)
    WriteBlock (artifact as side input): bucket ids, sequences, Examples, GZIP TFRecords
        -> manifest; the driver then writes _SUCCESS markers and _DATASET.json, reconciles
           read = written + rejected per split, and commits the staging directory.

Output layout (under ``--output``)::

    transform/transform_artifact.json
    {train,valid,test}/dt=YYYY-MM-DD[/hr=HH]/part-SSSSS-of-NNNNN.tfrecord.gz  + _SUCCESS
                                (dt/hr in the spec's split.timezone; _SUCCESS = the partition's manifest:
                                every file with its rows, see infnet_tf.partitions)
    rejects/part-*.jsonl        one JSON object per rejected row: reason, column, value, row (the
                                directory exists even when nothing was rejected)
    _DATASET.json               counts per split/partition, duplicates, missing_join, artifact path,
                                spec fingerprint, job.num_shards
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import re
import json
import logging
import os
import sys
import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa

# Importing apache_beam logs "apitools not found, and bigquery client libraries are not available"
# (a GCP-only client this job never uses) on the root logger; keep it out of the job's output.
logging.disable(logging.WARNING)
try:
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.options.pipeline_options import PipelineOptions
finally:
    logging.disable(logging.NOTSET)

import infnet_tf  # noqa: F401  (Keras 2 selection before any TensorFlow import)
from infnet_tf.spec import SpecError, load_spec
from infnet_tf.transform import TransformArtifact
from pipelines import analyze, io, job
from pipelines.columns import (TIME, ColumnPlan, InputError, SchemaError, canonical_dimension, check_events,
                               empty_dimension, join_all)
from pipelines.job import JobOptions
from pipelines.sequences import add_counters, build_block, counters_for_key, other_counter_keys, split_by_shard
from pipelines.split import Cuts, NoUsableRows, compute_cuts
from pipelines.write import BlockEncoder, reject_counts, write_block, write_rejects

log = logging.getLogger("pipelines.build_dataset")
NAMESPACE = "infnet"


def _count(name: str, n: int = 1) -> None:
    if n:
        Metrics.counter(NAMESPACE, name).inc(int(n))


# ---------------------------------------------------------------------------------------------
# DoFns and small combiners (each a thin wrapper over a pure function)
# ---------------------------------------------------------------------------------------------
def _concat(tables) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables, promote_options="default") if tables else None


class _Stage:
    """Logs the first bundle of a stage in each worker, so the log shows where the job is."""

    _seen: set = set()

    @classmethod
    def enter(cls, name: str, detail: str = "") -> None:
        if name not in cls._seen:
            cls._seen.add(name)
            log.info("stage %s %s", name, detail)


class CheckAndJoin(beam.DoFn):
    """Raw events batch -> canonical joined rows (main) + reject batches (tag ``rejects``)."""

    def __init__(self, plan: ColumnPlan):
        self.plan = plan

    def process(self, table: pa.Table, users, items):
        _Stage.enter("check+join")
        _count("events_read", table.num_rows)
        checked = check_events(table, self.plan)
        missing: dict[str, int] = {}
        good = join_all(checked.good, [d for d in (users, items) if d is not None], self.plan, missing)
        _count("events_good", good.num_rows)
        if missing:
            for name, n in missing.items():
                _count(f"missing_join.{name}", n)
            yield beam.pvalue.TaggedOutput("stats", {"missing_join": missing})
        if checked.rejects:
            _count("rejected", len(checked.rejects))
            for reason, n in reject_counts(checked.rejects).items():
                _count(f"rejected.{reason}", n)
            yield beam.pvalue.TaggedOutput("rejects", {"times": checked.reject_times, "records": checked.rejects})
        if good.num_rows:
            yield good


def _malformed_batch(record: dict) -> dict:
    _count("events_read")
    _count("rejected")
    _count("rejected.malformed_row")
    return {"times": np.array([-1], dtype=np.int64), "records": [record]}


class _MaxOrNone(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None else max(acc, value)

    def merge_accumulators(self, accs):
        values = [a for a in accs if a is not None]
        return max(values) if values else None

    def extract_output(self, acc):
        return acc


class _SumCounts(beam.CombineFn):
    """Sums dicts of counts (nested one level for ``{"read": {...}, ...}``)."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, value):
        return self.merge_accumulators([acc, value])

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for key, value in acc.items():
                if isinstance(value, dict):
                    out[key] = job.add_counts(out.get(key, {}), value)
                else:
                    out[key] = out.get(key, 0) + value
        return out

    def extract_output(self, acc):
        return acc


class _ToList(beam.CombineFn):
    def create_accumulator(self):
        return []

    def add_input(self, acc, value):
        acc.append(value)
        return acc

    def merge_accumulators(self, accs):
        return [v for acc in accs for v in acc]

    def extract_output(self, acc):
        return sorted(acc, key=lambda e: e["file"])


def _dimension(tables, name: str, plan: ColumnPlan):
    table = _concat(list(tables))
    if table is None:
        return empty_dimension(name, plan)
    dim = canonical_dimension(name, table, plan)
    for issue, n in dim.issues.items():
        log.warning("%s: %d rows (%s)", name, n, issue)
        _count(f"dimension_issues.{issue}", n)
    return dim


def _block_partials(block, spec, cuts):
    _Stage.enter("analyze", "(train rows: vocabularies, boundaries, stats)")
    acc, quantiles = analyze.block_partials(block, spec, cuts)
    yield acc
    for item in quantiles:
        yield beam.pvalue.TaggedOutput("quantiles", item)


def _counter_pass(item, key: str, features, next_key: str, num_shards: int):
    shard, tables = item
    _Stage.enter(f"counters[{key}]", f"(point-in-time counters keyed by {key})")
    table = _concat(tables)
    if table is None:
        return
    yield from split_by_shard(add_counters(table, key, features), next_key, num_shards)


def _block(item, spec, cuts):
    shard, tables = item
    _Stage.enter("build", "(per-user sort, sequences, user counters)")
    table = _concat(tables)
    if table is None:
        return
    _count("blocks")
    yield build_block(shard, table, spec, cuts)


class WriteBlock(beam.DoFn):
    """Block + artifact -> GZIP TFRecord files; emits manifest entries."""

    def __init__(self, spec, root: str, options: JobOptions):
        self.spec, self.root, self.options = spec, root, options
        self._encoder = None

    def process(self, block, artifact: dict):
        _Stage.enter("write", "(bucket ids, Examples, GZIP TFRecords)")
        if self._encoder is None:
            self._encoder = BlockEncoder(self.spec, TransformArtifact.from_dict(artifact))
        for entry in write_block(block, self._encoder, self.root, self.options.num_shards, self.spec.split.partition,
                                 self.options.compression_level, self.options.chunk_rows, self.spec.split.timezone):
            _count(f"written.{entry['split']}", entry["rows"])
            yield entry


REJECT_SHARDS = 4


def _reject_shard(batch: dict) -> tuple[int, dict]:
    """Route a batch of rejects to one of REJECT_SHARDS files by a hash of its content."""
    text = "".join(json.dumps(r, sort_keys=True, default=str) for r in batch["records"])
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % REJECT_SHARDS, batch


def _write_rejects(item, root: str, cuts: Cuts):
    """All reject batches of one shard -> ``rejects/part-K-of-N.jsonl`` (sorted: deterministic)."""
    shard, batches = item
    batches = list(batches)
    records = sorted((r for b in batches for r in b["records"]), key=lambda r: json.dumps(r, sort_keys=True, default=str))
    times = np.concatenate([b["times"] for b in batches])
    entry = write_rejects(records, root, f"part-{shard:05d}-of-{REJECT_SHARDS:05d}")
    counts = {"rejected": job.reject_split_counts(times, cuts), "reject_reasons": reject_counts(records)}
    return entry, counts


def _read_counts(table: pa.Table, plan: ColumnPlan, cuts: Cuts) -> dict:
    return {"read": job.raw_read_counts(table, plan, cuts)}


def _assemble(_, spec, cuts, acc, quantiles):
    _Stage.enter("artifact")
    return analyze.assemble_artifact(spec, cuts, acc, dict(quantiles)).to_dict()


def _write_json(value: Any, path: str) -> None:
    io.write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------
def build_pipeline(p: beam.Pipeline, spec: Any, options: JobOptions, files: dict[str, list[str]], staging: str) -> None:
    """Add the whole job to ``p``; outputs land under ``staging``."""
    plan = ColumnPlan.from_spec(spec, now_ms=options.now_ms)
    n = int(options.num_shards)
    events = p | "ReadEvents" >> io.ReadSource(spec.sources["events"], files["events"], plan.columns("events"),
                                                options.batch_rows)
    dims = {}
    for name in ("users", "items"):
        if name in spec.sources:
            read = p | f"Read{name.title()}" >> io.ReadSource(spec.sources[name], files[name], plan.columns(name),
                                                             options.batch_rows)
            dims[name] = beam.pvalue.AsSingleton(
                read["batches"] | f"Concat{name.title()}" >> beam.combiners.ToList()
                | f"Canonical{name.title()}" >> beam.Map(_dimension, name, plan))
        else:
            dims[name] = beam.pvalue.AsSingleton(p | f"No{name.title()}" >> beam.Create([None]))

    checked = events["batches"] | "CheckAndJoin" >> beam.ParDo(CheckAndJoin(plan), dims["users"], dims["items"]) \
        .with_outputs("rejects", "stats", main="good")
    good = checked.good
    rejects = ((checked.rejects, events["malformed"] | "Malformed" >> beam.Map(_malformed_batch))
               | "AllRejects" >> beam.Flatten())

    cuts = beam.pvalue.AsSingleton(
        good | "BatchMaxTime" >> beam.Map(lambda t: int(t[TIME].to_numpy().max()))
        | "MaxTime" >> beam.CombineGlobally(_MaxOrNone())
        | "Cuts" >> beam.Map(lambda m: compute_cuts(spec.split, m)))

    # -- build: point-in-time counters for other keys, then per-user blocks --------------------
    keys = other_counter_keys(spec) + [spec.user_key]
    pieces = good | "ShardBy0" >> beam.FlatMap(split_by_shard, keys[0], n)
    for i, key in enumerate(keys[:-1]):
        pieces = (pieces | f"GroupBy{i}" >> beam.GroupByKey()
                  | f"Counters{i}" >> beam.FlatMap(_counter_pass, key, counters_for_key(spec, key), keys[i + 1], n))
    blocks = (pieces | "GroupByUser" >> beam.GroupByKey()
              | "Block" >> beam.FlatMap(_block, spec, cuts))

    # -- analyze (train rows of the blocks) ------------------------------------------------------
    partials = blocks | "Partials" >> beam.FlatMap(_block_partials, spec, cuts).with_outputs("quantiles", main="acc")
    acc = partials.acc | "Stats" >> beam.CombineGlobally(analyze.StatsCombineFn())
    fitted = []
    for num_buckets in sorted(set(analyze.quantile_fields(spec).values())):
        names = {k for k, v in analyze.quantile_fields(spec).items() if v == num_buckets}
        fitted.append(partials.quantiles
                      | f"Quantiles{num_buckets}Inputs" >> beam.Filter(lambda kv, names=names: kv[0] in names)
                      | f"Quantiles{num_buckets}" >> beam.CombinePerKey(analyze.quantile_combine_fn(num_buckets)))
    quantiles = (fitted or [p | "NoQuantiles" >> beam.Create([])]) | "AllQuantiles" >> beam.Flatten()
    artifact = (p | "Once" >> beam.Create([None])
                | "Assemble" >> beam.Map(_assemble, spec, cuts, beam.pvalue.AsSingleton(acc),
                                         beam.pvalue.AsList(quantiles)))
    artifact | "WriteArtifact" >> beam.Map(_write_json, io.join(staging, job.ARTIFACT_FILE))

    # -- write --------------------------------------------------------------------------------
    written = blocks | "WriteBlocks" >> beam.ParDo(WriteBlock(spec, staging, options), beam.pvalue.AsSingleton(artifact))
    reject_out = (rejects | "RejectShard" >> beam.Map(_reject_shard) | "GroupRejects" >> beam.GroupByKey()
                  | "WriteRejects" >> beam.Map(_write_rejects, staging, cuts))
    manifest = ((written, reject_out | "RejectEntries" >> beam.FlatMap(lambda ec: [ec[0]] if ec[0] else []))
                | "AllEntries" >> beam.Flatten() | "Manifest" >> beam.CombineGlobally(_ToList()))
    manifest | "WriteManifest" >> beam.Map(_write_json, io.join(staging, job.MANIFEST_FILE))

    # -- counts: read (by raw time) and rejected, per split --------------------------------------
    read_counts = (events["batches"] | "TimeColumn" >> beam.Map(lambda t: t.select([plan.time_column]))
                   | "ReadCounts" >> beam.Map(_read_counts, plan, cuts))
    malformed_counts = events["malformed"] | "MalformedCounts" >> beam.Map(lambda _: {"read": {job.UNASSIGNED: 1}})
    reject_counts_ = reject_out | "RejectCounts" >> beam.Map(lambda ec: ec[1])
    duplicate_counts = blocks | "DuplicateCounts" >> beam.Map(lambda b: {"duplicates": int(b.duplicates)})
    counts = ((read_counts, malformed_counts, reject_counts_, checked.stats, duplicate_counts)
              | "AllCounts" >> beam.Flatten()
              | "SumCounts" >> beam.CombineGlobally(_SumCounts()))
    (counts | "WithCuts" >> beam.Map(lambda c, cuts: {**c, "cuts": cuts.to_dict()}, cuts)
     | "WriteCounts" >> beam.Map(_write_json, io.join(staging, job.COUNTS_FILE)))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> tuple[JobOptions, list[str]]:
    defaults = JobOptions(spec_path="", output="")
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.build_dataset",
        description="Analyze raw logs described by a feature spec (transform artifact fitted on the "
                    "training window only) and build time-split GZIP TFRecords of tf.train.Examples with "
                    "point-in-time behaviour sequences and counters. Rejected rows go to <output>/rejects/.",
        epilog="Every other flag is passed to Beam's PipelineOptions (e.g. --runner, --direct_num_workers, "
               "--direct_running_mode, --project, --temp_location). Defaults: --runner=DirectRunner "
               "--direct_num_workers=2 --direct_running_mode=multi_processing. Exit status: 0 done, 1 the job "
               "failed (nothing committed), 2 bad spec/flags/schema/input (one 'error:' line naming the file: "
               "unreadable or 0-byte file, column type differing between files, duplicate users/items key, no "
               "events, wrong time unit, --fail_on_duplicates / --fail_on_missing_join) or output exists.")
    parser.add_argument("--spec", required=True, help="feature spec YAML (see feature_specs/README.md)")
    parser.add_argument("--output", required=True, help="output directory (local or gs://, s3://, hdfs://)")
    parser.add_argument("--raw", default=None,
                        help="directory the spec's relative source paths resolve against (default: the working dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output atomically (default: refuse when --output is not empty)")
    parser.add_argument("--num_shards", type=_shards, default=defaults.num_shards,
                        help="user shards of the point-in-time pass, and the most files per partition; memory per "
                             "worker ~ rows/num_shards. 'auto' (default): ceil(input event rows / "
                             f"{job.ROWS_PER_SHARD:,}), at least 1, at most {job.MAX_AUTO_SHARDS} (rows from the "
                             f"Parquet footers; CSV: file size / {io.CSV_BYTES_PER_ROW} bytes); or a positive int. "
                             "The value used is recorded in _DATASET.json (job.num_shards)")
    parser.add_argument("--batch_rows", type=int, default=defaults.batch_rows,
                        help="rows per Arrow batch read from the sources (default %(default)s)")
    parser.add_argument("--chunk_rows", type=int, default=defaults.chunk_rows,
                        help="Examples encoded at a time while writing (default %(default)s)")
    parser.add_argument("--compression_level", type=int, default=defaults.compression_level, choices=range(0, 10),
                        metavar="{0..9}", help="GZIP level of the TFRecord files (default %(default)s)")
    parser.add_argument("--fail_on_duplicates", action="store_true",
                        help="exit 2 (nothing committed) when events repeat a (user, time, item); default: write "
                             "them, count them in the output and in _DATASET.json (duplicates)")
    parser.add_argument("--fail_on_missing_join", action="store_true",
                        help="exit 2 (nothing committed) when an event's user/item key is missing from the users/items "
                             "table; default: write it with null joined columns and count it (missing_join)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Beam's own logs and the worker processes' (INFO and up); default: only "
                             "this job's progress, results and warnings/errors (INFNET_VERBOSE=1 does the same)")
    args, beam_args = parser.parse_known_args(argv)
    if (args.num_shards != job.AUTO and args.num_shards < 1) or args.batch_rows < 1 or args.chunk_rows < 1:
        parser.error("--num_shards, --batch_rows and --chunk_rows must be positive")
    options = JobOptions(spec_path=args.spec, output=args.output, raw=args.raw, overwrite=args.overwrite,
                         num_shards=args.num_shards, batch_rows=args.batch_rows, chunk_rows=args.chunk_rows,
                         compression_level=args.compression_level, fail_on_duplicates=args.fail_on_duplicates,
                         fail_on_missing_join=args.fail_on_missing_join)
    verbose = args.verbose or _env_verbose()
    logging.getLogger("apache_beam").setLevel(logging.INFO if verbose else logging.WARNING)
    return options, with_runner_defaults(beam_args, verbose=verbose)


def _env_verbose() -> bool:
    from infnet_tf.env import verbose

    return verbose()


def _shards(value: str):
    if value == job.AUTO:
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive int, got {value!r}") from None


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


def run(options: JobOptions, beam_args: list[str]) -> dict:
    """Run the job; returns the dataset summary. Raises on failure (nothing is committed then)."""
    started = time.time()
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


_BAD_INPUT = (SpecError, SchemaError, FileNotFoundError, job.OutputExists, NoUsableRows)


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


def _bad_input_message(exc: BaseException) -> str | None:
    """One line for a bad-input failure, also when a remote worker's error arrives as text."""
    bad = _bad_input(exc)
    if bad is not None:
        text = str(bad).strip()
        return text.splitlines()[0] if text else repr(bad)
    match = _REMOTE_BAD_INPUT.findall(str(exc))
    return match[-1].strip() if match else None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    options, beam_args = parse_args(argv)
    try:
        run(options, beam_args)
    except Exception as exc:  # noqa: BLE001 - bad input -> exit 2 with one line; anything else propagates
        if isinstance(exc, job.ReconcileError):
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        message = _bad_input_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    from infnet_tf.env import hard_exit

    hard_exit(main())
