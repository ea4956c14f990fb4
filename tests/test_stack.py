"""The pinned stack works together: Keras 2, TFRS, a tensorflow-io op, Beam, exit status."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tf_keras_is_keras_2():
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert tf.__version__ == "2.16.2"
    import tf_keras

    assert tf.keras.layers.Dense is tf_keras.layers.Dense
    assert tf.keras.__name__.startswith("tf_keras")


def test_tfrs_cross_layer_runs():
    import tensorflow_recommenders as tfrs

    x = tf.constant([[1.0, 2.0, 3.0]])
    out = tfrs.layers.dcn.Cross()(x, x)
    assert out.shape == (1, 3)


def test_tensorflow_io_reads_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow_io as tfio

    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.table({"a": np.arange(5, dtype=np.int64), "b": np.linspace(0, 1, 5)}), path)
    ds = tfio.IODataset.from_parquet(path, columns={"a": tf.TensorSpec([], tf.int64)})
    got = [int(row["a"]) for row in ds]
    assert got == [0, 1, 2, 3, 4]


def test_beam_two_step_pipeline():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    with TestPipeline() as p:
        out = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x) | beam.CombineGlobally(sum)
        assert_that(out, equal_to([14]))


_S3_SCRIPT = textwrap.dedent("""
    import sys
    import infnet_tf
    import tensorflow as tf
    from infnet_tf.data.fs import ensure_filesystem
    ensure_filesystem("s3://bucket/x")
    tf.io.gfile.makedirs("s3://bucket/dir")
    with tf.io.gfile.GFile("s3://bucket/dir/f.txt", "w") as f:
        f.write("hello")
    assert tf.io.gfile.exists("s3://bucket/dir/f.txt")
    print("touched s3")
""")


@pytest.fixture(scope="module")
def s3_server():
    from tests.s3_server import local_s3

    with local_s3() as env:
        yield env


@pytest.mark.parametrize("outcome,expected", [("pass", 0), ("fail", 1)])
def test_exit_status_survives_s3_abort(tmp_path, s3_server, outcome, expected):
    """A pytest run that touched s3:// exits with its real status (0 or 1), never 134."""
    assertion = "True" if outcome == "pass" else "False"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(_S3_SCRIPT.replace("import sys\n", "import sys\ndef test_it():\n    pass\n")
                         + f"\ndef test_outcome():\n    assert {assertion}\n")
    conftest = os.path.join(ROOT, "tests", "conftest.py")
    (tmp_path / "conftest.py").write_text(open(conftest).read())
    env = dict(os.environ, **s3_server, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(test_file)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == expected, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_entry_point_exit_status_survives_s3_abort(s3_server):
    """An absl entry point run through infnet_tf.env.run_main keeps status 0 after touching s3://."""
    script = _S3_SCRIPT + textwrap.dedent("""
        from infnet_tf.env import run_main
        def main(argv):
            return 0 if argv[1:] == ["ok"] else 3
        run_main(main, sys.argv)
    """)
    env = dict(os.environ, **s3_server, PYTHONPATH=ROOT)
    ok = subprocess.run([sys.executable, "-c", script, "ok"], env=env, capture_output=True, text=True,
                        timeout=240)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "touched s3" in ok.stdout
    bad = subprocess.run([sys.executable, "-c", script, "bad"], env=env, capture_output=True,
                         text=True, timeout=240)
    assert bad.returncode == 3, bad.stderr[-2000:]
