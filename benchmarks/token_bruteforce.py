"""Token-endpoint brute force vs everybody else: other clients' ``GET /events`` latency before and
during a bounded guessing run at ``POST /auth/token`` (S1, issue 12 item 5).

Target (the issue's): other clients' p99 during the run within 20 % of the baseline.

What runs, on loopback over HTTPS, everything in a temporary directory (removed afterwards):

* **The VTN**: ``drready vtn serve`` as a child process
  (:class:`drready.sim.processes.VtnProcess`: a fresh CA, a registry of scrypt hashes, SQLite),
  with its token throttle and bounded scrypt verifier as shipped. ``--mode unthrottled`` (or
  ``both``) also measures the way it was before: the same server (:func:`drready.openadr.vtn.
  server.run` in a child process) with the throttle opened wide and scrypt in 40
  normal-priority threads, as anyio's shared pool ran it.
* **Data**: a program, the ven of ``ven-1`` targeting one unit, 20 events targeting it.
* **The other client** (its own process, spawn): ``--clients`` keep-alive connections of
  ``ven-1`` polling ``GET /events?targets=<unit>`` paced at ``--rate`` requests/s in total
  (each connection waits for its answer, then for its next slot), from the start to the end.
  Each request's latency is taken from sending to having read the answer.
* **The brute force** (this process), ``--rounds`` times (3), each after ``--baseline``
  quiet seconds (10): ``--attempts`` (200) wrong secrets over ``--attack-connections`` (8)
  keep-alive connections (opened just before: the window measures the guessing, not TLS
  handshakes, which any new client costs), each sending its next guess as soon as the previous
  one is answered. Each round guesses another registered client id (``target-<k>``) from
  another loopback address (``127.0.0.<10+k>``), so each meets the throttle afresh, as an
  attacker with several addresses would. Answers are counted by status (401 checked and
  wrong, 429 throttled or locked out, 503 verifier full).

Rows: *before* = the other client's requests sent during the quiet periods (after a 1 s
warm-up); *during* = those sent while a brute force was running (from its first guess to its
last answer). With the throttle, a round is 5 scrypt runs (``failures_max``; one guess of a client
id in flight at a time, so parallel connections cannot overshoot it) in its first second, then
refused guesses answered one per second per connection (the tarpit), ~25 s. The verdict
compares the two p99. Client, attacker and server share the machine's cores: on a machine
busy with other work the figures move with it (run it on a quiet one).

Run it from the repository root::

    .venv/bin/python benchmarks/token_bruteforce.py
    .venv/bin/python benchmarks/token_bruteforce.py --mode both --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from drready.security.tls import client_ssl_context

UNIT = "000005:HW0000001"
N_EVENTS = 20
ROUNDS_MAX = 20
CLIENTS = {
    "dr-servicer": "bl",
    "ven-1": "ven",
    **{f"target-{k}": "ven" for k in range(ROUNDS_MAX)},  # one attacked client id per round
}
TARGET_RATIO = 1.2  # during p99 ≤ 1.2 × before p99
WARMUP_S = 1.0


# --- the servers ------------------------------------------------------------------------------


class _Unthrottled:
    """:func:`drready.openadr.vtn.server.run` in a child process with the throttle opened wide
    and scrypt in 40 normal-priority threads (the way before the throttle)."""

    def __init__(self, work_dir: Path) -> None:
        from drready.sim.processes import free_port

        self.work_dir = work_dir
        self.port = free_port()
        self.base_url = f"https://localhost:{self.port}"
        self.secrets = {cid: secrets.token_urlsafe(24) for cid in CLIENTS}
        self._proc: subprocess.Popen[bytes] | None = None
        self.ca_file = work_dir / "certs" / "ca.pem"

    def __enter__(self) -> _Unthrottled:
        from drready.security.certs import write_bundle
        from drready.security.tokens import ClientRegistry

        self.work_dir.mkdir(parents=True, exist_ok=True)
        bundle = write_bundle(self.work_dir / "certs", overwrite=True)
        self.ca_file = bundle.ca_cert
        key = secrets.token_urlsafe(48)
        registry = ClientRegistry(signing_key=key.encode())
        for cid, role in CLIENTS.items():
            registry.add_client(cid, self.secrets[cid], role=role)
        clients_file = self.work_dir / "clients.toml"
        registry.save(clients_file, overwrite=True)
        spec = {
            "port": self.port,
            "cert": str(bundle.server_cert),
            "key": str(bundle.server_key),
            "database": f"sqlite:///{self.work_dir / 'vtn.db'}",
            "base_url": self.base_url,
        }
        env = {**os.environ, "DRREADY_TOKEN_KEY": key, "DRREADY_CLIENTS_FILE": str(clients_file)}
        with (self.work_dir / "vtn.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-unthrottled", json.dumps(spec)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_ready(self.base_url, str(self.ca_file), self._proc)
        return self

    def __exit__(self, *_: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _serve_unthrottled(spec_json: str) -> None:
    from drready.openadr.vtn.server import run
    from drready.openadr.vtn.settings import VtnSettings
    from drready.security.settings import SecuritySettings
    from drready.security.throttle import TokenThrottleSettings
    from drready.security.tokens import load_registry

    spec = json.loads(spec_json)
    wide = 100_000
    throttle = TokenThrottleSettings(
        address_burst=wide,
        address_per_s=wide,
        client_burst=wide,
        client_per_s=wide,
        failures_max=wide,
        verify_threads=40,
        verify_queue_max=10_000,
        verify_nice=0,
    )
    settings = VtnSettings(
        database_url=spec["database"], base_url=spec["base_url"], token_throttle=throttle
    )
    tls = SecuritySettings(cert_file=Path(spec["cert"]), key_file=Path(spec["key"]))
    run(settings, load_registry(env=os.environ), port=spec["port"], tls=tls)


def _wait_ready(base_url: str, ca_file: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(verify=client_ssl_context(ca_file), timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the VTN exited with {proc.returncode}")
            try:
                if http.get(f"{base_url}/auth/server").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
    raise RuntimeError("the VTN did not answer within 60 s")


# --- data -------------------------------------------------------------------------------------


def _token(client: httpx.Client, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    resp = client.post("/auth/token", data=form)
    resp.raise_for_status()
    token: str = resp.json()["access_token"]
    return token


def seed(base_url: str, ca_file: str, secrets_by_client: dict[str, str]) -> str:
    """Program, ven of ``ven-1``, 20 events targeting its unit; the VEN's access token."""
    with httpx.Client(base_url=base_url, verify=client_ssl_context(ca_file), timeout=30) as c:
        bl = {
            "Authorization": f"Bearer {_token(c, 'dr-servicer', secrets_by_client['dr-servicer'])}"
        }
        program = c.post("/programs", json={"programName": "dr-ready"}, headers=bl).json()
        ven = {"objectType": "BL_VEN_REQUEST", "clientID": "ven-1", "venName": "ven-1"}
        c.post("/vens", json={**ven, "targets": [UNIT]}, headers=bl).raise_for_status()
        for i in range(N_EVENTS):
            event = {
                "programID": program["id"],
                "eventName": f"event {i}",
                "targets": [UNIT],
                "intervalPeriod": {"start": f"2030-01-15T{i:02d}:00:00+09:00", "duration": "PT30M"},
                "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
            }
            c.post("/events", json=event, headers=bl).raise_for_status()
        return _token(c, "ven-1", secrets_by_client["ven-1"])


