"""Child processes of ``drready stack up``: start each party as its own OS process, watch it,
measure it, stop it (issue 11 items 5–7; S1: every service stops cleanly, nothing left behind).

A :class:`Supervisor` starts children from :class:`ChildSpec` (a name, a command line, extra
environment, a readiness probe and a stop wave), each

* in a session of its own (``start_new_session``): a Ctrl-C in the terminal reaches only the
  supervisor, which then stops the children in order — VENs and the servicer before the VTN,
  the VTN before the ECHONET Lite nodes — instead of every process at once;
* with stdout and stderr in a private log file (0600) of the run's state directory;
* ready only when its probe says so (the VTN answers ``/auth/server``, a node answers a Get …),
  so a party is never started against a peer that is not there yet.

:meth:`Supervisor.stop` sends SIGTERM to the children of one wave at a time, waits at most
``grace_s`` (10 s) for the wave, then SIGKILLs what is left — the whole process group, so a
VTN's workers go too — and records it: every :class:`ChildExit` says the exit code and whether
it had to be killed. :func:`leftovers` then lists any process of a child's group still alive
(``/proc``), :func:`listening_tcp` and :func:`bound_udp` the sockets still open on the ports
the run used.

:func:`rss_kb` reads a process tree's resident set size from ``/proc/<pid>/status`` (``VmRSS``)
for the soak test's memory-growth check. Linux only (``/proc``), as the services' deployment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drready.security.files import create_private_file, make_private_dirs

__all__ = [
    "STOP_GRACE_S",
    "ChildExit",
    "ChildFailedError",
    "ChildSpec",
    "Supervisor",
    "bound_udp",
    "descendants",
    "leftovers",
    "listening_tcp",
    "log_tail",
    "rss_kb",
]

#: Longest wait for a stop wave after SIGTERM before SIGKILL [s] (issue 11 item 6: every
#: service stops within 10 s).
STOP_GRACE_S = 10.0
_POLL_S = 0.05


class ChildFailedError(RuntimeError):
    """A child exited or did not become ready; the message names it and quotes its log."""

    def __init__(self, name: str, reason: str, log: Path) -> None:
        tail = log_tail(log)
        super().__init__(f"{name}: {reason}; its log {log} ends:\n{tail}")
        self.name = name
        self.log = log


@dataclass(frozen=True)
class ChildSpec:
    """How to start one party.

    Attributes
    ----------
    name : str
        Unique among the run's children (``vtn``, ``node-1`` …); also its log's name.
    argv : sequence of str
        The command line.
    env : mapping
        Variables added to (or replacing) the supervisor's environment.
    ready : callable, optional
        Probe called every 50–200 ms after the start until it returns ``True``; ``None``: ready
        when started.
    ready_timeout_s : float
        Longest wait for ``ready`` [s].
    stop_wave : int
        Children of the highest wave are stopped first, then the next lower wave …
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    stop_wave: int = 0


