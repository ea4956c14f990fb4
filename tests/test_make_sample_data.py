"""Tests for the synthetic KuaiRand-like sample data generator (pipelines/sample_data.py) and its command
``python -m pipelines.make_sample_data``."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import sample_data as msd

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES = ("events.parquet", "users.parquet", "items.parquet")
SMALL = msd.Config(num_impressions=3000, num_users=200, num_items=500, seed=7)
MODERATE = msd.Config(num_impressions=30_000, num_users=1000, num_items=3000, seed=11)

EXPECTED_SCHEMAS = {
    "events": [("user_id", pa.int64()), ("video_id", pa.int64()), ("time_ms", pa.int64()),
               ("tab", pa.int64()), ("device", pa.string()), ("position", pa.int64()),
               ("is_click", pa.int64()), ("is_like", pa.int64()), ("long_view", pa.int64())],
    "users": [("user_id", pa.int64()), ("user_active_degree", pa.string()),
              ("gender", pa.string()), ("age_range", pa.string()),
              ("follow_user_num", pa.int64()), ("fans_user_num", pa.int64()),
              ("register_days", pa.int64()), ("is_video_author", pa.int64())],
    "items": [("video_id", pa.int64()), ("author_id", pa.int64()), ("category", pa.string()),
              ("video_duration_ms", pa.float64()), ("upload_time_ms", pa.int64())],
}


def write_sample(config: msd.Config, output_dir: Path) -> dict[str, pa.Table]:
    """Generate ``config`` into ``output_dir`` and read the three tables back."""
    msd.write_tables(msd.generate(config, log=lambda _: None), str(output_dir))
    return {name: pq.read_table(output_dir / f"{name}.parquet") for name in EXPECTED_SCHEMAS}


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy (object dtype where it holds nulls or strings)."""
    return table.column(name).to_numpy(zero_copy_only=False)


