"""Dataset job throughput: the Beam job on the DirectRunner vs the same work in a plain loop.

    python -m bench.beam_throughput [--num_impressions=1000000] [--num_shards=32] [Beam flags]

Generates KuaiRand-like sample data (``pipelines.make_sample_data``), then runs, in this one
process and on the same input, (1) ``pipelines.plain.run`` — a single-process pyarrow/numpy loop
— and (2) ``pipelines.runner.run`` — the Beam job, by default on the DirectRunner with two
worker processes. Both call the same per-batch functions (check + join, analyzers, point-in-time
pass, encoder, writers) and write the same outputs (artifact, TFRecords, rejects, _DATASET.json),
so the ratio is Beam's overhead (or, with two cores, its gain). Prints rows/second of each and,
as the last line, ``RATIO beam_over_plain_seconds=<beam seconds / plain seconds>``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before any TensorFlow import)
from infnet_tf.spec import load_spec
from pipelines import make_sample_data, plain, runner
from pipelines.job import JobOptions


def _written(summary: dict) -> int:
    return sum(c["written"] for c in summary["counts"].values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.beam_throughput", description=__doc__.split("\n\n")[0],
                                     epilog="Unknown flags go to Beam (default: DirectRunner, 2 worker processes).")
    parser.add_argument("--num_impressions", type=int, default=1_000_000, help="sample impressions (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", default="feature_specs/kuairand_synthetic.yaml")
    parser.add_argument("--num_shards", type=int, default=32, help="user shards in both runs (default %(default)s)")
    parser.add_argument("--work_dir", default=None, help="where data and outputs go (default: a temp dir, deleted)")
    parser.add_argument("--skip_plain", action="store_true", help="only run the Beam job (no ratio)")
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)

    work = args.work_dir or tempfile.mkdtemp(prefix="beam_throughput_")
    try:
        raw = os.path.join(work, "raw")
        started = time.perf_counter()
        config = make_sample_data.Config(num_impressions=args.num_impressions, seed=args.seed)
        make_sample_data.write_tables(make_sample_data.generate(config, log=lambda *_: None), raw)
        print(f"sample data: {args.num_impressions:,} impressions in {time.perf_counter() - started:.1f}s", flush=True)
        spec = load_spec(args.spec)
        common = dict(spec_path=args.spec, raw=raw, num_shards=args.num_shards, overwrite=True)

        plain_s = None
        if not args.skip_plain:
            started = time.perf_counter()
            plain_summary = plain.run(spec, JobOptions(output=os.path.join(work, "plain"), **common))
            plain_s = time.perf_counter() - started
            print(f"plain loop (1 process, pyarrow/numpy): {args.num_impressions:,} rows in {plain_s:.1f}s = "
                  f"{args.num_impressions / plain_s:,.0f} rows/s ({_written(plain_summary):,} examples)", flush=True)

        beam_flags = runner.with_runner_defaults(beam_args)
        started = time.perf_counter()
        beam_summary = runner.run(JobOptions(output=os.path.join(work, "beam"), **common), beam_flags)
        beam_s = time.perf_counter() - started
        print(f"beam job ({' '.join(beam_flags)}): {args.num_impressions:,} rows in {beam_s:.1f}s = "
              f"{args.num_impressions / beam_s:,.0f} rows/s ({_written(beam_summary):,} examples)", flush=True)
        if plain_s is None:
            return 0
        if beam_summary["counts"] != plain_summary["counts"]:
            print(f"WARNING: counts differ: beam {beam_summary['counts']} vs plain {plain_summary['counts']}")
        print(f"RATIO beam_over_plain_seconds={beam_s / plain_s:.3f}", flush=True)
        return 0
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    from infnet_tf.env import hard_exit

    hard_exit(main())
