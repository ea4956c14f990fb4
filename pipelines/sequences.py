"""Point-in-time behaviour sequences and counter features, vectorised per shard.

The "earlier" rule (sequences and counters alike): an impression at time t sees another event of
the same user (counters: of the same key) only if that event's time is **strictly less than t**.
Events at exactly t — the impression itself included — are never seen, whatever their order.
Among earlier events, ties in time are ordered by the item key (ascending), so a sequence is a
deterministic function of the data, independent of input order; events with equal (time, item)
give identical sequence elements, so their relative order cannot matter.

How it scales (memory): rows are routed to ``num_shards`` shards by a hash of the user key, so
all events of a user meet in one shard, which is sorted once by (user, time, item). For every
row we then keep only O(1) numbers per sequence type — the range ``[start, end)`` of its
sequence within the shard's time-ordered list of qualifying events (the ``max_len`` most recent
ones strictly before it) — instead of materialising the sequence. Sequences are expanded only
while encoding, a few thousand Examples at a time. Memory per worker is therefore
O(rows of one shard), independent of ``max_len`` and of how active a single user is (a heavy user
just makes its shard bigger); raise ``--num_shards`` for more data. Counters keyed by anything
other than the user (e.g. the item) take one extra shuffle by that key before the user shuffle.

Counters: for a key value k and an impression at time t, ``imp`` counts the key's impressions
with time in ``[t - window, t)`` (``all``: ``(-inf, t)``), a task's counter counts those with
that task's label == 1 (-1/null labels are not positives). A null key gives NaN (bucket 0).
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.columns import TIME, filter_column, label_column

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


# ---------------------------------------------------------------------------------------------
# Sharding
# ---------------------------------------------------------------------------------------------
def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of 64-bit integers."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def shard_ids(keys: Any, num_shards: int) -> np.ndarray:
    """Deterministic shard in ``[0, num_shards)`` per key (same in every process and run)."""
    arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if pa.types.is_integer(arr.type):
        raw = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False).view(np.uint64)
    else:
        encoded = pc.dictionary_encode(pc.cast(arr, pa.string()))
        distinct = encoded.dictionary.to_pylist()
        codes = np.array([zlib.crc32(s.encode("utf-8")) for s in distinct], dtype=np.uint64)
        raw = codes[pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)]
    return (_mix64(raw) % np.uint64(num_shards)).astype(np.int64)


def split_by_shard(table: pa.Table, key: str, num_shards: int) -> list[tuple[int, pa.Table]]:
    """``(shard, rows)`` pieces of ``table``; each piece is a compact copy (safe to pickle)."""
    if table.num_rows == 0:
        return []
    shards = shard_ids(table[key], num_shards)
    order = np.argsort(shards, kind="stable")
    bounds = np.flatnonzero(np.diff(shards[order])) + 1
    out = []
    for idx in np.split(order, bounds):
        out.append((int(shards[idx[0]]), table.take(pa.array(idx))))
    return out


# ---------------------------------------------------------------------------------------------
# Blocks and ties in a sorted table
# ---------------------------------------------------------------------------------------------
def _changes(sorted_key: pa.Array) -> np.ndarray:
    """True where a sorted column's value differs from the previous row's (row 0: True)."""
    n = len(sorted_key)
    out = np.ones(n, dtype=bool)
    if n > 1:
        a, b = sorted_key.slice(1), sorted_key.slice(0, n - 1)
        differ = pc.not_equal(a, b)
        both_null = pc.and_(a.is_null(), b.is_null())
        out[1:] = pc.fill_null(differ, True).to_numpy(zero_copy_only=False)
        out[1:] &= ~both_null.to_numpy(zero_copy_only=False)
    return out


def _starts(change: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its run (runs begin where ``change``)."""
    idx = np.where(change, np.arange(change.size), 0)
    return np.maximum.accumulate(idx) if idx.size else idx


@dataclasses.dataclass
class Ordered:
    """A table sorted by (key, time[, tie]) with, per row, the start of its key block and time tie."""

    table: pa.Table
    block_start: np.ndarray
    tie_start: np.ndarray
    time: np.ndarray


def order_rows(table: pa.Table, key: str, tie: str | None = None) -> Ordered:
    sort_keys = [(key, "ascending"), (TIME, "ascending")] + ([(tie, "ascending")] if tie else [])
    order = pc.sort_indices(table, sort_keys=sort_keys)  # nulls sort last
    table = table.take(order)
    time = table[TIME].to_numpy().astype(np.int64)
    key_change = _changes(_plain(table[key]))
    time_change = key_change.copy()
    time_change[1:] |= time[1:] != time[:-1]
    return Ordered(table, _starts(key_change), _starts(time_change), time)


def _plain(col: Any) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


