"""Reading raw sources as Arrow record batches, and writing output files, for Beam and plain loops.

* Parquet is read with Beam's ``ReadFromParquetBatched`` (one ``pyarrow.Table`` per row group,
  only the needed columns), then cut into batches of at most ``batch_rows`` rows. Event times
  stay int64 (the per-row ``ReadFromParquet`` would turn timestamps into naive datetimes).
* CSV files are read with pyarrow's streaming CSV reader, every column as a string (values are
  parsed in :mod:`pipelines.columns`, so a bad value becomes a reject, not a failed job); a line
  with the wrong number of fields becomes a ``malformed_row`` reject. A CSV file is read by one
  worker; split big CSV inputs into several files.
* Paths go through Beam's ``FileSystems`` (local, ``gs://``, ``s3://``, ``hdfs://`` where the
  matching Beam filesystem is installed). A source path may be a file, a glob or a directory
  (all files inside).
"""
from __future__ import annotations

import csv
import os
import posixpath
from typing import Any, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from infnet_tf.data.fs import join  # noqa: F401  (the one path join; pipelines use io.join)
from pipelines import columns as cols

DEFAULT_BATCH_ROWS = 65_536
MALFORMED = "malformed"


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
def is_remote(path: str) -> bool:
    return "://" in path


def resolve(path: str, raw_dir: str | None) -> str:
    """A source path from the spec, resolved against ``--raw`` (default: the working directory)."""
    if is_remote(path) or os.path.isabs(path):
        return path
    return join(raw_dir or os.getcwd(), path)


def match_files(pattern: str, what: str) -> list[str]:
    """Files matching ``pattern`` (a directory means everything in it), sorted; fails when none."""
    if not any(c in pattern for c in "*?[") and not is_remote(pattern) and os.path.isdir(pattern):
        pattern = join(pattern, "*")
    try:
        result = FileSystems.match([pattern])[0]
        files = sorted(m.path for m in result.metadata_list if not posixpath.basename(m.path).startswith((".", "_")))
    except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError with a nested cause
        raise FileNotFoundError(f"{what}: cannot list {pattern}: {exc}") from None
    if not files:
        raise FileNotFoundError(f"{what}: no files match {pattern}")
    return files


def open_read(path: str):
    return FileSystems.open(path, compression_type="uncompressed")


# ---------------------------------------------------------------------------------------------
# Schemas (fail fast before running anything)
# ---------------------------------------------------------------------------------------------
def read_schema(path: str, fmt: str) -> pa.Schema:
    """A Parquet file's schema, or a CSV file's header as string columns."""
    with open_read(path) as f:
        if fmt == "parquet":
            return pq.read_schema(pa.PythonFile(f, mode="r"))
        header = f.readline().decode("utf-8-sig").rstrip("\r\n")
    names = next(csv.reader([header]), [])
    return pa.schema([(name, pa.string()) for name in names])


CSV_BYTES_PER_ROW = 64  # the row estimate of a CSV file is its size / this (used by --num_shards=auto)
_FAMILIES = {"integer": "number", "float": "number", "bool": "number", "null": None}


def _size(path: str) -> int:
    try:
        return int(FileSystems.match([path])[0].metadata_list[0].size_in_bytes)
    except Exception:  # noqa: BLE001
        return -1


def _parquet_metadata(path: str, what: str):
    try:
        with open_read(path) as f:
            return pq.ParquetFile(pa.PythonFile(f, mode="r")).metadata
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError for broken files
        size = _size(path)
        detail = "a 0-byte file" if size == 0 else f"{size:,} bytes: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        raise cols.InputError(f"{what} ({path}): not a readable Parquet file ({detail})") from None


