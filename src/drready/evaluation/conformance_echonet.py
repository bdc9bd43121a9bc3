"""E1 conformance checker, ECHONET Lite half: black-box probe of a DR-ready water heater node.

:func:`check_echonet` talks to *any* ECHONET Lite node over UDP (no access to its objects) and
returns a :class:`~drready.evaluation.conformance.Report` of the checks below, each with the
exchanges seen as evidence. It serves E1 (conformance of a device against the DR-ready profile
``docs/profile-echonet-lite.md``), C1 (machine-readable communication) and F1–F6 as carried by
class 0x026B (MRA Release R) and the proposed maker-specific EPCs 0xF0–0xF4.

Checks
------
C1  the node answers; a Get of an EPC the object does not advertise is answered Get_SNA with
    PDC 0; the property maps 0x9F/0x9E decode and every EPC of 0x9F answers a Get; the maker
    EPCs 0xF0–0xF4 are listed all five (0xF0 and 0xF2 settable, no other of them) or none
    (EL-M2; a partial set of a maker not known to implement the profile is that maker's own:
    not observable); a Get sent from another source port is answered to destination port 3610
    (EL-T1).
F6  0x83 is 17 bytes starting 0xFE and equal on two reads; it equals the node profile's 0x83
    (not observable when the node profile does not answer 0x83); 0x8A is 3 bytes.
F5  0x84 (0–65533 W) and 0x85 (0–99 999 999 × 0.001 kWh, non-decreasing over two reads
    ``power_interval_s`` apart) → pass; both absent → not observable, "estimated only" when
    0xB2 (heating status) is there for the gateway's estimate, fail when even 0xB2 is absent.
F1  0xCB and 0xCC are present and decode (4 × u32 Wh, 4 × u16 Wh for 10, 13, 15, 17 h).
    Consistency, with a 25 % tolerance ``TOL`` on every bound, for each candidate hour h:
    0xCB[h] > 0 ⇒ 0xCC[h] > 0; 0xCC[h] ≤ P·1 h and 0xCB[h] ≤ P·4 h, P = max(0xDB, 0xDC, 0xDD)
    the rated input (the profile's shift window is h:00–h+4:00); 0xCB[h] ≤ 0xCC[h]·4 h; and
    0xCB[h] ≤ the electric energy to heat the *whole* tank 0xE2 by 50 K at COP 2
    (0xE2 L × 4.186 kJ/L/K × 50 K / 3600 / 2 ≈ 29.1 Wh/L). The full capacity, not 0xE2 − 0xE1
    (0xE1: the litres of hot water in the tank, EL-S4), is the bound because the tank keeps
    draining between the probe and the shift time; the 0xE1-based figure is given as
    evidence. Bounds whose inputs are absent are skipped and say so; with none applicable the
    check is not observable. Maker potential: when 0xF2/0xF3
    are present, 0xF2 is set to the first 2 h of its current window, 0xF3 must then decode
    with 4 slots, confidence ≤ 100 % and non-decreasing cumulative bounds; then 0xF2 set to a
    window in 2099 must make a Get of 0xF3 answer Get_SNA (EL-F3-2); 0xF2 is restored.
F2  SetC 0xC7 = 0x01 accepted; SetC 0xCA = 0x20 (out of range) refused with SetC_SNA (fail if
    accepted); SetC 0xCA = 0x0D accepted; Get 0xCA then answers 0x0D.
    Maker request (0xF0/0xF1 advertised): 0xF0 with direction 0x03, and with a start at minute
    15, each refused with SetC_SNA and 0xF1 unchanged (EL-F0-1); a well-formed 0xF0 for a window
    in 2099 (beyond every horizon, so the unit's plan is untouched) with a fresh request id,
    sent by SetGet with a Get of 0xF1, answers SetGet_Res and 0xF1 = rejected (0x43), 0 Wh,
    that id; sent again by SetC, then Get 0xF1, the same answer (EL-F0-2, EL-F1-1, EL-L1, EL-L2).
F3  after the 0x0D request the heating plan 0xF4 changed (fail if not); without 0xF4, F3 is
    judged only through the 0xCA read-back, and the evidence says so.
F4  0xF4 present and decodable: 8 + 4 n bytes, slot length 30 min, n ≤ 60, start at minute 0
    or 30, no 0xFFFE/0xFFFF overflow codes → pass; absent → not observable.

E1  the level the node reaches (:func:`level_of`): ``dr-ready`` — every check passes and the
    proposed maker EPCs work (0xF2/0xF3 potential and the 0xF4 plan pass); ``standard`` — the
    standard energy shift works (C1, F6, F1 0xCB/0xCC, every F2 check, F3 through the read-back
    pass) but not the maker EPCs, the installed base's level, which a home gateway serves
    through the standard shift (``docs/profile-echonet-lite.md``); ``none`` otherwise (FAIL).

Rule identifiers (EL-…) are those of ``docs/profile-echonet-lite.md`` § 10.

Afterwards 0xCA is cleared back to its earlier value (0x00 when it was unset), and 0xC7 and
0xF2 are restored where the probe changed them. Requests are sent again with doubling waits (a
node behind a slow adapter may take up to 20 s to answer; the controller learns its answer
time), and answers come to port 3610 of the checker's interface.
"""

