"""Shared fixtures of the export tests.

``sample_export`` (session): the synthetic sample data through the dataset job (raw rows captured),
a real Trainer's checkpoint (d=8, one block, random weights) and ``python -m export.export_model``
run as a subprocess — version 1 under ``<tmp>/exports/infnet``. Every serving test uses that one
export; tests that publish more versions copy it to their own export base first.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import infnet_tf  # noqa: F401

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_module(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def sample_export(tmp_path_factory):
    from infnet_tf.data.artifact import load_layout
    from tests.export import sample_data
    from tests.export.fixtures import make_trainer

    root = str(tmp_path_factory.mktemp("sample_export"))
    built = sample_data.build(root)
    layout = load_layout(built["data"])
    model_dir = os.path.join(root, "model")
    trainer = make_trainer(model_dir, layout)
    trainer.save_checkpoint()
    export_base = os.path.join(root, "exports")
    proc = run_module("export.export_model", f"--model_dir={model_dir}", f"--data={built['data']}",
                      f"--export_base={export_base}", "--model_name=infnet", "--keep=5",
                      "--gate_metric_threshold=0.01")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(built, root=root, layout=layout, model_dir=model_dir, trainer=trainer, export_base=export_base,
                model_root=os.path.join(export_base, "infnet"), version_dir=os.path.join(export_base, "infnet", "1"),
                cli_output=proc.stdout)


@pytest.fixture(scope="session")
def served(sample_export):
    """The exported version loaded the way TF Serving loads it (TF1 session loader)."""
    from export.session_model import SessionModel

    model = SessionModel(sample_export["version_dir"])
    yield model
    model.close()
