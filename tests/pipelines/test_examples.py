"""The vectorised tf.train.Example encoder and TFRecord framing, checked against TensorFlow."""
from __future__ import annotations

import gzip

import numpy as np

from pipelines.examples import BYTES, INT, INTS, ExampleEncoder, gzip_compressor, ragged_bytes, read_tfrecords


def _reference(i, scalars, lists, offsets, keys):
    import tensorflow as tf

    ex = tf.train.Example()
    ex.features.feature["cat/a"].int64_list.value.append(int(scalars[i]))
    ex.features.feature["seq/x/items"].int64_list.value.extend(lists[offsets[i]:offsets[i + 1]].tolist())
    ex.features.feature["user_key"].bytes_list.value.append(keys[i])
    return ex


def test_examples_parse_back_to_the_same_messages(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = 300
    lengths = rng.integers(0, 70, n)
    lengths[[0, 5, n - 1]] = 0                             # empty lists, also at the end
    values = rng.integers(-3, 2**45, lengths.sum())
    values[:4] = [-1, -(2**63), 2**63 - 1, 0]               # 10-byte varints and extremes
    scalars = rng.integers(0, 2**20, n)
    scalars[:6] = [-1, 0, 1, 127, 128, 2**62]
    keys = [f"user-{i}-ü".encode() * (i % 4) for i in range(n)]  # empty and non-ASCII bytes
    encoder = ExampleEncoder([("cat/a", INT), ("seq/x/items", INTS), ("user_key", BYTES)])
    columns = {"cat/a": scalars, "seq/x/items": (values, lengths), "user_key": ragged_bytes(keys)}
    offsets = np.concatenate([[0], np.cumsum(lengths)])

    buf, starts, sizes = encoder.encode(columns, n)
    for i in range(n):
        got = tf.train.Example.FromString(buf[starts[i]:starts[i] + sizes[i]].tobytes())
        assert got == _reference(i, scalars, lists=values, offsets=offsets, keys=keys), i

    framed, _, _ = encoder.encode(columns, n, framed=True)
    records = read_tfrecords(framed.tobytes())
    assert records == [buf[s:s + z].tobytes() for s, z in zip(starts, sizes)]
    path = tmp_path / "x.tfrecord.gz"
    gz = gzip_compressor(6)
    path.write_bytes(gz.compress(framed) + gz.flush())
    assert gzip.decompress(path.read_bytes()) == framed.tobytes()
    parsed = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    assert parsed == records
