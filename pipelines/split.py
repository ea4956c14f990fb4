"""The time split (train < valid < test) and the time partitions of the output.

* Cut-time style (``valid_start`` / ``test_start`` in the spec): train is ``t < valid_start``,
  valid ``valid_start <= t < test_start``, test ``t >= test_start``.
* Last-days style (``valid_days`` / ``test_days``): days are calendar days in the split's
  ``timezone`` (default UTC). The last day is the day of the latest *usable* event time (rejected
  rows do not count); test is the last ``test_days`` days, valid the ``valid_days`` days before
  them, train everything earlier.

Partitions are ``dt=YYYY-MM-DD`` (daily) or ``dt=YYYY-MM-DD/hr=HH`` (hourly), days and hours in the
split's ``timezone`` (an IANA name or a fixed offset such as ``+08:00``; default UTC). Cut times at
that zone's midnights therefore never put one ``dt=`` into two splits. (In a zone with daylight
saving time an hourly partition of the repeated autumn hour holds both of its UTC hours.)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np

from infnet_tf.data.dataset_dir import SPLITS, partition_key

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TRAIN, VALID, TEST = 0, 1, 2
UNASSIGNED = "unassigned"  # rows whose time is unusable (they are all rejects)


@dataclasses.dataclass(frozen=True)
class Cuts:
    """Where valid and test start (epoch ms) and how partitions are cut."""

    valid_start_ms: int
    test_start_ms: int
    partition: str  # daily | hourly
    timezone: str = "UTC"  # partition days / hours are in this zone

    def assign(self, time_ms: np.ndarray) -> np.ndarray:
        """Split index per row: 0 train, 1 valid, 2 test."""
        t = np.asarray(time_ms, dtype=np.int64)
        return ((t >= self.valid_start_ms).astype(np.int8) + (t >= self.test_start_ms).astype(np.int8))

    def to_dict(self) -> dict[str, Any]:
        return {"valid_start_ms": self.valid_start_ms, "test_start_ms": self.test_start_ms,
                "valid_start": iso(self.valid_start_ms), "test_start": iso(self.test_start_ms),
                "partition": self.partition, "timezone": self.timezone}

    @classmethod
    def from_dict(cls, d: dict) -> "Cuts":
        return cls(int(d["valid_start_ms"]), int(d["test_start_ms"]), d["partition"], d.get("timezone", "UTC"))


class NoUsableRows(ValueError):
    """Every event row was rejected: there is nothing to split."""


def _tzinfo(name: str) -> dt.tzinfo:
    from infnet_tf.feature_spec import tzinfo_of

    return tzinfo_of(name)


def local_midnight_ms(day: dt.date, timezone: str) -> int:
    """Epoch ms of ``day``'s midnight in ``timezone``."""
    when = dt.datetime(day.year, day.month, day.day, tzinfo=_tzinfo(timezone))
    return int(when.timestamp() * 1000)


def compute_cuts(split: Any, max_time_ms: int | None) -> Cuts:
    """Cuts from the spec's split and the latest usable event time (needed for last-days style)."""
    timezone = getattr(split, "timezone", "UTC")
    if not split.by_days:
        return Cuts(int(split.valid_start_ms), int(split.test_start_ms), split.partition, timezone)
    if max_time_ms is None:
        raise NoUsableRows("no usable event rows (every row was rejected: check the spec's time column, unit and "
                           "split window); cannot place the last-days time split; nothing to build")
    last_day = dt.datetime.fromtimestamp(int(max_time_ms) / 1000, tz=_tzinfo(timezone)).date()
    test_start = local_midnight_ms(last_day - dt.timedelta(days=split.test_days - 1), timezone)
    valid_start = local_midnight_ms(last_day - dt.timedelta(days=split.test_days - 1 + split.valid_days), timezone)
    return Cuts(valid_start, test_start, split.partition, timezone)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def local_ms(time_ms: np.ndarray, timezone: str = "UTC") -> np.ndarray:
    """Epoch ms shifted to wall-clock time in ``timezone`` (per row: DST-aware for IANA zones)."""
    t = np.asarray(time_ms, dtype=np.int64)
    if timezone in ("UTC", "Z", "+00:00") or t.size == 0:
        return t
    import pyarrow as pa
    import pyarrow.compute as pc

    local = pc.local_timestamp(pa.array(t, type=pa.timestamp("ms", tz=timezone)))
    return pc.cast(local, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)


def partition_ids(time_ms: np.ndarray, partition: str, timezone: str = "UTC") -> np.ndarray:
    """Integer partition id per row: the local day (daily) or hour (hourly) in ``timezone``."""
    size = DAY_MS if partition == "daily" else HOUR_MS
    return local_ms(time_ms, timezone) // size


def partition_name(pid: int, partition: str) -> str:
    """``dt=YYYY-MM-DD`` or ``dt=YYYY-MM-DD/hr=HH`` for a partition id (already local)."""
    size = DAY_MS if partition == "daily" else HOUR_MS
    when = dt.datetime.fromtimestamp(int(pid) * size / 1000, tz=dt.timezone.utc)
    return partition_key(when, hourly=partition != "daily")


def day_name(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(int(time_ms) // DAY_MS * DAY_MS / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def split_counts(time_ms: np.ndarray, usable: np.ndarray, cuts: Cuts) -> dict[str, int]:
    """Rows per split (unusable times under ``unassigned``)."""
    out = {name: 0 for name in (*SPLITS, UNASSIGNED)}
    usable = np.asarray(usable, dtype=bool)
    if (~usable).any():
        out[UNASSIGNED] = int((~usable).sum())
    if usable.any():
        counts = np.bincount(cuts.assign(np.asarray(time_ms)[usable]), minlength=3)
        for i, name in enumerate(SPLITS):
            out[name] = int(counts[i])
    return out
