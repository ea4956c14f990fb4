"""The dataset job end to end on tiny data: CLI, Beam vs plain, splits, leakage, rejects, re-runs."""
from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infnet_tf.feature_spec import load_spec
from infnet_tf.transform import TransformArtifact
from pipelines import build_dataset, plain, runner
from pipelines.job import JobOptions

from .conftest import BAD_ROWS, IN_MEMORY, REPO, SAMPLE_SPEC, write_corpus, write_sample


def _run_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.build_dataset", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _parse_split(root: str, split: str) -> dict:
    import tensorflow as tf

    from infnet_tf.data.tensors import parsing_spec
    from infnet_tf.data.partitions import split_files

    layout = TransformArtifact.load(os.path.join(root, "transform", "transform_artifact.json")).feature_layout
    files = split_files(root, split)
    assert files, f"no complete partitions in {root}/{split}"
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(100_000)
    records = next(iter(ds))
    return {k: v for k, v in tf.io.parse_example(records, parsing_spec(layout)).items()}


@pytest.fixture(scope="module")
def cli_output(sample_raw, tmp_path_factory) -> str:
    """The CLI run on the sample data (in-memory DirectRunner, 3 shards)."""
    out = str(tmp_path_factory.mktemp("cli") / "dataset")
    result = _run_cli([f"--spec={SAMPLE_SPEC}", f"--raw={sample_raw}", f"--output={out}", "--num_shards=3", *IN_MEMORY])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for split in ("train", "valid", "test", "total"):  # "<split>: read R = written W + rejected J   OK"
        assert any(line.strip().startswith(f"{split}: read") and line.rstrip().endswith("OK")
                   for line in result.stdout.splitlines()), split
    assert "MISMATCH" not in result.stdout
    return out


def test_cli_output_parses_with_the_input_contract(cli_output):
    from infnet_tf.data.layout import FeatureLayout

    artifact = TransformArtifact.load(os.path.join(cli_output, "transform", "transform_artifact.json"))
    spec = load_spec(SAMPLE_SPEC)
    assert artifact.spec_fingerprint == spec.fingerprint() and artifact.token_names == list(spec.token_names())
    entries = {**artifact.categorical, **artifact.dense, **artifact.counters}
    assert {t: entries[t]["side"] for t in artifact.token_names} == spec.token_sides()   # for score_candidates
    layout = FeatureLayout.from_dict(artifact.layout)
    binned = {f.name for f in spec.dense} | {c.name for c in spec.counter_features()}
    assert binned and {t.name for t in layout.categorical if t.ordinal} == binned   # ordered buckets
    parsed = _parse_split(cli_output, "train")
    n = parsed["event_time_ms"].shape[0]
    for token in layout.categorical:
        ids = parsed[f"cat/{token.name}"].numpy()
        assert ids.shape == (n,) and ids.min() >= 0 and ids.max() < token.vocab_size, token.name
    for seq in layout.sequences:
        lengths = parsed[f"seq/{seq.name}/{seq.fields[0].name}"].row_lengths().numpy()
        assert lengths.max() <= seq.max_len
        for field in [f.name for f in seq.fields] + ["time_gap"]:
            ragged = parsed[f"seq/{seq.name}/{field}"]
            assert np.array_equal(ragged.row_lengths().numpy(), lengths)
            if field in ("time_gap", seq.fields[0].name):  # real positions: item and gap ids are >= 1
                assert (ragged.flat_values.numpy() >= 1).all(), field
            if field == "time_gap":
                assert ragged.flat_values.numpy().max() < seq.time_gap_buckets
    for task in layout.tasks:
        assert set(np.unique(parsed[f"label/{task.name}"].numpy())) <= {-1, 0, 1}
    assert all(k.numpy() for k in parsed["user_key"][:5])


def test_splits_are_time_ordered_and_partitions_complete(cli_output):
    bounds = {}
    for split in ("train", "valid", "test"):
        t = _parse_split(cli_output, split)["event_time_ms"].numpy()
        bounds[split] = (t.min(), t.max())
    assert bounds["train"][1] < bounds["valid"][0] and bounds["valid"][1] < bounds["test"][0]
    summary = json.load(open(os.path.join(cli_output, "_DATASET.json")))
    for split, parts in summary["partitions"].items():
        for part in parts:
            assert os.path.exists(os.path.join(cli_output, split, part["partition"], "_SUCCESS"))
    for split, c in summary["counts"].items():
        assert c["read"] == c["written"] + c["rejected"], split
    assert summary["counts"]["unassigned"]["rejected"] >= 1  # the sample has null event times
    assert summary["spec_fingerprint"] == load_spec(SAMPLE_SPEC).fingerprint()
    rejects = [json.loads(line) for f in glob.glob(os.path.join(cli_output, "rejects", "*.jsonl")) for line in open(f)]
    assert {r["reason"] for r in rejects} == {"missing_time"}
    assert not glob.glob(cli_output + ".staging-*") and not glob.glob(cli_output + ".old-*")