from __future__ import annotations

import asyncio
import secrets
import struct

from drready.domain import ResponseStatus
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController, EchonetTimeoutError
from drready.echonet.errors import EchonetError
from drready.echonet.frame import (
    CONTROLLER,
    ECHONET_PORT,
    EOJ,
    ESV,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
)
from drready.echonet.propmap import decode_property_map
from drready.echonet.transport import Handler, open_endpoint
from drready.evaluation.conformance import Report, Verdict
from drready.gateway.capability import DEFAULT_EXTENSION_MAKERS, EXTENSION_GET, EXTENSION_SET

__all__ = [
    "DR_READY_CHECKS",
    "HEATER_EOJ",
    "HORIZON_F0_CHECK",
    "HORIZON_F3_CHECK",
    "LEVEL_CHECK",
    "MAKER_MAPS_CHECK",
    "MALFORMED_F0_CHECK",
    "PORT_CHECK",
    "check_echonet",
    "level_of",
]

HEATER_EOJ = EOJ(0x02, 0x6B, 0x01)
CANDIDATE_HOURS = (10, 13, 15, 17)
TOL = 1.25
"""Tolerance factor on every F1 plausibility bound."""
WH_PER_LITRE = 4.186 * 50 / 3.6 / 2.0
"""Electric Wh to heat one litre by 50 K at COP 2 (≈ 29.1 Wh/L)."""
SHIFT_WINDOW_H = 4
VALID_SHIFT = 0x0D
INVALID_SHIFT = 0x20
LEVEL_CHECK = "level reached"
MAKER_MAPS_CHECK = "maker EPCs 0xF0–0xF4: all five or none, 0xF0 and 0xF2 settable"
PORT_CHECK = "answers go to destination port 3610"
MALFORMED_F0_CHECK = "malformed 0xF0 refused with SetC_SNA"
HORIZON_F0_CHECK = "0xF0 beyond the horizon: Set_Res, 0xF1 rejected with the id; again, the same"
HORIZON_F3_CHECK = "0xF3 of a window beyond the horizon answers Get_SNA"
DR_READY_CHECKS = (
    MAKER_MAPS_CHECK,
    "maker potential 0xF2/0xF3 for a 2 h window",
    HORIZON_F3_CHECK,
    MALFORMED_F0_CHECK,
    HORIZON_F0_CHECK,
    "heating plan 0xF4 readable (8 + 4 n bytes)",
)
"""The checks that pass only when the proposed maker EPCs work (beyond the standard shift)."""


def level_of(report: Report) -> str:
    """``dr-ready``, ``standard`` or ``none`` from the checks run (see the module)."""
    verdicts = {c.name: c.verdict for c in report.checks if c.name != LEVEL_CHECK}
    if not verdicts or any(
        v is Verdict.FAIL for n, v in verdicts.items() if n not in DR_READY_CHECKS
    ):
        return "none"
    if all(verdicts.get(n) is Verdict.PASS for n in DR_READY_CHECKS):
        return "dr-ready"
    return "standard"


def _hex(edt: bytes | None, limit: int = 24) -> str:
    """Spaced hex of an EDT, cut after ``limit`` bytes (the length is then given)."""
    if edt is None:
        return "(no value, PDC 0)"
    if not edt:
        return "(empty)"
    text = " ".join(f"{b:02X}" for b in edt[:limit])
    return text + (f" … ({len(edt)} bytes)" if len(edt) > limit else "")


def _esv(esv: int) -> str:
    try:
        return ESV(esv).name
    except ValueError:
        return f"0x{esv:02X}"


