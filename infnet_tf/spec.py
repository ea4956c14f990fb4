"""Check feature spec files (feature_specs/README.md documents the format).

    python -m infnet_tf.spec FILE [FILE ...]

Prints ``FILE: OK <summary>`` per valid feature spec YAML FILE and exits 0, or prints each error to
stderr (the file, the field path and what was expected) and exits 2; every FILE is checked. No
TensorFlow import.

This is the command's entry module; the spec format and its loader live in
:mod:`infnet_tf.feature_spec` (library code imports that). ``infnet_tf.spec`` re-exports it, so
``from infnet_tf.spec import load_spec`` in users' code keeps working.
"""
from __future__ import annotations

import sys

from infnet_tf import feature_spec as _feature_spec
from infnet_tf.feature_spec import *  # noqa: F401,F403  (users' code: infnet_tf.spec.load_spec, ...)
from infnet_tf.feature_spec import __all__ as _library_names

__all__ = [*_library_names, "main"]
PROGRAM = "python -m infnet_tf.spec"


def __getattr__(name: str):
    """The library's other public names too (``infnet_tf.spec.tzinfo_of``, ``CANDIDATE_SIDE``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_feature_spec, name)


def main(argv: list[str]) -> int:
    """``argv``: the program and the spec files (absl's ``main`` convention)."""
    files = list(argv[1:])
    if not files:
        print(f"{PROGRAM}: error: give at least one FILE (a feature spec YAML) to check", file=sys.stderr)
        return 2
    unknown = [a for a in files if a.startswith("-")]
    if unknown:
        print(f"{PROGRAM}: error: unknown flag(s) {' '.join(unknown)}; usage: {PROGRAM} FILE [FILE ...]",
              file=sys.stderr)
        return 2
    return _feature_spec.check_files(files)


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
