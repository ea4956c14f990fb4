"""Flags generated from config dataclasses (infnet_tf.config_flags): a field is a flag, its help the field's."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pytest
from absl import flags

import infnet_tf  # noqa: F401
from infnet_tf.config_flags import define_flags, explicit, flag_names, setting, values
from infnet_tf.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Knobs:
    on: bool = setting(True, "A switch.")
    count: int = setting(3, "How many.")
    rate: float = setting(0.5, "How fast.")
    widths: tuple[int, ...] = setting((8, 4), "Widths, comma-separated.")
    name: str = setting("a", "Which one.", choices=("a", "b"))
    path: str | None = setting(None, "Where.")
    extra: Mapping[str, Any] = setting(default_factory=dict, help="JSON object.", flag="extra_json")
    internal: int = setting(0, cli=False)


def test_every_field_becomes_a_flag_of_its_type_with_its_help():
    fv = flags.FlagValues()
    assert define_flags(Knobs, flag_values=fv) == ["on", "count", "rate", "widths", "name", "path", "extra_json"]
    assert "internal" not in fv
    assert {n: fv[n].help for n in ("on", "count", "extra_json")} == {
        "on": "A switch.", "count": "How many.", "extra_json": "JSON object."}
    fv(["prog", "--noon", "--count=5", "--rate=1.5", "--widths=16,8", "--name=b", "--path=/p",
        "--extra_json={\"k\": 1}"])
    assert values(Knobs, fv) == {"on": False, "count": 5, "rate": 1.5, "widths": "16,8", "name": "b",
                                      "path": "/p", "extra": "{\"k\": 1}"}
    assert explicit(Knobs, fv) == {"on", "count", "rate", "widths", "name", "path", "extra"}
    assert flag_names(Knobs)["extra"] == "extra_json"
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", "--name=c"])  # choices -> an enum


def test_defaults_and_on_off_switches():
    fv = flags.FlagValues()
    define_flags(Knobs, bools="on_off", flag_values=fv)
    fv(["prog"])
    assert values(Knobs, fv) == {"on": "on", "count": 3, "rate": 0.5, "widths": "8,4", "name": "a",
                                      "path": None, "extra": "{}"}
    assert explicit(Knobs, fv) == set()
    fv(["prog", "--on=off"])
    assert fv["on"].value == "off"


def test_a_new_config_field_is_a_new_flag_with_its_help():
    @dataclasses.dataclass(frozen=True)
    class GrownTrainConfig(TrainConfig):
        new_knob: int = setting(7, "A knob added later, with its help in one place.")

    fv = flags.FlagValues()
    names = define_flags(GrownTrainConfig, flag_values=fv)
    assert names[-1] == "new_knob" and set(names) == {f.name for f in dataclasses.fields(GrownTrainConfig)}
    assert (fv["new_knob"].default, fv["new_knob"].help) == (7, "A knob added later, with its help in one place.")
    fv(["prog", "--new_knob=9", "--batch_size=32"])
    config = GrownTrainConfig(**values(GrownTrainConfig, fv))
    assert (config.new_knob, config.batch_size) == (9, 32)


def test_a_field_without_help_is_refused_by_name():
    @dataclasses.dataclass(frozen=True)
    class Bare:
        forgotten: int = 0

    with pytest.raises(ValueError, match=r"Bare\.forgotten: no help text"):
        define_flags(Bare, flag_values=flags.FlagValues())
    with pytest.raises(ValueError, match="needs its help text"):
        setting(1)


def test_flags_belong_to_the_calling_module():
    fv = flags.FlagValues()
    define_flags(Knobs, flag_values=fv)
    assert {f.name for f in fv.get_flags_for_module(__name__)} >= {"on", "count", "extra_json"}
