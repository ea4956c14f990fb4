"""The one tf.data input function: GZIP TFRecord partitions -> batched ``(features, labels)``.

Training, evaluation, streaming, benchmarks and export warmup all read data through
:func:`make_dataset`, so every consumer sees exactly the same tensors:

* ``features``: the model inputs of :meth:`FeatureLayout.model_input_keys` (sequences right-padded
  to ``max_len`` with a ``length``), plus — with ``with_meta`` — ``user_key`` (string) and
  ``event_time_ms`` (int64) for GAUC and logging; models ignore keys they do not use;
* ``labels``: ``{task: int64 [B]}``, 0/1 or -1 for a missing label.

Pipeline: file list -> (shuffle files) -> interleave GZIP TFRecord readers -> (shuffle records) ->
batch -> vectorised ``tf.io.parse_example`` + :func:`densify_sequences` -> prefetch (tf.data's autotuning model
off: :data:`TF_DATA_AUTOTUNE`). Parsing a whole batch at once is several times faster than parsing
Example by Example.

Local paths and ``s3://``/``hdfs://`` (through tensorflow-io, see :func:`infnet_tf.data.fs.ensure_filesystem`).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Sequence

from infnet_tf.data import fs
from infnet_tf.data.artifact import probe_endpoint
from infnet_tf.data.dataset_dir import DATA_FILE_PATTERN
from infnet_tf.data.errors import DataFileError, PartitionError
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.data.partitions import Partition, list_partitions
from infnet_tf.data.tensors import densify_sequences, parsing_spec, split_labels

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
# tf.data's autotuning model (``Options.autotune.enabled``), off. Its optimisation thread sleeps for
# periods that double (10 ms, 20 ms, ... up to a minute), and in TensorFlow 2.16 deleting an iterator
# sometimes waits for that thread's next wake-up, with every core idle: measured on 2 cores, one
# pass in 2–4 over the bundled sample (168 steps, ~11 s) ended with a 7.5–9 s stall in the iterator's
# deletion, and shorter passes (evaluation, 20-step epochs) lose up to their own length. Without the
# model, ``AUTOTUNE`` parallelism is min(16, cores) for the interleave and the parsing map and the
# prefetch buffer keeps its own (legacy) tuning: the same throughput, no stalls (bench/REPORT.md,
# twenty-fifth session).
TF_DATA_AUTOTUNE = False


def resolve_files(files_or_pattern: str | Sequence[str]) -> list[str]:
    """Data files for a file list, a glob pattern, a single file, or a directory.

    A directory holding time partitions yields the files of its complete (``_SUCCESS``) partitions
    in time order, each checked against its manifest (:meth:`Partition.verified_files`, which raises
    :class:`~infnet_tf.data.errors.PartitionError` for a partial partition); any other directory
    yields its ``*.tfrecord.gz`` files. Raises ``FileNotFoundError`` naming the path when nothing is
    found.
    """
    if isinstance(files_or_pattern, (list, tuple)):
        files = [str(f) for f in files_or_pattern]
        if not files:
            raise FileNotFoundError("make_dataset: the file list is empty (no data files to read)")
        fs.ensure_filesystem(files[0])
        return files
    path = str(files_or_pattern)
    fs.ensure_filesystem(path)
    if tf.io.gfile.isdir(path):
        partitions = list_partitions(path)
        if partitions:
            files = [f for p in partitions for f in p.verified_files()]
        else:
            files = sorted(tf.io.gfile.glob(fs.join(path, DATA_FILE_PATTERN)))
    else:
        files = sorted(tf.io.gfile.glob(path))
    if not files:
        probe_endpoint(path)
        raise FileNotFoundError(
            f"no data files at {path} (expected *.tfrecord.gz files, or complete dt=... partitions "
            f"with a _SUCCESS marker)")
    return files


def expected_rows(files_or_pattern: str | Sequence[str]) -> int | None:
    """Rows the manifests promise for a directory of partitions (None when unknown: a file list, a
    pattern, or a partition without a manifest)."""
    if isinstance(files_or_pattern, (list, tuple)) or not tf.io.gfile.isdir(str(files_or_pattern)):
        return None
    total = 0
    for part in list_partitions(str(files_or_pattern)):
        rows = part.expected_rows()
        if rows is None or rows < 0:
            return None
        total += rows
    return total


def check_rows(files_or_pattern: str | Sequence[str], read: int, what: str) -> None:
    """Raise :class:`~infnet_tf.data.errors.PartitionError` when a full pass over a directory read a
    different number of examples than its partitions' manifests record."""
    expected = expected_rows(files_or_pattern)
    if expected is not None and int(read) != expected:
        raise PartitionError(f"{what} {files_or_pattern}: read {int(read):,} examples but the partition "
                             f"manifests record {expected:,} rows (a data file is truncated or was replaced)")


