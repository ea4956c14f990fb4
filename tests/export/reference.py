"""The numpy reference path for raw request rows: the dataset job's transform functions
(:meth:`TransformArtifact.transform_batch`, time-gap ids) plus the TFRecord sequence convention
(most recent ``max_len`` kept, right-padded to ``max_len``) — what the Beam job would have written
for these raw values. The in-graph serving transform must reproduce it exactly.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from infnet_tf.data.keys import LENGTH, TIME_GAP, cat_key, seq_key
from infnet_tf.data.layout import FeatureLayout
from infnet_tf.transform import TransformArtifact
from infnet_tf.transform_graph import EVENT_TIME, REQUEST_TIME


def reference_model_inputs(artifact: TransformArtifact, layout: FeatureLayout,
                           rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    n = len(rows)
    out: dict[str, np.ndarray] = {}
    columns = {f.name: np.asarray([r.get(f.name) for r in rows], dtype=object) for f in layout.categorical}
    for token, ids in artifact.transform_batch(columns, [f.name for f in layout.categorical]).items():
        out[cat_key(token)] = ids
    for seq in layout.sequences:
        items = [list(r.get(seq_key(seq.name, seq.fields[0].name)) or []) for r in rows]
        lengths = np.asarray([r.get(seq_key(seq.name, LENGTH), len(items[i])) for i, r in enumerate(rows)], np.int64)
        kept = np.minimum(lengths, seq.max_len)
        for f in seq.fields:
            ids = np.zeros((n, seq.max_len), np.int64)
            for i, r in enumerate(rows):
                values = list(r.get(seq_key(seq.name, f.name)) or [])[: lengths[i]]
                values = values[len(values) - kept[i]:] if kept[i] else []
                if values:
                    ids[i, : kept[i]] = artifact.token_ids(f.name, np.asarray(values, dtype=object))
            out[seq_key(seq.name, f.name)] = ids
        gaps = np.zeros((n, seq.max_len), np.int64)
        for i, r in enumerate(rows):
            times = list(r.get(seq_key(seq.name, EVENT_TIME)) or [])[: lengths[i]]
            times = times[len(times) - kept[i]:] if kept[i] else []
            if times:
                gap_ms = np.int64(r[REQUEST_TIME]) - np.asarray(times, np.int64)
                gaps[i, : kept[i]] = artifact.time_gap_ids(seq.name, gap_ms)
        out[seq_key(seq.name, TIME_GAP)] = gaps
        out[seq_key(seq.name, LENGTH)] = kept.astype(np.int64)
    return out
