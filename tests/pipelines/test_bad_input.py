"""Issue 13 (dataset job): no silent data loss, no silent wrong split, every error names its file.

Partition manifests in ``_SUCCESS``; ``--num_shards=auto``; the plausible time window and the
wrong-time-unit check; one-line exit-2 errors for bad input; duplicates / missing joins counted;
integral doubles in categorical columns; partitions in the split's time zone.
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from infnet_tf.data.errors import PartitionError
from infnet_tf.data.partitions import Partition, list_partitions
from infnet_tf.feature_spec import load_spec
from pipelines import build_dataset, job, plain, runner
from pipelines.job import JobOptions

from .conftest import IN_MEMORY, SAMPLE_SPEC, write_corpus

Y2100_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z


# -- helpers -------------------------------------------------------------------------------------
def _copy_raw(sample_raw: str, tmp_path, name: str = "raw") -> str:
    raw = str(tmp_path / name)
    shutil.copytree(sample_raw, raw)
    return raw


def _spec_variant(tmp_path, name: str = "spec.yaml", split: dict | None = None, sources: dict | None = None) -> str:
    data = yaml.safe_load(open(SAMPLE_SPEC))
    if split is not None:
        data["split"] = split
    if sources is not None:
        data["sources"].update(sources)
    path = str(tmp_path / name)
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def _main(spec: str, raw: str, out: str, *flags: str) -> int:
    return build_dataset.command([f"--spec={spec}", f"--raw={raw}", f"--output={out}", *flags, *IN_MEMORY])


def _error_line(capsys) -> str:
    """The single ``error:`` line the job printed on stderr."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


def _events(raw: str) -> pa.Table:
    return pq.read_table(os.path.join(raw, "events.parquet"))


def _write_events(raw: str, table: pa.Table) -> None:
    pq.write_table(table, os.path.join(raw, "events.parquet"))


def _with_column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


# -- A: the partition manifest in every _SUCCESS ---------------------------------------------------
def test_success_markers_hold_manifests_and_catch_a_missing_file(sample_raw, tmp_path):
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw, num_shards=3),
                                IN_MEMORY)
    checked = 0
    for split in ("train", "valid", "test"):
        expected = {p["partition"]: p for p in summary["partitions"][split]}
        parts = list_partitions(os.path.join(out, split))
        assert {p.key for p in parts} == set(expected)
        for part in parts:
            text = open(os.path.join(part.path, "_SUCCESS")).read()
            assert json.loads(text)["format"] == "infnet.partition"
            manifest = part.manifest()
            assert manifest is not None and manifest.source.endswith("_SUCCESS")
            assert manifest.rows == expected[part.key]["rows"]
            assert len(manifest.files) == expected[part.key]["files"]
            assert len(part.verified_files()) == expected[part.key]["files"]
            checked += 1
    assert checked >= 5
    victim = sorted(glob.glob(os.path.join(out, "train", "dt=*", "part-*.tfrecord.gz")))[0]
    os.remove(victim)
    part = Partition(key=os.path.basename(os.path.dirname(victim)), path=os.path.dirname(victim))
    with pytest.raises(PartitionError, match=os.path.basename(victim)):
        part.verified_files()


# -- B: --num_shards=auto ------------------------------------------------------------------------
def test_auto_num_shards_rule():
    assert [job.auto_num_shards(n) for n in (0, 1, 600, 200_000, 200_001, 1_000_000, 6_400_000, 10**9)] == \
        [1, 1, 1, 1, 2, 5, 32, 32]
    options, _ = build_dataset.parse_args(["--spec=s", "--output=o"])
    assert options.num_shards == "auto"
    options, _ = build_dataset.parse_args(["--spec=s", "--output=o", "--num_shards=7"])
    assert options.num_shards == 7
    with pytest.raises(SystemExit):
        build_dataset.parse_args(["--spec=s", "--output=o", "--num_shards=many"])
    with pytest.raises(SystemExit):
        build_dataset.parse_args(["--spec=s", "--output=o", "--num_shards=0"])


def test_small_data_gets_one_file_per_partition_by_default(sample_raw, tmp_path):
    out = str(tmp_path / "out")
    summary = plain.run(load_spec(SAMPLE_SPEC), JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw))
    assert summary["job"]["num_shards"] == 1
    assert all(p["files"] == 1 for parts in summary["partitions"].values() for p in parts)
    assert all(f.endswith("-of-00001.tfrecord.gz") for f in summary["files"])


