"""Feature specs: the YAML format that describes a dataset to every infnet stage, and its checker.

A spec (``feature_specs/*.yaml``, documented key by key in ``feature_specs/README.md``) names the
raw sources, the time column, user and item keys, the categorical and dense fields, the behaviour
sequence types, the point-in-time counter features, the tasks and the time split. :func:`load_spec`
reads one into frozen dataclasses (:class:`FeatureSpec` and friends); any mistake raises
:class:`SpecError` with one message naming the field path and what was expected, e.g.::

    kuairand.yaml: sequences[1].max_len: expected a positive int, got '50x'

:func:`check_files` is the checker behind the command ``python -m infnet_tf.spec FILE...`` (its entry
module, :mod:`infnet_tf.spec`). No TensorFlow import.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import sys
from typing import Any, Callable, Iterable, Mapping, NoReturn, Sequence, TypeVar

import yaml

__all__ = [
    "BinningSpec", "CategoricalField", "CounterFeature", "CounterSpec", "DenseField", "FeatureSpec",
    "SIDES", "Source", "SequenceSpec", "SpecError", "SplitSpec", "TaskSpec", "TimeSpec", "VocabularySpec",
    "check_files", "load_spec", "parse_spec", "parse_spec_text",
]

T = TypeVar("T")

SOURCE_NAMES = ("events", "users", "items")
FORMATS = ("parquet", "csv")
TIME_UNITS = {"s": 1000.0, "ms": 1.0, "us": 0.001}
BINNING_TYPES = ("quantile", "log")
TIME_GAP_BINNING_TYPES = ("log",)
PARTITIONS = ("daily", "hourly")
USER_SIDE, CANDIDATE_SIDE = "user", "candidate"
SIDES = (USER_SIDE, CANDIDATE_SIDE)
SOURCE_SIDES = {"users": USER_SIDE, "items": CANDIDATE_SIDE}  # the side a joined table's columns are on
DEFAULT_TIMEZONE = "UTC"
DEFAULT_MIN_TIME = "2000-01-01"
DEFAULT_MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
DEFAULT_MAX_TIME_AFTER_NOW = "1d"
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")
URI_SCHEMES = ("s3", "gs", "hdfs")
IMPRESSIONS = "imp"  # the ``what`` of a counter feature that counts every impression
ALL_WINDOW = "all"
DEFAULT_COUNTER_BINNING = {"type": "log", "num_buckets": 16}
DEFAULT_TIME_GAP_BINNING = {"type": "log", "num_buckets": 16}
_WINDOW_UNIT_MS = {"h": 3_600_000, "d": 86_400_000}
_WINDOW_RE = re.compile(r"^([1-9][0-9]*)([hd])$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPEC_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class SpecError(ValueError):
    """An invalid feature spec; the message names the file, the field path and what was expected."""


# ---------------------------------------------------------------------------------------------
# The dataclasses
# ---------------------------------------------------------------------------------------------
class _ReadOnlyDict(dict):
    """A hashable, picklable dict that refuses changes (``FeatureSpec.sources``)."""

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("FeatureSpec.sources is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def __reduce__(self) -> tuple:
        return (_ReadOnlyDict, (dict(self),))


@dataclasses.dataclass(frozen=True)
class Source:
    """A raw table. ``key`` is the join column (to events' user/item key); None for events."""

    name: str
    path: str
    format: str
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class TimeSpec:
    """The events' timestamp column and its unit (``s``, ``ms`` or ``us``)."""

    column: str
    unit: str

    @property
    def to_ms_factor(self) -> float:
        """Multiply a raw time value by this to get epoch milliseconds."""
        return TIME_UNITS[self.unit]


@dataclasses.dataclass(frozen=True)
class VocabularySpec:
    """A vocabulary learned from the training window: ids seen ``min_count`` times, plus OOV buckets."""

    min_count: int
    oov_buckets: int


@dataclasses.dataclass(frozen=True)
class BinningSpec:
    """How a number becomes a bucket id: ``quantile`` (learned boundaries) or ``log`` scale."""

    type: str
    num_buckets: int


@dataclasses.dataclass(frozen=True)
class CategoricalField:
    """One categorical token; exactly one of ``vocabulary`` / ``hash_buckets`` is set.

    ``side``: ``user`` (known once per request: the user, the context) or ``candidate`` (one value
    per candidate item); see :meth:`FeatureSpec.token_sides`."""

    name: str
    source: str
    vocabulary: VocabularySpec | None
    hash_buckets: int | None
    embedding_dim: int | None
    side: str = USER_SIDE


@dataclasses.dataclass(frozen=True)
class DenseField:
    """A numeric column bucketized into one categorical token (``side`` as for categorical fields)."""

    name: str
    source: str
    binning: BinningSpec
    side: str = USER_SIDE


@dataclasses.dataclass(frozen=True)
class SequenceSpec:
    """A behaviour sequence type: the user's earlier events where ``filter_column == filter_equals``."""

    name: str
    filter_column: str
    filter_equals: int | str
    max_len: int
    item_field: str
    side_fields: tuple[str, ...]
    time_gap: BinningSpec


@dataclasses.dataclass(frozen=True)
class CounterFeature:
    """One counter token: how many ``what`` (``imp`` or a task's positives) per ``key`` in ``window``."""

    name: str
    key: str
    what: str
    window: str
    window_ms: int | None
    binning: BinningSpec


@dataclasses.dataclass(frozen=True)
class CounterSpec:
    """Point-in-time counts per ``key`` over trailing ``windows``: impressions and task positives."""

    key: str
    windows: tuple[str, ...]
    positives: tuple[str, ...]
    binning: BinningSpec

    @staticmethod
    def window_ms(window: str) -> int | None:
        """Length of a window string (``6h``, ``7d``) in milliseconds; None for ``all``."""
        if window == ALL_WINDOW:
            return None
        match = _WINDOW_RE.match(window)
        if not match:
            raise ValueError(f"bad counter window {window!r}: expected <int>h, <int>d or all")
        return int(match.group(1)) * _WINDOW_UNIT_MS[match.group(2)]

    def features(self) -> tuple[CounterFeature, ...]:
        """This counter's tokens: for each of ``imp`` then each positive, for each window."""
        return tuple(
            CounterFeature(f"{self.key}_{what}_{w}", self.key, what, w, self.window_ms(w), self.binning)
            for what in (IMPRESSIONS, *self.positives)
            for w in self.windows
        )


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A prediction task: its 0/1 label column in events and its loss weight λ."""

    name: str
    label: str
    weight: float


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """The time split: either last-K-days (``*_days``) or cut times (``*_start_ms``), never both."""

    valid_days: int | None
    test_days: int | None
    valid_start_ms: int | None
    test_start_ms: int | None
    partition: str
    timezone: str = DEFAULT_TIMEZONE          # partition days/hours (and naive cut times) in this zone
    min_time_ms: int = DEFAULT_MIN_TIME_MS    # events before this are rejected (time_outside_window)
    max_time_after_now: str = DEFAULT_MAX_TIME_AFTER_NOW  # events after job start + this are rejected

    @property
    def by_days(self) -> bool:
        """True for the last-K-days style, False for the cut-time style."""
        return self.test_days is not None

    @property
    def max_time_after_now_ms(self) -> int:
        return duration_ms(self.max_time_after_now)

    def tzinfo(self) -> dt.tzinfo:
        """The split's time zone as a ``datetime.tzinfo``."""
        return tzinfo_of(self.timezone)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """A whole feature spec. Build it with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    sources: Mapping[str, Source]
    time: TimeSpec
    user_key: str
    item_key: str
    categorical: tuple[CategoricalField, ...]
    dense: tuple[DenseField, ...]
    sequences: tuple[SequenceSpec, ...]
    counters: tuple[CounterSpec, ...]
    tasks: tuple[TaskSpec, ...]
    split: SplitSpec

    def counter_features(self) -> tuple[CounterFeature, ...]:
        """All counter tokens, counter by counter (see :meth:`CounterSpec.features`)."""
        return tuple(f for counter in self.counters for f in counter.features())

    def token_names(self) -> tuple[str, ...]:
        """Categorical token names in model order: categorical, then dense, then counter features."""
        return (
            tuple(f.name for f in self.categorical)
            + tuple(f.name for f in self.dense)
            + tuple(f.name for f in self.counter_features())
        )

    def token_sides(self) -> dict[str, str]:
        """Token name -> ``user`` | ``candidate``, for every token of :meth:`token_names`.

        A field's side is its declared ``side``; a counter token is on the side of its ``key`` (the
        user key: user; the item key: candidate; a categorical field: that field's side). Behaviour
        sequences are always user side (they are the user's history), whatever their fields' sides.
        """
        sides = {f.name: f.side for f in (*self.categorical, *self.dense)}
        key_side = {**sides, self.user_key: USER_SIDE, self.item_key: CANDIDATE_SIDE}
        sides.update({c.name: key_side[c.key] for c in self.counter_features()})
        return {name: sides[name] for name in self.token_names()}

    def field(self, name: str) -> CategoricalField | DenseField:
        """The categorical or dense field called ``name``; KeyError if there is none."""
        for f in (*self.categorical, *self.dense):
            if f.name == name:
                return f
        raise KeyError(f"{self.name}: no categorical or dense field {name!r}")

    def columns_by_source(self) -> dict[str, set[str]]:
        """Raw columns each declared source must provide (join keys included)."""
        out = {name: ({src.key} if src.key else set()) for name, src in self.sources.items()}
        out["events"] |= {self.time.column, self.user_key, self.item_key}
        out["events"] |= {t.label for t in self.tasks}
        out["events"] |= {s.filter_column for s in self.sequences}
        for f in (*self.categorical, *self.dense):
            out[f.source].add(f.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The canonical plain-data form (defaults filled in); ``parse_spec`` reads it back equal."""
        return {
            "name": self.name,
            "sources": {n: _source_dict(s) for n, s in self.sources.items()},
            "time": {"column": self.time.column, "unit": self.time.unit},
            "user_key": self.user_key,
            "item_key": self.item_key,
            "categorical": [_categorical_dict(f) for f in self.categorical],
            "dense": [{"name": f.name, "source": f.source, "binning": _asdict(f.binning), "side": f.side}
                      for f in self.dense],
            "sequences": [_sequence_dict(s) for s in self.sequences],
            "counters": [
                {"key": c.key, "windows": list(c.windows), "positives": list(c.positives),
                 "binning": _asdict(c.binning)}
                for c in self.counters
            ],
            "tasks": [_asdict(t) for t in self.tasks],
            "split": _split_dict(self.split),
        }

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`to_dict`: equal specs, equal fingerprints."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def summary(self) -> str:
        """One line: token counts, sequence types, tasks and a short fingerprint."""
        return (
            f"{self.name} — {len(self.categorical)} categorical, {len(self.dense)} dense, "
            f"{len(self.counter_features())} counter tokens, {len(self.sequences)} sequence types "
            f"(max {sum(s.max_len for s in self.sequences)} items), {len(self.tasks)} tasks, "
            f"fingerprint {self.fingerprint()[:8]}"
        )


def _asdict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _source_dict(src: Source) -> dict[str, Any]:
    out: dict[str, Any] = {"path": src.path, "format": src.format}
    if src.key is not None:
        out["key"] = src.key
    return out


def _categorical_dict(f: CategoricalField) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "source": f.source}
    if f.vocabulary is not None:
        out["vocabulary"] = _asdict(f.vocabulary)
    else:
        out["hash_buckets"] = f.hash_buckets
    out["embedding_dim"] = f.embedding_dim
    out["side"] = f.side
    return out


def _sequence_dict(s: SequenceSpec) -> dict[str, Any]:
    return {
        "name": s.name,
        "filter": {"column": s.filter_column, "equals": s.filter_equals},
        "max_len": s.max_len,
        "item_field": s.item_field,
        "side_fields": list(s.side_fields),
        "time_gap": _asdict(s.time_gap),
    }


def _split_dict(s: SplitSpec) -> dict[str, Any]:
    if s.by_days:
        out: dict[str, Any] = {"valid_days": s.valid_days, "test_days": s.test_days, "partition": s.partition}
    else:
        out = {"valid_start": _ms_to_iso(s.valid_start_ms), "test_start": _ms_to_iso(s.test_start_ms),
               "partition": s.partition}
    # the newer keys appear only when not at their defaults, so older specs keep their fingerprints
    if s.timezone != DEFAULT_TIMEZONE:
        out["timezone"] = s.timezone
    if s.min_time_ms != DEFAULT_MIN_TIME_MS:
        out["min_time"] = _ms_to_iso(s.min_time_ms)
    if s.max_time_after_now != DEFAULT_MAX_TIME_AFTER_NOW:
        out["max_time_after_now"] = s.max_time_after_now
    return out


def _ms_to_iso(ms: int | None) -> str:
    assert ms is not None
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Reading: small typed checkers and a mapping reader that knows its field path
# ---------------------------------------------------------------------------------------------
class _Expected(Exception):
    """Raised by a checker: ``what`` completes the sentence "expected ..."."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


Checker = Callable[[Any], T]


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any) -> int:
    if _is_int(value) and value > 0:
        return value
    raise _Expected("a positive int")


def positive_number(value: Any) -> float:
    if (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value > 0:
        return float(value)
    raise _Expected("a positive number")


def identifier(value: Any) -> str:
    if isinstance(value, str) and _IDENTIFIER_RE.match(value):
        return value
    raise _Expected("a name of letters, digits and '_' (not starting with a digit)")


def spec_name(value: Any) -> str:
    if isinstance(value, str) and _SPEC_NAME_RE.match(value):
        return value
    raise _Expected("a name matching [a-z0-9_]+")


def one_of(*choices: str) -> Checker[str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise _Expected("one of " + ", ".join(choices))

    return check


def int_or_str(value: Any) -> int | str:
    if _is_int(value) or isinstance(value, str):
        return value
    raise _Expected("an int or a string")


def source_path(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        match = _URI_RE.match(value)
        if match is None or match.group(1) in URI_SCHEMES:
            return value
    raise _Expected("a local path or an " + ", ".join(f"{s}://" for s in URI_SCHEMES) + " URI")


def counter_window(value: Any) -> str:
    if isinstance(value, str) and (value == ALL_WINDOW or _WINDOW_RE.match(value)):
        return value
    raise _Expected("a window like 12h, 7d or all")


def tzinfo_of(name: str) -> dt.tzinfo:
    """``"UTC"``, a fixed offset ``"+08:00"`` or an IANA zone name as a ``datetime.tzinfo``."""
    if name in ("UTC", "Z"):
        return dt.timezone.utc
    match = _OFFSET_RE.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def timezone_name(value: Any) -> str:
    if isinstance(value, str) and value.strip() == value and value:
        match = _OFFSET_RE.match(value)
        if match and int(match.group(2)) <= 18 and int(match.group(3)) < 60:
            return value
        if not match:
            try:
                tzinfo_of(value)
                return value
            except (ValueError, KeyError, OSError):
                pass
    raise _Expected("an IANA time zone such as 'Asia/Shanghai', 'UTC' or a fixed offset such as '+08:00'")


def duration_ms(value: str) -> int:
    match = _WINDOW_RE.match(value)
    assert match is not None, value
    return int(match.group(1)) * _WINDOW_UNIT_MS[match.group(2)]


def duration(value: Any) -> str:
    if isinstance(value, str) and _WINDOW_RE.match(value):
        return value
    raise _Expected("a duration like 12h or 1d")


def utc_ms(value: Any, zone: dt.tzinfo = dt.timezone.utc) -> int:
    """An ISO date/datetime (string or YAML date) as epoch ms; naive times are in ``zone`` (UTC)."""
    when: Any = value
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
    if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day)
    if not isinstance(when, dt.datetime):
        raise _Expected("an ISO date or datetime such as '2026-10-14' or '2026-10-14T06:00:00Z'")
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return delta // dt.timedelta(milliseconds=1)


_MISSING: Any = object()


class _Reader:
    """Reports errors for one spec document, prefixed by its origin (usually the file name)."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, path: str, message: str) -> NoReturn:
        raise SpecError(f"{self.origin}: {path}: {message}" if path else f"{self.origin}: {message}")

    def check(self, path: str, value: Any, checker: Checker[T]) -> T:
        """``checker(value)``, turning its complaint into a SpecError at ``path``."""
        try:
            return checker(value)
        except _Expected as exc:
            self.fail(path, f"expected {exc.what}, got {_got(value)}")

    def mapping(self, path: str, value: Any, allowed: Sequence[str], required: Iterable[str] = ()) -> "_Map":
        """``value`` as a mapping whose keys are all ``allowed`` and include all ``required``."""
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping with keys {', '.join(allowed)}, got {_got(value)}")
        for key in value:
            if key not in allowed:
                self.fail(_join(path, str(key)), f"unknown key; allowed keys: {', '.join(allowed)}")
        for key in required:
            if value.get(key) is None:
                self.fail(_join(path, key), "missing required field")
        return _Map(self, path, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Map:
    """A checked YAML mapping at a field path; a key set to null reads as absent."""

    def __init__(self, reader: _Reader, path: str, data: dict):
        self.reader, self.path, self.data = reader, path, data

    def at(self, key: str) -> str:
        """The field path of ``key``."""
        return _join(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, checker: Checker[T], default: Any = _MISSING) -> T:
        """The checked value of ``key``; ``default`` (unchecked) when absent."""
        if not self.has(key):
            if default is _MISSING:
                self.reader.fail(self.at(key), "missing required field")
            return default
        return self.reader.check(self.at(key), self.data[key], checker)

    def sub(self, key: str, allowed: Sequence[str], required: Iterable[str] = (),
            default: Mapping[str, Any] | None = None) -> "_Map":
        """The mapping under ``key`` (``default`` when absent and given)."""
        value = self.data.get(key)
        if value is None and default is not None:
            value = dict(default)
        return self.reader.mapping(self.at(key), value, allowed, required)

    def items(self, key: str, nonempty: bool = False) -> list[tuple[str, Any]]:
        """(path, element) pairs of the list under ``key``; an absent key is an empty list."""
        value = self.data.get(key)
        if value is None and not nonempty:
            return []
        if not isinstance(value, list) or (nonempty and not value):
            self.reader.fail(self.at(key), f"expected a {'non-empty ' if nonempty else ''}list, got {_got(value)}")
        return [(f"{self.at(key)}[{i}]", v) for i, v in enumerate(value)]

    def names(self, key: str, checker: Checker[str]) -> tuple[str, ...]:
        """A list of distinct checked strings under ``key``."""
        out: list[str] = []
        for path, value in self.items(key):
            name = self.reader.check(path, value, checker)
            if name in out:
                self.reader.fail(path, f"duplicate {name!r}")
            out.append(name)
        return tuple(out)


# ---------------------------------------------------------------------------------------------
# Parsing the sections
# ---------------------------------------------------------------------------------------------
_TOP_KEYS = ("name", "sources", "time", "user_key", "item_key", "categorical", "dense",
             "sequences", "counters", "tasks", "split")
_TOP_REQUIRED = ("name", "sources", "time", "user_key", "item_key", "tasks", "split")


def parse_spec(data: Any, source_name: str = "<dict>") -> FeatureSpec:
    """Check plain data (as loaded from YAML) and build a :class:`FeatureSpec`.

    Raises :class:`SpecError` naming ``source_name``, the field path and what was expected.
    """
    reader = _Reader(source_name)
    top = reader.mapping("", data, _TOP_KEYS, _TOP_REQUIRED)
    name = top.get("name", spec_name)
    sources = _parse_sources(top)
    time_ = top.sub("time", ("column", "unit"), ("column", "unit"))
    time = TimeSpec(time_.get("column", identifier), time_.get("unit", one_of(*TIME_UNITS)))
    user_key = top.get("user_key", identifier)
    item_key = top.get("item_key", identifier)

    tasks = [(p, _parse_task(reader, p, v)) for p, v in top.items("tasks", nonempty=True)]
    _check_unique(reader, ((_join(p, "name"), t.name) for p, t in tasks), "task name")
    keys = {user_key: USER_SIDE, item_key: CANDIDATE_SIDE}
    categorical = [(p, _parse_categorical(reader, p, v, sources, keys)) for p, v in top.items("categorical")]
    dense = [(p, _parse_dense(reader, p, v, sources, keys)) for p, v in top.items("dense")]
    fields = [(_join(p, "name"), f.name) for p, f in (*categorical, *dense)]
    _check_unique(reader, fields, "token name")
    inputs = {time.column: "time.column", user_key: "user_key", item_key: "item_key"}
    _check_labels(reader, {**inputs, **{name: path for path, name in fields}}, tasks)

    cat_source = {f.name: f.source for _, f in categorical}
    sequences = [(p, _parse_sequence(reader, p, v, cat_source)) for p, v in top.items("sequences")]
    _check_unique(reader, ((_join(p, "name"), s.name) for p, s in sequences), "sequence name")
    task_names = [t.name for _, t in tasks]
    counter_keys = set(cat_source) | {user_key, item_key}
    counters = [(p, _parse_counter(reader, p, v, counter_keys, task_names)) for p, v in top.items("counters")]
    counter_tokens = [(p, f.name) for p, c in counters for f in c.features()]
    _check_unique(reader, fields + counter_tokens, "token name")

    return FeatureSpec(
        name=name, sources=_ReadOnlyDict(sources), time=time, user_key=user_key, item_key=item_key,
        categorical=_values(categorical), dense=_values(dense), sequences=_values(sequences),
        counters=_values(counters), tasks=_values(tasks), split=_parse_split(top),
    )


def _values(pairs: Sequence[tuple[str, T]]) -> tuple[T, ...]:
    return tuple(value for _, value in pairs)


def _parse_sources(top: _Map) -> dict[str, Source]:
    sources_ = top.sub("sources", SOURCE_NAMES, ("events",))
    out = {}
    for name in SOURCE_NAMES:
        if not sources_.has(name):
            continue
        keyed = name != "events"
        allowed = ("path", "format", "key") if keyed else ("path", "format")
        src = sources_.sub(name, allowed, ("path", "key") if keyed else ("path",))
        out[name] = Source(name, src.get("path", source_path), src.get("format", one_of(*FORMATS), "parquet"),
                           src.get("key", identifier) if keyed else None)
    return out


def _parse_binning(m: _Map, key: str, types_: Sequence[str], default: Mapping[str, Any] | None = None) -> BinningSpec:
    b = m.sub(key, ("type", "num_buckets"), ("type", "num_buckets"), default)
    return BinningSpec(b.get("type", one_of(*types_)), b.get("num_buckets", positive_int))


def _parse_source_ref(reader: _Reader, m: _Map, sources: Mapping[str, Source]) -> str:
    source = m.get("source", one_of(*SOURCE_NAMES), "events")
    if source not in sources:
        reader.fail(m.at("source"), f"unknown source {source!r}; declared sources: {', '.join(sources)}")
    return source


def _parse_side(reader: _Reader, m: _Map, name: str, source: str, keys: Mapping[str, str]) -> str:
    """A field's side: declared ``side``, else fixed by its source (users: user, items: candidate) or
    by being the user_key / item_key column; an events column that is neither must declare it.
    A declared side that contradicts the source or key is an error."""
    fixed, why = SOURCE_SIDES.get(source), f"source {source!r}"
    if name in keys and source == "events":
        fixed, why = keys[name], ("the user_key" if keys[name] == USER_SIDE else "the item_key")
    if not m.has("side"):
        if fixed is None:
            reader.fail(m.at("side"), f"{name!r} (source 'events') needs side: user or side: candidate "
                                          f"(user: one value per request, e.g. the device; candidate: one value "
                                          f"per candidate item, e.g. its position)")
        return fixed
    side = m.get("side", one_of(*SIDES))
    if fixed is not None and side != fixed:
        reader.fail(m.at("side"), f"{name!r} is {why}, so its side is {fixed!r}, got {side!r}")
    return side


def _parse_categorical(reader: _Reader, path: str, value: Any, sources: Mapping[str, Source],
                       keys: Mapping[str, str]) -> CategoricalField:
    m = reader.mapping(path, value, ("name", "source", "vocabulary", "hash_buckets", "embedding_dim", "side"),
                       ("name",))
    name = m.get("name", identifier)
    source = _parse_source_ref(reader, m, sources)
    if m.has("vocabulary") == m.has("hash_buckets"):
        reader.fail(path, f"expected exactly one of vocabulary / hash_buckets for {name!r}, "
                          f"got {'both' if m.has('vocabulary') else 'neither'}")
    vocabulary = None
    if m.has("vocabulary"):
        v = m.sub("vocabulary", ("min_count", "oov_buckets"))
        vocabulary = VocabularySpec(v.get("min_count", positive_int, 1), v.get("oov_buckets", positive_int, 1))
    return CategoricalField(name, source, vocabulary, m.get("hash_buckets", positive_int, None),
                            m.get("embedding_dim", positive_int, None), _parse_side(reader, m, name, source, keys))


def _parse_dense(reader: _Reader, path: str, value: Any, sources: Mapping[str, Source],
                 keys: Mapping[str, str]) -> DenseField:
    m = reader.mapping(path, value, ("name", "source", "binning", "side"), ("name", "binning"))
    name, source = m.get("name", identifier), _parse_source_ref(reader, m, sources)
    return DenseField(name, source, _parse_binning(m, "binning", BINNING_TYPES),
                      _parse_side(reader, m, name, source, keys))


def _parse_task(reader: _Reader, path: str, value: Any) -> TaskSpec:
    m = reader.mapping(path, value, ("name", "label", "weight"), ("name", "label"))
    return TaskSpec(m.get("name", identifier), m.get("label", identifier), m.get("weight", positive_number, 1.0))


def _parse_sequence(reader: _Reader, path: str, value: Any, cat_source: Mapping[str, str]) -> SequenceSpec:
    m = reader.mapping(path, value, ("name", "filter", "max_len", "item_field", "side_fields", "time_gap"),
                       ("name", "filter", "max_len", "item_field"))
    name = m.get("name", identifier)
    f = m.sub("filter", ("column", "equals"), ("column", "equals"))
    item_field = m.get("item_field", identifier)
    if item_field not in cat_source:
        reader.fail(m.at("item_field"), f"{item_field!r} is not a categorical field")
    side_fields = m.names("side_fields", identifier)
    for i, side in enumerate(side_fields):
        where = f"{m.at('side_fields')}[{i}]"
        if side not in cat_source:
            reader.fail(where, f"{side!r} is not a categorical field")
        if cat_source[side] != "items":
            reader.fail(where, f"{side!r} has source {cat_source[side]!r}; side fields must come from 'items'")
        if side == item_field:
            reader.fail(where, f"{side!r} is already the item_field")
    return SequenceSpec(name, f.get("column", identifier), f.get("equals", int_or_str), m.get("max_len", positive_int),
                        item_field, side_fields, _parse_binning(m, "time_gap", TIME_GAP_BINNING_TYPES,
                                                                DEFAULT_TIME_GAP_BINNING))


def _parse_counter(reader: _Reader, path: str, value: Any, keys: set[str], task_names: list[str]) -> CounterSpec:
    m = reader.mapping(path, value, ("key", "windows", "positives", "binning"), ("key", "windows"))
    key = m.get("key", identifier)
    if key not in keys:
        reader.fail(m.at("key"), f"{key!r} is not a categorical field, the user_key or the item_key")
    windows = m.names("windows", counter_window)
    if not windows:
        reader.fail(m.at("windows"), "expected a non-empty list, got []")
    positives = m.names("positives", identifier)
    for i, task in enumerate(positives):
        if task not in task_names:
            reader.fail(f"{m.at('positives')}[{i}]", f"unknown task {task!r}; tasks: {', '.join(task_names)}")
    return CounterSpec(key, windows, positives, _parse_binning(m, "binning", BINNING_TYPES, DEFAULT_COUNTER_BINNING))


def _parse_split(top: _Map) -> SplitSpec:
    reader = top.reader
    s = top.sub("split", ("valid_days", "test_days", "valid_start", "test_start", "partition", "timezone",
                          "min_time", "max_time_after_now"))
    by_days, by_cut = s.has("valid_days") or s.has("test_days"), s.has("valid_start") or s.has("test_start")
    if by_days == by_cut:
        reader.fail(s.path, "expected exactly one style: valid_days + test_days, or valid_start + test_start; "
                            f"got {'both' if by_days else 'neither'}")
    partition = s.get("partition", one_of(*PARTITIONS), "daily")
    timezone = s.get("timezone", timezone_name, DEFAULT_TIMEZONE)
    zone = tzinfo_of(timezone)

    def in_zone(value: Any) -> int:
        return utc_ms(value, zone)

    min_time = s.get("min_time", in_zone, DEFAULT_MIN_TIME_MS)
    max_after = s.get("max_time_after_now", duration, DEFAULT_MAX_TIME_AFTER_NOW)
    window = dict(timezone=timezone, min_time_ms=min_time, max_time_after_now=max_after)
    if by_days:
        return SplitSpec(s.get("valid_days", positive_int), s.get("test_days", positive_int), None, None, partition,
                         **window)
    valid_start, test_start = s.get("valid_start", in_zone), s.get("test_start", in_zone)
    if valid_start >= test_start:
        reader.fail(s.at("valid_start"), f"expected a time before test_start ({_ms_to_iso(test_start)}), "
                                         f"got {_ms_to_iso(valid_start)}")
    if valid_start < min_time:
        reader.fail(s.at("valid_start"), f"expected a time at or after min_time ({_ms_to_iso(min_time)}), "
                                         f"got {_ms_to_iso(valid_start)}")
    return SplitSpec(None, None, valid_start, test_start, partition, **window)


# -- cross-field checks --------------------------------------------------------------------------
def _check_unique(reader: _Reader, named: Iterable[tuple[str, str]], what: str) -> None:
    """Fail at the second of two equal names; ``named`` is (path, name) pairs."""
    seen: dict[str, str] = {}
    for path, name in named:
        if name in seen:
            reader.fail(path, f"duplicate {what} {name!r} (first at {seen[name]})")
        seen[name] = path


def _check_labels(reader: _Reader, inputs: Mapping[str, str], tasks: Sequence[tuple[str, TaskSpec]]) -> None:
    """No task label may also be an input column; ``inputs`` maps column -> where it is declared."""
    for path, task in tasks:
        if task.label in inputs:
            reader.fail(_join(path, "label"), f"label column {task.label!r} is also an input "
                                              f"({inputs[task.label]}); a label must not be a feature")


# ---------------------------------------------------------------------------------------------
# Loading files
# ---------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a mapping with the same key twice (PyYAML keeps the last silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _read_text(path: str) -> str:
    """A file's text: plain ``open`` for local paths, ``tf.io.gfile`` for URIs (TensorFlow loaded lazily)."""
    if not _URI_RE.match(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    import infnet_tf.env  # noqa: F401  (Keras 2 selection before TensorFlow loads)
    import tensorflow as tf

    try:
        import tensorflow_io  # noqa: F401  (registers s3:// and hdfs:// file systems)
    except ImportError:
        pass
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    except tf.errors.OpError as exc:
        raise OSError(f"cannot read {path}: {exc.message}") from exc


def parse_spec_text(text: str, source_name: str = "<string>") -> FeatureSpec:
    """Parse YAML text into a :class:`FeatureSpec`; YAML syntax errors become SpecError too."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{source_name}: invalid YAML: {exc}") from None
    return parse_spec(data, source_name)


def load_spec(path: str) -> FeatureSpec:
    """Read and check the spec at ``path`` (local path, or an ``s3://``/``gs://``/``hdfs://`` URI).

    Raises :class:`SpecError` for an invalid spec and OSError when the file cannot be read.
    """
    path = str(path)
    return parse_spec_text(_read_text(path), path)


def check_files(paths: Iterable[str]) -> int:
    """Check each spec file: print ``<path>: OK <summary>`` per valid one, each error to stderr.
    Returns 0, or 2 if any file is invalid or unreadable (every file is checked)."""
    status = 0
    for path in paths:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = 2
        except OSError as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            status = 2
        else:
            print(f"{path}: OK {spec.summary()}")
    return status
