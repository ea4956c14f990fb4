"""What the Beam job and the plain loop share: options, read/reject counting, the output commit.

Output safety (re-running over the same ``--output``):

* everything is written under a staging directory next to the output,
  ``<output>.staging-<run id>``; readers never look there;
* once the pipeline has finished, the staging tree gets its ``_SUCCESS`` markers (one per
  complete partition) and ``_DATASET.json``, counts are reconciled, and only then does it become
  ``<output>``: if ``<output>`` does not exist (or is an empty directory) by one rename; if it
  holds a previous dataset, the job **refuses** unless ``--overwrite`` is given, in which case the
  old tree is renamed aside, the new one renamed in and the old one deleted — a reader sees
  the old complete dataset, then (for an instant) none, then the new complete one, never a mix;
* a failed run deletes its staging directory and leaves ``<output>`` untouched.

Renames are atomic on local and HDFS filesystems. On object stores (``gs://``, ``s3://``) there
is no directory rename: files are copied into place partition by partition, each partition's
``_SUCCESS`` last, and readers (which only read partitions with ``_SUCCESS``) never see a partial
partition; ``--overwrite`` is refused there (write to a fresh output prefix instead).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import time
import uuid
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from infnet_tf.config_flags import setting
from infnet_tf.data.dataset_dir import ARTIFACT_RELPATH, DATASET_FILE, REJECTS_DIR, SPLITS, SUCCESS
from infnet_tf.data.partitions import manifest_text
from pipelines import io
from pipelines.columns import ColumnPlan, InputError, parse_time_ms
from pipelines.split import UNASSIGNED, Cuts, split_counts

log = logging.getLogger("pipelines.build_dataset")

MANIFEST_FILE = "_manifest.json"
COUNTS_FILE = "_counts.json"
DATASET_FORMAT = "infnet.dataset"
DATASET_VERSION = 1
ALL_SPLITS = (*SPLITS, UNASSIGNED)


class OutputExists(RuntimeError):
    """The output already holds a dataset and --overwrite was not given."""


class ReconcileError(RuntimeError):
    """read != written + rejected for some split."""


AUTO = "auto"
ROWS_PER_SHARD = 200_000   # --num_shards=auto: one shard per this many input event rows ...
MAX_AUTO_SHARDS = 32       # ... at least 1, at most this many


def auto_num_shards(event_rows: int) -> int:
    """The ``--num_shards=auto`` rule: ceil(rows / 200,000), clamped to 1..32.

    Every daily (or hourly) partition gets at most one file per shard, so small data gets few
    files; 6.4M rows or more use 32 shards (pass an explicit --num_shards for more)."""
    return int(min(MAX_AUTO_SHARDS, max(1, -(-int(max(event_rows, 0)) // ROWS_PER_SHARD))))


def resolve_options(options: "JobOptions", event_rows: int) -> "JobOptions":
    """``options`` with ``num_shards`` resolved (auto -> a number) and ``now_ms`` fixed."""
    changes: dict[str, Any] = {}
    if options.num_shards == AUTO:
        changes["num_shards"] = auto_num_shards(event_rows)
        log.info("--num_shards=auto: %d shard(s) for ~%d input rows", changes["num_shards"], event_rows)
    if options.now_ms is None:
        changes["now_ms"] = int(time.time() * 1000)
    return dataclasses.replace(options, **changes) if changes else options


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """The job's own flags of ``python -m pipelines.build_dataset`` (everything else goes to Beam)."""

    spec_path: str = setting(help="Feature spec YAML (see feature_specs/README.md).", flag="spec")
    output: str = setting(help="Output directory (local or gs://, s3://, hdfs://).")
    raw: str | None = setting(None, "Directory the spec's relative source paths resolve against (default: the "
                                    "working dir).")
    overwrite: bool = setting(False, "Replace an existing output atomically (default: refuse when --output is not "
                                     "empty).")
    num_shards: int | str = setting(AUTO, help=(  # an int, or "auto" (see auto_num_shards)
        "User shards of the point-in-time pass, and the most files per partition; memory per worker ~ "
        f"rows/num_shards. 'auto' (default): ceil(input event rows / {ROWS_PER_SHARD:,}), at least 1, at most "
        f"{MAX_AUTO_SHARDS} (rows from the Parquet footers; CSV: file size / {io.CSV_BYTES_PER_ROW} bytes); or a "
        "positive int. The value used is recorded in _DATASET.json (job.num_shards)."))
    batch_rows: int = setting(65_536, "Rows per Arrow batch read from the sources.")
    chunk_rows: int = setting(4_096, "Examples encoded at a time while writing.")
    compression_level: int = setting(3, "GZIP level of the TFRecord files, 0..9.")
    fail_on_duplicates: bool = setting(False, help=(
        "Exit 2 (nothing committed) when events repeat a (user, time, item); default: write them, count them in "
        "the output and in _DATASET.json (duplicates)."))
    fail_on_missing_join: bool = setting(False, help=(
        "Exit 2 (nothing committed) when an event's user/item key is missing from the users/items table; "
        "default: write it with null joined columns and count it (missing_join)."))
    now_ms: int | None = setting(None, cli=False)  # the job's wall clock (anchors split.max_time_after_now)


