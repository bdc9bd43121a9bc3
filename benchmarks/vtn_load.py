"""OpenADR 3.1 VTN load benchmark: requests/s and p50/p99 latency over HTTPS on loopback.

What it measures: for ``GET /events`` (a VEN reading its 20 targeted events) and ``POST
/reports`` (a VEN posting a small F5 power report), each with 10 and 100 concurrent clients,
the requests completed per second, the median and 99th-percentile latency of a request (from
sending it to having read the whole answer) and the errors (non-2xx answers and transport
failures). Targets (the issue's): ≥ 1 000 req/s for every scenario, p99 < 50 ms at 100
concurrent clients; each row gets a PASS/FAIL verdict (errors must be 0 as well).

Setup, all in a temporary directory outside the repository (removed afterwards):

* **TLS**: a CA and a server certificate for ``127.0.0.1`` (:func:`drready.security.certs.
  write_bundle`); the server uses :func:`drready.security.tls.uvicorn_ssl_kwargs` (TLS ≥ 1.2,
  the project's cipher policy), the clients verify it with
  :func:`drready.security.tls.client_ssl_context`.
* **VTN**: :func:`drready.openadr.vtn.create_app` with a client registry (a BL client and the
  VEN client ``ven-1``) loaded in each worker by :func:`drready.security.tokens.load_registry`
  from ``DRREADY_CLIENTS_JSON`` / ``DRREADY_TOKEN_KEY`` (HS256), database SQLite (a file in
  the temporary directory, ``journal_mode=WAL``; ``--sqlite-synchronous`` sets the per-
  connection ``synchronous`` pragma, default ``NORMAL`` like the VTN's own engine) or, with
  ``--database postgresql+psycopg://user@host/db``, a fresh schema in that database (dropped
  afterwards). Served over TLS in a separate process (spawn) as ``drready vtn serve --workers
  N`` serves it: ``--workers`` processes (default: the machine's cores on SQLite, where no
  request waits on I/O — reports are committed in groups, WAL checkpoints run in a background
  thread — so a worker more than the cores only adds scheduling delay; cores + 1 on
  PostgreSQL, where every query is a blocking round trip and the extra worker keeps the CPUs
  busy meanwhile) started by :func:`drready.openadr.vtn.workers.serve`, which deals the
  connections to the workers in turn, each speaking
  :class:`drready.openadr.vtn.protocol.CoalescingHttpToolsProtocol` (an answer in one write).
  ``--supervisor uvicorn`` and ``--protocol httptools`` measure uvicorn's own way instead (a
  shared listening socket; headers and body written apart), for comparison. Each worker needs an
  import string, so the app comes from the module-level factory :func:`vtn_app`, configured
  through environment variables, which also freezes the startup heap out of the garbage
  collector as the server's workers do (:func:`drready.openadr.vtn.server.freeze_startup_heap`).
  Like :func:`drready.openadr.vtn.server.uvicorn_config`: ``proxy_headers=False``, no ``Server``
  header; unlike it, the access log is off (``log_level=warning``).
* **Data**: the profile's program, a ven object of ``ven-1`` targeting one unit
  (``000005:HW0000001``), 20 DR events (:func:`drready.openadr.profile.dr_event`) targeting
  that unit. ``GET /events?targets=000005:HW0000001`` answers all 20 (target matching and
  hiding run for every request). The report body: :func:`drready.openadr.profile.power_report`
  of four samples of the unit, merged into one resource with four intervals.
* **Load**: a separate process (spawn) per scenario running ``C`` asyncio tasks on one
  ``httpx.AsyncClient(http2=False)`` with keep-alive connections (at most ``C``), each task
  sending its next request as soon as the previous one is answered (closed loop), with the
  VEN's bearer token. Each task has its own client (one connection): a single client shared
  by 100 tasks stalls in httpx's connection pool (idle CPU, second-long waits) and measures
  httpx rather than the VTN. After a ``--warmup`` (1 s; connections and TLS sessions are set up
  then), the requests completing within ``--duration`` (5 s) are counted. Closed loop means
  Little's law holds: mean latency ≈ C / throughput, so p99 < 50 ms at C = 100 needs well over
  2 000 req/s.

The load generator and the server share the machine's cores (the table's notes say how many);
on a 2-core machine the client takes a large share of the CPU, so the server figures are lower
bounds.

Run it from the repository root::

    .venv/bin/python benchmarks/vtn_load.py
    .venv/bin/python benchmarks/vtn_load.py --markdown
    .venv/bin/python benchmarks/vtn_load.py --database postgresql+psycopg://postgres@127.0.0.1/test

Paced rows (wrk only, ``--paced``, default 1 000 req/s; 0 turns them off): GET /events and
POST /reports again at the largest client count, each client waiting a random 0.5–1.5 ×
C / (1.1 × rate) s between an answer and its next request (wrk's Lua ``delay()``). That is how
VENs use a VTN (polling, not hammering) and answers the latency question at the target rate
rather than at saturation; the verdict still asks ≥ 1 000 req/s served.

Options: ``--workers``, ``--supervisor`` and ``--protocol`` (above), ``--clients`` (``10,100``),
``--duration`` (5 s), ``--warmup`` (1 s), ``--database`` (SQLAlchemy URL of a PostgreSQL
server; default a SQLite file), ``--sqlite-synchronous`` (``NORMAL``), ``--profile`` (one
worker under cProfile, every thread; prints the top functions of the server) and
``--markdown`` (also print a plain markdown table for the README). The script exits 0
whatever the verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from drready.domain import DeviceId, Direction, DrRequest, PowerSample, PowerSource
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import ReportResource, to_wire
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.app import make_engine
from drready.openadr.vtn.server import freeze_startup_heap
from drready.openadr.vtn.store import create_all
from drready.security.certs import write_bundle
from drready.security.tls import client_ssl_context, uvicorn_ssl_kwargs
from drready.security.tokens import (
    ENV_CLIENTS_JSON,
    ENV_TOKEN_KEY,
    ClientRegistry,
    load_registry,
)

ENV_DATABASE = "DRREADY_BENCH_DATABASE_URL"
ENV_BASE_URL = "DRREADY_BENCH_BASE_URL"
ENV_SYNCHRONOUS = "DRREADY_BENCH_SQLITE_SYNCHRONOUS"

TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
P99_AT = 100  # the p99 target applies at this many concurrent clients
UNIT = DeviceId(maker_code="000005", serial="HW0000001")
VEN_CLIENT = "ven-1"
VEN_NAME = "maker-cloud-1"
N_EVENTS = 20
TZ = zone("Asia/Tokyo")


# --- the server (runs in the uvicorn worker processes) ----------------------------------------


def vtn_app() -> FastAPI:
    """uvicorn factory: the VTN configured from the environment (see the module docstring)."""
    registry = load_registry(env=os.environ)
    settings = VtnSettings(
        database_url=os.environ[ENV_DATABASE],
        base_url=os.environ[ENV_BASE_URL],
        token_ttl_s=3600,
    )
    app = create_app(settings, registry, settings.token_service(registry))
    synchronous = os.environ.get(ENV_SYNCHRONOUS)
    if synchronous and make_url(settings.database_url).get_backend_name() == "sqlite":

        def set_synchronous(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.close()

        event.listen(app.state.engine, "connect", set_synchronous)
    freeze_startup_heap()  # as drready vtn serve's workers do
    return app


def _profile_threads(profiles: list[cProfile.Profile]) -> None:
    """Profile every thread started from now on (the route handlers run in a thread pool)."""

    def start(*_: Any) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()  # replaces this hook for the calling thread

    threading.setprofile(start)


def _serve(
    env: dict[str, str],
    port: int,
    workers: int,
    ssl: dict[str, Any],
    profile_out: str | None,
    supervisor: str = "drready",
    protocol: str = "coalescing",
) -> None:
    os.environ.update(env)
    # multiprocessing gave this process a /dev/null stdin on a descriptor its spawned children do
    # not inherit; uvicorn re-opens the parent's stdin descriptor in every worker and fails with
    # EBADF whenever that number is not open there. The server reads no stdin: pass none.
    sys.stdin = None  # type: ignore[assignment]
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # "vtn_load:vtn_app" importable
    import uvicorn

    from drready.openadr.vtn import workers as vtn_workers
    from drready.openadr.vtn.protocol import CoalescingHttpToolsProtocol

    options: dict[str, Any] = dict(
        factory=True,
        host="127.0.0.1",
        port=port,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level="warning",
        http=CoalescingHttpToolsProtocol if protocol == "coalescing" else "httptools",
        **ssl,
    )
    if profile_out is None:
        if workers > 1 and supervisor == "uvicorn":  # the shared socket, for comparison
            uvicorn.run("vtn_load:vtn_app", workers=workers, **options)
        elif workers > 1:  # as drready vtn serve --workers N
            vtn_workers.serve(uvicorn.Config("vtn_load:vtn_app", **options), workers)
        else:
            uvicorn.Server(uvicorn.Config("vtn_load:vtn_app", **options)).run()
        return

    def stop(*_: Any) -> None:
        raise SystemExit(0)  # uvicorn re-raises SIGTERM after its shutdown: end here instead

    signal.signal(signal.SIGTERM, stop)
    profiles: list[cProfile.Profile] = []
    _profile_threads(profiles)
    main = cProfile.Profile()
    main.enable()
    try:
        uvicorn.run("vtn_load:vtn_app", **options)
    finally:
        main.disable()
        stats = pstats.Stats(main)
        for prof in profiles:
            stats.add(prof)
        stats.dump_stats(profile_out)


# --- the load generator (its own process) -----------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    clients: int
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    pace_rps: float | None = None  # open-ish loop: each client waits between requests

    @property
    def label(self) -> str:
        return self.name if self.pace_rps is None else f"{self.name}, paced {self.pace_rps:,.0f}/s"


@dataclass
class Result:
    scenario: Scenario
    completed: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


async def _drive(
    base_url: str, ca_file: str, token: str, sc: Scenario, warmup: float, duration: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if sc.body is not None:
        headers["Content-Type"] = "application/json"
    # one client (one keep-alive connection) per task: a single AsyncClient shared by 100 tasks
    # stalls in its connection pool (idle CPU, second-long waits), which measured httpx, not
    # the VTN
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    verify = client_ssl_context(ca_file)
    t0 = time.perf_counter()
    window = (t0 + warmup, t0 + warmup + duration)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0

    async def task() -> None:
        nonlocal errors
        async with httpx.AsyncClient(
            base_url=base_url,
            verify=verify,
            http2=False,
            limits=limits,
            timeout=30.0,
            headers=headers,
        ) as client:
            while True:
                start = time.perf_counter()
                if start >= window[1]:
                    return
                try:
                    resp = await client.request(
                        sc.method, sc.path, params=sc.params, content=sc.body
                    )
                    status = str(resp.status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                done = time.perf_counter()
                if window[0] <= done <= window[1]:
                    latencies.append(done - start)
                    statuses[status] = statuses.get(status, 0) + 1
                    if not status.startswith("2"):
                        errors += 1

    await asyncio.gather(*(task() for _ in range(sc.clients)))
    return {"latencies": latencies, "statuses": statuses, "errors": errors}


def _load(
    conn: Connection,
    base_url: str,
    ca_file: str,
    token: str,
    sc: Scenario,
    warmup: float,
    duration: float,
) -> None:
    conn.send(asyncio.run(_drive(base_url, ca_file, token, sc, warmup, duration)))
    conn.close()


def run_scenario(
    ctx: Any, base_url: str, ca_file: str, token: str, sc: Scenario, warmup: float, duration: float
) -> Result:
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_load, args=(child, base_url, ca_file, token, sc, warmup, duration), daemon=True
    )
    proc.start()
    child.close()
    data: dict[str, Any] = parent.recv()
    proc.join(30)
    latencies = sorted(data["latencies"])
    return Result(
        scenario=sc,
        completed=len(latencies),
        errors=int(data["errors"]),
        rps=len(latencies) / duration,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        statuses=dict(data["statuses"]),
    )


_WRK_LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Accept"] = "application/json"
{body}
{delay}
done = function(summary, latency, requests)
  io.write(string.format("DRREADY %d %d %d %d %f %f\\n", summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def run_scenario_wrk(
    base_url: str, token: str, sc: Scenario, warmup: float, duration: float, tmp: Path
) -> Result:
    """The same scenario driven by ``wrk`` (C, epoll, OpenSSL): a load generator that leaves
    most of the shared CPU to the server. Latency percentiles are wrk's (µs → ms)."""
    if sc.body is not None:
        escaped = sc.body.decode().replace("\\", "\\\\").replace('"', '\\"')
        body = f'wrk.body = "{escaped}"\nwrk.headers["Content-Type"] = "application/json"'
    else:
        body = ""
    delay = ""
    if sc.pace_rps is not None:
        # each of C connections waits ~C / (1.1 × rate) between answer and next request, with
        # ±50 % jitter so the clients do not move in lockstep: the offered load is about 10 %
        # above the rate while latency stays small, and the measured req/s says what was served
        mean_ms = max(1, round(1000 * sc.clients / (1.1 * sc.pace_rps)))
        lo, hi = mean_ms // 2, mean_ms + mean_ms // 2
        delay = f"function delay() return math.random({lo}, {hi}) end"
    script = tmp / f"wrk-{sc.method}-{sc.clients}-{'paced' if sc.pace_rps else 'closed'}.lua"
    script.write_text(_WRK_LUA.format(method=sc.method, token=token, body=body, delay=delay))
    query = "&".join(f"{k}={v}" for k, v in sc.params)
    url = f"{base_url}{sc.path}" + (f"?{query}" if query else "")
    threads = str(min(2, sc.clients))
    common = ["wrk", "-t", threads, "-c", str(sc.clients), "-s", str(script), "--timeout", "10s"]
    if warmup > 0:
        subprocess.run(
            [*common, "-d", f"{max(1, round(warmup))}s", url], capture_output=True, timeout=120
        )
    out = subprocess.run(
        [*common, "-d", f"{max(1, round(duration))}s", url],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("DRREADY ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out[-2000:]}")
    n, status_err, io_err, timeouts, p50_us, p99_us = line.split()[1:]
    errors = int(status_err) + int(io_err) + int(timeouts)
    completed = int(n)
    return Result(
        scenario=sc,
        completed=completed,
        errors=errors,
        rps=(completed - int(status_err)) / duration,
        p50_ms=float(p50_us) / 1000,
        p99_ms=float(p99_us) / 1000,
        statuses={"2xx": completed - int(status_err), "non-2xx": int(status_err)}
        if status_err != "0"
        else {"2xx": completed},
    )


# --- setup ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _postgres_schema(base: str) -> tuple[str, str]:
    """A fresh schema in the database ``base``: (URL using it, schema name)."""
    schema = f"vtn_bench_{secrets.token_hex(6)}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def _drop_postgres_schema(base: str, schema: str) -> None:
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _wait_ready(base_url: str, ca_file: str, proc: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(verify=client_ssl_context(ca_file), timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not proc.is_alive():
                raise RuntimeError("the VTN server process exited during start-up")
            try:
                if client.get(f"{base_url}/auth/server").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"the VTN did not answer within {timeout_s:.0f} s")


def _token(client: httpx.Client, client_id: str, secret: str) -> str:
    resp = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    resp.raise_for_status()
    token: str = resp.json()["access_token"]
    return token


def _created(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code != 201:
        raise RuntimeError(
            f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
        )
    body: dict[str, Any] = resp.json()
    return body


def report_body(event_id: str) -> dict[str, Any]:
    """F5 power report: one resource (the unit), four 5-minute samples as four intervals."""
    t0 = datetime(2030, 1, 15, 10, 0, tzinfo=TZ)
    samples = [
        PowerSample(
            device_id=UNIT,
            timestamp=t0 + timedelta(minutes=5 * i),
            power_w=1200.0 + 150.0 * i,
            cumulative_energy_kwh=1523.25 + 0.1 * i,
            source=PowerSource.MEASURED,
        )
        for i in range(4)
    ]
    report = profile.power_report(event_id, samples, VEN_NAME)
    intervals = tuple(
        iv.model_copy(update={"id": i})
        for i, iv in enumerate(iv for res in report.resources for iv in res.intervals)
    )
    merged = ReportResource(resource_name=str(UNIT), intervals=intervals)
    return to_wire(report.model_copy(update={"resources": (merged,)}))


def seed(base_url: str, ca_file: str, secrets_by_client: dict[str, str]) -> tuple[str, str, int]:
    """Program, ven of ``ven-1``, 20 events: (VEN token, first event id, GET /events size)."""
    with httpx.Client(base_url=base_url, verify=client_ssl_context(ca_file), timeout=30) as c:
        bl = {"Authorization": f"Bearer {_token(c, 'bl', secrets_by_client['bl'])}"}
        program = _created(c.post("/programs", json=to_wire(profile.program()), headers=bl))
        ven = {
            "objectType": "BL_VEN_REQUEST",
            "clientID": VEN_CLIENT,
            "venName": VEN_NAME,
            "targets": [str(UNIT)],
        }
        _created(c.post("/vens", json=ven, headers=bl))
        first = datetime(2030, 1, 15, 10, 0, tzinfo=TZ)
        event_ids = []
        for i in range(N_EVENTS):
            request = DrRequest(
                request_id=f"bench-{i:02d}",
                direction=Direction.UP if i % 2 == 0 else Direction.DOWN,
                start=first + timedelta(hours=i),
                end=first + timedelta(hours=i, minutes=30),
                amount_kwh=0.5 + 0.1 * i,
                issuer="dr-servicer",
                issued_at=first - timedelta(days=1),
            )
            body = to_wire(profile.dr_event(program["id"], request, [str(UNIT)]))
            event_ids.append(_created(c.post("/events", json=body, headers=bl))["id"])
        ven_token = _token(c, VEN_CLIENT, secrets_by_client[VEN_CLIENT])
        check = c.get(
            "/events",
            params={"targets": str(UNIT)},
            headers={"Authorization": f"Bearer {ven_token}"},
        )
        if check.status_code != 200 or len(check.json()) != N_EVENTS:
            raise RuntimeError(f"GET /events as the VEN: {check.status_code} {check.text[:200]}")
        return ven_token, event_ids[0], len(check.content)


# --- output -----------------------------------------------------------------------------------


def _target(sc: Scenario) -> str:
    rps = f"≥ {TARGET_RPS:,.0f} req/s"
    return f"{rps}, p99 < {TARGET_P99_MS:.0f} ms" if sc.clients >= P99_AT else rps


def _passed(r: Result) -> bool:
    ok = r.rps >= TARGET_RPS and r.errors == 0
    if r.scenario.clients >= P99_AT:
        ok = ok and r.p99_ms < TARGET_P99_MS
    return ok


def _cells(r: Result) -> list[str]:
    return [
        r.scenario.label,
        str(r.scenario.clients),
        f"{r.rps:,.0f}",
        f"{r.p50_ms:.1f}",
        f"{r.p99_ms:.1f}",
        str(r.errors),
        _target(r.scenario),
    ]


HEADERS = ["scenario", "clients", "req/s", "p50 ms", "p99 ms", "errors", "target", "result"]


def rich_table(results: list[Result], caption: list[str]) -> Table:
    table = Table(
        title="OpenADR 3.1 VTN load (HTTPS, loopback)",
        caption="\n".join(caption),
        caption_justify="left",
    )
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i in (0, 6) else "right")
    for r in results:
        ok = _passed(r)
        verdict = Text("PASS" if ok else "FAIL", style="green" if ok else "bold red")
        table.add_row(*(Text(c) for c in _cells(r)), verdict)
    return table


def markdown_table(results: list[Result]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        cells = [*_cells(r), "PASS" if _passed(r) else "FAIL"]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def notes(args: argparse.Namespace, database: str, get_bytes: int) -> list[str]:
    cores = os.cpu_count() or 0
    server = "1 worker under cProfile (figures distorted)" if args.profile else f"{args.workers}"
    out = [
        f"Client and server share this machine's {cores} cores: the load generator ("
        + ("wrk, 2 threads, C" if args.load == "wrk" else "one process, httpx + asyncio")
        + ") competes with the uvicorn workers for CPU.",
        f"VTN workers: {server}; event loop {_loop_impl()}, HTTP parser {_http_impl()}; "
        "access log off; TLS on every request (keep-alive connections, one per client).",
        f"Database: {database}.",
        f"Closed loop (rows not marked paced), {args.warmup:g} s warm-up then {args.duration:g} s "
        f"measured per row; mean latency ≈ clients / (req/s) (Little's law). GET /events answers "
        f"{N_EVENTS} targeted events ({get_bytes:,} B); POST /reports sends one resource × 4 "
        "intervals.",
        "Errors: non-2xx answers and transport failures (count toward the verdict).",
    ]
    if args.paced > 0:
        out.append(
            "Paced rows: each client waits a random 0.5–1.5 × clients / "
            f"(1.1 × {args.paced:,.0f}) s between an answer and its next request (wrk's Lua "
            "delay()), so the VTN is offered about 10 % over that rate instead of being "
            "saturated: VENs polling, not VENs hammering. Latency is measured from send to "
            "answer; a stall lowers the req/s, which the verdict checks, but wrk (unlike wrk2) "
            "does not count the requests a stall kept from being sent."
        )
    if args.workers > 1 and args.supervisor == "uvicorn":
        out.append(
            "Workers started by uvicorn (--supervisor uvicorn): they share one listening "
            "socket, so keep-alive connections opened in a burst can land mostly on one worker."
        )
    elif args.workers > 1:
        out.append(
            "Workers started by drready.openadr.vtn.workers (as drready vtn serve): the "
            "supervisor accepts and deals the connections to the workers in turn."
        )
    out.append(
        "HTTP protocol: "
        + (
            "drready's CoalescingHttpToolsProtocol (headers and body in one write)."
            if args.protocol == "coalescing"
            else "uvicorn's httptools (headers and body in two writes, two TLS records)."
        )
    )
    return out


def _loop_impl() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio (uvloop not installed)"
    return "uvloop"


def _http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11 (httptools not installed)"
    return "httptools"


def print_profile(console: Console, path: str, top: int = 35) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(path, stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    console.print(stream.getvalue(), markup=False, highlight=False)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="VTN worker processes (default: the cores on SQLite, cores + 1 on PostgreSQL)",
    )
    p.add_argument(
        "--supervisor",
        default="drready",
        choices=["drready", "uvicorn"],
        help="several workers: drready's (connections dealt in turn, as drready vtn serve) or "
        "uvicorn's own (one shared listening socket), for comparison",
    )
    p.add_argument(
        "--protocol",
        default="coalescing",
        choices=["coalescing", "httptools"],
        help="HTTP protocol: drready's (one write per answer, as drready vtn serve) or "
        "uvicorn's httptools (headers and body written apart), for comparison",
    )
    p.add_argument("--clients", default="10,100", help="comma-separated concurrent clients")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per scenario")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per scenario")
    p.add_argument("--database", default=None, help="PostgreSQL SQLAlchemy URL (else SQLite)")
    p.add_argument(
        "--sqlite-synchronous",
        default="NORMAL",
        choices=["OFF", "NORMAL", "FULL"],
        help="SQLite synchronous pragma of the VTN's connections",
    )
    p.add_argument("--profile", action="store_true", help="one worker under cProfile")
    p.add_argument(
        "--load",
        default="wrk" if shutil.which("wrk") else "httpx",
        choices=["wrk", "httpx"],
        help="load generator: wrk (C, Debian package; default when installed) or httpx",
    )
    p.add_argument(
        "--paced",
        type=float,
        default=TARGET_RPS,
        help="also run each scenario at the largest client count paced to about this many "
        "req/s (wrk only; 0 turns it off)",
    )
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = p.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.workers is None:
        cores = os.cpu_count() or 1
        args.workers = cores + 1 if args.database else cores
    if not 1 <= args.workers <= 16 or any(not 1 <= c <= 1000 for c in args.clients):
        p.error("--workers must be in [1, 16] and --clients in [1, 1000]")
    if not 0 < args.duration <= 120 or not 0 <= args.warmup <= 60:
        p.error("--duration must be in (0, 120] and --warmup in [0, 60]")
    if not 0 <= args.paced <= 100_000:
        p.error("--paced must be in [0, 100000] req/s (0: no paced rows)")
    if args.load != "wrk":
        args.paced = 0.0  # pacing is a wrk Lua delay(); the httpx driver is closed-loop only
    if args.database and make_url(args.database).get_backend_name() != "postgresql":
        p.error("--database: a postgresql URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 130)
    ctx = multiprocessing.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="drready-vtn-bench-"))
    schema: str | None = None
    server: Any = None
    try:
        console.print(f"[dim]setup in {tmp}: certificates, clients, database[/dim]")
        bundle = write_bundle(tmp / "certs", server_ips=("127.0.0.1",), client_names=())
        ca_file = str(bundle.ca_cert)
        client_secrets = {c: secrets.token_urlsafe(24) for c in ("bl", VEN_CLIENT)}
        registry = ClientRegistry(signing_key=secrets.token_urlsafe(48))
        registry.add_client("bl", client_secrets["bl"], role="bl")
        registry.add_client(VEN_CLIENT, client_secrets[VEN_CLIENT], role="ven")
        if args.database:
            database_url, schema = _postgres_schema(args.database)
            database = f"PostgreSQL, fresh schema {schema}"
        else:
            db_file = tmp / "vtn.db"
            database_url = f"sqlite:///{db_file}"
            database = f"SQLite file, journal_mode=WAL, synchronous={args.sqlite_synchronous}"
        engine = make_engine(database_url)
        create_all(engine)  # once, before the workers start (no create-table race)
        engine.dispose()
        if not args.database:
            with sqlite3.connect(db_file) as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file

        port = _free_port()
        base_url = f"https://127.0.0.1:{port}"
        assert isinstance(registry.signing_key, str)
        env = {
            ENV_TOKEN_KEY: registry.signing_key,
            ENV_CLIENTS_JSON: registry.dumps("json"),
            ENV_DATABASE: database_url,
            ENV_BASE_URL: base_url,
            ENV_SYNCHRONOUS: args.sqlite_synchronous,
        }
        ssl = dict(uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key))
        profile_out = str(tmp / "server.prof") if args.profile else None
        console.print(f"[dim]starting the VTN on {base_url} ({args.workers} workers)[/dim]")
        server = ctx.Process(
            target=_serve,
            args=(env, port, args.workers, ssl, profile_out, args.supervisor, args.protocol),
            daemon=False,
        )
        server.start()
        _wait_ready(base_url, ca_file, server)
        ven_token, event_id, get_bytes = seed(base_url, ca_file, client_secrets)

        report = httpx.Request("POST", "https://x", json=report_body(event_id)).content
        scenarios = [
            Scenario("GET /events", "GET", "/events", c, params=(("targets", str(UNIT)),))
            for c in args.clients
        ] + [Scenario("POST /reports", "POST", "/reports", c, body=report) for c in args.clients]
        if args.paced > 0:
            top = max(args.clients)
            scenarios += [
                Scenario(
                    "GET /events",
                    "GET",
                    "/events",
                    top,
                    params=(("targets", str(UNIT)),),
                    pace_rps=args.paced,
                ),
                Scenario(
                    "POST /reports", "POST", "/reports", top, body=report, pace_rps=args.paced
                ),
            ]
        results = []
        for sc in scenarios:
            console.print(f"[dim]{sc.label} × {sc.clients} …[/dim]")
            if args.load == "wrk":
                results.append(
                    run_scenario_wrk(base_url, ven_token, sc, args.warmup, args.duration, tmp)
                )
            else:
                results.append(
                    run_scenario(ctx, base_url, ca_file, ven_token, sc, args.warmup, args.duration)
                )
            other = {k: v for k, v in results[-1].statuses.items() if not k.startswith("2")}
            if other:
                console.print(f"[yellow]  non-2xx / failures: {other}[/yellow]")
    finally:
        if server is not None and server.is_alive():
            server.terminate()  # SIGTERM: uvicorn shuts its workers down
            server.join(30)
            if server.is_alive():
                server.kill()
                server.join()
        if schema is not None and args.database:
            _drop_postgres_schema(args.database, schema)
        if args.profile and (tmp / "server.prof").exists():
            print_profile(console, str(tmp / "server.prof"))
        shutil.rmtree(tmp, ignore_errors=True)

    caption = notes(args, database, get_bytes)
    console.print(rich_table(results, caption))
    if args.markdown:
        print()
        print(markdown_table(results))
        print()
        for note in caption:
            print(f"* {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