# -- C: the plausible time window and the time unit ------------------------------------------------
def test_times_far_in_the_future_are_rejected_not_split(sample_raw, tmp_path):
    spec = load_spec(SAMPLE_SPEC)
    base = plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=str(tmp_path / "base"), raw=sample_raw))
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    future = events.slice(0, 20)
    future = _with_column(future, "time_ms", pa.array(np.full(20, Y2100_MS), pa.int64()))
    _write_events(raw, pa.concat_tables([events, future]))
    summary = plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=str(tmp_path / "out"), raw=raw))
    assert summary["reject_reasons"].get("time_outside_window") == 20
    for split in ("train", "valid", "test"):  # the split did not move
        assert summary["counts"][split]["written"] == base["counts"][split]["written"] > 0, split
    assert summary["counts"]["unassigned"]["rejected"] == base["counts"]["unassigned"]["rejected"] + 20
    assert all(c["read"] == c["written"] + c["rejected"] for c in summary["counts"].values())
    rejects = [json.loads(line) for f in glob.glob(str(tmp_path / "out" / "rejects" / "*.jsonl")) for line in open(f)]
    window = [r for r in rejects if r["reason"] == "time_outside_window"]
    assert len(window) == 20 and window[0]["column"] == "time_ms" and window[0]["value"] == Y2100_MS


def test_min_time_from_the_spec_rejects_older_rows(sample_raw, tmp_path):
    spec_path = _spec_variant(tmp_path, split={"valid_days": 1, "test_days": 1, "min_time": "2026-10-02"})
    summary = plain.run(load_spec(spec_path), JobOptions(spec_path=spec_path, output=str(tmp_path / "o"),
                                                         raw=sample_raw))
    t = _events(sample_raw)["time_ms"].to_numpy(zero_copy_only=False)
    older = int(np.sum(t[~np.isnan(t)] < 1_790_899_200_000))  # 2026-10-02T00:00Z
    assert older > 0 and summary["reject_reasons"]["time_outside_window"] == older


def test_seconds_declared_as_milliseconds_exit_2_naming_column_file_and_units(sample_raw, tmp_path, capsys):
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    _write_events(raw, _with_column(events, "time_ms", pc_floordiv(events["time_ms"], 1000)))
    out = str(tmp_path / "out")
    assert _main(SAMPLE_SPEC, raw, out) == 2
    line = _error_line(capsys)
    for text in ("'time_ms'", os.path.join(raw, "events.parquet"), "milliseconds", "look like seconds",
                 "time.unit: s"):
        assert text in line, (text, line)
    assert not os.path.exists(out) and not glob.glob(out + ".staging-*")


def pc_floordiv(column, k: int) -> pa.Array:
    values = column.to_numpy(zero_copy_only=False)
    return pa.array(np.where(np.isnan(values), np.nan, np.floor(values / k)), pa.float64(), from_pandas=True)


# -- D: bad input files: one line naming the file, exit 2 -------------------------------------------
def _split_events(sample_raw: str, tmp_path, second=lambda t: t) -> tuple[str, str, list[str]]:
    """The sample with events in two files ``events/part-0.parquet`` and ``part-1.parquet``."""
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    os.remove(os.path.join(raw, "events.parquet"))
    os.makedirs(os.path.join(raw, "events"))
    paths = [os.path.join(raw, "events", f"part-{i}.parquet") for i in range(2)]
    pq.write_table(events.slice(0, 300), paths[0])
    pq.write_table(second(events.slice(300)), paths[1])
    spec = _spec_variant(tmp_path, sources={"events": {"path": "events/*.parquet", "format": "parquet"}})
    return spec, raw, paths


def test_later_file_with_another_column_type_exit_2(sample_raw, tmp_path, capsys):
    def tab_as_string(t):
        return _with_column(t, "tab", pa.array([str(v) for v in t["tab"].to_pylist()]))

    spec, raw, paths = _split_events(sample_raw, tmp_path, tab_as_string)
    assert _main(spec, raw, str(tmp_path / "out")) == 2
    line = _error_line(capsys)
    assert paths[1] in line and "'tab'" in line and "string" in line and paths[0] in line, line


def test_zero_byte_parquet_file_exit_2(sample_raw, tmp_path, capsys):
    spec, raw, paths = _split_events(sample_raw, tmp_path)
    open(paths[1], "wb").close()
    assert _main(spec, raw, str(tmp_path / "out")) == 2
    line = _error_line(capsys)
    assert paths[1] in line and "0-byte" in line, line