class _Probe:
    """A controller that writes every exchange as one evidence line."""

    def __init__(self, ctl: EchonetController, host: str, eoj: EOJ) -> None:
        self.ctl = ctl
        self.host = host
        self.eoj = eoj

    async def request(
        self, esv: ESV, props: list[Property], eoj: EOJ | None = None
    ) -> tuple[Frame, str]:
        deoj = eoj or self.eoj
        res = await self.ctl.request(self.host, deoj, esv, tuple(props))
        sent = ", ".join(
            f"0x{p.epc:02X}" + (f"={p.edt.hex().upper()}" if p.edt else "") for p in props
        )
        got = ", ".join(
            f"0x{p.epc:02X}→{_hex(p.edt) if p.edt else 'PDC 0'}" for p in res.properties
        )
        return res, f"{esv.name} {deoj} {sent} → {_esv(res.esv)} {got}"

    async def get(
        self, epcs: list[int], ev: list[str], eoj: EOJ | None = None
    ) -> dict[int, bytes | None]:
        out: dict[int, bytes | None] = {e: None for e in epcs}
        for i in range(0, len(epcs), 8):
            chunk = epcs[i : i + 8]
            res, line = await self.request(ESV.GET, [Property(e) for e in chunk], eoj)
            ev.append(line)
            for p in res.properties:
                out[p.epc] = p.edt or None
        return out

    async def set(self, epc: int, edt: bytes, ev: list[str], eoj: EOJ | None = None) -> bool:
        """SetC; True when answered Set_Res with PDC 0 for ``epc``."""
        res, line = await self.request(ESV.SETC, [Property(epc, edt)], eoj)
        ev.append(line)
        return res.esv == ESV.SET_RES and all(p.pdc == 0 for p in res.properties if p.epc == epc)


def _uint(edt: bytes | None) -> int | None:
    return None if edt is None else int.from_bytes(edt, "big")


async def check_echonet(
    address: str,
    *,
    interface: str = "127.0.0.1",
    eoj: EOJ = HEATER_EOJ,
    timeout_s: float = 0.5,
    retries: int = 4,
    power_interval_s: float = 1.0,
) -> Report:
    """Probe the node at ``address`` (object ``eoj``) and return the conformance report."""
    report = Report(f"echonet {address} {eoj}")
    async with EchonetController(interface=interface, timeout_s=timeout_s, retries=retries) as ctl:
        probe = _Probe(ctl, address, eoj)
        restore: list[tuple[int, bytes]] = []
        try:
            await _run_checks(probe, report, restore, power_interval_s, interface)
            level = level_of(report)
            report.add(
                "E1",
                LEVEL_CHECK,
                Verdict.FAIL if level == "none" else Verdict.PASS,
                [
                    {
                        "dr-ready": "dr-ready: the standard energy shift and the proposed maker "
                        "EPCs 0xF0–0xF4",
                        "standard": "standard: the standard energy shift (0xC7–0xCF) only; no "
                        "working maker EPCs 0xF0–0xF4",
                        "none": "none: the standard energy shift does not pass",
                    }[level]
                ],
            )
        except EchonetTimeoutError as err:
            report.add("C1", "node answers every request", Verdict.FAIL, [str(err)])
        finally:
            ev: list[str] = []
            for epc, edt in reversed(restore):
                try:
                    await probe.set(epc, edt, ev)
                except EchonetError as err:
                    ev.append(f"restore 0x{epc:02X} failed: {err}")
    return report


async def _run_checks(
    probe: _Probe,
    report: Report,
    restore: list[tuple[int, bytes]],
    power_interval_s: float,
    interface: str,
) -> None:
    maps = await _check_maps(probe, report)
    get_map, set_map = maps
    await _check_unknown_epc(probe, report, get_map, set_map)
    await _check_port(probe, report, interface)
    maker = await _check_identity(probe, report)
    await _check_maker_maps(report, get_map, set_map, maker)
    await _check_power(probe, report, power_interval_s)
    await _check_potential(probe, report, get_map, set_map, restore)
    await _check_maker_request(probe, report, get_map, set_map)
    await _check_request(probe, report, get_map, restore)


