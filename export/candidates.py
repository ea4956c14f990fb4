"""The ``score_candidates`` signature: one user x N candidate items per request.

Inputs are the raw serving inputs of ``serving_default`` (same names and dtypes), split by side (the
feature spec's ``side``, written by the dataset job into every transform-artifact entry):

* **user side**, one row: the user-side categorical, dense and counter inputs, every
  ``seq/<type>/*`` input and ``request_time_ms``;
* **candidate side**, N rows: the candidate-side categorical, dense and counter inputs (item id,
  item attributes, item counters, position).

Output: ``{task: float32 probability [N]}``, equal (≤ 1e-5) to ``serving_default`` on the N rows made
of the user's row next to each candidate's. The user side goes through the in-graph transform once
and the model computes its candidate-independent part once
(:mod:`infnet_tf.models.candidates`; a model without ``score_candidates``, e.g. a baseline, scores
the pairs with the user's ids repeated). Every user input must hold exactly one row; the graph checks
it at run time (INVALID_ARGUMENT naming the input), the per-side transforms check everything else
as ``serving_default`` does. The signature's shapes are those of ``serving_default`` (leading
dimension -1 everywhere): TF Serving does not check fed shapes against the placeholders, and Grappler
folds a static leading 1 into the graph, so a declared ``[1]`` would turn a two-row user input into
undefined behaviour instead of a clear error. Which input is on which side is in the version's
``assets.extra/infnet_export.json`` and ``sample_candidates_request.json``.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
import tensorflow as tf

from infnet_tf.data.layout import FeatureLayout
from infnet_tf.models.candidates import tiled_inputs
from infnet_tf.feature_spec import CANDIDATE_SIDE, SIDES
from infnet_tf.transform_graph import TransformGraph

SCORE_CANDIDATES = "score_candidates"


def candidate_tokens(artifact) -> tuple[str, ...]:
    """The candidate-side tokens of a transform artifact (each entry's ``"side"``), in token order.

    Raises ValueError naming the tokens without a side (an artifact written before sides existed:
    rebuild the dataset with a spec that declares them, ``feature_specs/README.md``)."""
    entries = {**artifact.categorical, **artifact.dense, **artifact.counters}
    missing = [t for t in artifact.token_names if entries[t].get("side") not in SIDES]
    if missing:
        raise ValueError(f"transform artifact: no side (user | candidate) for token(s) {missing[:8]}; it was "
                         f"written before the spec declared sides: rebuild the dataset (python -m "
                         f"pipelines.build_dataset) from a spec with side: on its events fields "
                         f"(feature_specs/README.md, 'sides')")
    return tuple(t for t in artifact.token_names if entries[t]["side"] == CANDIDATE_SIDE)


def side_layouts(layout: FeatureLayout, candidates: Sequence[str]) -> tuple[FeatureLayout, FeatureLayout]:
    """(user layout: user-side tokens and every sequence, candidate layout: candidate-side tokens)."""
    chosen = set(candidates)
    unknown = chosen - {f.name for f in layout.categorical}
    if unknown:
        raise ValueError(f"score_candidates: candidate token(s) {sorted(unknown)} are not in the model's layout")
    user = dataclasses.replace(layout, categorical=tuple(f for f in layout.categorical if f.name not in chosen))
    cand = dataclasses.replace(layout, categorical=tuple(f for f in layout.categorical if f.name in chosen),
                               sequences=())
    if not cand.categorical:
        raise ValueError("score_candidates: no candidate-side token (declare side: candidate on the item's fields)")
    if not user.categorical and not user.sequences:
        raise ValueError("score_candidates: no user-side input (no user-side token and no behaviour sequence)")
    return user, cand


class CandidateScorer:
    """Raw user row + raw candidate rows -> {task: probability [N]} (a plain callable, traced by the
    serving module inside its ``tf.function``)."""

    def __init__(self, model, transform: TransformGraph, layout: FeatureLayout, candidates: Sequence[str]):
        user_layout, cand_layout = side_layouts(layout, candidates)
        self.model = model
        self.user = transform.restricted(user_layout, name="transform_user")
        self.candidates = transform.restricted(cand_layout, name="transform_candidates")

    @property
    def user_inputs(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.user.inputs)

    @property
    def candidate_inputs(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.candidates.inputs)

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """``serving_default``'s raw inputs (see the module docstring for why the user side is not [1])."""
        return {**self.user.input_signature(), **self.candidates.input_signature()}

    def __call__(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        user = one_row({k: features[k] for k in self.user_inputs})
        user_ids = self.user.transform(user)
        candidate_ids = self.candidates.transform({k: features[k] for k in self.candidate_inputs})
        if hasattr(self.model, "score_candidates"):        # INFNet: the user side computed once
            return self.model.score_candidates(user_ids, candidate_ids)
        return self.model(tiled_inputs(user_ids, candidate_ids), training=False)   # other models: the pairs


def one_row(user: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """``user`` gated on every input having leading dimension 1 (INVALID_ARGUMENT naming the input)."""
    checks = [tf.raw_ops.Assert(
        condition=tf.reduce_all(tf.equal(tf.shape(x)[:1], 1)),
        data=[tf.constant(f"input {name} is on the user side of score_candidates and must hold one row "
                          f"(one user per request); got shape"), tf.shape(x)])
        for name, x in user.items()]
    with tf.control_dependencies(checks):
        return {k: tf.identity(v) for k, v in user.items()}


# -- requests (numpy, raw columns as RawDecoder / the client build them) ----------------------------------
def candidate_raw_inputs(raw_inputs, candidates: Sequence[str]) -> tuple[str, ...]:
    """Names of the candidate-side raw inputs among ``raw_inputs`` (``RawInput``s)."""
    chosen = set(candidates)
    return tuple(r.name for r in raw_inputs if r.token in chosen and r.kind in ("categorical", "dense", "counter"))


def candidates_request(columns: Mapping, candidate_inputs: Sequence[str], user_row: int = 0) -> dict:
    """A ``score_candidates`` request from raw columns of N rows: the user side of row ``user_row``
    (leading dimension 1) and the candidate side of every row."""
    names = set(candidate_inputs)
    return {k: (v if k in names else v[user_row:user_row + 1]) for k, v in columns.items()}


def tiled_request(request: Mapping, candidate_inputs: Sequence[str]) -> dict:
    """The ``serving_default`` columns scoring the same pairs: the user row repeated next to each candidate."""
    import numpy as np

    n = len(request[candidate_inputs[0]])
    names = set(candidate_inputs)
    return {k: (v if k in names else np.repeat(v, n, axis=0)) for k, v in request.items()}


def request_object(rows: Sequence[Mapping], candidate_inputs: Sequence[str]) -> dict:
    """A client request (``export.client --signature_name=score_candidates`` line) from raw rows in the
    client's ``--rows`` form: ``{"user": <the first row's user-side inputs>, "candidates": [<each
    row's candidate-side inputs>]}``."""
    names = set(candidate_inputs)
    return {"user": {k: v for k, v in rows[0].items() if k not in names},
            "candidates": [{k: v for k, v in row.items() if k in names} for row in rows]}
