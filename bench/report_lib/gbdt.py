"""The gradient-boosted-trees reference (LightGBM): what many teams run instead of a deep ranker.

One LightGBM binary classifier per task, trained on ``train/``, early-stopped on ``valid/`` (model
selection on valid only), reported on ``test/`` with the same exact AUC / GAUC code as the deep
models (:mod:`infnet_tf.metrics`). Inputs: every non-sequence token of the layout — categorical ids,
bucketized dense features and point-in-time counter buckets (``cat/*``) — read from the same
TFRecords through :func:`infnet_tf.input.make_dataset` and passed to LightGBM as *categorical*
features. Behaviour sequences are not used (trees have no natural way to read them), which is the
usual production GBDT setup. One model per task and seed (bagging and feature sampling are seeded).
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)

READ_BATCH = 8192


def load_split(split_dir: str, layout) -> dict[str, Any]:
    """``{"X": int32 [n, n_tokens], "labels": {task: int [n]}, "users": bytes [n]}`` of one split."""
    from infnet_tf.data.keys import USER_KEY, cat_key
    from infnet_tf.input import make_dataset

    data = make_dataset(split_dir, layout, READ_BATCH, shuffle=False, repeat=False, deterministic=True,
                        with_meta=True)
    keys = [cat_key(f.name) for f in layout.categorical]
    xs, users, labels = [], [], {t: [] for t in layout.task_names}
    for features, batch_labels in data:
        xs.append(np.stack([features[k].numpy() for k in keys], axis=1).astype(np.int32))
        users.append(features[USER_KEY].numpy())
        for t in layout.task_names:
            labels[t].append(batch_labels[t].numpy())
    if not xs:
        raise ValueError(f"no examples under {split_dir}")
    return {"X": np.concatenate(xs), "users": np.concatenate(users),
            "labels": {t: np.concatenate(v) for t, v in labels.items()}}


def run_gbdt(suite, layout, progress) -> dict[str, Any]:
    """Train/evaluate the per-task LightGBM reference for every seed; returns the section's rows."""
    import lightgbm as lgb

    from infnet_tf.metrics import auc, gauc, logloss

    start = time.perf_counter()
    splits = {s: load_split(os.path.join(suite.data, s), layout) for s in ("train", "valid", "test")}
    counts = ", ".join(f"{name} {len(split['X']):,}" for name, split in splits.items())
    progress.line(f"gbdt: read {counts} rows ({len(layout.categorical)} categorical tokens) "
                  f"in {time.perf_counter() - start:.0f}s")
    names = [f.name for f in layout.categorical]
    runs = []
    for seed in suite.seed_list:
        per_task, trees, leaves = {}, {}, {}
        for task in layout.task_names:
            t0 = time.perf_counter()
            masks = {s: splits[s]["labels"][task] >= 0 for s in splits}
            train = lgb.Dataset(splits["train"]["X"][masks["train"]], splits["train"]["labels"][task][masks["train"]],
                                feature_name=names, categorical_feature=names, free_raw_data=False)
            valid = lgb.Dataset(splits["valid"]["X"][masks["valid"]], splits["valid"]["labels"][task][masks["valid"]],
                                reference=train)
            params = {
                "objective": "binary", "metric": "auc", "learning_rate": suite.gbdt_learning_rate,
                "num_leaves": suite.gbdt_leaves, "min_data_in_leaf": 50, "feature_fraction": 0.9,
                "bagging_fraction": 0.8, "bagging_freq": 1, "cat_smooth": 10.0, "cat_l2": 10.0,
                "max_cat_to_onehot": 4, "seed": seed, "num_threads": os.cpu_count() or 1,
                "verbosity": -1, "force_row_wise": True,
            }
            callbacks = [lgb.early_stopping(max(5, suite.gbdt_rounds // 10), verbose=False)]  # patience
            booster = lgb.train(params, train, num_boost_round=suite.gbdt_rounds, valid_sets=[valid],
                                callbacks=callbacks)
            best_iter = booster.best_iteration or booster.current_iteration()
            test = splits["test"]
            m = masks["test"]
            probs = booster.predict(test["X"][m], num_iteration=best_iter)
            y = test["labels"][task][m]
            g, g_imp = gauc(y, probs, test["users"][m])
            per_task[task] = {"auc": auc(y, probs), "gauc": g, "gauc_impression": g_imp,
                              "logloss": logloss(y, probs), "count": int(m.sum()),
                              "valid_auc": float(booster.best_score["valid_0"]["auc"])}
            trees[task] = int(best_iter)
            dump = booster.dump_model(num_iteration=best_iter)
            leaves[task] = int(sum(t["num_leaves"] for t in dump["tree_info"]))
            progress.line(f"gbdt: seed={seed} {task}: {best_iter} trees, valid AUC "
                          f"{per_task[task]['valid_auc']:.4f}, test AUC {per_task[task]['auc']:.4f} "
                          f"({time.perf_counter() - t0:.0f}s)")
        runs.append({"seed": seed, "test": per_task, "trees": trees, "leaves": leaves})
    return {"runs": runs, "features": names, "rows": {s: int(len(v["X"])) for s, v in splits.items()},
            "params": {"learning_rate": suite.gbdt_learning_rate, "num_leaves": suite.gbdt_leaves,
                       "max_rounds": suite.gbdt_rounds},
            "seconds": time.perf_counter() - start}
