r"""Model efficiency: train-step examples/s, FLOPs, MFU, end-to-end epoch rate and an op profile, in one run.

  python -m bench.model_efficiency [--data=DIR] [--batch_size=1024] [--smoke]

* **step**: one fused train step (forward, backward, optimizer) of every registered model on the
  same cached batch (no input pipeline), at ``--d`` (INFNet with ``--num_blocks`` blocks) and, with
  ``--defaults``, at each model's default config. Models are timed interleaved: ``--rounds`` rounds,
  each running ``--steps`` steps of every model in turn; the best round counts (2 shared cores are
  noisy, the best round is the one least disturbed).
* **FLOPs**: the registry's analytical forward FLOPs per example (:mod:`infnet_tf.models.cost`); a
  train step is counted as 3x forward (forward + two backward contractions per forward one).
* **MFU**: achieved train-step FLOP/s (3 x forward FLOPs x examples/s) over the fp32 matmul peak
  measured in the same run (best of ``--peak_reps`` large square matmuls per size). The FLOPs count
  every behaviour-sequence step as a real item; the per-item work on packed sequences runs on the
  real ones only (:mod:`infnet_tf.models.cost`), so on a log of short histories MFU overstates the
  executed FLOP rate (the printed sequence fill says by how much padding there is).
* **end to end**: one :func:`infnet_tf.training.batch.run_batch` run of ``--e2e_epochs`` epochs over
  ``<data>``. An epoch's wall time covers input, the training pass, the checkpoint and the valid/
  evaluation (what every epoch of a real run pays); the best of epochs 2.. (epoch 1 traces) over the
  step rate is ``end_to_end_over_step``. The whole run's rate (tracing, test/ evaluation, attention
  images) is printed beside it. The same pass on these shared 2-core machines sometimes runs on
  one core's worth of CPU for tens of seconds (2x slower), hence best-of as for the step.
* **profile**: ``tf.profiler.experimental`` trace of ``--profile_steps`` INFNet train steps, op time
  summed per op type and per op name (host CPU plane of the XSpace), top ``--top_ops``.

Without ``--data`` a small synthetic sample dataset is built first (as ``bench.serving_latency``).
The last line is ``RATIO infnet_over_dcnv2_step=<x> mfu_infnet=<x> end_to_end_over_step=<x>``.
"""
from __future__ import annotations

import collections
import glob
import os
import tempfile
import time

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from bench.measure import matmul_peak, sequence_fill
from bench.sample import build_sample
from infnet_tf.models.config import ModelConfig

FLAGS = flags.FLAGS
ALL_MODELS = ("infnet", "dcnv2", "deepfm", "mmoe", "ple", "shared_bottom", "all_to_all")


# -- flags (the command's: this module is an entry module, imported by no library code) ---------
flags.DEFINE_string("data", None, "Dataset job output directory (train/, valid/, test/ and the transform "
                                  "artifact); default: build a small synthetic sample in a temporary directory.")
flags.DEFINE_integer("sample_impressions", 40000, "Impressions of the synthetic sample (without --data).")
flags.DEFINE_integer("batch_size", 1024, "Batch size of the train step and the end-to-end epoch.")
flags.DEFINE_list("models", list(ALL_MODELS), "Registered models to time.")
flags.DEFINE_integer("d", 32, "Token width of the 'small' configs (every model).")
flags.DEFINE_integer("num_blocks", ModelConfig.num_blocks, "INFNet blocks of the small config (default: the product's, "
                     "ModelConfig).")
flags.DEFINE_bool("defaults", True, "Also time every model at its ModelConfig defaults.")
flags.DEFINE_integer("steps", 8, "Timed train steps per model per round.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds; the best round of each model counts.")
flags.DEFINE_integer("warmup", 2, "Untimed steps per model first (tracing).")
flags.DEFINE_enum("precision", "float32", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "Precision policy of every trainer.")
flags.DEFINE_bool("compare_bf16", False, "Also time INFNet (small config) under mixed_bfloat16.")
flags.DEFINE_list("peak_sizes", ["1024", "2048"], "Square matmul sizes for the fp32 peak.")
flags.DEFINE_integer("peak_reps", 5, "Timed matmuls per size (best counts).")
flags.DEFINE_bool("end_to_end", True, "Measure batch-mode epochs (run_batch) of INFNet (small config).")
flags.DEFINE_integer("e2e_epochs", 4, "Epochs of the end-to-end run; the best of epochs 2.. is the steady rate.")
flags.DEFINE_bool("profile", True, "Profile INFNet (small config) train steps and print the top ops.")
flags.DEFINE_integer("profile_steps", 5, "Train steps traced by the profiler.")
flags.DEFINE_integer("top_ops", 15, "Ops listed in the profile summary.")
flags.DEFINE_bool("smoke", False, "Tiny fast run (tests): batch 128, infnet+dcnv2, 1 round of 2 steps, "
                                  "small sample, short profile, 2 end-to-end epochs.")