async def _check_port(probe: _Probe, report: Report, interface: str) -> None:
    """EL-T1: a Get of 0x80 sent from an ephemeral source port must be answered to port 3610
    of the sender (where the checker's controller receives), not to the source port."""
    shared = await open_endpoint(interface, ECHONET_PORT)
    private = await open_endpoint(interface, 0)
    tid = shared.next_tid()
    seen: dict[str, list[int]] = {"3610": [], "source": []}

    def on(where: str) -> Handler:
        def handler(data: bytes, addr: tuple[str, int]) -> None:
            try:
                frame = decode_frame(data)
            except EchonetError:
                return
            if frame.tid == tid and addr[0] == probe.host and frame.esv == ESV.GET_RES:
                seen[where].append(addr[1])

        return handler

    on_shared, on_private = on("3610"), on("source")
    shared.attach_controller(on_shared)
    private.attach_controller(on_private)
    request = encode_frame(Frame(tid, CONTROLLER, probe.eoj, int(ESV.GET), (Property(0x80),)))
    ev = [f"Get 0x80 (TID {tid}) from {interface}:{private.port} to port 3610"]
    try:
        wait = probe.ctl.timeout_s
        for _ in range(max(1, probe.ctl.retries)):
            private.sendto(request, (probe.host, ECHONET_PORT))
            deadline = asyncio.get_running_loop().time() + wait
            while not (seen["3610"] or seen["source"]):
                if asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(0.01)
            if seen["3610"] or seen["source"]:
                break
            wait = min(2 * wait, 20.0)
    finally:
        shared.detach(on_shared)
        private.detach(on_private)
    if seen["3610"]:
        ev.append("answered to port 3610")
        verdict = Verdict.PASS
    elif seen["source"]:
        ev.append("answered to the request's source port, not to 3610")
        verdict = Verdict.FAIL
    else:
        ev.append("no answer to a request from another source port")
        verdict = Verdict.FAIL
    report.add("C1", PORT_CHECK, verdict, ev)


async def _check_maker_maps(
    report: Report, get_map: set[int], set_map: set[int], maker: bytes | None
) -> None:
    """EL-M2: the profile's maker EPCs are listed all five or none, with its access rules."""
    in_get = get_map & EXTENSION_GET
    in_set = set_map & EXTENSION_GET
    code = maker.hex().upper() if maker is not None else "?"
    ev = [
        "0x9F lists " + (", ".join(f"0x{e:02X}" for e in sorted(in_get)) or "none of 0xF0–0xF4"),
        "0x9E lists " + (", ".join(f"0x{e:02X}" for e in sorted(in_set)) or "none of 0xF0–0xF4"),
        f"maker code {code}",
    ]
    if not in_get and not in_set:
        ev.insert(0, "standard-only: no maker EPCs of this profile")
        verdict = Verdict.PASS
    elif in_get == EXTENSION_GET and in_set == EXTENSION_SET:
        verdict = Verdict.PASS
    elif code in DEFAULT_EXTENSION_MAKERS:
        ev.insert(
            0, "a maker implementing the profile must list all of 0xF0–0xF4, 0xF0/0xF2 settable"
        )
        verdict = Verdict.FAIL
    else:
        ev.insert(
            0, "0xF0–0xF4 are this maker's own EPCs, not the profile's (served standard-only)"
        )
        verdict = Verdict.NOT_OBSERVABLE
    report.add("C1", MAKER_MAPS_CHECK, verdict, ev)


async def _check_maker_request(
    probe: _Probe, report: Report, get_map: set[int], set_map: set[int]
) -> None:
    """EL-F0-1, EL-F0-2, EL-F1-1, EL-L1, EL-L2 through requests that change no plan."""
    if not ({0xF0, 0xF1} <= get_map and 0xF0 in set_map):
        for name in (MALFORMED_F0_CHECK, HORIZON_F0_CHECK):
            report.add("F2", name, Verdict.NOT_OBSERVABLE, ["0xF0/0xF1 not advertised"])
        return
    ev: list[str] = []
    before = (await probe.get([0xF1], ev))[0xF1]
    good = bytes.fromhex("01 0833 01 01 0A 00 001E 00000001")  # up, 2099-01-01 10:00, 30 min, 1 Wh
    problems = []
    for why, edt in (
        ("direction 0x03", b"\x03" + good[1:]),
        ("start at minute 15", good[:6] + b"\x0f" + good[7:]),
    ):
        res, line = await probe.request(ESV.SETC, [Property(0xF0, edt)])
        ev.append(line)
        if res.esv != ESV.SETC_SNA:
            problems.append(f"0xF0 with {why} not refused with SetC_SNA")
    after = (await probe.get([0xF1], ev))[0xF1]
    if after != before:
        problems.append("0xF1 changed after refused 0xF0s")
    ev[:0] = problems
    report.add("F2", MALFORMED_F0_CHECK, Verdict.FAIL if problems else Verdict.PASS, ev)

    ev = []
    problems = []
    request_id = f"drready-conformance-{secrets.token_hex(4)}"
    edt = good + ext.encode_request_id(request_id)
    res = await probe.ctl.request(
        probe.host, probe.eoj, ESV.SETGET, (Property(0xF0, edt),), (Property(0xF1),)
    )
    answer = next((p.edt for p in res.get_properties if p.epc == 0xF1), b"")
    ev.append(
        f"SETGET {probe.eoj} 0xF0={edt.hex().upper()}, get 0xF1 → {_esv(res.esv)} "
        f"0xF1→{_hex(answer) if answer else 'PDC 0'}"
    )
    if res.esv != ESV.SETGET_RES:
        problems.append(f"SetGet answered {_esv(res.esv)}, not SetGet_Res")
    first = _decoded_response(answer, problems)
    if first is not None and (first.status, first.accepted_wh, first.request_id) != (
        ResponseStatus.REJECTED,
        0,
        request_id,
    ):
        problems.append(f"0xF1 must be rejected, 0 Wh, {request_id}: got {first}")
    if await probe.set(0xF0, edt, ev):
        again = (await probe.get([0xF1], ev))[0xF1]
        if again != answer:
            problems.append("the same request sent again got another answer")
    else:
        problems.append("SetC of a well-formed 0xF0 refused")
    ev[:0] = problems
    report.add("F2", HORIZON_F0_CHECK, Verdict.FAIL if problems else Verdict.PASS, ev)


