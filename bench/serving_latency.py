r"""Serving latency: the exported raw-feature signature vs the model without the in-graph transform.

  python -m bench.serving_latency [--data=DIR] [--batch_sizes=1,32,256,1024 --iterations=30]

Builds the default model (``ModelConfig()``: d=64, one block, one head; random weights — latency does not
depend on them) for the dataset's layout, exports it as ``export.exporter`` does
(:class:`export.serving_module.ServingModule`: transform artifact baked in) and loads it the way TF
Serving does (TF1 session loader, signature tensor names, a session callable). Requests are real
rows: ``<data>/valid`` TFRecords through the one input function, decoded back to raw features
(:class:`export.raw_inputs.RawDecoder`). Without ``--data`` a small synthetic sample dataset is
built first (``pipelines.make_sample_data`` + the dataset job's plain runner).

Three columns per batch size (four with a reference model), p50/p99 over ``--iterations`` calls, the
calls interleaved round-robin so they see the same machine conditions:

* ``raw`` — ``serving_default``: raw features -> in-graph transform -> model (what clients call);
* ``ids`` — ``predict_model_inputs`` of the same SavedModel and session: the model without the
  transform, fed the dataset job's ids (same runtime, so the difference is the transform);
* ``keras`` — the Keras model called in-process through a ``tf.function`` (TF2 runtime), for reference;
* ``reference`` — ``serving_default`` of ``--reference_model`` (default DCNv2, at its own defaults),
  exported and loaded the same way and fed the same raw rows: the same runtime and machine, so the
  ratio of the two p99s, and each one's p99 over its own compute floor, say how much of the distance
  to the floor is the machine's and how much the model's.

Then one user x ``--candidates`` (256) candidates per request, for each total sequence length of
``--seq_lens`` (the behaviour types' ``max_len`` scaled to sum to it; a model and an export per
length): ``score_candidates`` (the user side transformed and computed once, ``export/candidates.py``)
vs ``serving_default`` on the same 256 pairs (the user's row repeated), interleaved as above. The user
is the first real row with every sequence filled to ``max_len`` with the real rows' items; the
candidates are the real rows' items. Printed: p50/p99 of both and the speed-up (rows/s ratio =
p50 ratio, equal row counts) per length.

The compute floor of a batch: its analytical FLOPs (``infnet_tf.models.cost``) over the fp32 matmul
peak measured in the same run (``bench.measure.matmul_peak``), the time the model's arithmetic would
take at the machine's best matmul rate.

Last line: ``RATIO transform_overhead_at_256=<p50 raw / p50 ids at batch 256> p99_ms_at_256=<raw p99>
p99_over_floor_at_256=<raw p99 / compute floor at 256>
candidates_speedup_at_256=<p50 serving_default / p50 score_candidates, first --seq_lens>
candidates_flop_bound=<a row's analytical FLOPs / a candidate's, first --seq_lens>
candidates_speedup_at_256_T<L>=<the same at each length>
p99_over_reference_at_256=<raw p99 / the reference's raw p99>
reference_p99_over_floor_at_256=<the reference's raw p99 / its compute floor>`` (the last two with a
reference model). The bound is what sharing the user side
can buy at most in arithmetic (``infnet_tf.models.infnet_flops.candidate_flops``); the measured
speed-up can exceed it a little, as the shared in-graph transform of the sequences is not counted.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from bench.sample import build_sample

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "Dataset job output directory (transform artifact + valid/ partitions); "
                                  "default: build a small synthetic sample dataset in a temporary directory.")
flags.DEFINE_list("batch_sizes", ["1", "32", "256", "1024"], "Batch sizes to measure.")
flags.DEFINE_integer("iterations", 30, "Timed calls per batch size and path (fewer when --max_seconds runs "
                                       "out first, at least 5).", lower_bound=5)
flags.DEFINE_float("max_seconds", 90.0, "Time budget per batch size for the timed calls of every path.")
flags.DEFINE_integer("warmup", 3, "Untimed calls per batch size and path first.", lower_bound=1)
flags.DEFINE_integer("sample_impressions", 20000, "Impressions of the synthetic sample (without --data).")
flags.DEFINE_string("model", "infnet", "Registered model name.")
flags.DEFINE_integer("d", None, "Token width override (default: the ModelConfig default).")
flags.DEFINE_integer("num_blocks", None, "Number of blocks override (default: the ModelConfig default).")
flags.DEFINE_list("model_changes", [], "More ModelConfig overrides, field=value (e.g. seq_hub_views=all); "
                                       "applied after --d / --num_blocks.")
flags.DEFINE_list("peak_sizes", ["1024", "2048"], "Square matmul sizes for the fp32 peak of the compute floor.")
flags.DEFINE_integer("candidates", 256, "Candidates per score_candidates request (one user).", lower_bound=1)
flags.DEFINE_list("seq_lens", ["70", "1000"], "Total behaviour-sequence tokens per user for the one-user x N "
                                              "candidates comparison (e.g. 50,1000,4000); empty: skip it.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Compute precision of every exported graph (export's --precision; outputs float32 either way).")
flags.DEFINE_string("reference_model", "dcnv2", "A second registered model, at its own defaults (with --d if "
                                                "given), exported and served the same way, its raw calls "
                                                "interleaved with ours; empty: none.")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def tile(columns: dict, n: int) -> dict:
    """The first ``n`` rows (rows repeated when there are fewer)."""
    have = len(next(iter(columns.values())))
    idx = np.arange(n) % have
    return {k: np.asarray(v)[idx] for k, v in columns.items()}


def time_calls(calls: dict) -> tuple[dict, int]:
    """({name: (p50 ms, p99 ms)}, calls per name): ``--warmup`` untimed calls each, then up to
    ``--iterations`` rounds (at least 5, until ``--max_seconds``), the calls interleaved."""
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
    return {k: percentiles(v) for k, v in times.items()}, len(times[next(iter(calls))])


def scaled_layout(layout, total: int):
    """``layout`` with its behaviour types' ``max_len`` scaled to sum to ``total`` (each >= 1)."""
    import dataclasses

    native = layout.num_sequence_tokens
    lens = [max(1, round(total * s.max_len / native)) for s in layout.sequences]
    lens[0] += total - sum(lens)
    return dataclasses.replace(layout, sequences=tuple(dataclasses.replace(s, max_len=n)
                                                       for s, n in zip(layout.sequences, lens)))