def _csv_rows_estimate(path: str) -> int:
    """0 when the CSV file has no line after its header, else about size / CSV_BYTES_PER_ROW."""
    with open_read(path) as f:
        head = f.read(1 << 16)
    lines = [line for line in head.split(b"\n")[1:] if line.strip()]
    if not lines:
        return 0
    return max(1, _size(path) // CSV_BYTES_PER_ROW)


def check_source_schemas(plan: cols.ColumnPlan, sources: dict[str, Any], files: dict[str, list[str]]) -> dict[str, int]:
    """Check every file of every source before running anything; returns rows per source.

    Each file must be readable and hold every needed column with an accepted type, and a column's
    type must be of the same family (number / string / timestamp) in every file of a source as in
    its first file. Rows are exact for Parquet (footers) and estimated for CSV. An events source
    with no rows fails (nothing to build). Raises :class:`SchemaError` / :class:`InputError`
    (one line, naming the file and column).
    """
    rows: dict[str, int] = {}
    for name, src in sources.items():
        first: tuple[str, pa.Schema] | None = None
        total = 0
        for path in files[name]:
            if src.format == "parquet":
                meta = _parquet_metadata(path, name)
                schema = meta.schema.to_arrow_schema()
                total += int(meta.num_rows)
            else:
                if _size(path) == 0:
                    raise cols.InputError(f"{name} ({path}): empty CSV file (0 bytes, not even a header)")
                schema = read_schema(path, src.format)
                total += _csv_rows_estimate(path)
            cols.check_schema(plan, name, schema, path, from_csv=src.format == "csv")
            if first is None:
                first = (path, schema)
                continue
            for column in plan.columns(name):
                a, b = first[1].field(column).type, schema.field(column).type
                fa, fb = (_FAMILIES.get(cols._kind(t), cols._kind(t)) for t in (a, b))
                if fa is not None and fb is not None and fa != fb:
                    raise cols.SchemaError(f"{name} ({path}): column {column!r} has type {b}, but in the first file "
                                           f"{first[0]} it has type {a}; every file of a source must agree")
        rows[name] = total
        if name == "events" and total == 0:
            shown = files[name][0] if len(files[name]) == 1 else f"{len(files[name])} files ({files[name][0]}, ...)"
            raise cols.InputError(f"events ({shown}): 0 rows; nothing to build")
    return rows


def _read_column(src: Any, path: str, column: str, limit: int | None = None) -> pa.Array:
    """One column of one file (at most ``limit`` rows when given), as a plain Arrow array."""
    with open_read(path) as f:
        if src.format == "parquet":
            pf = pq.ParquetFile(pa.PythonFile(f, mode="r"))
            if limit is None:
                table = pf.read(columns=[column])
            else:
                table = next(pf.iter_batches(batch_size=limit, columns=[column]), None)
                table = pa.Table.from_batches([table]) if table is not None else pa.table({column: pa.array([])})
        else:
            reader = pacsv.open_csv(pa.PythonFile(f, mode="r"), read_options=pacsv.ReadOptions(block_size=1 << 20),
                                    parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                                    convert_options=pacsv.ConvertOptions(
                                        column_types={column: pa.string()}, include_columns=[column],
                                        strings_can_be_null=True, null_values=[""]))
            batches = []
            got = 0
            for batch in reader:
                batches.append(batch)
                got += batch.num_rows
                if limit is not None and got >= limit:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
    arr = table[column]
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr if limit is None else arr.slice(0, limit)


UNIT_SAMPLE_ROWS = 10_000
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}


