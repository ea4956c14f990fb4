"""Analyze: fit the transform artifact on the training window only.

Everything is fitted from the shard blocks of the point-in-time pass (they hold every usable,
joined row, so no extra pass over the data is needed), restricted to rows of the train split:
valid/test rows never reach an accumulator, so changing them cannot change the artifact.

Per block, :func:`block_partials` returns a small accumulator dict — value counts for vocabulary
fields, rows per day, label counts, summaries of dense and counter columns (log-binning ranges),
sequence-length histograms — plus ``(name, values)`` lists for quantile-binned columns.
Accumulators merge with :class:`StatsCombineFn`; quantiles use Beam's
``ApproximateQuantilesCombineFn`` (MRL98) with ``EPSILON`` = 1e-3, i.e. each returned quantile's
rank is within 0.001 * n of the exact one (worst case, for n <= 1e9; in practice far closer).
NaN and nulls are ignored when fitting. The same functions serve the Beam job and the plain
single-process loop of ``bench/beam_throughput.py``.
"""
from __future__ import annotations

import collections
from typing import Any, Iterable, Mapping

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms.stats import ApproximateQuantilesCombineFn

from infnet_tf.transform import (DEFAULT_TIME_GAP_UNIT_MS, TransformArtifact, build_layout, log_boundaries,
                                 log_transform, quantile_boundaries, time_gap_boundaries)
from pipelines.columns import TIME, label_column
from pipelines.split import DAY_MS, TRAIN, Cuts, day_name

EPSILON = 1e-3


def quantile_combine_fn(num_buckets: int) -> ApproximateQuantilesCombineFn:
    """Approximate quantiles (min, i/num_buckets for i=1..num_buckets-1, max) over batched lists."""
    return ApproximateQuantilesCombineFn.create(num_quantiles=num_buckets + 1, epsilon=EPSILON, input_batched=True)


def quantile_fields(spec: Any) -> dict[str, int]:
    """Numeric tokens fitted by quantiles (dense fields and counters): name -> num_buckets."""
    out = {f.name: f.binning.num_buckets for f in spec.dense if f.binning.type == "quantile"}
    out.update({f.name: f.binning.num_buckets for f in spec.counter_features() if f.binning.type == "quantile"})
    return out


# ---------------------------------------------------------------------------------------------
# Per-batch partial statistics
# ---------------------------------------------------------------------------------------------
def _numeric_partials(acc: dict, quantile_inputs: list, values: np.ndarray, name: str, binning: Any) -> None:
    finite = values[~np.isnan(values)]
    acc["numeric"][name] = _numeric_summary(finite, int(values.size - finite.size))
    if binning.type == "quantile":
        if finite.size:
            quantile_inputs.append((name, finite.tolist()))
    else:
        acc["numeric"][name]["log_range"] = ([float(log_transform(finite.min())), float(log_transform(finite.max()))]
                                             if finite.size else None)


def _numeric_summary(finite: np.ndarray, nulls: int) -> dict:
    if not finite.size:
        return {"count": 0, "nulls": nulls, "sum": 0.0, "min": None, "max": None}
    return {"count": int(finite.size), "nulls": nulls, "sum": float(finite.sum()),
            "min": float(finite.min()), "max": float(finite.max())}


def empty_accumulator() -> dict:
    return {"rows": 0, "rows_per_day": {}, "labels": {}, "vocab": {}, "numeric": {}, "seq_hist": {}}