# --- the other client -------------------------------------------------------------------------


def _measure(
    base_url: str,
    ca_file: str,
    token: str,
    clients: int,
    rate: float,
    stop: Any,
    out: Any,
) -> None:
    """Paced GET /events until ``stop`` is set; puts [(sent monotonic s, latency s, status)]."""

    async def main() -> list[tuple[float, float, int]]:
        samples: list[tuple[float, float, int]] = []
        interval = clients / rate
        headers = {"Authorization": f"Bearer {token}"}
        ssl = client_ssl_context(ca_file)

        async def one(k: int) -> None:
            async with httpx.AsyncClient(base_url=base_url, verify=ssl, timeout=30) as http:
                start = time.monotonic() + k * interval / clients
                n = 0
                while not stop.is_set():
                    slot = start + n * interval
                    n += 1
                    delay = slot - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -interval:  # slots missed during a stall: not sent in a burst
                        start, n = time.monotonic() - n * interval, n
                    sent = time.monotonic()
                    try:
                        r = await http.get("/events", params={"targets": UNIT}, headers=headers)
                        status = r.status_code
                    except httpx.HTTPError:
                        status = 0
                    samples.append((sent, time.monotonic() - sent, status))

        await asyncio.gather(*(one(k) for k in range(clients)))
        return samples

    out.put(asyncio.run(main()))


