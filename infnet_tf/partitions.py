"""Time partitions of a dataset split: ``<root>/<split>/dt=YYYY-MM-DD[/hr=HH]/part-*.tfrecord.gz``.

A partition is complete only once its ``_SUCCESS`` marker exists; readers never read one without
it. Works for local paths and, through ``tf.io.gfile``, for ``s3://``/``hdfs://`` (tensorflow-io's
filesystems are registered by :func:`ensure_filesystem`).
"""
from __future__ import annotations

import dataclasses
import re

SUCCESS = "_SUCCESS"
SPLITS = ("train", "valid", "test")
_PART_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})(?:/hr=(\d{2}))?$")


def ensure_filesystem(path: str) -> None:
    """Register tensorflow-io's object-store filesystems when ``path`` needs them."""
    if "://" in path and not path.startswith(("gs://", "file://")):
        import tensorflow_io  # noqa: F401  (registers s3:// and hdfs://)


@dataclasses.dataclass(frozen=True, order=True)
class Partition:
    """One complete time partition; orders by time."""

    key: str  # "dt=2026-10-01" or "dt=2026-10-01/hr=07"
    path: str

    def files(self) -> list[str]:
        import tensorflow as tf

        return sorted(tf.io.gfile.glob(f"{self.path}/part-*.tfrecord.gz"))


def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


def list_partitions(split_dir: str, include_incomplete: bool = False) -> list[Partition]:
    """Complete partitions under ``split_dir`` in time order (daily or hourly layout)."""
    import tensorflow as tf

    ensure_filesystem(split_dir)
    if not tf.io.gfile.isdir(split_dir):
        return []
    found: list[Partition] = []
    for day in sorted(tf.io.gfile.listdir(split_dir)):
        day = day.rstrip("/")
        if not _PART_RE.match(day):
            continue
        day_dir = _join(split_dir, day)
        hours = [h.rstrip("/") for h in tf.io.gfile.listdir(day_dir) if h.startswith("hr=")]
        candidates = [(f"{day}/{h}", _join(day_dir, h)) for h in sorted(hours)] or [(day, day_dir)]
        for key, path in candidates:
            if include_incomplete or tf.io.gfile.exists(_join(path, SUCCESS)):
                found.append(Partition(key=key, path=path))
    return found


def split_files(root: str, split: str) -> list[str]:
    """All data files of the complete partitions of ``<root>/<split>``, in time order."""
    files: list[str] = []
    for part in list_partitions(_join(root, split)):
        files.extend(part.files())
    return files
