"""Write synthetic KuaiRand-like raw logs: events.parquet, users.parquet and items.parquet.

    python -m pipelines.make_sample_data --output=DIR --num_impressions=200000 --seed=0

Writes the three Parquet files into DIR (created if missing) and prints row counts and base rates.
The output is byte-identical for the same flags; how the data and its labels arise:
:mod:`pipelines.sample_data` (the library; its ``Config`` fields are this command's flags). Exit
status: 0 done, 2 bad flags (one ``error:`` line naming the flag).
"""
from __future__ import annotations

import sys
import time

from absl import flags

from infnet_tf import config_flags
from pipelines import sample_data
from pipelines.sample_data import Config

# This command's own flags (not absl's global FLAGS): importing it next to another command that has
# flags of the same names (``--seed``, ``--output``) in one process does not collide.
FLAGS = flags.FlagValues()
flags.DEFINE_string("output", None, "Directory to write the three Parquet files into (created if missing).",
                    flag_values=FLAGS)
config_flags.define_flags(Config, flag_values=FLAGS)  # --num_impressions, --seed, --num_users, ...
PROGRAM = "python -m pipelines.make_sample_data"


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flags parser for this command: its flags into ``FLAGS`` (``--help``: exit 0; a bad value: one
    error line, exit 2), then absl's own (``--verbosity``, ...); returns what is left (program first)."""
    rest = config_flags.parse_command_flags(FLAGS, argv, program=PROGRAM, usage=__doc__)
    return flags.FLAGS(rest, known_only=True)


def main(argv: list[str]) -> int:
    """Generate the sample data from the parsed flags and print a summary; returns the exit status."""
    if len(argv) > 1:
        print(f"{PROGRAM}: error: unknown flags or arguments {argv[1:]}", file=sys.stderr)
        return 2
    if not FLAGS.output:
        print(f"{PROGRAM}: error: --output is required", file=sys.stderr)
        return 2
    config = Config(**config_flags.values(Config, FLAGS))
    try:
        sample_data.validate(config)
    except ValueError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    tables = sample_data.generate(config)
    paths = sample_data.write_tables(tables, FLAGS.output)
    print(sample_data.summarize(tables, paths))
    print(f"[make_sample_data] done in {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main, flags_parser=parse_flags)