def preflight(spec: Any, options: "JobOptions") -> tuple["JobOptions", ColumnPlan, dict[str, list[str]]]:
    """Checks before any work (every file's schema, rows, time unit, join keys); resolves the options.

    Raises SchemaError / InputError / FileNotFoundError (exit 2) naming the file."""
    if options.now_ms is None:
        options = dataclasses.replace(options, now_ms=int(time.time() * 1000))
    plan = ColumnPlan.from_spec(spec, now_ms=options.now_ms)
    files = {name: io.match_files(io.resolve(src.path, options.raw), name) for name, src in spec.sources.items()}
    rows = io.check_source_schemas(plan, dict(spec.sources), files)
    io.check_time_unit(plan, spec.sources["events"], files["events"])
    io.check_dimension_keys(plan, dict(spec.sources), files)
    return resolve_options(options, rows["events"]), plan, files


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------
def raw_read_counts(table: pa.Table, plan: ColumnPlan, cuts: Cuts) -> dict[str, int]:
    """Rows of a *raw* events batch per split by their parsed time (unusable times: unassigned)."""
    time_ms, code = parse_time_ms(table[plan.time_column], plan.time_unit, plan.time_unit_factor,
                                  (plan.min_time_ms, plan.max_time_ms))
    return split_counts(time_ms, code == 0, cuts)


def reject_split_counts(times: np.ndarray, cuts: Cuts) -> dict[str, int]:
    """Rejected rows per split by their time (-1: unusable time, unassigned)."""
    times = np.asarray(times, dtype=np.int64)
    return split_counts(times, times >= 0, cuts)


def add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + int(v)
    return out


def reconcile(read: Mapping[str, int], written: Mapping[str, int], rejected: Mapping[str, int]) -> tuple[list[str], bool]:
    """Lines ``<split>: read R = written W + rejected J`` and whether every split balances."""
    lines, ok = [], True
    totals = [0, 0, 0]
    for split in ALL_SPLITS:
        r, w, j = int(read.get(split, 0)), int(written.get(split, 0)), int(rejected.get(split, 0))
        if split == UNASSIGNED and r == w == j == 0:
            continue
        good = r == w + j
        ok &= good
        totals = [totals[0] + r, totals[1] + w, totals[2] + j]
        lines.append(f"{split:>10}: read {r:>10,} = written {w:>10,} + rejected {j:>8,}   {'OK' if good else 'MISMATCH'}")
    lines.append(f"{'total':>10}: read {totals[0]:>10,} = written {totals[1]:>10,} + rejected {totals[2]:>8,}   "
                 f"{'OK' if totals[0] == totals[1] + totals[2] else 'MISMATCH'}")
    return lines, ok


# ---------------------------------------------------------------------------------------------
# Staging and commit
# ---------------------------------------------------------------------------------------------
def _has_dataset(path: str) -> bool:
    if io.is_remote(path):
        return io.exists(io.join(path, DATASET_FILE)) or io.exists(path)
    return os.path.isdir(path) and bool(os.listdir(path))


def prepare_output(options: JobOptions) -> str:
    """Check the output may be written; returns a fresh staging directory path."""
    out = options.output.rstrip("/")
    if _has_dataset(out):
        if not options.overwrite:
            raise OutputExists(f"{out} already exists and is not empty; refusing to write over it "
                               f"(pass --overwrite to replace it atomically)")
        if io.is_remote(out):
            raise OutputExists(f"{out}: --overwrite is not supported on object stores; use a fresh output prefix")
    if not io.is_remote(out) and os.path.exists(out) and not os.path.isdir(out):
        raise OutputExists(f"{out} exists and is not a directory")
    run_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    staging = f"{out}.staging-{run_id}"
    if not io.is_remote(staging):
        os.makedirs(staging)
    return staging


def abort(staging: str) -> None:
    """Delete a failed run's staging directory (best effort)."""
    try:
        if io.is_remote(staging):
            from apache_beam.io.filesystems import FileSystems

            FileSystems.delete([staging + "/"])
        else:
            shutil.rmtree(staging, ignore_errors=True)
    except Exception:  # noqa: BLE001
        log.warning("could not delete staging directory %s", staging)


