"""The exported ``tf.Module``: in-graph transform + model, and its signatures.

* ``serving_default`` — raw features by name (:func:`infnet_tf.transform_graph.raw_inputs`) ->
  ``{task: float32 probability [B]}``;
* ``predict_examples`` — ``examples``: string [B] serialized raw ``tf.train.Example``s -> the same;
  an input that is not a serialized Example fails with INVALID_ARGUMENT naming its row
  (:func:`check_serialized_examples`; TensorFlow's own parse error would carry the raw bytes, which
  Python clients cannot even decode);
* ``predict_model_inputs`` — already-transformed model inputs (the TFRecord features of
  :mod:`infnet_tf.data.keys`: ``cat/*`` int64 [B], ``seq/*/*`` int64 [B, T], ``seq/*/length``) -> the
  same. Used by the export's validation gate on held-out TFRecords and by the latency benchmark; it
  is the model without the transform;
* ``score_candidates`` (when the candidate-side tokens are given; every export gives them) — one
  user's raw features (leading dimension 1) and N candidates' raw item-side features ->
  ``{task: [N]}``, the user side transformed and computed once (:mod:`export.candidates`).

The Keras model is not attached to the module (so no Keras SavedModel metadata is traced): its
variables are, and the signature functions close over the model. Everything the graph needs —
weights, vocabulary tables, boundaries — is inside the SavedModel.
"""
from __future__ import annotations

import types
from typing import Mapping

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.data.tensors import input_signature
from infnet_tf.transform_graph import TransformGraph
from export.candidates import SCORE_CANDIDATES, CandidateScorer

SERVING_DEFAULT = "serving_default"
PREDICT_EXAMPLES = "predict_examples"
PREDICT_MODEL_INPUTS = "predict_model_inputs"
EXAMPLES_INPUT = "examples"
SIGNATURES = (SERVING_DEFAULT, PREDICT_EXAMPLES, PREDICT_MODEL_INPUTS, SCORE_CANDIDATES)


_PROBE_KEY = "__infnet_wire_format_probe__"  # a feature never sent: the probe parses structure only


def _data_options() -> tf.data.Options:
    """No graph rewrites, autotuning or thread pools: a one-element pipeline then costs ~0.1 ms."""
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    options.experimental_warm_start = False
    options.threading.private_threadpool_size = 0
    return options


def _parses(serialized: tf.Tensor) -> tf.Tensor:
    """True when every string of ``serialized`` parses as a ``tf.train.Example`` (scalar bool).

    The parse runs inside a one-element ``tf.data`` pipeline whose errors are dropped
    (``ignore_errors``) and that ends in a ``False`` sentinel, so a malformed input yields ``False``
    instead of failing the request with a message that embeds its raw bytes."""
    probe = {_PROBE_KEY: tf.io.VarLenFeature(tf.string)}

    @tf.autograph.experimental.do_not_convert
    def parse(s):
        return tf.size(tf.io.parse_example(tf.reshape(s, [-1]), probe)[_PROBE_KEY].values) >= 0

    ds = tf.data.Dataset.from_tensors(serialized).map(parse).ignore_errors()
    ds = ds.concatenate(tf.data.Dataset.from_tensors(tf.constant(False))).take(1)
    return ds.with_options(_data_options()).get_single_element()


def check_serialized_examples(examples: tf.Tensor) -> tf.Tensor:
    """``examples`` once each one is known to be a serialized ``tf.train.Example``; otherwise the
    request fails with INVALID_ARGUMENT "input examples: row(s) [i ...] of [B] are not serialized
    tf.train.Example protos" (only on failure are the rows probed one by one)."""
    ok = _parses(examples)

    def bad_rows():
        per_row = tf.data.Dataset.from_tensor_slices(examples).map(_parses).batch(tf.size(examples, tf.int64))
        parsed = per_row.with_options(_data_options()).get_single_element()
        return tf.reshape(tf.where(tf.logical_not(parsed)), [-1])[:16]

    bad = tf.cond(ok, lambda: tf.zeros([0], tf.int64), bad_rows)
    check = tf.raw_ops.Assert(condition=ok, data=[
        tf.constant(f"input {EXAMPLES_INPUT}: row(s)"), bad, tf.constant("of"), tf.size(examples, out_type=tf.int64),
        tf.constant("are not serialized tf.train.Example protos (at most 16 rows shown)")], summarize=16)
    with tf.control_dependencies([check]):
        return tf.identity(examples)


def _outputs(probs: Mapping[str, tf.Tensor], tasks) -> dict[str, tf.Tensor]:
    return {t: tf.identity(tf.cast(tf.reshape(probs[t], [-1]), tf.float32), name=t) for t in tasks}


class ServingModule(tf.Module):
    """``transform`` (a :class:`TransformGraph`) followed by ``model``; see the module docstring."""

    def __init__(self, model, transform: TransformGraph, layout: FeatureLayout, candidates=None):
        """``candidates``: the candidate-side token names (:func:`export.candidates.candidate_tokens`);
        None: no ``score_candidates`` signature."""
        super().__init__(name="infnet_serving")
        self.transform = transform
        self.model_variables = list(model.variables)
        tasks = tuple(layout.task_names)
        self.task_names = tasks

        # One trace of the model and one of the transform, shared by the three signatures.
        @tf.function(input_signature=[input_signature(layout)], autograph=False)
        def model_fn(inputs):
            return _outputs(model(inputs, training=False), tasks)

        @tf.function(input_signature=[transform.input_signature(), transform.null_spec()], autograph=False)
        def transform_and_model(features, nulls):
            return model_fn(transform.transform(features, validate=False, nulls=nulls))

        @tf.function(input_signature=[transform.input_signature()], autograph=False)
        def serve_raw(features):
            features = transform.validate(features)
            return transform_and_model(features, transform.null_masks(features))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)], autograph=False)
        def serve_examples(examples):
            return transform_and_model(*transform.parse_examples(check_serialized_examples(examples)))

        @tf.function(input_signature=[input_signature(layout)], autograph=False)
        def serve_model_inputs(inputs):
            return model_fn(inputs)

        serve_candidates = None
        if candidates is not None:
            scorer = CandidateScorer(model, transform, layout, candidates)

            @tf.function(input_signature=[scorer.input_signature()], autograph=False)
            def serve_candidates(features):
                return _outputs(scorer(features), tasks)

        # Held outside the tracked attributes: tf.saved_model.save would otherwise trace each
        # function twice (once as an attribute, once as a signature), doubling the export time.
        self._fns = types.SimpleNamespace(serve_raw=serve_raw, serve_examples=serve_examples,
                                          serve_model_inputs=serve_model_inputs, serve_candidates=serve_candidates)

    @property
    def serve_raw(self):
        return self._fns.serve_raw

    @property
    def serve_examples(self):
        return self._fns.serve_examples

    @property
    def serve_model_inputs(self):
        return self._fns.serve_model_inputs

    @property
    def serve_candidates(self):
        return self._fns.serve_candidates

    def signatures(self) -> dict:
        """The signature functions (traced by ``tf.saved_model.save`` inside its save context)."""
        out = {
            SERVING_DEFAULT: self.serve_raw,
            PREDICT_EXAMPLES: self.serve_examples,
            PREDICT_MODEL_INPUTS: self.serve_model_inputs,
        }
        if self.serve_candidates is not None:
            out[SCORE_CANDIDATES] = self.serve_candidates
        return out

    def save(self, path: str) -> None:
        """``tf.saved_model.save`` with its signatures (tag ``serve``)."""
        tf.saved_model.save(self, path, signatures=self.signatures(),
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
