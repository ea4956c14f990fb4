"""``python -m bench.report --smoke`` on tiny data: every section, figure and the JSON are produced.

Runs the real CLI in a subprocess (the suite trains through the batch trainer and imports the other
benches, so a fresh process is the honest test) on ``tests.tiny_data`` partitions plus a transform
artifact holding the layout. Sizes are cut further than ``--smoke`` alone (two quality models, one
ablation, one extra point per hub axis, two widths of INFNet and one baseline, 2 steps in one round)
so the test stays well under 90 s on an idle 2-core machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.tiny_data import write_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("quality", "ablations", "hubs", "scaling", "attention", "efficiency")
FIGURES = ("quality_auc.png", "ablations.png", "hub_sweep.png", "scaling.png", "efficiency_seq_len.png",
           "attention_heatmap.png")


def _write_tiny_dataset(root: str) -> None:
    layout = write_dataset(root, rows_per_day=128)
    os.makedirs(os.path.join(root, "transform"), exist_ok=True)
    with open(os.path.join(root, "transform", "transform_artifact.json"), "w") as f:
        json.dump({"layout": layout.to_dict()}, f)


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    return env


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench_report")
    data, out = str(tmp / "data"), str(tmp / "results")
    _write_tiny_dataset(data)
    cmd = [sys.executable, "-m", "bench.report", f"--data={data}", f"--output_dir={out}", "--run_name=smoke",
           "--smoke", "--models=infnet,shared_bottom", "--scaling_models=infnet,shared_bottom",
           "--scaling_widths=4,8", "--rounds=1", "--steps=2"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    return proc, os.path.join(out, "smoke"), cmd


def test_smoke_report_writes_every_section(smoke_report):
    proc, run_dir, cmd = smoke_report
    assert proc.returncode == 0, f"{' '.join(cmd)}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    for name in ("report.md", "report.json", *FIGURES):
        path = os.path.join(run_dir, name)
        assert os.path.isfile(path) and os.path.getsize(path) > 0, f"missing {name}"
    for name in FIGURES:
        with open(os.path.join(run_dir, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name

    with open(os.path.join(run_dir, "report.json")) as f:
        report = json.load(f)  # strict JSON (NaN written as null)
    assert set(report["sections"]) == set(SECTIONS)
    for name, section in report["sections"].items():
        assert section["status"] == "ok", (name, section.get("error"))
        assert section["wall_seconds"] >= 0
    # every PNG's data is in the JSON, under the section that drew it
    for name in FIGURES:
        section = report["figures"][name]
        assert name in report["sections"][section]["figures"], name

    quality = report["sections"]["quality"]
    rows = {r["model"]: r for r in quality["rows"]}
    assert set(rows) == {"infnet", "shared_bottom"}
    for row in rows.values():
        assert row["params"] > 0 and row["flops"] > 0
        assert set(row["tasks"]) == {"click", "like"}
        assert row["mean_auc"]["n"] == 1
    assert "row" in quality["gbdt"], quality["gbdt"]
    assert report["sections"]["ablations"]["rows"][0]["id"] == "no_task_tokens"
    assert [p["value"] for p in report["sections"]["hubs"]["n_cat_hubs"]] == [1, 4]
    assert set(report["sections"]["scaling"]["series"]) == {"infnet", "shared_bottom"}
    attention = report["sections"]["attention"]
    assert "error" not in attention and len(attention["rows"]) >= 2

    meta = report["meta"]
    assert meta["command"].startswith("python -m bench.report ") and "--smoke" in meta["command"]
    assert meta["seeds"] == {"quality": [0], "sweeps": [0]}
    assert meta["versions"]["tensorflow"].startswith("2.16") and meta["versions"]["lightgbm"] != "not installed"
    assert meta["hardware"]["cpu_cores"] >= 1
    assert meta["runs"]["failed"] == 0

    text = open(os.path.join(run_dir, "report.md")).read()
    for title in ("Quality", "Ablations", "Hub composition", "Scaling", "Efficiency", "Attention"):
        assert title in text
    assert meta["command"] in text


def test_gbdt_section_alone_trains_no_deep_model_and_writes_under_the_workdir(tmp_path):
    """``--sections=gbdt`` runs the LightGBM reference on its own; without ``--output_dir`` the report
    goes to ``$INFNET_WORKDIR/bench/<run>/``, not into the checkout; ``--width`` is ``--d``."""
    data, work = str(tmp_path / "data"), tmp_path / "work"
    _write_tiny_dataset(data)
    cmd = [sys.executable, "-m", "bench.report", f"--data={data}", "--run_name=gbdt", "--smoke",
           "--sections=gbdt", "--width=4"]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(_env(), INFNET_WORKDIR=str(work)), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    run_dir = work / "bench" / "gbdt"
    with open(run_dir / "report.json") as f:
        report = json.load(f)
    assert list(report["sections"]) == ["gbdt"] and report["sections"]["gbdt"]["status"] == "ok"
    assert report["runs"] == []
    assert report["meta"]["suite"]["d"] == 4
    row = report["sections"]["gbdt"]["gbdt"]["row"]
    assert set(row["tasks"]) == {"click", "like"} and row["model"] == "lightgbm"
    assert "Gradient-boosted trees reference" in (run_dir / "report.md").read_text()
