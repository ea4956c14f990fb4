"""The one filesystem helper: paths and small files on local disks, ``s3://``, ``hdfs://``, ``gs://``.

Local paths go through ``os`` (no TensorFlow import, so light processes such as Beam workers and
CLI ``--help`` stay light); any ``scheme://`` path goes through ``tf.io.gfile``, whose ``s3://`` and
``hdfs://`` filesystems tensorflow-io registers (:func:`ensure_filesystem`, called here on first use).

:func:`write_text` is atomic on local disks (temporary name, then ``os.replace``): a reader polling
the file (TF Serving reading its configs, a trainer reading a manifest) never sees half of it.
Object stores have no rename; there the object appears whole when its upload completes.
"""
from __future__ import annotations

import os
import shutil
import uuid


def is_remote(path: str) -> bool:
    """True for a ``scheme://`` path other than ``file://`` (read through ``tf.io.gfile``)."""
    return "://" in path and not path.startswith("file://")


def join(*parts: str) -> str:
    """Join path parts with ``/`` (for every scheme); empty parts are skipped, the first part's
    leading ``/`` and ``scheme://`` are kept."""
    out = ""
    for part in parts:
        if not part:
            continue
        out = part if not out else f"{out.rstrip('/')}/{part.lstrip('/')}"
    return out


def ensure_filesystem(path: str) -> None:
    """Register tensorflow-io's object-store filesystems when ``path`` needs them."""
    if "://" in path and not path.startswith(("gs://", "file://")):
        import tensorflow_io  # noqa: F401  (registers s3:// and hdfs://)


def gfile():
    """``tf.io.gfile`` (TensorFlow imported lazily, after ``infnet_tf`` chose Keras 2)."""
    import infnet_tf.env  # noqa: F401
    import tensorflow as tf

    return tf.io.gfile


def _remote_gfile(path: str):
    ensure_filesystem(path)
    return gfile()


def exists(path: str) -> bool:
    return _remote_gfile(path).exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _remote_gfile(path).isdir(path) if is_remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
    """Entry names of a directory (no trailing ``/``); ``[]`` when it is not a directory."""
    if is_remote(path):
        g = _remote_gfile(path)
        return [n.rstrip("/") for n in g.listdir(path)] if g.isdir(path) else []
    return os.listdir(path) if os.path.isdir(path) else []


def makedirs(path: str) -> None:
    if is_remote(path):
        _remote_gfile(path).makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def rmtree(path: str) -> None:
    if is_remote(path):
        _remote_gfile(path).rmtree(path)
    else:
        shutil.rmtree(path, ignore_errors=False)


def read_text(path: str) -> str:
    if is_remote(path):
        with _remote_gfile(path).GFile(path, "r") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def write_text(path: str, text: str) -> None:
    """Write a small text file whole (atomically on local disks), creating its parent directory."""
    if is_remote(path):
        with _remote_gfile(path).GFile(path, "w") as f:
            f.write(text)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def glob(pattern: str) -> list[str]:
    """Paths matching ``pattern``, sorted."""
    if is_remote(pattern):
        return sorted(_remote_gfile(pattern).glob(pattern))
    import glob as _glob

    return sorted(_glob.glob(pattern))
