"""MirroredStrategy over two logical CPU devices trains like one device at the same global batch.

Logical devices must be configured before TensorFlow initialises, so the comparison runs in a
fresh subprocess.
"""
import json
import subprocess
import textwrap

import pytest

from tests.training.helpers import PYTHON, ROOT, subprocess_env, write_data_with_artifact

_SCRIPT = textwrap.dedent("""
    import json, sys
    import infnet_tf
    from infnet_tf.training.distribution import split_cpu
    split_cpu(2)
    from infnet_tf.data.artifact import load_layout
    from infnet_tf.input import make_dataset
    from infnet_tf.training.trainer import Trainer
    from tests.training.helpers import ORDER_STABLE_MODEL, tiny_model_config, tiny_train_config

    data, out = sys.argv[1], {}
    layout = load_layout(data)
    for strategy in ("default", "mirrored"):
        trainer = Trainer(layout, tiny_model_config(**ORDER_STABLE_MODEL), tiny_train_config(strategy=strategy, seed=3),
                          f"{sys.argv[2]}/{strategy}")
        train = make_dataset(f"{data}/train", layout, 64, shuffle=False, repeat=False, deterministic=True)
        first = trainer.train_on(train, max_steps=1)
        rest = trainer.train_on(trainer.start_pass(train.skip(1)))   # as batch mode: started on a thread
        # the weights' moving average: every replica's copy of every shadow is the same (each replica
        # updates its own copy in its step), so each replica evaluates the same averaged weights
        copies = [trainer.strategy.experimental_local_results(a) for a in trainer.average.shadows]
        copies_equal = all(bool((c.numpy() == cs[0].numpy()).all()) for cs in copies for c in cs)
        valid = make_dataset(f"{data}/valid", layout, 64, shuffle=False, repeat=False, deterministic=True)
        metrics = trainer.evaluate(valid)
        out[strategy] = {"replicas": trainer.strategy.num_replicas_in_sync, "first_loss": first["loss"],
                         "loss": rest["loss"], "examples": first["examples"] + rest["examples"],
                         "auc": metrics["click"]["auc"], "count": metrics["click"]["count"],
                         "shadow_copies_equal": copies_equal}
        cached = valid.cache()   # batch mode keeps valid/ in memory: the second pass reads the cache
        out[strategy]["cached"] = [[m["click"]["auc"], m["click"]["count"]]
                                   for m in (trainer.evaluate(cached), trainer.evaluate(cached))]
        # --output_bias_init=prior on the first (distributed: per-replica) batch
        prior = Trainer(layout, tiny_model_config(), tiny_train_config(strategy=strategy, output_bias_init="prior"),
                        f"{sys.argv[2]}/{strategy}_prior")
        first_labels = next(iter(prior._distribute(train)))[1]
        out[strategy]["priors"] = prior.init_output_biases(first_labels)
    # id dropout on two replicas: it trains, and each replica draws its own masks (replica id folded in).
    # Same tokenizer as the mirrored run above: a second MirroredStrategy in one process whose model has
    # other gradient shapes aborts its first all-reduce (collective shape mismatch; a TF artifact of two
    # strategies in one process, with or without id dropout — the product runs one trainer per process)
    import numpy as np, tensorflow as tf
    dropping = Trainer(layout, tiny_model_config(**{**ORDER_STABLE_MODEL, "id_dropout": 0.5}),
                       tiny_train_config(strategy="mirrored", seed=3),
                       f"{sys.argv[2]}/mirrored_id_dropout")
    trained = dropping.train_on(train, max_steps=2)
    tok, field = dropping.model.tokenizer, layout.categorical[0]
    ids = tf.ones([256], tf.int64)
    masks = dropping.strategy.experimental_local_results(
        dropping.strategy.run(lambda: tok._drop(0, field, ids, True)))
    out["id_dropout"] = {"loss": trained["loss"], "kept": [float(np.mean(m.numpy())) for m in masks],
                         "same_masks": bool(np.array_equal(masks[0].numpy(), masks[1].numpy()))}
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_mirrored_two_cpu_devices_matches_single_device(tmp_path):
    data = str(tmp_path / "data")
    write_data_with_artifact(data, days=(2, 1, 0), rows_per_day=256)
    proc = subprocess.run([PYTHON, "-c", _SCRIPT, data, str(tmp_path / "models")], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    single, mirrored = result["default"], result["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert "MirroredStrategy with 2 replica(s), global batch 64" in proc.stdout
    assert mirrored["examples"] == single["examples"] == 512  # global batch unchanged: 8 steps of 64
    # each replica's BCE is divided by the global batch's labelled count (all-reduced), so the summed
    # loss and gradients are one device's however the labels split (per-replica means: 0.1-0.3% off)
    assert mirrored["first_loss"] == pytest.approx(single["first_loss"], rel=1e-5)
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-5)
    assert mirrored["count"] == single["count"] == 256  # every valid example predicted once
    assert mirrored["shadow_copies_equal"]   # (one device has one copy: nothing to compare there)
    assert mirrored["auc"] == pytest.approx(single["auc"], abs=0.002)
    for run in (single, mirrored):   # a cached split evaluates the same from memory (distributed too)
        assert run["cached"] == [[run["auc"], 256]] * 2, run
    # --output_bias_init=prior: the two replicas' halves of the first batch are counted together (one
    # all-reduce), so the rates are the whole batch's, as on one device
    assert set(single["priors"]) == {"click", "like"}
    assert mirrored["priors"] == pytest.approx(single["priors"], abs=1e-9)
    dropping = result["id_dropout"]
    assert dropping["loss"] > 0 and all(0.35 < k < 0.65 for k in dropping["kept"]) and not dropping["same_masks"]


def test_multi_worker_file_shares_cover_every_file_once():
    import tensorflow as tf

    from infnet_tf.training.distribution import resolve_strategy_name, split_files, variable_partitioner

    files = [f"part-{i}" for i in range(5)]
    shares = [split_files(files, 2, i) for i in range(2)]
    assert [s[0] for s in shares] == [files[0::2], files[1::2]]
    policy = tf.data.experimental.AutoShardPolicy
    assert all(s[1].experimental_distribute.auto_shard_policy == policy.OFF for s in shares)
    # fewer files than workers: everyone reads all of them and keeps its share of the batches
    few, options = split_files(files[:1], 2, 1)
    assert few == files[:1] and options.experimental_distribute.auto_shard_policy == policy.DATA
    assert split_files(files, 1, 0)[0] == files
    # the partitioner: MinSize keeps small variables whole, Fixed splits every big-enough one
    min_size = variable_partitioner(num_ps=2, ps_shards=0, ps_min_shard_bytes=1024)
    assert min_size(tf.TensorShape([1000, 8]), tf.float32) == [2, 1]    # 32 KB -> 2 shards (cap: 2 PS)
    assert min_size(tf.TensorShape([16, 8]), tf.float32) == [1, 1]      # 512 B stays whole
    assert variable_partitioner(2, 3, 0)(tf.TensorShape([16, 8]), tf.float32) == [3, 1]
    assert resolve_strategy_name("parameter_server") == "parameter_server"


def test_auto_strategy_reads_tf_config(monkeypatch):
    import json as _json

    from infnet_tf.training.distribution import resolve_strategy_name

    cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", _json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert resolve_strategy_name("auto") == "parameter_server"
    monkeypatch.setenv("TF_CONFIG", _json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                 "task": {"type": "worker", "index": 0}}))
    assert resolve_strategy_name("auto") == "multi_worker"
    monkeypatch.delenv("TF_CONFIG")
    assert resolve_strategy_name("auto") in ("default", "mirrored")
