"""Precision policy helpers."""
import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.precision import precision_scope, resolve_precision, set_precision


def test_resolve_auto_and_explicit():
    expected = "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    assert resolve_precision("auto") == expected
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision: expected one of auto"):
        resolve_precision("fp8")


def test_set_precision_and_scope_restore():
    set_precision("float32")
    with precision_scope("mixed_bfloat16"):
        assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"
