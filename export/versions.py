"""SavedModel version directories as TF Serving reads them: ``<export_base>/<model_name>/<version>/``.

TF Serving's file-system source polls ``<model_base_path>`` and loads child directories whose names
are integers (the versions), newest first by the version policy. This module keeps that directory
safe to poll while exports come and go:

* **Integer versions that increase**: the next version is one more than the largest number ever
  used under the model directory — published versions, rejected ones (``_rejected/<v>``) and
  versions being written (``.tmp-<v>-*``) included — so a number is never reused.
* **Atomic appearance**: a version is written completely under a temporary name in the same
  directory (``.tmp-<version>-<pid>-<random>``; TF Serving ignores names that are not integers) and
  renamed into place only when complete. On a local file system the rename is atomic (``rename(2)``),
  so TF Serving never sees half a model. Object stores (``s3://``) have no atomic directory rename:
  there ``tf.io.gfile.rename`` copies, so point TF Serving at a local or POSIX-mounted export base.
* **Keep the last K**: after a publish, the oldest published versions beyond K are deleted (TF
  Serving unloads them on its next poll). Rejected versions are pruned to the last K as well.
  Deleting is atomic too (:func:`retire`): a version directory is first renamed out of the integer
  namespace (``.deleting-<version>-<random>``), then removed, so a kill mid-delete can never leave an
  integer directory without its ``saved_model.pb`` for TF Serving to fail on.
* **Every export sweeps** (:func:`sweep`, under the lock): integer directories that hold no
  ``saved_model.pb`` (a kill during an older, non-atomic prune, or a hand copy gone wrong), staging
  directories (``.tmp-*``) and ``.deleting-*`` directories left by killed exports. Under the lock
  every one of them predates the current exporter (exports write only while holding it).
* **One exporter at a time** per model directory: :func:`exclusive` holds an ``fcntl`` lock on
  ``<model dir>/.export.lock`` (local paths) while a version number is chosen and published.
* **Numbers are never reused**, even after a sweep: the highest number taken is also recorded in
  ``<model dir>/.last_version`` (TF Serving ignores files and non-integer names).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from typing import Iterator

from infnet_tf.data import fs

TMP_PREFIX = ".tmp-"
DELETING_PREFIX = ".deleting-"
LAST_VERSION_FILE = ".last_version"
REJECTED_DIR = "_rejected"
REASON_FILE = "REJECTED.json"
LOCK_FILE = ".export.lock"
SAVED_MODEL_PB = "saved_model.pb"
_VERSION_RE = re.compile(r"^[0-9]+$")
_TMP_RE = re.compile(r"^\.tmp-([0-9]+)-")


def model_root(export_base: str, model_name: str) -> str:
    """``<export_base>/<model_name>``: the ``--model_base_path`` TF Serving polls."""
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
    return fs.join(export_base, model_name)


def published_versions(root: str) -> list[int]:
    """Published versions under ``root`` (integer-named directories holding a saved_model.pb), ascending."""
    out = []
    for name in fs.listdir(root):
        if _VERSION_RE.match(name) and fs.exists(fs.join(root, name, SAVED_MODEL_PB)):
            out.append(int(name))
    return sorted(out)


def rejected_versions(root: str) -> list[int]:
    return sorted(int(n) for n in fs.listdir(fs.join(root, REJECTED_DIR)) if _VERSION_RE.match(n))


def latest_version(root: str) -> int | None:
    versions = published_versions(root)
    return versions[-1] if versions else None


def version_path(root: str, version: int) -> str:
    return fs.join(root, str(int(version)))


def next_version(root: str) -> int:
    """One more than any version number used under ``root`` (published, rejected, being written)."""
    used = [0]
    for name in fs.listdir(root):
        if _VERSION_RE.match(name):
            used.append(int(name))
        match = _TMP_RE.match(name)
        if match:
            used.append(int(match.group(1)))
    used.extend(rejected_versions(root))
    last = fs.join(root, LAST_VERSION_FILE)
    if fs.exists(last):
        try:
            used.append(int(fs.read_text(last).strip() or 0))
        except ValueError:
            pass  # a damaged marker: the directories still count
    return max(used) + 1


def record_version(root: str, version: int) -> None:
    """Remember that ``version`` was taken (so a swept or deleted number is never handed out again)."""
    fs.write_text(fs.join(root, LAST_VERSION_FILE), f"{int(version)}\n")


def staging_path(root: str, version: int) -> str:
    """A fresh temporary directory name for writing ``version`` (not created here)."""
    return fs.join(root, f"{TMP_PREFIX}{int(version)}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _rename_dir(src: str, dst: str) -> None:
    if fs.exists(dst):
        raise FileExistsError(f"{dst} already exists; refusing to overwrite a version")
    if fs.is_remote(src):
        fs.gfile().rename(src, dst, overwrite=False)
    else:
        os.rename(src, dst)  # atomic on one POSIX file system


def publish(staging: str, root: str, version: int) -> str:
    """Rename a complete staging directory to ``<root>/<version>``; returns the version path."""
    if not fs.exists(fs.join(staging, SAVED_MODEL_PB)):
        raise FileNotFoundError(f"{staging} holds no {SAVED_MODEL_PB}; refusing to publish it")
    final = version_path(root, version)
    _rename_dir(staging, final)
    return final


def reject(staging: str, root: str, version: int, reason: dict) -> str:
    """Keep a candidate aside as ``<root>/_rejected/<version>/`` with ``REJECTED.json`` (the reason)."""
    fs.write_text(fs.join(staging, REASON_FILE), json.dumps(reason, indent=2, sort_keys=True, default=str) + "\n")
    fs.makedirs(fs.join(root, REJECTED_DIR))
    final = fs.join(root, REJECTED_DIR, str(int(version)))
    _rename_dir(staging, final)
    return final


def retire(root: str, name: str) -> str:
    """Delete ``<root>/<name>`` atomically as TF Serving sees it: rename it to a hidden, non-integer
    name first (``.deleting-<name>-<random>``), then remove that. Returns the hidden path (gone)."""
    src = fs.join(root, name)
    hidden = fs.join(root, f"{DELETING_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
    if fs.is_remote(src):  # no atomic rename on object stores: a rename would copy; delete in place
        fs.rmtree(src)
        return src
    os.rename(src, hidden)
    shutil.rmtree(hidden, ignore_errors=True)
    return hidden


def prune(root: str, keep: int) -> list[int]:
    """Delete the oldest published versions beyond the newest ``keep`` (atomically, :func:`retire`);
    returns the removed ones."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    versions = published_versions(root)
    removed = versions[:-keep] if len(versions) > keep else []
    for v in removed:
        retire(root, str(int(v)))
    return removed


