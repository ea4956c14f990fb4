"""A local tf.distribute cluster: one process per role, each with its own ``TF_CONFIG``.

``python -m infnet_tf.cluster`` (the entry module) builds a :class:`LocalCluster` and runs it:

* ``multi_worker_mirrored``: ``workers`` processes ``worker0..N-1`` (worker 0 is the chief: it
  writes checkpoints, TensorBoard and metrics.json), each running
  ``python -m infnet_tf.train --strategy=multi_worker <train flags>``.
* ``parameter_server``: a ``chief`` (the coordinator, which runs the training loop), ``workers``
  worker tasks and ``ps`` parameter-server tasks, each running
  ``python -m infnet_tf.train --strategy=parameter_server <train flags>`` (worker and ps tasks only
  serve: see :func:`infnet_tf.training.distribution.serve_if_server_task`).

Every role listens on a free port of 127.0.0.1. Each process runs in its own session (process
group) and, on Linux, dies with the launcher (``PR_SET_PDEATHSIG``). Their output is streamed line by
line with a ``[role]`` prefix. The cluster is torn down (SIGTERM to each process group, SIGKILL
after a grace period) when the job ends, when any role exits with a non-zero status, or on
SIGINT/SIGTERM to the launcher. The last line printed is the summary::

    CLUSTER strategy=<s> workers=<n> ps=<n> sharded_tables=<n> steps=<n>

(``steps``: the chief's last reported global step; ``sharded_tables``: embedding tables the chief
reported as partitioned over the PS tasks).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence, TextIO

CLUSTER_STRATEGIES = ("multi_worker_mirrored", "parameter_server")
TRAIN_STRATEGY = {"multi_worker_mirrored": "multi_worker", "parameter_server": "parameter_server"}
HOST = "127.0.0.1"
GRACE_S = 5.0
_STEP = re.compile(r"global step (\d+)")
_SHARDED = re.compile(r"(\d+) embedding table\(s\) sharded")


@dataclasses.dataclass(frozen=True)
class Role:
    task_type: str   # chief | worker | ps
    index: int

    @property
    def name(self) -> str:
        return f"{self.task_type}{self.index}"


def plan_roles(strategy: str, workers: int, ps: int) -> list[Role]:
    """The roles of a local cluster; ValueError naming the flag when the counts do not fit."""
    if strategy not in CLUSTER_STRATEGIES:
        raise ValueError(f"--strategy: expected one of {'|'.join(CLUSTER_STRATEGIES)}, got {strategy!r}")
    if workers < 1:
        raise ValueError(f"--workers: expected at least 1, got {workers}")
    if strategy == "multi_worker_mirrored":
        if ps:
            raise ValueError(f"--ps: multi_worker_mirrored has no parameter servers, got --ps={ps}")
        return [Role("worker", i) for i in range(workers)]
    if ps < 1:
        raise ValueError(f"--ps: parameter_server needs at least 1 PS task, got {ps}")
    return [Role("chief", 0)] + [Role("worker", i) for i in range(workers)] + [Role("ps", i) for i in range(ps)]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all sockets held until every port is chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def cluster_spec(roles: Sequence[Role], ports: Sequence[int]) -> dict[str, list[str]]:
    """``{"chief": [...], "worker": [...], "ps": [...]}`` of ``host:port`` addresses, in role order."""
    spec: dict[str, list[str]] = {}
    for role, port in zip(roles, ports):
        spec.setdefault(role.task_type, []).append(f"{HOST}:{port}")
    return spec


def tf_config(spec: dict, role: Role) -> str:
    """The ``TF_CONFIG`` value of one role."""
    return json.dumps({"cluster": spec, "task": {"type": role.task_type, "index": role.index}})


def _libc_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the launcher's teardown still stops the groups
        return None


_PRCTL = _libc_prctl()   # looked up here, not between fork and exec


def _die_with_parent() -> None:  # runs in the child between fork and exec: no imports, no locks
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the role dies if the launcher is killed


class LocalCluster:
    """Start, watch and stop the processes of one local cluster (see the module docstring)."""

    def __init__(self, strategy: str, workers: int, ps: int, train_args: Sequence[str], *,
                 python: str = sys.executable, out: TextIO | None = None, env: dict | None = None,
                 module: str = "infnet_tf.train"):
        self.strategy, self.workers, self.ps = strategy, workers, ps
        self.roles = plan_roles(strategy, workers, ps)
        self.train_args = [a for a in train_args if not a.startswith("--strategy=")]
        self.python, self.module = python, module
        self.out = out or sys.stdout
        self.env = dict(os.environ if env is None else env)
        self.procs: dict[str, subprocess.Popen] = {}
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.chief = self.roles[0].name          # chief (PS) or worker0 (MWMS, the chief worker)
        self.steps = 0
        self.sharded_tables = 0

    def say(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def _pump(self, name: str, stream) -> None:
        for line in iter(stream.readline, ""):
            line = line.rstrip("\n")
            if name == self.chief:
                if m := _STEP.search(line):
                    self.steps = int(m.group(1))
                if m := _SHARDED.search(line):
                    self.sharded_tables = int(m.group(1))
            self.say(f"[{name}] {line}")
        stream.close()

    def start(self) -> None:
        spec = cluster_spec(self.roles, free_ports(len(self.roles)))
        command = [self.python, "-u", "-m", self.module, f"--strategy={TRAIN_STRATEGY[self.strategy]}",
                   *self.train_args]
        for role in self.roles:
            env = dict(self.env, TF_CONFIG=tf_config(spec, role), PYTHONUNBUFFERED="1")
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                    start_new_session=True, preexec_fn=_die_with_parent)
            self.procs[role.name] = proc
            self.say(f"cluster: started {role.name} pid {proc.pid} at {spec[role.task_type][role.index]}")
            pump = threading.Thread(target=self._pump, args=(role.name, proc.stdout), daemon=True)
            pump.start()
            self._pumps.append(pump)

    def wait(self, poll_s: float = 0.2) -> int:
        """Block until the job ends (0) or a role fails (its status); the job ends when every worker
        has exited 0 (multi_worker_mirrored) or the chief has (parameter_server).

        Under parameter_server a worker that dies is tolerated (the coordinator reschedules its
        steps on the others) as long as one worker is left; any other role failing stops the cluster.
        When several roles have failed by the same poll, a role killed by a signal is reported first: the
        others usually failed because of it (a collective op aborted by the dead peer)."""
        lost: set[str] = set()
        while True:
            failed = []
            for name, proc in self.procs.items():
                status = proc.poll()
                if status in (None, 0) or name in lost:
                    continue
                workers_left = [n for n, p in self.procs.items() if n.startswith("worker") and p.poll() is None]
                if self.strategy == "parameter_server" and name.startswith("worker") and workers_left:
                    lost.add(name)
                    self.say(f"cluster: {name} exited with status {status}; training goes on with "
                             f"{', '.join(workers_left)} (the coordinator reschedules its steps)")
                    continue
                failed.append((name, status))
            if failed:
                name, status = min(failed, key=lambda f: f[1] >= 0)   # a signal (status < 0) first, else in order
                self.say(f"cluster: {name} exited with status {status}; stopping the cluster")
                return status if status > 0 else 128 - status   # killed by signal N: 128 + N
            chief = self.procs[self.chief]
            if self.strategy == "parameter_server" and chief.poll() == 0:
                return 0
            if all(p.poll() == 0 for p in self.procs.values()):
                return 0
            time.sleep(poll_s)

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every process group still running, SIGKILL what is left after ``grace_s``."""
        live = {name: p for name, p in self.procs.items() if p.poll() is None}
        for proc in live.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for name, proc in live.items():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self.procs.values():   # the group may hold children of the role's process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pump in self._pumps:
            pump.join(timeout=2.0)
        if live:
            self.say(f"cluster: stopped {', '.join(sorted(live))}")

    def summary(self) -> str:
        return (f"CLUSTER strategy={self.strategy} workers={self.workers} ps={self.ps} "
                f"sharded_tables={self.sharded_tables} steps={self.steps}")


def run_cluster(cluster: LocalCluster) -> int:
    """Start ``cluster``, wait for it, always tear it down and print the summary; returns the status
    (130 after SIGINT, 143 after SIGTERM)."""
    received: list[int] = []

    def handler(signum, _frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 1
    try:
        cluster.start()
        status = cluster.wait()
    except KeyboardInterrupt:
        signum = received[0] if received else signal.SIGINT
        cluster.say(f"cluster: {signal.Signals(signum).name}: stopping the cluster")
        status = 128 + signum
    finally:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)   # teardown is not interrupted by a second Ctrl-C
        try:
            cluster.stop()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
    cluster.say(cluster.summary())
    return status