def full_user(raw: dict, layout) -> dict:
    """Row 0 of raw columns with every sequence filled to ``max_len`` with the real items of all rows."""
    from infnet_tf.data.keys import LENGTH, seq_key
    from infnet_tf.transform_graph import EVENT_TIME

    out = {k: np.asarray(v)[:1] for k, v in raw.items()}
    for seq in layout.sequences:
        length = np.asarray(raw[seq_key(seq.name, LENGTH)])
        for name in [f.name for f in seq.fields] + [EVENT_TIME]:
            key = seq_key(seq.name, name)
            items = np.concatenate([row[:n] for row, n in zip(np.asarray(raw[key]), length)])
            if not items.size:
                raise ValueError(f"the request rows hold no {seq.name} items to build a long sequence from")
            out[key] = np.resize(items, seq.max_len)[None, :]
        out[seq_key(seq.name, LENGTH)] = np.array([seq.max_len], np.int64)
    return out


def flop_bound(layout, config) -> float:
    """The speed-up the arithmetic allows for many candidates: a row's analytical FLOPs over a
    candidate's (``infnet_flops.candidate_flops``: the user side done once); 1 for other models."""
    from infnet_tf.models.infnet_flops import candidate_flops, infnet_flops

    return infnet_flops(layout, config) / candidate_flops(layout, config) if config.model == "infnet" else 1.0


