"""The one way to read the transform artifact: :func:`load` -> a typed
:class:`~infnet_tf.transform.TransformArtifact` (boundaries, vocabularies, stats, the layout), and
the typed views of its per-token entries (:class:`CategoricalTransform`, :class:`BinnedTransform`,
:class:`TimeGapTransform`) that every reader of the fitted transforms uses instead of string keys.

The dataset job writes it to ``<data>/transform/transform_artifact.json``
(:data:`infnet_tf.data.dataset_dir.ARTIFACT_RELPATH`); training, export, benchmarks and tests load it
from the data directory or from the JSON file itself, locally or on an object store.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from infnet_tf.data import fs
from infnet_tf.data.dataset_dir import ARTIFACT_RELPATH, artifact_path
from infnet_tf.data.errors import StorageUnreachableError
from infnet_tf.data.layout import FeatureLayout

if TYPE_CHECKING:
    from infnet_tf.transform import TransformArtifact


VOCABULARY = "vocabulary"
HASH = "hash"


@dataclasses.dataclass(frozen=True)
class CategoricalTransform:
    """A categorical token: vocabulary ids ``1..len(values)`` then ``oov_buckets`` OOV ids, or
    ``hash_buckets`` hashed ids; id 0 is null. ``dtype``: the vocabulary's key type (int64 | string);
    ``raw_dtype``: the raw column's type when it differs (None: as ``dtype``)."""

    kind: str
    vocab_size: int
    dtype: str = "string"
    values: Sequence[Any] = ()
    oov_buckets: int = 0
    hash_buckets: int = 0
    raw_dtype: str | None = None

    @property
    def is_hash(self) -> bool:
        return self.kind == HASH

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "CategoricalTransform":
        return cls(kind=entry["kind"], vocab_size=int(entry["vocab_size"]), dtype=entry.get("dtype") or "string",
                   values=entry.get("values", ()), oov_buckets=int(entry.get("oov_buckets", 0)),
                   hash_buckets=int(entry.get("hash_buckets", 0)), raw_dtype=entry.get("raw_dtype"))


@dataclasses.dataclass(frozen=True)
class BinnedTransform:
    """A dense field or counter feature: ids by ``boundaries`` (id 0 null)."""

    boundaries: Sequence[float]
    vocab_size: int

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "BinnedTransform":
        return cls(boundaries=entry["boundaries"], vocab_size=int(entry["vocab_size"]))


@dataclasses.dataclass(frozen=True)
class TimeGapTransform:
    """A behaviour type's time-gap buckets: ids by ``boundaries_ms`` (gaps in ms)."""

    boundaries_ms: Sequence[int]
    unit_ms: int
    num_buckets: int

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "TimeGapTransform":
        return cls(boundaries_ms=entry["boundaries_ms"], unit_ms=int(entry["unit_ms"]),
                   num_buckets=int(entry["num_buckets"]))


def probe_endpoint(path: str, timeout_s: float = 5.0) -> None:
    """For an ``s3://`` path: one TCP connect to ``S3_ENDPOINT``, raising :class:`StorageUnreachableError`
    when nobody answers. tensorflow-io retries for about a minute and then answers "does not exist"
    for an unreachable endpoint, which would read as a missing file; this says so in seconds."""
    import socket
    import urllib.parse

    endpoint = os.environ.get("S3_ENDPOINT", "")
    if not path.startswith("s3://") or not endpoint:
        return
    url = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "localhost", port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise StorageUnreachableError(f"cannot reach the S3 endpoint S3_ENDPOINT={endpoint} ({exc}) while "
                                      f"reading {path}; check that the object store is up and the "
                                      f"endpoint (with http:// or https://) is right") from None


def load(data_dir_or_artifact: str) -> "TransformArtifact":
    """The dataset job's transform artifact, from ``<data>`` or the artifact JSON itself.

    Raises ``FileNotFoundError`` (no artifact there), ``ValueError`` (not JSON, or not a transform
    artifact of the version this code reads) and :class:`StorageUnreachableError`, each naming the path.
    """
    from infnet_tf.transform import TransformArtifact

    path = artifact_path(data_dir_or_artifact)
    probe_endpoint(path)
    if not fs.exists(path):
        raise FileNotFoundError(
            f"no transform artifact at {path}: --data must be the dataset job's output directory "
            f"(holding {ARTIFACT_RELPATH}) or the artifact JSON itself")
    try:
        obj = json.loads(fs.read_text(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"transform artifact {path} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict) or "layout" not in obj:
        raise ValueError(f"transform artifact {path} has no \"layout\" entry (the model-input layout)")
    try:
        return TransformArtifact.from_dict(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"transform artifact {path}: {exc}") from exc


def load_layout(data_dir_or_artifact: str) -> FeatureLayout:
    """The :class:`FeatureLayout` stored in the transform artifact."""
    return load(data_dir_or_artifact).feature_layout
