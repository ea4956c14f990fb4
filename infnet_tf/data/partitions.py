"""Time partitions of a dataset split: ``<root>/<split>/dt=YYYY-MM-DD[/hr=HH]/part-*.tfrecord.gz``.

A partition is complete only once its ``_SUCCESS`` marker exists; readers never read one without
it. The marker is also the partition's **manifest**: the dataset job writes into it the JSON object

    {"format": "infnet.partition", "version": 1, "rows": 1234,
     "files": {"part-00000-of-00004.tfrecord.gz": 600, "part-00001-of-00004.tfrecord.gz": 634}}

(every data file of the partition with its row count). Before using a partition every reader
(batch, streaming, evaluation, export gate) calls :meth:`Partition.verified_files`, which refuses
with :class:`PartitionError` naming the partition and the file when a listed file is missing or a
file not listed is present, and the trainers compare the examples they read with ``rows``
(:meth:`Partition.check_rows`). An empty marker (an external producer, or a dataset written before
manifests) falls back to the dataset's ``_DATASET.json`` when that lists the partition; with neither,
the files present are used, but a partition with *no* data file is refused (a marker written before
its files is not a complete partition).

Works for local paths and, through ``tf.io.gfile``, for ``s3://``/``hdfs://`` (tensorflow-io's
filesystems are registered by :func:`infnet_tf.data.fs.ensure_filesystem`). The directory layout
is in :mod:`infnet_tf.data.dataset_dir`.
"""
from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Mapping

from infnet_tf.data import fs
from infnet_tf.data.dataset_dir import DATA_FILE_GLOB, DATASET_FILE, PARTITION_RE, SUCCESS
from infnet_tf.data.errors import PartitionError

MANIFEST_FORMAT = "infnet.partition"
MANIFEST_VERSION = 1


