"""The dataset directory layout the Beam job writes and every reader reads::

    <data>/transform/transform_artifact.json         the transform artifact (:mod:`infnet_tf.data.artifact`)
    <data>/<split>/dt=YYYY-MM-DD[/hr=HH]/             one time partition of a split (train, valid, test)
        part-<shard>-of-<num_shards>.tfrecord.gz      GZIP tf.train.Examples (:mod:`infnet_tf.data.keys`)
        _SUCCESS                                      written last: the partition's manifest
    <data>/rejects/<name>.jsonl                       rejected rows with their reason
    <data>/_DATASET.json                              counts per split/partition, files, the job's settings

Partitions and their manifests are read by :mod:`infnet_tf.data.partitions`.
"""
from __future__ import annotations

import datetime as dt
import re

from infnet_tf.data import fs

SPLITS = ("train", "valid", "test")
ARTIFACT_RELPATH = "transform/transform_artifact.json"
SUCCESS = "_SUCCESS"
DATASET_FILE = "_DATASET.json"
REJECTS_DIR = "rejects"
DATA_FILE_SUFFIX = ".tfrecord.gz"
DATA_FILE_GLOB = f"part-*{DATA_FILE_SUFFIX}"
DATA_FILE_PATTERN = f"*{DATA_FILE_SUFFIX}"  # data files of a plain (unpartitioned) directory
PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})(?:/hr=(\d{2}))?$")


def artifact_path(data_dir_or_artifact: str) -> str:
    """``<data>/transform/transform_artifact.json``, or the path itself when it names a JSON file."""
    if data_dir_or_artifact.endswith(".json"):
        return data_dir_or_artifact
    return fs.join(data_dir_or_artifact, ARTIFACT_RELPATH)


def partition_key(when: dt.datetime, hourly: bool = False) -> str:
    """``dt=YYYY-MM-DD`` (daily) or ``dt=YYYY-MM-DD/hr=HH`` (hourly) of a (local) wall-clock time."""
    name = f"dt={when:%Y-%m-%d}"
    return f"{name}/hr={when:%H}" if hourly else name


def split_dir(root: str, split: str) -> str:
    return fs.join(root, split)


def data_file_name(shard: int, num_shards: int) -> str:
    """``part-<shard>-of-<num_shards>.tfrecord.gz`` (deterministic: a retried shard overwrites its file)."""
    return f"part-{int(shard):05d}-of-{int(num_shards):05d}{DATA_FILE_SUFFIX}"


def data_file_relpath(split: str, partition: str, shard: int, num_shards: int) -> str:
    """``<split>/<partition>/part-…`` relative to the dataset root (as listed in ``_DATASET.json``)."""
    return f"{split}/{partition}/{data_file_name(shard, num_shards)}"


def rejects_relpath(name: str) -> str:
    return f"{REJECTS_DIR}/{name}.jsonl"