def _decoded_response(edt: bytes, problems: list[str]) -> ext.DrResponseEdt | None:
    try:
        return ext.decode_dr_response(edt)
    except EchonetError as err:
        problems.append(f"0xF1 does not decode: {err}")
        return None


async def _check_maps(probe: _Probe, report: Report) -> tuple[set[int], set[int]]:
    ev: list[str] = []
    got = await probe.get([0x9F, 0x9E], ev)
    try:
        get_map = set(decode_property_map(got[0x9F] or b"", epc=0x9F))
        set_map = set(decode_property_map(got[0x9E] or b"\x00", epc=0x9E))
    except (EchonetError, ValueError, IndexError) as err:
        ev.append(f"property map does not decode: {err}")
        report.add(
            "C1", "property maps 0x9F/0x9E decode; advertised Get EPCs answer", Verdict.FAIL, ev
        )
        return set(), set()
    ev.append(f"0x9F: {len(get_map)} EPCs, 0x9E: {len(set_map)} EPCs")
    values = await probe.get(sorted(get_map), ev)
    silent = [e for e, v in values.items() if v is None]
    if silent:
        ev.insert(0, "advertised but not answered: " + ", ".join(f"0x{e:02X}" for e in silent))
    verdict = Verdict.FAIL if silent or not get_map else Verdict.PASS
    report.add("C1", "property maps 0x9F/0x9E decode; advertised Get EPCs answer", verdict, ev)
    return get_map, set_map


async def _check_unknown_epc(
    probe: _Probe, report: Report, get_map: set[int], set_map: set[int]
) -> None:
    unknown = next((e for e in range(0xFF, 0x7F, -1) if e not in get_map | set_map), 0xFF)
    res, line = await probe.request(ESV.GET, [Property(unknown)])
    ok = (
        res.esv == ESV.GET_SNA
        and all(p.pdc == 0 for p in res.properties if p.epc == unknown)
        and any(p.epc == unknown for p in res.properties)
    )
    report.add(
        "C1",
        f"Get of unknown EPC 0x{unknown:02X} → Get_SNA, PDC 0",
        Verdict.PASS if ok else Verdict.FAIL,
        [line],
    )