# -- measuring ---------------------------------------------------------------------------------
class StepTimer:
    """One model's trainer and the cached batch its train step runs on."""

    def __init__(self, label, layout, model_config, batch, batch_size: int, precision: str, model_dir: str):
        from infnet_tf.input import model_inputs
        from infnet_tf.models.cost import flops_per_example
        from infnet_tf.training.config import TrainConfig
        from infnet_tf.training.trainer import Trainer

        self.label = label
        self.trainer = Trainer(layout, model_config, TrainConfig(batch_size=batch_size, precision=precision,
                                                                 strategy="default", log_every=10**9),
                               model_dir)
        self.features = model_inputs(layout, batch[0])
        self.labels = batch[1]
        self.batch_size = int(next(iter(self.labels.values())).shape[0])
        try:
            self.flops = flops_per_example(layout, model_config)
        except ValueError:
            self.flops = float("nan")
        self.best = float("inf")

    def run(self, steps: int, record: bool = True) -> float:
        fn = self.trainer._train_fn
        start = time.perf_counter()
        for _ in range(steps):
            loss, _, _ = fn(self.features, self.labels)
            float(loss)                       # the trainer syncs every step too
        seconds = (time.perf_counter() - start) / steps
        if record:
            self.best = min(self.best, seconds)
        return seconds

    def eval_rates(self, batch, steps: int) -> tuple[float, float]:
        """(examples/s of the predict step alone, of ``Trainer.evaluate`` over ``steps`` copies of
        the batch: input map, predict step, NumPy transfer and exact metrics incl. GAUC)."""
        import tensorflow as tf

        trainer = self.trainer
        features, labels, users = trainer._eval_inputs(*batch)
        trainer._predict_fn(features, labels, users)
        best = float("inf")
        for _ in range(steps):
            start = time.perf_counter()
            probs, _, _ = trainer._predict_fn(features, labels, users)
            [p.numpy() for p in probs.values()]
            best = min(best, time.perf_counter() - start)
        data = tf.data.Dataset.from_tensors(batch).repeat(steps)
        trainer.evaluate(data)
        start = time.perf_counter()
        trainer.evaluate(data)
        return self.batch_size / best, steps * self.batch_size / (time.perf_counter() - start)

    @property
    def rate(self) -> float:
        return self.batch_size / self.best


def profile_steps(timer: StepTimer, steps: int, logdir: str, top: int) -> list[str]:
    """Trace ``steps`` train steps; return summary lines (op types, then op names, by total time)."""
    import tensorflow as tf

    timer.run(1, record=False)
    tf.profiler.experimental.start(logdir)
    try:
        timer.run(steps, record=False)
    finally:
        tf.profiler.experimental.stop()
    files = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not files:
        return ["profile: no xplane.pb written"]
    by_type, by_name, total = summarize_xplane(files[-1])
    by_scope = collections.defaultdict(lambda: [0, 0])
    for name, (ps, n) in by_name.items():
        scope = scope_of(name)
        by_scope[scope][0] += ps
        by_scope[scope][1] += n
    if not total:
        return ["profile: no TensorFlow op events in the trace"]
    lines = [f"profile: {steps} steps, {total / 1e9 / steps:.1f} ms of op time per step "
             f"(summed over threads; the step wall time is {timer.best * 1e3:.1f} ms)",
             "  top op types (share of op time, ms/step, calls/step):"]
    for name, (ps, n) in sorted(by_type.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"    {100 * ps / total:5.1f}%  {ps / 1e9 / steps:8.2f} ms  {n / steps:6.0f}  {name}")
    lines.append("  top layer scopes (forward + gradient):")
    for name, (ps, n) in sorted(by_scope.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"    {100 * ps / total:5.1f}%  {ps / 1e9 / steps:8.2f} ms  {n / steps:6.0f}  {name}")
    lines.append("  top ops by name:")
    for name, (ps, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"    {100 * ps / total:5.1f}%  {ps / 1e9 / steps:8.2f} ms  {n / steps:6.0f}  {name[:110]}")
    n_ops = sum(n for _, n in by_type.values())
    lines.append(f"  {n_ops / steps:,.0f} op executions per step")
    return lines


