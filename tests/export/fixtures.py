"""Tiny transform artifacts, models and raw rows for the export tests (fast: no Beam, d=8).

``tiny_spec()`` is a real feature spec (parsed by :mod:`infnet_tf.feature_spec`) shaped like the sample
data's; ``tiny_artifact()`` a hand-fitted :class:`TransformArtifact` for it (int and string
vocabularies with OOV buckets, a hash field, quantile and log dense fields, a counter, two sequence
types with side information); ``raw_rows()`` raw request rows that probe boundaries, NaN, nulls,
unseen ids, empty and over-long sequences.
"""
from __future__ import annotations

import numpy as np

import infnet_tf  # noqa: F401
from infnet_tf.feature_spec import parse_spec_text
from infnet_tf.transform import TransformArtifact, build_layout, log_boundaries, time_gap_boundaries

SPEC_YAML = """
name: tiny_export
sources:
  events: {path: events.parquet}
  users: {path: users.parquet, key: user_id}
  items: {path: items.parquet, key: video_id}
time: {column: time_ms, unit: ms}
user_key: user_id
item_key: video_id
categorical:
  - {name: user_id, source: events, vocabulary: {min_count: 1, oov_buckets: 3}}
  - {name: video_id, source: events, vocabulary: {min_count: 1, oov_buckets: 4}}
  - {name: author_id, source: items, hash_buckets: 50}
  - {name: category, source: items, vocabulary: {min_count: 1, oov_buckets: 2}}
  - {name: device, source: events, side: user, vocabulary: {min_count: 1, oov_buckets: 1}}
dense:
  - {name: duration, source: items, binning: {type: quantile, num_buckets: 6}}
  - {name: fans, source: users, binning: {type: log, num_buckets: 5}}
sequences:
  - {name: click, filter: {column: is_click, equals: 1}, max_len: 5, item_field: video_id,
     side_fields: [author_id, category], time_gap: {type: log, num_buckets: 8}}
  - {name: like, filter: {column: is_like, equals: 1}, max_len: 3, item_field: video_id,
     side_fields: [category], time_gap: {type: log, num_buckets: 6}}
counters:
  - {key: user_id, windows: [1d], binning: {type: log, num_buckets: 4}}
tasks:
  - {name: click, label: is_click}
  - {name: like, label: is_like}
split: {valid_days: 1, test_days: 1}
"""

USERS = list(range(100, 115))
VIDEOS = list(range(1000, 1030))
CATEGORIES = ["news", "sport", "music", "game", "food"]
DEVICES = ["ios", "android"]
DURATION_BOUNDS = [5_000.0, 10_000.5, 20_000.0, 40_000.25, 80_000.0]


def tiny_spec():
    return parse_spec_text(SPEC_YAML, "tiny_export.yaml")


def tiny_artifact() -> TransformArtifact:
    spec = tiny_spec()

    def vocab(values, dtype, oov):
        return {"kind": "vocabulary", "dtype": dtype, "values": list(values), "counts": [1] * len(values),
                "min_count": 1, "oov_buckets": oov, "vocab_size": 1 + len(values) + oov}

    categorical = {
        "user_id": vocab(USERS, "int64", 3),
        "video_id": vocab(VIDEOS, "int64", 4),
        "author_id": {"kind": "hash", "hash_buckets": 50, "hash": "farmhash", "vocab_size": 51, "dtype": "int64"},
        "category": vocab(CATEGORIES, "string", 2),
        "device": vocab(DEVICES, "string", 1),
    }
    dense = {
        "duration": {"binning": "quantile", "num_buckets": 6, "boundaries": DURATION_BOUNDS, "log_range": None,
                     "vocab_size": 7},
        "fans": {"binning": "log", "num_buckets": 5, "boundaries": log_boundaries(0.0, np.log1p(1e6), 5),
                 "log_range": [0.0, float(np.log1p(1e6))], "vocab_size": 6},
    }
    counters = {
        "user_id_imp_1d": {"binning": "log", "num_buckets": 4, "boundaries": log_boundaries(0.0, np.log1p(500), 4),
                           "log_range": [0.0, float(np.log1p(500))], "vocab_size": 5, "key": "user_id",
                           "what": "imp", "window": "1d", "window_ms": 86_400_000},
    }
    time_gap = {s.name: {"unit_ms": 60_000, "num_buckets": s.time_gap.num_buckets,
                         "boundaries_ms": time_gap_boundaries(s.time_gap.num_buckets, 60_000)}
                for s in spec.sequences}
    for token, side in spec.token_sides().items():      # as the dataset job writes them
        (categorical.get(token) or dense.get(token) or counters[token])["side"] = side
    sizes = {**{k: v["vocab_size"] for k, v in categorical.items()}, **{k: v["vocab_size"] for k, v in dense.items()},
             **{k: v["vocab_size"] for k, v in counters.items()}}
    layout = build_layout(spec, sizes)
    return TransformArtifact(spec_name=spec.name, spec_fingerprint=spec.fingerprint(),
                             token_names=list(spec.token_names()), categorical=categorical, dense=dense,
                             counters=counters, time_gap=time_gap, split={}, stats={}, layout=layout.to_dict())


NOW_MS = 1_790_000_000_000


