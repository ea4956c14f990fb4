"""Command-line flags generated from config dataclasses: one flag per field, so a new config field is a
new flag with no hand-kept mirror.

A field's help text, and how it shows on the command line, live on the field itself::

    @dataclasses.dataclass(frozen=True)
    class TrainConfig:
        seed: int = setting(0, "Random seed (weights initialisation and data shuffling).")
        strategy: str = setting("auto", "tf.distribute strategy ...", choices=STRATEGIES)

An entry module calls :func:`define_flags` once per config class (absl flags, registered as the entry
module's own, so ``--help`` lists them) and :func:`values` after parsing. Flag types follow the
default: bool -> ``--name/--noname`` (or an ``on|off`` enum with ``bools="on_off"``), int, float,
tuple -> comma-separated string, str/None -> string, ``choices`` -> enum, a mapping -> JSON string.
Importing this module does not import TensorFlow (``--help`` answers before TensorFlow loads).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, Iterable, Mapping

HELP = "help"
FLAG = "flag"          # the flag's name where the field's name is taken by another flag
CHOICES = "choices"
CLI = "cli"            # False: the field has no flag (set by the library or another flag)


def setting(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
            choices: Iterable[str] | None = None, cli: bool = True, default_factory: Any = dataclasses.MISSING):
    """A dataclass field carrying its command-line help (and optional flag name, enum choices)."""
    if cli and not help:
        raise ValueError("setting: a field with a flag needs its help text")
    metadata = {HELP: help, CLI: cli}
    if flag:
        metadata[FLAG] = flag
    if choices is not None:
        metadata[CHOICES] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_fields(config_cls) -> list[dataclasses.Field]:
    """The fields of ``config_cls`` that are flags."""
    return [f for f in dataclasses.fields(config_cls) if f.metadata.get(CLI, True)]


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get(FLAG, field.name)


def flag_names(config_cls) -> dict[str, str]:
    """``{field name: flag name}`` of every flag of ``config_cls``."""
    return {f.name: flag_name(f) for f in flag_fields(config_cls)}


def field_default(field: dataclasses.Field) -> Any:
    """The field's default value, read without constructing the dataclass (its validation may import
    TensorFlow)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def define_flags(config_cls, *, bools: str = "bool", flag_values=None, module_name: str | None = None) -> list[str]:
    """Define one absl flag per field of ``config_cls`` (see the module docstring); returns their names.

    ``bools``: ``"bool"`` (``--x``/``--nox``) or ``"on_off"`` (``--x=on|off``). The flags belong to
    ``module_name`` (default: the calling module), so that module's ``--help`` lists them."""
    from absl import flags

    if bools not in ("bool", "on_off"):
        raise ValueError(f"define_flags: bools: expected 'bool' or 'on_off', got {bools!r}")
    flag_values = flags.FLAGS if flag_values is None else flag_values
    if module_name is None:  # the caller; absl names the main module by its path (sys.argv[0])
        module_name = sys._getframe(1).f_globals["__name__"]
        module_name = sys.argv[0] if module_name == "__main__" else module_name
    common = {"flag_values": flag_values, "module_name": module_name}
    names = []
    for field in flag_fields(config_cls):
        name, default = flag_name(field), field_default(field)
        help_text = field.metadata.get(HELP)
        if not help_text:
            raise ValueError(f"{config_cls.__name__}.{field.name}: no help text; declare the field with "
                             f"infnet_tf.config_flags.setting(default, help=...) or setting(..., cli=False)")
        if CHOICES in field.metadata:
            flags.DEFINE_enum(name, default, list(field.metadata[CHOICES]), help_text, **common)
        elif isinstance(default, bool) and bools == "on_off":
            flags.DEFINE_enum(name, "on" if default else "off", ["on", "off"], help_text, **common)
        elif isinstance(default, bool):
            flags.DEFINE_bool(name, default, help_text, **common)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, help_text, **common)
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, help_text, **common)
        elif isinstance(default, tuple):
            flags.DEFINE_string(name, ",".join(str(v) for v in default), help_text, **common)
        elif isinstance(default, Mapping):
            flags.DEFINE_string(name, json.dumps(dict(default)), help_text, **common)
        elif default is None or isinstance(default, str):
            flags.DEFINE_string(name, default, help_text, **common)
        else:
            raise TypeError(f"{config_cls.__name__}.{field.name}: no flag type for a default of "
                            f"{type(default).__name__}")
        names.append(name)
    return names


def values(config_cls, flag_values=None) -> dict[str, Any]:
    """``{field name: parsed flag value}`` for every flag of ``config_cls`` (after absl parsed them)."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    return {f.name: flag_values[flag_name(f)].value for f in flag_fields(config_cls)}


def explicit(config_cls, flag_values=None) -> set[str]:
    """The field names of ``config_cls`` whose flags were given on the command line."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    return {f.name for f in flag_fields(config_cls) if flag_values[flag_name(f)].present}


def parse_command_flags(flag_values, argv: list[str], *, program: str, usage: str) -> list[str]:
    """Parse a command's own flags (``flag_values``: its ``flags.FlagValues()``, apart from absl's global
    FLAGS, so two commands can be imported in one process) from ``argv`` (with the program name).

    ``--help``: prints ``usage`` and the flags, exits 0; a bad value: one ``<program>: error: ...`` line,
    exit 2. Returns ``[program, *the arguments that are not these flags]`` (absl's own flags, Beam's)."""
    from absl import flags

    from infnet_tf.env import help_requested

    if help_requested(argv):
        print(f"{usage}\nflags:\n{flag_values.get_help()}", flush=True)
        raise SystemExit(0)
    try:
        return flag_values(argv, known_only=True)
    except flags.Error as exc:
        print(f"{program}: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
