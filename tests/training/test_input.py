"""The tf.data input function: shapes, padding/truncation, labels, determinism, clear errors."""
import os

import numpy as np
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data.keys import EVENT_TIME, USER_KEY, cat_key, label_key, seq_key
from infnet_tf.input import STRING_ROW_BYTES, batch_parser, make_dataset, model_inputs, resolve_files, row_bytes
from tests.tiny_data import serialize_example, tiny_layout, write_dataset, write_partition


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("input"))
    layout = write_dataset(root, days=(2, 1, 1), rows_per_day=100, files_per_day=3)
    return root, layout


def test_shapes_and_dtypes(data):
    root, layout = data
    features, labels = next(iter(make_dataset(f"{root}/train", layout, 64, shuffle=False, repeat=False,
                                              deterministic=True)))
    seq = layout.sequences[0]
    for key in layout.model_input_keys():
        assert features[key].dtype == tf.int64
    assert features[cat_key("video_id")].shape == (64,)
    assert features[seq_key("click", "video_id")].shape == (64, seq.max_len)
    assert features[seq_key("click", "time_gap")].shape == (64, seq.max_len)
    assert features[USER_KEY].dtype == tf.string and features[EVENT_TIME].shape == (64,)
    assert set(labels) == {"click", "like"} and labels["click"].dtype == tf.int64
    lengths = features[seq_key("click", "length")].numpy()
    items = features[seq_key("click", "video_id")].numpy()
    assert lengths.max() <= seq.max_len
    for row, n in zip(items, lengths):  # real ids first, then padding 0
        assert (row[:n] > 0).all() and (row[n:] == 0).all()
    assert set(model_inputs(layout, features)) == set(layout.model_input_keys())


def test_padding_truncation_and_missing_labels(tmp_path):
    layout = tiny_layout(max_len=4)
    rows = []
    for items in ([], [5, 6], [1, 2, 3, 4, 5, 6, 7]):
        rows.append(serialize_example(layout, {
            cat_key("user_id"): 1, cat_key("video_id"): 2, cat_key("ctx"): 3,
            seq_key("click", "video_id"): items, seq_key("click", "category"): items,
            seq_key("click", "time_gap"): [1] * len(items),
            label_key("click"): 1,  # no "like": missing -> -1
        }))
    write_partition(str(tmp_path), rows)
    path = str(tmp_path / "part-00000.tfrecord.gz")
    features, labels = next(iter(make_dataset(path, layout, 8, shuffle=False, repeat=False,
                                              deterministic=True, with_meta=False)))
    np.testing.assert_array_equal(features[seq_key("click", "video_id")].numpy(),
                                  [[0, 0, 0, 0], [5, 6, 0, 0], [4, 5, 6, 7]])  # most recent kept
    np.testing.assert_array_equal(features[seq_key("click", "length")].numpy(), [0, 2, 4])
    np.testing.assert_array_equal(labels["like"].numpy(), [-1, -1, -1])
    np.testing.assert_array_equal(labels["click"].numpy(), [1, 1, 1])
    assert USER_KEY not in features


def _order(ds):
    """Event times (unique per row) in the order the dataset yields them."""
    return [t for f, _ in ds for t in f[EVENT_TIME].numpy().tolist()]


def test_deterministic_order_is_reproducible(data):
    root, layout = data
    make = lambda seed: make_dataset(f"{root}/train", layout, 32, shuffle=True, repeat=False,  # noqa: E731
                                     deterministic=True, seed=seed, num_parallel=4)
    first, second, other = _order(make(1)), _order(make(1)), _order(make(2))
    assert first == second
    assert first != other
    assert len(first) == 200 and len(set(first)) == 200  # every record exactly once