def batch_partials(table: pa.Table, spec: Any, cuts: Cuts) -> tuple[dict, list[tuple[str, list]]]:
    """Partial stats of the *train* rows of canonical, joined rows: vocabularies, dense, labels."""
    time = table[TIME].to_numpy()
    train = cuts.assign(time) == TRAIN
    acc, quantile_inputs = empty_accumulator(), []
    if not train.any():
        return acc, quantile_inputs
    if not train.all():
        table, time = table.filter(pa.array(train)), time[train]
    acc["rows"] = table.num_rows
    days, counts = np.unique(time // DAY_MS, return_counts=True)
    acc["rows_per_day"] = {day_name(d * DAY_MS): int(c) for d, c in zip(days, counts)}
    for task in spec.tasks:
        labels = table[label_column(task.name)].to_numpy()
        acc["labels"][task.name] = [int((labels == 1).sum()), int((labels >= 0).sum())]
    for f in spec.categorical:
        if f.vocabulary is not None:
            column = table[f.name]
            if pa.types.is_null(column.type):
                continue
            counts_ = pc.value_counts(pc.drop_null(column))
            acc["vocab"][f.name] = pa.table({"values": counts_.field("values"), "counts": counts_.field("counts")})
    for f in spec.dense:
        _numeric_partials(acc, quantile_inputs, table[f.name].to_numpy(zero_copy_only=False), f.name, f.binning)
    return acc, quantile_inputs


def block_partials(block: Any, spec: Any, cuts: Cuts) -> tuple[dict, list[tuple[str, list]]]:
    """Partial stats of the train rows of a shard block: everything the artifact is fitted from."""
    acc, quantile_inputs = batch_partials(block.table, spec, cuts)
    train = block.split == TRAIN
    if not train.any():
        return acc, quantile_inputs
    for f in spec.counter_features():
        values = block.table[f.name].to_numpy(zero_copy_only=False)[train]
        _numeric_partials(acc, quantile_inputs, values, f.name, f.binning)
    for s in spec.sequences:
        lengths = block.sequences[s.name].lengths[train]
        acc["seq_hist"][s.name] = np.bincount(lengths, minlength=s.max_len + 1).astype(np.int64)
    return acc, quantile_inputs


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------
def _merge_numeric(a: dict | None, b: dict) -> dict:
    if a is None:
        return dict(b)
    out = {"count": a["count"] + b["count"], "nulls": a["nulls"] + b["nulls"], "sum": a["sum"] + b["sum"]}
    out["min"] = min(v for v in (a["min"], b["min"]) if v is not None) if b["count"] or a["count"] else None
    out["max"] = max(v for v in (a["max"], b["max"]) if v is not None) if b["count"] or a["count"] else None
    if "log_range" in a or "log_range" in b:
        ranges = [r for r in (a.get("log_range"), b.get("log_range")) if r]
        out["log_range"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
    return out


def merge_accumulators(accs: Iterable[dict]) -> dict:
    out = empty_accumulator()
    vocab_parts: dict[str, list] = collections.defaultdict(list)
    for acc in accs:
        out["rows"] += acc["rows"]
        for day, n in acc["rows_per_day"].items():
            out["rows_per_day"][day] = out["rows_per_day"].get(day, 0) + n
        for task, (pos, labelled) in acc["labels"].items():
            old = out["labels"].get(task, [0, 0])
            out["labels"][task] = [old[0] + pos, old[1] + labelled]
        for name, table in acc["vocab"].items():
            vocab_parts[name].append(table)
        for name, summary in acc["numeric"].items():
            out["numeric"][name] = _merge_numeric(out["numeric"].get(name), summary)
        for name, hist in acc["seq_hist"].items():
            old = out["seq_hist"].get(name)
            out["seq_hist"][name] = hist.copy() if old is None else old + hist
    for name, parts in vocab_parts.items():
        if len(parts) == 1:
            out["vocab"][name] = parts[0]
            continue
        try:
            merged = pa.concat_tables(parts)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"categorical field {name!r} has different types in different input files: {exc}") from None
        out["vocab"][name] = merged.group_by("values").aggregate([("counts", "sum")]).rename_columns(["values", "counts"])
    return out


class StatsCombineFn(beam.CombineFn):
    """Merges :func:`block_partials` accumulators."""

    def create_accumulator(self) -> dict:
        return empty_accumulator()

    def add_input(self, acc: dict, partial: dict) -> dict:
        return merge_accumulators([acc, partial])

    def add_inputs(self, acc: dict, partials: Iterable[dict]) -> dict:
        return merge_accumulators([acc, *partials])

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        return merge_accumulators(accs)

    def extract_output(self, acc: dict) -> dict:
        return acc


# ---------------------------------------------------------------------------------------------
# The artifact
# ---------------------------------------------------------------------------------------------
def _vocabulary(table: pa.Table | None, min_count: int) -> tuple[str, list, list, int]:
    if table is None or table.num_rows == 0:
        return "int64", [], [], 0
    dtype = "int64" if pa.types.is_integer(table["values"].type) else "string"
    kept = table.filter(pc.greater_equal(table["counts"], min_count))
    kept = kept.sort_by([("counts", "descending"), ("values", "ascending")])
    return dtype, kept["values"].to_pylist(), kept["counts"].to_pylist(), table.num_rows


def _binned_entry(name: str, binning: Any, summary: dict | None, quantiles: Mapping[str, list]) -> dict:
    summary = summary or {"count": 0, "nulls": 0, "sum": 0.0, "min": None, "max": None}
    entry = {"binning": binning.type, "num_buckets": binning.num_buckets, "vocab_size": 1 + binning.num_buckets,
             "log_range": None}
    if binning.type == "quantile":
        entry["quantiles"] = [float(q) for q in quantiles.get(name, [])]
        entry["boundaries"] = quantile_boundaries(entry["quantiles"], binning.num_buckets)
        entry["epsilon"] = EPSILON
    else:
        lo_hi = summary.get("log_range")
        entry["log_range"] = lo_hi
        entry["boundaries"] = log_boundaries(lo_hi[0], lo_hi[1], binning.num_buckets) if lo_hi else []
    count = summary["count"]
    entry["train_stats"] = {"count": count, "nulls": summary["nulls"], "min": summary["min"], "max": summary["max"],
                            "mean": summary["sum"] / count if count else None}
    return entry


def _percentiles(hist: np.ndarray) -> dict:
    n = int(hist.sum())
    if n == 0:
        return {"count": 0}
    cum = np.cumsum(hist)
    lengths = np.arange(hist.size)

    def pct(p: float) -> int:
        return int(np.searchsorted(cum, p * n, side="left"))

    return {"count": n, "mean": float((hist * lengths).sum() / n), "p50": pct(0.5), "p90": pct(0.9),
            "p99": pct(0.99), "max": int(lengths[hist > 0].max()), "empty_fraction": float(hist[0] / n),
            "full_fraction": float(hist[-1] / n)}


def assemble_artifact(spec: Any, cuts: Cuts, acc: dict, quantiles: Mapping[str, list],
                      time_gap_unit_ms: int = DEFAULT_TIME_GAP_UNIT_MS) -> TransformArtifact:
    """The transform artifact from the merged accumulator and the fitted quantiles."""
    events_acc = blocks_acc = acc
    if events_acc["rows"] == 0:
        raise ValueError(f"the train split is empty (train is before {cuts.to_dict()['valid_start']}); "
                         f"nothing to fit the transform on")
    categorical, vocab_sizes, vocab_stats = {}, {}, {}
    for f in spec.categorical:
        if f.vocabulary is None:
            categorical[f.name] = {"kind": "hash", "hash_buckets": f.hash_buckets, "hash": "farmhash_fingerprint64",
                                   "vocab_size": 1 + f.hash_buckets}
        else:
            table = events_acc["vocab"].get(f.name)
            dtype, values, counts, distinct = _vocabulary(table, f.vocabulary.min_count)
            categorical[f.name] = {"kind": "vocabulary", "dtype": dtype, "values": values, "counts": counts,
                                   "min_count": f.vocabulary.min_count, "oov_buckets": f.vocabulary.oov_buckets,
                                   "vocab_size": 1 + len(values) + f.vocabulary.oov_buckets}
            total = int(pc.sum(table["counts"]).as_py()) if table is not None and table.num_rows else 0
            vocab_stats[f.name] = {"distinct_in_train": distinct, "kept": len(values),
                                   "train_coverage": (sum(counts) / total) if total else None}
        vocab_sizes[f.name] = categorical[f.name]["vocab_size"]
    dense = {f.name: _binned_entry(f.name, f.binning, events_acc["numeric"].get(f.name), quantiles) for f in spec.dense}
    counters = {}
    for f in spec.counter_features():
        entry = _binned_entry(f.name, f.binning, blocks_acc["numeric"].get(f.name), quantiles)
        entry.update({"key": f.key, "what": f.what, "window": f.window, "window_ms": f.window_ms})
        counters[f.name] = entry
    for name, entry in (*dense.items(), *counters.items()):
        vocab_sizes[name] = entry["vocab_size"]
    for name, side in spec.token_sides().items():   # user | candidate: which request part serves it
        (categorical.get(name) or dense.get(name) or counters[name])["side"] = side
    time_gap = {s.name: {"unit_ms": time_gap_unit_ms, "num_buckets": s.time_gap.num_buckets,
                         "boundaries_ms": time_gap_boundaries(s.time_gap.num_buckets, time_gap_unit_ms)}
                for s in spec.sequences}
    labels = {task: {"positives": p, "labelled": n, "rate": (p / n) if n else None}
              for task, (p, n) in events_acc["labels"].items()}
    stats = {
        "train_rows": events_acc["rows"],
        "rows_per_day": dict(sorted(events_acc["rows_per_day"].items())),
        "label_rates": labels,
        "sequence_length": {name: _percentiles(h) for name, h in sorted(blocks_acc["seq_hist"].items())},
        "vocabulary": vocab_stats,
    }
    layout = build_layout(spec, vocab_sizes)
    return TransformArtifact(
        spec_name=spec.name, spec_fingerprint=spec.fingerprint(), token_names=list(spec.token_names()),
        categorical=categorical, dense=dense, counters=counters, time_gap=time_gap,
        split=cuts.to_dict(), stats=stats, layout=layout.to_dict(),
    )
