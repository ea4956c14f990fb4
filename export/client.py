"""Send raw rows to a TF Serving model and print the per-task probabilities.

    python -m export.client --server=localhost:8501 --protocol=rest --model_name=infnet --rows=rows.jsonl
    python -m export.client --server=localhost:8500 --protocol=grpc --model_name=infnet --rows=rows.parquet

``--rows`` is a Parquet or JSON-lines file with one raw row per record, columns named like the
signature's inputs (``python -m export.client ... --describe`` lists them, with dtypes): scalars for
the per-row features, lists for the behaviour-sequence matrices (most recent item last). A missing
``seq/<type>/length`` is taken from the row's ``seq/<type>/<item field>`` list. Nulls (JSON null,
Parquet null) become infnet's "missing" value of the column's dtype: NaN for floats, "" for
strings, -2**63 for int64 (see infnet_tf/transform_graph.py). The client first asks the server
for the signature's metadata (REST
``GET /v1/models/<name>/metadata``, gRPC ``GetModelMetadata``), builds tensors of exactly the
signature's dtypes (sequence lists right-padded to the batch's longest list, at least one column),
then calls REST ``POST /v1/models/<name>[/versions/<v>]:predict`` (columnar ``inputs``) or gRPC
``PredictionService/Predict``. Output: one line per row, ``row=<i> <task>=<p> ...``.

With ``--signature_name=score_candidates`` each record of ``--rows`` is one request for one user and
N candidate items: ``{"user": {<user-side inputs>}, "candidates": [{<candidate-side inputs>}, ...]}``.
The inputs named in ``user`` are sent as one row; every other input of the signature is taken from
each candidate (a candidate lacking one is an error naming it, as for ``--rows``; send nulls as
null). A user-side input sent per candidate is refused by the server (INVALID_ARGUMENT: it must
hold one row). Which inputs are candidate side is
recorded in the version's ``assets.extra/infnet_export.json``; ``assets.extra/sample_candidates_request.jsonl``
is a ready example. Output: one line per candidate, ``request=<r> candidate=<i> <task>=<p> ...``.

Errors from the server (e.g. INVALID_ARGUMENT for a wrong dtype, a missing feature or a wrong rank)
are printed and the exit status is 1; no ``--rows`` (and no ``--describe``) or a stray argument: exit 2.
The client itself is :mod:`export.serving_client` (for code that talks to TF Serving).
"""

from __future__ import annotations

import sys

from absl import flags

from export.serving_client import (CANDIDATES_SIGNATURE, DEFAULT_SIGNATURE, ClientError, format_predictions,
                                   make_client, predict_candidates, predict_rows, read_rows)

FLAGS = flags.FLAGS

flags.DEFINE_string("server", "localhost:8501", "TF Serving address HOST:PORT (REST port 8501, gRPC 8500 "
                                                 "by default in the tensorflow/serving image).")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (/v1/models/<name>:predict) or gRPC "
                                                         "(PredictionService/Predict).")
flags.DEFINE_string("model_name", None, "Served model name (TF Serving's --model_name / models.config name).",
                    required=True)
flags.DEFINE_string("rows", None, "Parquet (.parquet) or JSON-lines file of raw rows, columns named like the "
                                  "signature's inputs.")
flags.DEFINE_string("signature_name", DEFAULT_SIGNATURE, "Signature to call; with score_candidates each --rows "
                                                         'record is {"user": {...}, "candidates": [...]}.')
flags.DEFINE_integer("model_version", None, "Ask for this version (default: the latest the server serves).")
flags.DEFINE_integer("batch_size", 256, "Rows per request.", lower_bound=1)
flags.DEFINE_float("timeout", 30.0, "Seconds per request before giving up.")
flags.DEFINE_bool("describe", False, "Print the signature's inputs (name, dtype, rank) and exit.")


def main(argv) -> int:
    f = FLAGS
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    if not f.rows and not f.describe:
        print("--rows is required (or --describe)", file=sys.stderr)
        return 2
    client = make_client(f.server, f.protocol, f.model_name, f.model_version, f.timeout)
    try:
        if f.describe:
            for info in client.signature_inputs(f.signature_name).values():
                print(f"{info.name}\t{info.dtype}\trank={info.rank}")
            return 0
        rows = read_rows(f.rows)
        if f.signature_name == CANDIDATES_SIGNATURE:
            lines = [line for r, p in enumerate(predict_candidates(client, rows, f.signature_name))
                     for line in format_predictions(p, prefix=f"request={r} ")]
        else:
            lines = format_predictions(predict_rows(client, rows, f.signature_name, f.batch_size))
    except (ClientError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    import infnet_tf.env  # noqa: F401  (Keras 2 selection before TensorFlow loads)
    from infnet_tf.env import run_main

    run_main(main)
