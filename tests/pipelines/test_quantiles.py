"""Analyze: Beam's approximate quantile boundaries vs numpy.quantile, NaN and nulls ignored."""
from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from pipelines import analyze

from .conftest import IN_MEMORY


def _rank_error(values: np.ndarray, quantiles: list, num_buckets: int) -> float:
    s = np.sort(values)
    worst = 0.0
    for i, q in enumerate(quantiles[1:-1], start=1):
        lo, hi = np.searchsorted(s, q, "left"), np.searchsorted(s, q, "right")  # ranks q occupies
        target = i / num_buckets * s.size
        worst = max(worst, 0.0 if lo <= target <= hi else min(abs(lo - target), abs(hi - target)) / s.size)
    return worst


def test_quantiles_agree_with_numpy_within_rank_error():
    rng = np.random.default_rng(0)
    data = {"lognormal": rng.lognormal(sigma=2.0, size=40_000), "discrete": rng.integers(0, 50, 40_000).astype(float)}
    batches = []
    for name, values in data.items():
        with_nan = values.copy()
        with_nan[::97] = np.nan  # ignored when fitting
        for part in np.array_split(with_nan, 13):
            batches.append((name, part[~np.isnan(part)].tolist()))
    num_buckets = 16

    def check(results):
        got = dict(results)
        if set(got) != set(data):
            raise BeamAssertException(f"keys {set(got)}")
        for name, q in got.items():
            finite = data[name].copy()
            finite[::97] = np.nan
            finite = finite[~np.isnan(finite)]
            err = _rank_error(finite, q, num_buckets)
            if err > analyze.EPSILON:
                raise BeamAssertException(f"{name}: rank error {err} > {analyze.EPSILON}")
            exact = np.quantile(finite, np.arange(1, num_buckets) / num_buckets)
            if name == "discrete" and not np.allclose(q[1:-1], exact):
                raise BeamAssertException(f"{name}: {q[1:-1]} vs {exact}")

    with test_pipeline.TestPipeline(options=PipelineOptions(IN_MEMORY)) as p:
        out = (p | beam.Create(batches, reshuffle=False)
               | beam.CombinePerKey(analyze.quantile_combine_fn(num_buckets)))
        assert_that(out, check)


def test_batch_partials_ignore_nan_and_non_train_rows():
    import pyarrow as pa
    import types

    from pipelines.columns import TIME, label_column
    from pipelines.split import Cuts

    spec = types.SimpleNamespace(
        tasks=[types.SimpleNamespace(name="click")],
        categorical=[types.SimpleNamespace(name="tab", vocabulary=types.SimpleNamespace(min_count=1))],
        dense=[types.SimpleNamespace(name="x", binning=types.SimpleNamespace(type="quantile", num_buckets=4)),
               types.SimpleNamespace(name="y", binning=types.SimpleNamespace(type="log", num_buckets=4))])
    table = pa.table({TIME: [0, 1, 2, 10], label_column("click"): [1, -1, 0, 1], "tab": pa.array([1, None, 1, 7]),
                      "x": [1.0, np.nan, 3.0, 100.0], "y": [-5.0, 2.0, np.nan, 1e6]})
    acc, quantiles = analyze.batch_partials(table, spec, Cuts(valid_start_ms=5, test_start_ms=8, partition="daily"))
    assert acc["rows"] == 3 and acc["labels"]["click"] == [1, 2]
    assert quantiles == [("x", [1.0, 3.0])]                       # NaN and the test row dropped
    assert acc["numeric"]["x"]["nulls"] == 1
    assert acc["numeric"]["y"]["log_range"] == [-np.log1p(5.0), np.log1p(2.0)]
    assert acc["vocab"]["tab"].to_pydict() == {"values": [1], "counts": [2]}
