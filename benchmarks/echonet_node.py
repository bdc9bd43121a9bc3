"""ECHONET Lite device node benchmark: Get throughput, multicast discovery, processing cost.

What it measures:

* **Get requests answered per second by one node**, over real loopback UDP. One water-heater
  node (``water_heater_node``, built exactly as the tests build it: a ``SimulatedWaterHeater``
  on a ``SimClock`` with ``speed=0``, so the heater's physics does not run during the
  measurement — simulated time stands still) listens on ``127.0.0.2:3610`` in this process's
  asyncio loop. The load generator is *not* our asyncio controller: it is a plain non-blocking
  UDP socket bound to ``127.0.0.250:3610`` in a separate process (``multiprocessing``, spawn):
  port 3610, because a node answers to port 3610 of the requester (the ECHONET Lite port rule,
  :mod:`drready.echonet.transport`), and an address of its own, so that no controller of
  another process on 127.0.0.1 takes its answers. It sends
  Get frames for one property with distinct TIDs as fast as it can while keeping at most
  ``--window`` (64) requests in flight; a request unanswered after 0.2 s is counted as lost and
  frees its slot. After a 0.5 s warm-up it counts, for ``--duration`` (3 s), the Get_Res frames
  whose TID matches an outstanding request. Two runs: a light property (0x80, operation status,
  a constant) and a heavy one (0xE1, remaining hot water, which goes through the heater model).
  Reported: answered Get/s and the share of requests sent in the measured window that were
  lost. The node's per-source limits (20 000 requests/s, burst 2 000; 512 KiB/s answered, at
  most 2 × each request plus a 4 KiB allowance, ``AnswerBudget``) must not be what limits the
  figure: each run first uses the defaults; if the node dropped or cut anything for them, the
  run is repeated with the limits raised (10⁹ requests/s, 10¹² B/s), and the table says so (with
  the figure the defaults allowed).
  Target: ≥ 5 000 answered Get/s for both properties.
* **Multicast discovery scan time** for 20 and 50 water-heater nodes on 127.0.0.2, 127.0.0.3, …
  (each with its own serial, hence its own identification number 0x83): the wall time of
  ``EchonetController(interface="127.0.0.1").discover(window_s=W)`` from call to return (the
  controller is started before the clock, a fresh one per try). A scan counts only if it found
  every node, with the right identification number. For each size the smallest window W of
  (0.1, 0.2, 0.3, 0.5) s that finds all nodes in 3 consecutive tries is chosen; the table shows
  W and the slowest of the 3 scans. The nodes run in the same process and event loop as the
  controller: their work (a few dozen µs per request, see below) is then serialised with the
  controller's on one core instead of running on 50 devices in parallel, which can only make
  the figure slower, not faster; the table shows the node-side frames handled per scan and their
  estimated cost so the distortion can be judged. Target: 50-node scan < 1 s.
* **Node processing cost**: ``NodeCore.handle`` on an encoded Get frame (0x80 and 0xE1) in a
  tight loop — sans-IO, no sockets: µs per request, and the requests/s ceiling it implies.
* **Amplification** (issue 12): the issue's probe, a Get of OPC = 255 × 0xF4 (522 B, answered
  with 63 762 B before answers were bounded), sent 2 000 times from one source at 20 000/s
  (the rate the issue saw) and at 200/s, through ``NodeCore.handle`` and the node's default
  ``AnswerBudget`` (sans-IO, the clock passed in): bytes of the first and of the last answer,
  and all bytes out / all bytes in. Target: the last answer ≤ 2 × the probe (the per-source
  allowance of 4 KiB spent; at 20 000/s the 512 KiB/s byte budget is spent too, and the node
  stops answering that source).

Each target gets a PASS/FAIL verdict in the last column; the script exits 0 either way.

Run it from the repository root (Linux: every 127.0.0.0/8 address is local, and multicast must
work on the loopback interface)::

    .venv/bin/python benchmarks/echonet_node.py
    .venv/bin/python benchmarks/echonet_node.py --markdown

Options: ``--duration`` (seconds measured per Get run, 3), ``--window`` (requests in flight,
64), ``--sizes`` (discovery node counts, ``20,50``) and ``--markdown`` (also print a plain
markdown table for the README).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DeviceId
from drready.domain.time import zone
from drready.echonet.controller import EchonetController
from drready.echonet.frame import CONTROLLER, ECHONET_PORT, EOJ, ESV, Frame, Property, encode_frame
from drready.echonet.node import AnswerBudget, EchonetNode
from drready.echonet.serve import water_heater_node
from drready.planning.unit import UnitConfig

T = TypeVar("T")

TZ = zone("Asia/Tokyo")
HEATER = EOJ(0x02, 0x6B, 0x01)
START = datetime(2026, 5, 11, 20, 0, tzinfo=TZ)

NODE_ADDRESS = "127.0.0.2"
LOADGEN_ADDRESS = "127.0.0.250"  # receives the answers on port 3610
LIGHT_EPC = 0x80  # operation status: a constant
HEAVY_EPC = 0xE1  # remaining hot water: goes through the heater model
DEFAULT_RATE_PER_S = 20_000.0  # EchonetNode's default per-source limit
RAISED_RATE_PER_S = 1e9
RAISED_BYTES_PER_S = 1e12
PROBE_COUNT = 2_000
PROBE_RATES_PER_S = (20_000.0, 200.0)
TARGET_AMPLIFICATION = 2.0
WARMUP_S = 0.5
REQUEST_TIMEOUT_S = 0.2
DRAIN_S = 0.5
WINDOWS_S = (0.1, 0.2, 0.3, 0.5)
TRIES = 3
HANDLE_SECONDS = 1.0

TARGET_GETS_PER_S = 5_000.0
TARGET_SCAN_N = 50
TARGET_SCAN_S = 1.0


# --- the simulated heater, as tests/echonet_helpers.py builds it ------------------------------


def make_heater(
    serial: str = "HW0000001", persons: int = 4, tank_l: float = 460.0
) -> SimulatedWaterHeater:
    """A heater on a ``SimClock`` with ``speed=0``: simulated time stands still."""
    cfg = UnitConfig(DeviceId(maker_code="000005", serial=serial), persons, tank_l)
    return SimulatedWaterHeater(cfg, SimClock(START, speed=0.0), seed=3)


def make_node(
    address: str = NODE_ADDRESS, serial: str = "HW0000001", rate_per_s: float = DEFAULT_RATE_PER_S
) -> tuple[EchonetNode, SimulatedWaterHeater]:
    heater = make_heater(serial)
    return water_heater_node(address, heater, rate_per_s=rate_per_s), heater


def get_frame(epc: int, tid: int = 0) -> bytes:
    return encode_frame(Frame(tid, CONTROLLER, HEATER, int(ESV.GET), (Property(epc),)))


# --- 1. load generator (child process, plain socket) ------------------------------------------


def load_generator(
    conn: Connection, target: tuple[str, int], epc: int, duration_s: float, window: int
) -> None:
    """Send Get frames of ``epc`` to ``target`` with at most ``window`` in flight; report counts.

    Runs in a spawned child process; sends one dict (or ``{"error": ...}``) through ``conn``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((LOADGEN_ADDRESS, ECHONET_PORT))  # the node answers to port 3610
        sock.setblocking(False)
        template = get_frame(epc)
        frames = [template[:2] + t.to_bytes(2, "big") + template[4:] for t in range(0x10000)]
        get_res = int(ESV.GET_RES)
        outstanding: dict[int, tuple[float, bool]] = {}  # tid → (sent at, in measured window)
        tid = 0
        sent = answered = lost = late = unmatched = wrong_esv = send_blocked = 0
        perf = time.perf_counter
        t_start = perf()
        t0 = t_start + WARMUP_S
        t1 = t0 + duration_s
        hard_stop = t1 + DRAIN_S
        next_sweep = t_start + 0.01
        while True:
            now = perf()
            sending = now < t1
            if not sending and (not outstanding or now >= hard_stop):
                break
            if sending:
                while len(outstanding) < window:
                    tid = (tid + 1) & 0xFFFF
                    if tid in outstanding:
                        continue
                    try:
                        sock.sendto(frames[tid], target)
                    except BlockingIOError:
                        send_blocked += 1
                        break
                    measured = t0 <= now
                    outstanding[tid] = (now, measured)
                    if measured:
                        sent += 1
            readable, _, _ = select.select([sock], [], [], 0.005)
            if readable:
                while True:
                    try:
                        data = sock.recv(2048)
                    except BlockingIOError:
                        break
                    if len(data) < 12:
                        unmatched += 1
                        continue
                    rtid = (data[2] << 8) | data[3]
                    if outstanding.pop(rtid, None) is None:
                        unmatched += 1  # answered after its timeout, or not ours
                        continue
                    if data[10] != get_res:
                        wrong_esv += 1
                        continue
                    at = perf()
                    if t0 <= at < t1:
                        answered += 1
                    elif at >= t1:
                        late += 1
            now = perf()
            if now >= next_sweep:
                next_sweep = now + 0.01
                expired = [t for t, (ts, _) in outstanding.items() if now - ts > REQUEST_TIMEOUT_S]
                for old in expired:
                    if outstanding.pop(old)[1]:
                        lost += 1
        lost += sum(1 for _, m in outstanding.values() if m)  # never answered
        conn.send(
            {
                "epc": epc,
                "duration_s": duration_s,
                "sent": sent,
                "answered": answered,
                "lost": lost,
                "late": late,
                "unmatched": unmatched,
                "wrong_esv": wrong_esv,
                "send_blocked": send_blocked,
            }
        )
    except Exception as err:  # report instead of dying silently
        conn.send({"error": f"{type(err).__name__}: {err}"})
    finally:
        sock.close()
        conn.close()