def check_time_unit(plan: cols.ColumnPlan, src: Any, files: list[str], sample_rows: int = UNIT_SAMPLE_ROWS) -> None:
    """Fail when an events file's time values look like another unit than the spec declares.

    The first ``sample_rows`` values of each file are read as s, ms and us: when under half of them
    fall inside the plausible window as declared but at least 90% do as another unit, the spec's
    ``time.unit`` is wrong (e.g. epoch seconds declared as ms all land in January 1970).
    """
    from pipelines.split import iso

    factors = {"s": 1000.0, "ms": 1.0, "us": 0.001}
    for path in files:
        arr = cols._plain(_read_column(src, path, plan.time_column, sample_rows))
        if pa.types.is_timestamp(arr.type):
            continue  # a timestamp carries its unit
        values, null, bad = cols.parse_numbers(arr)
        values = values[~null & ~bad & np.isfinite(values)]
        if values.size == 0:
            continue

        def inside(unit: str) -> float:
            ms = values * factors[unit]
            return float(np.mean((ms >= plan.min_time_ms) & (ms < plan.max_time_ms)))

        declared = inside(plan.time_unit)
        if declared >= 0.5:
            continue
        others = sorted(((inside(u), u) for u in factors if u != plan.time_unit), reverse=True)
        share, likely = others[0]
        if share >= 0.9:
            example = float(np.median(values))
            raise cols.InputError(
                f"events ({path}): time column {plan.time_column!r} is declared in {UNIT_NAMES[plan.time_unit]} "
                f"(time.unit: {plan.time_unit}) but {100 * (1 - declared):.0f}% of its values fall outside "
                f"{iso(plan.min_time_ms)[:10]}..{iso(plan.max_time_ms)[:10]} that way (median {example:.0f} = "
                f"{iso(int(example * factors[plan.time_unit]))[:10]}); they look like {UNIT_NAMES[likely]}: "
                f"set time.unit: {likely}")


def check_dimension_keys(plan: cols.ColumnPlan, sources: dict[str, Any], files: dict[str, list[str]]) -> None:
    """Fail (one line naming the file(s) and key) when a users/items key appears twice."""
    for name in ("users", "items"):
        if name not in sources:
            continue
        key = plan.dim_keys[name]
        parts, origin = [], []
        for i, path in enumerate(files[name]):
            arr = _read_column(sources[name], path, key)
            keep = ~cols._key_missing(arr)
            arr = cols._key(arr).filter(pa.array(keep))
            if len(arr) and not pa.types.is_string(arr.type):
                arr = pc.cast(arr, pa.string()) if not pa.types.is_integer(arr.type) else pc.cast(arr, pa.int64())
            parts.append(arr)
            origin.append(np.full(len(arr), i, dtype=np.int64))
        types = {str(p.type) for p in parts if len(p)}
        if len(types) > 1:
            parts = [pc.cast(p, pa.string()) for p in parts]
        if not parts:
            continue
        keys = pa.chunked_array(parts).combine_chunks() if len(parts) > 1 else parts[0]
        where = np.concatenate(origin)
        counts = pc.value_counts(keys)
        dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        if not len(dup):
            continue
        value = dup.field("values")[0].as_py()
        rows = np.flatnonzero(pc.equal(keys, pa.scalar(value, type=keys.type)).to_numpy(zero_copy_only=False))
        holders = sorted({files[name][int(where[r])] for r in rows})
        place = f"twice in {holders[0]}" if len(holders) == 1 else f"in {holders[0]} and {holders[1]}"
        raise cols.InputError(f"{name} ({holders[0]}): key column {key!r} has duplicate values ({len(dup)} keys, "
                              f"e.g. {value!r} {place}); the join to events would be ambiguous")


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------
def rebatch(table: pa.Table, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.Table]:
    """``table`` in pieces of at most ``batch_rows`` rows; pieces are compact copies, because a
    pickled slice of an Arrow table carries its parent's whole buffers."""
    n = table.num_rows
    if n <= batch_rows:
        if n:
            yield table
        return
    for start in range(0, n, batch_rows):
        yield table.take(pa.array(np.arange(start, min(n, start + batch_rows))))


def _csv_options(columns: list[str], malformed: list[dict]):
    def on_invalid(row) -> str:
        malformed.append(cols.malformed_record(row.text, f"expected {row.expected_columns} fields, got {row.actual_columns}"))
        return "skip"

    read = pacsv.ReadOptions(block_size=1 << 22)
    parse = pacsv.ParseOptions(invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}, include_columns=columns,
                                   strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True)
    return read, parse, convert


