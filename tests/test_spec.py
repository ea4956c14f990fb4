"""Tests for the feature spec format, its loader and the ``python -m infnet_tf.spec`` checker."""
from __future__ import annotations

import copy
import pathlib
import pickle
import subprocess
import sys
from typing import Any, Callable

import pytest
import yaml

from infnet_tf.feature_spec import (
    BinningSpec,
    CategoricalField,
    CounterSpec,
    DenseField,
    FeatureSpec,
    SpecError,
    load_spec,
    parse_spec,
    parse_spec_text,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = REPO / "feature_specs" / "kuairand_synthetic.yaml"


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec(str(SHIPPED))


def raw() -> dict[str, Any]:
    """The shipped spec as plain data, fresh for each mutation."""
    return yaml.safe_load(SHIPPED.read_text())


# -- the shipped spec --------------------------------------------------------------------------
def test_shipped_spec_loads(spec: FeatureSpec) -> None:
    assert spec.name == "kuairand_synthetic"
    assert list(spec.sources) == ["events", "users", "items"]
    assert spec.sources["items"].key == "video_id" and spec.sources["events"].key is None
    assert spec.time.column == "time_ms" and spec.time.to_ms_factor == 1.0
    assert (spec.user_key, spec.item_key) == ("user_id", "video_id")
    assert len(spec.categorical) == 10 and len(spec.dense) == 5
    assert [t.name for t in spec.tasks] == ["click", "like", "long_view"]
    assert all(t.weight == 1.0 for t in spec.tasks)
    assert [(s.name, s.max_len) for s in spec.sequences] == [("click", 50), ("like", 20)]
    assert spec.sequences[0].side_fields == ("author_id", "category")
    assert spec.sequences[0].time_gap == BinningSpec("log", 16)
    assert spec.split.valid_days == 1 and spec.split.test_days == 1 and spec.split.by_days
    assert spec.split.partition == "daily"


def test_fields(spec: FeatureSpec) -> None:
    author = spec.field("author_id")
    assert isinstance(author, CategoricalField)
    assert author.hash_buckets == 20000 and author.vocabulary is None and author.source == "items"
    assert spec.field("user_id").vocabulary.min_count == 2  # type: ignore[union-attr]
    fans = spec.field("fans_user_num")
    assert isinstance(fans, DenseField) and fans.binning == BinningSpec("log", 16)
    with pytest.raises(KeyError):
        spec.field("nope")


def test_derived_token_names(spec: FeatureSpec) -> None:
    counters = [
        "user_id_imp_1d", "user_id_imp_7d", "user_id_click_1d", "user_id_click_7d",
        "user_id_like_1d", "user_id_like_7d",
        "video_id_imp_1d", "video_id_imp_all", "video_id_click_1d", "video_id_click_all",
    ]
    assert [f.name for f in spec.counter_features()] == counters
    names = spec.token_names()
    assert names[:2] == ("user_id", "video_id")
    assert names[10:15] == ("follow_user_num", "fans_user_num", "register_days", "video_duration_ms", "position")
    assert list(names[15:]) == counters
    by_name = {f.name: f for f in spec.counter_features()}
    assert by_name["user_id_click_7d"].window_ms == 7 * 86_400_000
    assert by_name["video_id_imp_all"].window_ms is None and by_name["video_id_imp_all"].what == "imp"


def test_window_ms() -> None:
    assert CounterSpec.window_ms("6h") == 6 * 3_600_000
    assert CounterSpec.window_ms("all") is None
    with pytest.raises(ValueError):
        CounterSpec.window_ms("7w")


def test_columns_by_source(spec: FeatureSpec) -> None:
    cols = spec.columns_by_source()
    assert cols["events"] == {"time_ms", "user_id", "video_id", "is_click", "is_like", "long_view",
                              "tab", "device", "position"}
    assert cols["users"] == {"user_id", "user_active_degree", "gender", "age_range", "is_video_author",
                             "follow_user_num", "fans_user_num", "register_days"}
    assert cols["items"] == {"video_id", "author_id", "category", "video_duration_ms"}


def test_frozen_hashable_picklable(spec: FeatureSpec) -> None:
    with pytest.raises(Exception):
        spec.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.sources["events"] = spec.sources["users"]  # type: ignore[index]
    assert isinstance(spec.categorical, tuple) and isinstance(spec.counters[0].windows, tuple)
    assert hash(spec) == hash(load_spec(str(SHIPPED)))
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert copy.deepcopy(spec) == spec


def test_round_trip(spec: FeatureSpec) -> None:
    again = parse_spec(spec.to_dict())
    assert again == spec
    assert again.fingerprint() == spec.fingerprint()


def test_round_trip_cut_time_split() -> None:
    d = raw()
    d["split"] = {"valid_start": "2026-10-13", "test_start": "2026-10-14T06:30:00Z", "partition": "hourly"}
    spec = parse_spec(d)
    assert spec.split.valid_start_ms == 1_791_849_600_000  # 2026-10-13T00:00Z
    assert spec.split.test_start_ms == 1_791_849_600_000 + 86_400_000 + 6.5 * 3_600_000
    assert not spec.split.by_days and spec.split.valid_days is None
    assert parse_spec(spec.to_dict()) == spec


def test_split_window_and_timezone_defaults_keep_the_fingerprint(spec: FeatureSpec) -> None:
    assert spec.split.timezone == "UTC" and spec.split.max_time_after_now == "1d"
    assert spec.split.min_time_ms == 946_684_800_000  # 2000-01-01T00:00Z
    d = raw()
    d["split"].update(timezone="UTC", min_time="2000-01-01", max_time_after_now="1d")  # the defaults, spelled out
    assert parse_spec(d).fingerprint() == spec.fingerprint()
    d["split"].update(timezone="Asia/Shanghai", min_time="2020-01-01", max_time_after_now="12h")
    other = parse_spec(d)
    assert other.fingerprint() != spec.fingerprint() and parse_spec(other.to_dict()) == other
    assert other.split.max_time_after_now_ms == 12 * 3_600_000
    assert other.split.min_time_ms == 1_577_808_000_000  # 2020-01-01T00:00+08:00 (naive: in the split's zone)


def test_naive_cut_times_are_in_the_split_timezone() -> None:
    d = raw()
    d["split"] = {"valid_start": "2026-10-13", "test_start": "2026-10-14T00:00:00+08:00", "timezone": "+08:00"}
    spec = parse_spec(d)
    assert spec.split.valid_start_ms == 1_791_849_600_000 - 8 * 3_600_000  # Beijing midnight
    assert spec.split.test_start_ms - spec.split.valid_start_ms == 86_400_000  # type: ignore[operator]
    assert parse_spec(spec.to_dict()) == spec


def test_unquoted_yaml_dates() -> None:
    text = SHIPPED.read_text().replace(
        "  valid_days: 1\n  test_days: 1\n", "  valid_start: 2026-10-13\n  test_start: 2026-10-14\n")
    spec = parse_spec_text(text)
    assert spec.split.test_start_ms - spec.split.valid_start_ms == 86_400_000  # type: ignore[operator]


def test_defaults() -> None:
    d = raw()
    d["categorical"][0] = {"name": "user_id", "vocabulary": {}}
    del d["counters"][0]["binning"]
    del d["sequences"][0]["time_gap"]
    del d["tasks"][0]["weight"]
    del d["split"]["partition"]
    d["sources"]["events"] = {"path": "s3://bucket/events/*.parquet"}
    spec = parse_spec(d)
    assert spec.categorical[0].source == "events" and spec.categorical[0].embedding_dim is None
    assert spec.categorical[0].vocabulary.min_count == 1  # type: ignore[union-attr]
    assert spec.counters[0].binning == BinningSpec("log", 16)
    assert spec.sequences[0].time_gap == BinningSpec("log", 16)
    assert spec.tasks[0].weight == 1.0 and spec.split.partition == "daily"
    assert spec.sources["events"].format == "parquet"


def test_token_sides(spec: FeatureSpec) -> None:
    """Declared on events columns; fixed by the source (users/items) and by the user/item key; a
    counter is on its key's side; behaviour sequences are not tokens (always user side)."""
    sides = spec.token_sides()
    assert list(sides) == list(spec.token_names())
    candidate = {"video_id", "author_id", "category", "video_duration_ms", "position",
                 "video_id_imp_1d", "video_id_imp_all", "video_id_click_1d", "video_id_click_all"}
    assert {t for t, s in sides.items() if s == "candidate"} == candidate
    assert sides["user_id"] == sides["tab"] == sides["gender"] == sides["user_id_like_7d"] == "user"
    d = raw()
    d["categorical"][4]["side"] = "candidate"          # an events column may be either side
    d["counters"][0]["key"] = "tab"                    # a counter keyed by a field takes its side
    assert parse_spec(d).token_sides()["tab_imp_1d"] == "candidate"
    d = raw()
    d["categorical"][0] = {"name": "user_id", "source": "users", "vocabulary": {}}
    assert parse_spec(d).token_sides()["user_id"] == "user"
    d = raw()
    d["categorical"][5]["side"] = "candidate"
    assert parse_spec(d).fingerprint() != spec.fingerprint()


def test_fingerprint_stable_and_sensitive(spec: FeatureSpec) -> None:
    fp = spec.fingerprint()
    assert len(fp) == 64 and fp == load_spec(str(SHIPPED)).fingerprint()
    d = raw()
    d["tasks"][0]["weight"] = 1  # same value, int spelling: same canonical form
    assert parse_spec(d).fingerprint() == fp
    d["sequences"][0]["max_len"] = 51
    assert parse_spec(d).fingerprint() != fp
    d = raw()
    d["dense"][0]["binning"]["num_buckets"] = 17
    assert parse_spec(d).fingerprint() != fp


# -- invalid specs: one message naming the field path -------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation setting a dotted path (list indices as numbers), or deleting it if value is DEL."""
    def mutate(d: dict) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DEL:
            del node[key]
        else:
            node[key] = value
    return mutate


DEL = object()
BAD_CASES = [
    # (id, mutation, expected field path, expected text)
    ("unknown-top-key", _set("foo", 1), "bad.yaml: foo: unknown key", "allowed keys: name, sources"),
    ("unknown-nested-key", _set("sequences.1.maxlen", 3), "sequences[1].maxlen: unknown key", "max_len"),
    ("unknown-source", _set("sources.clicks", {"path": "x"}), "sources.clicks: unknown key", "events, users, items"),
    ("events-with-key", _set("sources.events.key", "user_id"), "sources.events.key: unknown key", "path, format"),
    ("wrong-type-max-len", _set("sequences.1.max_len", "50x"), "sequences[1].max_len",
     "expected a positive int, got '50x'"),
    ("wrong-type-list", _set("categorical", {"name": "x"}), "categorical:", "expected a list"),
    ("wrong-type-mapping", _set("time", "time_ms"), "time:", "expected a mapping"),
    ("bool-is-not-int", _set("categorical.2.hash_buckets", True), "categorical[2].hash_buckets",
     "expected a positive int, got True"),
    ("bool-weight", _set("tasks.0.weight", True), "tasks[0].weight", "expected a positive number"),
    ("bad-name", _set("name", "Kuai-Rand"), "name:", "[a-z0-9_]+"),
    ("missing-required-top", _set("item_key", DEL), "item_key: missing required field", ""),
    ("missing-required-nested", _set("tasks.1.label", DEL), "tasks[1].label: missing required field", ""),
    ("missing-users-key", _set("sources.users.key", DEL), "sources.users.key: missing required field", ""),
    ("missing-dense-binning", _set("dense.2.binning", DEL), "dense[2].binning: missing required field", ""),
    ("duplicate-field", _set("dense.0.name", "gender"), "dense[0].name", "duplicate token name 'gender'"),
    ("duplicate-counter-token", _set("categorical.5.name", "user_id_imp_1d"), "counters[0]",
     "duplicate token name 'user_id_imp_1d' (first at categorical[5].name)"),
    ("duplicate-sequence", _set("sequences.1.name", "click"), "sequences[1].name", "duplicate sequence name"),
    ("duplicate-task", _set("tasks.2.name", "click"), "tasks[2].name", "duplicate task name 'click'"),
    ("label-as-categorical", _set("categorical.4.name", "long_view"), "tasks[2].label",
     "also an input (categorical[4].name)"),
    ("label-as-dense", _set("dense.4.name", "is_like"), "tasks[1].label", "also an input (dense[4].name)"),
    ("zero-max-len", _set("sequences.0.max_len", 0), "sequences[0].max_len", "expected a positive int, got 0"),
    ("negative-max-len", _set("sequences.1.max_len", -5), "sequences[1].max_len", "got -5"),
    ("empty-tasks", _set("tasks", []), "tasks:", "expected a non-empty list, got []"),
    ("missing-tasks", _set("tasks", DEL), "tasks: missing required field", ""),
    ("vocab-and-hash", _set("categorical.0.hash_buckets", 100), "categorical[0]:",
     "exactly one of vocabulary / hash_buckets for 'user_id', got both"),
    ("neither-vocab-nor-hash", _set("categorical.2.hash_buckets", DEL), "categorical[2]:", "got neither"),
    ("unknown-source-ref", _set("categorical.0.source", "clicks"), "categorical[0].source",
     "one of events, users, items"),
    ("undeclared-source-ref", _set("sources.users", DEL), "categorical[6].source",
     "unknown source 'users'; declared sources: events, items"),
    ("item-field-not-categorical", _set("sequences.0.item_field", "position"), "sequences[0].item_field",
     "'position' is not a categorical field"),
    ("side-field-not-categorical", _set("sequences.1.side_fields", ["author_id", "nope"]),
     "sequences[1].side_fields[1]", "not a categorical field"),
    ("side-field-not-items", _set("sequences.0.side_fields", ["gender"]), "sequences[0].side_fields[0]",
     "must come from 'items'"),
    ("counter-key-not-categorical", _set("counters.1.key", "position"), "counters[1].key",
     "not a categorical field"),
    ("positives-unknown-task", _set("counters.0.positives", ["click", "share"]), "counters[0].positives[1]",
     "unknown task 'share'"),
    ("bad-window", _set("counters.0.windows", ["1d", "7w"]), "counters[0].windows[1]",
     "expected a window like 12h, 7d or all, got '7w'"),
    ("zero-window", _set("counters.1.windows", ["0d"]), "counters[1].windows[0]", "got '0d'"),
    ("empty-windows", _set("counters.1.windows", []), "counters[1].windows", "non-empty list"),
    ("bad-binning-type", _set("dense.1.binning.type", "uniform"), "dense[1].binning.type",
     "one of quantile, log, got 'uniform'"),
    ("time-gap-not-log", _set("sequences.0.time_gap.type", "quantile"), "sequences[0].time_gap.type",
     "one of log"),
    ("zero-buckets", _set("dense.3.binning.num_buckets", 0), "dense[3].binning.num_buckets",
     "expected a positive int, got 0"),
    ("split-both-styles", _set("split.test_start", "2026-10-14"), "split:", "got both"),
    ("split-neither", _set("split", {"partition": "daily"}), "split:", "got neither"),
    ("split-half-cut", _set("split", {"valid_start": "2026-10-13"}), "split.test_start: missing required", ""),
    ("split-order", _set("split", {"valid_start": "2026-10-14", "test_start": "2026-10-13T12:00:00"}),
     "split.valid_start", "before test_start"),
    ("split-bad-date", _set("split", {"valid_start": "yesterday", "test_start": "2026-10-14"}),
     "split.valid_start", "ISO date"),
    ("bad-partition", _set("split.partition", "weekly"), "split.partition", "one of daily, hourly"),
    ("bad-timezone", _set("split.timezone", "Mars/Olympus_Mons"), "split.timezone", "IANA time zone"),
    ("bad-offset", _set("split.timezone", "+8"), "split.timezone", "fixed offset such as '+08:00'"),
    ("bad-min-time", _set("split.min_time", "long ago"), "split.min_time", "ISO date"),
    ("bad-max-after", _set("split.max_time_after_now", "1w"), "split.max_time_after_now",
     "a duration like 12h or 1d, got '1w'"),
    ("cut-before-min-time", _set("split", {"valid_start": "1999-01-01", "test_start": "2026-10-14"}),
     "split.valid_start", "at or after min_time"),
    ("bad-time-unit", _set("time.unit", "ns"), "time.unit", "one of s, ms, us, got 'ns'"),
    ("bad-format", _set("sources.items.format", "json"), "sources.items.format", "one of parquet, csv"),
    ("bad-uri", _set("sources.events.path", "http://x/events"), "sources.events.path", "s3://"),
    ("bad-weight", _set("tasks.0.weight", 0), "tasks[0].weight", "expected a positive number, got 0"),
    ("bad-filter-equals", _set("sequences.0.filter.equals", [1]), "sequences[0].filter.equals",
     "an int or a string"),
    ("duplicate-side-field", _set("sequences.0.side_fields", ["author_id", "author_id"]),
     "sequences[0].side_fields[1]", "duplicate 'author_id'"),
    ("events-field-without-side", _set("categorical.4.side", DEL), "categorical[4].side",
     "'tab' (source 'events') needs side: user or side: candidate"),
    ("events-dense-without-side", _set("dense.4.side", DEL), "dense[4].side", "'position' (source 'events')"),
    ("bad-side", _set("dense.4.side", "item"), "dense[4].side", "one of user, candidate, got 'item'"),
    ("users-field-on-candidate-side", _set("categorical.7.side", "candidate"), "categorical[7].side",
     "'gender' is source 'users', so its side is 'user', got 'candidate'"),
    ("items-field-on-user-side", _set("dense.3.side", "user"), "dense[3].side",
     "'video_duration_ms' is source 'items', so its side is 'candidate'"),
    ("item-key-on-user-side", _set("categorical.1.side", "user"), "categorical[1].side",
     "'video_id' is the item_key, so its side is 'candidate', got 'user'"),
]


@pytest.mark.parametrize("mutate, path, text", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_invalid_spec_message(mutate: Callable[[dict], None], path: str, text: str) -> None:
    d = raw()
    mutate(d)
    with pytest.raises(SpecError) as info:
        parse_spec(d, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and path in message and text in message, message
    assert "\n" not in message


def test_not_a_mapping() -> None:
    with pytest.raises(SpecError, match=r"^x\.yaml: expected a mapping"):
        parse_spec_text("", "x.yaml")


def test_yaml_syntax_and_duplicate_keys() -> None:
    with pytest.raises(SpecError, match="invalid YAML"):
        parse_spec_text("name: [unclosed", "x.yaml")
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        parse_spec_text("name: a\nname: b\n", "x.yaml")


# -- the command line ----------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infnet_tf.spec", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_ok(spec: FeatureSpec) -> None:
    result = _cli("feature_specs/kuairand_synthetic.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "feature_specs/kuairand_synthetic.yaml: OK kuairand_synthetic — 10 categorical, 5 dense, "
        f"10 counter tokens, 2 sequence types (max 70 items), 3 tasks, fingerprint {spec.fingerprint()[:8]}\n"
    )


def test_cli_bad_file_exits_2_and_checks_all(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "kuairand.yaml"
    bad.write_text(SHIPPED.read_text().replace("max_len: 20", "max_len: 20x"))
    result = _cli(str(bad), "feature_specs/kuairand_synthetic.yaml", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert f"{bad}: sequences[1].max_len: expected a positive int, got '20x'" in result.stderr
    assert "missing.yaml: cannot read" in result.stderr
    assert "OK kuairand_synthetic" in result.stdout  # the good file in between was still checked


def test_cli_help_and_no_tensorflow() -> None:
    result = _cli("--help")
    assert result.returncode == 0 and "FILE" in result.stdout
    result = _cli()
    assert result.returncode == 2 and "at least one FILE" in result.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, infnet_tf.spec as s; assert s.main(['prog', 'feature_specs/kuairand_synthetic.yaml']) == 0;"
                               "assert s.load_spec is s.tzinfo_of.__globals__['load_spec'];"
                               "assert 'tensorflow' not in sys.modules"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
