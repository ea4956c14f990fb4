"""Synthetic KuaiRand-like sample data: impression log plus user and item tables (Parquet).

:func:`generate` builds the three tables from a :class:`Config` and :func:`write_tables` writes
``events.parquet``, ``users.parquet`` and ``items.parquet`` into a directory; the command is
``python -m pipelines.make_sample_data --output=DIR --num_impressions=200000 --seed=0`` (its flags
are the :class:`Config` fields). Only numpy and pyarrow are used (no TensorFlow), and the output is
byte-identical for the same config.

How the labels arise (hidden parameters never written to any table):

* Every user has a latent interest vector (a mixture of a few interest clusters) that drifts a
  little from day to day; every category, author and item has a latent vector. Click depends on
  their affinity (about +-1.3 logits), so it is visible only through the user's earlier
  behaviour: the categories and authors of the items the user clicked or liked before.
* Session interest: a click on a category raises the click probability of that category for the
  next hours (decaying with the time gap), so order and time gaps in the sequence matter.
* Dense features act non-linearly and in steps: click peaks at mid video durations (inverted U
  in log duration), drops sharply over the first feed positions, steps with
  ``user_active_degree`` and jumps down for users registered less than 30 days ago.
* Tasks partly conflict: a per-item "clickbait" latent raises click but lowers long_view;
  long_view favours long videos and highly active users; like follows author affinity and the
  user's ``fans_user_num`` bucket. Like and long_view are likelier after a click.
* User and item biases (items by Zipfian popularity) make the ids informative.

Realistic dirt: ~1% null devices and video durations, ~0.05% null event times, heavy-tailed
profile values with a few extreme ones, rows in random order, and a few users/items that appear
in the log but not in their tables (unseen ids). Item popularity is Zipfian, so many items
appear only once.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infnet_tf.config_flags import setting

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

LATENT_DIM = 8
NUM_CLUSTERS = 6
NUM_CATEGORIES = 40
NUM_TABS = 6
MAX_POSITION = 50
MEAN_SESSION_LENGTH = 10.0
MEAN_GAP_MS = 25_000.0

TARGET_CLICK_RATE = 0.30
TARGET_LIKE_RATE = 0.03
TARGET_LONG_VIEW_RATE = 0.25

AFFINITY_WEIGHT = 1.3
SESSION_BOOST = 1.0
SESSION_DECAY_HOURS = 2.0
NEW_USER_DAYS = 30

ACTIVE_DEGREES = ("high_active", "full_active", "middle_active", "low_active", "UNKNOWN")
ACTIVE_CLICK_EFFECT = np.array([0.4, 0.2, 0.0, -0.4, -0.2])
ACTIVE_LONG_VIEW_EFFECT = np.array([0.6, 0.3, 0.0, -0.3, 0.0])
AGE_RANGES = ("12-17", "18-23", "24-30", "31-40", "41-49", "50+")
AGE_PROBS = (0.05, 0.25, 0.30, 0.20, 0.12, 0.08)
DEVICES = ("ios", "android", "web")
DEVICE_PROBS = (0.40, 0.55, 0.05)
DEVICE_CLICK_EFFECT = np.array([0.1, 0.0, -0.3])
TAB_PROBS = (0.45, 0.25, 0.12, 0.08, 0.06, 0.04)
TAB_CLICK_EFFECT = np.array([0.2, 0.0, -0.2, 0.1, -0.3, 0.0])
# Relative session starts per hour of day (UTC): quiet at night, peaks at lunch and evening.
HOUR_WEIGHTS = np.array([3, 2, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5,
                         6, 5, 4, 4, 4, 5, 6, 8, 9, 9, 7, 5], dtype=np.float64)
# like effect per log10(fans_user_num + 1) bucket: [0, 1), [1, 3), [3, 5), [5, inf).
FANS_BUCKET_EDGES = np.array([1.0, 3.0, 5.0])
FANS_LIKE_EFFECT = np.array([-0.4, 0.0, 0.5, 0.2])

EVENTS_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("video_id", pa.int64()), ("time_ms", pa.int64()),
    ("tab", pa.int64()), ("device", pa.string()), ("position", pa.int64()),
    ("is_click", pa.int64()), ("is_like", pa.int64()), ("long_view", pa.int64()),
])
USERS_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_active_degree", pa.string()), ("gender", pa.string()),
    ("age_range", pa.string()), ("follow_user_num", pa.int64()), ("fans_user_num", pa.int64()),
    ("register_days", pa.int64()), ("is_video_author", pa.int64()),
])
ITEMS_SCHEMA = pa.schema([
    ("video_id", pa.int64()), ("author_id", pa.int64()), ("category", pa.string()),
    ("video_duration_ms", pa.float64()), ("upload_time_ms", pa.int64()),
])


@dataclasses.dataclass(frozen=True)
class Config:
    """What to generate; every field is a flag of ``python -m pipelines.make_sample_data``."""

    num_impressions: int = setting(200_000, "Number of impression rows in events.parquet.")
    num_users: int = setting(5_000, "Number of users.")
    num_items: int = setting(20_000, "Number of videos.")
    days: int = setting(14, "Days of log, starting at --start_date.")
    start_date: str = setting("2026-10-01", "First day of the log, YYYY-MM-DD, UTC.")
    seed: int = setting(0, "Random seed; the same flags give byte-identical files.")

    @property
    def start_ms(self) -> int:
        """Epoch milliseconds (UTC) of ``start_date`` midnight."""
        day = datetime.date.fromisoformat(self.start_date)
        midnight = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
        return int(midnight.timestamp()) * 1000


@dataclasses.dataclass
class Users:
    """Hidden user parameters (``interest``, ``drift``, ``bias``, ``volume``) and profile columns."""

    user_id: np.ndarray
    interest: np.ndarray
    drift: np.ndarray
    bias: np.ndarray
    volume: np.ndarray
    device: np.ndarray
    active_degree: np.ndarray
    gender: np.ndarray
    age_range: np.ndarray
    follow_user_num: np.ndarray
    fans_user_num: np.ndarray
    register_days: np.ndarray
    is_video_author: np.ndarray


@dataclasses.dataclass
class Items:
    """Hidden item parameters (``vector``, ``author_vector``, ``bias``, ``clickbait``) and columns."""

    video_id: np.ndarray
    author_id: np.ndarray
    category: np.ndarray
    vector: np.ndarray
    author_vector: np.ndarray
    popularity: np.ndarray
    bias: np.ndarray
    clickbait: np.ndarray
    duration_ms: np.ndarray
    upload_time_ms: np.ndarray


@dataclasses.dataclass
class Impressions:
    """One entry per impression, grouped by user and ordered by time within each user."""

    user: np.ndarray
    item: np.ndarray
    time_ms: np.ndarray
    day: np.ndarray
    tab: np.ndarray
    position: np.ndarray


@dataclasses.dataclass
class Labels:
    """Sampled labels aligned with ``Impressions``."""

    click: np.ndarray
    like: np.ndarray
    long_view: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (unchanged when constant)."""
    std = x.std()
    return (x - x.mean()) / std if std > 0 else x - x.mean()


