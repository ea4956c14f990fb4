"""Tiny learnable TFRecord datasets in the dataset job's output layout, for tests.

``write_dataset(root, ...)`` writes ``<root>/{train,valid,test}/dt=YYYY-MM-DD/part-00000.tfrecord.gz``
(+ a ``_SUCCESS`` manifest, see :mod:`infnet_tf.partitions`) with Examples that follow :mod:`infnet_tf.features`. The ``click`` label is
learnable: likely when the impression's item appears in the user's click sequence or when the
context token is small; ``like`` is rarer and mostly follows click (``like`` is missing, -1, on
some rows to exercise label masking).
"""
from __future__ import annotations

import os

import numpy as np

from infnet_tf.features import (FeatureLayout, SequenceInput, TaskInput, TokenInput, EVENT_TIME,
                                TIME_GAP, USER_KEY, cat_key, label_key, seq_key)

DAY_MS = 86_400_000
START_MS = 1_790_000_000_000  # 2026-09-20 (UTC)


def tiny_layout(num_items: int = 30, max_len: int = 6) -> FeatureLayout:
    return FeatureLayout(
        categorical=(
            TokenInput("user_id", 40, "user_id"),
            TokenInput("video_id", num_items, "video_id"),
            TokenInput("ctx", 10, "ctx"),
        ),
        sequences=(
            SequenceInput("click", max_len, (TokenInput("video_id", num_items, "video_id"),
                                             TokenInput("category", 6, "category")), 8),
        ),
        tasks=(TaskInput("click", 1.0), TaskInput("like", 0.5)),
    )


def _feature(values) -> "object":
    import tensorflow as tf

    if isinstance(values, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[values]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in np.atleast_1d(values)]))


def make_examples(layout: FeatureLayout, n: int, rng: np.random.Generator, day: int) -> list[bytes]:
    """``n`` serialized Examples for one day; labels learnable from item-in-sequence and ctx."""
    import tensorflow as tf

    seq = layout.sequences[0]
    num_items = layout.categorical[1].vocab_size
    out = []
    for i in range(n):
        user = int(rng.integers(1, layout.categorical[0].vocab_size))
        item = int(rng.integers(1, num_items))
        ctx = int(rng.integers(1, layout.categorical[2].vocab_size))
        length = int(rng.integers(0, seq.max_len + 3))  # sometimes longer than max_len
        items = rng.integers(1, num_items, size=length)
        if length and rng.random() < 0.5:
            items[rng.integers(0, length)] = item
        logit = 2.5 * float(item in items) + (1.5 if ctx < 4 else -1.0) - 0.8
        click = int(rng.random() < 1 / (1 + np.exp(-logit)))
        like = int(click and rng.random() < 0.4) if rng.random() > 0.1 else -1
        feats = {
            cat_key("user_id"): _feature(user),
            cat_key("video_id"): _feature(item),
            cat_key("ctx"): _feature(ctx),
            seq_key(seq.name, "video_id"): _feature(items),
            seq_key(seq.name, "category"): _feature(items % 5 + 1),
            seq_key(seq.name, TIME_GAP): _feature(rng.integers(1, seq.time_gap_buckets, size=length)),
            label_key("click"): _feature(click),
            label_key("like"): _feature(like),
            USER_KEY: _feature(f"u{user}".encode()),
            EVENT_TIME: _feature(START_MS + day * DAY_MS + i),
        }
        out.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return out


def write_dataset(root: str, layout: FeatureLayout | None = None, days=(4, 1, 1),
                  rows_per_day: int = 256, seed: int = 0, files_per_day: int = 1) -> FeatureLayout:
    """Write train/valid/test daily partitions with ``_SUCCESS`` manifests; returns the layout."""
    import datetime

    from infnet_tf.partitions import manifest_text

    import tensorflow as tf

    layout = layout or tiny_layout()
    rng = np.random.default_rng(seed)
    day = 0
    for split, num_days in zip(("train", "valid", "test"), days):
        for _ in range(num_days):
            date = datetime.datetime.fromtimestamp((START_MS + day * DAY_MS) / 1000, datetime.timezone.utc)
            part = os.path.join(root, split, f"dt={date:%Y-%m-%d}")
            os.makedirs(part, exist_ok=True)
            examples = make_examples(layout, rows_per_day, rng, day)
            rows = {}
            for f in range(files_per_day):
                path = os.path.join(part, f"part-{f:05d}.tfrecord.gz")
                with tf.io.TFRecordWriter(path, options="GZIP") as w:
                    for ex in examples[f::files_per_day]:
                        w.write(ex)
                rows[os.path.basename(path)] = len(examples[f::files_per_day])
            with open(os.path.join(part, "_SUCCESS"), "w") as marker:   # the partition manifest
                marker.write(manifest_text(rows))
            day += 1
    return layout