def candidates_section(artifact, layout, config, rows, root: str) -> dict:
    """{total sequence tokens: (p50/p99 of score_candidates and serving_default, calls)}; see the docstring."""
    from export.candidates import SCORE_CANDIDATES, candidate_raw_inputs, candidate_tokens, tiled_request
    from export.exporter import build_serving_model
    from export.serving_module import SERVING_DEFAULT, ServingModule
    from export.session_model import SessionModel
    from infnet_tf.transform_graph import TransformGraph

    chosen = candidate_tokens(artifact)
    out = {}
    for total in [int(t) for t in FLAGS.seq_lens]:
        long = scaled_layout(layout, total)
        model = build_serving_model(long, config, FLAGS.precision)
        transform = TransformGraph(artifact, long)
        names = candidate_raw_inputs(transform.inputs, chosen)
        path = os.path.join(root, f"saved_model_T{total}")
        ServingModule(model, transform, long, candidates=chosen).save(path)
        cands = tile({k: rows.raw[k] for k in names}, FLAGS.candidates)
        request = {**full_user(rows.raw, long), **cands}
        pairs = tiled_request(request, names)
        with SessionModel(path) as served:
            got = served.run(SCORE_CANDIDATES, request)
            want = served.run(SERVING_DEFAULT, pairs)
            diff = max(float(np.max(np.abs(got[t] - want[t]))) for t in got)
            r, n = time_calls({"candidates": lambda: served.run(SCORE_CANDIDATES, request),
                               "rows": lambda: served.run(SERVING_DEFAULT, pairs)})
        bound = flop_bound(long, config)
        out[total] = {**r, "bound": bound}
        print(f"1 user x {FLAGS.candidates} candidates, {total:5d} sequence tokens "
              f"({'+'.join(str(s.max_len) for s in long.sequences)}): score_candidates p50 {r['candidates'][0]:8.2f} "
              f"ms p99 {r['candidates'][1]:8.2f} ms | serving_default p50 {r['rows'][0]:8.2f} ms p99 "
              f"{r['rows'][1]:8.2f} ms | speed-up {r['rows'][0] / r['candidates'][0]:.2f}x "
              f"(FLOPs allow {bound:.2f}x; max |diff| {diff:.1e}, {n} calls)", flush=True)
    return out


def export_reference(artifact, layout, root: str) -> dict:
    """``--reference_model`` at its own ModelConfig defaults (``--d`` applied), exported with the same
    transform and loaded the same way: {"name", "served" (an open SessionModel), "flops" per example}."""
    from export.exporter import build_serving_model
    from export.serving_module import ServingModule
    from export.session_model import SessionModel
    from infnet_tf.models import ModelConfig
    from infnet_tf.models.cost import flops_per_example
    from infnet_tf.transform_graph import TransformGraph

    overrides = {"d": FLAGS.d} if FLAGS.d is not None else {}
    config = ModelConfig.from_flags_dict({"model": FLAGS.reference_model, **overrides})
    path = os.path.join(root, "saved_model_reference")
    ServingModule(build_serving_model(layout, config, FLAGS.precision), TransformGraph(artifact, layout), layout).save(path)
    print(f"exported the reference {config.model} (d={config.d}) to serve beside it", flush=True)
    return {"name": config.model, "served": SessionModel(path), "flops": flops_per_example(layout, config)}


