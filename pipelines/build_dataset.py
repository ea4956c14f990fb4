"""The dataset job: raw logs + feature spec -> transform artifact + time-split TFRecords (Apache Beam).

    python -m pipelines.build_dataset --spec=feature_specs/kuairand_synthetic.yaml \\
        --raw=/data/kuairand --output=/data/kuairand_tfrecords [--overwrite] [Beam options]

Runs on the DirectRunner with two worker processes unless told otherwise
(``--direct_num_workers=2 --direct_running_mode=multi_processing``); every flag this job does
not know is passed to Beam's ``PipelineOptions``, so ``--runner=FlinkRunner ...`` or
``--runner=DataflowRunner --project=... --temp_location=...`` run the same pipeline.

Exit status: 0 done, 1 the job failed (nothing committed), 2 bad spec/flags/schema/input (one
``error:`` line naming the file: unreadable or 0-byte file, column type differing between files,
duplicate users/items key, no events, wrong time unit, ``--fail_on_duplicates`` /
``--fail_on_missing_join``) or output exists.

The pipeline (all stages work on Arrow record batches, never on single rows)::

    (driver, before anything runs: every file's schema and rows, the time unit, users/items keys;
     --num_shards=auto from the rows)
    ReadEvents (Parquet batched / CSV)  ReadUsers, ReadItems -> canonical tables (side inputs)
        |
    CheckAndJoin ------------------------------> rejects: JSON lines + counts per reason/split
        | good rows (canonical, joined)
        +-> MaxTime -> Cuts (train < valid < test)
        |
    [per other counter key: shuffle by key shard -> point-in-time counters]
    shuffle by user shard -> Block (per-user sort, sequence ranges, user counters)
        +-> Analyze (train rows only): vocabularies, dense/counter quantiles or log ranges,
        |   stats, sequence length percentiles  -> transform artifact (JSON)
    WriteBlock (artifact as side input): bucket ids, sequences, Examples, GZIP TFRecords
        -> manifest; the driver then writes _SUCCESS markers and _DATASET.json, reconciles
           read = written + rejected per split, and commits the staging directory.

Output layout (under ``--output``)::

    transform/transform_artifact.json
    {train,valid,test}/dt=YYYY-MM-DD[/hr=HH]/part-SSSSS-of-NNNNN.tfrecord.gz  + _SUCCESS
                                (dt/hr in the spec's split.timezone; _SUCCESS = the partition's manifest:
                                every file with its rows, see infnet_tf.partitions)
    rejects/part-*.jsonl        one JSON object per rejected row: reason, column, value, row (the
                                directory exists even when nothing was rejected)
    _DATASET.json               counts per split/partition, duplicates, missing_join, artifact path,
                                spec fingerprint, job.num_shards
"""
from __future__ import annotations

import logging
import sys

# First: imports apache_beam with its import-time apitools warning silenced (pipelines.pipeline).
from pipelines.runner import bad_input_message, run, with_runner_defaults  # isort: skip
from absl import flags

from infnet_tf import config_flags
from pipelines import job
from pipelines.job import JobOptions

# This command's own flags, apart from absl's global ones: another command with flags of the same names
# (``infnet_tf.train --spec``) may be loaded in the same process (tests), and Beam takes the rest.
FLAGS = flags.FlagValues()
config_flags.define_flags(JobOptions, flag_values=FLAGS)  # --spec, --output, --raw, --overwrite, ...
flags.DEFINE_bool("verbose", False, "Also show Beam's own logs and the worker processes' (INFO and up); default: "
                  "only this job's progress, results and warnings/errors (INFNET_VERBOSE=1 does the same).",
                  flag_values=FLAGS)
PROGRAM = "python -m pipelines.build_dataset"


def _usage_error(message: str):
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """The flags parser of the command: this job's flags into ``FLAGS``; returns ``[program, *the other
    flags]`` (Beam's ``PipelineOptions``). ``--help``: the usage, exit 0; a bad value: one error line, exit 2."""
    return config_flags.parse_command_flags(FLAGS, argv, program=PROGRAM, usage=__doc__)


def options_from_flags(beam_args: list[str]) -> tuple[JobOptions, list[str]]:
    """The parsed flags as :class:`JobOptions`, and Beam's flags with the runner defaults added."""
    values = config_flags.values(JobOptions, FLAGS)
    for field, flag in (("spec_path", "spec"), ("output", "output")):
        if not values[field]:
            _usage_error(f"--{flag} is required")
    if values["num_shards"] != job.AUTO:
        try:
            values["num_shards"] = int(values["num_shards"])
        except ValueError:
            _usage_error(f"--num_shards: expected 'auto' or a positive int, got {values['num_shards']!r}")
    if (values["num_shards"] != job.AUTO and values["num_shards"] < 1) or values["batch_rows"] < 1 \
            or values["chunk_rows"] < 1:
        _usage_error("--num_shards, --batch_rows and --chunk_rows must be positive")
    if not 0 <= values["compression_level"] <= 9:
        _usage_error(f"--compression_level: expected 0..9, got {values['compression_level']}")
    verbose = FLAGS.verbose or _env_verbose()
    logging.getLogger("apache_beam").setLevel(logging.INFO if verbose else logging.WARNING)
    return JobOptions(**values), with_runner_defaults(beam_args, verbose=verbose)


def parse_args(args: list[str]) -> tuple[JobOptions, list[str]]:
    """Parse ``args`` (no program name) as the command does, in this process (tests, benches)."""
    FLAGS.unparse_flags()
    return options_from_flags(parse_flags([PROGRAM, *args])[1:])


def _env_verbose() -> bool:
    from infnet_tf.env import verbose

    return verbose()


def main(argv: list[str]) -> int:
    """``argv``: the program and Beam's flags (this job's are parsed into ``FLAGS`` already)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    options, beam_args = options_from_flags(argv[1:])
    try:
        run(options, beam_args)
    except Exception as exc:  # noqa: BLE001 - bad input -> exit 2 with one line; anything else propagates
        if isinstance(exc, job.ReconcileError):
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        message = bad_input_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2
    return 0


def command(args: list[str]) -> int:
    """``python -m pipelines.build_dataset ARGS`` in this process (tests): parse, run, the exit status."""
    FLAGS.unparse_flags()
    try:
        return main(parse_flags([PROGRAM, *args]))
    except SystemExit as exc:
        return exc.code


if __name__ == "__main__":
    from infnet_tf.env import run_main

    # absl's own flags (--verbosity, ...) after ours, for app.run
    run_main(main, flags_parser=lambda argv: flags.FLAGS(parse_flags(argv), known_only=True))
