r"""The benchmark report: INFNet vs baselines, ablations, hub sweep, scaling, efficiency, attention.

    python -m bench.report --spec=feature_specs/kuairand_synthetic.yaml --data=DIR [--smoke]
        [--sections=quality,ablations,hubs,scaling,attention,efficiency] [--seeds=3]
        [--max_epochs=8 --patience=2 | --steps=N --rounds=R] [--batch_size=0] ...
    python -m bench.report --data=DIR --sections=gbdt     # the LightGBM reference alone

Runs the documented suite (``bench/REPORT.md``) on a prepared dataset (the dataset job's output:
``<data>/{train,valid,test}/dt=*`` and ``<data>/transform/transform_artifact.json``) and writes
``<output_dir>/<run_name>/`` (default ``$INFNET_WORKDIR/bench/<UTC time>/``, i.e.
``./workdir/bench/...`` — never into the checkout's tracked files):


* ``report.md`` — the report (hardware, versions, seeds, the exact command, wall time per section,
  every table; nothing typed by hand);
* ``report.json`` — everything in the report, and the data of every figure under
  ``sections.<section>.figures.<png>``;
* ``quality_auc.png``, ``ablations.png``, ``hub_sweep.png``, ``scaling.png``,
  ``efficiency_seq_len.png``, ``attention_heatmap.png``;
* ``runs/<model>-<key>/`` — each trained model (the batch trainer's ``metrics.json``, TensorBoard
  logs, ``bench_run.json``).

Every model is trained by the product's batch mode (``Trainer`` + ``run_batch``) with the same
protocol, selected on valid/ and reported on test/. By default that is the product's own recipe
(equal treatment): up to ``--max_epochs`` full passes over train/, early stopping after
``--patience`` rounds without a better mean valid AUC, the best round restored, batch size from
``infnet_tf.training.recipe.auto_batch_size`` of the train rows (``--batch_size=0``; a value
overrides). ``--steps`` > 0 switches to a fixed budget of ``--steps`` steps in ``--rounds`` rounds
(what ``--smoke`` uses). The quality table adds "infnet (paper preset)" (the ``paper`` preset of
``infnet_tf.models.presets`` on the same base INFNet); the ablation rows are that module's
``ABLATIONS``. Flags left unset take the defaults of
:mod:`bench.report_lib.config` (or its ``SMOKE`` preset with ``--smoke``); the flags are the fields of
its ``SuiteConfig``, and the run itself is :mod:`bench.report_lib.build`. Re-running with the same
``--run_name`` re-uses finished model runs.

Sections run independently: ``--sections`` picks any of them; ``gbdt`` (not in the default list; its
row is part of the quality table) runs the LightGBM reference without training any deep model.
``--width`` (alias ``--d``) is the base width of *every* model: the token/embedding width and, by the
width rule of :mod:`bench.report_lib.config`, every hidden width (registry default × width/64) —
unlike ``python -m infnet_tf.train --d``, which sets the token width only. Exit status: 0, 1 if any model run or section failed
(the report is still written), 2 for bad flags or data.
"""
from __future__ import annotations

import sys

from absl import flags

from bench.report_lib import config as cfg_lib
from bench.report_lib.config import SuiteConfig
from infnet_tf import config_flags

# This command's own flags (not absl's global FLAGS): another command with flags of the same names
# (``infnet_tf.train --data``) may be imported in the same process (tests).
FLAGS = flags.FlagValues()
config_flags.define_flags(SuiteConfig, flag_values=FLAGS)  # --data, --spec, --sections, --width, --smoke, ...
flags.DEFINE_alias("d", "width", flag_values=FLAGS)
for _field, _value in cfg_lib.SMOKE.items():  # the --help of a flag the SMOKE preset sets says so
    FLAGS[config_flags.flag_names(SuiteConfig)[_field]].help += (
        f" --smoke: {','.join(map(str, _value)) if isinstance(_value, tuple) else _value}.")
PROGRAM = "python -m bench.report"


def _usage_error(message: str):
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """This command's flags into ``FLAGS`` (``--help``: exit 0; a bad value: one error line, exit 2);
    returns the rest (absl's own flags, ``--verbosity`` ...) with the program name."""
    return config_flags.parse_command_flags(FLAGS, argv, program=PROGRAM, usage=__doc__)


def suite_from_flags() -> SuiteConfig:
    """The parsed flags as a :class:`SuiteConfig` (unset flags: the ``SMOKE`` preset with ``--smoke``, else
    the defaults). A missing ``--data`` or a bad value: one error line, exit 2."""
    if not FLAGS.data:
        _usage_error("--data is required")
    try:
        return cfg_lib.suite_from_flags(config_flags.values(SuiteConfig, FLAGS),
                                        config_flags.explicit(SuiteConfig, FLAGS))
    except ValueError as exc:
        _usage_error(str(exc).removeprefix("bench.report: "))


def parse_args(args: list[str]) -> SuiteConfig:
    """Parse ``args`` (no program name) as the command does, in this process (tests)."""
    FLAGS.unparse_flags()
    rest = parse_flags([PROGRAM, *args])
    if len(rest) > 1:
        _usage_error(f"unknown flags or arguments {rest[1:]}")
    return suite_from_flags()


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        _usage_error(f"unknown flags or arguments {argv[1:]}")
    suite = suite_from_flags()
    from bench.report_lib import build

    try:
        artifact, layout = build.load_data(suite)
    except (ValueError, FileNotFoundError) as exc:
        _usage_error(str(exc))
    return build.run(suite, artifact, layout, sys.argv[1:])


if __name__ == "__main__":
    from infnet_tf.env import run_main

    # absl's own flags (--verbosity, ...) after ours, for app.run
    run_main(main, flags_parser=lambda argv: flags.FLAGS(parse_flags(argv), known_only=True))
