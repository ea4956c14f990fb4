r"""Serving latency: the exported raw-feature signature vs the model without the in-graph transform.

  python -m bench.serving_latency [--data=DIR] [--batch_sizes=1,32,256,1024 --iterations=30]

Builds the default model (``ModelConfig()``: d=64, 4 blocks; random weights — latency does not
depend on them) for the dataset's layout, exports it as ``export.export_model`` does
(:class:`export.serving_module.ServingModule`: transform artifact baked in) and loads it the way TF
Serving does (TF1 session loader, signature tensor names, a session callable). Requests are real
rows: ``<data>/valid`` TFRecords through the one input function, decoded back to raw features
(:class:`export.raw_inputs.RawDecoder`). Without ``--data`` a small synthetic sample dataset is
built first (``pipelines.make_sample_data`` + the dataset job's plain runner).

Three columns per batch size, p50/p99 over ``--iterations`` calls, the three calls interleaved
round-robin so they see the same machine conditions:

* ``raw`` — ``serving_default``: raw features -> in-graph transform -> model (what clients call);
* ``ids`` — ``predict_model_inputs`` of the same SavedModel and session: the model without the
  transform, fed the dataset job's ids (same runtime, so the difference is the transform);
* ``keras`` — the Keras model called in-process through a ``tf.function`` (TF2 runtime), for reference.

Last line: ``RATIO transform_overhead_at_256=<p50 raw / p50 ids at batch 256> p99_ms_at_256=<raw p99>``.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "Dataset job output directory (transform artifact + valid/ partitions); "
                                  "default: build a small synthetic sample dataset in a temporary directory.")
flags.DEFINE_list("batch_sizes", ["1", "32", "256", "1024"], "Batch sizes to measure.")
flags.DEFINE_integer("iterations", 30, "Timed calls per batch size and path (fewer when --max_seconds runs "
                                       "out first, at least 5).", lower_bound=5)
flags.DEFINE_float("max_seconds", 90.0, "Time budget per batch size for the timed calls of all three paths.")
flags.DEFINE_integer("warmup", 3, "Untimed calls per batch size and path first.", lower_bound=1)
flags.DEFINE_integer("sample_impressions", 20000, "Impressions of the synthetic sample (without --data).")
flags.DEFINE_string("model", "infnet", "Registered model name.")
flags.DEFINE_integer("d", None, "Token width override (default: the ModelConfig default).")
flags.DEFINE_integer("num_blocks", None, "Number of blocks override (default: the ModelConfig default).")


def build_sample(root: str, impressions: int) -> str:
    from infnet_tf.spec import load_spec
    from pipelines import make_sample_data, plain
    from pipelines.job import JobOptions

    spec_path = os.path.join(os.path.dirname(__file__), "..", "feature_specs", "kuairand_synthetic.yaml")
    raw, data = os.path.join(root, "raw"), os.path.join(root, "dataset")
    if make_sample_data.main([f"--output={raw}", f"--num_impressions={impressions}", "--days=4"]) != 0:
        raise RuntimeError("make_sample_data failed")
    plain.run(load_spec(spec_path), JobOptions(spec_path=spec_path, output=data, raw=raw, num_shards=2))
    return data


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def tile(columns: dict, n: int) -> dict:
    """The first ``n`` rows (rows repeated when there are fewer)."""
    have = len(next(iter(columns.values())))
    idx = np.arange(n) % have
    return {k: np.asarray(v)[idx] for k, v in columns.items()}


def main(argv) -> int:
    del argv
    import tensorflow as tf
    from absl import logging

    logging.set_verbosity(logging.WARNING)

    from export.export_model import build_serving_model, read_rows
    from export.raw_inputs import RawDecoder
    from export.serving_module import PREDICT_MODEL_INPUTS, SERVING_DEFAULT, ServingModule, model_input_signature
    from export.session_model import SessionModel
    from infnet_tf.input import artifact_path
    from infnet_tf.models import ModelConfig
    from infnet_tf.partitions import list_partitions
    from infnet_tf.transform import TransformArtifact
    from infnet_tf.transform_graph import TransformGraph

    sizes = [int(b) for b in FLAGS.batch_sizes]
    with tempfile.TemporaryDirectory(prefix="serving_latency_") as tmp:
        data = FLAGS.data or build_sample(tmp, FLAGS.sample_impressions)
        artifact = TransformArtifact.load(artifact_path(data))
        layout = artifact.feature_layout
        overrides = {k: FLAGS[k].value for k in ("d", "num_blocks") if FLAGS[k].value is not None}
        config = ModelConfig(model=FLAGS.model, **overrides)
        model = build_serving_model(layout, config, "float32")
        path = os.path.join(tmp, "saved_model")
        start = time.perf_counter()
        ServingModule(model, TransformGraph(artifact, layout), layout).save(path)
        print(f"exported {config.model} (d={config.d}, {config.num_blocks} blocks) in "
              f"{time.perf_counter() - start:.1f}s; {len(layout.model_input_keys())} model inputs, "
              f"{len(TransformGraph(artifact, layout).inputs)} raw inputs", flush=True)
        parts = list_partitions(os.path.join(data, "valid")) or list_partitions(os.path.join(data, "train"))
        rows = read_rows(parts[-1].path, layout, RawDecoder(artifact, layout), max(sizes))
        print(f"requests: {len(rows)} real rows of {parts[-1].path} (repeated up to the batch size)", flush=True)
        served = SessionModel(path)
        keras_fn = tf.function(lambda x: model(x, training=False), input_signature=[model_input_signature(layout)],
                               autograph=False)
        results = {}
        for size in sizes:
            raw, ids = tile(rows.raw, size), tile(rows.inputs, size)
            ids_tensors = {k: tf.constant(v) for k, v in ids.items()}
            calls = {
                "raw": lambda: served.run(SERVING_DEFAULT, raw),
                "ids": lambda: served.run(PREDICT_MODEL_INPUTS, ids),
                "keras": lambda: {k: v.numpy() for k, v in keras_fn(ids_tensors).items()},
            }
            for fn in calls.values():
                for _ in range(FLAGS.warmup):
                    fn()
            times: dict[str, list[float]] = {k: [] for k in calls}
            deadline = time.perf_counter() + FLAGS.max_seconds
            for i in range(FLAGS.iterations):
                if i >= 5 and time.perf_counter() > deadline:
                    break
                for name, fn in calls.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            results[size] = {k: percentiles(v) for k, v in times.items()}
            r = results[size]
            print(f"batch {size:5d}: raw p50 {r['raw'][0]:8.2f} ms p99 {r['raw'][1]:8.2f} ms | "
                  f"ids p50 {r['ids'][0]:8.2f} ms p99 {r['ids'][1]:8.2f} ms | "
                  f"keras p50 {r['keras'][0]:8.2f} ms p99 {r['keras'][1]:8.2f} ms | "
                  f"raw/ids {r['raw'][0] / r['ids'][0]:.3f} ({len(times['raw'])} calls)", flush=True)
        served.close()
    ref = 256 if 256 in results else sizes[len(sizes) // 2]
    overhead = results[ref]["raw"][0] / results[ref]["ids"][0]
    print(f"RATIO transform_overhead_at_{ref}={overhead:.3f} p99_ms_at_{ref}={results[ref]['raw'][1]:.2f}")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
