"""What the report states about where and how it ran: hardware, versions, git commit, command.

Everything is read from the machine and the installed distributions at run time — nothing in the
report is typed by hand.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Any

# distribution name -> label in the report
PACKAGES = (
    ("tensorflow", "tensorflow"),
    ("tf-keras", "tf_keras"),
    ("tensorflow-recommenders", "tensorflow_recommenders"),
    ("tensorflow-io", "tensorflow_io"),
    ("apache-beam", "apache_beam"),
    ("numpy", "numpy"),
    ("lightgbm", "lightgbm"),
    ("scipy", "scipy"),
    ("matplotlib", "matplotlib"),
    ("pyarrow", "pyarrow"),
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    import tensorflow as tf

    out = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            name = tf.config.experimental.get_device_details(device).get("device_name", device.name)
        except Exception:  # noqa: BLE001
            name = device.name
        out.append(name)
    return out


def hardware() -> dict[str, Any]:
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": _cpu_model(), "cpu_cores": cores, "usable_cores": usable, "memory_gib": _memory_gib(),
            "gpus": _gpus(), "platform": platform.platform(), "load_average_at_start": load}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist, label in PACKAGES:
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[label] = "not installed"
    return out


def git_state(root: str) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def command_line(argv: list[str]) -> str:
    """The exact command as it can be re-run from the repository root."""
    return " ".join(["python", "-m", "bench.report", *(shlex.quote(a) for a in argv)])


def interpreter() -> str:
    return sys.executable
