"""Point-in-time sequences and counters: a property test against brute force on random logs."""
from __future__ import annotations

import types

import numpy as np
import pyarrow as pa
import pytest

from pipelines.columns import TIME, filter_column, label_column
from pipelines.sequences import add_counters, build_block, shard_ids, split_by_shard
from pipelines.split import Cuts

HOUR = 3_600_000
DAY = 24 * HOUR


def _feature(name, key, what, window_ms):
    return types.SimpleNamespace(name=name, key=key, what=what, window_ms=window_ms, window="x")


def _spec(max_len: int, features):
    seqs = [types.SimpleNamespace(name="click", max_len=max_len), types.SimpleNamespace(name="like", max_len=2)]
    return types.SimpleNamespace(user_key="user", item_key="item", sequences=seqs,
                                 counter_features=lambda: tuple(features))


def _random_log(rng, n: int, users: int, items: int) -> pa.Table:
    # coarse times (minutes over 3 days) so that equal times, also within a user, are common
    time = rng.integers(0, 3 * 24 * 60, n) * 60_000 + 1_790_000_000_000
    click = (rng.random(n) < 0.5).astype(np.int64)
    like = np.where(rng.random(n) < 0.1, -1, (rng.random(n) < 0.2).astype(np.int64))
    users_col = rng.integers(0, users, n)
    if users > 3:
        users_col[: n // 4] = 0  # one heavy user
    return pa.table({
        TIME: time, "user": pa.array(users_col), "item": pa.array(rng.integers(0, items, n)),
        label_column("click"): click, label_column("like"): like,
        filter_column("click"): click == 1, filter_column("like"): like == 1,
    })


def _brute_force(table: pa.Table, max_len: dict, features) -> list[dict]:
    rows = table.to_pylist()
    out = []
    for r in rows:
        seqs = {}
        for seq, m in max_len.items():
            earlier = sorted(((e[TIME], e["item"]) for e in rows
                              if e["user"] == r["user"] and e[TIME] < r[TIME] and e[filter_column(seq)]))
            seqs[seq] = earlier[-m:] if m else []
        counts = {}
        for f in features:
            lo = -np.inf if f.window_ms is None else r[TIME] - f.window_ms
            same = [e for e in rows if e[f.key] == r[f.key] and lo <= e[TIME] < r[TIME]]
            counts[f.name] = len(same) if f.what == "imp" else sum(e[label_column(f.what)] == 1 for e in same)
        out.append({"key": (r["user"], r[TIME], r["item"]), "seqs": seqs, "counts": counts, "earlier_clicks": sum(
            1 for e in rows if e["user"] == r["user"] and e[TIME] < r[TIME] and e[filter_column("click")])})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sequences_and_counters_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    table = _random_log(rng, n=300, users=6 + seed, items=15)
    features = [
        _feature("user_imp_1h", "user", "imp", HOUR), _feature("user_click_1d", "user", "click", DAY),
        _feature("user_like_all", "user", "like", None),
        _feature("item_imp_6h", "item", "imp", 6 * HOUR), _feature("item_click_all", "item", "click", None),
    ]
    max_len = {"click": 4, "like": 2}
    spec = _spec(max_len["click"], features)
    cuts = Cuts(valid_start_ms=1_790_000_000_000 + 2 * DAY, test_start_ms=1_790_000_000_000 + 3 * DAY, partition="daily")

    # the job's way: item counters in an item-shard pass, then user shards (3 shards each)
    pieces = split_by_shard(table, "item", 3)
    with_items = pa.concat_tables([add_counters(t, "item", features[3:]) for _, t in pieces])
    blocks = [build_block(shard, t, spec, cuts) for shard, t in split_by_shard(with_items, "user", 3)]
    assert sum(b.num_rows for b in blocks) == table.num_rows

    expected = {}
    for e in _brute_force(table, max_len, features):
        expected.setdefault(e["key"], e)  # duplicate (user, time, item) rows have identical answers
    for block in blocks:
        t = block.table
        time, user, item = t[TIME].to_numpy(), t["user"].to_numpy(), t["item"].to_numpy()
        for seq in max_len:
            ranges = block.sequences[seq]
            for i in range(block.num_rows):
                e = expected[(user[i], time[i], item[i])]
                events = ranges.rows[ranges.start[i]:ranges.end[i]]
                # no element at or after the impression's time; never the impression itself
                assert np.all(time[events] < time[i])
                # count = min(max_len, earlier qualifying events); the most recent ones, oldest first
                got = list(zip(time[events].tolist(), item[events].tolist()))
                assert got == e["seqs"][seq], (seq, i)
                if seq == "click":
                    assert len(got) == min(max_len["click"], e["earlier_clicks"])
        for f in features:
            values = t[f.name].to_numpy()
            for i in range(block.num_rows):
                assert values[i] == expected[(user[i], time[i], item[i])]["counts"][f.name], (f.name, i)
        assert np.array_equal(block.split, cuts.assign(time))


def test_sequences_do_not_depend_on_row_order_or_sharding():
    rng = np.random.default_rng(7)
    table = _random_log(rng, n=200, users=5, items=10)
    spec = _spec(3, [_feature("user_imp_all", "user", "imp", None)])
    cuts = Cuts(0, 2**62, "daily")

    def canonical(t, num_shards):
        out = {}
        for shard, piece in split_by_shard(t, "user", num_shards):
            b = build_block(shard, piece, spec, cuts)
            time, user, item = b.table[TIME].to_numpy(), b.table["user"].to_numpy(), b.table["item"].to_numpy()
            r = b.sequences["click"]
            for i in range(b.num_rows):
                ev = r.rows[r.start[i]:r.end[i]]
                out[(user[i], time[i], item[i])] = (tuple(time[ev]), tuple(item[ev]), b.table["user_imp_all"][i].as_py())
        return out

    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    assert canonical(table, 1) == canonical(shuffled, 4)


def test_shards_are_deterministic_and_cover_string_keys():
    ints = shard_ids(pa.array([1, 2, 3, 1, 2**40]), 8)
    assert ints[0] == ints[3] and np.all((ints >= 0) & (ints < 8))
    assert np.array_equal(ints, shard_ids(pa.array([1, 2, 3, 1, 2**40]), 8))
    strings = shard_ids(pa.array(["a", "b", "a", "ü"]), 5)
    assert strings[0] == strings[2] and np.all((strings >= 0) & (strings < 5))
    counts = np.bincount(shard_ids(pa.array(np.arange(10_000)), 16), minlength=16)
    assert counts.min() > 500  # well spread


def test_null_counter_key_gives_nan():
    t = pa.table({TIME: [1, 2, 3], "dev": pa.array(["a", None, "a"]), label_column("click"): [1, 1, 1]})
    out = add_counters(t, "dev", [_feature("dev_imp_all", "dev", "imp", None)])
    values = dict(zip(out[TIME].to_pylist(), out["dev_imp_all"].to_pylist()))
    assert values[1] == 0 and values[3] == 1 and np.isnan(values[2])
