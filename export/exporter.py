"""Export a trained model as a TF Serving SavedModel version, behind a validation gate: the library
behind ``python -m export.export_model`` (its docstring / ``--help`` and ``export/SERVING.md`` describe
the steps: recover the model, sweep leftovers, write the candidate, validate it, publish or reject)
and the streaming trainer's periodic export (``export_from_trainer``, passed to the trainer as its
export hook by ``python -m infnet_tf.train``).

Exit statuses of the command: ``EXIT_REJECTED`` (3) rejected by the gate, ``EXIT_BAD_DATA`` (2) a
dataset partition does not match its manifest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import time
from typing import Any, Mapping, Sequence

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from export import gate as _gate
from export import serving_files as _serving_files
from export import versions as _v
from export import warmup as _warmup
from export.config import DEFAULTS as _D
from export.config import check_settings
from infnet_tf.data import fs
from infnet_tf.data.dataset_dir import SUCCESS
from infnet_tf.data.errors import PartitionError
from infnet_tf.data.keys import EVENT_TIME as META_EVENT_TIME
from infnet_tf.data.keys import MISSING_LABEL
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.data.partitions import Partition, list_partitions
from infnet_tf.models import ModelConfig, build_model

# TensorFlow and the modules that import it (or pyarrow) load on first use, inside the functions that
# need them, so that ``python -m export.export_model --help`` answers before TensorFlow loads. The
# names below stay importable from this module (``from export.exporter import tf, RawDecoder``)
# through the module ``__getattr__`` at the end of the file.
_LAZY = {
    "tf": ("tensorflow", None),
    "RawDecoder": ("export.raw_inputs", "RawDecoder"),
    "slice_columns": ("export.raw_inputs", "slice_columns"),
    "to_examples": ("export.raw_inputs", "to_examples"),
    "SessionModel": ("export.session_model", "SessionModel"),
    "PREDICT_EXAMPLES": ("export.serving_module", "PREDICT_EXAMPLES"),
    "PREDICT_MODEL_INPUTS": ("export.serving_module", "PREDICT_MODEL_INPUTS"),
    "SERVING_DEFAULT": ("export.serving_module", "SERVING_DEFAULT"),
    "EXAMPLES_INPUT": ("export.serving_module", "EXAMPLES_INPUT"),
    "ServingModule": ("export.serving_module", "ServingModule"),
    "artifact_path": ("infnet_tf.data.dataset_dir", "artifact_path"),
    "make_dataset": ("infnet_tf.input", "make_dataset"),
    "precision_scope": ("infnet_tf.precision", "precision_scope"),
    "TransformArtifact": ("infnet_tf.transform", "TransformArtifact"),
    "TransformGraph": ("infnet_tf.transform_graph", "TransformGraph"),
}

TRAINER_CONFIG = "trainer_config.json"
CHECKPOINT_SUBDIR = "checkpoints"
INFO_FILE = "infnet_export.json"
ARTIFACT_FILE = "transform_artifact.json"
SAMPLE_REQUEST_FILE = "sample_request.jsonl"  # in assets.extra/: raw rows in export.client's --rows format
SAMPLE_REQUEST_ROWS = 5
SAMPLE_CANDIDATES_FILE = "sample_candidates_request.jsonl"  # in assets.extra/: one user x the sample rows' items
PARITY_TOLERANCE = 1e-5
LOW_PRECISION_TOLERANCE = 2e-2  # float16/bfloat16 compute
EXIT_REJECTED = 3
EXIT_BAD_DATA = 2  # a held-out/sample partition does not match its manifest (PartitionError)
WARMUP_BATCH_SIZES = (1, 8, 32, 128, 256)


class ExportError(RuntimeError):
    """The export could not be made (bad inputs); nothing was published."""


@dataclasses.dataclass
class ExportResult:
    version: int
    path: str
    published: bool
    decision: _gate.GateDecision
    removed: list[int] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False                 # nothing written: already the newest version (decision.publish:
                                          # True if that version is published, False if it was rejected)
    sample_request: str | None = None     # assets.extra/sample_request.jsonl of the new version
    swept: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        if self.skipped:
            return f"skipped: {self.decision.reason}"
        what = "published" if self.published else "REJECTED"
        return f"{what} version {self.version} at {self.path}: {self.decision.reason}"


def log(line: str) -> None:
    print(f"export: {line}", flush=True)


# -- 1. what to export ---------------------------------------------------------------------------
def load_trainer_config(model_dir: str) -> dict:
    import tensorflow as tf

    path = fs.join(model_dir, TRAINER_CONFIG)
    if not tf.io.gfile.exists(path):
        raise ExportError(f"no {TRAINER_CONFIG} in {model_dir}: --model_dir must be a directory the trainer "
                          f"(python -m infnet_tf.train) wrote")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def load_artifact(data: str) -> tuple[TransformArtifact, str]:
    """(the artifact, its path) by :func:`infnet_tf.data.artifact.load`; no artifact is an :class:`ExportError`."""
    from infnet_tf.data import artifact as artifact_lib
    from infnet_tf.data.dataset_dir import artifact_path

    try:
        return artifact_lib.load(data), artifact_path(data)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None


def serving_precision(precision: str, trained: str) -> str:
    """``trained`` -> the training policy; otherwise the given one (``float32`` serves fastest on CPU)."""
    return trained if precision == "trained" else precision


def build_serving_model(layout: FeatureLayout, model_config: ModelConfig, precision: str):
    """A fresh model (variables built) under ``precision``; the global policy is restored after."""
    from infnet_tf.precision import precision_scope

    with precision_scope(precision):
        model = build_model(layout, model_config)
        from infnet_tf.data.tensors import placeholder_inputs

        model(placeholder_inputs(layout), training=False)
    return model


def restore_weights(model, checkpoint: str) -> None:
    """``checkpoint``'s weights into ``model``: their moving average when the checkpoint has one
    (``--weight_average_decay``; what training evaluated), the trained weights otherwise."""
    import tensorflow as tf

    from infnet_tf.training.weight_average import restore_averaged

    status = tf.train.Checkpoint(model=model).restore(checkpoint)
    status.assert_existing_objects_matched()
    status.expect_partial()  # the optimizer's slots and the step are not needed for serving
    if restore_averaged(model, checkpoint):
        log(f"{checkpoint}: the moving average of the weights (as training evaluated them)")


def checkpoints_newest_first(model_dir: str) -> list[str]:
    """The checkpoints the trainer's ``checkpoint`` state file lists in ``<model_dir>/checkpoints``,
    newest first."""
    import tensorflow as tf

    ckpt_dir = fs.join(model_dir, CHECKPOINT_SUBDIR)
    state = tf.train.get_checkpoint_state(ckpt_dir)
    paths = list(state.all_model_checkpoint_paths) if state else []
    if state and state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    paths = [p if os.path.isabs(p) or "://" in p else fs.join(ckpt_dir, p) for p in paths]
    return list(reversed(paths))


def latest_checkpoint(model_dir: str) -> str:
    import tensorflow as tf

    path = tf.train.latest_checkpoint(fs.join(model_dir, CHECKPOINT_SUBDIR))
    if not path:
        raise ExportError(f"no checkpoint in {fs.join(model_dir, CHECKPOINT_SUBDIR)}")
    return path


def best_checkpoint(model_dir: str) -> str | None:
    """The best-on-valid checkpoint a batch run recorded in ``<model_dir>/metrics.json``, when that run
    also wrote the newest checkpoint (a later streaming or batch run supersedes it) and it exists."""
    import tensorflow as tf

    path = fs.join(model_dir, "metrics.json")
    if not tf.io.gfile.exists(path):
        return None
    try:
        with tf.io.gfile.GFile(path) as f:
            metrics = json.load(f)
    except ValueError:
        return None
    best = (metrics.get("best") or {}).get("checkpoint")
    history = metrics.get("history") or []
    newest = checkpoints_newest_first(model_dir)
    last = (history[-1].get("checkpoint") or "") if history else ""
    if not best or not newest or os.path.basename(last) != os.path.basename(newest[0]):
        return None
    best = fs.join(model_dir, "best", os.path.basename(best))   # wherever the model dir lives now
    return best if tf.io.gfile.exists(best + ".index") else None


def restore_newest_readable(model, model_dir: str) -> str:
    """Restore the newest checkpoint of ``model_dir`` whose files can be read; returns its path.

    A newest checkpoint that cannot be restored (e.g. a data file truncated by a full disk or a copy
    cut short) is skipped with a warning naming it and the checkpoint used instead."""
    candidates = checkpoints_newest_first(model_dir)
    if not candidates:
        raise ExportError(f"no checkpoint in {fs.join(model_dir, CHECKPOINT_SUBDIR)}")
    failures: list[tuple[str, str]] = []  # (path, why)
    for path in candidates:
        try:
            restore_weights(model, path)
        except Exception as exc:  # noqa: BLE001 - DataLoss, OutOfRange (IndexError), NotFound, a mismatch ...
            text = " ".join(str(exc).split())
            failures.append((path, f"{type(exc).__name__}: {text[:200]}"))
            continue
        if failures:
            (newest, why), others = failures[0], failures[1:]
            log(f"WARNING: newest checkpoint {newest} is unreadable ({why}); exporting the previous readable "
                f"checkpoint {path} instead"
                + (f" (also unreadable: {'; '.join(f'{p} ({w})' for p, w in others)})" if others else ""))
        return path
    raise ExportError(f"no readable checkpoint in {fs.join(model_dir, CHECKPOINT_SUBDIR)}: "
                      + "; ".join(f"{p} ({w})" for p, w in failures))


def sweep_checkpoint_temps(checkpoint_dir: str) -> list[tuple[str, str]]:
    """Remove ``ckpt-<N>_temp`` directories (a checkpoint save killed mid-write) for which a complete
    checkpoint numbered N or later exists: the trainer never writes checkpoint N again then."""
    if "://" in checkpoint_dir or not os.path.isdir(checkpoint_dir):
        return []
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(checkpoint_dir)
    numbers = [int(m.group(1)) for p in (state.all_model_checkpoint_paths if state else [])
               for m in [re.search(r"-(\d+)$", p)] if m]
    if not numbers:
        return []
    removed = []
    for name in sorted(os.listdir(checkpoint_dir)):
        m = re.match(r"^.+-(\d+)_temp$", name)
        path = os.path.join(checkpoint_dir, name)
        if m and os.path.isdir(path) and int(m.group(1)) <= max(numbers):
            shutil.rmtree(path, ignore_errors=True)
            removed.append((path, f"checkpoint save that did not finish (checkpoint {max(numbers)} exists)"))
    return removed


# -- held-out and sample partitions (verified against their manifests) ----------------------------
_PART_KEY_RE = re.compile(r"(dt=\d{4}-\d{2}-\d{2})(/hr=\d{2})?$")


def as_partition(path: str) -> Partition | None:
    """``path`` as a :class:`Partition` when it names a ``dt=...[/hr=..]`` directory, else None."""
    m = _PART_KEY_RE.search(path.rstrip("/"))
    return Partition(key=m.group(0), path=path.rstrip("/")) if m else None


def data_files(path: str) -> tuple[list[str], Partition | None]:
    """Data files of a partition directory, a split directory of partitions, or a file pattern.

    Partitions are read only through :meth:`Partition.verified_files`: a partition whose files do
    not match the manifest in its ``_SUCCESS`` (or that has no ``_SUCCESS``) raises
    :class:`PartitionError`. Returns the files and the partition when ``path`` is exactly one."""
    import tensorflow as tf

    from infnet_tf.input import resolve_files

    fs.ensure_filesystem(path)
    if tf.io.gfile.isdir(path):
        part = as_partition(path)
        if part is not None:
            if not tf.io.gfile.exists(fs.join(part.path, SUCCESS)):
                raise PartitionError(f"{part.path}: no {SUCCESS} marker: not a complete partition; refusing to "
                                     f"read it")
            return part.verified_files(), part
        parts = list_partitions(path)
        if parts:
            return [f for p in parts for f in p.verified_files()], (parts[0] if len(parts) == 1 else None)
    return resolve_files(path), None


def default_holdout(data: str | None) -> str | None:
    """The newest complete partition of ``<data>/valid`` (None when --data is an artifact JSON or has none)."""
    if not data or data.endswith(".json"):
        return None
    parts = list_partitions(fs.join(data, "valid"))
    return parts[-1].path if parts else None


# -- rows ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Rows:
    """Held-out rows: model inputs (numpy), labels, request times and their raw decoding."""

    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    request_time_ms: np.ndarray
    raw: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.request_time_ms)


def read_rows(path: str, layout: FeatureLayout, decoder: RawDecoder, max_rows: int) -> Rows | None:
    """Up to ``max_rows`` rows of a partition directory / file pattern, through the one input function.

    Partitions are verified against their manifests (:func:`data_files`); a partition read to its end
    must also hold the rows its manifest records (:meth:`Partition.check_rows`)."""
    from infnet_tf.input import make_dataset

    files, partition = data_files(path)
    ds = make_dataset(files, layout, batch_size=min(1024, max_rows), shuffle=False, repeat=False,
                      deterministic=True, with_meta=True)
    inputs: dict[str, list] = {}
    labels: dict[str, list] = {}
    times: list = []
    n = 0
    for features, batch_labels in ds:
        for k in layout.model_input_keys():
            inputs.setdefault(k, []).append(features[k].numpy())
        for t, v in batch_labels.items():
            labels.setdefault(t, []).append(v.numpy())
        times.append(features[META_EVENT_TIME].numpy())
        n += len(times[-1])
        if n >= max_rows:
            break
    else:
        if partition is not None:
            partition.check_rows(n)  # read to the end: a truncated file shows as missing rows
    if not n:
        return None
    cat = {k: np.concatenate(v)[:max_rows] for k, v in inputs.items()}
    lab = {k: np.concatenate(v)[:max_rows] for k, v in labels.items()}
    now = np.concatenate(times)[:max_rows].astype(np.int64)
    return Rows(cat, lab, now, decoder.decode(cat, now))


def synthetic_rows(layout: FeatureLayout, decoder: RawDecoder, n: int = 64, seed: int = 0) -> Rows:
    """Random ids (every id a raw value can map to, sequences of random length) when no TFRecords are
    at hand."""
    rng = np.random.default_rng(seed)
    from infnet_tf.data.keys import LENGTH, TIME_GAP, cat_key, seq_key

    inputs = {cat_key(f.name): rng.integers(0, decoder.id_count(f.name, f.vocab_size), n) for f in layout.categorical}
    for seq in layout.sequences:
        length = rng.integers(0, seq.max_len + 1, n)
        real = np.arange(seq.max_len)[None, :] < length[:, None]
        for f in seq.fields:
            inputs[seq_key(seq.name, f.name)] = rng.integers(1, f.vocab_size, (n, seq.max_len)) * real
        gap_ids = decoder.gap_id_count(seq.name, seq.time_gap_buckets)
        inputs[seq_key(seq.name, TIME_GAP)] = rng.integers(1, gap_ids, (n, seq.max_len)) * real
        inputs[seq_key(seq.name, LENGTH)] = length
    inputs = {k: np.asarray(v, np.int64) for k, v in inputs.items()}
    now = np.full(n, 1_800_000_000_000, np.int64)
    return Rows(inputs, {t: np.full(n, MISSING_LABEL, np.int64) for t in layout.task_names}, now,
                decoder.decode(inputs, now))


# -- 3. validation ---------------------------------------------------------------------------------
def _max_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[t] - b[t]), initial=0.0)) for t in a)


def float32_rounded(columns: Mapping[str, np.ndarray], decoder: RawDecoder) -> dict[str, np.ndarray]:
    """Dense/counter columns rounded through float32 (what a tf.train.Example's FloatList carries)."""
    out = dict(columns)
    for raw in decoder.inputs:
        if raw.dtype == "float64":
            out[raw.name] = np.asarray(columns[raw.name]).astype(np.float32).astype(np.float64)
    return out


def _examples_input(examples: Sequence[bytes]) -> dict[str, np.ndarray]:
    from export.serving_module import EXAMPLES_INPUT

    array = np.empty(len(examples), dtype=object)
    array[:] = list(examples)
    return {EXAMPLES_INPUT: array}


def score_published(root: str, rows: Rows, candidate_inputs: Sequence[str]) -> tuple[int | None, float | None, str]:
    """(version, mean AUC of its raw signature on ``rows``, note) of the newest published version."""
    from export.serving_module import SERVING_DEFAULT
    from export.session_model import SessionModel

    version = _v.latest_version(root)
    if version is None:
        return None, None, "no published version"
    try:
        with SessionModel(_v.version_path(root, version)) as published:
            if set(published.input_names(SERVING_DEFAULT)) != set(candidate_inputs):
                return version, None, f"published version {version} takes different raw inputs; not compared"
            preds = published.run_batched(SERVING_DEFAULT, rows.raw)
        return version, _gate.mean_auc(rows.labels, preds), f"published version {version} scored on the same rows"
    except Exception as exc:  # noqa: BLE001 - an unreadable old version must not block a good new one
        return version, None, f"published version {version} could not be scored ({type(exc).__name__}: {exc})"


def keras_predictions(model, inputs: Mapping[str, np.ndarray], batch_size: int = 1024) -> dict[str, np.ndarray]:
    import tensorflow as tf

    parts: dict[str, list] = {}
    n = len(next(iter(inputs.values())))
    for start in range(0, n, batch_size):
        out = model({k: tf.constant(v[start:start + batch_size]) for k, v in inputs.items()}, training=False)
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32).reshape(-1))
    return {k: np.concatenate(v) for k, v in parts.items()}


