"""``export.config.ExportConfig``: the export's settings, declared once (flag, help, default, range)."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from export import exporter
from export.config import DEFAULTS, ExportConfig, check_settings
from export.warmup import MAX_WARMUP_RECORDS
from tests.export.conftest import run_module


def test_functions_take_the_config_defaults():
    """export_model / export_from_checkpoint / export_from_trainer default each setting they take to the
    field's default (no second copy of a default to drift)."""
    fields = {f.name: f.default for f in dataclasses.fields(ExportConfig)}
    assert fields == {"model_name": "infnet", "keep": 5, "gate_metric_threshold": 0.01, "holdout": None,
                      "holdout_max_rows": 10_000, "precision": "float32", "warmup_records": 32,
                      "serve_versions": 1, "force": False}
    taken = set()
    for fn in (exporter.export_model, exporter.export_from_checkpoint, exporter.export_from_trainer):
        for name, param in inspect.signature(fn).parameters.items():
            if name in fields and param.default is not inspect.Parameter.empty:
                assert param.default == fields[name], (fn.__name__, name)
                taken.add(name)
    assert taken == set(fields)  # every setting reaches the export through some function's keyword


@pytest.mark.parametrize("settings, message", [
    ({"keep": 0}, "--keep must be >= 1, got 0"),
    ({"holdout_max_rows": 0}, "--holdout_max_rows must be >= 1, got 0"),
    ({"serve_versions": -1}, "--serve_versions must be >= 1, got -1"),
    ({"warmup_records": MAX_WARMUP_RECORDS + 1}, f"--warmup_records must be in [1, {MAX_WARMUP_RECORDS}], got 1001"),
    ({"warmup_records": 0}, f"--warmup_records must be in [1, {MAX_WARMUP_RECORDS}], got 0"),
    ({"gate_metric_threshold": -0.5}, "--gate_metric_threshold must be >= 0, got -0.5"),
    ({"precision": "float64"}, "--precision must be one of float32|trained|mixed_float16|mixed_bfloat16"),
])
def test_out_of_range_settings_are_refused_naming_the_flag(settings, message):
    with pytest.raises(ValueError) as exc:
        ExportConfig(**settings)
    assert message in str(exc.value)
    with pytest.raises(ValueError):
        check_settings(**settings)


def test_limits_are_accepted():
    config = ExportConfig(keep=1, holdout_max_rows=1, serve_versions=1, warmup_records=MAX_WARMUP_RECORDS,
                          gate_metric_threshold=0.0, precision="trained")
    assert config.warmup_records == MAX_WARMUP_RECORDS and DEFAULTS == ExportConfig()


def test_export_model_library_call_refuses_bad_keep():
    with pytest.raises(exporter.ExportError, match="--keep must be >= 1, got 0"):
        exporter.export_model(None, None, None, export_base="/nonexistent", model_name="m", keep=0)


def test_cli_bad_setting_exits_2_naming_the_flag(tmp_path):
    """A generated flag out of range: one error line naming it, exit 2, before any model or data is read."""
    proc = run_module("export.export_model", f"--model_dir={tmp_path}/none", f"--data={tmp_path}/none",
                      f"--export_base={tmp_path}/exports", "--warmup_records=0", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert "export: error: --warmup_records must be in [1, 1000], got 0" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "exports").exists()