def main(argv) -> int:
    del argv
    import tensorflow as tf
    from absl import logging

    logging.set_verbosity(logging.WARNING)

    from export.exporter import build_serving_model, read_rows
    from export.raw_inputs import RawDecoder
    from export.serving_module import PREDICT_MODEL_INPUTS, SERVING_DEFAULT, ServingModule
    from export.session_model import SessionModel
    from infnet_tf.data import artifact as artifact_lib
    from infnet_tf.data.tensors import input_signature
    from bench.measure import matmul_peak
    from infnet_tf.models import ModelConfig
    from infnet_tf.models.cost import flops_per_example
    from infnet_tf.data.partitions import list_partitions
    from infnet_tf.transform_graph import TransformGraph

    sizes = [int(b) for b in FLAGS.batch_sizes]
    with tempfile.TemporaryDirectory(prefix="serving_latency_") as tmp:
        data = FLAGS.data or build_sample(tmp, FLAGS.sample_impressions)
        artifact = artifact_lib.load(data)
        layout = artifact.feature_layout
        overrides = {k: FLAGS[k].value for k in ("d", "num_blocks") if FLAGS[k].value is not None}
        bad = [kv for kv in FLAGS.model_changes if "=" not in kv]
        if bad:
            raise SystemExit(f"--model_changes: expected field=value entries, got {bad}")
        overrides.update(kv.split("=", 1) for kv in FLAGS.model_changes)
        config = ModelConfig.from_flags_dict({"model": FLAGS.model, **overrides})
        model = build_serving_model(layout, config, FLAGS.precision)
        path = os.path.join(tmp, "saved_model")
        start = time.perf_counter()
        ServingModule(model, TransformGraph(artifact, layout), layout).save(path)   # score_candidates: below
        print(f"exported {config.model} (d={config.d}, {config.num_blocks} blocks, {FLAGS.precision}) in "
              f"{time.perf_counter() - start:.1f}s; {len(layout.model_input_keys())} model inputs, "
              f"{len(TransformGraph(artifact, layout).inputs)} raw inputs", flush=True)
        parts = list_partitions(os.path.join(data, "valid")) or list_partitions(os.path.join(data, "train"))
        rows = read_rows(parts[-1].path, layout, RawDecoder(artifact, layout), max(sizes + [FLAGS.candidates]))
        print(f"requests: {len(rows)} real rows of {parts[-1].path} (repeated up to the batch size)", flush=True)
        served = SessionModel(path)
        reference = export_reference(artifact, layout, tmp) if FLAGS.reference_model else None
        keras_fn = tf.function(lambda x: model(x, training=False), input_signature=[input_signature(layout)],
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
            if reference is not None:
                calls["reference"] = lambda: reference["served"].run(SERVING_DEFAULT, raw)
            results[size], n_calls = time_calls(calls)
            r = results[size]
            print(f"batch {size:5d}: raw p50 {r['raw'][0]:8.2f} ms p99 {r['raw'][1]:8.2f} ms | "
                  f"ids p50 {r['ids'][0]:8.2f} ms p99 {r['ids'][1]:8.2f} ms | "
                  f"keras p50 {r['keras'][0]:8.2f} ms p99 {r['keras'][1]:8.2f} ms | "
                  f"raw/ids {r['raw'][0] / r['ids'][0]:.3f} ({n_calls} calls)", flush=True)
            if reference is not None:
                print(f"  reference {reference['name']} raw p50 {r['reference'][0]:8.2f} ms p99 "
                      f"{r['reference'][1]:8.2f} ms | ours over reference p50 {r['raw'][0] / r['reference'][0]:.3f} "
                      f"p99 {r['raw'][1] / r['reference'][1]:.3f}", flush=True)
        served.close()
        peak, _ = matmul_peak([int(n) for n in FLAGS.peak_sizes], 5)
        floor_ms = {size: 1e3 * size * flops_per_example(layout, config) / peak for size in sizes}
        print(f"compute floor (analytical FLOPs / fp32 matmul peak {peak / 1e9:.1f} GFLOP/s): " + ", ".join(
            f"batch {size} {floor_ms[size]:.2f} ms (raw p99 {results[size]['raw'][1] / floor_ms[size]:.2f}x)"
            for size in sizes), flush=True)
        if reference is not None:
            reference["served"].close()
            reference["floor_ms"] = {size: 1e3 * size * reference["flops"] / peak for size in sizes}
            print(f"reference {reference['name']} compute floor: " + ", ".join(
                f"batch {size} {reference['floor_ms'][size]:.2f} ms (raw p99 "
                f"{results[size]['reference'][1] / reference['floor_ms'][size]:.2f}x)" for size in sizes), flush=True)
        by_len = candidates_section(artifact, layout, config, rows, tmp) if FLAGS.seq_lens else {}
    ref = 256 if 256 in results else sizes[len(sizes) // 2]
    overhead = results[ref]["raw"][0] / results[ref]["ids"][0]
    speedups = {t: r["rows"][0] / r["candidates"][0] for t, r in by_len.items()}
    extra = ""
    if speedups:
        first = next(iter(by_len))
        extra = (f" candidates_speedup_at_{FLAGS.candidates}={speedups[first]:.2f}"
                 f" candidates_flop_bound={by_len[first]['bound']:.2f} " + " ".join(
                     f"candidates_speedup_at_{FLAGS.candidates}_T{t}={x:.2f}" for t, x in speedups.items()))
    if reference is not None:
        r = results[ref]
        extra += (f" p99_over_reference_at_{ref}={r['raw'][1] / r['reference'][1]:.3f}"
                  f" reference_p99_over_floor_at_{ref}={r['reference'][1] / reference['floor_ms'][ref]:.2f}")
    print(f"RATIO transform_overhead_at_{ref}={overhead:.3f} p99_ms_at_{ref}={results[ref]['raw'][1]:.2f} "
          f"p99_over_floor_at_{ref}={results[ref]['raw'][1] / floor_ms[ref]:.2f}{extra}")
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