def validate(staging: str, root: str, model, decoder: RawDecoder, holdout: Rows | None, sample: Rows,
             threshold: float, candidates: Sequence[str] | None = None) -> tuple[_gate.GateDecision, dict]:
    """Load the candidate from disk as TF Serving does, run the self-checks and the gate.
    ``candidates``: the candidate-side tokens of the ``score_candidates`` signature (None: no signature)."""
    from export.candidates import SCORE_CANDIDATES, candidate_raw_inputs, candidates_request, tiled_request
    from export.raw_inputs import slice_columns, to_examples
    from export.serving_module import PREDICT_EXAMPLES, SERVING_DEFAULT
    from export.session_model import SessionModel

    details: dict[str, Any] = {}
    rows = holdout if holdout is not None else sample
    check = slice_rows(rows, 512)
    common = dict(candidate_metric=None, published_metric=None, published_version=None, threshold=threshold)
    # (a) the exported raw path == the in-memory model on the dataset job's ids for the same rows:
    #     the in-graph transform reproduces the TFRecords and the weights made it to disk
    by_ids = keras_predictions(model, check.inputs)
    # float32 graphs agree to rounding; float16/bfloat16 compute may be fused differently on load
    low_precision = getattr(model, "compute_dtype", "float32") != "float32"
    tolerance = LOW_PRECISION_TOLERANCE if low_precision else PARITY_TOLERANCE
    with SessionModel(staging) as candidate:
        by_raw = candidate.run_batched(SERVING_DEFAULT, check.raw)
        raw_diff = _max_diff(by_ids, by_raw)
        # (b) Example path == raw path (dense values through float32, as a FloatList carries them)
        by_examples = candidate.run_batched(PREDICT_EXAMPLES, _examples_input(to_examples(check.raw, decoder.inputs)))
        ex_diff = _max_diff(candidate.run_batched(SERVING_DEFAULT, float32_rounded(check.raw, decoder)), by_examples)
        # (c) one user x N candidates == serving_default on the same pairs (the user's row tiled)
        cand_diff = 0.0
        if candidates is not None:
            names = candidate_raw_inputs(decoder.inputs, candidates)
            request = candidates_request(slice_columns(check.raw, 0, 64), names)
            by_candidates = candidate.run(SCORE_CANDIDATES, request)
            cand_diff = _max_diff(candidate.run(SERVING_DEFAULT, tiled_request(request, names)), by_candidates)
        details.update(raw_vs_model_max_abs_diff=raw_diff, examples_vs_raw_max_abs_diff=ex_diff,
                       candidates_vs_raw_max_abs_diff=cand_diff, checked_rows=len(check))
        predictions = {t: np.concatenate([by_ids[t], by_raw[t], by_examples[t]]) for t in by_ids}
        bad, _ = _gate.nonfinite_count(predictions)
        if bad:
            return _gate.decide(predictions, **common), details
        if not raw_diff <= tolerance:
            return _gate.GateDecision(False, f"the exported raw-feature signature disagrees with the model on the "
                                             f"dataset job's ids for the same rows by {raw_diff:.3g} "
                                             f"(> {tolerance}): the transform artifact does not match the data",
                                      **common), details
        if not ex_diff <= tolerance:
            return _gate.GateDecision(False, f"predict_examples disagrees with serving_default by {ex_diff:.3g}",
                                      **common), details
        if not cand_diff <= tolerance:
            return _gate.GateDecision(False, f"score_candidates disagrees with serving_default on the same user and "
                                             f"candidates by {cand_diff:.3g}", **common), details
        if holdout is None:
            return _gate.decide(predictions, **common), details
        preds = candidate.run_batched(SERVING_DEFAULT, holdout.raw)
    predictions = {t: np.concatenate([predictions[t], preds[t]]) for t in preds}
    per_task = _gate.task_aucs(holdout.labels, preds)
    version, published, note = score_published(root, holdout, list(holdout.raw))
    details.update(holdout_rows=len(holdout), published_note=note)
    decision = _gate.decide(predictions, candidate_metric=_gate.mean_auc(holdout.labels, preds),
                            published_metric=published, published_version=version, threshold=threshold,
                            per_task=per_task)
    return decision, details


