"""The dataset directory layout: the names writers produce are the names readers find."""
import datetime as dt

from infnet_tf.data import dataset_dir
from infnet_tf.data.partitions import list_partitions
from tests.tiny_data import write_partition


def test_names():
    when = dt.datetime(2026, 10, 1, 7, 30, tzinfo=dt.timezone.utc)
    assert dataset_dir.partition_key(when) == "dt=2026-10-01"
    assert dataset_dir.partition_key(when, hourly=True) == "dt=2026-10-01/hr=07"
    assert dataset_dir.data_file_relpath("valid", "dt=2026-10-01", 3, 12) == \
        "valid/dt=2026-10-01/part-00003-of-00012.tfrecord.gz"
    assert dataset_dir.rejects_relpath("events-00001") == "rejects/events-00001.jsonl"
    assert dataset_dir.artifact_path("s3://b/data/") == "s3://b/data/transform/transform_artifact.json"
    assert dataset_dir.artifact_path("/x/a.json") == "/x/a.json"


def test_written_partition_names_are_listed_in_time_order(tmp_path):
    days = [dt.datetime(2026, 10, d, h, tzinfo=dt.timezone.utc) for d, h in ((2, 5), (1, 23), (1, 4))]
    split = tmp_path / "train"
    for when in days:
        write_partition(str(split / dataset_dir.partition_key(when, hourly=True)), [b""])
    (split / "not-a-partition").mkdir()
    found = list_partitions(str(split))
    assert [p.key for p in found] == ["dt=2026-10-01/hr=04", "dt=2026-10-01/hr=23", "dt=2026-10-02/hr=05"]
