"""The VTN's worker processes (drready.openadr.vtn.workers): connections dealt in turn, dead
workers replaced, graceful stop, orphaned workers stopping, a broken app not restarted forever.

Each test runs ``tests/workers_child.py`` (a supervisor with a small app answering its worker's
process id) as a real process tree and talks to it over TCP with plain HTTP/1.1.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from drready.openadr.vtn.workers import serve

CHILD = Path(__file__).with_name("workers_child.py")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, count: int = 1, timeout_s: float = 30.0) -> list[str]:
        """The first ``count`` matches of ``pattern`` in the log, waiting for them."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [m.group(1) for line in list(self.lines) if (m := re.search(pattern, line))]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{count}× {pattern!r} not logged:\n" + "".join(self.lines))
            time.sleep(0.05)

    @property
    def port(self) -> int:
        return int(self.wait_for(r"running on http://127\.0\.0\.1:(\d+)")[0])

    def ready_workers(self, count: int) -> list[int]:
        return [int(p) for p in self.wait_for(r"Worker process \[(\d+)\] ready", count)]


@contextlib.contextmanager
def supervisor(app: str = "pid_app", workers: int = 3) -> Iterator[Served]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), app, str(workers)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    served = Served(proc)
    assert proc.stderr is not None
    stream = proc.stderr
    reader = threading.Thread(target=lambda: served.lines.extend(iter(stream.readline, "")))
    reader.start()
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(5)


def _alive(pid: int) -> bool:
    """``pid`` runs and is not a zombie (an orphan's parent may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.05)


def _ask(conn: http.client.HTTPConnection, path: str = "/") -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    return int(response.read())


def test_connections_are_dealt_to_the_workers_in_turn() -> None:
    """30 connections over 3 ready workers: exactly 10 each, and every later request on a
    connection is answered by the worker it was dealt to (keep-alive)."""
    with supervisor(workers=3) as served:
        port = served.port
        workers = served.ready_workers(3)
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(30)]
        try:
            first = [_ask(c) for c in conns]
            assert sorted(Counter(first).values()) == [10, 10, 10]
            assert set(first) == set(workers)
            assert [_ask(c) for c in conns] == first
        finally:
            for c in conns:
                c.close()


def test_a_dead_worker_is_replaced_and_dealt_its_share() -> None:
    with supervisor(workers=3) as served:
        port = served.port
        workers = served.ready_workers(3)
        os.kill(workers[0], signal.SIGKILL)
        served.wait_for(rf"Worker process \[({workers[0]})\] died")
        replacement = served.ready_workers(4)[3]
        assert replacement not in workers
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(30)]
        try:
            answered = Counter(_ask(c) for c in conns)
        finally:
            for c in conns:
                c.close()
        assert set(answered) == {replacement, *workers[1:]}
        assert sorted(answered.values()) == [10, 10, 10]


def test_sigterm_finishes_requests_in_flight_then_stops_everything() -> None:
    with supervisor(workers=2) as served:
        port = served.port
        workers = served.ready_workers(2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answer: list[int] = []
        slow = threading.Thread(target=lambda: answer.append(_ask(conn, "/slow")))
        slow.start()
        time.sleep(0.3)  # the request is in its worker
        served.proc.send_signal(signal.SIGTERM)
        slow.join(10)
        assert answer and answer[0] in workers  # answered, not cut off
        assert served.proc.wait(20) == 0
        _wait_gone(workers)
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))


def test_workers_stop_by_themselves_when_the_supervisor_is_killed() -> None:
    with supervisor(workers=2) as served:
        workers = served.ready_workers(2)
        served.proc.kill()
        served.proc.wait(10)
        _wait_gone(workers)


def test_a_worker_that_cannot_start_stops_the_service_instead_of_restarting() -> None:
    with supervisor(app="no_such_app", workers=2) as served:
        assert served.proc.wait(60) == 3
        log = "".join(served.lines)
        assert "before it was ready; stopping" in log
        # each of the 2 workers started at most once more: no restart loop
        assert len(re.findall(r"Started worker process", log)) <= 3, log


def test_serve_refuses_what_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="workers: must be at least 1, got 0"):
        serve(uvicorn.Config("workers_child:pid_app"), 0)

    async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
        return None

    with pytest.raises(ValueError, match=r"config\.app: worker processes need an import string"):
        serve(uvicorn.Config(app), 2)
