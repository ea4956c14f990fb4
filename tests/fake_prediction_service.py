"""A small stand-in for TF Serving, for tests only (the product serves with TF Serving).

``FakePredictionService(model_base_path, model_name)`` loads the newest integer version under
``model_base_path`` the way TF Serving's C++ loader does — the TF1 session loader
(``tf.compat.v1.saved_model.loader.load(sess, ["serve"], dir)``) — and runs signatures through a
session callable fed with the request's tensors as they are (no Python-side dtype casts or shape
checks, like the C++ server). It serves on 127.0.0.1:

* gRPC ``tensorflow.serving.PredictionService``: ``Predict`` and ``GetModelMetadata`` (signature_def);
* REST: ``POST /v1/models/<name>[/versions/<v>]:predict`` (columnar ``inputs`` or row ``instances``)
  and ``GET /v1/models/<name>[/versions/<v>]/metadata``.

Like TF Serving it answers INVALID_ARGUMENT (gRPC) / HTTP 400 ``{"error": ...}`` (REST) when the
request's input names do not match the signature, and passes on the session's own errors
(dtype mismatch, failed in-graph checks) with their messages.
"""
from __future__ import annotations

import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow loads)
import tensorflow as tf

_URL_RE = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict|/metadata)?$")


class RequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # a grpc.StatusCode name


def _latest_version_dir(base: str) -> tuple[int, str]:
    versions = sorted(int(n) for n in os.listdir(base) if n.isdigit()
                      and os.path.exists(os.path.join(base, n, "saved_model.pb")))
    if not versions:
        raise FileNotFoundError(f"no versions under {base}")
    return versions[-1], os.path.join(base, str(versions[-1]))


class _LoadedModel:
    """One version loaded through the TF1 session loader (TF Serving's path), run via a callable."""

    def __init__(self, path: str):
        from export.session_model import SessionModel

        self._model = SessionModel(path)
        self.session = self._model.session
        self.signatures = self._model.signatures

    def signature(self, name: str):
        if name not in self.signatures:
            raise RequestError("FAILED_PRECONDITION", f"Serving signature key \"{name}\" not found.")
        return self.signatures[name]

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sig = self.signature(signature_name)
        sent, wanted = set(inputs), set(sig.inputs)
        if sent != wanted:  # TF Serving's own check, before the session runs
            raise RequestError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({sorted(sent)}) != "
                f"len({sorted(wanted)}). Sent extra: {sorted(sent - wanted)}. Missing but required: "
                f"{sorted(wanted - sent)}.")
        try:
            return self._model.run(signature_name, inputs)
        except tf.errors.OpError as exc:
            raise RequestError(_grpc_code_name(exc.error_code), exc.message) from None


def _grpc_code_name(code: int) -> str:
    import grpc

    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return "UNKNOWN"