async def _check_identity(probe: _Probe, report: Report) -> bytes | None:
    """F6 checks; returns the maker code 0x8A as read."""
    ev: list[str] = []
    first = await probe.get([0x83, 0x8A], ev)
    second = (await probe.get([0x83], ev))[0x83]
    ident, maker = first[0x83], first[0x8A]
    problems = []
    if ident is None:
        problems.append("0x83 absent")
    else:
        if len(ident) != 17 or ident[0] != 0xFE:
            problems.append(f"0x83 must be 17 bytes starting 0xFE, got {len(ident)} bytes")
        if second != ident:
            problems.append("0x83 differs between two reads")
    if problems:
        ev[:0] = problems
    report.add(
        "F6",
        "identification 0x83: 17 bytes, 0xFE prefix, stable",
        Verdict.FAIL if problems else Verdict.PASS,
        ev,
    )
    ev_m: list[str] = []
    ok_m = maker is not None and len(maker) == 3
    ev_m.append(f"Get 0x8A → {_hex(maker)}")
    report.add(
        "F6", "maker code 0x8A present (3 bytes)", Verdict.PASS if ok_m else Verdict.FAIL, ev_m
    )

    ev_p: list[str] = []
    try:
        prof = (await probe.get([0x83], ev_p, NODE_PROFILE))[0x83]
    except EchonetTimeoutError as err:
        prof = None
        ev_p.append(f"node profile 0x0EF001 silent: {err}")
    if prof is None or ident is None:
        ev_p.insert(0, "node profile 0x83 (or device 0x83) not available")
        verdict = Verdict.NOT_OBSERVABLE
    else:
        verdict = Verdict.PASS if prof == ident else Verdict.FAIL
        if prof != ident:
            ev_p.insert(0, f"device 0x83 {_hex(ident)} ≠ node profile 0x83 {_hex(prof)}")
    report.add("F6", "0x83 equals the node profile's 0x83", verdict, ev_p)
    return maker


async def _check_power(probe: _Probe, report: Report, interval_s: float) -> None:
    ev: list[str] = []
    first = await probe.get([0x84, 0x85, 0xB2], ev)
    name = "measured power 0x84 and cumulative energy 0x85"
    if first[0x84] is None and first[0x85] is None:
        if first[0xB2] is not None:
            ev.insert(0, "estimated only: no 0x84/0x85; the gateway estimates from 0xB2")
            report.add("F5", name, Verdict.NOT_OBSERVABLE, ev)
        else:
            ev.insert(0, "neither 0x84/0x85 nor heating status 0xB2: no power at all")
            report.add("F5", name, Verdict.FAIL, ev)
        return
    await asyncio.sleep(interval_s)
    second = await probe.get([0x84, 0x85], ev)
    problems = []
    for epc, size in ((0x84, 2), (0x85, 4)):
        for edt in (first[epc], second[epc]):
            if edt is None or len(edt) != size:
                problems.append(f"0x{epc:02X} must be {size} bytes, got {_hex(edt)}")
    w1, w2 = _uint(first[0x84]), _uint(second[0x84])
    if any(w is not None and w > 65533 for w in (w1, w2)):
        problems.append(f"0x84 outside 0–65533 W: {w1}, {w2}")
    e1, e2 = _uint(first[0x85]), _uint(second[0x85])
    if any(e is not None and e > 99_999_999 for e in (e1, e2)):
        problems.append(f"0x85 outside 0–99999999: {e1}, {e2}")
    if e1 is not None and e2 is not None and e2 < e1:
        problems.append(f"0x85 decreased over {interval_s:g} s: {e1} → {e2}")
    ev[:0] = problems or [f"0x84 {w1} W, {w2} W; 0x85 {e1} → {e2} (0.001 kWh)"]
    report.add("F5", name, Verdict.FAIL if problems else Verdict.PASS, ev)


def _u32x4(edt: bytes | None) -> list[int] | None:
    if edt is None or len(edt) != 16:
        return None
    return list(struct.unpack(">IIII", edt))


def _u16x4(edt: bytes | None) -> list[int] | None:
    if edt is None or len(edt) != 8:
        return None
    return list(struct.unpack(">HHHH", edt))


