"""A client of TF Serving for infnet's signatures (REST and gRPC): raw rows -> tensors of exactly the
signature's dtypes -> per-task probabilities. The library behind ``python -m export.client`` (whose
docstring / ``--help`` describes the rows format, nulls, ``score_candidates`` requests and the output).

``read_rows`` (Parquet / JSON lines), ``rows_to_inputs`` (columnar arrays, sequences right-padded),
``make_client`` (``RestClient`` / ``GrpcClient``: ``signature_inputs`` from the server's metadata,
``predict``), ``predict_rows`` (batched), ``candidates_inputs`` / ``predict_candidates`` (one user x N
candidates), ``format_predictions`` (the command's output lines).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
CANDIDATES_SIGNATURE = "score_candidates"  # one user x N candidates per request (export/candidates.py)
_NP_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32, "DT_INT64": np.int64,
              "DT_STRING": object, "DT_BOOL": np.bool_}


class ClientError(RuntimeError):
    """A request the server refused (the message carries the server's status and text)."""


@dataclasses.dataclass(frozen=True)
class InputInfo:
    name: str
    dtype: str   # DT_FLOAT, DT_INT64, ...
    rank: int | None


# -- rows ------------------------------------------------------------------------------------
def read_rows(path: str) -> list[dict[str, Any]]:
    """Raw rows from a Parquet (``.parquet``/``.pq``) or JSON-lines file."""
    if path.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not a JSON object: {exc}") from None
    return rows


INT_NULL = -(2**63)  # infnet's null for int64 raw columns (infnet_tf.transform_graph.INT_NULL)


def _missing(dtype: str) -> Any:
    """The "no value" of a column: NaN (floats), "" (strings), -2**63 (int64); None: not nullable."""
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        return float("nan")
    if dtype == "DT_STRING":
        return b""
    if dtype == "DT_INT64":
        return INT_NULL
    return None


def _value(row: Mapping[str, Any], name: str, info: InputInfo, row_index: int) -> Any:
    if name in row:
        value = row[name]
    elif name.endswith("/length"):
        prefix = name[: -len("length")]
        lists = [v for k, v in row.items() if k.startswith(prefix) and isinstance(v, (list, tuple))]
        if not lists:
            raise ValueError(f"row {row_index}: no {name!r} and no {prefix}* list to take it from")
        value = len(lists[0])
    else:
        raise ValueError(f"row {row_index}: missing input {name!r}")
    return value


def _scalar(value: Any, info: InputInfo, where: str) -> Any:
    floats = ("DT_FLOAT", "DT_DOUBLE")
    if value is None or (isinstance(value, float) and math.isnan(value) and info.dtype not in floats):
        missing = _missing(info.dtype)
        if missing is None:
            raise ValueError(f"{where}: null in integer input {info.name!r} (integer inputs must be set)")
        return missing
    if info.dtype == "DT_STRING":
        return value if isinstance(value, bytes) else str(value).encode("utf-8")
    return value


def rows_to_inputs(rows: Sequence[Mapping[str, Any]], inputs: Mapping[str, InputInfo]) -> dict[str, np.ndarray]:
    """Columnar numpy arrays of the signature's dtypes (rank-2 inputs right-padded, >= 1 column)."""
    if not rows:
        raise ValueError("no rows")
    out: dict[str, np.ndarray] = {}
    for name, info in inputs.items():
        dtype = _NP_DTYPES.get(info.dtype)
        if dtype is None:
            raise ValueError(f"input {name!r}: unsupported dtype {info.dtype}")
        values = [_value(row, name, info, i) for i, row in enumerate(rows)]
        if info.rank == 2:
            width = max([1] + [len(v or []) for v in values])
            pad = b"" if info.dtype == "DT_STRING" else 0
            matrix = [[_scalar(x, info, f"row {i} {name}[{j}]") for j, x in enumerate(v or [])]
                      for i, v in enumerate(values)]
            array = np.empty((len(rows), width), dtype=dtype)
            for i, m in enumerate(matrix):
                array[i, :] = m + [pad] * (width - len(m))
        else:
            array = np.array([_scalar(v, info, f"row {i}") for i, v in enumerate(values)], dtype=dtype)
        out[name] = array
    return out


# -- metadata -----------------------------------------------------------------------------------
def _signature_inputs(signature_def) -> dict[str, InputInfo]:
    from tensorflow.core.framework import types_pb2

    out = {}
    for name, info in signature_def.inputs.items():
        shape = info.tensor_shape
        rank = None if shape.unknown_rank else len(shape.dim)
        out[name] = InputInfo(name, types_pb2.DataType.Name(info.dtype), rank)
    return dict(sorted(out.items()))


def _signature_from_map(sig_map, signature_name: str, model_name: str):
    if signature_name not in sig_map.signature_def:
        raise ClientError(f"model {model_name!r} has no signature {signature_name!r}; it has "
                          f"{sorted(sig_map.signature_def)}")
    return sig_map.signature_def[signature_name]


class RestClient:
    def __init__(self, server: str, model_name: str, version: int | None = None, timeout: float = 30.0):
        self.base = server if server.startswith("http") else f"http://{server}"
        self.model_name = model_name
        self.version = version
        self.timeout = timeout

    def _url(self, suffix: str) -> str:
        path = f"{self.base}/v1/models/{self.model_name}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        return path + suffix

    def _request(self, method: str, url: str, body: bytes | None = None) -> dict:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                text = json.loads(text).get("error", text)
            except (json.JSONDecodeError, AttributeError):
                pass
            raise ClientError(f"REST {method} {url}: HTTP {exc.code}: {text}") from None
        except urllib.error.URLError as exc:
            raise ClientError(f"REST {method} {url}: cannot connect: {exc.reason}") from None

    def signature_inputs(self, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, InputInfo]:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        meta = self._request("GET", self._url("/metadata"))
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        json_format.ParseDict(meta["metadata"]["signature_def"], sig_map, ignore_unknown_fields=True)
        return _signature_inputs(_signature_from_map(sig_map, signature_name, self.model_name))

    def predict(self, inputs: Mapping[str, np.ndarray],
                signature_name: str = DEFAULT_SIGNATURE) -> dict[str, np.ndarray]:
        def jsonable(a: np.ndarray):
            if a.dtype == object:
                return [jsonable(x) for x in a] if a.ndim > 1 else [x.decode("utf-8") for x in a]
            return a.tolist()

        body = json.dumps({"signature_name": signature_name,
                           "inputs": {k: jsonable(np.asarray(v)) for k, v in inputs.items()}}).encode("utf-8")
        out = self._request("POST", self._url(":predict"), body)["outputs"]
        if not isinstance(out, dict):  # a single-output signature answers with the bare list
            raise ClientError("REST predict: expected named outputs (one per task)")
        return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


class GrpcClient:
    def __init__(self, server: str, model_name: str, version: int | None = None, timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(server, options=[("grpc.max_receive_message_length", 256 << 20),
                                                             ("grpc.max_send_message_length", 256 << 20)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.server = server

    def _spec(self, spec, signature_name: str | None = None) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request, what: str):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise ClientError(f"gRPC {what} at {self.server}: {exc.code().name}: {exc.details()}") from None

    def signature_inputs(self, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, InputInfo]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self.stub.GetModelMetadata, request, "GetModelMetadata")
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        return _signature_inputs(_signature_from_map(sig_map, signature_name, self.model_name))

    def predict(self, inputs: Mapping[str, np.ndarray],
                signature_name: str = DEFAULT_SIGNATURE) -> dict[str, np.ndarray]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.stub.Predict, request, "Predict")
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def close(self) -> None:
        self.channel.close()


def make_client(server: str, protocol: str, model_name: str, version: int | None = None, timeout: float = 30.0):
    if protocol == "rest":
        return RestClient(server, model_name, version, timeout)
    if protocol == "grpc":
        return GrpcClient(server, model_name, version, timeout)
    raise ValueError(f"--protocol must be rest or grpc, got {protocol!r}")


def predict_rows(client, rows: Sequence[Mapping[str, Any]], signature_name: str = DEFAULT_SIGNATURE,
                 batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-task probabilities for ``rows`` (sent in requests of ``batch_size`` rows)."""
    inputs = client.signature_inputs(signature_name)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(rows), batch_size):
        batch = rows_to_inputs(rows[start:start + batch_size], inputs)
        for task, values in client.predict(batch, signature_name).items():
            parts.setdefault(task, []).append(np.asarray(values).reshape(-1))
    return {task: np.concatenate(v) for task, v in parts.items()}


def candidates_inputs(request: Mapping[str, Any], inputs: Mapping[str, InputInfo]) -> dict[str, np.ndarray]:
    """Tensors of one ``score_candidates`` request ``{"user": {...}, "candidates": [{...}, ...]}``: the
    inputs named in ``user`` as one row, every other input from the candidates."""
    if not isinstance(request, Mapping) or not isinstance(request.get("user"), Mapping) \
            or not isinstance(request.get("candidates"), list) or not request["candidates"]:
        raise ValueError('a score_candidates request must be {"user": {...}, "candidates": [{...}, ...]} '
                         "with at least one candidate")
    user = {n: i for n, i in inputs.items() if n in request["user"]}
    candidates = {n: i for n, i in inputs.items() if n not in user}
    for i, row in enumerate(request["candidates"]):
        missing = sorted(n for n in candidates if n not in row)
        if missing:
            raise ValueError(f"candidate {i}: missing input(s) {missing} (an input not in \"user\" is taken from "
                             f"each candidate)")
    return {**rows_to_inputs([request["user"]], user), **rows_to_inputs(request["candidates"], candidates)}


def predict_candidates(client, requests: Sequence[Mapping[str, Any]],
                       signature_name: str = CANDIDATES_SIGNATURE) -> list[dict[str, np.ndarray]]:
    """Per-task probabilities [N] for each one-user request (see :func:`candidates_inputs`)."""
    inputs = client.signature_inputs(signature_name)
    return [client.predict(candidates_inputs(r, inputs), signature_name) for r in requests]


def format_predictions(predictions: Mapping[str, np.ndarray], prefix: str = "") -> list[str]:
    tasks = sorted(predictions)
    n = len(next(iter(predictions.values()))) if predictions else 0
    key = "candidate" if prefix else "row"
    return [f"{prefix}{key}={i} " + " ".join(f"{t}={float(predictions[t][i]):.6f}" for t in tasks)
            for i in range(n)]