def test_datasets_share_one_traced_parser(data):
    """Every dataset of a layout maps the same traced parser: building and reading a second dataset
    (another split, another seed) traces nothing more; with_meta=False has a parser of its own that
    yields exactly the model inputs."""
    root, layout = data
    parser = batch_parser(layout, True)
    before = parser.experimental_get_tracing_count()
    for split, seed in (("train", 1), ("valid", 2), ("train", 3)):
        ds = make_dataset(f"{root}/{split}", layout, 32, shuffle=True, repeat=False, deterministic=True, seed=seed)
        assert sum(int(l["click"].shape[0]) for _, l in ds) == {"train": 200, "valid": 100}[split]
    assert batch_parser(layout, True) is parser
    assert parser.experimental_get_tracing_count() - before <= 1   # at most the first trace, here or earlier
    assert parser.experimental_get_tracing_count() >= 1             # the datasets did use it
    lean = make_dataset(f"{root}/valid", layout, 32, shuffle=False, repeat=False, deterministic=True,
                        with_meta=False)
    assert set(lean.element_spec[0]) == set(layout.model_input_keys())
    assert batch_parser(layout, False) is not parser


def test_row_bytes_counts_the_padded_values_of_one_row(data):
    spec = ({"ids": tf.TensorSpec([None, 3], tf.int64), "user": tf.TensorSpec([None], tf.string)},
            {"click": tf.TensorSpec([None], tf.float32)})
    assert row_bytes(spec) == 3 * 8 + STRING_ROW_BYTES + 4
    with pytest.raises(ValueError, match="unknown dimension"):
        row_bytes({"ragged": tf.TensorSpec([None, None], tf.int64)})
    root, layout = data
    ds = make_dataset(f"{root}/valid", layout, 32, shuffle=False, repeat=False, deterministic=True)
    # the tiny layout, all int64 but the user key: 3 categorical ids, the click sequence's video_id,
    # category and time_gap at max_len 6 plus its length, event_time_ms, 2 labels
    assert layout.sequences[0].max_len == 6 and len(layout.categorical) == 3
    assert row_bytes(ds.element_spec) == 8 * (3 + 3 * 6 + 1 + 1 + 2) + STRING_ROW_BYTES == 264


def test_repeat_and_drop_remainder(data):
    root, layout = data
    ds = make_dataset(f"{root}/valid", layout, 64, shuffle=True, repeat=True, deterministic=False,
                      drop_remainder=True)
    sizes = [int(l["click"].shape[0]) for _, l in ds.take(5)]
    assert sizes == [64] * 5  # 100 rows repeat past the end of the split


def test_file_list_glob_and_partitions(data):
    root, layout = data
    files = resolve_files(f"{root}/train")
    assert len(files) == 6 and files == sorted(files)
    assert resolve_files(f"{root}/train/*/part-*.tfrecord.gz") == files
    os.remove(os.path.join(os.path.dirname(files[-1]), "_SUCCESS"))  # incomplete partition: skipped
    try:
        assert len(resolve_files(f"{root}/train")) == 3
    finally:
        open(os.path.join(os.path.dirname(files[-1]), "_SUCCESS"), "w").close()


def test_missing_data_is_a_clear_error(tmp_path):
    layout = tiny_layout()
    missing = str(tmp_path / "nowhere" / "train")
    with pytest.raises(FileNotFoundError, match="nowhere/train"):
        make_dataset(missing, layout, 64, shuffle=False, repeat=False, deterministic=True)
    with pytest.raises(FileNotFoundError, match="empty"):
        make_dataset([], layout, 64, shuffle=False, repeat=False, deterministic=True)


def test_every_dataset_runs_without_the_autotune_model(data):
    """tf.data's autotuning model thread can hold an iterator's deletion until its next wake-up
    (seconds, every core idle; infnet_tf/input.py): every dataset, and what is built on it
    (the cached valid split) and the Kafka records' datasets, has it off."""
    root, layout = data
    for shuffle, deterministic in ((True, False), (False, True)):
        ds = make_dataset(f"{root}/train", layout, 64, shuffle=shuffle, repeat=False, deterministic=deterministic)
        assert ds.options().autotune.enabled is False
        assert ds.cache().options().autotune.enabled is False
    from infnet_tf.training.kafka_source import records_dataset   # streaming from Kafka

    assert records_dataset([b""], layout, 64, shuffle=False, seed=None).options().autotune.enabled is False
