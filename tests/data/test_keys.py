"""The key schema and its TensorFlow views: one ordered list of keys for every reader and writer."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.data import keys
from infnet_tf.data.tensors import input_signature, parsing_spec, placeholder_inputs
from tests.tiny_data import serialize_example, tiny_layout

RECORD = ["cat/user_id", "cat/video_id", "cat/ctx", "seq/click/video_id", "seq/click/category",
          "seq/click/time_gap", "label/click", "label/like", "user_key", "event_time_ms"]
MODEL = ["cat/user_id", "cat/video_id", "cat/ctx", "seq/click/video_id", "seq/click/category",
         "seq/click/time_gap", "seq/click/length"]


def test_record_and_model_input_keys_in_writer_order():
    layout = tiny_layout()
    assert [k.name for k in keys.record_keys(layout)] == RECORD
    assert [k.kind for k in keys.record_keys(layout)] == ["id"] * 3 + ["ids"] * 3 + ["id", "id", "string", "id"]
    assert [k.name for k in keys.record_keys(layout, with_labels=False, with_meta=False)] == RECORD[:6]
    assert [k.name for k in keys.model_input_keys(layout)] == MODEL
    assert list(layout.model_input_keys()) == MODEL


def test_parsing_spec_missing_label_and_missing_id_defaults():
    layout = tiny_layout()
    spec = parsing_spec(layout)
    assert list(spec) == RECORD
    one = serialize_example(layout, {"cat/user_id": 3, "seq/click/video_id": [4, 5], "label/click": 1})
    parsed = tf.io.parse_example(tf.constant([one]), spec)
    assert parsed["label/like"].numpy().tolist() == [keys.MISSING_LABEL]
    assert parsed["label/click"].numpy().tolist() == [1]
    assert parsed["cat/ctx"].numpy().tolist() == [0] and parsed["cat/user_id"].numpy().tolist() == [3]
    assert parsed["seq/click/video_id"].to_list() == [[4, 5]] and parsed["user_key"].numpy().tolist() == [b""]


def test_input_signature_and_placeholders_cover_the_model_inputs():
    layout = tiny_layout(max_len=6)
    signature = input_signature(layout)
    assert list(signature) == MODEL
    assert signature["seq/click/video_id"].shape.as_list() == [None, None]
    assert signature["seq/click/length"].shape.as_list() == [None]
    assert all(s.dtype == tf.int64 and s.name == k for k, s in signature.items())
    zeros = placeholder_inputs(layout, batch_size=3)
    assert list(zeros) == MODEL
    assert zeros["seq/click/time_gap"].shape == (3, 6) and zeros["cat/ctx"].shape == (3,)
    assert placeholder_inputs(layout, batch_size=2, seq_len=1)["seq/click/category"].shape == (2, 1)
    assert all(not np.any(v.numpy()) for v in zeros.values())