def iter_csv(path: str, columns: list[str], batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[tuple[str, Any]]:
    """``("batch", table)`` and ``("malformed", record)`` items of one CSV file."""
    malformed: list[dict] = []
    read, parse, convert = _csv_options(columns, malformed)
    with open_read(path) as f:
        reader = pacsv.open_csv(pa.PythonFile(f, mode="r"), read_options=read, parse_options=parse,
                                convert_options=convert)
        for batch in reader:
            for record in malformed:
                yield MALFORMED, record
            malformed.clear()
            for table in rebatch(pa.Table.from_batches([batch]), batch_rows):
                yield "batch", table
    for record in malformed:
        yield MALFORMED, record


def iter_parquet(path: str, columns: list[str], batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.Table]:
    with open_read(path) as f:
        pf = pq.ParquetFile(pa.PythonFile(f, mode="r"))
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            yield pa.Table.from_batches([batch])


def iter_source(src: Any, files: list[str], columns: list[str], batch_rows: int = DEFAULT_BATCH_ROWS):
    """Plain (non-Beam) reading of a source: ``("batch", table)`` / ``("malformed", record)``."""
    for path in files:
        if src.format == "parquet":
            for table in iter_parquet(path, columns, batch_rows):
                yield "batch", table
        else:
            yield from iter_csv(path, columns, batch_rows)


class _ReadCsv(beam.DoFn):
    def __init__(self, columns: list[str], batch_rows: int):
        self.columns, self.batch_rows = columns, batch_rows

    def process(self, path: str):
        for kind, item in iter_csv(path, self.columns, self.batch_rows):
            yield item if kind == "batch" else beam.pvalue.TaggedOutput(MALFORMED, item)


class ReadSource(beam.PTransform):
    """A source as a PCollection of Arrow tables (<= batch_rows rows) plus malformed-row records.

    Expands to ``{"batches": ..., "malformed": ...}``.
    """

    def __init__(self, src: Any, files: list[str], columns: list[str], batch_rows: int = DEFAULT_BATCH_ROWS):
        super().__init__()
        self.src, self.files, self.columns, self.batch_rows = src, files, columns, batch_rows

    def expand(self, pbegin):
        batch_rows = self.batch_rows
        if self.src.format == "parquet":
            if len(self.files) == 1:
                tables = pbegin | "ReadParquet" >> beam.io.ReadFromParquetBatched(self.files[0], columns=self.columns)
            else:
                tables = (pbegin | "Files" >> beam.Create(self.files)
                          | "ReadParquet" >> beam.io.ReadAllFromParquetBatched(columns=self.columns))
            batches = tables | "Rebatch" >> beam.FlatMap(lambda t: rebatch(t, batch_rows))
            malformed = pbegin | "NoMalformed" >> beam.Create([])
            return {"batches": batches, "malformed": malformed}
        out = (pbegin
               | "Files" >> beam.Create(self.files)
               | "ReadCsv" >> beam.ParDo(_ReadCsv(self.columns, batch_rows)).with_outputs(MALFORMED, main="batches"))
        return {"batches": out.batches, "malformed": out[MALFORMED]}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def write_bytes(path: str, chunks) -> int:
    """Write ``chunks`` (bytes-like) to ``path``, creating parent directories; returns the size."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    size = 0
    with FileSystems.create(path, mime_type="application/octet-stream", compression_type="uncompressed") as f:
        for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
    return size


def create(path: str):
    """A binary file handle for writing ``path`` (parent directories created for local paths)."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return FileSystems.create(path, mime_type="application/octet-stream", compression_type="uncompressed")


def write_text(path: str, text: str) -> None:
    write_bytes(path, [text.encode("utf-8")])


def read_text(path: str) -> str:
    with open_read(path) as f:
        return f.read().decode("utf-8")


def exists(path: str) -> bool:
    return FileSystems.exists(path)