@dataclass
class GetRun:
    """One Get throughput run against one node."""

    epc: int
    rate_per_s: float
    result: dict[str, Any]
    rate_limited: int  # requests dropped by the rate limit
    node_received: int
    budget_limited: int = 0  # answers the byte budget cut or withheld
    default_run: GetRun | None = None  # the first run, at the default limit, if redone

    @property
    def ok(self) -> bool:
        return "error" not in self.result

    @property
    def gets_per_s(self) -> float:
        return (
            float(self.result["answered"] / self.result["duration_s"]) if self.ok else float("nan")
        )

    @property
    def lost_share(self) -> float:
        if not self.ok or not self.result["sent"]:
            return float("nan")
        return float(self.result["lost"] / self.result["sent"])


async def get_run(epc: int, duration_s: float, window: int, rate_per_s: float) -> GetRun:
    """Start a node, run the load generator against it in a spawned process, close both."""
    ctx = multiprocessing.get_context("spawn")
    node, _ = make_node(rate_per_s=rate_per_s)
    if rate_per_s > DEFAULT_RATE_PER_S:
        node.budget = AnswerBudget(RAISED_BYTES_PER_S, RAISED_BYTES_PER_S, RAISED_BYTES_PER_S)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=load_generator,
        args=(child, (NODE_ADDRESS, ECHONET_PORT), epc, duration_s, window),
        daemon=True,
    )
    result: dict[str, Any] = {"error": "load generator gave no result"}
    try:
        await node.start()
        proc.start()
        child.close()
        deadline = time.monotonic() + 30.0 + WARMUP_S + duration_s + DRAIN_S
        while time.monotonic() < deadline:
            if parent.poll():
                try:
                    result = parent.recv()
                except EOFError:
                    result = {"error": "load generator exited without a result"}
                break
            if not proc.is_alive() and not parent.poll():
                result = {"error": f"load generator exited with code {proc.exitcode}"}
                break
            await asyncio.sleep(0.05)
        else:
            result = {"error": "load generator timed out"}
    except OSError as err:
        result = {"error": f"{type(err).__name__}: {err}"}
    finally:
        if proc.pid is not None:  # started
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        child.close()
        parent.close()
        await node.close()
    budget = node.stats.bounded + node.stats.unanswered_budget
    return GetRun(epc, rate_per_s, result, node.stats.rate_limited, node.stats.received, budget)