def raw_rows(n: int = 24, seed: int = 0) -> list[dict]:
    """Raw request rows (client/JSON form): boundaries, NaN, nulls (None), unseen ids, empty and over-long
    sequences (over-long: more items than max_len, given in full with their length)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        def item():
            return int(rng.choice(VIDEOS)) if rng.random() < 0.85 else int(rng.integers(5000, 6000))

        row = {
            "user_id": int(rng.choice(USERS)) if i % 7 else 99_999,               # unseen user
            "video_id": item(),
            "author_id": int(rng.integers(1, 10_000)) if i % 5 else None,         # null
            "category": str(rng.choice(CATEGORIES)) if i % 6 else "unseen-cat",   # OOV string
            "device": str(rng.choice(DEVICES)) if i % 4 else None,                # null string
            "duration": float(rng.choice(DURATION_BOUNDS)) if i % 3 == 0 else (
                float("nan") if i % 3 == 1 else float(rng.uniform(0, 1e5))),    # on boundary / NaN / any
            "fans": float(rng.integers(0, 2_000_000)) if i % 8 else -3.0,
            "user_id_imp_1d": float(rng.integers(0, 800)) if i % 9 else float("nan"),
            "request_time_ms": NOW_MS + i * 1000,
        }
        for seq, max_len, sides in (("click", 5, ("author_id", "category")), ("like", 3, ("category",))):
            length = [0, 1, max_len, max_len + 4, 2][i % 5]
            times = sorted(int(row["request_time_ms"] - g) for g in rng.integers(0, 40 * 86_400_000, length))
            row[f"seq/{seq}/video_id"] = [item() for _ in range(length)]
            if "author_id" in sides:
                row[f"seq/{seq}/author_id"] = [int(a) if rng.random() < 0.9 else None
                                               for a in rng.integers(1, 10_000, length)]
            row[f"seq/{seq}/category"] = [str(rng.choice(CATEGORIES + ["zzz"])) if rng.random() < 0.9 else None
                                          for _ in range(length)]
            row[f"seq/{seq}/event_time_ms"] = times
        rows.append(row)
    return rows


# -- a dataset directory and a trained-model directory, as the jobs write them ---------------------
DAY_MS = 86_400_000


def write_partition(path: str, layout, inputs: dict, labels: dict, start_ms: int) -> None:
    """One ``dt=...`` partition of GZIP Examples in the dataset job's format, then ``_SUCCESS``."""
    from infnet_tf.data.keys import EVENT_TIME, LENGTH, USER_KEY, cat_key, label_key, seq_key, sequence_columns
    from tests.tiny_data import serialize_example, write_partition as write_examples

    examples = []
    for i in range(len(next(iter(labels.values())))):
        values = {cat_key(f.name): inputs[cat_key(f.name)][i] for f in layout.categorical}
        for seq in layout.sequences:
            length = int(inputs[seq_key(seq.name, LENGTH)][i])
            values.update({seq_key(seq.name, c): inputs[seq_key(seq.name, c)][i][:length]
                           for c in sequence_columns(seq)})
        values.update({label_key(task): y[i] for task, y in labels.items()})
        values[USER_KEY] = f"u{int(inputs[cat_key(layout.categorical[0].name)][i])}".encode()
        values[EVENT_TIME] = start_ms + 1000 * i
        examples.append(serialize_example(layout, values))
    write_examples(path, examples)


def write_data(root: str, artifact: TransformArtifact, rows: int = 256, seed: int = 0, label_fn=None) -> dict:
    """``<root>/transform/transform_artifact.json`` + one train and one valid partition.

    Labels: ``label_fn(inputs) -> {task: 0/1}`` (default: random, with some -1 for ``like``).
    Returns the valid partition's model inputs and labels.
    """
    import os

    from infnet_tf.data.dataset_dir import artifact_path
    from tests.tiny_data import random_model_inputs

    layout = artifact.feature_layout
    artifact.save(artifact_path(root))
    out = {}
    for day, split in enumerate(("train", "valid")):
        inputs = random_model_inputs(layout, rows, seed + day)
        if label_fn is None:
            rng = np.random.default_rng(seed + 10 + day)
            labels = {t: rng.integers(0, 2, rows) for t in layout.task_names}
            labels[layout.task_names[-1]][::7] = -1
        else:
            labels = label_fn(inputs)
        write_partition(os.path.join(root, split, f"dt=2026-09-2{day}"), layout, inputs, labels,
                        NOW_MS + day * DAY_MS)
        out[split] = (inputs, labels)
    return out


def tiny_model_config(**changes):
    """The shared tiny config (:func:`tests.tiny_data.tiny_model_config`) with the export tests' widths."""
    from tests.tiny_data import SMALL_WIDTHS, tiny_model_config as shared

    return shared(**{**SMALL_WIDTHS, **changes})


def make_trainer(model_dir: str, layout, seed: int = 0, **config_changes):
    """A real Trainer (random weights) for ``layout``: writes trainer_config.json; checkpoint on demand."""
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.trainer import Trainer

    return Trainer(layout, tiny_model_config(**config_changes),
                   TrainConfig(batch_size=64, precision="float32", strategy="default", seed=seed), model_dir)
