"""``python -m bench.report --smoke`` on tiny data: every section, figure and the JSON are produced.

Runs the real CLI in a subprocess (the suite trains through the batch trainer and imports the other
benches, so a fresh process is the honest test) on ``tests.tiny_data`` partitions plus a transform
artifact holding the layout. Sizes are cut further than ``--smoke`` alone (two quality models plus
the paper-preset INFNet, one ablation, one extra point on the n_c hub axis, two widths of INFNet and
one baseline), and the smoke run trains with the default *recipe* protocol cut to two epochs of the
512 tiny train rows at the automatic batch size (256: two steps per epoch, patience 1), so the new
default path is what runs; the fixed-step protocol of the ``SMOKE`` preset is checked without
training. The test stays around 90 s on an idle 2-core machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.report_lib import config as cfg_lib
from tests.tiny_data import write_data_with_artifact, write_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("quality", "ablations", "hubs", "scaling", "attention", "efficiency")
FIGURES = ("quality_auc.png", "ablations.png", "hub_sweep.png", "scaling.png", "efficiency_seq_len.png",
           "attention_heatmap.png")


def _write_tiny_dataset(root: str) -> None:
    write_data_with_artifact(root, rows_per_day=128)


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
           "--scaling_widths=4,8", "--hub_shared=2", "--steps=0", "--max_epochs=2", "--patience=1",
           "--batch_size=0"]
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
    paper = quality["paper_row"]
    assert paper["label"] == "infnet (paper preset)" and paper["preset"] == "paper"
    for row in [*rows.values(), paper]:
        assert row["params"] > 0 and row["flops"] > 0
        assert set(row["tasks"]) == {"click", "like"}
        assert row["mean_auc"]["n"] == 1
        # the recipe protocol: full passes (2 steps of the automatic batch 256 each), at most 2 epochs
        assert 1 <= row["epochs_trained"]["mean"] <= 2 and row["batch_size"] == 256
        assert row["train_steps"]["mean"] == 2 * row["epochs_trained"]["mean"]
    assert quality["protocol"] == {"name": "recipe", "batch_size": 256, "batch_size_source": "recipe",
                                   "warmup_steps": quality["protocol"]["warmup_steps"], "max_epochs": 2,
                                   "early_stopping_patience": 1,
                                   "weight_average_decay": 0.95}   # the recipe's: 2 steps per epoch -> the floor
    assert quality["model_configs"]["infnet_paper"]["model"] == "infnet"
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
    assert meta["protocol"]["name"] == "recipe" and meta["train_config"]["train_steps"] == 0
    assert meta["train_config"]["epochs"] == 2 and meta["train_config"]["early_stopping_patience"] == 1
    for run in report["runs"]:
        assert run["train_config"]["batch_size"] == 256 and run["epochs_trained"] >= 1

    text = open(os.path.join(run_dir, "report.md")).read()
    for title in ("Quality", "Ablations", "Hub composition", "Scaling", "Efficiency", "Attention"):
        assert title in text
    assert "infnet (paper preset)" in text and "the product's batch-mode recipe" in text
    assert "epochs (steps)" in text
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


def test_protocols_presets_and_width_rule(tmp_path):
    """Without training: the SMOKE preset keeps the fixed-step protocol, the defaults are the recipe
    (batch size from ``recipe.auto_batch_size``), ablations come from ``infnet_tf.models.presets``,
    and the width rule leaves the non-width ModelConfig fields alone."""
    from bench.report import parse_args
    from infnet_tf.models import ModelConfig
    from infnet_tf.models.presets import ABLATIONS, PAPER_CHOICES, preset_changes
    from infnet_tf.training.recipe import auto_batch_size

    data = str(tmp_path / "data")
    write_dataset(data, rows_per_day=64)  # 4 train days: 256 rows

    smoke = parse_args([f"--data={data}", "--smoke", "--output_dir=x"])
    tc = smoke.train_config(3)
    assert smoke.protocol == "fixed_steps" and smoke.protocol_dict()["name"] == "fixed_steps"
    assert (tc.train_steps, tc.epochs, tc.early_stopping_patience, tc.batch_size, tc.seed) == (4, 2, 0, 64, 3)

    suite = parse_args([f"--data={data}", "--output_dir=x"])
    tc = suite.train_config(0)
    assert suite.protocol == "recipe" and (suite.steps, suite.batch_size) == (0, 0)
    assert (tc.train_steps, tc.epochs, tc.early_stopping_patience) == (0, suite.max_epochs, suite.patience)
    assert tc.batch_size == auto_batch_size(256) == suite.resolved_batch_size
    assert tc.warmup_steps == type(tc)().warmup_steps  # the product's own default, not the bench's
    explicit = parse_args([f"--data={data}", "--output_dir=x", "--batch_size=96"])
    assert explicit.train_config(0).batch_size == 96
    assert explicit.protocol_dict()["batch_size_source"] == "--batch_size"

    assert cfg_lib.ABLATIONS is ABLATIONS and not hasattr(cfg_lib, "Ablation")
    assert set(cfg_lib.DEFAULT_ABLATIONS) >= {"paper_embedding_init", "readout_task_token", "readout_mean_hubs",
                                              "token_norm", "ordinal_none", "paper_no_id_dropout", "seq_hubs_read_all"}
    assert [a for a in cfg_lib.DEFAULT_ABLATIONS if a.startswith("no_")] == \
        ["no_task_tokens", "no_hubs", "no_aggregation", "no_broadcast"]
    with pytest.raises(ValueError, match="--ablations"):
        cfg_lib.SuiteConfig(data=data, ablations=("no_such_row",))

    ref = ModelConfig()
    base = suite.model_config("infnet")
    for name in ("token_norm", "embedding_init_std", "readout", "ordinal_encoding", "seq_hub_views", "num_heads",
                 "id_dropout"):
        assert getattr(base, name) == getattr(ref, name)
    paper = suite.paper_config()
    for name, value in PAPER_CHOICES.items():
        assert getattr(paper, name) == value
    assert paper.replace(**{k: getattr(base, k) for k in PAPER_CHOICES}) == base   # the suite's size
    assert set(preset_changes("paper")) > set(PAPER_CHOICES) and preset_changes("paper")["num_blocks"] == 4
    assert preset_changes("paper")["n_cat_hubs"] == 16 != ModelConfig().n_cat_hubs   # the paper's n_c, not the default
    changed = suite.model_config("infnet", d=16, token_norm=True, embedding_init_std=0.02,
                                 readout="task_token_hubs")
    assert (changed.token_norm, changed.embedding_init_std, changed.readout) == (True, 0.02, "task_token_hubs")
    assert changed.bgu_hidden == tuple(max(1, round(w * 16 / 64)) for w in ref.bgu_hidden)


def test_flags_are_the_suite_config_fields(tmp_path):
    """``bench.report``'s flags are generated from ``SuiteConfig`` (its own FlagValues): set flags win over
    the ``--smoke`` preset, comma-separated lists become tuples, ``--d`` is an alias of ``--width``; a bad
    value is one error line and exit 2."""
    from bench.report import FLAGS, parse_args
    from infnet_tf import config_flags

    assert set(config_flags.flag_names(cfg_lib.SuiteConfig).values()) | {"d"} <= set(FLAGS)
    data = str(tmp_path / "data")
    suite = parse_args([f"--data={data}", "--smoke", "--d=16", "--hub_cat=2,3", "--models=infnet,ple",
                        "--nogbdt", "--output_dir=x", "--run_name=r"])
    assert (suite.d, suite.hub_cat, suite.models, suite.gbdt) == (16, (2, 3), ("infnet", "ple"), False)
    assert (suite.seeds, suite.steps, suite.hub_shared) == (1, 4, (0,))  # unset: the SMOKE preset
    assert (suite.output_dir, suite.run_name, suite.smoke) == ("x", "r", True)
    default = parse_args([f"--data={data}", "--width=64"])
    assert (default.d, default.hub_shared, default.seeds, default.smoke) == (64, (0, 1, 4, 8), 3, False)
    assert default.output_dir == cfg_lib.default_output_dir() and default.run_name
    for bad, flag in (("--hub_cat=1,x", "--hub_cat"), ("--seeds=0", "--seeds"), ("--jobs=two", "--jobs"), ("--no_such_flag=1", "--no_such_flag")):
        with pytest.raises(SystemExit) as exc:
            parse_args([f"--data={data}", bad])
        assert exc.value.code == 2, bad
    with pytest.raises(SystemExit):
        parse_args(["--smoke"])  # --data is required
    FLAGS.unparse_flags()