async def get_throughput(epc: int, duration_s: float, window: int) -> GetRun:
    """Run at the default rate limit; redo with the limit raised if it dropped anything."""
    run = await get_run(epc, duration_s, window, DEFAULT_RATE_PER_S)
    if run.rate_limited == 0 and run.budget_limited == 0:
        return run
    raised = await get_run(epc, duration_s, window, RAISED_RATE_PER_S)
    raised.default_run = run
    return raised


# --- 2. multicast discovery ---------------------------------------------------------------------


@dataclass
class ScanResult:
    """Discovery of ``n`` nodes: the chosen window and the scan times of its tries."""

    n: int
    window_s: float | None = None  # None: no window found every node 3 times in a row
    times_s: list[float] = field(default_factory=list)
    node_frames_per_scan: float = float("nan")
    attempts: list[str] = field(default_factory=list)  # per window tried: how it went
    error: str = ""

    @property
    def worst_s(self) -> float:
        return max(self.times_s) if self.times_s else float("nan")


async def discovery_scan(n: int) -> ScanResult:
    """Start ``n`` nodes on 127.0.0.2…, pick the smallest reliable window, time its scans."""
    res = ScanResult(n)
    nodes: list[EchonetNode] = []
    expected: dict[str, bytes] = {}
    try:
        for i in range(n):
            address = f"127.0.0.{2 + i}"
            node, heater = make_node(address, serial=f"HW{i:07d}")
            nodes.append(node)
            await node.start()
            expected[address] = heater.device_id.to_echonet_id()
        await asyncio.sleep(0.3)  # let the start-up INF announcements settle
        for window in WINDOWS_S:
            times: list[float] = []
            frames: list[int] = []
            failure = ""
            for _ in range(TRIES):
                ctl = EchonetController(interface="127.0.0.1")
                await ctl.start()
                received0 = sum(nd.stats.received for nd in nodes)
                try:
                    t = time.perf_counter()
                    found = await asyncio.wait_for(ctl.discover(window_s=window), window + 10.0)
                    dt = time.perf_counter() - t
                except TimeoutError:
                    failure = "discover() did not return"
                    break
                finally:
                    await ctl.close()
                frames.append(sum(nd.stats.received for nd in nodes) - received0)
                got = {info.address: info.identification for info in found}
                if got != expected:
                    missing = len(set(expected) - set(got))
                    failure = f"{missing} of {n} missing" if missing else "wrong answers"
                    break
                times.append(dt)
                await asyncio.sleep(0.05)
            if failure:
                res.attempts.append(f"W={window:g} s: {failure}")
                await asyncio.sleep(0.3)
                continue
            res.window_s = window
            res.times_s = times
            res.node_frames_per_scan = sum(frames) / len(frames)
            res.attempts.append(f"W={window:g} s: all found {TRIES}×")
            break
    except OSError as err:
        res.error = f"{type(err).__name__}: {err}"
    finally:
        for node in nodes:
            await node.close()
    return res