def slice_rows(rows: Rows, n: int) -> Rows:
    from export.raw_inputs import slice_columns

    return Rows({k: v[:n] for k, v in rows.inputs.items()}, {k: v[:n] for k, v in rows.labels.items()},
                rows.request_time_ms[:n], slice_columns(rows.raw, 0, n))


# -- warmup -----------------------------------------------------------------------------------------
def warmup_logs(model_name: str, rows: Rows, decoder: RawDecoder, max_records: int,
                candidates: Sequence[str] | None = None) -> list:
    """PredictionLogs for the raw signatures (``serving_default``, ``predict_examples``, ``score_candidates``:
    the first row's user and the chunk's candidates, when ``candidates`` are given) at several batch
    sizes, from ``rows``."""
    from export.candidates import SCORE_CANDIDATES, candidate_raw_inputs, candidates_request
    from export.raw_inputs import slice_columns, to_examples
    from export.serving_module import EXAMPLES_INPUT, PREDICT_EXAMPLES, SERVING_DEFAULT

    names = None if candidates is None else candidate_raw_inputs(decoder.inputs, candidates)

    pairs = []
    n = len(rows)
    start = 0
    for i in range(max_records):
        size = min(WARMUP_BATCH_SIZES[(i // 3) % len(WARMUP_BATCH_SIZES)], n)
        if start + size > n:
            start = 0
        chunk = slice_columns(rows.raw, start, start + size)
        start += size
        if i % 3 == 0:
            pairs.append((SERVING_DEFAULT, chunk))
        elif i % 3 == 2 and names is not None:
            pairs.append((SCORE_CANDIDATES, candidates_request(chunk, names)))
        else:
            pairs.append((PREDICT_EXAMPLES, {EXAMPLES_INPUT: np.asarray(to_examples(chunk, decoder.inputs), object)}))
    return _warmup.build_logs(model_name, pairs, max_records)


# -- what a version was made from: skip re-exporting the same checkpoint ---------------------------------
def weights_fingerprint(model) -> str:
    """sha256 of the model's weights (dtype, shape and bytes of each, in order)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_fingerprint(path: str) -> str | None:
    """sha256 of a small file (a checkpoint's ``.index``, which holds every tensor's crc32c), or None."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (tf.errors.OpError, OSError):
        return None


def source_record(model, artifact: TransformArtifact, info: Mapping[str, Any]) -> dict:
    """What the version is made from: the checkpoint (path, step, index fingerprint), the weights'
    fingerprint, the transform artifact's and the serving precision. ``fingerprint`` identifies the
    exported graph: equal fingerprints export identical SavedModels."""
    checkpoint = info.get("checkpoint")
    record = {
        "checkpoint": checkpoint,
        "global_step": info.get("global_step"),
        "checkpoint_index_sha256": file_fingerprint(f"{checkpoint}.index") if checkpoint else None,
        "weights_sha256": weights_fingerprint(model),
        "artifact_sha256": hashlib.sha256(artifact.to_json().encode()).hexdigest(),
        "precision": info.get("precision"),
        "model_config": info.get("model_config"),
    }
    identity = {k: record[k] for k in ("weights_sha256", "artifact_sha256", "precision", "model_config")}
    record["fingerprint"] = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return record


def read_info(version_dir: str) -> dict | None:
    """``assets.extra/infnet_export.json`` of a version directory (None when absent or unreadable)."""
    import tensorflow as tf

    try:
        return json.loads(fs.read_text(fs.join(version_dir, "assets.extra", INFO_FILE)))
    except (OSError, ValueError, tf.errors.OpError):
        return None


def already_exported(root: str, source: Mapping[str, Any]) -> tuple[int, str, bool] | None:
    """(version, path, published) of the newest version made from the same source, if it is the newest
    published version, or a rejected version newer than it (rejected again: the gate compares against
    the same published version). None otherwise."""
    latest = _v.latest_version(root)
    newer_rejected = [v for v in _v.rejected_versions(root) if latest is None or v > latest]
    if newer_rejected:
        path = fs.join(root, _v.REJECTED_DIR, str(newer_rejected[-1]))
        info = read_info(path) or {}
        if (info.get("source") or {}).get("fingerprint") == source["fingerprint"]:
            return newer_rejected[-1], path, False
    if latest is not None:
        path = _v.version_path(root, latest)
        info = read_info(path) or {}
        if (info.get("source") or {}).get("fingerprint") == source["fingerprint"]:
            return latest, path, True
    return None


def _skipped(found: tuple[int, str, bool], source: Mapping[str, Any], start: float) -> ExportResult:
    version, path, published = found
    what = source.get("checkpoint") or "the trainer's current weights"
    if published:
        reason = (f"{what} is already published as version {version} ({path}): same weights, transform artifact "
                  f"and precision; nothing written (--force to publish it again)")
    else:
        reason = (f"{what} was already rejected by the gate as version {version} ({path}); nothing written "
                  f"(--force to try again)")
    decision = _gate.GateDecision(published, reason, published_version=version if published else None)
    return ExportResult(version, path, False, decision, seconds=time.perf_counter() - start, skipped=True)


def sweep(root: str, checkpoint_dir: str | None = None) -> list[str]:
    """Remove what killed exports (and killed checkpoint saves) left behind; call under the lock.
    Logs one line per removed entry; returns their paths."""
    found = _v.sweep(root)
    if checkpoint_dir:
        found += sweep_checkpoint_temps(checkpoint_dir)
    for path, why in found:
        log(f"swept {path}: {why}")
    return [path for path, _ in found]


# -- the sample request -------------------------------------------------------------------------------
def sample_request_rows(data: str | None, layout: FeatureLayout, decoder: RawDecoder, fallback: Rows,
                        n: int = SAMPLE_REQUEST_ROWS) -> list[dict]:
    """``n`` raw rows (export.client's ``--rows`` form) from the newest test partition, else the newest
    valid one, else ``fallback`` (the held-out / synthetic rows)."""
    from export.raw_inputs import to_rows

    rows = None
    if data and not data.endswith(".json"):
        for split in ("test", "valid"):
            parts = list_partitions(fs.join(data, split))
            if parts:
                rows = read_rows(parts[-1].path, layout, decoder, n)
                if rows is not None:
                    break
    rows = slice_rows(rows if rows is not None else fallback, n)
    return to_rows(rows.raw, decoder.inputs)


def write_sample_request(version_dir: str, rows: Sequence[Mapping[str, Any]],
                         candidate_inputs: Sequence[str] | None) -> str:
    """``assets.extra/sample_request.jsonl`` (rows for ``serving_default``) and, with ``candidate_inputs``,
    ``sample_candidates_request.jsonl`` (one ``score_candidates`` request: the first row's user, every
    row's candidate), both in export.client's ``--rows`` format."""
    from export.candidates import request_object

    path = fs.join(version_dir, "assets.extra", SAMPLE_REQUEST_FILE)
    fs.write_text(path, "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in rows))
    if candidate_inputs is not None:
        fs.write_text(fs.join(version_dir, "assets.extra", SAMPLE_CANDIDATES_FILE),
                      json.dumps(request_object(rows, candidate_inputs), sort_keys=True, allow_nan=False) + "\n")
    return path


def _abspath(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def client_command(model_name: str, rows_file: str, server: str = "localhost:8501", protocol: str = "rest") -> str:
    return (f"python -m export.client --server={server} --protocol={protocol} --model_name={model_name} "
            f"--rows={rows_file}")


# -- 2.-4. the export ---------------------------------------------------------------------------------
def export_model(model, artifact: TransformArtifact, layout: FeatureLayout, *, export_base: str, model_name: str,
                 keep: int = _D.keep, gate_metric_threshold: float = _D.gate_metric_threshold,
                 data: str | None = None, holdout: str | None = _D.holdout,
                 holdout_max_rows: int = _D.holdout_max_rows, warmup_records: int = _D.warmup_records,
                 serve_versions: int = _D.serve_versions, info: Mapping[str, Any] | None = None,
                 force: bool = _D.force, checkpoint_dir: str | None = None) -> ExportResult:
    """Write, validate and publish (or reject) a new version of ``model`` (see the module docstring;
    the settings' meanings and defaults: :class:`export.config.ExportConfig`).

    Skipped (nothing written, ``result.skipped``) when the newest published version was made from
    the same weights, transform artifact and precision, unless ``force``. ``checkpoint_dir``: the
    trainer's checkpoint directory, swept of ``ckpt-N_temp`` leftovers."""
    from export.candidates import SCORE_CANDIDATES, candidate_raw_inputs, candidate_tokens, side_layouts
    from export.raw_inputs import RawDecoder
    from export.serving_module import (EXAMPLES_INPUT, PREDICT_EXAMPLES, PREDICT_MODEL_INPUTS, SERVING_DEFAULT,
                                       ServingModule)
    from infnet_tf.transform_graph import TransformGraph

    start = time.perf_counter()
    try:
        check_settings(keep=keep, gate_metric_threshold=gate_metric_threshold, holdout_max_rows=holdout_max_rows,
                       warmup_records=warmup_records, serve_versions=serve_versions)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if FeatureLayout.from_dict(artifact.layout) != layout:
        raise ExportError("the transform artifact's layout differs from the model's (was the model trained on "
                          "another dataset build?)")
    try:
        candidates = candidate_tokens(artifact)
        side_layouts(layout, candidates)
    except ValueError as exc:  # e.g. an artifact built before specs declared sides: serve the other signatures
        candidates = None
        log(f"warning: this version has no score_candidates signature: {exc}")
    root = _v.model_root(export_base, model_name)
    source = source_record(model, artifact, dict(info or {}))
    swept: list[str] = []
    if not force:
        with _v.exclusive(root):
            swept += sweep(root, checkpoint_dir)
            found = already_exported(root, source)
        if found is not None:
            result = _skipped(found, source, start)
            result.swept = swept
            log(str(result))
            return result
    decoder = RawDecoder(artifact, layout)
    holdout = holdout or default_holdout(data)
    held = read_rows(holdout, layout, decoder, holdout_max_rows) if holdout else None
    if holdout and held is None:
        raise ExportError(f"--holdout={holdout} holds no rows")
    sample = held
    if sample is None and data and not data.endswith(".json"):
        for split in ("valid", "train", "test"):
            parts = list_partitions(fs.join(data, split))
            if parts:
                sample = read_rows(parts[-1].path, layout, decoder, 512)
                break
    if sample is None:
        log("no TFRecords at hand: warming up and self-checking on synthetic rows")
        sample = synthetic_rows(layout, decoder)
    request_rows = sample_request_rows(data, layout, decoder, sample)
    with _v.exclusive(root):
        swept += sweep(root, checkpoint_dir)
        found = None if force else already_exported(root, source)
        if found is not None:  # another exporter published it meanwhile
            result = _skipped(found, source, start)
            result.swept = swept
            log(str(result))
            return result
        version = _v.next_version(root)
        _v.record_version(root, version)
        staging = _v.staging_path(root, version)
        log(f"writing candidate version {version} of {model_name} to {staging}")
        t0 = time.perf_counter()
        module = ServingModule(model, TransformGraph(artifact, layout), layout, candidates=candidates)
        module.save(staging)
        t1 = time.perf_counter()
        _warmup.write_warmup(staging, warmup_logs(model_name, sample, decoder, warmup_records, candidates))
        extra = os.path.join(staging, "assets.extra") if "://" not in staging else fs.join(staging, "assets.extra")
        fs.write_text(fs.join(extra, ARTIFACT_FILE), artifact.to_json())
        candidate_inputs = None if candidates is None else candidate_raw_inputs(decoder.inputs, candidates)
        write_sample_request(staging, request_rows, candidate_inputs)
        t2 = time.perf_counter()
        decision, details = validate(staging, root, model, decoder, held, sample, gate_metric_threshold,
                                     candidates)
        log(f"saved in {t1 - t0:.1f}s, warmup {t2 - t1:.1f}s, validated in {time.perf_counter() - t2:.1f}s")
        payload = {
            "model_name": model_name, "version": version, "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "signatures": {SERVING_DEFAULT: {r.name: [r.dtype, r.rank] for r in decoder.inputs},
                           PREDICT_EXAMPLES: {EXAMPLES_INPUT: ["string", 1]},
                           PREDICT_MODEL_INPUTS: "transformed ids (infnet_tf.data.keys)",
                           **({} if candidate_inputs is None else {SCORE_CANDIDATES: {
                               "candidate (N rows)": list(candidate_inputs),
                               "user (1 row)": "every other serving_default input"}})},
            "tasks": list(layout.task_names), "spec_name": artifact.spec_name,
            "spec_fingerprint": artifact.spec_fingerprint, "holdout": holdout, "gate": decision.to_dict(),
            "validation": details, "source": source, "forced": bool(force),
            "sample_request": f"assets.extra/{SAMPLE_REQUEST_FILE}", **dict(info or {}),
        }
        fs.write_text(fs.join(extra, INFO_FILE), json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
        removed: list[int] = []
        if decision.publish:
            path = _v.publish(staging, root, version)
            removed = _v.prune(root, keep)
        else:
            path = _v.reject(staging, root, version, payload)
            _v.prune_rejected(root, keep)
        _serving_files.write_serving_config(export_base, serve_versions=serve_versions,
                                            extra_models=[model_name] if decision.publish else [])
    result = ExportResult(version, path, decision.publish, decision, removed, time.perf_counter() - start,
                          sample_request=_abspath(fs.join(path, "assets.extra", SAMPLE_REQUEST_FILE)), swept=swept)
    log(f"{result} ({result.seconds:.1f}s)" + (f"; removed old versions {removed}" if removed else ""))
    return result


def export_from_checkpoint(model_dir: str, data: str, export_base: str, model_name: str = _D.model_name, *,
                           checkpoint: str | None = None, precision: str = _D.precision, **kwargs) -> ExportResult:
    """The CLI's path: model config and layout from ``trainer_config.json``, weights from a checkpoint."""
    config = load_trainer_config(model_dir)
    layout = FeatureLayout.from_dict(config["layout"])
    model_config = ModelConfig.from_dict(config["model_config"])
    artifact, where = load_artifact(data)
    policy = serving_precision(precision, config.get("precision", "float32"))
    model = build_serving_model(layout, model_config, policy)
    best = None if checkpoint else best_checkpoint(model_dir)
    if checkpoint:  # given explicitly: that one or an error
        restore_weights(model, checkpoint)
    elif best:  # batch mode's best-on-valid round (not its last): what the run's metrics.json reports
        restore_weights(model, best)
        checkpoint = best
        log(f"the best-on-valid checkpoint of the batch run ({best}); --checkpoint exports another")
    else:  # the newest readable one (a truncated newest checkpoint falls back, with a warning)
        checkpoint = restore_newest_readable(model, model_dir)
    log(f"model {model_config.model} from {checkpoint} (serving precision {policy}); transform {where}")
    step = re.search(r"-(\d+)$", checkpoint)
    info = {"model_dir": model_dir, "checkpoint": checkpoint, "artifact": where, "precision": policy,
            "global_step": int(step.group(1)) if step else None, "model_config": model_config.to_dict()}
    return export_model(model, artifact, layout, export_base=export_base, model_name=model_name, data=data,
                        info={**info, **kwargs.pop("info", {})},
                        checkpoint_dir=kwargs.pop("checkpoint_dir", fs.join(model_dir, CHECKPOINT_SUBDIR)), **kwargs)


def _trainer_data(trainer) -> str | None:
    for attr in ("data", "data_dir"):
        value = getattr(trainer, attr, None)
        if isinstance(value, str) and value:
            return value
    try:
        return load_trainer_config(trainer.model_dir).get("data")
    except ExportError:
        return None


def export_from_trainer(trainer, partition_key: str | None = None, *, export_base: str | None = None,
                        model_name: str = _D.model_name, data: str | None = None, keep: int = _D.keep,
                        gate_metric_threshold: float = _D.gate_metric_threshold, holdout: str | None = _D.holdout,
                        precision: str = _D.precision, **kwargs) -> ExportResult:
    """Export the trainer's current weights (the streaming trainer's periodic hook).

    ``data``: the dataset directory (transform artifact, held-out partitions); defaults to
    ``trainer.data``/``trainer.data_dir`` or ``"data"`` in ``trainer_config.json``. ``export_base``
    defaults to ``<model_dir>/export``. The weights are copied into a fresh model built outside the
    distribution strategy, under ``precision`` (``float32`` default; ``trained`` keeps the training policy).
    When the newest published version already holds these very weights (same transform and precision)
    nothing is written and the result says so (``result.skipped``); ``force=True`` exports anyway.
    """
    data = data or _trainer_data(trainer)
    if not data:
        raise ExportError("export_from_trainer: no dataset directory: pass data=<the --data of the training job>")
    export_base = export_base or fs.join(trainer.model_dir, "export")
    artifact, where = load_artifact(data)
    policy = serving_precision(precision, getattr(trainer, "precision", "float32"))
    model = build_serving_model(trainer.layout, trainer.model_config, policy)
    with trainer.evaluation_weights() if hasattr(trainer, "evaluation_weights") else contextlib.nullcontext():
        weights = trainer.model.get_weights()   # the averaged dense weights when averaging is on
    if [w.shape for w in weights] != [tuple(v.shape) for v in model.weights]:
        raise ExportError("export_from_trainer: the trainer's model and the rebuilt model have different weights")
    model.set_weights(weights)
    info = {"model_dir": trainer.model_dir, "checkpoint": trainer.latest_checkpoint, "artifact": where,
            "global_step": trainer.global_step, "partition_key": partition_key, "precision": policy,
            "model_config": trainer.model_config.to_dict()}
    kwargs.setdefault("checkpoint_dir", getattr(trainer, "checkpoint_dir", None))
    return export_model(model, artifact, trainer.layout, export_base=export_base, model_name=model_name, data=data,
                        keep=keep, gate_metric_threshold=gate_metric_threshold, holdout=holdout, info=info, **kwargs)


def __getattr__(name: str):
    """The names this module used to import at load time (TensorFlow and its users), on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value
