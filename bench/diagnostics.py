r"""Why does INFNet train the way it does? Attention entropy, gradient / update norms, token norms over training.

    python -m bench.diagnostics --data=DATA_DIR [--presets=paper,default] [--steps=300] [--every=50]

For each model preset (:mod:`infnet_tf.models.presets`), trains INFNet on ``<data>/train`` with the
product's optimizer and loss, and every ``--every`` steps records, on a fixed batch of ``<data>/valid``
(else train):

* **attention entropy / uniform**: per block and view, the task hubs' attention entropy divided by
  the entropy of a uniform distribution over the same real (unpadded) keys — 1.0 means the hubs
  only average the tokens, lower means they select;
* **gradient norms** per layer group (embedding tables, hub initialisation, each block's
  aggregation and broadcast, task tokens, heads), the **relative update** ``|Δw| / |w|`` of the
  last step per group, and the **drift** ``|w_t - w_0| / |w_0|`` of each group from its
  initialisation (how far training has moved it at all: with the product's embedding optimizer the
  id tables of a small log stay within a few percent of their random initialisation, REPORT.md);
* **token norms**: mean L2 norm of the categorical tokens C and of the sequence tokens S as they
  enter the first block (what the K/V projections see), and of the task hubs after the last block.

Prints one table per preset and a last line
``DIAG <preset>: entropy_ratio_last=<x> ...`` per preset; ``--output`` writes the records as JSON.
The findings are summarised in ``bench/REPORT.md`` ("Diagnosis").
"""
from __future__ import annotations

import json
import math
import re
import sys

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from bench.weight_change import relative_change

FLAGS = flags.FLAGS
GROUPS = (("embeddings", r"tokenizer/"), ("hub_init", r"(cat|seq)_hub_init/"), ("task_tokens", r"task_tokens/|shared_task_hubs/"),
          ("aggregation", r"block_\d+/aggregation/"), ("broadcast", r"block_\d+/broadcast_"), ("heads", r"head_\d+/"))


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    return "other"


def entropy_ratios(weights_per_block) -> dict[str, float]:
    """{"b<i>/<view>": mean H(w) / log(#real keys)} over batch, heads and task hubs."""
    out = {}
    for i, views in enumerate(weights_per_block):
        merged: dict[str, list] = {}                            # seq/<type> slices share one softmax
        for view, w in views.items():
            merged.setdefault(view.split("/")[0], []).append(np.asarray(w, np.float64))
        for view, parts in merged.items():
            w = np.concatenate(parts, axis=-1)                  # [B, h, q, N]
            real = (w > 0).sum(axis=-1)                         # padded keys have exactly zero weight
            h = -(w * np.log(np.where(w > 0, w, 1.0))).sum(axis=-1)
            uniform = np.log(np.maximum(real, 1))
            ok = real > 1
            out[f"b{i}/{view}"] = float((h[ok] / uniform[ok]).mean()) if ok.any() else float("nan")
    return out


def token_norms(model, features) -> dict[str, float]:
    import tensorflow as tf

    tokens, masks, _, _ = model._tokens(features)  # noqa: SLF001 - the blocks' inputs
    out = {}
    for group in ("cat", "seq"):
        if group in tokens:
            norms = tf.norm(tf.cast(tokens[group], tf.float32), axis=-1)
            if group in masks:
                norms = tf.boolean_mask(norms, masks[group])
            out[f"|{group} token|"] = float(tf.reduce_mean(norms))
    _, _, hubs = model.encode(features)
    if "task" in hubs:
        out["|task hub| (out)"] = float(tf.reduce_mean(tf.norm(tf.cast(hubs["task"], tf.float32), axis=-1)))
    return out


