"""Time partitions under their former name (importers outside the library, users' code).

They live in :mod:`infnet_tf.data.partitions` (the directory layout in :mod:`infnet_tf.data.dataset_dir`).
"""
from __future__ import annotations

from infnet_tf.data.dataset_dir import DATA_FILE_GLOB, DATASET_FILE, SPLITS, SUCCESS  # noqa: F401
from infnet_tf.data.errors import DataError, PartitionError  # noqa: F401
from infnet_tf.data.fs import ensure_filesystem  # noqa: F401
from infnet_tf.data.partitions import (MANIFEST_FORMAT, MANIFEST_VERSION, Partition,  # noqa: F401
                                       PartitionManifest, list_partitions, manifest_text, split_files)
