"""Raw columns: what each source must provide, type checks (fail fast), row checks (rejects), joins.

Every raw column has one or more *roles* from the feature spec, and each role accepts some Arrow
types (CSV columns are read as strings and parsed here, so a bad value becomes a reject rather
than a failed read):

=========== ======================================== ========================================
role        accepted column types                    becomes (canonical batch)
=========== ======================================== ========================================
time        integer, float, timestamp                ``__time_ms`` int64 epoch ms (UTC)
key         integer, string                          the key column as is (int64 or string)
label       integer, bool, float                     ``__label/<task>`` int64 0/1, -1 if null
filter      integer/bool/float (int ``equals``),     ``__in/<seq>`` bool
            any (string ``equals``, compared as str)
categorical integer, string, bool, float             int64 or string (bool -> 0/1; an integral
                                                     float 3.0 -> 3, the same id as the integer)
dense       integer, float, bool                     float64, NaN for null
=========== ======================================== ========================================

A column that is missing, or has a type its role does not accept, raises :class:`SchemaError`
naming the source and column, before any data is processed.

Row checks on events (the first failing check is the row's reject reason): ``malformed_row`` (CSV
line with the wrong number of fields), ``missing_time``, ``unparseable_time``,
``time_out_of_range`` (before 1970 or from 2200 on), ``time_outside_window`` (a valid time outside
the spec's plausible window: before ``split.min_time`` or after the job's start +
``split.max_time_after_now``), ``missing_user_key``, ``missing_item_key`` (null or blank),
``unparseable_label``, ``bad_label`` (not 0/1; a null or NaN label is kept as -1),
``unparseable_value`` (a number column that does not parse), ``non_finite_value`` (+-inf in a
dense column), ``non_integral_category`` (a float value such as 2.5 in a categorical column;
integral floats such as 3.0 are accepted as 3). NaN/null dense values are kept (bucket 0).

Users and items tables are joined to events on their key (a broadcast join: they are small next
to the log). In those tables a row with a null key cannot be joined and is dropped, and an
unparseable or infinite number (or a non-integral float in a categorical column) becomes null;
both are counted (``dimension_issues``) and logged. A key that appears twice fails the job (the
join would be ambiguous). Events whose key is not in the table are kept (the joined columns are
null) and counted per table (``missing_join``).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infnet_tf.data.keys import MISSING_LABEL

TIME = "__time_ms"
MIN_TIME_MS = 0
MAX_TIME_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
_NUMBER_RE = r"(?i)^\s*[-+]?((\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?|inf|infinity|nan)\s*$"

# reject reasons, in the order they are checked
MALFORMED_ROW = "malformed_row"
MISSING_TIME = "missing_time"
UNPARSEABLE_TIME = "unparseable_time"
TIME_OUT_OF_RANGE = "time_out_of_range"
TIME_OUTSIDE_WINDOW = "time_outside_window"
MISSING_USER_KEY = "missing_user_key"
MISSING_ITEM_KEY = "missing_item_key"
UNPARSEABLE_LABEL = "unparseable_label"
BAD_LABEL = "bad_label"
UNPARSEABLE_VALUE = "unparseable_value"
NON_FINITE_VALUE = "non_finite_value"
NON_INTEGRAL_CATEGORY = "non_integral_category"
REASONS = (MALFORMED_ROW, MISSING_TIME, UNPARSEABLE_TIME, TIME_OUT_OF_RANGE, TIME_OUTSIDE_WINDOW, MISSING_USER_KEY,
           MISSING_ITEM_KEY, UNPARSEABLE_LABEL, BAD_LABEL, UNPARSEABLE_VALUE, NON_FINITE_VALUE,
           NON_INTEGRAL_CATEGORY)


def label_column(task: str) -> str:
    return f"__label/{task}"


def filter_column(seq: str) -> str:
    return f"__in/{seq}"


class SchemaError(ValueError):
    """A raw column is missing or has a type its role does not accept."""


class InputError(SchemaError):
    """The input cannot be built (empty, unreadable, ambiguous join, wrong time unit...): exit 2."""


# ---------------------------------------------------------------------------------------------
# Column plan: which columns each source provides and their roles
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ColumnPlan:
    """Roles of the raw columns of every source, derived from a feature spec."""

    roles: Mapping[str, Mapping[str, frozenset]]  # source -> column -> roles
    time_unit_factor: float
    time_column: str
    time_unit: str
    user_key: str
    item_key: str
    labels: tuple[tuple[str, str], ...]  # (task, column)
    filters: tuple[tuple[str, str, Any], ...]  # (sequence, column, equals)
    categorical: tuple[tuple[str, str], ...]  # (name, source)
    dense: tuple[tuple[str, str], ...]  # (name, source)
    dim_keys: Mapping[str, str]  # users/items -> join key column in that table
    min_time_ms: int = MIN_TIME_MS  # the plausible time window [min, max): outside -> time_outside_window
    max_time_ms: int = MAX_TIME_MS

    @classmethod
    def from_spec(cls, spec: Any, now_ms: int | None = None) -> "ColumnPlan":
        """The plan of ``spec``; ``now_ms`` (default: the wall clock) anchors the time window's end."""
        roles: dict[str, dict[str, set]] = {name: {} for name in spec.sources}

        def add(source: str, column: str, role: str) -> None:
            roles[source].setdefault(column, set()).add(role)

        add("events", spec.time.column, "time")
        add("events", spec.user_key, "key")
        add("events", spec.item_key, "key")
        for t in spec.tasks:
            add("events", t.label, "label")
        for s in spec.sequences:
            add("events", s.filter_column, "filter_int" if isinstance(s.filter_equals, int) else "filter_str")
        for f in spec.categorical:
            add(f.source, f.name, "categorical")
        for f in spec.dense:
            add(f.source, f.name, "dense")
        dim_keys = {}
        for name, src in spec.sources.items():
            if name != "events":
                add(name, src.key, "key")
                dim_keys[name] = src.key
        return cls(
            roles={s: {c: frozenset(r) for c, r in cols.items()} for s, cols in roles.items()},
            time_unit_factor=spec.time.to_ms_factor, time_column=spec.time.column, time_unit=spec.time.unit,
            user_key=spec.user_key, item_key=spec.item_key,
            labels=tuple((t.name, t.label) for t in spec.tasks),
            filters=tuple((s.name, s.filter_column, s.filter_equals) for s in spec.sequences),
            categorical=tuple((f.name, f.source) for f in spec.categorical),
            dense=tuple((f.name, f.source) for f in spec.dense),
            dim_keys=dim_keys,
            **time_window(spec, now_ms),
        )

    def columns(self, source: str) -> list[str]:
        return sorted(self.roles.get(source, {}))

    def dim_columns(self, source: str) -> list[str]:
        """Columns a dimension table contributes to the joined batch (its key excluded)."""
        return [c for c in self.columns(source) if c != self.dim_keys[source]]


