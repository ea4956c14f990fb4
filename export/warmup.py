"""SavedModel warmup requests: ``assets.extra/tf_serving_warmup_requests``.

TF Serving replays these ``PredictionLog`` records (a TFRecord file, at most 1000 records) against a
version after loading it and before serving it, so the first real requests do not pay for lazy
initialisation (table imports, allocator growth, graph optimisation). The records are built with
``tensorflow_serving.apis`` protos from real rows; :func:`read_warmup` parses them back.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

WARMUP_RELPATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving reads at most this many


def tensor_proto(value: np.ndarray, dtype=None):
    import tensorflow as tf

    return tf.make_tensor_proto(value, dtype=dtype)


def predict_request(model_name: str, signature_name: str, inputs: Mapping[str, np.ndarray],
                    dtypes: Mapping[str, object] | None = None):
    """A ``PredictRequest`` for ``inputs`` (numpy arrays by input name)."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto(value, (dtypes or {}).get(name)))
    return request


def prediction_log(request):
    from tensorflow_serving.apis import prediction_log_pb2

    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_warmup(saved_model_dir: str, logs: Iterable) -> str:
    """Write PredictionLog records to ``<saved_model_dir>/assets.extra/tf_serving_warmup_requests``."""
    import tensorflow as tf

    logs = list(logs)
    if not logs:
        raise ValueError("no warmup records to write")
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    path = os.path.join(saved_model_dir, WARMUP_RELPATH) if "://" not in saved_model_dir else \
        f"{saved_model_dir.rstrip('/')}/{WARMUP_RELPATH}"
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(path_or_saved_model_dir: str) -> list:
    """The ``PredictionLog`` records of a warmup file (or of a SavedModel directory's warmup file)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = path_or_saved_model_dir
    if tf.io.gfile.isdir(path):
        path = os.path.join(path, WARMUP_RELPATH)
    out = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        out.append(log)
    return out


def request_inputs(log) -> dict[str, np.ndarray]:
    """The numpy inputs of a warmup ``PredictionLog``'s predict request."""
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in log.predict_log.request.inputs.items()}


def slice_batch(batch: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[start:stop] for k, v in batch.items()}


def build_logs(model_name: str, batches: Iterable[tuple[str, Mapping[str, np.ndarray]]],
               max_records: int = 100) -> list:
    """PredictionLogs from ``(signature_name, inputs)`` pairs, at most ``max_records`` of them."""
    max_records = min(max_records, MAX_WARMUP_RECORDS)
    logs = []
    for signature_name, inputs in batches:
        if len(logs) >= max_records:
            break
        logs.append(prediction_log(predict_request(model_name, signature_name, inputs)))
    return logs