@dataclass(frozen=True)
class ChildExit:
    """How a child ended: ``exit_code`` as :attr:`subprocess.Popen.returncode` (negative: the
    signal that ended it), ``killed`` if the supervisor had to SIGKILL it, ``stop_s`` the wall
    time from SIGTERM to its exit, ``early`` if it exited before it was asked to."""

    name: str
    pid: int
    exit_code: int | None
    killed: bool
    stop_s: float
    early: bool = False


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    log: Path
    stopping_since: float | None = None
    killed: bool = False
    stop_s: float = 0.0
    early: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Starts, watches and stops a run's children (see the module docstring).

    Parameters
    ----------
    log_dir : Path
        Where each child's log (``<name>.log``, mode 0600) goes; created 0700.
    base_env : mapping
        The environment every child starts from (``os.environ`` usually).
    """

    def __init__(self, log_dir: Path, base_env: Mapping[str, str]) -> None:
        make_private_dirs(log_dir)
        self.log_dir = log_dir
        self._base_env = dict(base_env)
        self._children: list[_Child] = []

    @property
    def names(self) -> list[str]:
        return [c.spec.name for c in self._children]

    def pid(self, name: str) -> int:
        return self._child(name).pid

    def log(self, name: str) -> Path:
        return self._child(name).log

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(name)

    def start(self, spec: ChildSpec, *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Start ``spec`` and wait until it is ready; its pid.

        Raises
        ------
        ChildFailedError
            It exited, or was not ready within ``spec.ready_timeout_s`` (it is then stopped).
        InterruptedError
            ``should_stop()`` became true while waiting.
        """
        (pid,) = self.start_all([spec], should_stop=should_stop)
        return pid

    def start_all(
        self, specs: Sequence[ChildSpec], *, should_stop: Callable[[], bool] = lambda: False
    ) -> list[int]:
        """Start every one of ``specs`` at once, then wait until each is ready (children that
        do not depend on each other come up in the time of the slowest); their pids. Raises
        as :meth:`start` for the first that fails."""
        names = [s.name for s in specs]
        for name in names:
            if name in self.names or names.count(name) > 1:
                raise ValueError(f"a child named {name!r} was started already")
        children = [self._launch(spec) for spec in specs]
        for child in children:
            self._wait_ready(child, should_stop)
        return [c.pid for c in children]

    def _launch(self, spec: ChildSpec) -> _Child:
        log = self.log_dir / f"{spec.name}.log"
        create_private_file(log)
        with log.open("ab") as out:  # the child keeps its own handle
            proc = subprocess.Popen(
                list(spec.argv),
                env={**self._base_env, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = _Child(spec, proc, log)
        self._children.append(child)
        return child

    def _wait_ready(self, child: _Child, should_stop: Callable[[], bool]) -> None:
        spec, proc, log = child.spec, child.proc, child.log
        deadline = time.monotonic() + spec.ready_timeout_s
        pause = _POLL_S
        while spec.ready is not None:
            if proc.poll() is not None:
                child.early = True
                raise ChildFailedError(spec.name, f"exited with {proc.returncode}", log)
            if should_stop():
                raise InterruptedError(f"stopped while waiting for {spec.name}")
            if spec.ready():
                break
            if time.monotonic() > deadline:
                raise ChildFailedError(
                    spec.name, f"not ready within {spec.ready_timeout_s:.0f} s", log
                )
            time.sleep(pause)
            pause = min(pause * 2, 4 * _POLL_S)

    def exited(self) -> list[ChildExit]:
        """Children that exited although nobody asked them to, each reported once (and marked
        ``early``; a child whose start failed was reported by :meth:`start`)."""
        out = []
        for child in self._children:
            if child.stopping_since is None and not child.early and child.proc.poll() is not None:
                child.early = True
                out.append(self._exit(child))
        return out

    def pids(self) -> dict[str, int]:
        """Name → pid of the children still running."""
        return {c.spec.name: c.pid for c in self._children if c.proc.poll() is None}

    def stop(self, grace_s: float = STOP_GRACE_S) -> list[ChildExit]:
        """Stop every child, wave by wave (highest first): SIGTERM, at most ``grace_s`` for the
        wave, then SIGKILL of each remaining child's process group. Idempotent; the children in
        start order."""
        for wave in sorted({c.spec.stop_wave for c in self._children}, reverse=True):
            members = [c for c in self._children if c.spec.stop_wave == wave]
            now = time.monotonic()
            for child in members:
                if child.stopping_since is None:
                    child.stopping_since = now
                    if child.proc.poll() is None:
                        _signal(child.pid, signal.SIGTERM, group=False)
            deadline = now + grace_s
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in members):
                time.sleep(_POLL_S)
            for child in members:
                if child.proc.poll() is None:
                    child.killed = True
                    _signal(child.pid, signal.SIGKILL, group=True)
                    child.proc.wait()
                if not child.stop_s and child.stopping_since is not None:
                    child.stop_s = time.monotonic() - child.stopping_since
            for child in members:  # a worker left by a leader that exited
                if leftovers([child.pid]):
                    child.killed = True
                    _signal(child.pid, signal.SIGKILL, group=True)
        return [self._exit(c) for c in self._children]

    @staticmethod
    def _exit(child: _Child) -> ChildExit:
        return ChildExit(
            name=child.spec.name,
            pid=child.pid,
            exit_code=child.proc.poll(),
            killed=child.killed,
            stop_s=round(child.stop_s, 3),
            early=child.early,
        )


def _signal(pid: int, sig: signal.Signals, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)  # start_new_session: the child leads its group (pgid = pid)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses


def leftovers(groups: Iterable[int]) -> list[int]:
    """Pids of live (not zombie) processes whose process group is one of ``groups``."""
    wanted = set(groups)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields: state, ppid, pgrp, … (proc(5))
        if fields is not None and fields[0] != "Z" and int(fields[2]) in wanted:
            found.append(int(entry.name))
    return found


def _parents() -> dict[int, int]:
    """pid → parent pid of every live process (``/proc/<pid>/stat``)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z":
                out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (by the parent pids of ``/proc``: not every
    kernel offers ``/proc/<pid>/task/*/children``)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` and its descendants [kB] (``VmRSS`` of proc(5)); 0 if
    gone."""
    total = 0
    for member in descendants(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])  # "VmRSS:	  123456 kB"
    return total


def _proc_net(kind: str) -> list[tuple[str, int, str]]:
    """(local IPv4 address, port, state) of the sockets in ``/proc/net/<kind>`` (tcp, udp)."""
    out: list[tuple[str, int, str]] = []
    try:
        lines = Path(f"/proc/net/{kind}").read_text().splitlines()[1:]
    except FileNotFoundError:
        return out
    for line in lines:
        parts = line.split()
        address, port = parts[1].split(":")
        # the address is the 32-bit value in host (little-endian) byte order, as hex
        octets = bytes.fromhex(address)[::-1]
        out.append((".".join(str(b) for b in octets), int(port, 16), parts[3]))
    return out


def listening_tcp(ports: Iterable[int]) -> list[tuple[str, int]]:
    """IPv4 TCP sockets in LISTEN state on any of ``ports``."""
    wanted = set(ports)
    listen = "0A"  # TCP_LISTEN in include/net/tcp_states.h
    return [(a, p) for a, p, state in _proc_net("tcp") if p in wanted and state == listen]


def bound_udp(addresses: Iterable[str], port: int) -> list[tuple[str, int]]:
    """IPv4 UDP sockets bound to ``port`` on any of ``addresses``."""
    wanted = set(addresses)
    return [(a, p) for a, p, _ in _proc_net("udp") if p == port and a in wanted]


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