def _commit(staging: str, out: str, partitions: list[str]) -> None:
    if not io.is_remote(out):
        if os.path.isdir(out) and os.listdir(out):
            old = f"{out}.old-{os.path.basename(staging).split('staging-')[-1]}"
            os.rename(out, old)
            os.rename(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if os.path.isdir(out):
                os.rmdir(out)
            os.rename(staging, out)
        return
    from apache_beam.io.filesystems import FileSystems

    files = [m.path for m in FileSystems.match([staging + "/**"])[0].metadata_list]
    markers = [f for f in files if f.endswith("/" + SUCCESS) or f.endswith("/" + DATASET_FILE)]
    data = [f for f in files if f not in markers]
    FileSystems.rename(data, [f.replace(staging, out, 1) for f in data])
    FileSystems.rename(markers, [f.replace(staging, out, 1) for f in markers])
    abort(staging)


def finalize(staging: str, options: JobOptions, spec: Any, manifest: list[dict], counts: Mapping[str, Any],
             started: float, job_info: Mapping[str, Any]) -> dict:
    """Markers, _DATASET.json, reconciliation, commit. Returns the dataset summary.

    ``counts`` holds ``read`` and ``rejected`` (per split), ``reject_reasons``, and optionally
    ``duplicates`` (rows repeating an earlier (user, time, item)) and ``missing_join`` (per table,
    events whose key it lacks). Raises ReconcileError (after deleting the staging tree) when counts
    do not balance, InputError when duplicates / missing joins were found and the options say fail.
    Every ``_SUCCESS`` marker holds the partition's manifest (``infnet_tf.data.partitions.manifest_text``).
    """
    data_files = [e for e in manifest if "split" in e]
    written: dict[str, int] = {}
    partitions: dict[str, dict[str, dict]] = {s: {} for s in SPLITS}
    part_files: dict[tuple[str, str], dict[str, int]] = {}
    for e in data_files:
        written[e["split"]] = written.get(e["split"], 0) + e["rows"]
        p = partitions[e["split"]].setdefault(e["partition"], {"partition": e["partition"], "rows": 0, "files": 0,
                                                                "bytes": 0})
        p["rows"] += e["rows"]
        p["files"] += 1
        p["bytes"] += e["bytes"]
        files = part_files.setdefault((e["split"], e["partition"]), {})
        files[e["file"].rsplit("/", 1)[-1]] = files.get(e["file"].rsplit("/", 1)[-1], 0) + int(e["rows"])
    duplicates = int(counts.get("duplicates", 0))
    missing_join = {k: int(v) for k, v in sorted(counts.get("missing_join", {}).items())}
    lines, ok = reconcile(counts["read"], written, counts["rejected"])
    lines.append(f"{'duplicates':>10}: {duplicates:,} written row(s) repeat an earlier row's (user, time, item)")
    for table, n in missing_join.items():
        lines.append(f"{'no ' + table:>10}: {n:,} written row(s) have a key missing from the {table} table "
                     f"(its columns are null)")
    for line in lines:
        print(line, flush=True)
    if not ok:
        abort(staging)
        raise ReconcileError("read != written + rejected; see the lines above. Nothing was committed.")
    if options.fail_on_duplicates and duplicates:
        abort(staging)
        raise InputError(f"events: {duplicates:,} duplicate row(s) (same user, time and item) and "
                         f"--fail_on_duplicates is set; nothing was committed")
    missing_total = sum(missing_join.values())
    if options.fail_on_missing_join and missing_total:
        abort(staging)
        shown = ", ".join(f"{n:,} not in {t}" for t, n in missing_join.items() if n)
        raise InputError(f"events: {missing_total:,} event key(s) missing from a joined table ({shown}) and "
                         f"--fail_on_missing_join is set; nothing was committed")
    for split, parts in partitions.items():
        for name in parts:
            io.write_text(io.join(staging, split, name, SUCCESS), manifest_text(part_files[(split, name)]))
    if not io.is_remote(staging):  # the docs promise rejects/ (empty when nothing was rejected)
        os.makedirs(os.path.join(staging, REJECTS_DIR), exist_ok=True)
    summary = {
        "format": DATASET_FORMAT, "version": DATASET_VERSION,
        "spec_name": spec.name, "spec_fingerprint": spec.fingerprint(), "spec_path": options.spec_path,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "artifact": ARTIFACT_RELPATH,
        "split": counts.get("cuts"),
        "counts": {s: {"read": int(counts["read"].get(s, 0)), "written": int(written.get(s, 0)),
                       "rejected": int(counts["rejected"].get(s, 0))} for s in ALL_SPLITS},
        "reject_reasons": dict(sorted(counts.get("reject_reasons", {}).items())),
        "duplicates": duplicates,
        "missing_join": missing_join,
        "partitions": {s: sorted(parts.values(), key=lambda p: p["partition"]) for s, parts in partitions.items()},
        "files": sorted(e["file"] for e in data_files),
        "rejects_files": sorted(e["file"] for e in manifest if "split" not in e),
        "job": {**job_info, "num_shards": options.num_shards, "elapsed_s": round(time.time() - started, 2)},
    }
    io.write_text(io.join(staging, DATASET_FILE), json.dumps(summary, indent=1, sort_keys=True))
    from apache_beam.io.filesystems import FileSystems

    leftovers = [io.join(staging, name) for name in (MANIFEST_FILE, COUNTS_FILE)]
    present = [p for p in leftovers if io.exists(p)]
    if present:
        FileSystems.delete(present)
    _commit(staging, options.output.rstrip("/"), [])
    return summary
