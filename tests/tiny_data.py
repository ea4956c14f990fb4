"""The shared test fixtures of the data contract: tiny layouts, model configs, Example writers.

* :func:`tiny_layout` / :func:`multi_type_layout` — a one-behaviour layout with learnable data, and
  the model tests' layout (several behaviour types, shared tables, a projected embedding);
* :func:`tiny_model_config` — the tiny INFNet config (d=8, one block; ``SMALL_WIDTHS`` narrower);
* :func:`random_model_inputs` — random model inputs (numpy) for any layout;
* :func:`serialize_example` — one Example from per-key values (keys from :mod:`infnet_tf.data.keys`);
* :func:`write_partition` — GZIP TFRecord files + the ``_SUCCESS`` manifest of one partition;
* :func:`layout_only_artifact` — a transform artifact holding only a layout (no fitted transforms);
* :func:`write_dataset` — a tiny learnable dataset in the dataset job's output layout.

``write_dataset(root, ...)`` writes ``<root>/{train,valid,test}/dt=YYYY-MM-DD/part-00000.tfrecord.gz``
(+ a ``_SUCCESS`` manifest, see :mod:`infnet_tf.data.partitions`) with Examples that follow :mod:`infnet_tf.data.keys`. The ``click`` label is
learnable: likely when the impression's item appears in the user's click sequence or when the
context token is small; ``like`` is rarer and mostly follows click (``like`` is missing, -1, on
some rows to exercise label masking).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from infnet_tf.data import dataset_dir, keys
from infnet_tf.data.keys import EVENT_TIME, TIME_GAP, USER_KEY, cat_key, label_key, seq_key
from infnet_tf.data.layout import FeatureLayout, SequenceInput, TaskInput, TokenInput

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


def multi_type_layout(n_types: int = 2, max_len: int = 5, tasks=("click", "like")) -> FeatureLayout:
    """The model and layer tests' layout: ``n_types`` behaviour types sharing the item table, d=8-ish vocabularies."""
    item = TokenInput("video_id", 20, "video")
    cats = (TokenInput("user_id", 12, "user"), item,
            TokenInput("age_bucket", 6, "age", embedding_dim=4, ordinal=True))   # a binned number
    seqs = tuple(
        SequenceInput(f"type{b}", max_len, (TokenInput(f"s{b}_video", 20, "video"),
                                            TokenInput(f"s{b}_author", 9, "author")), time_gap_buckets=7)
        for b in range(n_types))
    return FeatureLayout(cats, seqs, tuple(TaskInput(t, 1.0) for t in tasks))


SMALL_WIDTHS = dict(n_cat_hubs=2, seq_hub_hidden=(8,), bgu_hidden=(8,), head_hidden=(8,))


def tiny_model_config(**changes):
    """The tiny INFNet config of the training and export tests (``changes`` override fields)."""
    from infnet_tf.models import ModelConfig

    base = dict(d=8, num_blocks=1, num_heads=2, n_cat_hubs=4, n_shared_task_hubs=2,
                cat_hub_hidden=(16,), head_hidden=(16,))
    return ModelConfig(**{**base, **changes})