# --- 3. sans-IO processing cost -----------------------------------------------------------------


def handle_cost_us(epc: int, seconds: float = HANDLE_SECONDS) -> float:
    """µs per ``NodeCore.handle`` of an encoded Get of ``epc`` (tight loop, no sockets)."""
    node, _ = make_node()
    core = node.core
    frame = get_frame(epc, tid=7)
    out = core.handle(frame)
    if len(out) != 1 or out[0][10] != ESV.GET_RES:
        raise RuntimeError(f"NodeCore.handle did not answer a Get of 0x{epc:02X} with Get_Res")
    for _ in range(1000):  # warm up
        core.handle(frame)
    batch = 2000
    calls = 0
    t = time.perf_counter()
    end = t + seconds
    while True:
        for _ in range(batch):
            core.handle(frame)
        calls += batch
        now = time.perf_counter()
        if now >= end or calls >= 10_000_000:
            break
    return (now - t) / calls * 1e6


# --- 4. amplification (issue 12) ---------------------------------------------------------------


@dataclass
class Amplification:
    """The issue's probe sent ``count`` times: bytes in per probe, answer sizes, totals."""

    rate_per_s: float
    request_bytes: int
    first_bytes: int
    last_bytes: int
    bytes_in: int
    bytes_out: int

    @property
    def factor(self) -> float:
        return self.bytes_out / self.bytes_in

    @property
    def last_factor(self) -> float:
        return self.last_bytes / self.request_bytes


def amplification(rate_per_s: float, count: int = PROBE_COUNT) -> Amplification:
    """The issue's probe (Get, OPC = 255 × 0xF4) from one source at ``rate_per_s`` through
    ``NodeCore.handle`` and the default ``AnswerBudget``, as ``EchonetNode`` composes them."""
    node, _ = make_node()
    budget = AnswerBudget()
    probe = encode_frame(
        Frame(1, CONTROLLER, HEATER, int(ESV.GET), tuple(Property(0xF4) for _ in range(255)))
    )
    sizes = []
    for i in range(count):
        now = i / rate_per_s
        answers = node.core.handle(probe, budget.limit("192.0.2.1", len(probe), now))
        size = sum(map(len, answers))
        budget.spend("192.0.2.1", len(probe), size, now)
        sizes.append(size)
    return Amplification(
        rate_per_s, len(probe), sizes[0], sizes[-1], len(probe) * count, sum(sizes)
    )


