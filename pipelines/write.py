"""Build: a shard block + the transform artifact -> GZIP TFRecord files of tf.train.Examples.

Every Example follows :mod:`infnet_tf.data.keys` (:func:`~infnet_tf.data.keys.record_keys`, in this order)::

    cat/<token>            int64      every token of spec.token_names(): categorical, dense, counters
    seq/<type>/<field>     int64 list item field, then side fields; most recent last
    seq/<type>/time_gap    int64 list time-gap bucket ids (>= 1)
    label/<task>           int64      0/1, MISSING_LABEL (-1) when the raw label is null
    user_key               bytes      the user key's string form
    event_time_ms          int64      epoch milliseconds (UTC)

A block writes one file per (split, partition) it has rows in:
``<root>/<split>/<partition>/part-<shard>-of-<num_shards>.tfrecord.gz``, rows in event-time
order (ties: user, item). File names are deterministic, so a retried bundle overwrites its own
file instead of duplicating rows. Examples are encoded ``chunk_rows`` at a time, which bounds the
memory of expanded sequences.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from infnet_tf.data import dataset_dir, keys
from infnet_tf.data.keys import EVENT_TIME, TIME_GAP, USER_KEY, cat_key, label_key, seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.transform import TransformArtifact, string_form
from pipelines import io
from pipelines.columns import TIME, label_column
from pipelines.examples import BYTES, INT, INTS, ExampleEncoder, gzip_compressor
from pipelines.sequences import Block
from pipelines.split import partition_ids, partition_name

DEFAULT_CHUNK_ROWS = 4096
_ENCODER_KIND = {keys.ID: INT, keys.IDS: INTS, keys.STRING: BYTES}


def example_features(layout: FeatureLayout) -> list[tuple[str, str]]:
    """The ordered (key, encoder kind) list of every Example (:func:`infnet_tf.data.keys.record_keys`)."""
    return [(k.name, _ENCODER_KIND[k.kind]) for k in keys.record_keys(layout)]


def _strings(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(flat utf-8 bytes, lengths) of a null-free string array, straight from its Arrow buffers."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    flat = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return flat[offsets[0]:offsets[-1]], np.diff(offsets).astype(np.int64)


class BlockEncoder:
    """Turns rows of a block into framed, serialized Examples (the artifact applied on the way)."""

    def __init__(self, spec: Any, artifact: TransformArtifact):
        self.spec = spec
        self.artifact = artifact
        self.layout = artifact.feature_layout
        self.encoder = ExampleEncoder(example_features(self.layout))

    def prepare(self, block: Block) -> dict[str, Any]:
        """Per-block arrays: token ids of every row (also used to look up sequence events)."""
        table = block.table
        ids = self.artifact.transform_batch({name: table[name] for name in self.artifact.token_names})
        return {
            "ids": ids,
            "time": table[TIME].to_numpy(),
            "labels": {t.name: table[label_column(t.name)].to_numpy() for t in self.spec.tasks},
            "user_key": string_form(table[self.spec.user_key]),
        }

    def encode(self, block: Block, prepared: dict, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(buffer, record starts, record sizes) of framed TFRecords of Examples for ``rows``."""
        ids, time = prepared["ids"], prepared["time"]
        columns: dict[str, Any] = {cat_key(t.name): ids[t.name][rows] for t in self.layout.categorical}
        for seq in self.layout.sequences:
            events, lengths = block.sequences[seq.name].gather(rows)
            for field in seq.fields:
                columns[seq_key(seq.name, field.name)] = (ids[field.name][events], lengths)
            gaps = np.repeat(time[rows], lengths) - time[events]
            columns[seq_key(seq.name, TIME_GAP)] = (self.artifact.time_gap_ids(seq.name, gaps), lengths)
        for task in self.layout.tasks:
            columns[label_key(task.name)] = prepared["labels"][task.name][rows]
        columns[USER_KEY] = _strings(prepared["user_key"].take(pa.array(rows)))
        columns[EVENT_TIME] = time[rows]
        return self.encoder.encode(columns, rows.size, framed=True)


def partition_rows(block: Block, partition: str, timezone: str = "UTC") -> Iterator[tuple[str, str, np.ndarray]]:
    """(split, partition name, rows in time order) for every non-empty partition of the block."""
    time = block.table[TIME].to_numpy()
    pids = partition_ids(time, partition, timezone)
    order = np.lexsort((np.arange(time.size), time, pids, block.split))  # split, partition, time, block order
    keys = np.stack([block.split[order], pids[order]], axis=1)
    bounds = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
    for rows in np.split(order, bounds):
        if rows.size:
            yield dataset_dir.SPLITS[int(block.split[rows[0]])], partition_name(int(pids[rows[0]]), partition), rows


def write_block(block: Block, encoder: BlockEncoder, root: str, num_shards: int, partition: str,
                compression_level: int = 3, chunk_rows: int = DEFAULT_CHUNK_ROWS, timezone: str = "UTC") -> list[dict]:
    """Write a block's Examples; returns one manifest entry per file written.

    The block's rows, grouped by file, are encoded ``chunk_rows`` at a time *across* file
    boundaries (a file typically holds only a few hundred rows of a block, too few to amortise
    the encoder's per-call cost); each chunk's framed records are then handed to their files.
    """
    if block.num_rows == 0:
        return []
    prepared = encoder.prepare(block)
    files = list(partition_rows(block, partition, timezone))
    rows = np.concatenate([r for _, _, r in files])
    ends = np.cumsum([r.size for _, _, r in files])
    entries: list[dict] = []
    current: dict = {}

    def open_file(i: int) -> None:
        split, part, r = files[i]
        relative = dataset_dir.data_file_relpath(split, part, block.shard, num_shards)
        current.update(index=i, relative=relative, gz=gzip_compressor(compression_level),
                       handle=io.create(io.join(root, relative)), size=0, rows=r.size, split=split, part=part)

    def write(data) -> None:
        out = current["gz"].compress(data)
        current["handle"].write(out)
        current["size"] += len(out)

    def close_file() -> None:
        tail = current["gz"].flush()
        current["handle"].write(tail)
        current["handle"].close()
        entries.append({"split": current["split"], "partition": current["part"], "file": current["relative"],
                        "rows": int(current["rows"]), "bytes": current["size"] + len(tail)})

    open_file(0)
    for chunk_start in range(0, rows.size, chunk_rows):
        chunk_end = min(rows.size, chunk_start + chunk_rows)
        buf, starts, sizes = encoder.encode(block, prepared, rows[chunk_start:chunk_end])
        pos = chunk_start
        while pos < chunk_end:
            file_end = int(ends[current["index"]])
            stop = min(file_end, chunk_end)
            a, b = pos - chunk_start, stop - 1 - chunk_start
            write(buf[starts[a]:starts[b] + sizes[b]])
            pos = stop
            if stop == file_end:
                close_file()
                if current["index"] + 1 < len(files):
                    open_file(current["index"] + 1)
    return entries


def write_rejects(records: list[dict], root: str, name: str) -> dict | None:
    """Write reject records as JSON lines to ``<root>/rejects/<name>.jsonl``; returns a manifest entry."""
    if not records:
        return None
    from pipelines.columns import reject_line

    text = "".join(reject_line(r) + "\n" for r in records)
    relative = dataset_dir.rejects_relpath(name)
    io.write_text(io.join(root, relative), text)
    return {"file": relative, "rows": len(records)}


def reject_counts(records: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r["reason"]] = out.get(r["reason"], 0) + 1
    return out

