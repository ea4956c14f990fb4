"""Test-session setup shared by every test.

* ``import infnet_tf`` first, so TensorFlow loads with Keras 2 (TF_USE_LEGACY_KERAS=1).
* Exit status guard: once tensorflow-io's S3 filesystem has been touched, the interpreter aborts at
  exit ("pure virtual method called", status 134; tensorflow-io issue 2039). The last
  ``pytest_unconfigure`` hook flushes and leaves through ``os._exit`` with pytest's own status, so a
  passing run exits 0, a failing one 1 and an empty one 5, whatever tensorflow-io does at teardown.
"""
import pytest

import infnet_tf  # noqa: F401  (must precede any TensorFlow import)
from infnet_tf.env import hard_exit

_exit_status = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    code = _exit_status["code"]
    if code is not None and not config.getoption("--no-hard-exit"):
        hard_exit(code)


def pytest_addoption(parser):
    parser.addoption("--no-hard-exit", action="store_true",
                     help="leave pytest through normal interpreter teardown (may abort with status "
                          "134 once s3:// was touched; see WORKSPACE.md)")