def time_window(spec: Any, now_ms: int | None = None) -> dict[str, int]:
    """``{"min_time_ms", "max_time_ms"}`` of the spec's plausible window, anchored at ``now_ms``."""
    import time as _time

    split = spec.split
    now = int(_time.time() * 1000) if now_ms is None else int(now_ms)
    low = max(MIN_TIME_MS, int(getattr(split, "min_time_ms", MIN_TIME_MS)))
    after = getattr(split, "max_time_after_now_ms", None)
    high = MAX_TIME_MS if after is None else min(MAX_TIME_MS, now + int(after))
    return {"min_time_ms": low, "max_time_ms": max(high, low + 1)}


_ACCEPTS = {
    "time": ("integer", "float", "timestamp"),
    "key": ("integer", "string"),
    "label": ("integer", "bool", "float"),
    "filter_int": ("integer", "bool", "float"),
    "filter_str": ("integer", "string", "bool"),
    "categorical": ("integer", "string", "bool", "float"),
    "dense": ("integer", "float", "bool"),
}


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def check_schema(plan: ColumnPlan, source: str, schema: pa.Schema, where: str, from_csv: bool = False) -> None:
    """Fail fast: every column the plan needs exists with an accepted type (CSV: strings are fine)."""
    names = set(schema.names)
    for column, roles in sorted(plan.roles[source].items()):
        if column not in names:
            raise SchemaError(f"{source} ({where}): column {column!r} is missing "
                              f"(needed as {', '.join(sorted(roles))}); columns present: {', '.join(schema.names)}")
        kind = _kind(schema.field(column).type)
        if kind == "null" or (from_csv and kind == "string"):
            continue
        for role in sorted(roles):
            if kind not in _ACCEPTS[role]:
                raise SchemaError(f"{source} ({where}): column {column!r} has type {schema.field(column).type}, "
                                  f"but as {role.split('_')[0]} it must be one of: {', '.join(_ACCEPTS[role])}")