async def _check_potential(
    probe: _Probe,
    report: Report,
    get_map: set[int],
    set_map: set[int],
    restore: list[tuple[int, bytes]],
) -> None:
    ev: list[str] = []
    got = await probe.get([0xCB, 0xCC, 0xDB, 0xDC, 0xDD, 0xE1, 0xE2], ev)
    cb, cc = _u32x4(got[0xCB]), _u16x4(got[0xCC])
    present_ok = cb is not None and cc is not None
    report.add(
        "F1",
        "0xCB (4 × u32 Wh) and 0xCC (4 × u16 Wh) present",
        Verdict.PASS if present_ok else Verdict.FAIL,
        list(ev),
    )
    ev_c: list[str] = []
    if cb is None or cc is None:
        report.add("F1", "0xCB/0xCC consistent", Verdict.NOT_OBSERVABLE, ["0xCB/0xCC missing"])
    else:
        rated = [w for w in (_uint(got[e]) for e in (0xDB, 0xDC, 0xDD)) if w is not None]
        p_max = max(rated) if rated else None
        cap, rem = _uint(got[0xE2]), _uint(got[0xE1])
        problems: list[str] = []
        for i, h in enumerate(CANDIDATE_HOURS):
            b, c = cb[i], cc[i]
            if b > 0 and c == 0:
                problems.append(f"{h} h: 0xCB {b} Wh > 0 but 0xCC 0 Wh/h")
            if b > c * SHIFT_WINDOW_H * TOL:
                problems.append(f"{h} h: 0xCB {b} Wh > 0xCC {c} Wh/h × {SHIFT_WINDOW_H} h")
            if p_max is not None and c > p_max * TOL:
                problems.append(f"{h} h: 0xCC {c} Wh/h > rated {p_max} W × 1 h")
            if p_max is not None and b > p_max * SHIFT_WINDOW_H * TOL:
                problems.append(f"{h} h: 0xCB {b} Wh > rated {p_max} W × {SHIFT_WINDOW_H} h")
            if cap is not None and b > cap * WH_PER_LITRE * TOL:
                problems.append(f"{h} h: 0xCB {b} Wh > whole tank {cap} L × {WH_PER_LITRE:.1f}")
        ev_c.append(f"0xCB {cb} Wh; 0xCC {cc} Wh/h at {list(CANDIDATE_HOURS)} h")
        ev_c.append(
            f"rated max {p_max} W"
            if p_max is not None
            else "rated power bound skipped: no 0xDB–0xDD"
        )
        if cap is not None:
            ev_c.append(f"tank bound {cap * WH_PER_LITRE:.0f} Wh (0xE2 {cap} L, 50 K, COP 2)")
            if rem is not None:
                ev_c.append(
                    f"empty part now: {max(cap - rem, 0) * WH_PER_LITRE:.0f} Wh (0xE1 {rem} L hot)"
                )
        else:
            ev_c.append("tank bound skipped: no 0xE2")
        ev_c[:0] = problems
        report.add("F1", "0xCB/0xCC consistent", Verdict.FAIL if problems else Verdict.PASS, ev_c)
    await _check_maker_potential(probe, report, get_map, set_map, restore)


async def _check_maker_potential(
    probe: _Probe,
    report: Report,
    get_map: set[int],
    set_map: set[int],
    restore: list[tuple[int, bytes]],
) -> None:
    name = "maker potential 0xF2/0xF3 for a 2 h window"
    if not {0xF2, 0xF3} <= get_map or 0xF2 not in set_map:
        for check in (name, HORIZON_F3_CHECK):
            report.add("F1", check, Verdict.NOT_OBSERVABLE, ["0xF2/0xF3 not advertised"])
        return
    ev: list[str] = []
    window = (await probe.get([0xF2], ev))[0xF2]
    if window is None or len(window) != 8:
        report.add("F1", name, Verdict.FAIL, ["0xF2 must be 8 bytes", *ev])
        report.add("F1", HORIZON_F3_CHECK, Verdict.NOT_OBSERVABLE, ["0xF2 unreadable"])
        return
    restore.append((0xF2, window))
    problems: list[str] = []
    if not await probe.set(0xF2, window[:6] + struct.pack(">H", 120), ev):
        problems.append("0xF2 refused a 2 h window at its own start")
    pot = (await probe.get([0xF3], ev))[0xF3]
    if pot is None or len(pot) < 10 or len(pot) != 10 + 10 * pot[9]:
        problems.append("0xF3 does not decode (10 + 10 n bytes)")
    else:
        up, down, conf, n = struct.unpack(">IIBB", pot[:10])
        rows = [struct.unpack(">HHHHH", pot[10 + 10 * i : 20 + 10 * i]) for i in range(n)]
        ev.insert(0, f"up {up} Wh, down {down} Wh, confidence {conf} %, {n} slots")
        if n != 4:
            problems.append(f"a 2 h window must give 4 slots, got {n}")
        if conf > 100:
            problems.append(f"confidence {conf} % > 100")
        for i, (_b, lo, hi, cmin, cmax) in enumerate(rows):
            if lo > hi or cmin > cmax:
                problems.append(f"slot {i}: least > most")
            if max(_b, lo, hi, cmin, cmax) >= 0xFFFE:
                problems.append(f"slot {i}: overflow code 0xFFFE/0xFFFF (values saturate)")
        for i in range(1, len(rows)):
            if rows[i][3] < rows[i - 1][3] or rows[i][4] < rows[i - 1][4]:
                problems.append(f"slot {i}: cumulative energy decreases")
    ev[:0] = problems
    report.add("F1", name, Verdict.FAIL if problems else Verdict.PASS, ev)
    ev = []
    far = bytes.fromhex("0833 01 01 0A 00 0078")  # 2099-01-01 10:00, 120 min
    if await probe.set(0xF2, far, ev):
        res, line = await probe.request(ESV.GET, [Property(0xF3)])
        ev.append(line)
        ok = res.esv == ESV.GET_SNA and all(p.pdc == 0 for p in res.properties)
    else:
        ev.insert(0, "0xF2 refused a well-formed window in 2099 (it must take it, EL-F2-1)")
        ok = False
    report.add("F1", HORIZON_F3_CHECK, Verdict.PASS if ok else Verdict.FAIL, ev)