def test_duplicate_key_in_a_joined_table_exit_2_naming_files_and_key(sample_raw, tmp_path, capsys):
    raw = _copy_raw(sample_raw, tmp_path)
    users = pq.read_table(os.path.join(raw, "users.parquet"))
    os.remove(os.path.join(raw, "users.parquet"))
    os.makedirs(os.path.join(raw, "users"))
    paths = [os.path.join(raw, "users", f"part-{i}.parquet") for i in range(2)]
    pq.write_table(users.slice(0, 20), paths[0])
    pq.write_table(users.slice(19), paths[1])  # user row 19 in both files
    spec = _spec_variant(tmp_path, sources={"users": {"path": "users/", "format": "parquet", "key": "user_id"}})
    assert _main(spec, raw, str(tmp_path / "out")) == 2
    line = _error_line(capsys)
    dup = users["user_id"][19].as_py()
    assert "'user_id'" in line and repr(dup) in line and paths[0] in line and paths[1] in line, line


def test_empty_events_file_exit_2_nothing_to_build(sample_raw, tmp_path, capsys):
    raw = _copy_raw(sample_raw, tmp_path)
    _write_events(raw, _events(raw).slice(0, 0))
    out = str(tmp_path / "out")
    assert _main(SAMPLE_SPEC, raw, out) == 2
    line = _error_line(capsys)
    assert os.path.join(raw, "events.parquet") in line and "nothing to build" in line and "0 rows" in line, line
    assert not os.path.exists(out)


def test_every_row_rejected_exit_2_nothing_to_build(sample_raw, tmp_path, capsys):
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    _write_events(raw, _with_column(events, "time_ms", pa.array(np.full(events.num_rows, Y2100_MS), pa.int64())))
    assert _main(SAMPLE_SPEC, raw, str(tmp_path / "out")) == 2
    assert "nothing to build" in _error_line(capsys)


# -- E: what the docs promise --------------------------------------------------------------------
def test_rejects_dir_exists_when_nothing_was_rejected(sample_raw, tmp_path):
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    _write_events(raw, events.filter(pa.array(~np.isnan(events["time_ms"].to_numpy(zero_copy_only=False)))))
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=raw), IN_MEMORY)
    assert sum(c["rejected"] for c in summary["counts"].values()) == 0
    assert os.path.isdir(os.path.join(out, "rejects")) and os.listdir(os.path.join(out, "rejects")) == []


def _with_duplicates(sample_raw: str, tmp_path, n: int = 5) -> str:
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    usable = events.filter(pa.array(~np.isnan(events["time_ms"].to_numpy(zero_copy_only=False))))
    _write_events(raw, pa.concat_tables([events, usable.slice(0, n)]))
    return raw


def test_duplicates_are_counted_printed_and_recorded(sample_raw, tmp_path, capsys):
    spec = load_spec(SAMPLE_SPEC)
    base = plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=str(tmp_path / "base"), raw=sample_raw))
    raw = _with_duplicates(sample_raw, tmp_path)
    capsys.readouterr()
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=raw), IN_MEMORY)
    assert summary["duplicates"] == base["duplicates"] + 5
    assert json.load(open(os.path.join(out, "_DATASET.json")))["duplicates"] == summary["duplicates"]
    assert f"duplicates: {summary['duplicates']:,} written row(s)" in capsys.readouterr().out
    assert plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=str(tmp_path / "p"), raw=raw))["duplicates"] \
        == summary["duplicates"]


def test_fail_on_duplicates_exit_2(sample_raw, tmp_path, capsys):
    raw = _with_duplicates(sample_raw, tmp_path)
    out = str(tmp_path / "out")
    assert _main(SAMPLE_SPEC, raw, out, "--fail_on_duplicates") == 2
    assert "duplicate row" in _error_line(capsys)
    assert not os.path.exists(out) and not glob.glob(out + ".staging-*")


def test_missing_join_keys_are_counted_and_can_fail_the_job(tmp_path, capsys):
    spec_path, raw = write_corpus(str(tmp_path))
    lines = open(os.path.join(raw, "events.csv")).read().splitlines()[1:241]  # the 240 good rows
    expected = sum(1 for line in lines if int(line.split(",")[2][1:]) >= 25)  # items.csv has i0..i24
    assert expected > 0
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=spec_path, output=out, raw=raw, num_shards=2), IN_MEMORY)
    assert summary["missing_join"] == {"items": expected}
    assert f"{expected:,} written row(s) have a key missing from the items table" in capsys.readouterr().out
    assert plain.run(load_spec(spec_path), JobOptions(spec_path=spec_path, output=str(tmp_path / "p"), raw=raw,
                                                      num_shards=2))["missing_join"] == {"items": expected}
    out2 = str(tmp_path / "out2")
    assert build_dataset.command([f"--spec={spec_path}", f"--raw={raw}", f"--output={out2}", "--fail_on_missing_join",
                               *IN_MEMORY]) == 2
    line = _error_line(capsys)
    assert "not in items" in line and str(expected) in line
    assert not os.path.exists(out2)


