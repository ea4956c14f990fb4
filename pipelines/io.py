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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines import columns as cols

DEFAULT_BATCH_ROWS = 65_536
MALFORMED = "malformed"


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
def is_remote(path: str) -> bool:
    return "://" in path


def join(*parts: str) -> str:
    first = parts[0]
    if is_remote(first):
        return "/".join([first.rstrip("/")] + [p.strip("/") for p in parts[1:]])
    return os.path.join(*parts)


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


def check_source_schemas(plan: cols.ColumnPlan, sources: dict[str, Any], files: dict[str, list[str]]) -> None:
    """Check the first file of every source: missing columns and wrong types fail here."""
    for name, src in sources.items():
        schema = read_schema(files[name][0], src.format)
        cols.check_schema(plan, name, schema, files[name][0], from_csv=src.format == "csv")


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