def test_beam_and_plain_loop_write_identical_outputs(cli_output, sample_raw, tmp_path):
    out = str(tmp_path / "plain")
    plain.run(load_spec(SAMPLE_SPEC), JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw, num_shards=3))
    a = json.load(open(os.path.join(cli_output, "transform", "transform_artifact.json")))
    b = json.load(open(os.path.join(out, "transform", "transform_artifact.json")))
    assert a == b
    files = sorted(os.path.relpath(f, cli_output) for f in glob.glob(os.path.join(cli_output, "*", "dt=*", "*.gz")))
    assert files == sorted(os.path.relpath(f, out) for f in glob.glob(os.path.join(out, "*", "dt=*", "*.gz")))
    for f in files:
        assert gzip.open(os.path.join(cli_output, f)).read() == gzip.open(os.path.join(out, f)).read(), f


def test_artifact_ignores_valid_and_test_rows(sample_raw, tmp_path):
    """Change, drop and add valid/test rows (keeping the last day): the artifact does not move."""
    spec = load_spec(SAMPLE_SPEC)
    raw2 = str(tmp_path / "raw2")
    shutil.copytree(sample_raw, raw2)
    events = pq.read_table(os.path.join(raw2, "events.parquet"))
    time = events["time_ms"].to_numpy(zero_copy_only=False)
    valid_start = (np.nanmax(time) // 86_400_000 - 1) * 86_400_000  # valid_days = test_days = 1
    late = np.nan_to_num(time, nan=0) >= valid_start
    keep = ~late | (np.arange(len(time)) % 3 != 0) | (np.nan_to_num(time) == np.nanmax(time))
    changed = {name: events[name].to_numpy(zero_copy_only=False) for name in events.column_names}
    rng = np.random.default_rng(0)
    for col in ("is_click", "is_like", "long_view", "position"):
        changed[col] = np.where(late, rng.integers(0, 2 if col != "position" else 1000, len(time)), changed[col])
    changed["video_id"] = np.where(late, changed["video_id"] + 10**6, changed["video_id"])  # unseen items
    table = pa.table({k: pa.array(v, type=events.schema.field(k).type, from_pandas=True) for k, v in changed.items()})
    pq.write_table(table.filter(pa.array(keep)), os.path.join(raw2, "events.parquet"))

    arts = []
    for i, raw in enumerate((sample_raw, raw2)):
        out = str(tmp_path / f"out{i}")
        plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=raw, num_shards=2))
        arts.append(json.load(open(os.path.join(out, "transform", "transform_artifact.json"))))
        counts = json.load(open(os.path.join(out, "_DATASET.json")))["counts"]
        if i == 1:
            assert counts["valid"]["read"] < first_valid
        first_valid = counts["valid"]["read"]
    assert arts[0] == arts[1]


def test_malformed_corpus_lands_in_rejects_with_reasons(tmp_path):
    spec_path, raw = write_corpus(str(tmp_path))
    out = str(tmp_path / "out")
    summary = runner.run(JobOptions(spec_path=spec_path, output=out, raw=raw, num_shards=2), IN_MEMORY)
    rejects = [json.loads(line) for f in glob.glob(os.path.join(out, "rejects", "*.jsonl")) for line in open(f)]
    expected: dict[str, int] = {}
    for reason, _ in BAD_ROWS:
        expected[reason] = expected.get(reason, 0) + 1
    assert len(expected) >= 10
    got: dict[str, int] = {}
    for r in rejects:
        got[r["reason"]] = got.get(r["reason"], 0) + 1
        assert r["source"] == "events" and "row" in r
    assert got == expected
    assert summary["reject_reasons"] == expected
    by_reason = {r["reason"]: r for r in rejects}
    assert by_reason["bad_label"]["column"] == "clicked" and by_reason["unparseable_value"]["value"] == "12abc"
    counts = summary["counts"]
    assert all(c["read"] == c["written"] + c["rejected"] for c in counts.values())
    assert sum(c["read"] for c in counts.values()) == 240 + len(BAD_ROWS)
    assert counts["unassigned"]["rejected"] == 7  # rows without a usable time (and the malformed lines)
    # hourly partitions; a null label is kept as -1; NaN price is bucket 0
    assert glob.glob(os.path.join(out, "train", "dt=*", "hr=*", "_SUCCESS"))
    parsed = _parse_split(out, "train")
    assert -1 in parsed["label/click"].numpy() and 0 in parsed["cat/price"].numpy()


