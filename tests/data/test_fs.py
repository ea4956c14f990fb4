"""The one filesystem helper on local paths (object stores: tests/training/test_s3.py)."""
import os

import pytest

from infnet_tf.data import fs


@pytest.mark.parametrize("parts, joined", [
    (("a", "b", "c.json"), "a/b/c.json"),
    (("a/", "/b"), "a/b"),
    (("/", "x"), "/x"),
    (("", "x"), "x"),
    (("s3://bucket/", "data", "dt=2026-10-01"), "s3://bucket/data/dt=2026-10-01"),
])
def test_join(parts, joined):
    assert fs.join(*parts) == joined


def test_is_remote():
    assert fs.is_remote("s3://b/x") and fs.is_remote("hdfs://nn/x") and fs.is_remote("gs://b")
    assert not fs.is_remote("/tmp/x") and not fs.is_remote("file:///tmp/x") and not fs.is_remote("rel/x")


def test_write_is_whole_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "new" / "dir" / "f.json")
    fs.write_text(path, "one")
    fs.write_text(path, "two")
    assert fs.read_text(path) == "two"
    assert os.listdir(tmp_path / "new" / "dir") == ["f.json"]


def test_listdir_isdir_exists_glob_rmtree(tmp_path):
    root = str(tmp_path)
    for name in ("b.txt", "a.txt"):
        fs.write_text(fs.join(root, "d", name), name)
    assert sorted(fs.listdir(fs.join(root, "d"))) == ["a.txt", "b.txt"]
    assert fs.listdir(fs.join(root, "missing")) == [] and fs.listdir(fs.join(root, "d", "a.txt")) == []
    assert fs.isdir(fs.join(root, "d")) and not fs.isdir(fs.join(root, "d", "a.txt"))
    assert fs.glob(fs.join(root, "d", "*.txt")) == [fs.join(root, "d", "a.txt"), fs.join(root, "d", "b.txt")]
    fs.rmtree(fs.join(root, "d"))
    assert not fs.exists(fs.join(root, "d"))