# ---------------------------------------------------------------------------------------------
# Vectorised parsing helpers
# ---------------------------------------------------------------------------------------------
def _plain(arr: Any) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def parse_numbers(arr: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, is_null, is_unparseable) of any numeric/string column; NaN counts as null."""
    arr = _plain(arr)
    is_null = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type):
        ok = pc.fill_null(pc.match_substring_regex(arr, _NUMBER_RE), True).to_numpy(zero_copy_only=False)
        bad = ~ok
        clean = pc.if_else(pa.array(ok), pc.utf8_trim_whitespace(arr), pa.scalar(None, pa.string()))
        values = pc.cast(clean, pa.float64()).to_numpy(zero_copy_only=False)
        return values, is_null | (np.isnan(values) & ~bad), bad
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), is_null, np.zeros(len(arr), bool)
    values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    return values, is_null | np.isnan(values), np.zeros(len(arr), bool)


def parse_time_ms(arr: Any, unit: str, factor: float,
                  window: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int64 epoch ms, reason code per row: 0 ok, else index into REASONS).

    ``window`` = (min_ms, max_ms): valid times outside it get ``time_outside_window``."""
    arr = _plain(arr)
    n = len(arr)
    code = np.zeros(n, dtype=np.int8)
    if pa.types.is_timestamp(arr.type):
        null = arr.is_null().to_numpy(zero_copy_only=False)
        ms = pc.cast(pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False), pa.int64())
        t = pc.fill_null(ms, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        code[null] = REASONS.index(MISSING_TIME)
    elif pa.types.is_integer(arr.type):
        null = arr.is_null().to_numpy(zero_copy_only=False)
        raw = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        if unit == "us":
            t = raw // 1000
        else:
            # seconds: check the range before multiplying so nothing overflows int64
            limit = np.int64(MAX_TIME_MS // int(factor) + 1)
            t = np.where(np.abs(raw) <= limit, raw, limit) * np.int64(int(factor))
        code[null] = REASONS.index(MISSING_TIME)
    else:
        values, null, bad = parse_numbers(arr)
        null = null | (np.isnan(values) & ~bad)
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = values * factor
            finite = np.isfinite(scaled) & (np.abs(scaled) < 2.0**62)
            t = np.where(finite, np.floor(np.where(finite, scaled, 0.0)), 0).astype(np.int64)
        code[null] = REASONS.index(MISSING_TIME)
        code[bad & (code == 0)] = REASONS.index(UNPARSEABLE_TIME)
        code[~finite & (code == 0)] = REASONS.index(TIME_OUT_OF_RANGE)
    out_of_range = (t < MIN_TIME_MS) | (t >= MAX_TIME_MS)
    code[out_of_range & (code == 0)] = REASONS.index(TIME_OUT_OF_RANGE)
    if window is not None:
        outside = (t < int(window[0])) | (t >= int(window[1]))
        code[outside & (code == 0)] = REASONS.index(TIME_OUTSIDE_WINDOW)
    t[code != 0] = 0
    return t, code


def _key_missing(arr: pa.Array) -> np.ndarray:
    arr = _plain(arr)
    missing = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type):
        blank = pc.equal(pc.utf8_trim_whitespace(arr), "")
        missing |= pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
    return missing


def non_integral(arr: Any) -> np.ndarray:
    """Per row: a float value that is not an integer (2.5, inf); null/NaN are not flagged."""
    arr = _plain(arr)
    if not (pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)):
        return np.zeros(len(arr), dtype=bool)
    values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ((~np.isfinite(values)) | (np.floor(values) != values) | (np.abs(values) >= 2.0**63))
    return bad


def _categorical(arr: Any) -> pa.Array:
    arr = _plain(arr)
    if pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        # integer codes stored as float (nulls in Parquet): 3.0 -> 3; NaN and non-integral -> null
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        bad = np.isnan(values) | non_integral(arr)
        ints = np.where(bad, 0, np.nan_to_num(values)).astype(np.int64)
        return pa.array(ints, type=pa.int64(), mask=bad)
    if pa.types.is_boolean(arr.type):
        return pc.cast(arr, pa.int64())
    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.int64())
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return arr


def _key(arr: Any) -> pa.Array:
    arr = _plain(arr)
    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.int64())
    if pa.types.is_string(arr.type):
        return pc.utf8_trim_whitespace(arr)
    return arr