def diagnose(data: str, preset: str, steps: int, every: int, batch_size: int, seed: int, d: int,
             num_blocks: int, log=print, changes: dict | None = None) -> list[dict]:
    import tensorflow as tf

    from infnet_tf.data.artifact import load_layout
    from infnet_tf.input import make_dataset, model_inputs
    from infnet_tf.models import ModelConfig, build_model
    from infnet_tf.data.tensors import placeholder_inputs
    from infnet_tf.models.losses import multitask_loss
    from infnet_tf.models.presets import preset_changes
    from infnet_tf.data.partitions import list_partitions
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.optimizers import build_optimizer

    tf.keras.utils.set_random_seed(seed)
    layout = load_layout(data)
    config = ModelConfig(d=d, num_blocks=num_blocks, **{**preset_changes(preset), **(changes or {})})
    model = build_model(layout, config)
    model(placeholder_inputs(layout))
    train_cfg = TrainConfig(batch_size=batch_size, precision="float32", strategy="default", seed=seed)
    optimizer = build_optimizer(model, train_cfg)
    weights = {t.name: float(t.weight) for t in layout.tasks}
    probe_split = "valid" if list_partitions(f"{data}/valid") else "train"
    probe, _ = next(iter(make_dataset(f"{data}/{probe_split}", layout, 512, shuffle=False, repeat=False,
                                      deterministic=True)))
    probe = model_inputs(layout, probe)
    train = iter(make_dataset(f"{data}/train", layout, batch_size, shuffle=True, repeat=True,
                              deterministic=True, seed=seed))
    variables = model.trainable_variables
    groups = [group_of(v.name) for v in variables]
    initial = [v.numpy() for v in variables]

    @tf.function(autograph=False)
    def step(features, labels):
        with tf.GradientTape() as tape:
            loss, _ = multitask_loss(labels, model(features, training=True), weights)
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, train_cfg.clip_norm)
        optimizer.apply_gradients(zip(grads, variables), experimental_aggregate_gradients=False)
        return loss, grads

    records = []
    for i in range(1, steps + 1):
        features, labels = next(train)
        before = [v.numpy() for v in variables] if i % every == 0 or i == 1 else None
        loss, grads = step(model_inputs(layout, features), labels)
        if before is None:
            continue
        rec = {"preset": preset, "step": i, "loss": float(loss)}
        for g in sorted(set(groups)):
            idx = [j for j, name in enumerate(groups) if name == g]
            gn = math.sqrt(sum(float(tf.reduce_sum(tf.square(tf.convert_to_tensor(grads[j])))) for j in idx
                               if grads[j] is not None))
            now = [variables[j].numpy() for j in idx]
            rec[f"grad/{g}"] = gn
            rec[f"update/{g}"] = relative_change(now, [before[j] for j in idx])
            rec[f"drift/{g}"] = relative_change(now, [initial[j] for j in idx])
        rec.update({f"entropy/{k}": v for k, v in entropy_ratios(model.attention_weights(probe)).items()})
        rec.update(token_norms(model, probe))
        records.append(rec)
        log(f"{preset} step {i}: loss {rec['loss']:.4f} "
            + " ".join(f"{k.split('/', 1)[1]}={v:.3f}" for k, v in rec.items() if k.startswith("entropy/")))
    return records


def table(records: list[dict]) -> str:
    keys = [k for k in records[-1] if k not in ("preset",)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in records:
        lines.append("| " + " | ".join(f"{r.get(k, float('nan')):.4g}" if isinstance(r.get(k), float)
                                       else str(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


# -- flags (the command's: this module is an entry module, imported by no library code) ---------
flags.DEFINE_string("data", None, "Dataset job output directory (train/, valid/, transform artifact).")
flags.DEFINE_list("presets", ["paper", "default"], "Model presets to diagnose (infnet_tf.models.presets).")
flags.DEFINE_integer("steps", 300, "Training steps per preset.")
flags.DEFINE_integer("every", 50, "Record the diagnostics every N steps (and at step 1).")
flags.DEFINE_integer("batch_size", 256, "Training batch size.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("d", 32, "Token width.")
flags.DEFINE_integer("num_blocks", 2, "INFNet blocks.")
flags.DEFINE_string("output", None, "Write all records as JSON here.")
flags.DEFINE_string("changes", "{}", "JSON object of ModelConfig changes applied on top of every preset, "
                                     "e.g. '{\"embedding_init_std\": 0.1}'.")
flags.mark_flag_as_required("data")


def main(argv) -> int:
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    all_records = []
    for preset in FLAGS.presets:
        records = diagnose(FLAGS.data, preset, FLAGS.steps, FLAGS.every, FLAGS.batch_size, FLAGS.seed, FLAGS.d,
                           FLAGS.num_blocks, log=lambda line: print(line, flush=True),
                           changes=json.loads(FLAGS.changes))
        print(f"\n## {preset}\n\n{table(records)}\n", flush=True)
        all_records += records
        last = records[-1]
        ent = [v for k, v in last.items() if k.startswith("entropy/") and "/cat" in k]
        print(f"DIAG {preset}: entropy_ratio_cat_last={np.nanmean(ent):.3f} "
              f"cat_token_norm={last.get('|cat token|', float('nan')):.3f} "
              f"grad_aggregation={last.get('grad/aggregation', float('nan')):.4g} "
              f"drift_embeddings={last.get('drift/embeddings', float('nan')):.4g}", flush=True)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(all_records, f, indent=1)
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    sys.exit(run_main(main))
