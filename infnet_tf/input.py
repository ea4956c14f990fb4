"""The one tf.data input function: GZIP TFRecord partitions -> batched ``(features, labels)``.

Training, evaluation, streaming, benchmarks and export warmup all read data through
:func:`make_dataset`, so every consumer sees exactly the same tensors:

* ``features``: the model inputs of :meth:`FeatureLayout.model_input_keys` (sequences right-padded
  to ``max_len`` with a ``length``), plus — with ``with_meta`` — ``user_key`` (string) and
  ``event_time_ms`` (int64) for GAUC and logging; models ignore keys they do not use;
* ``labels``: ``{task: int64 [B]}``, 0/1 or -1 for a missing label.

Pipeline: file list -> (shuffle files) -> interleave GZIP TFRecord readers -> (shuffle records) ->
batch -> vectorised ``tf.io.parse_example`` + :func:`densify_sequences` -> prefetch. Parsing a whole
batch at once is several times faster than parsing Example by Example.

Local paths and ``s3://``/``hdfs://`` (through tensorflow-io, see :func:`ensure_filesystem`).
"""
from __future__ import annotations

import json
from typing import Sequence

from infnet_tf.features import (EVENT_TIME, USER_KEY, FeatureLayout, densify_sequences, parsing_spec,
                                split_labels)
from infnet_tf.partitions import ensure_filesystem, list_partitions

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
META_KEYS = (USER_KEY, EVENT_TIME)
ARTIFACT_RELPATH = "transform/transform_artifact.json"
DATA_FILE_PATTERN = "*.tfrecord.gz"


# -- where the data and the layout are --------------------------------------------------------
def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


def artifact_path(data_dir_or_artifact: str) -> str:
    """``<data>/transform/transform_artifact.json``, or the path itself when it names a JSON file."""
    if data_dir_or_artifact.endswith(".json"):
        return data_dir_or_artifact
    return _join(data_dir_or_artifact, ARTIFACT_RELPATH)


def load_artifact(data_dir_or_artifact: str) -> dict:
    """The dataset job's transform artifact (a JSON object)."""
    path = artifact_path(data_dir_or_artifact)
    ensure_filesystem(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"no transform artifact at {path}: --data must be the dataset job's output directory "
            f"(holding {ARTIFACT_RELPATH}) or the artifact JSON itself")
    with tf.io.gfile.GFile(path) as f:
        try:
            artifact = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"transform artifact {path} is not valid JSON: {exc}") from exc
    if not isinstance(artifact, dict) or "layout" not in artifact:
        raise ValueError(f"transform artifact {path} has no \"layout\" entry (the model-input layout)")
    return artifact


def load_layout(data_dir_or_artifact: str) -> FeatureLayout:
    """The :class:`FeatureLayout` stored in the transform artifact under ``"layout"``."""
    return FeatureLayout.from_dict(load_artifact(data_dir_or_artifact)["layout"])


def resolve_files(files_or_pattern: str | Sequence[str]) -> list[str]:
    """Data files for a file list, a glob pattern, a single file, or a directory.

    A directory holding time partitions yields the files of its complete (``_SUCCESS``) partitions
    in time order; any other directory yields its ``*.tfrecord.gz`` files. Raises
    ``FileNotFoundError`` naming the path when nothing is found.
    """
    if isinstance(files_or_pattern, (list, tuple)):
        files = [str(f) for f in files_or_pattern]
        if not files:
            raise FileNotFoundError("make_dataset: the file list is empty (no data files to read)")
        ensure_filesystem(files[0])
        return files
    path = str(files_or_pattern)
    ensure_filesystem(path)
    if tf.io.gfile.isdir(path):
        partitions = list_partitions(path)
        if partitions:
            files = [f for p in partitions for f in p.files()]
        else:
            files = sorted(tf.io.gfile.glob(_join(path, DATA_FILE_PATTERN)))
    else:
        files = sorted(tf.io.gfile.glob(path))
    if not files:
        raise FileNotFoundError(
            f"no data files at {path} (expected *.tfrecord.gz files, or complete dt=... partitions "
            f"with a _SUCCESS marker)")
    return files


# -- the dataset -------------------------------------------------------------------------------
def parse_batch(layout: FeatureLayout, serialized: tf.Tensor, with_meta: bool = True) -> tuple[dict, dict]:
    """A batch of serialized Examples -> ``(features, labels)`` (the parsing used everywhere)."""
    parsed = tf.io.parse_example(serialized, parsing_spec(layout, with_labels=True, with_meta=with_meta))
    return split_labels(layout, densify_sequences(layout, parsed))


def make_dataset(files_or_pattern: str | Sequence[str], layout: FeatureLayout, batch_size: int, *,
                 shuffle: bool, repeat: bool, deterministic: bool, num_parallel: int = AUTOTUNE,
                 drop_remainder: bool = False, with_meta: bool = True, seed: int | None = 0,
                 shuffle_buffer: int | None = None, cycle_length: int | None = None) -> tf.data.Dataset:
    """Batched ``(features, labels)`` from GZIP TFRecords (see the module docstring).

    Args:
      files_or_pattern: file list, glob pattern, file, or directory (see :func:`resolve_files`).
      batch_size: examples per batch (the *global* batch under a distribution strategy).
      shuffle: shuffle file order and records (buffer ``shuffle_buffer``, default 4 batches).
      repeat: repeat forever (file order reshuffled every pass when ``shuffle``).
      deterministic: same order on every run (seeded shuffles, ordered interleave and map);
        otherwise elements are yielded as soon as ready, which is faster.
      num_parallel: parallelism of the interleave and the parsing map.
      with_meta: include ``user_key`` and ``event_time_ms`` in the features.
      seed: shuffle seed (used when ``deterministic``; None draws one).
    """
    if batch_size < 1:
        raise ValueError(f"make_dataset: batch_size must be >= 1, got {batch_size}")
    files = resolve_files(files_or_pattern)
    seed = seed if deterministic else None
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP", buffer_size=1 << 20),
        cycle_length=cycle_length or min(len(files), 8),
        block_length=1,
        num_parallel_calls=num_parallel,
        deterministic=deterministic)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer or 4 * batch_size, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda s: parse_batch(layout, s, with_meta), num_parallel_calls=num_parallel,
                deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


def model_inputs(layout: FeatureLayout, features: dict) -> dict:
    """Only the model's input tensors (drops meta such as the string ``user_key``)."""
    return {k: features[k] for k in layout.model_input_keys()}