# --- the brute force --------------------------------------------------------------------------


async def brute_force(
    base_url: str,
    ca_file: str,
    client_id: str,
    attempts: int,
    connections: int,
    source: str,
) -> tuple[float, float, dict[int, int]]:
    """``attempts`` wrong secrets for ``client_id`` from the address ``source``: (start, end
    monotonic s, count by status)."""
    counts: dict[int, int] = {}
    left = attempts
    ssl = client_ssl_context(ca_file)

    async def attacker(http: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secrets.token_urlsafe(24),
            }
            try:
                status = (await http.post("/auth/token", data=form)).status_code
            except httpx.HTTPError:
                status = 0
            counts[status] = counts.get(status, 0) + 1

    # the connections (TLS handshakes) are opened first: what the window measures is the
    # guessing, not the cost of new connections, which any client has
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            transport=httpx.AsyncHTTPTransport(verify=ssl, local_address=source),
            timeout=60,
        )
        for _ in range(connections)
    ]
    try:
        await asyncio.gather(*(http.get("/auth/server") for http in clients))
        start = time.monotonic()
        await asyncio.gather(*(attacker(http) for http in clients))
        end = time.monotonic()
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return start, end, counts


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Row:
    mode: str
    phase: str
    samples: list[tuple[float, float, int]]
    seconds: float
    attack: dict[int, int] = field(default_factory=dict)

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(lat * 1000 for _, lat, _ in self.samples)

    def percentile(self, q: float) -> float:
        values = self.latencies_ms
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]

    @property
    def errors(self) -> int:
        return sum(1 for *_, status in self.samples if status != 200)


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> list[Row]:
    from drready.sim.processes import VtnProcess

    work = tmp / mode
    server: Any = (
        VtnProcess(work, CLIENTS, workers=args.workers)
        if mode == "throttled"
        else _Unthrottled(work)
    )
    quiet: list[tuple[float, float]] = []
    attacks: list[tuple[float, float]] = []
    counts: dict[int, int] = {}
    with server:
        ca = str(server.ca_file)
        token = seed(server.base_url, ca, server.secrets)
        ctx = mp.get_context("spawn")
        stop, out = ctx.Event(), ctx.Queue()
        measurer = ctx.Process(
            target=_measure,
            args=(server.base_url, ca, token, args.clients, args.rate, stop, out),
        )
        measurer.start()
        try:
            time.sleep(WARMUP_S)
            for k in range(args.rounds):
                calm = time.monotonic()
                time.sleep(args.baseline)
                # each round: another client id, guessed from another loopback address, so each
                # round meets the throttle afresh (as an attacker with many addresses would)
                start, end, got = asyncio.run(
                    brute_force(
                        server.base_url,
                        ca,
                        f"target-{k}",
                        args.attempts,
                        args.attack_connections,
                        f"127.0.0.{10 + k}",
                    )
                )
                quiet.append((calm, start))
                attacks.append((start, end))
                for status, n in got.items():
                    counts[status] = counts.get(status, 0) + n
            time.sleep(0.5)
        finally:
            stop.set()
        samples: list[tuple[float, float, int]] = out.get(timeout=60)
        measurer.join(timeout=30)

    def within(windows: list[tuple[float, float]]) -> list[tuple[float, float, int]]:
        return [s for s in samples if any(a <= s[0] <= b for a, b in windows)]

    return [
        Row(mode, "before", within(quiet), sum(b - a for a, b in quiet)),
        Row(mode, "during brute force", within(attacks), sum(b - a for a, b in attacks), counts),
    ]