# --- report -------------------------------------------------------------------------------------


def fmt_int(v: float) -> str:
    return "n/a" if v != v else f"{round(v):,}".replace(",", " ")


def fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v != v else f"{v:,.{digits}f}".replace(",", " ")


@dataclass
class Results:
    light: GetRun
    heavy: GetRun
    scans: list[ScanResult]
    handle_light_us: float
    handle_heavy_us: float
    amplification: list[Amplification]


Line = tuple[str, str, str, bool | None]  # metric, value, target, verdict (None: no target)


def _get_lines(run: GetRun, name: str) -> list[Line]:
    label = f"Get/s answered by one node, {name} (EPC 0x{run.epc:02X})"
    if not run.ok:
        return [(label, f"error: {run.result['error']}", f"≥ {fmt_int(TARGET_GETS_PER_S)}", False)]
    r = run.result
    first = run.default_run
    if first is not None:
        limit = (
            f"raised to 10⁹/s for this run: the default {fmt_int(DEFAULT_RATE_PER_S)}/s "
            f"dropped {fmt_int(first.rate_limited)}, the byte budget cut "
            f"{fmt_int(first.budget_limited)} (at the defaults: "
            f"{fmt_int(first.gets_per_s)} Get/s, {fmt(100 * first.lost_share, 2)} % lost)"
        )
    else:
        limit = f"defaults ({fmt_int(run.rate_per_s)}/s, byte budget) not reached (0 dropped)"
    odd = [f"{fmt_int(r[k])} {k.replace('_', ' ')}" for k in ("unmatched", "wrong_esv") if r[k]]
    lost = f"{fmt(100 * run.lost_share, 3)} % ({fmt_int(r['lost'])} of {fmt_int(r['sent'])})"
    return [
        (
            label,
            fmt_int(run.gets_per_s),
            f"≥ {fmt_int(TARGET_GETS_PER_S)}",
            run.gets_per_s >= TARGET_GETS_PER_S,
        ),
        (
            "  requests lost (sent in window, unanswered)",
            lost + (f"; {', '.join(odd)}" if odd else ""),
            "",
            None,
        ),
        ("  node rate limit", limit, "", None),
    ]


def lines(res: Results, duration_s: float, window: int) -> list[Line]:
    out: list[Line] = []
    out += _get_lines(res.light, "light")
    out += _get_lines(res.heavy, "heavy")
    for scan in res.scans:
        label = f"discovery scan, {scan.n} nodes [s] (slowest of {TRIES})"
        target = f"< {TARGET_SCAN_S:g} s" if scan.n == TARGET_SCAN_N else ""
        if scan.window_s is None:
            why = scan.error or "; ".join(scan.attempts)
            out.append((label, f"not all found: {why}", target, False if target else None))
            continue
        passes = scan.worst_s < TARGET_SCAN_S if target else None
        out.append((label, f"{fmt(scan.worst_s, 3)} (W = {scan.window_s:g} s)", target, passes))
        spread = ", ".join(fmt(t, 3) for t in scan.times_s)
        node_ms = scan.node_frames_per_scan * res.handle_light_us / 1e3
        out.append((f"  {scan.n} nodes: the {TRIES} scans [s]", spread, "", None))
        out.append(
            (
                f"  {scan.n} nodes: node frames per scan (≈ node CPU, same loop)",
                f"{fmt_int(scan.node_frames_per_scan)} (≈ {fmt(node_ms, 1)} ms)",
                "",
                None,
            )
        )
    for name, epc, us in (
        ("light", LIGHT_EPC, res.handle_light_us),
        ("heavy", HEAVY_EPC, res.handle_heavy_us),
    ):
        out.append(
            (
                f"NodeCore.handle, Get {name} (EPC 0x{epc:02X}) [µs/request], sans-IO",
                f"{fmt(us, 1)} (ceiling {fmt_int(1e6 / us)}/s)",
                "",
                None,
            )
        )
    for amp in res.amplification:
        out.append(
            (
                f"amplification, issue 12 probe (Get 255 × 0xF4, {amp.request_bytes} B) at "
                f"{fmt_int(amp.rate_per_s)}/s, last answer [out/in]",
                f"{fmt(amp.last_factor, 2)} ({fmt_int(amp.last_bytes)} B)",
                f"≤ {TARGET_AMPLIFICATION:g}",
                amp.last_factor <= TARGET_AMPLIFICATION,
            )
        )
        out.append(
            (
                f"  first answer (allowance); all {fmt_int(PROBE_COUNT)} probes [out/in]",
                f"{fmt_int(amp.first_bytes)} B; {fmt(amp.factor, 3)}",
                "",
                None,
            )
        )
    return out