def test_integral_doubles_in_a_categorical_column_get_the_same_ids(sample_raw, tmp_path):
    spec = load_spec(SAMPLE_SPEC)
    raw_int = _copy_raw(sample_raw, tmp_path, "raw_int")
    raw_float = _copy_raw(sample_raw, tmp_path, "raw_float")
    events = _events(sample_raw)
    tab = events["tab"].to_numpy(zero_copy_only=False).astype(np.float64)
    tab[::17] = np.nan  # integer codes stored as double because of nulls
    _write_events(raw_int, _with_column(events, "tab", pa.array(tab, pa.float64(), from_pandas=True).cast(pa.int64())))
    _write_events(raw_float, _with_column(events, "tab", pa.array(tab, pa.float64(), from_pandas=True)))
    outs = []
    for raw in (raw_int, raw_float):
        outs.append(str(tmp_path / f"out_{os.path.basename(raw)}"))
        plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=outs[-1], raw=raw))
    arts = [json.load(open(os.path.join(o, "transform", "transform_artifact.json"))) for o in outs]
    assert arts[0] == arts[1]
    files = sorted(os.path.relpath(f, outs[0]) for f in glob.glob(os.path.join(outs[0], "*", "dt=*", "*.gz")))
    assert files
    for f in files:
        assert gzip.open(os.path.join(outs[0], f)).read() == gzip.open(os.path.join(outs[1], f)).read(), f


def test_non_integral_double_in_a_categorical_column_is_rejected(sample_raw, tmp_path):
    raw = _copy_raw(sample_raw, tmp_path)
    events = _events(raw)
    tab = events["tab"].to_numpy(zero_copy_only=False).astype(np.float64)
    tab[[3, 5, 8]] = 2.5
    _write_events(raw, _with_column(events, "tab", pa.array(tab)))
    summary = plain.run(load_spec(SAMPLE_SPEC), JobOptions(spec_path=SAMPLE_SPEC, output=str(tmp_path / "o"), raw=raw))
    assert summary["reject_reasons"].get("non_integral_category") == 3


# -- F: partitions in the split's time zone -----------------------------------------------------------
def _partitions_by_split(summary: dict) -> dict[str, set[str]]:
    return {s: {p["partition"] for p in parts} for s, parts in summary["partitions"].items()}


def test_partitions_follow_the_split_timezone(sample_raw, tmp_path):
    # the sample covers 2026-10-01..05 UTC; cut at Beijing midnights
    split = {"valid_start": "2026-10-04T00:00:00+08:00", "test_start": "2026-10-05", "timezone": "+08:00"}
    spec_path = _spec_variant(tmp_path, split=split)
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=spec_path, output=out, raw=sample_raw, num_shards=2), IN_MEMORY)
    by_split = _partitions_by_split(summary)
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["valid"]) and not (by_split["valid"] & by_split["test"])
    assert by_split["valid"] == {"dt=2026-10-04"} and by_split["test"] <= {"dt=2026-10-05", "dt=2026-10-06"}
    assert summary["split"]["timezone"] == "+08:00"
    assert summary["split"]["valid_start_ms"] == 1_791_043_200_000  # 2026-10-04T00:00+08:00
    # in UTC (the old behaviour) the same cuts put one dt= into two splits
    utc = _spec_variant(tmp_path, "utc.yaml", split={k: v for k, v in split.items() if k != "timezone"}
                        | {"valid_start": "2026-10-04T00:00:00+08:00", "test_start": "2026-10-05T00:00:00+08:00"})
    old = _partitions_by_split(plain.run(load_spec(utc), JobOptions(spec_path=utc, output=str(tmp_path / "u"),
                                                                    raw=sample_raw)))
    assert old["train"] & old["valid"]


def test_partition_ids_with_an_iana_zone_and_last_days_cuts():
    from pipelines.split import compute_cuts, partition_ids, partition_name
    from infnet_tf.feature_spec import SplitSpec

    t = np.array([1_791_043_199_999, 1_791_043_200_000])  # one ms before / at 2026-10-04T00:00+08:00
    names = [partition_name(int(p), "daily") for p in partition_ids(t, "daily", "Asia/Shanghai")]
    assert names == ["dt=2026-10-03", "dt=2026-10-04"]
    names = [partition_name(int(p), "hourly") for p in partition_ids(t, "hourly", "+08:00")]
    assert names == ["dt=2026-10-03/hr=23", "dt=2026-10-04/hr=00"]
    split = SplitSpec(1, 1, None, None, "daily", timezone="Asia/Shanghai")
    cuts = compute_cuts(split, 1_791_043_200_000 + 3_600_000)  # 01:00 Beijing on 2026-10-04
    assert cuts.test_start_ms == 1_791_043_200_000 and cuts.valid_start_ms == 1_791_043_200_000 - 86_400_000