# -- the manifest ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PartitionManifest:
    """What a complete partition holds: data file base names -> rows (see the module docstring)."""

    files: Mapping[str, int]              # base name -> rows (-1: unknown, see declared_rows)
    source: str = SUCCESS                 # where it was read from (for messages)
    declared_rows: int | None = None      # total rows when per-file counts are unknown

    @property
    def rows(self) -> int:
        if self.declared_rows is not None:
            return int(self.declared_rows)
        return int(sum(self.files.values()))

    def to_json(self) -> str:
        return json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "rows": self.rows,
                           "files": dict(sorted((k, int(v)) for k, v in self.files.items()))}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> "PartitionManifest | None":
        """The manifest in a marker's text; None for an empty (legacy / external) marker."""
        if not text.strip():
            return None
        try:
            obj = json.loads(text)
            files = obj["files"]
            if obj.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
                raise ValueError("not an infnet partition manifest")
            parsed = {str(k): int(v) for k, v in files.items()}
            if "rows" in obj and int(obj["rows"]) != sum(parsed.values()):
                raise ValueError(f"rows {obj['rows']} != sum of the files' rows {sum(parsed.values())}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PartitionError(f"{where}: unreadable partition manifest ({exc})") from exc
        return cls(files=parsed, source=where)


def manifest_text(files: Mapping[str, int]) -> str:
    """The ``_SUCCESS`` text for a partition holding ``files`` (base name -> rows); writers use this."""
    return PartitionManifest(files=dict(files)).to_json()


def _dataset_manifest(split_dir: str, key: str) -> PartitionManifest | None:
    """The partition's entry in ``<root>/_DATASET.json`` (files and rows), if the dataset has one."""
    root, split = posixpath.split(split_dir.rstrip("/"))
    path = fs.join(root, DATASET_FILE)
    if not root or not fs.exists(path):
        return None
    try:
        summary = json.loads(fs.read_text(path))
    except ValueError as exc:
        raise PartitionError(f"{path}: not valid JSON ({exc})") from exc
    entry = next((p for p in summary.get("partitions", {}).get(split, []) if p.get("partition") == key), None)
    if entry is None:
        return None
    prefix = f"{split}/{key}/"
    names = [f[len(prefix):] for f in summary.get("files", []) if f.startswith(prefix)]
    if len(names) != int(entry.get("files", len(names))):
        raise PartitionError(f"{path}: lists {len(names)} files under {prefix} but counts {entry.get('files')}")
    # _DATASET.json has rows per partition, not per file: the per-file counts are unknown (-1)
    return PartitionManifest(files={n: -1 for n in names}, source=path, declared_rows=int(entry.get("rows", -1)))


# -- partitions --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, order=True)
class Partition:
    """One complete time partition; orders by time."""

    key: str  # "dt=2026-10-01" or "dt=2026-10-01/hr=07"
    path: str

    @property
    def split_dir(self) -> str:
        return self.path[: -len(self.key)].rstrip("/")

    def files(self) -> list[str]:
        """The data files present (no check; see :meth:`verified_files`)."""
        return fs.glob(fs.join(self.path, DATA_FILE_GLOB))

    def manifest(self) -> PartitionManifest | None:
        """The manifest in ``_SUCCESS``, else the partition's ``_DATASET.json`` entry, else None."""
        marker = fs.join(self.path, SUCCESS)
        found = PartitionManifest.from_json(fs.read_text(marker), marker)
        return found if found is not None else _dataset_manifest(self.split_dir, self.key)

    def expected_rows(self) -> int | None:
        """Rows the manifest promises (None when there is no manifest)."""
        manifest = self.manifest()
        return None if manifest is None else manifest.rows

    def verified_files(self) -> list[str]:
        """The partition's data files, checked against its manifest (see :meth:`verify`)."""
        return self.verify()[0]

    def verify(self) -> tuple[list[str], PartitionManifest | None]:
        """(data files, manifest or None), the files checked against the manifest (one read of it).

        Raises :class:`PartitionError` naming the partition and the file when a listed file is
        missing, a file not listed is present, or the partition holds no data file at all although
        rows are expected (or nothing says it is empty).
        """
        present = {posixpath.basename(f): f for f in self.files()}
        manifest = self.manifest()
        if manifest is None:
            if not present:
                raise PartitionError(
                    f"{self.path}: marked complete ({SUCCESS}) but holds no data file; refusing to treat it "
                    f"as trained/evaluated (write the files before the marker)")
            return [present[k] for k in sorted(present)], None
        missing = sorted(set(manifest.files) - set(present))
        if missing:
            raise PartitionError(
                f"{self.path}: {len(missing)} of {len(manifest.files)} data file(s) listed in {manifest.source} "
                f"are missing, e.g. {fs.join(self.path, missing[0])}; refusing to read a partial partition")
        extra = sorted(set(present) - set(manifest.files))
        if extra:
            raise PartitionError(
                f"{self.path}: data file {fs.join(self.path, extra[0])} is not listed in {manifest.source} "
                f"({len(extra)} unlisted); refusing to read a partition that does not match its manifest")
        return [present[k] for k in sorted(manifest.files)], manifest

    def check_rows(self, read: int, expected: int | None = None) -> None:
        """Raise :class:`PartitionError` when ``read`` examples differ from the manifest's rows
        (``expected``: the count already read from the manifest; None reads it)."""
        expected = self.expected_rows() if expected is None else expected
        if expected is not None and expected >= 0 and int(read) != expected:
            raise PartitionError(
                f"{self.path}: read {int(read):,} examples but its manifest records {expected:,} rows "
                f"(a data file is truncated or was replaced)")


def list_partitions(split_dir: str, include_incomplete: bool = False) -> list[Partition]:
    """Complete partitions under ``split_dir`` in time order (daily or hourly layout)."""
    if not fs.isdir(split_dir):
        return []
    found: list[Partition] = []
    for day in sorted(fs.listdir(split_dir)):
        day = day.rstrip("/")
        if not PARTITION_RE.match(day):
            continue
        day_dir = fs.join(split_dir, day)
        hours = [h for h in fs.listdir(day_dir) if h.startswith("hr=")]
        candidates = [(f"{day}/{h}", fs.join(day_dir, h)) for h in sorted(hours)] or [(day, day_dir)]
        for key, path in candidates:
            if include_incomplete or fs.exists(fs.join(path, SUCCESS)):
                found.append(Partition(key=key, path=path))
    return found


def split_files(root: str, split: str) -> list[str]:
    """All data files of the complete partitions of ``<root>/<split>``, in time order, verified."""
    files: list[str] = []
    for part in list_partitions(fs.join(root, split)):
        files.extend(part.verified_files())
    return files