def notes(duration_s: float, window: int) -> list[str]:
    return [
        f"Get runs: node on {NODE_ADDRESS}:{ECHONET_PORT} (asyncio, this process; heater on a "
        "SimClock with speed 0, so its physics does not run); load generator = plain "
        f"non-blocking UDP socket on {LOADGEN_ADDRESS}:{ECHONET_PORT} in a spawned process, "
        f"{window} requests in flight, {duration_s:g} s measured after {WARMUP_S:g} s warm-up, "
        f"lost = unanswered after {REQUEST_TIMEOUT_S:g} s.",
        "Discovery: nodes in the same process and event loop as the controller (their work is "
        f"serialised with the controller's, which can only slow the scan); W = smallest of "
        f"{', '.join(f'{w:g}' for w in WINDOWS_S)} s finding every node {TRIES}× in a row.",
    ]


def verdict(v: bool | None) -> str:
    return "" if v is None else ("PASS" if v else "FAIL")


def rich_table(rows: list[Line], title: str, caption: list[str]) -> Table:
    table = Table(title=title, caption="\n".join(caption), caption_justify="left")
    for i, h in enumerate(("metric", "value", "target", "result")):
        table.add_column(h, justify="left" if i == 0 else "right")
    for metric, value, target, ok in rows:
        style = "" if ok is None else ("green" if ok else "red")
        table.add_row(Text(metric), Text(value), Text(target), Text(verdict(ok), style=style))
    return table


def markdown_table(rows: list[Line]) -> str:
    out = ["| metric | value | target | result |", "|---|---:|---:|---:|"]
    for metric, value, target, ok in rows:
        cells = [metric, value, target, verdict(ok)]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=3.0, help="seconds measured per Get run")
    p.add_argument("--window", type=int, default=64, help="Get requests in flight")
    p.add_argument("--sizes", default="20,50", help="comma-separated discovery node counts")
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not 0 < args.duration <= 60 or not 1 <= args.window <= 4096:
        p.error("--duration must be in (0, 60] and --window in [1, 4096]")
    if any(not 1 <= n <= 250 for n in args.sizes):
        p.error("--sizes: 1 to 250 nodes (127.0.0.2 … 127.0.0.251)")
    return args


def _step(console: Console, what: str, fn: Callable[[], T]) -> T:
    # a plain line, not a spinner: no refresh thread competing with the measurement
    console.print(f"[dim]{what}[/dim]")
    return fn()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    light = _step(
        console,
        f"Get throughput, EPC 0x{LIGHT_EPC:02X}…",
        lambda: asyncio.run(get_throughput(LIGHT_EPC, args.duration, args.window)),
    )
    heavy = _step(
        console,
        f"Get throughput, EPC 0x{HEAVY_EPC:02X}…",
        lambda: asyncio.run(get_throughput(HEAVY_EPC, args.duration, args.window)),
    )
    scans = [
        _step(console, f"discovery of {n} nodes…", partial(asyncio.run, discovery_scan(n)))
        for n in args.sizes
    ]
    h_light = _step(console, "NodeCore.handle…", lambda: handle_cost_us(LIGHT_EPC))
    h_heavy = _step(console, "NodeCore.handle…", lambda: handle_cost_us(HEAVY_EPC))
    amp = [
        _step(console, f"amplification probe at {rate:g}/s…", partial(amplification, rate))
        for rate in PROBE_RATES_PER_S
    ]
    res = Results(light, heavy, scans, h_light, h_heavy, amp)
    rows = lines(res, args.duration, args.window)
    caption = notes(args.duration, args.window)
    console.print(rich_table(rows, "ECHONET Lite node benchmark", caption))
    if args.markdown:
        print()
        print(markdown_table(rows))
        print()
        for note in caption:
            print(f"- {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
