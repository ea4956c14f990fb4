"""The dataset job's Apache Beam pipeline (:func:`build_pipeline`): raw logs + feature spec -> transform
artifact and time-split TFRecords, staged under a directory the driver (:mod:`pipelines.runner`)
commits. The stages and the output layout are drawn in the docstring of the command,
``python -m pipelines.build_dataset`` (its ``--help``). All stages work on Arrow record batches,
never on single rows.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np
import pyarrow as pa

# Importing apache_beam logs "apitools not found, and bigquery client libraries are not available"
# (a GCP-only client this job never uses) on the root logger; keep it out of the job's output.
logging.disable(logging.WARNING)
try:
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: F401  (pipelines.runner's)
finally:
    logging.disable(logging.NOTSET)

import infnet_tf  # noqa: F401  (Keras 2 selection before any TensorFlow import)
from infnet_tf.data.dataset_dir import ARTIFACT_RELPATH
from infnet_tf.transform import TransformArtifact
from pipelines import analyze, io, job
from pipelines.columns import (TIME, ColumnPlan, canonical_dimension, check_events,
                               empty_dimension, join_all)
from pipelines.job import JobOptions
from pipelines.sequences import add_counters, build_block, counters_for_key, other_counter_keys, split_by_shard
from pipelines.split import Cuts, compute_cuts
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
    artifact | "WriteArtifact" >> beam.Map(_write_json, io.join(staging, ARTIFACT_RELPATH))

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