async def _check_request(
    probe: _Probe, report: Report, get_map: set[int], restore: list[tuple[int, bytes]]
) -> None:
    ev0: list[str] = []
    before = await probe.get([0xC7, 0xCA] + ([0xF4] if 0xF4 in get_map else []), ev0)
    if before[0xC7] is not None:
        restore.append((0xC7, before[0xC7]))
    if before[0xCA] is not None:
        restore.append((0xCA, before[0xCA]))
    else:
        restore.append((0xCA, b"\x00"))

    ev: list[str] = list(ev0)
    ok = await probe.set(0xC7, b"\x01", ev)
    report.add("F2", "participation 0xC7 = 0x01 accepted", Verdict.PASS if ok else Verdict.FAIL, ev)

    ev = []
    res, line = await probe.request(ESV.SETC, [Property(0xCA, bytes([INVALID_SHIFT]))])
    ev.append(line)
    refused = res.esv == ESV.SETC_SNA
    report.add(
        "F2",
        "out-of-range 0xCA = 0x20 refused with SetC_SNA",
        Verdict.PASS if refused else Verdict.FAIL,
        ev,
    )

    ev = []
    accepted = await probe.set(0xCA, bytes([VALID_SHIFT]), ev)
    report.add("F2", "valid 0xCA = 0x0D accepted", Verdict.PASS if accepted else Verdict.FAIL, ev)

    ev = []
    after = await probe.get([0xCA] + ([0xF4] if 0xF4 in get_map else []), ev)
    read_back = after[0xCA] == bytes([VALID_SHIFT])
    report.add("F2", "Get 0xCA reads back 0x0D", Verdict.PASS if read_back else Verdict.FAIL, ev)

    if 0xF4 in get_map:
        plan_before, plan_after = before.get(0xF4), after.get(0xF4)
        changed = plan_before is not None and plan_after is not None and plan_before != plan_after
        ev_p = [
            "0xF4 changed after the shift request"
            if changed
            else "0xF4 unchanged after the shift request (no re-plan seen)",
            f"before: {_hex(plan_before)}",
            f"after:  {_hex(plan_after)}",
        ]
        report.add(
            "F3", "re-plan after a shift request", Verdict.PASS if changed else Verdict.FAIL, ev_p
        )
        plan_problems = _plan_problems(plan_after)
        report.add(
            "F4",
            "heating plan 0xF4 readable (8 + 4 n bytes)",
            Verdict.FAIL if plan_problems else Verdict.PASS,
            [*plan_problems, f"Get 0xF4 → {len(plan_after or b'')} bytes: {_hex(plan_after)}"],
        )
    else:
        report.add(
            "F3",
            "re-plan after a shift request",
            Verdict.PASS if read_back else Verdict.FAIL,
            ["observed only through the 0xCA read-back: no 0xF4 heating plan", *ev],
        )
        report.add(
            "F4", "heating plan 0xF4 readable", Verdict.NOT_OBSERVABLE, ["0xF4 not advertised"]
        )


def _plan_problems(plan: bytes | None) -> list[str]:
    """What breaks EL-F4-1, EL-E3 or EL-E6 in a 0xF4 EDT (empty when none)."""
    if plan is None or len(plan) < 8 or len(plan) != 8 + 4 * plan[7]:
        return ["0xF4 must be 8 + 4 n bytes"]
    problems = []
    if plan[5] not in (0, 30):
        problems.append(f"plan start minute {plan[5]}: must be 0 or 30")
    if plan[6] != 30:
        problems.append(f"slot length {plan[6]} min: must be 30")
    if plan[7] > ext.MAX_PLAN_SLOTS:
        problems.append(f"{plan[7]} slots: at most {ext.MAX_PLAN_SLOTS}")
    words = struct.unpack(f">{2 * plan[7]}H", plan[8:])
    if any(w >= 0xFFFE for w in words):
        problems.append("overflow code 0xFFFE/0xFFFF in a u16 field (values saturate at 0xFFFD)")
    return problems
