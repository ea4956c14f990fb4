"""The dataset job as a plain single-process loop over Arrow batches (no Beam).

It calls exactly the per-batch functions the Beam job calls (check + join, partial statistics,
quantile combiner, shard split, point-in-time pass, encoder, writers), in the same order, and
commits the output the same way. Used as the baseline of ``bench/beam_throughput.py`` and by tests
that compare it with the Beam job; it is not meant for data that does not fit in memory.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa

from infnet_tf.data.dataset_dir import ARTIFACT_RELPATH
from pipelines import analyze, io, job
from pipelines.columns import TIME, ColumnPlan, canonical_dimension, check_events, join_all
from pipelines.job import JobOptions
from pipelines.sequences import add_counters, build_block, counters_for_key, other_counter_keys, split_by_shard
from pipelines.split import compute_cuts
from pipelines.write import BlockEncoder, reject_counts, write_block, write_rejects

log = logging.getLogger("pipelines.plain")


def _quantiles(inputs: list[tuple[str, list]], fields: dict[str, int]) -> dict[str, list]:
    fns = {name: analyze.quantile_combine_fn(n) for name, n in fields.items()}
    accs: dict[str, Any] = {}
    for name, values in inputs:
        fn = fns[name]
        accs[name] = fn.add_input(accs[name] if name in accs else fn.create_accumulator(), values)
    return {name: fns[name].extract_output(acc) for name, acc in accs.items()}


def run(spec: Any, options: JobOptions) -> dict:
    """Run the whole job in this process; returns the dataset summary (``_DATASET.json``)."""
    started = time.time()
    options, plan, files = job.preflight(spec, options)
    staging = job.prepare_output(options)
    try:
        summary = _run(spec, options, plan, files, staging, started)
    except BaseException:
        job.abort(staging)
        raise
    return summary


def _run(spec: Any, options: JobOptions, plan: ColumnPlan, files: dict, staging: str, started: float) -> dict:
    log.info("stage read+check: events and dimension tables")
    dims = []
    for name in ("users", "items"):
        if name in spec.sources:
            tables = [t for kind, t in io.iter_source(spec.sources[name], files[name], plan.columns(name),
                                                      options.batch_rows) if kind == "batch"]
            dims.append(canonical_dimension(name, pa.concat_tables(tables), plan))
    raw_batches, goods, rejects, reject_times = [], [], [], []
    missing_join: dict[str, int] = {}
    for kind, item in io.iter_source(spec.sources["events"], files["events"], plan.columns("events"), options.batch_rows):
        if kind == io.MALFORMED:
            rejects.append(item)
            reject_times.append(np.array([-1]))
            continue
        raw_batches.append(item.select([plan.time_column]))
        checked = check_events(item, plan)
        rejects.extend(checked.rejects)
        reject_times.append(checked.reject_times)
        good = join_all(checked.good, dims, plan, missing_join)
        if good.num_rows:
            goods.append(good)
    max_time = max((int(g[TIME].to_numpy().max()) for g in goods), default=None)
    cuts = compute_cuts(spec.split, max_time)

    log.info("stage build: point-in-time counters and sequences per shard")
    rows = pa.concat_tables(goods) if goods else None
    blocks = []
    if rows is not None:
        for key in other_counter_keys(spec):
            features = counters_for_key(spec, key)
            rows = pa.concat_tables([add_counters(piece, key, features)
                                     for _, piece in split_by_shard(rows, key, options.num_shards)])
        blocks = [build_block(shard, piece, spec, cuts)
                  for shard, piece in split_by_shard(rows, spec.user_key, options.num_shards)]
    log.info("stage analyze: vocabularies, boundaries, stats on train rows")
    partials = [analyze.block_partials(b, spec, cuts) for b in blocks]
    acc = analyze.merge_accumulators(p[0] for p in partials)
    quantile_inputs = [q for p in partials for q in p[1]]
    artifact = analyze.assemble_artifact(spec, cuts, acc, _quantiles(quantile_inputs, analyze.quantile_fields(spec)))
    io.write_text(io.join(staging, ARTIFACT_RELPATH), artifact.to_json())

    log.info("stage write: %d blocks", len(blocks))
    encoder = BlockEncoder(spec, artifact)
    manifest = []
    for block in blocks:
        manifest += write_block(block, encoder, staging, options.num_shards, spec.split.partition,
                                options.compression_level, options.chunk_rows, spec.split.timezone)
    entry = write_rejects(rejects, staging, "part-00000")
    if entry:
        manifest.append(entry)

    read: dict[str, int] = {}
    for raw in raw_batches:
        read = job.add_counts(read, job.raw_read_counts(raw, plan, cuts))
    malformed = sum(1 for r in rejects if r["reason"] == "malformed_row")
    read = job.add_counts(read, {job.UNASSIGNED: malformed})
    times = np.concatenate(reject_times) if reject_times else np.zeros(0, np.int64)
    counts = {"read": read, "rejected": job.reject_split_counts(times, cuts), "reject_reasons": reject_counts(rejects),
              "cuts": cuts.to_dict(), "duplicates": sum(b.duplicates for b in blocks), "missing_join": missing_join}
    return job.finalize(staging, options, spec, manifest, counts, started, {"runner": "plain"})