# --- output -----------------------------------------------------------------------------------


def _table(rows: list[Row], markdown: bool) -> str:
    header = [
        "server",
        "phase",
        "s",
        "GETs",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "guesses: 401 / 429 / 503",
        "p99 vs before",
    ]
    lines = []
    baseline: dict[str, float] = {}
    for row in rows:
        p99 = row.percentile(0.99)
        if row.phase == "before":
            baseline[row.mode] = p99
            ratio = ""
            guesses = ""
        else:
            base = baseline.get(row.mode, float("nan"))
            verdict = "PASS" if p99 <= TARGET_RATIO * base else "FAIL"
            ratio = f"×{p99 / base:.2f} {verdict}"
            c = row.attack
            guesses = f"{c.get(401, 0)} / {c.get(429, 0)} / {c.get(503, 0)}"
            other = sum(v for k, v in c.items() if k not in (401, 429, 503))
            if other:
                guesses += f" (+{other} other)"
        n = len(row.samples)
        lines.append(
            [
                row.mode,
                row.phase,
                f"{row.seconds:.1f}",
                str(n),
                f"{n / row.seconds:,.0f}" if row.seconds > 0 else "-",
                f"{row.percentile(0.5):.1f}",
                f"{p99:.1f}",
                str(row.errors),
                guesses,
                ratio,
            ]
        )
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(cells[i]) for cells in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in lines]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--mode",
        choices=["throttled", "unthrottled", "both"],
        default="throttled",
        help="throttled: drready vtn serve as shipped; unthrottled: the way before (for "
        "comparison); both",
    )
    parser.add_argument("--attempts", type=int, default=200, help="wrong secrets per round, in all")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help=f"brute-force runs (1–{ROUNDS_MAX}), each after --baseline quiet seconds",
    )
    parser.add_argument("--attack-connections", type=int, default=8, help="attacker connections")
    parser.add_argument("--clients", type=int, default=10, help="the other client's connections")
    parser.add_argument("--rate", type=float, default=200.0, help="its GET /events per second")
    parser.add_argument(
        "--baseline", type=float, default=10.0, help="quiet seconds before each round"
    )
    parser.add_argument("--workers", type=int, default=1, help="vtn serve --workers")
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    parser.add_argument("--serve-unthrottled", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.rounds <= ROUNDS_MAX:
        raise SystemExit(f"--rounds: 1–{ROUNDS_MAX}")
    if args.serve_unthrottled:
        _serve_unthrottled(args.serve_unthrottled)
        return 0
    modes = ["unthrottled", "throttled"] if args.mode == "both" else [args.mode]
    tmp = Path(tempfile.mkdtemp(prefix="drready-token-bf-"))
    try:
        rows: list[Row] = []
        for mode in modes:
            print(
                f"{mode}: {args.rounds} rounds of {args.attempts} wrong secrets over "
                f"{args.attack_connections} connections while ven-1 polls GET /events at "
                f"{args.rate:g}/s …",
                flush=True,
            )
            rows += run_mode(mode, args, tmp)
        print(_table(rows, markdown=False))
        if args.markdown:
            print()
            print(_table(rows, markdown=True))
        print(
            f"\nTarget: p99 during the brute force ≤ {TARGET_RATIO:g} × p99 before. "
            f"{os.cpu_count()} cores shared by the VTN, the polling client and the attacker; "
            "HTTPS on loopback, keep-alive connections."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
