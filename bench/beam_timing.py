"""The dataset job timed two ways on the same input: the Beam job vs the same work in a plain loop
(the library of ``python -m bench.beam_throughput``).

:func:`measure` generates KuaiRand-like sample data (:mod:`pipelines.sample_data`), then runs, in this
one process, (1) ``pipelines.plain.run`` — a single-process pyarrow/numpy loop — and (2)
``pipelines.runner.run`` — the Beam job (by default on the DirectRunner with two worker processes).
Both call the same per-batch functions and write the same outputs, so the ratio of their wall times
is Beam's overhead (or, with two cores, its gain).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from typing import Callable

from infnet_tf.config_flags import setting


@dataclasses.dataclass(frozen=True)
class BeamBench:
    """What the bench runs (each field is a ``bench.beam_throughput`` flag)."""

    num_impressions: int = setting(1_000_000, "Sample impressions (rows of the dataset job's input).")
    seed: int = setting(0, "Random seed of the sample data.")
    spec: str = setting("feature_specs/kuairand_synthetic.yaml", "Feature spec YAML both runs use.")
    num_shards: int = setting(32, "User shards in both runs.")
    work_dir: str | None = setting(None, "Where data and outputs go (default: a temp dir, deleted afterwards).")
    skip_plain: bool = setting(False, "Only run the Beam job (no ratio).")


def _written(summary: dict) -> int:
    return sum(c["written"] for c in summary["counts"].values())


def measure(bench: BeamBench, beam_flags: list[str], log: Callable[[str], None] = print) -> float | None:
    """Run both (or, with ``skip_plain``, only the Beam job with ``beam_flags``: Beam's
    ``PipelineOptions``, runner defaults already added), logging rows/second of each; returns Beam
    seconds / plain seconds (None with ``skip_plain``)."""
    from infnet_tf.feature_spec import load_spec
    from pipelines import plain, runner, sample_data
    from pipelines.job import JobOptions

    n = bench.num_impressions
    work = bench.work_dir or tempfile.mkdtemp(prefix="beam_throughput_")
    try:
        raw = os.path.join(work, "raw")
        started = time.perf_counter()
        config = sample_data.Config(num_impressions=n, seed=bench.seed)
        sample_data.write_tables(sample_data.generate(config, log=lambda *_: None), raw)
        log(f"sample data: {n:,} impressions in {time.perf_counter() - started:.1f}s")
        spec = load_spec(bench.spec)
        common = dict(spec_path=bench.spec, raw=raw, num_shards=bench.num_shards, overwrite=True)

        plain_s = None
        if not bench.skip_plain:
            started = time.perf_counter()
            plain_summary = plain.run(spec, JobOptions(output=os.path.join(work, "plain"), **common))
            plain_s = time.perf_counter() - started
            log(f"plain loop (1 process, pyarrow/numpy): {n:,} rows in {plain_s:.1f}s = "
                f"{n / plain_s:,.0f} rows/s ({_written(plain_summary):,} examples)")

        started = time.perf_counter()
        beam_summary = runner.run(JobOptions(output=os.path.join(work, "beam"), **common), beam_flags)
        beam_s = time.perf_counter() - started
        log(f"beam job ({' '.join(beam_flags)}): {n:,} rows in {beam_s:.1f}s = "
            f"{n / beam_s:,.0f} rows/s ({_written(beam_summary):,} examples)")
        if plain_s is None:
            return None
        if beam_summary["counts"] != plain_summary["counts"]:
            log(f"WARNING: counts differ: beam {beam_summary['counts']} vs plain {plain_summary['counts']}")
        return beam_s / plain_s
    finally:
        if bench.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
