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


def test_cpu_bfloat16_flags_reads_the_first_flags_line(tmp_path):
    from infnet_tf.precision import cpu_bfloat16_flags

    both = tmp_path / "both"
    both.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 avx512_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_bfloat16_flags(str(both)) == ("avx512_bf16", "amx_bf16")
    plain = tmp_path / "plain"
    plain.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n")   # bf16 only emulated
    assert cpu_bfloat16_flags(str(plain)) == ()
    assert cpu_bfloat16_flags(str(tmp_path / "missing")) == ()


def test_the_bfloat16_hint_is_only_for_auto_resolved_to_float32_on_a_bfloat16_cpu():
    from infnet_tf.precision import bfloat16_hint

    hint = bfloat16_hint("auto", "float32", ("avx512_bf16",))
    assert "this CPU has avx512_bf16" in hint and "--precision=mixed_bfloat16" in hint
    assert bfloat16_hint("float32", "float32", ("avx512_bf16",)) is None         # the user chose float32
    assert bfloat16_hint("auto", "mixed_float16", ("avx512_bf16",)) is None      # a GPU is there
    assert bfloat16_hint("auto", "float32", ()) is None                          # no native bfloat16
