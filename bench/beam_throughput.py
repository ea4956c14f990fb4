"""Dataset job throughput: the Beam job on the DirectRunner vs the same work in a plain loop.

    python -m bench.beam_throughput [--num_impressions=1000000] [--num_shards=32] [Beam flags]

Generates KuaiRand-like sample data, then runs, in this one process and on the same input, a
single-process pyarrow/numpy loop (``pipelines.plain``) and the Beam job (by default on the
DirectRunner with two worker processes; every flag this bench does not know goes to Beam's
``PipelineOptions``). Both do the same work and write the same outputs (:mod:`bench.beam_timing`),
so the ratio is Beam's overhead (or, with two cores, its gain). Prints rows/second of each and, as
the last line, ``RATIO beam_over_plain_seconds=<beam seconds / plain seconds>``.
"""
from __future__ import annotations

import logging

# First: imports apache_beam with its import-time apitools warning silenced (pipelines.pipeline).
from pipelines.runner import with_runner_defaults  # isort: skip
from absl import flags

from bench.beam_timing import BeamBench, measure
from infnet_tf import config_flags

# This bench's own flags (not absl's global FLAGS): Beam takes the ones it does not know.
FLAGS = flags.FlagValues()
config_flags.define_flags(BeamBench, flag_values=FLAGS)  # --num_impressions, --seed, --spec, --num_shards, ...
PROGRAM = "python -m bench.beam_throughput"


def parse_flags(argv: list[str]) -> list[str]:
    """This bench's flags into ``FLAGS`` (``--help``: exit 0; a bad value: one error line, exit 2); returns
    ``[program, *the other flags]`` (absl's own, then Beam's ``PipelineOptions``)."""
    return config_flags.parse_command_flags(FLAGS, argv, program=PROGRAM, usage=__doc__)


def main(argv: list[str]) -> int:
    """``argv``: the program and Beam's flags (this bench's are parsed into ``FLAGS`` already)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    bench = BeamBench(**config_flags.values(BeamBench, FLAGS))
    ratio = measure(bench, with_runner_defaults(argv[1:]), log=lambda line: print(line, flush=True))
    if ratio is not None:
        print(f"RATIO beam_over_plain_seconds={ratio:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    # absl's own flags (--verbosity, ...) after ours, for app.run
    run_main(main, flags_parser=lambda argv: flags.FLAGS(parse_flags(argv), known_only=True))