def prune_rejected(root: str, keep: int) -> list[int]:
    versions = rejected_versions(root)
    removed = versions[:-keep] if len(versions) > keep else []
    for v in removed:
        fs.rmtree(fs.join(root, REJECTED_DIR, str(v)))
    return removed


def clean_stale_staging(root: str, older_than_s: float = 3600.0) -> list[str]:
    """Remove ``.tmp-*`` directories left by crashed exports (older than ``older_than_s``)."""
    removed = []
    if fs.is_remote(root):
        return removed
    now = time.time()
    for name in fs.listdir(root):
        path = fs.join(root, name)
        if name.startswith(TMP_PREFIX) and fs.isdir(path) and now - os.path.getmtime(path) > older_than_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def sweep(root: str, stale_after_s: float = 3600.0) -> list[tuple[str, str]]:
    """Remove what killed exports left under ``root``; call it while holding :func:`exclusive`.

    * integer directories without ``saved_model.pb`` (not servable: TF Serving would try and fail to
      load them) — renamed out of the integer namespace first, like :func:`retire`;
    * ``.tmp-*`` staging and ``.deleting-*`` directories. Locally the lock guarantees their writers
      are gone; on object stores (no lock) only those older than ``stale_after_s`` are removed.

    Returns ``(path, why)`` for each removed entry.
    """
    removed: list[tuple[str, str]] = []
    remote = fs.is_remote(root)
    now = time.time()
    names = sorted(fs.listdir(root))
    if any(_VERSION_RE.match(n) or n.startswith(TMP_PREFIX) for n in names):
        # numbers of swept versions stay taken: TF Serving remembers a version it failed to load and
        # would never load a new directory under that number
        high = next_version(root) - 1
        last = fs.join(root, LAST_VERSION_FILE)
        if not fs.exists(last) or fs.read_text(last).strip() != str(high):
            record_version(root, high)
    for name in names:
        path = fs.join(root, name)
        if not fs.isdir(path):
            continue
        if _VERSION_RE.match(name):
            if not fs.exists(fs.join(path, SAVED_MODEL_PB)):
                retire(root, name)
                removed.append((path, f"version directory without {SAVED_MODEL_PB} (not servable)"))
            continue
        if name.startswith(TMP_PREFIX):
            why = "staging directory of an export that did not finish"
        elif name.startswith(DELETING_PREFIX):
            why = "version directory whose deletion did not finish"
        else:
            continue
        if remote:
            try:
                mtime = fs.gfile().stat(path).mtime_nsec / 1e9
            except Exception:  # noqa: BLE001 - no mtime on this store: leave it
                continue
            if now - mtime <= stale_after_s:
                continue
            fs.rmtree(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
        removed.append((path, why))
    return removed


@contextlib.contextmanager
def exclusive(root: str, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold ``<root>/.export.lock`` so two exporters never pick the same version (local paths)."""
    fs.makedirs(root)
    if fs.is_remote(root):
        yield
        return
    import fcntl

    deadline = time.monotonic() + timeout_s
    with open(os.path.join(root, LOCK_FILE), "a+") as f:
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another export holds {root}/{LOCK_FILE} for over {timeout_s:.0f}s")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