def file_digests(output_dir: Path) -> dict[str, str]:
    """SHA-256 of each output file."""
    return {name: hashlib.sha256((output_dir / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the SMALL sample."""
    output_dir = tmp_path_factory.mktemp("small")
    write_sample(SMALL, output_dir)
    return output_dir


@pytest.fixture(scope="module")
def small(small_dir: Path) -> dict[str, pa.Table]:
    """The SMALL sample's tables, read back from Parquet."""
    return {name: pq.read_table(small_dir / f"{name}.parquet") for name in EXPECTED_SCHEMAS}


@pytest.fixture(scope="module")
def moderate() -> dict[str, pa.Table]:
    """The MODERATE sample's tables (in memory)."""
    return msd.generate(MODERATE, log=lambda _: None)


def test_schemas_are_exact(small: dict[str, pa.Table]) -> None:
    for name, expected in EXPECTED_SCHEMAS.items():
        assert [(field.name, field.type) for field in small[name].schema] == expected, name


def test_row_counts(small: dict[str, pa.Table]) -> None:
    assert small["events"].num_rows == SMALL.num_impressions
    missing_users = SMALL.num_users - small["users"].num_rows
    missing_items = SMALL.num_items - small["items"].num_rows
    assert 1 <= missing_users <= msd.num_unseen(SMALL.num_users)
    assert 1 <= missing_items <= msd.num_unseen(SMALL.num_items)
    assert len(set(column(small["users"], "user_id"))) == small["users"].num_rows
    assert len(set(column(small["items"], "video_id"))) == small["items"].num_rows


def test_same_seed_gives_identical_files(small_dir: Path, tmp_path: Path) -> None:
    write_sample(SMALL, tmp_path)
    assert file_digests(tmp_path) == file_digests(small_dir)


def test_different_seed_gives_different_data(small: dict[str, pa.Table], tmp_path: Path) -> None:
    other = write_sample(dataclasses.replace(SMALL, seed=SMALL.seed + 1), tmp_path)
    for name in EXPECTED_SCHEMAS:
        assert not other[name].equals(small[name]), name


def test_base_rates_are_realistic(moderate: dict[str, pa.Table]) -> None:
    events = moderate["events"]
    assert 0.25 <= column(events, "is_click").mean() <= 0.35
    assert 0.02 <= column(events, "is_like").mean() <= 0.04
    assert 0.20 <= column(events, "long_view").mean() <= 0.30


def test_labels_are_correlated(moderate: dict[str, pa.Table]) -> None:
    click = column(moderate["events"], "is_click") == 1
    for task in ("is_like", "long_view"):
        label = column(moderate["events"], task)
        assert label[click].mean() > 1.5 * label[~click].mean(), task
        assert label[~click].sum() > 0, task  # likelier after a click, but not only then


def test_times_within_requested_days_and_unsorted(small: dict[str, pa.Table]) -> None:
    times = small["events"].column("time_ms")
    assert times.null_count >= 1
    values = times.drop_null().to_numpy()
    assert values.min() >= SMALL.start_ms
    assert values.max() < SMALL.start_ms + SMALL.days * msd.DAY_MS
    assert (np.diff(values) < 0).any()
    hours = (values // msd.HOUR_MS) % 24
    assert np.bincount(hours, minlength=24).argmax() in range(17, 23)  # evening peak
    assert (column(small["items"], "upload_time_ms") < SMALL.start_ms).all()


def test_nulls_unseen_ids_and_extreme_values(small: dict[str, pa.Table]) -> None:
    events, users, items = small["events"], small["users"], small["items"]
    assert events.column("device").null_count >= 1
    assert set(events.column("device").drop_null().to_pylist()) == {"ios", "android", "web"}
    assert items.column("video_duration_ms").null_count >= 1
    assert users.column("gender").null_count >= 1
    assert not set(column(events, "user_id")) <= set(column(users, "user_id"))
    assert not set(column(events, "video_id")) <= set(column(items, "video_id"))
    assert column(users, "fans_user_num").max() >= 1e7
    assert items.column("video_duration_ms").drop_null().to_numpy().max() >= 1e7
    follow = column(users, "follow_user_num")
    assert follow.max() > 20 * np.median(follow)
    assert set(column(users, "user_active_degree")) <= set(msd.ACTIVE_DEGREES)
    assert set(column(items, "category")) <= {f"cat_{c}" for c in range(40)}
    assert set(column(events, "tab")) <= set(range(6))
    assert 0 <= column(events, "position").min() and column(events, "position").max() <= 50


def test_item_popularity_is_zipfian(moderate: dict[str, pa.Table]) -> None:
    _, counts = np.unique(column(moderate["events"], "video_id"), return_counts=True)
    assert (counts == 1).sum() > 0.05 * counts.size
    assert counts.max() > 50 * np.median(counts)


def category_clicked_before(user: np.ndarray, category: np.ndarray, time_ms: np.ndarray,
                            click: np.ndarray) -> np.ndarray:
    """Per impression: did the same user click an item of the same category strictly earlier?"""
    order = np.lexsort((time_ms, category, user))
    sorted_user, sorted_category, sorted_click = user[order], category[order], click[order]
    group_start = np.r_[True, (sorted_user[1:] != sorted_user[:-1])
                        | (sorted_category[1:] != sorted_category[:-1])]
    clicks_before = np.cumsum(sorted_click) - sorted_click
    first_row = np.maximum.accumulate(np.where(group_start, np.arange(order.size), 0))
    result = np.empty(order.size, dtype=bool)
    result[order] = clicks_before - clicks_before[first_row] > 0
    return result


def within_user_lift(user: np.ndarray, click: np.ndarray, flag: np.ndarray) -> tuple[float, float]:
    """Mean over users of click rate(flag) - click rate(not flag), and its standard error."""
    index = np.unique(user, return_inverse=True)[1]
    n_flag, n_other = np.bincount(index, flag), np.bincount(index, ~flag)
    rate_flag = np.bincount(index, flag * click) / np.maximum(n_flag, 1)
    rate_other = np.bincount(index, ~flag * click) / np.maximum(n_other, 1)
    both = (n_flag >= 3) & (n_other >= 3)
    diff = (rate_flag - rate_other)[both]
    return float(diff.mean()), float(diff.std() / np.sqrt(both.sum()))


def test_click_is_predictable_from_earlier_clicks_on_the_category(
        moderate: dict[str, pa.Table]) -> None:
    """The latent affinity shows in the sequence: clicking a category predicts clicking it again.

    Same-item re-exposure and click-happy users would make any "clicked before" flag look
    predictive, so the lift is compared with a placebo that assigns categories to items at
    random (it keeps those effects but breaks the category structure).
    """
    events, items = moderate["events"], moderate["items"]
    video_ids = column(items, "video_id")
    category = np.array([int(name[4:]) for name in column(items, "category")])
    time_ms = events.column("time_ms").fill_null(-1).to_numpy()
    slot = np.minimum(np.searchsorted(video_ids, column(events, "video_id")), video_ids.size - 1)
    usable = (video_ids[slot] == column(events, "video_id")) & (time_ms >= 0)
    user, click, time_ms, slot = (column(events, "user_id")[usable],
                                  column(events, "is_click")[usable], time_ms[usable], slot[usable])

    before = category_clicked_before(user, category[slot], time_ms, click)
    rate_before, rate_not = click[before].mean(), click[~before].mean()
    pooled = click.mean() * (1 - click.mean()) * (1 / before.sum() + 1 / (~before).sum())
    assert (rate_before - rate_not) / np.sqrt(pooled) > 10
    assert rate_before > rate_not + 0.08

    placebo_category = np.random.default_rng(0).permutation(category)
    placebo = category_clicked_before(user, placebo_category[slot], time_ms, click)
    lift, lift_se = within_user_lift(user, click, before)
    placebo_lift, placebo_se = within_user_lift(user, click, placebo)
    assert lift - placebo_lift > 0.05
    assert lift - placebo_lift > 5 * np.hypot(lift_se, placebo_se)


def test_cli_writes_three_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.make_sample_data", f"--output={tmp_path / 'out'}",
         "--num_impressions=2000", "--num_users=100", "--num_items=300", "--seed=3", "--days=3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    for name in FILES:
        assert (tmp_path / "out" / name).is_file(), name
    assert "base rate is_click" in result.stdout
    assert pq.read_table(tmp_path / "out" / "events.parquet").num_rows == 2000
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name not in FILES]


def test_cli_rejects_bad_flags(tmp_path: Path) -> None:
    for flag in ("--num_impressions=0", "--start_date=2026-13-01", "--num_users=many"):
        result = subprocess.run(
            [sys.executable, "-m", "pipelines.make_sample_data", f"--output={tmp_path}", flag],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 2, flag
        assert flag.split("=")[0] in result.stderr, flag
    assert not list(tmp_path.iterdir())


def test_flags_are_the_config_fields() -> None:
    """The command's flags are generated from ``Config`` (same names and defaults), in its own FlagValues."""
    from infnet_tf import config_flags
    from pipelines import make_sample_data

    flag_values = make_sample_data.FLAGS
    assert set(config_flags.flag_names(msd.Config).values()) | {"output"} <= set(flag_values)
    flag_values.unparse_flags()
    try:
        flag_values(["prog", "--output=x", "--seed=5", "--days=3"])
        parsed = msd.Config(**config_flags.values(msd.Config, flag_values))
    finally:
        flag_values.unparse_flags()
    assert parsed == dataclasses.replace(msd.Config(), seed=5, days=3)
    assert (parsed.num_impressions, parsed.start_date) == (200_000, "2026-10-01")
