"""The sample data through the dataset job, with the raw request behind every Example captured.

:func:`build` writes a small synthetic KuaiRand-like log (``pipelines.sample_data``) and runs
the dataset job over it with ``pipelines.plain`` — the same per-batch functions the Beam job calls,
in one process — while wrapping :meth:`pipelines.write.BlockEncoder.encode` so that for every
Example written we also keep the raw features it was made from: the joined raw column values, the
raw point-in-time counter counts, each behaviour type's earlier events (raw item ids, side
information and event times, most recent last) and the impression time as the request time. Those
raw rows are exactly what a serving request for that impression carries.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa

from infnet_tf.data.keys import LENGTH, seq_key
from infnet_tf.transform_graph import EVENT_TIME, REQUEST_TIME

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "feature_specs", "kuairand_synthetic.yaml")


def _values(column: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> list:
    return column.take(pa.array(rows)).to_pylist()


def raw_rows_of(block: Any, spec: Any, artifact: Any, rows: np.ndarray) -> list[dict]:
    """Raw serving rows (client form: nulls None, sequences as lists) for block positions ``rows``."""
    from pipelines.columns import TIME

    table = block.table
    out: list[dict] = [{} for _ in range(rows.size)]
    for token in artifact.token_names:
        for row, value in zip(out, _values(table[token], rows)):
            row[token] = value
    times = table[TIME].to_numpy()
    for row, t in zip(out, times[rows]):
        row[REQUEST_TIME] = int(t)
    for seq in spec.sequences:
        events, lengths = block.sequences[seq.name].gather(rows)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        fields = (seq.item_field, *seq.side_fields)
        columns = {f: _values(table[f], events) for f in fields}
        event_times = times[events]
        for i, row in enumerate(out):
            lo, hi = bounds[i], bounds[i + 1]
            for f in fields:
                row[seq_key(seq.name, f)] = columns[f][lo:hi]
            row[seq_key(seq.name, EVENT_TIME)] = [int(t) for t in event_times[lo:hi]]
            row[seq_key(seq.name, LENGTH)] = int(hi - lo)
    return out


def build(root: str, num_impressions: int = 3000, seed: int = 0) -> dict:
    """Sample raw data + the dataset under ``root``; returns paths and the captured (raw rows, Examples)."""
    from infnet_tf.feature_spec import load_spec
    from pipelines import plain, sample_data
    from pipelines.examples import read_tfrecords
    from pipelines.job import JobOptions
    from pipelines.write import BlockEncoder

    raw, data = os.path.join(root, "raw"), os.path.join(root, "data")
    config = sample_data.Config(num_impressions=num_impressions, num_users=60, num_items=400, days=4, seed=seed)
    sample_data.write_tables(sample_data.generate(config, log=lambda *_: None), raw)
    spec = load_spec(SPEC)
    captured: list[tuple[list[dict], list[bytes]]] = []
    original = BlockEncoder.encode

    def encode(self, block, prepared, rows):
        out = original(self, block, prepared, rows)
        buf = out[0] if isinstance(out, tuple) else out  # framed TFRecord bytes (+ record offsets)
        captured.append((raw_rows_of(block, self.spec, self.artifact, rows), read_tfrecords(np.asarray(buf).tobytes())))
        return out

    BlockEncoder.encode = encode
    try:
        plain.run(spec, JobOptions(spec_path=SPEC, output=data, raw=raw, num_shards=2))
    finally:
        BlockEncoder.encode = original
    rows = [r for batch, _ in captured for r in batch]
    examples = [e for _, batch in captured for e in batch]
    assert len(rows) == len(examples)
    return {"raw": raw, "data": data, "spec": spec, "rows": rows, "examples": examples}