# ---------------------------------------------------------------------------------------------
# Events: checked, canonical batch + rejects
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Checked:
    """The outcome of checking one events batch."""

    good: pa.Table               # canonical columns (see module docstring), only good rows
    rejects: list[dict]          # one JSON-able record per rejected row
    reject_times: np.ndarray     # int64 time of each reject (-1 when its time is unusable)


def check_events(table: pa.Table, plan: ColumnPlan) -> Checked:
    """Split a raw events batch into canonical good rows and reject records (vectorised)."""
    check_schema(plan, "events", table.schema, "batch", from_csv=_all_strings(table, plan))
    n = table.num_rows
    code = np.zeros(n, dtype=np.int8)
    bad_column = np.full(n, "", dtype=object)

    def fail(mask: np.ndarray, reason: str, column: str) -> None:
        new = mask & (code == 0)
        code[new] = REASONS.index(reason)
        bad_column[new] = column

    time_ms, time_code = parse_time_ms(table[plan.time_column], plan.time_unit, plan.time_unit_factor,
                                       (plan.min_time_ms, plan.max_time_ms))
    fresh = (time_code != 0) & (code == 0)
    code[fresh] = time_code[fresh]
    bad_column[fresh] = plan.time_column
    fail(_key_missing(table[plan.user_key]), MISSING_USER_KEY, plan.user_key)
    fail(_key_missing(table[plan.item_key]), MISSING_ITEM_KEY, plan.item_key)

    parsed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for task, column in plan.labels:
        values, null, unparseable = parse_numbers(table[column])
        fail(unparseable, UNPARSEABLE_LABEL, column)
        fail(~null & ~unparseable & ~np.isin(values, (0.0, 1.0)), BAD_LABEL, column)
        parsed[column] = (values, null)
    for _, column, equals in plan.filters:
        if isinstance(equals, int) and column not in parsed:
            values, null, unparseable = parse_numbers(table[column])
            fail(unparseable, UNPARSEABLE_VALUE, column)
            parsed[column] = (values, null)
    dense_values = {}
    for name, source in plan.dense:
        if source == "events":
            values, null, unparseable = parse_numbers(table[name])
            fail(unparseable, UNPARSEABLE_VALUE, name)
            fail(np.isinf(values), NON_FINITE_VALUE, name)
            dense_values[name] = values
    for name, source in plan.categorical:
        if source == "events":
            fail(non_integral(table[name]), NON_INTEGRAL_CATEGORY, name)

    good = code == 0
    rejects, reject_times = _reject_records(table, code, bad_column, time_ms, time_code)
    keep = pa.array(good)
    columns: dict[str, Any] = {TIME: time_ms[good]}
    columns[plan.user_key] = _key(table[plan.user_key]).filter(keep)
    columns[plan.item_key] = _key(table[plan.item_key]).filter(keep)
    for task, column in plan.labels:
        values, null = parsed[column]
        columns[label_column(task)] = np.where(null, MISSING_LABEL, np.nan_to_num(values)).astype(np.int64)[good]
    for seq, column, equals in plan.filters:
        if isinstance(equals, int):
            values, _ = parsed[column]
            flag = values == float(equals)
        else:
            flag = pc.fill_null(pc.equal(_categorical_strings(table[column]), str(equals)), False).to_numpy(
                zero_copy_only=False)
        columns[filter_column(seq)] = np.asarray(flag, dtype=bool)[good]
    for name, source in plan.categorical:
        if source == "events" and name not in columns:
            columns[name] = _categorical(table[name]).filter(keep)
    for name, values in dense_values.items():
        columns[name] = values[good]
    return Checked(good=pa.table(columns), rejects=rejects, reject_times=reject_times)


def _categorical_strings(arr: Any) -> pa.Array:
    arr = _categorical(arr)
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def _all_strings(table: pa.Table, plan: ColumnPlan) -> bool:
    """True for CSV-shaped batches (every planned column is a string or all-null column)."""
    return all(_kind(table.schema.field(c).type) in ("string", "null")
               for c in plan.columns("events") if c in table.schema.names)