def scope_of(op_name: str) -> str:
    """The layer scope of an op (forward and gradient ops together): ``infnet/block_0/aggregation``."""
    name = op_name.rpartition(":")[0]
    if name.startswith("gradient_tape/"):
        name = name[len("gradient_tape/"):]
    parts = name.split("/")
    if parts[0] in ("Adam", "embedding_adagrad", "adam", "embedding_adam") or "Apply" in name:
        return "optimizer"
    return "/".join(parts[:3]) if len(parts) > 3 else "/".join(parts[:-1]) or "(top level)"


def summarize_xplane(path: str):
    """({op type: [ps, count]}, {op name: [ps, count]}, total ps) of TF op events on the host plane.

    Executor op events are named ``<op name>:<op type>`` (TF 2.16); events of the tf.function call
    itself and of the profiler are left out.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    by_type = collections.defaultdict(lambda: [0, 0])
    by_name = collections.defaultdict(lambda: [0, 0])
    total = 0
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "")
                if ":" not in name or "::" in name or name.startswith(("EagerExecute", "__inference")):
                    continue
                op_name, _, op_type = name.rpartition(":")
                if not op_type.lstrip("_")[:1].isupper() or " " in op_type or op_type.startswith("__"):
                    continue
                ps = ev.duration_ps
                by_type[op_type][0] += ps
                by_type[op_type][1] += 1
                by_name[name][0] += ps
                by_name[name][1] += 1
                total += ps
    return by_type, by_name, total


def end_to_end(layout, model_config, data_dir: str, batch_size: int, precision: str, model_dir: str,
               epochs: int) -> dict:
    """One batch-mode run of ``epochs`` rounds (no early stop). A round is what every epoch of a real
    run costs: input, training pass, checkpoint, valid evaluation (``history[i]["wall_seconds"]``).
    Round 1 also traces the functions and draws the first attention image, so the steady epoch rate is
    the best of rounds 2.. (as the step rate is the best of its rounds); the whole run's rate (tracing,
    the test evaluation and its image included) is reported beside it."""
    from infnet_tf.training.batch import run_batch
    from infnet_tf.training.config import TrainConfig
    from infnet_tf.training.trainer import Trainer

    trainer = Trainer(layout, model_config, TrainConfig(batch_size=batch_size, precision=precision,
                                                        strategy="default", epochs=epochs,
                                                        early_stopping_patience=0, log_every=10**9),
                      model_dir)
    t = time.perf_counter()
    result = run_batch(trainer, data_dir)
    wall = time.perf_counter() - t
    history = result["history"]
    steady = history[1:] or history
    rates = [h["train"]["examples"] / h["wall_seconds"] for h in steady]
    best = max(range(len(steady)), key=lambda i: rates[i])
    examples = sum(h["train"]["examples"] for h in history)
    return {"rounds": len(history), "epoch_examples": steady[best]["train"]["examples"],
            "epoch_seconds": steady[best]["wall_seconds"], "epoch_train_seconds": steady[best]["train"]["seconds"],
            "rate": rates[best], "epoch_rates": rates, "run_seconds": wall, "run_rate": examples / wall}


# -- the program -------------------------------------------------------------------------------
def main(argv) -> int:
    del argv
    import tensorflow as tf

    from infnet_tf.data.artifact import load_layout
    from infnet_tf.input import make_dataset

    smoke = FLAGS.smoke
    batch_size = 128 if smoke else FLAGS.batch_size
    models = ["infnet", "dcnv2"] if smoke else list(FLAGS.models)
    steps, rounds, warmup = (2, 1, 1) if smoke else (FLAGS.steps, FLAGS.rounds, FLAGS.warmup)
    with tempfile.TemporaryDirectory() as tmp:
        data = FLAGS.data or build_sample(os.path.join(tmp, "sample"), 6000 if smoke else FLAGS.sample_impressions)
        layout = load_layout(data)
        batch = next(iter(make_dataset(data.rstrip("/") + "/train", layout, batch_size, shuffle=False,
                                       repeat=True, deterministic=True, drop_remainder=True)))
        peak, per_size = matmul_peak([int(s) for s in (["512"] if smoke else FLAGS.peak_sizes)],
                                     2 if smoke else FLAGS.peak_reps)
        print("fp32 matmul peak: " + ", ".join(f"n={n} {v / 1e9:.1f} GFLOP/s" for n, v in per_size.items())
              + f" -> {peak / 1e9:.1f} GFLOP/s", flush=True)

        small = {m: ModelConfig(model=m, d=FLAGS.d, **({"num_blocks": FLAGS.num_blocks} if m == "infnet" else {}))
                 for m in models}
        timers = [StepTimer(f"{m} d={FLAGS.d}" + (f" L={FLAGS.num_blocks}" if m == "infnet" else ""), layout,
                            cfg, batch, batch_size, FLAGS.precision, os.path.join(tmp, f"s_{m}"))
                  for m, cfg in small.items()]
        if FLAGS.compare_bf16 and "infnet" in small and not smoke:
            timers.append(StepTimer(f"infnet d={FLAGS.d} L={FLAGS.num_blocks} bf16", layout, small["infnet"], batch,
                                    batch_size, "mixed_bfloat16", os.path.join(tmp, "s_infnet_bf16")))
            from infnet_tf.precision import set_precision
            set_precision(FLAGS.precision)
        if FLAGS.defaults and not smoke:
            timers += [StepTimer(f"{m} defaults", layout, ModelConfig(model=m), batch, batch_size, FLAGS.precision,
                                 os.path.join(tmp, f"d_{m}")) for m in models]
        for timer in timers:
            timer.run(warmup)
        for r in range(rounds):
            for timer in timers:
                timer.run(steps)
        print(f"\ntrain step (fwd+bwd+optimizer), batch {batch_size}, {FLAGS.precision}, best of {rounds} "
              f"interleaved rounds x {steps} steps:")
        print("  sequence fill of the batch (mean real items / max_len): " + sequence_fill(layout, batch[0]))
        print(f"  {'model':32s} {'ex/s':>9s} {'ms/step':>8s} {'MFLOP/ex':>9s} {'GFLOP/s':>8s} {'MFU':>6s}")
        for t in timers:
            achieved = 3 * t.flops * t.rate
            print(f"  {t.label:32s} {t.rate:9,.0f} {t.best * 1e3:8.1f} {t.flops / 1e6:9.2f} "
                  f"{achieved / 1e9:8.1f} {100 * achieved / peak:5.1f}%")
        small_timers = dict(zip(small, timers))          # the first len(small) timers, in order
        infnet, dcn = small_timers.get("infnet"), small_timers.get("dcnv2")
        ratio = infnet.rate / dcn.rate if infnet and dcn else float("nan")
        mfu = 3 * infnet.flops * infnet.rate / peak if infnet else float("nan")
        flop_eff = ((infnet.rate * infnet.flops) / (dcn.rate * dcn.flops)) if infnet and dcn else float("nan")
        print(f"  infnet/dcnv2 examples/s {ratio:.3f}, FLOP/s efficiency infnet/dcnv2 {flop_eff:.3f}", flush=True)

        if infnet:
            predict_rate, eval_rate = infnet.eval_rates(batch, 2 if smoke else FLAGS.steps)
            print(f"  infnet evaluation: predict step {predict_rate:,.0f} ex/s, Trainer.evaluate (predict + "
                  f"metrics) {eval_rate:,.0f} ex/s = {eval_rate / infnet.rate:.2f}x the train step", flush=True)

        if FLAGS.profile and infnet:
            print("")
            for line in profile_steps(infnet, 2 if smoke else FLAGS.profile_steps, os.path.join(tmp, "profile"),
                                      FLAGS.top_ops):
                print(line)

        e2e_ratio = float("nan")
        if FLAGS.end_to_end and infnet:
            e = end_to_end(layout, small["infnet"], data, batch_size, FLAGS.precision, os.path.join(tmp, "e2e"),
                           epochs=2 if smoke else FLAGS.e2e_epochs)
            e2e_ratio = e["rate"] / infnet.rate
            print(f"\nend to end (run_batch, {e['rounds']} epochs; an epoch = input, train pass, checkpoint, "
                  f"valid evaluation): best steady epoch {e['epoch_examples']} train examples in "
                  f"{e['epoch_seconds']:.1f}s (training pass {e['epoch_train_seconds']:.1f}s) -> {e['rate']:,.0f} ex/s "
                  f"(epochs 2..: {', '.join(f'{r:,.0f}' for r in e['epoch_rates'])} ex/s); whole run incl. tracing, "
                  f"test evaluation and attention images {e['run_seconds']:.1f}s -> {e['run_rate']:,.0f} ex/s; "
                  f"step rate {infnet.rate:,.0f} ex/s", flush=True)
    print(f"RATIO infnet_over_dcnv2_step={ratio:.3f} mfu_infnet={mfu:.3f} end_to_end_over_step={e2e_ratio:.3f}",
          flush=True)
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