class FakePredictionService:
    def __init__(self, model_base_path: str, model_name: str):
        self.model_base_path = model_base_path
        self.model_name = model_name
        self.version, path = _latest_version_dir(model_base_path)
        self.model = _LoadedModel(path)
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._grpc_server = None
        self._http = None

    # -- shared request handling ---------------------------------------------------------
    def _check_model(self, name: str, version: int | None) -> None:
        if name != self.model_name:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Latest({name})")
        if version is not None and version != self.version:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")

    def predict(self, name: str, version: int | None, signature_name: str, inputs: dict) -> dict:
        self._check_model(name, version)
        return self.model.run(signature_name or "serving_default", inputs)

    def signature_def_map(self):
        from tensorflow_serving.apis import get_model_metadata_pb2

        out = get_model_metadata_pb2.SignatureDefMap()
        for k, v in self.model.signatures.items():
            out.signature_def[k].CopyFrom(v)
        return out

    # -- gRPC --------------------------------------------------------------------------------
    def _servicer(self):
        import grpc
        from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

        service = self

        def abort(context, exc: RequestError):
            context.abort(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.UNKNOWN), str(exc))

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802 - gRPC method name
                try:
                    version = request.model_spec.version.value if request.model_spec.HasField("version") else None
                    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                    outputs = service.predict(request.model_spec.name, version,
                                              request.model_spec.signature_name, inputs)
                except RequestError as exc:
                    abort(context, exc)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = service.model_name
                response.model_spec.version.value = service.version
                response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
                for k, v in outputs.items():
                    response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
                return response

            def GetModelMetadata(self, request, context):  # noqa: N802
                try:
                    version = request.model_spec.version.value if request.model_spec.HasField("version") else None
                    service._check_model(request.model_spec.name, version)
                    if list(request.metadata_field) != ["signature_def"]:
                        raise RequestError("INVALID_ARGUMENT", "Metadata field signature_def is the only one supported")
                except RequestError as exc:
                    abort(context, exc)
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = service.model_name
                response.model_spec.version.value = service.version
                response.metadata["signature_def"].Pack(service.signature_def_map())
                return response

        return Servicer()

    # -- REST --------------------------------------------------------------------------------
    def _rest_predict(self, name: str, version: int | None, body: dict) -> dict:
        signature_name = body.get("signature_name", "serving_default")
        sig = self.model.signature(signature_name)
        if "inputs" in body:
            raw, columnar = body["inputs"], True
        elif "instances" in body:
            instances, columnar = body["instances"], False
            raw = {k: [inst[k] for inst in instances] for k in (instances[0] if instances else {})}
        else:
            raise RequestError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        if columnar:  # like TF Serving: every signature input must be named; other keys are ignored
            for input_name in sorted(sig.inputs):
                if input_name not in raw:
                    raise RequestError("INVALID_ARGUMENT", f"Missing named input: {input_name} in 'inputs' object.")
            raw = {k: v for k, v in raw.items() if k in sig.inputs}
        inputs = {}
        for key, value in raw.items():
            dtype = tf.dtypes.as_dtype(sig.inputs[key].dtype) if key in sig.inputs else None
            try:
                if dtype is None:
                    inputs[key] = np.asarray(value)
                elif dtype == tf.string:
                    inputs[key] = np.asarray(value, dtype=object)
                else:  # like TF Serving: JSON numbers of the right kind only (no text, no 1.5 for an int)
                    flat = np.asarray(value, dtype=object).reshape(-1)
                    if any(isinstance(x, (str, bool)) or x is None for x in flat):
                        raise ValueError(f"expected {dtype.name} numbers")
                    if dtype.is_integer and any(isinstance(x, float) for x in flat):
                        raise ValueError(f"expected {dtype.name} integers, got a floating-point number")
                    inputs[key] = np.asarray(value, dtype=dtype.as_numpy_dtype)
            except (TypeError, ValueError) as exc:
                raise RequestError("INVALID_ARGUMENT", f"input {key}: JSON value is not of expected type: "
                                                       f"{dtype.name if dtype else '?'} ({exc})") from None
        outputs = self.predict(name, version, signature_name, inputs)
        if columnar:
            return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
        n = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(n)]}

    def _handler(self):
        from google.protobuf import json_format

        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str):
                match = _URL_RE.match(self.path)
                if not match:
                    return self._send(404, {"error": f"Malformed request: {method} {self.path}"})
                name, version, what = match.group(1), match.group(2), match.group(3)
                version = int(version) if version else None
                try:
                    if method == "GET" and what == "/metadata":
                        service._check_model(name, version)
                        meta = json_format.MessageToDict(service.signature_def_map(),
                                                         preserving_proto_field_name=True)
                        return self._send(200, {"model_spec": {"name": name, "version": str(service.version)},
                                                "metadata": {"signature_def": meta}})
                    if method == "POST" and what == ":predict":
                        length = int(self.headers.get("Content-Length", 0))
                        try:
                            body = json.loads(self.rfile.read(length).decode("utf-8"))
                        except json.JSONDecodeError as exc:
                            raise RequestError("INVALID_ARGUMENT", f"JSON Parse error: {exc}") from None
                        return self._send(200, service._rest_predict(name, version, body))
                    return self._send(404, {"error": f"Malformed request: {method} {self.path}"})
                except RequestError as exc:
                    code = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "FAILED_PRECONDITION": 400}.get(exc.code, 500)
                    return self._send(code, {"error": str(exc)})

            def do_GET(self):  # noqa: N802
                self._route("GET")

            def do_POST(self):  # noqa: N802
                self._route("POST")

        return Handler

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakePredictionService":
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self._servicer(), self._grpc_server)
        self.grpc_port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.rest_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.model.session.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