def zipf_weights(rng: np.random.Generator, n: int, exponent: float,
                 offset: float = 0.0) -> np.ndarray:
    """Zipf(-Mandelbrot) probabilities ``1 / (rank + offset) ** exponent``, ranks in random order."""
    weights = 1.0 / (np.arange(1, n + 1) + offset) ** exponent
    return rng.permutation(weights / weights.sum())


def unique_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct, sorted, non-contiguous int64 ids."""
    return np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)


def calibrate_intercept(logit: np.ndarray, target_rate: float) -> float:
    """The constant c with mean(sigmoid(logit + c)) == target_rate (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if sigmoid(logit + mid).mean() < target_rate:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def make_users(rng: np.random.Generator, config: Config) -> Users:
    """Users: a latent interest mixture, daily drift, activity, and a heavy-tailed profile."""
    n = config.num_users
    centers = rng.normal(size=(NUM_CLUSTERS, LATENT_DIM))
    cluster = rng.integers(NUM_CLUSTERS, size=n)
    interest = centers[cluster] + 0.5 * rng.normal(size=(n, LATENT_DIM))
    drift = np.cumsum(0.15 * rng.normal(size=(n, config.days, LATENT_DIM)), axis=1)

    activity = rng.normal(size=n)
    activity_rank = np.argsort(np.argsort(-activity)) / max(n, 1)
    active_degree = np.searchsorted([0.25, 0.55, 0.80], activity_rank, side="right")
    active_degree[rng.random(n) < 0.03] = ACTIVE_DEGREES.index("UNKNOWN")

    is_author = (rng.random(n) < 0.25).astype(np.int64)
    fans = np.floor(np.exp(rng.normal(1.5 + 2.0 * is_author, 2.0))).astype(np.int64)
    celebrities = rng.choice(n, size=max(1, n // 2000), replace=False)
    fans[celebrities] = np.floor(10 ** rng.uniform(7.0, 8.3, size=celebrities.size)).astype(np.int64)
    new_user = rng.random(n) < 0.12
    register_days = np.where(new_user, rng.integers(1, NEW_USER_DAYS * 2, size=n),
                             rng.integers(NEW_USER_DAYS * 2, 3000, size=n))
    gender_draw = rng.random(n)
    gender = np.where(gender_draw < 0.45, "M", np.where(gender_draw < 0.90, "F", None))
    return Users(
        user_id=unique_ids(rng, n),
        interest=interest,
        drift=drift,
        bias=0.5 * rng.normal(size=n),
        volume=np.exp(0.9 * activity),
        device=rng.choice(len(DEVICES), size=n, p=DEVICE_PROBS),
        active_degree=active_degree,
        gender=gender,
        age_range=rng.choice(len(AGE_RANGES), size=n, p=AGE_PROBS),
        follow_user_num=np.floor(np.exp(rng.normal(3.5, 1.4, size=n))).astype(np.int64),
        fans_user_num=fans,
        register_days=register_days.astype(np.int64),
        is_video_author=is_author,
    )


def make_items(rng: np.random.Generator, config: Config) -> Items:
    """Items: Zipfian authors and popularity, category/author latent vectors, durations."""
    n = config.num_items
    num_authors = max(1, n // 10)
    category_weights = zipf_weights(rng, NUM_CATEGORIES, 0.8)
    category_vectors = rng.normal(size=(NUM_CATEGORIES, LATENT_DIM))

    author_ids = unique_ids(rng, num_authors)
    author_main_category = rng.choice(NUM_CATEGORIES, size=num_authors, p=category_weights)
    author_vectors = category_vectors[author_main_category] + 0.7 * rng.normal(
        size=(num_authors, LATENT_DIM))
    author = rng.choice(num_authors, size=n, p=zipf_weights(rng, num_authors, 1.0, offset=2.0))
    category = np.where(rng.random(n) < 0.8, author_main_category[author],
                        rng.choice(NUM_CATEGORIES, size=n, p=category_weights))

    popularity = zipf_weights(rng, n, 1.0, offset=20.0)
    log_duration_s = rng.normal(np.log(25.0), 0.9, size=n)
    extreme = rng.choice(n, size=max(1, n // 5000), replace=False)
    log_duration_s[extreme] = rng.uniform(np.log(2e4), np.log(1e5), size=extreme.size)
    clickbait = rng.normal(size=n) - 0.6 * standardize(np.minimum(log_duration_s, np.log(600.0)))
    upload_age_ms = rng.exponential(30 * DAY_MS, size=n) + HOUR_MS
    return Items(
        video_id=unique_ids(rng, n),
        author_id=author_ids[author],
        category=category,
        vector=category_vectors[category] + 0.5 * rng.normal(size=(n, LATENT_DIM)),
        author_vector=author_vectors[author],
        popularity=popularity,
        bias=0.35 * standardize(np.log(popularity)) + 0.4 * rng.normal(size=n),
        clickbait=clickbait,
        duration_ms=np.round(np.exp(log_duration_s) * 1000.0),
        upload_time_ms=(config.start_ms - upload_age_ms).astype(np.int64),
    )


def make_impressions(rng: np.random.Generator, config: Config, users: Users,
                     items: Items) -> Impressions:
    """Impressions in sessions: a daily cycle of session starts, feed positions, Zipfian items."""
    n = config.num_impressions
    counts = rng.multinomial(n, users.volume / users.volume.sum())
    user = np.repeat(np.arange(config.num_users), counts)
    first_of_user = np.zeros(n, dtype=bool)
    first_of_user[(np.cumsum(counts) - counts)[counts > 0]] = True

    new_session = first_of_user | (rng.random(n) < 1.0 / MEAN_SESSION_LENGTH)
    session = np.cumsum(new_session) - 1
    session_first_row = np.flatnonzero(new_session)
    num_sessions = session_first_row.size
    session_day = rng.integers(config.days, size=num_sessions)
    session_hour = rng.choice(24, size=num_sessions, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    session_start = (config.start_ms + session_day * DAY_MS + session_hour * HOUR_MS
                     + rng.integers(HOUR_MS, size=num_sessions))
    session_tab = rng.choice(NUM_TABS, size=num_sessions, p=TAB_PROBS)

    elapsed = np.cumsum(rng.exponential(MEAN_GAP_MS, size=n))
    offset = elapsed - elapsed[session_first_row][session]
    end_ms = config.start_ms + config.days * DAY_MS - 1
    time_ms = np.minimum(session_start[session] + offset.astype(np.int64), end_ms)
    position = np.minimum(np.arange(n) - session_first_row[session], MAX_POSITION)

    order = np.lexsort((time_ms, user))
    return Impressions(
        user=user[order],
        item=rng.choice(config.num_items, size=n, p=items.popularity),
        time_ms=time_ms[order],
        day=session_day[session][order],
        tab=session_tab[session][order],
        position=position[order],
    )


def duration_click_effect(duration_ms: np.ndarray) -> np.ndarray:
    """Inverted U in log duration: clicks peak around 20 s videos."""
    z = (np.log(duration_ms / 1000.0) - np.log(20.0)) / 0.8
    return np.maximum(-0.6 * z ** 2, -2.0)


def position_click_effect(position: np.ndarray) -> np.ndarray:
    """Sharp drop over the first feed positions, a further step down deep in the feed."""
    return 0.8 * np.exp(-position / 2.0) - 0.4 * (position >= 20)


def static_click_logit(users: Users, items: Items,
                       imp: Impressions) -> tuple[np.ndarray, np.ndarray]:
    """Click logit without the session effect, and the standardized user-item affinity."""
    u, i = imp.user, imp.item
    interest = users.interest[u] + users.drift[u, imp.day]
    affinity = standardize(np.einsum("nd,nd->n", interest, items.vector[i]))
    logit = (AFFINITY_WEIGHT * affinity
             + users.bias[u] + items.bias[i] + 0.5 * items.clickbait[i]
             + duration_click_effect(items.duration_ms[i])
             + position_click_effect(imp.position)
             + ACTIVE_CLICK_EFFECT[users.active_degree[u]]
             - 0.6 * (users.register_days[u] < NEW_USER_DAYS)
             + TAB_CLICK_EFFECT[imp.tab]
             + DEVICE_CLICK_EFFECT[users.device[u]])
    return logit, affinity


def sample_clicks_in_order(logit: np.ndarray, uniform: np.ndarray, imp: Impressions,
                           category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample clicks user by user in time order, adding the session-interest boost.

    A click on a category at time t adds ``SESSION_BOOST * exp(-gap_hours / decay)`` to the
    user's later impressions of the same category. Steps over the k-th impression of every
    user at once (vectorised across users), so the loop runs max-impressions-per-user times.
    Returns (click, boost) aligned with ``imp``.
    """
    counts = np.bincount(imp.user)
    starts = np.cumsum(counts) - counts
    by_count = np.argsort(-counts, kind="stable")
    sorted_counts = counts[by_count]
    sorted_starts = starts[by_count]
    last_click_ms = np.full((counts.size, NUM_CATEGORIES), -np.inf)
    click = np.zeros(logit.size, dtype=bool)
    boost = np.zeros(logit.size)
    for k in range(int(sorted_counts[0])):
        num_active = int(np.searchsorted(-sorted_counts, -k, side="left"))
        slot = np.arange(num_active)
        rows = sorted_starts[:num_active] + k
        cat = category[rows]
        now = imp.time_ms[rows].astype(np.float64)
        gap_hours = (now - last_click_ms[slot, cat]) / HOUR_MS
        boost[rows] = SESSION_BOOST * np.exp(-gap_hours / SESSION_DECAY_HOURS)
        clicked = uniform[rows] < sigmoid(logit[rows] + boost[rows])
        click[rows] = clicked
        last_click_ms[slot[clicked], cat[clicked]] = now[clicked]
    return click, boost


def sample_labels(rng: np.random.Generator, users: Users, items: Items,
                  imp: Impressions) -> Labels:
    """Click (with session interest), then like and long_view, each calibrated to its base rate."""
    u, i = imp.user, imp.item
    logit, affinity = static_click_logit(users, items, imp)
    category = items.category[i]
    uniform = rng.random(logit.size)
    intercept = calibrate_intercept(logit, TARGET_CLICK_RATE)
    _, boost = sample_clicks_in_order(logit + intercept, uniform, imp, category)
    intercept = calibrate_intercept(logit + boost, TARGET_CLICK_RATE)
    click, _ = sample_clicks_in_order(logit + intercept, uniform, imp, category)

    author_affinity = standardize(np.einsum(
        "nd,nd->n", users.interest[u] + users.drift[u, imp.day], items.author_vector[i]))
    fans_bucket = np.searchsorted(FANS_BUCKET_EDGES, np.log10(users.fans_user_num[u] + 1.0),
                                  side="right")
    like_logit = (1.5 * author_affinity + FANS_LIKE_EFFECT[fans_bucket] + 2.2 * click
                  + 0.3 * users.bias[u] + 0.2 * items.bias[i] - 0.3 * items.clickbait[i])
    log_duration = np.minimum(np.log(items.duration_ms[i] / 1000.0), np.log(600.0))
    long_view_logit = (0.9 * standardize(log_duration) - 0.8 * items.clickbait[i]
                       + ACTIVE_LONG_VIEW_EFFECT[users.active_degree[u]]
                       + 0.5 * affinity + 1.2 * click + 0.3 * users.bias[u])
    like_p = sigmoid(like_logit + calibrate_intercept(like_logit, TARGET_LIKE_RATE))
    long_view_p = sigmoid(long_view_logit
                          + calibrate_intercept(long_view_logit, TARGET_LONG_VIEW_RATE))
    return Labels(click=click.astype(np.int64),
                  like=(rng.random(logit.size) < like_p).astype(np.int64),
                  long_view=(rng.random(logit.size) < long_view_p).astype(np.int64))


def num_unseen(n: int) -> int:
    """How many of ``n`` users (or items) are left out of their table: 0.2%, at least one."""
    return max(1, n // 500)


def pick_unseen(rng: np.random.Generator, used: np.ndarray, n: int) -> np.ndarray:
    """Indices (among 0..n-1) of entries that appear in the log but not in their table."""
    candidates = np.unique(used)
    return rng.choice(candidates, size=min(num_unseen(n), candidates.size), replace=False)


def nullable(values: np.ndarray, null: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """Arrow array of ``values`` with nulls where ``null`` is true."""
    return pa.array(values, type=arrow_type, mask=null)


def events_table(rng: np.random.Generator, users: Users, items: Items, imp: Impressions,
                 labels: Labels) -> pa.Table:
    """The impression log in random row order, with null times and devices."""
    n = imp.user.size
    null_time = np.zeros(n, dtype=bool)
    null_time[rng.choice(n, size=max(1, round(n * 0.0005)), replace=False)] = True
    null_device = rng.random(n) < 0.01
    device = np.asarray(DEVICES, dtype=object)[users.device[imp.user]]
    columns = {
        "user_id": pa.array(users.user_id[imp.user]),
        "video_id": pa.array(items.video_id[imp.item]),
        "time_ms": nullable(imp.time_ms, null_time, pa.int64()),
        "tab": pa.array(imp.tab.astype(np.int64)),
        "device": nullable(device, null_device, pa.string()),
        "position": pa.array(imp.position.astype(np.int64)),
        "is_click": pa.array(labels.click),
        "is_like": pa.array(labels.like),
        "long_view": pa.array(labels.long_view),
    }
    table = pa.table(columns, schema=EVENTS_SCHEMA)
    return table.take(pa.array(rng.permutation(n)))


def users_table(users: Users, unseen: np.ndarray) -> pa.Table:
    """The user profile table without the unseen users."""
    keep = np.ones(users.user_id.size, dtype=bool)
    keep[unseen] = False
    columns = {
        "user_id": users.user_id,
        "user_active_degree": np.asarray(ACTIVE_DEGREES, dtype=object)[users.active_degree],
        "gender": users.gender,
        "age_range": np.asarray(AGE_RANGES, dtype=object)[users.age_range],
        "follow_user_num": users.follow_user_num,
        "fans_user_num": users.fans_user_num,
        "register_days": users.register_days,
        "is_video_author": users.is_video_author,
    }
    return pa.table({name: pa.array(values[keep], type=USERS_SCHEMA.field(name).type)
                     for name, values in columns.items()}, schema=USERS_SCHEMA)


def items_table(rng: np.random.Generator, items: Items, unseen: np.ndarray) -> pa.Table:
    """The item table without the unseen items, with ~1% null durations."""
    keep = np.ones(items.video_id.size, dtype=bool)
    keep[unseen] = False
    null_duration = rng.random(items.video_id.size) < 0.01
    category_names = np.asarray([f"cat_{c}" for c in range(NUM_CATEGORIES)], dtype=object)
    return pa.table({
        "video_id": pa.array(items.video_id[keep]),
        "author_id": pa.array(items.author_id[keep]),
        "category": pa.array(category_names[items.category[keep]], type=pa.string()),
        "video_duration_ms": nullable(items.duration_ms[keep], null_duration[keep], pa.float64()),
        "upload_time_ms": pa.array(items.upload_time_ms[keep]),
    }, schema=ITEMS_SCHEMA)


def generate(config: Config, log: Callable[[str], None] = print) -> dict[str, pa.Table]:
    """All three tables for ``config``: {"events": ..., "users": ..., "items": ...}."""
    validate(config)
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()

    def progress(message: str) -> None:
        log(f"[make_sample_data] {time.perf_counter() - started:6.2f}s  {message}")

    users = make_users(rng, config)
    items = make_items(rng, config)
    progress(f"{config.num_users} users, {config.num_items} items")
    imp = make_impressions(rng, config, users, items)
    progress(f"{config.num_impressions} impressions over {config.days} days")
    labels = sample_labels(rng, users, items, imp)
    progress("labels sampled")
    tables = {
        "events": events_table(rng, users, items, imp, labels),
        "users": users_table(users, pick_unseen(rng, imp.user, config.num_users)),
        "items": items_table(rng, items, pick_unseen(rng, imp.item, config.num_items)),
    }
    progress("tables built")
    return tables


def validate(config: Config) -> None:
    """Raise ValueError for sizes or dates that cannot produce a sample."""
    for name in ("num_impressions", "num_users", "num_items", "days"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(config, name)}")
    try:
        datetime.date.fromisoformat(config.start_date)
    except ValueError:
        raise ValueError(f"--start_date must be YYYY-MM-DD, got {config.start_date!r}") from None


def write_tables(tables: dict[str, pa.Table], output_dir: str) -> list[str]:
    """Write each table to ``<output_dir>/<name>.parquet`` via a temporary name and a rename."""
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = os.path.join(output_dir, f"{name}.parquet")
        tmp_path = os.path.join(output_dir, f".{name}.parquet.tmp-{os.getpid()}")
        pq.write_table(table, tmp_path)
        os.replace(tmp_path, path)
        paths.append(path)
    return paths


def summarize(tables: dict[str, pa.Table], paths: list[str]) -> str:
    """Row counts, base rate per task and the files written."""
    events = tables["events"]
    lines = [f"events: {events.num_rows} rows, users: {tables['users'].num_rows} rows, "
             f"items: {tables['items'].num_rows} rows"]
    for task in ("is_click", "is_like", "long_view"):
        rate = np.asarray(events.column(task)).mean() if events.num_rows else float("nan")
        lines.append(f"  base rate {task:9s} {rate:.4f}")
    lines += [f"  wrote {path} ({os.path.getsize(path):,} bytes)" for path in paths]
    return "\n".join(lines)