# ---------------------------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SeqRanges:
    """Per row: its sequence is ``rows[start:end]`` (positions of qualifying rows, oldest first)."""

    rows: np.ndarray   # int64 positions (in the ordered table) of the qualifying events
    start: np.ndarray  # int64 per row
    end: np.ndarray    # int64 per row

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start

    def gather(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(event positions of the sequences of rows ``which``, concatenated; their lengths)."""
        start, lengths = self.start[which], self.lengths[which]
        total = int(lengths.sum())
        offsets = np.cumsum(lengths) - lengths
        flat = np.repeat(start - offsets, lengths) + np.arange(total, dtype=np.int64)
        return self.rows[flat], lengths


def sequence_ranges(ordered: Ordered, qualifies: np.ndarray, max_len: int) -> SeqRanges:
    """The ``max_len`` most recent qualifying events of the same key strictly before each row."""
    q = np.asarray(qualifies, dtype=bool)
    before = np.concatenate([[0], np.cumsum(q)]).astype(np.int64)  # qualifying rows before position i
    end = before[ordered.tie_start]
    first = before[ordered.block_start]
    start = np.maximum(first, end - int(max_len))
    return SeqRanges(rows=np.flatnonzero(q).astype(np.int64), start=start, end=end)


# ---------------------------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------------------------
def window_starts(ordered: Ordered, window_ms: int | None) -> np.ndarray:
    """Per row, the first position of its key block with time >= t - window (block start for all)."""
    if window_ms is None:
        return ordered.block_start
    t = ordered.time
    distinct = np.unique(t)
    rank = np.searchsorted(distinct, t)
    block_id = np.cumsum(ordered.block_start == np.arange(t.size)) - 1
    span = np.int64(distinct.size + 1)
    composite = block_id.astype(np.int64) * span + rank
    low = block_id.astype(np.int64) * span + np.searchsorted(distinct, t - np.int64(window_ms), side="left")
    return np.searchsorted(composite, low, side="left")


def counter_values(ordered: Ordered, key: str, features: Sequence[Any]) -> dict[str, np.ndarray]:
    """Raw counts (float64; NaN where the key is null) of ``features`` for every ordered row."""
    out: dict[str, np.ndarray] = {}
    key_null = ordered.table[key].is_null().to_numpy(zero_copy_only=False)
    lows: dict[Any, np.ndarray] = {}
    cums: dict[str, np.ndarray] = {}
    for f in features:
        if f.window_ms not in lows:
            lows[f.window_ms] = window_starts(ordered, f.window_ms)
        low, high = lows[f.window_ms], ordered.tie_start
        if f.what == "imp":
            counts = high - low
        else:
            if f.what not in cums:
                positive = ordered.table[label_column(f.what)].to_numpy() == 1
                cums[f.what] = np.concatenate([[0], np.cumsum(positive)]).astype(np.int64)
            counts = cums[f.what][high] - cums[f.what][low]
        values = counts.astype(np.float64)
        values[key_null] = np.nan
        out[f.name] = values
    return out


def add_counters(table: pa.Table, key: str, features: Sequence[Any], tie: str | None = None) -> pa.Table:
    """``table`` ordered by (key, time) with one float64 column per counter feature appended."""
    ordered = order_rows(table, key, tie)
    values = counter_values(ordered, key, features)
    out = ordered.table
    for name, v in values.items():
        out = out.append_column(name, pa.array(v))
    return out


# ---------------------------------------------------------------------------------------------
# A shard's block: ordered rows, sequence ranges and split per row
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Block:
    """One user shard after the point-in-time pass; everything the encoder needs except the artifact."""

    shard: int
    table: pa.Table                 # ordered by (user, time, item); counters as float64 columns
    sequences: dict[str, SeqRanges]
    split: np.ndarray               # int8 per row: 0 train, 1 valid, 2 test
    duplicates: int = 0             # rows repeating an earlier row's (user, time, item): kept, counted

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def build_block(shard: int, table: pa.Table, spec: Any, cuts: Any) -> Block:
    """Order a user shard, compute user-keyed counters and every sequence type's ranges."""
    ordered = order_rows(table, spec.user_key, tie=spec.item_key)
    user_features = [f for f in spec.counter_features() if f.key == spec.user_key]
    out = ordered.table
    for name, values in counter_values(ordered, spec.user_key, user_features).items():
        out = out.append_column(name, pa.array(values))
    ranges = {s.name: sequence_ranges(ordered, ordered.table[filter_column(s.name)].to_numpy(zero_copy_only=False),
                                      s.max_len)
              for s in spec.sequences}
    # a row's identity is (user, time, item): a repeat of the previous row's triple is a duplicate
    same = ordered.tie_start != np.arange(ordered.time.size)  # same user and time as the previous row
    same &= ~_changes(_plain(ordered.table[spec.item_key]))
    return Block(shard=shard, table=out, sequences=ranges, split=cuts.assign(ordered.time),
                 duplicates=int(same.sum()))


def other_counter_keys(spec: Any) -> list[str]:
    """Counter keys that need their own shuffle (everything but the user key), in spec order."""
    keys: list[str] = []
    for f in spec.counter_features():
        if f.key != spec.user_key and f.key not in keys:
            keys.append(f.key)
    return keys


def counters_for_key(spec: Any, key: str) -> list[Any]:
    return [f for f in spec.counter_features() if f.key == key]
