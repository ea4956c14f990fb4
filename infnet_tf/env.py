"""Process environment for every infnet entry point.

* Selects Keras 2 (``tf_keras``) by setting ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads.
* Defaults ``TF_CPP_MIN_LOG_LEVEL`` to 3 (TensorFlow's C++ start-up noise off) unless
  ``INFNET_VERBOSE=1`` (then 0: everything); an explicit ``TF_CPP_MIN_LOG_LEVEL`` wins.
* ``run_main``: runs an absl ``main`` and leaves through ``os._exit`` with the real status, because
  once tensorflow-io's S3 filesystem has been touched the interpreter aborts at exit with
  "pure virtual method called" (status 134; tensorflow-io issue 2039). Flushing stdio first and
  skipping the interpreter's teardown keeps the exit status truthful. ``--help``/``--helpfull``
  (which absl ends with status 1) leave with status 0.

Fast ``--help`` for an entry point: keep TensorFlow out of the module's import-time code (flag
definitions and their defaults must not import it; import TensorFlow inside ``main``), so absl
parses the flags — and answers ``--help`` — before TensorFlow loads. ``help_requested(argv)`` tells
whether a command line asks for help.
"""
from __future__ import annotations

import os
import sys

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "TensorFlow was imported before infnet_tf; import infnet_tf first (it sets "
        "TF_USE_LEGACY_KERAS=1 so tf.keras is Keras 2), or export TF_USE_LEGACY_KERAS=1."
    )
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
VERBOSE_ENV = "INFNET_VERBOSE"


def verbose() -> bool:
    """``INFNET_VERBOSE=1``: keep every library log line (TensorFlow C++ logs, absl INFO, TensorFlow's
    Python warnings)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


# TensorFlow's C++ logging reads this once, when TensorFlow loads. 3 hides the start-up lines every
# process prints on a CPU machine ("Unable to register cuFFT/cuDNN/cuBLAS factory", E-level, from
# absl C++ logging in XLA); failures still surface as Python exceptions. INFNET_VERBOSE=1 shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")


HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml", "--help=true",
              "--helpfull=true", "--helpshort=true")


def help_requested(argv=None) -> bool:
    """True when the command line (default ``sys.argv``) asks for absl's usage text."""
    args = sys.argv[1:] if argv is None else list(argv)[1:]
    for arg in args:
        if arg == "--":
            return False
        if arg.lower() in HELP_FLAGS:
            return True
    return False


def hard_exit(status: int) -> None:
    """Flush stdio and leave the process with ``status``, skipping interpreter teardown."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(int(status))


def _status_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


# absl WARNING lines TensorFlow prints for things that are fine (the model-input keys contain "/",
# so every signature argument gets "Sanitizing to ..." once per trace).
_HARMLESS = ("is not a valid tf.function parameter name",
             "Changing the value of option auto_shard_policy")  # a multi-worker's own file share


def _drop_known_harmless(record) -> bool:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is not ours to judge
        return True
    return not any(text in message for text in _HARMLESS)


def _quiet_main(main):
    """Wrap ``main`` so library chatter stays off unless ``--verbosity`` or ``INFNET_VERBOSE=1``:
    absl/TensorFlow INFO, and TensorFlow's Python warnings (deprecation notices, tf.function
    argument renames — each printed twice, by TensorFlow's handler and absl's)."""
    from absl import flags, logging

    def wrapped(argv):
        if not flags.FLAGS["verbosity"].present and not verbose():
            logging.set_verbosity(logging.WARNING)
            import logging as std_logging

            std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
            std_logging.getLogger("absl").addFilter(_drop_known_harmless)
        return main(argv)

    return wrapped


def run_main(main, argv=None, flags_parser=None) -> None:
    """``absl.app.run(main)`` whose exit status survives tensorflow-io's exit abort.
    ``flags_parser``: absl's ``flags_parser`` (e.g. one that leaves unknown flags to Beam).

    Progress output is the program's own; absl/TensorFlow INFO logging and TensorFlow's Python
    warnings are off by default (``--verbosity=0`` or ``INFNET_VERBOSE=1`` turn them back on).
    ``--help``/``--helpfull`` exit 0.
    """
    from absl import app

    if argv is None:
        argv = list(sys.argv)
    end = argv.index("--") if "--" in argv else len(argv)
    if "-h" in argv[1:end]:  # absl knows -? and --help, not -h
        argv = [argv[0]] + [("--help" if a == "-h" else a) for a in argv[1:end]] + argv[end:]
    asked_for_help = help_requested(argv)
    try:
        app.run(_quiet_main(main), argv=argv, **({"flags_parser": flags_parser} if flags_parser else {}))
        status = 0
    except SystemExit as exc:
        status = _status_of(exc)
        if asked_for_help and status == 1:  # absl exits 1 after printing the requested usage
            status = 0
    except BaseException:  # noqa: BLE001 - print the traceback, then exit non-zero
        import traceback

        traceback.print_exc()
        status = 1
    hard_exit(status)
