"""Run a SavedModel the way TF Serving does: the TF1 session loader and signature tensor names.

TF Serving's C++ loader restores the MetaGraph tagged ``serve`` into a session and runs a signature
by feeding its input tensor names and fetching its output tensor names. :class:`SessionModel` does
the same from Python (``tf.compat.v1.saved_model.loader.load``) and feeds through a session
*callable*, so tensors reach the C++ runtime as they are — no Python-side dtype casts or shape
checks (``Session.run`` would do both) — exactly like a gRPC/REST request inside TF Serving.
It is also much faster to load than ``tf.saved_model.load`` (no Python functions are rebuilt),
which is why the export's validation uses it.
"""
from __future__ import annotations

import threading
from typing import Mapping

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf


class SessionModel:
    def __init__(self, path: str, tags=("serve",)):
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), path)
        self.signatures = dict(self.meta_graph.signature_def)
        self._callables: dict = {}
        self._lock = threading.Lock()

    def signature(self, name: str):
        if name not in self.signatures:
            raise KeyError(f"{self.path} has no signature {name!r}; it has {sorted(self.signatures)}")
        return self.signatures[name]

    def input_names(self, signature_name: str) -> list[str]:
        return sorted(self.signature(signature_name).inputs)

    def output_names(self, signature_name: str) -> list[str]:
        return sorted(self.signature(signature_name).outputs)

    def _callable(self, signature_name: str):
        from tensorflow.core.protobuf.config_pb2 import CallableOptions

        with self._lock:
            fn = self._callables.get(signature_name)
            if fn is None:
                sig = self.signature(signature_name)
                options = CallableOptions(feed=[sig.inputs[n].name for n in sorted(sig.inputs)],
                                          fetch=[sig.outputs[n].name for n in sorted(sig.outputs)])
                fn = self.session._make_callable_from_options(options)  # noqa: SLF001 - the C++ feed path
                self._callables[signature_name] = fn
        return fn

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name. ``inputs`` must name exactly the signature's inputs (KeyError otherwise);
        arrays are fed as they are (wrong dtypes/shapes fail in the runtime, as in TF Serving)."""
        names = self.input_names(signature_name)
        missing, extra = sorted(set(names) - set(inputs)), sorted(set(inputs) - set(names))
        if missing or extra:
            raise KeyError(f"signature {signature_name!r}: missing inputs {missing}, unexpected inputs {extra}")
        values = self._callable(signature_name)(*[inputs[n] for n in names])
        return dict(zip(self.output_names(signature_name), values))

    def run_batched(self, signature_name: str, inputs: Mapping[str, np.ndarray], batch_size: int = 1024) -> dict:
        n = len(next(iter(inputs.values())))
        parts: dict[str, list] = {}
        for start in range(0, max(n, 1), batch_size):
            out = self.run(signature_name, {k: np.asarray(v)[start:start + batch_size] for k, v in inputs.items()})
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
