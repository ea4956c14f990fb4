"""Fixtures for the dataset-job tests: tiny sample data, a CSV spec with a malformed-row corpus."""
from __future__ import annotations

import os
import textwrap

import pytest

import infnet_tf  # noqa: F401  (Keras 2 selection before any TensorFlow import)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_SPEC = os.path.join(REPO, "feature_specs", "kuairand_synthetic.yaml")
IN_MEMORY = ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def write_sample(raw_dir: str, num_impressions: int = 600, seed: int = 3, days: int = 5) -> str:
    from pipelines import sample_data

    config = sample_data.Config(num_impressions=num_impressions, num_users=40, num_items=150, days=days,
                                     seed=seed)
    sample_data.write_tables(sample_data.generate(config, log=lambda *_: None), raw_dir)
    return raw_dir


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory) -> str:
    """events/users/items.parquet for 600 impressions over 5 days (3 train, 1 valid, 1 test)."""
    return write_sample(str(tmp_path_factory.mktemp("sample_raw")))


CORPUS_SPEC = textwrap.dedent("""\
    name: corpus
    sources:
      events: {path: events.csv, format: csv}
      items: {path: items.csv, format: csv, key: item}
    time: {column: ts, unit: s}
    user_key: user
    item_key: item
    categorical:
      - {name: user, source: events, vocabulary: {min_count: 1, oov_buckets: 2}}
      - {name: item, source: events, hash_buckets: 100}
      - {name: cat, source: items, vocabulary: {min_count: 1, oov_buckets: 1}}
    dense:
      - {name: price, source: events, side: candidate, binning: {type: quantile, num_buckets: 4}}
    sequences:
      - {name: click, filter: {column: clicked, equals: 1}, max_len: 3, item_field: item, side_fields: [cat]}
    counters:
      - {key: item, windows: [1d, all], positives: [click]}
    tasks:
      - {name: click, label: clicked}
    split: {valid_days: 1, test_days: 1, partition: hourly}
    """)

DAY_S = 86_400
T0 = 1_790_000_000  # 2026-09-21T...Z, in seconds

# (expected reason, CSV line); columns: ts,user,item,price,clicked
BAD_ROWS = [
    ("missing_time", f",u1,i1,1.0,1"),
    ("missing_time", f"nan,u1,i1,1.0,1"),
    ("unparseable_time", f"yesterday,u1,i1,1.0,1"),
    ("time_out_of_range", f"-5,u1,i1,1.0,1"),
    ("time_out_of_range", f"99999999999,u1,i1,1.0,1"),
    ("missing_user_key", f"{T0 + 10},,i1,1.0,1"),
    ("missing_user_key", f"{T0 + 11},   ,i1,1.0,1"),
    ("missing_item_key", f"{T0 + 12},u1,,1.0,1"),
    ("bad_label", f"{T0 + 13},u1,i1,1.0,2"),
    ("bad_label", f"{T0 + 14},u1,i1,1.0,0.5"),
    ("unparseable_label", f"{T0 + 15},u1,i1,1.0,yes"),
    ("unparseable_value", f"{T0 + 16},u1,i1,12abc,1"),
    ("non_finite_value", f"{T0 + 17},u1,i1,inf,1"),
    ("malformed_row", f"{T0 + 18},u1,i1"),
    ("malformed_row", f"{T0 + 19},u1,i1,1.0,1,extra"),
]


def write_corpus(root: str, good_rows: int = 240, seed: int = 0) -> tuple[str, str]:
    """A CSV dataset (good rows over 4 days + every kind of bad row); returns (spec path, raw dir)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    raw = os.path.join(root, "raw")
    os.makedirs(raw, exist_ok=True)
    lines = ["ts,user,item,price,clicked"]
    for i in range(good_rows):
        ts = T0 + int(rng.integers(0, 4 * DAY_S))
        label = "" if i % 37 == 0 else "nan" if i % 37 == 18 else str(int(rng.random() < 0.4))
        price = "nan" if i % 29 == 0 else f"{rng.lognormal():.3f}"
        lines.append(f"{ts},u{rng.integers(0, 12)},i{rng.integers(0, 30)},{price},{label}")
    lines += [line for _, line in BAD_ROWS]
    with open(os.path.join(raw, "events.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(raw, "items.csv"), "w") as f:
        f.write("item,cat\n" + "".join(f"i{i},c{i % 4}\n" for i in range(25)))  # i25..i29 unseen
    spec = os.path.join(root, "corpus.yaml")
    with open(spec, "w") as f:
        f.write(CORPUS_SPEC)
    return spec, raw
