"""Write TF Serving's configuration files for an export base without exporting (e.g. after adding a
model by hand), and print the server commands:

    python -m export.serving_config --export_base=DIR [--serve_versions=1]

writes ``<export_base>/serving_config/{models.config, models.docker.config, batching_parameters.txt,
monitoring.config}`` (what every export also refreshes; the files and their contents:
:mod:`export.serving_files`) and prints ``wrote <path>`` per file, then the ``tensorflow_model_server``
and ``docker run`` command lines of every model under ``--export_base``. export/SERVING.md has the
server commands.
"""
from __future__ import annotations

import dataclasses
import sys

from absl import flags

from export.config import ExportConfig
from export.serving_files import model_names, server_commands, write_serving_config
from infnet_tf.config_flags import HELP

FLAGS = flags.FLAGS

flags.DEFINE_string("export_base", None, "Export base directory (holds <model_name>/<version>/).", required=True)
# the export's own setting (one declaration: ExportConfig.serve_versions)
_SERVE_VERSIONS = next(f for f in dataclasses.fields(ExportConfig) if f.name == "serve_versions")
flags.DEFINE_integer("serve_versions", _SERVE_VERSIONS.default, _SERVE_VERSIONS.metadata[HELP], lower_bound=1)


def main(argv) -> int:
    if len(argv) > 1:
        print(f"serving_config: error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    paths = write_serving_config(FLAGS.export_base, serve_versions=FLAGS.serve_versions)
    for path in paths.values():
        print(f"wrote {path}")
    for name in model_names(FLAGS.export_base):
        for kind, cmd in server_commands(FLAGS.export_base, name).items():
            print(f"{kind}: {cmd}")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