def test_missing_column_and_wrong_type_fail_fast_naming_the_column(tmp_path, capsys):
    raw = str(tmp_path / "raw")
    write_sample(raw, num_impressions=50, days=3)
    events = pq.read_table(os.path.join(raw, "events.parquet"))
    pq.write_table(events.drop_columns(["tab"]), os.path.join(raw, "events.parquet"))
    code = build_dataset.command([f"--spec={SAMPLE_SPEC}", f"--raw={raw}", f"--output={tmp_path / 'o1'}", *IN_MEMORY])
    err = capsys.readouterr().err
    assert code == 2 and "'tab' is missing" in err
    bad_time = events.set_column(events.schema.get_field_index("time_ms"), "time_ms",
                                 pa.array([str(v) for v in events["time_ms"].to_pylist()]))
    pq.write_table(bad_time, os.path.join(raw, "events.parquet"))
    code = build_dataset.command([f"--spec={SAMPLE_SPEC}", f"--raw={raw}", f"--output={tmp_path / 'o2'}", *IN_MEMORY])
    err = capsys.readouterr().err
    assert code == 2 and "'time_ms' has type string" in err
    assert not os.path.exists(tmp_path / "o1") and not glob.glob(str(tmp_path / "o*.staging-*"))


def test_rerun_refuses_then_overwrite_replaces_atomically(sample_raw, tmp_path):
    spec = load_spec(SAMPLE_SPEC)
    out = str(tmp_path / "out")
    plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw, num_shards=2))
    before = {f: open(f, "rb").read() for f in glob.glob(os.path.join(out, "**", "*"), recursive=True) if os.path.isfile(f)}
    # the CLI refuses (before doing any work) and leaves the output untouched
    result = _run_cli([f"--spec={SAMPLE_SPEC}", f"--raw={sample_raw}", f"--output={out}", *IN_MEMORY])
    assert result.returncode == 2 and "--overwrite" in result.stderr
    after = {f: open(f, "rb").read() for f in glob.glob(os.path.join(out, "**", "*"), recursive=True) if os.path.isfile(f)}
    assert after == before
    # --overwrite with other shards: the new tree replaces the old one entirely (no mix of files)
    plain.run(spec, JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw, num_shards=3, overwrite=True))
    files = glob.glob(os.path.join(out, "*", "dt=*", "*.gz"))
    assert files and all(f.endswith("-of-00003.tfrecord.gz") for f in files)
    assert json.load(open(os.path.join(out, "_DATASET.json")))["job"]["num_shards"] == 3
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or old trees left behind


def test_failed_run_commits_nothing(sample_raw, tmp_path, monkeypatch):
    from pipelines import write

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plain, "write_block", boom)
    out = str(tmp_path / "out")
    with pytest.raises(RuntimeError, match="disk full"):
        plain.run(load_spec(SAMPLE_SPEC), JobOptions(spec_path=SAMPLE_SPEC, output=out, raw=sample_raw, num_shards=2))
    assert os.listdir(tmp_path) == []
    assert write.write_block is not boom


def test_help_documents_flags():
    proc = _run_cli(["--help"], timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ("--spec", "--output", "--raw", "--overwrite", "--num_shards", "--compression_level",
                 "PipelineOptions", "multi_processing", "--fail_on_duplicates", "--fail_on_missing_join", "'auto'"):
        assert flag in out, flag


def test_runner_defaults_respect_given_flags():
    assert "--direct_num_workers=2" in runner.with_runner_defaults([])
    assert "--direct_running_mode=multi_processing" in runner.with_runner_defaults([])
    flags = runner.with_runner_defaults(["--direct_running_mode=in_memory", "--direct_num_workers", "1"])
    assert "--direct_running_mode=multi_processing" not in flags and "--direct_num_workers=2" not in flags
    flink = runner.with_runner_defaults(["--runner=FlinkRunner"])
    assert not any(f.startswith("--direct") for f in flink)


@pytest.mark.slow
def test_multi_processing_direct_runner_writes_identical_outputs(cli_output, sample_raw, tmp_path):
    """Two DirectRunner worker processes (as a distributed runner would split the work) write
    byte-identical data files, manifests and transform artifact to the one-process in-memory run."""
    out = str(tmp_path / "dataset")
    result = _run_cli([f"--spec={SAMPLE_SPEC}", f"--raw={sample_raw}", f"--output={out}", "--num_shards=3",
                       "--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    a = json.load(open(os.path.join(cli_output, "transform", "transform_artifact.json")))
    assert json.load(open(os.path.join(out, "transform", "transform_artifact.json"))) == a
    files = sorted(os.path.relpath(f, cli_output) for f in glob.glob(os.path.join(cli_output, "*", "dt=*", "*")))
    assert files and files == sorted(os.path.relpath(f, out) for f in glob.glob(os.path.join(out, "*", "dt=*", "*")))
    for f in files:
        read = gzip.open if f.endswith(".gz") else open
        with read(os.path.join(cli_output, f), "rb") as x, read(os.path.join(out, f), "rb") as y:
            assert x.read() == y.read(), f


@pytest.mark.parametrize("runner", ["DataflowRunner", "FlinkRunner"])
def test_distributed_runner_refuses_local_paths_before_any_work(sample_raw, tmp_path, runner):
    out = str(tmp_path / "dataset")
    result = _run_cli([f"--spec={SAMPLE_SPEC}", f"--raw={sample_raw}", f"--output={out}", f"--runner={runner}"])
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"--output={out} is a local path, but --runner={runner} runs its workers on other machines" in (
        result.stdout + result.stderr)
    assert not os.path.exists(out) and not glob.glob(out + ".staging-*")