def random_model_inputs(layout: FeatureLayout, n: int, seed: int = 0, *, with_missing: bool = True,
                        seq_len: int | None = None, lengths=None) -> dict[str, np.ndarray]:
    """Random int64 model inputs for ``n`` rows; sequences right-padded (id 0) after their real items.

    ``with_missing``: categorical ids and side-information ids may be 0 (missing; items never are);
    ``seq_len``: positions per sequence (default ``max_len``); ``lengths[b]``: the real items per row
    of behaviour type ``b`` (default random in ``0..seq_len``)."""
    rng = np.random.default_rng(seed)
    low = 0 if with_missing else 1
    out = {cat_key(f.name): rng.integers(low, f.vocab_size, n) for f in layout.categorical}
    for b, seq in enumerate(layout.sequences):
        steps = seq.max_len if seq_len is None else seq_len
        length = rng.integers(0, steps + 1, n) if lengths is None else np.asarray(lengths[b])
        real = np.arange(steps)[None, :] < length[:, None]
        for i, f in enumerate(seq.fields):
            out[seq_key(seq.name, f.name)] = rng.integers(1 if i == 0 else low, f.vocab_size, (n, steps)) * real
        out[seq_key(seq.name, TIME_GAP)] = rng.integers(1, seq.time_gap_buckets, (n, steps)) * real
        out[seq_key(seq.name, keys.LENGTH)] = length
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def serialize_example(layout: FeatureLayout, values: dict) -> bytes:
    """A serialized Example holding ``values[key]`` for every record key of ``layout`` (ids: an int or
    a list of ints; ``user_key``: bytes); a key missing from ``values`` is left out of the Example."""
    import tensorflow as tf

    feats = {}
    for key in keys.record_keys(layout):
        if key.name not in values:
            continue
        value = values[key.name]
        if key.kind == keys.STRING:
            feats[key.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            ints = [int(v) for v in np.atleast_1d(value)]
            feats[key.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=ints))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_partition(path: str, examples: list[bytes], files: int = 1) -> dict[str, int]:
    """``examples`` round-robin into ``files`` GZIP files ``part-0000i.tfrecord.gz`` under ``path``, then
    the ``_SUCCESS`` manifest; returns base name -> rows."""
    import tensorflow as tf

    from infnet_tf.data.partitions import manifest_text

    os.makedirs(path, exist_ok=True)
    rows = {}
    for f in range(files):
        name = f"part-{f:05d}{dataset_dir.DATA_FILE_SUFFIX}"
        with tf.io.TFRecordWriter(os.path.join(path, name), options="GZIP") as w:
            for ex in examples[f::files]:
                w.write(ex)
        rows[name] = len(examples[f::files])
    with open(os.path.join(path, dataset_dir.SUCCESS), "w") as marker:
        marker.write(manifest_text(rows))
    return rows


def layout_only_artifact(layout: FeatureLayout, spec_fingerprint: str = ""):
    """A :class:`~infnet_tf.transform.TransformArtifact` with ``layout`` and no fitted transforms."""
    from infnet_tf.transform import TransformArtifact

    return TransformArtifact(spec_name="tiny", spec_fingerprint=spec_fingerprint, token_names=[], categorical={},
                             dense={}, counters={}, time_gap={}, split={}, stats={}, layout=layout.to_dict())


def write_data_with_artifact(root: str, **kwargs) -> FeatureLayout:
    """:func:`write_dataset` plus ``transform/transform_artifact.json`` (:func:`layout_only_artifact`)."""
    from infnet_tf.data.dataset_dir import artifact_path

    layout = write_dataset(root, **kwargs)
    layout_only_artifact(layout).save(artifact_path(root))
    return layout


def make_examples(layout: FeatureLayout, n: int, rng: np.random.Generator, day: int) -> list[bytes]:
    """``n`` serialized Examples for one day; labels learnable from item-in-sequence and ctx."""
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
        like = int(click and rng.random() < 0.4) if rng.random() > 0.1 else keys.MISSING_LABEL
        out.append(serialize_example(layout, {
            cat_key("user_id"): user,
            cat_key("video_id"): item,
            cat_key("ctx"): ctx,
            seq_key(seq.name, "video_id"): items,
            seq_key(seq.name, "category"): items % 5 + 1,
            seq_key(seq.name, TIME_GAP): rng.integers(1, seq.time_gap_buckets, size=length),
            label_key("click"): click,
            label_key("like"): like,
            USER_KEY: f"u{user}".encode(),
            EVENT_TIME: START_MS + day * DAY_MS + i,
        }))
    return out


def write_dataset(root: str, layout: FeatureLayout | None = None, days=(4, 1, 1),
                  rows_per_day: int | Sequence[int] = 256, seed: int = 0, files_per_day: int = 1) -> FeatureLayout:
    """Write train/valid/test daily partitions with ``_SUCCESS`` manifests; returns the layout.
    ``rows_per_day``: one count for every day, or one per day in time order (train, valid, test)."""
    import datetime

    layout = layout or tiny_layout()
    rng = np.random.default_rng(seed)
    day = 0
    for split, num_days in zip(dataset_dir.SPLITS, days):
        for _ in range(num_days):
            date = datetime.datetime.fromtimestamp((START_MS + day * DAY_MS) / 1000, datetime.timezone.utc)
            rows = rows_per_day if isinstance(rows_per_day, int) else rows_per_day[day]
            examples = make_examples(layout, rows, rng, day)
            write_partition(os.path.join(root, split, dataset_dir.partition_key(date)), examples, files_per_day)
            day += 1
    return layout