def find_unreadable_file(files: Sequence[str]) -> tuple[str, int, str] | None:
    """(file, records read before the failure, error) of the first file that cannot be read to the end."""
    for f in files:
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(f, compression_type="GZIP", buffer_size=1 << 20):
                count += 1
        except tf.errors.OpError as exc:
            return f, count, (exc.message or str(exc)).splitlines()[0]
    return None


@contextlib.contextmanager
def naming_bad_files(files_or_pattern: str | Sequence[str] | Partition, what: str = "reading") -> Iterator[None]:
    """Turn a ``DataLossError`` (which names no file) raised while iterating a dataset read from
    ``files_or_pattern`` into a :class:`DataFileError` naming the corrupt or truncated file."""
    try:
        yield
    except tf.errors.DataLossError as exc:
        if isinstance(files_or_pattern, Partition):
            files = files_or_pattern.files()
        else:
            files = resolve_files(files_or_pattern)
        found = find_unreadable_file(files)
        detail = (exc.message or str(exc)).splitlines()[0]
        if found is None:
            raise DataFileError(f"{what}: a data file of {files_or_pattern} is unreadable ({detail})") from exc
        path, count, error = found
        raise DataFileError(f"{what}: {path} is corrupt or truncated after {count:,} records ({error}); "
                            f"rebuild that partition (or remove it with its _SUCCESS) and rerun") from exc


# -- the dataset -------------------------------------------------------------------------------
def parse_batch(layout: FeatureLayout, serialized: tf.Tensor, with_meta: bool = True) -> tuple[dict, dict]:
    """A batch of serialized Examples -> ``(features, labels)`` (the parsing used everywhere)."""
    parsed = tf.io.parse_example(serialized, parsing_spec(layout, with_labels=True, with_meta=with_meta))
    return split_labels(layout, densify_sequences(layout, parsed))


@functools.lru_cache(maxsize=16)
def batch_parser(layout: FeatureLayout, with_meta: bool = True) -> tf.types.experimental.GenericFunction:
    """:func:`parse_batch` as one ``tf.function`` per (layout, with_meta), shared by every dataset
    this process builds: tf.data traces a ``map`` function anew for every dataset, and tracing the
    parser (hundreds of parsing and densifying ops) took ~0.2 s per dataset on our CPUs -- twice per
    batch-mode epoch (train and valid), a sixth of an epoch of a 20k-row log. Nested in a dataset's map,
    the traced function is reused (one trace per distinct batch shape, e.g. full and open)."""
    return tf.function(lambda serialized: parse_batch(layout, serialized, with_meta), autograph=False,
                       reduce_retracing=True)


def input_options() -> tf.data.Options:
    """The tf.data options every input pipeline starts from (:data:`TF_DATA_AUTOTUNE`)."""
    options = tf.data.Options()
    options.autotune.enabled = TF_DATA_AUTOTUNE
    return options


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
    ds = ds.map(batch_parser(layout, with_meta), num_parallel_calls=num_parallel, deterministic=deterministic)
    options = input_options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


STRING_ROW_BYTES = 64   # row_bytes: what a string value (user_key) is counted as


def row_bytes(element_spec) -> int:
    """Bytes one row of a batched ``element_spec`` holds in memory (the padded shapes; a string value
    counted as :data:`STRING_ROW_BYTES`): how large a dataset of known rows is once parsed."""
    total = 0
    for spec in tf.nest.flatten(element_spec):
        values = spec.shape[1:].num_elements()
        if values is None:
            raise ValueError(f"row_bytes: {spec} has an unknown dimension after the batch")
        total += values * (STRING_ROW_BYTES if spec.dtype == tf.string else spec.dtype.size)
    return total


def model_inputs(layout: FeatureLayout, features: dict) -> dict:
    """Only the model's input tensors (drops meta such as the string ``user_key``)."""
    return {k: features[k] for k in layout.model_input_keys()}