def _reject_records(table: pa.Table, code: np.ndarray, bad_column: np.ndarray, time_ms: np.ndarray,
                    time_code: np.ndarray) -> tuple[list[dict], np.ndarray]:
    idx = np.flatnonzero(code != 0)
    if idx.size == 0:
        return [], np.zeros(0, dtype=np.int64)
    rows = table.take(pa.array(idx)).to_pylist()
    records = []
    for i, row in zip(idx, rows):
        column = bad_column[i]
        records.append({"source": "events", "reason": REASONS[code[i]], "column": column,
                        "value": _jsonable(row.get(column)), "row": {k: _jsonable(v) for k, v in row.items()}})
    times = np.where(time_code[idx] == 0, time_ms[idx], -1).astype(np.int64)
    return records, times


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    return str(value)


def malformed_record(text: str, detail: str) -> dict:
    """The reject record of a CSV line that could not be split into the header's fields."""
    return {"source": "events", "reason": MALFORMED_ROW, "column": "", "value": text, "row": {"_line": text},
            "detail": detail}


def reject_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------
# Users / items: canonical dimension tables and the broadcast join
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Dimension:
    """A canonical users/items table: key column + the columns it contributes, plus issue counts."""

    source: str
    key: str
    table: pa.Table
    issues: dict[str, int]


def canonical_dimension(source: str, table: pa.Table, plan: ColumnPlan) -> Dimension:
    """Check and canonicalise a users/items table (all its batches concatenated)."""
    key = plan.dim_keys[source]
    check_schema(plan, source, table.schema, "table", from_csv=all(
        _kind(table.schema.field(c).type) in ("string", "null") for c in plan.columns(source)))
    issues: dict[str, int] = {}
    missing = _key_missing(table[key])
    if missing.any():
        issues[f"{source}.{key}:null_key_dropped"] = int(missing.sum())
        table = table.filter(pa.array(~missing))
    columns: dict[str, Any] = {key: _key(table[key])}
    dense = {name for name, src in plan.dense if src == source}
    for column in plan.dim_columns(source):
        if column in dense:
            values, _, unparseable = parse_numbers(table[column])
            broken = unparseable | np.isinf(values)
            if broken.any():
                issues[f"{source}.{column}:bad_value_nulled"] = int(broken.sum())
                values = np.where(broken, np.nan, values)
            columns[column] = values
        else:
            broken = non_integral(table[column])
            if broken.any():
                issues[f"{source}.{column}:bad_value_nulled"] = int(broken.sum())
            columns[column] = _categorical(table[column])
    out = pa.table(columns)
    counts = pc.value_counts(out[key])
    dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(dup):
        shown = ", ".join(repr(v) for v in dup.field("values").to_pylist()[:5])
        raise SchemaError(f"{source}: key column {key!r} has duplicate values ({len(dup)} keys, e.g. {shown}); "
                          f"the join to events would be ambiguous")
    return Dimension(source=source, key=key, table=out, issues=issues)


def empty_dimension(source: str, plan: ColumnPlan) -> Dimension:
    columns = {plan.dim_keys[source]: pa.array([], pa.int64())}
    dense = {name for name, src in plan.dense if src == source}
    for c in plan.dim_columns(source):
        columns[c] = pa.array([], pa.float64() if c in dense else pa.string())
    return Dimension(source, plan.dim_keys[source], pa.table(columns), {})


def join_dimension(events: pa.Table, dim: Dimension, event_key: str,
                   missing: dict[str, int] | None = None) -> pa.Table:
    """Left join: append ``dim``'s columns to ``events`` by ``event_key`` (nulls where unmatched).

    ``missing[dim.source]`` is increased by the number of events whose key is not in ``dim``."""
    left, right = events[event_key], dim.table[dim.key]
    if left.type != right.type:  # int vs string keys: match in string form
        left, right = _as_string(left), _as_string(right)
    index = pc.index_in(left, value_set=right)
    if missing is not None:
        missing[dim.source] = missing.get(dim.source, 0) + int(index.null_count)
    joined = dim.table.drop_columns([dim.key]).take(index)
    for name in joined.column_names:
        if name in events.column_names:
            continue
        column = joined[name]
        if pa.types.is_floating(column.type):
            column = pa.array(pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False))
        events = events.append_column(name, column)
    return events


def _as_string(arr: Any) -> pa.Array:
    arr = _plain(arr)
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def join_all(events: pa.Table, dims: Iterable[Dimension], plan: ColumnPlan,
             missing: dict[str, int] | None = None) -> pa.Table:
    """Events with every dimension joined: users on the user key, items on the item key.

    ``missing`` (optional) counts, per table, the events whose key that table lacks."""
    for dim in dims:
        key = plan.user_key if dim.source == "users" else plan.item_key
        events = join_dimension(events, dim, key, missing)
    return events
