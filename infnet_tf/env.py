"""Process environment for every infnet entry point.

* Selects Keras 2 (``tf_keras``) by setting ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads.
* ``run_main``: runs an absl ``main`` and leaves through ``os._exit`` with the real status, because
  once tensorflow-io's S3 filesystem has been touched the interpreter aborts at exit with
  "pure virtual method called" (status 134; tensorflow-io issue 2039). Flushing stdio first and
  skipping the interpreter's teardown keeps the exit status truthful.
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def _quiet_main(main):
    """Wrap ``main`` so TensorFlow's INFO chatter stays off unless ``--verbosity`` is given."""
    from absl import flags, logging

    def wrapped(argv):
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        return main(argv)

    return wrapped


def run_main(main, argv=None) -> None:
    """``absl.app.run(main)`` whose exit status survives tensorflow-io's exit abort.

    Progress output is the program's own; absl/TensorFlow INFO logging is off by default
    (``--verbosity=0`` turns it back on).
    """
    from absl import app

    try:
        app.run(_quiet_main(main), argv=argv)
        status = 0
    except SystemExit as exc:
        status = _status_of(exc)
    except BaseException:  # noqa: BLE001 - print the traceback, then exit non-zero
        import traceback

        traceback.print_exc()
        status = 1
    hard_exit(status)
