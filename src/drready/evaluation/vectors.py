"""Published test vectors of drready's profiles and method (D1, D4, E1; issue 17 item 3): the
ECHONET Lite vectors, and the :class:`Vector` every kind of vector is published as.

``drready profile vectors --out DIR`` (:mod:`drready.cli.profile`) writes what
:func:`drready.evaluation.publish_vectors.write_vectors` gathers, so that a maker's adapter
engineer, an aggregator's VEN engineer and a regulator's analyst can test an implementation of
``docs/profile-echonet-lite.md``, ``docs/profile-openadr3.md`` and
``docs/dr-potential-method.md`` without drready's code:

* ``echonet/`` — one JSON file per ECHONET Lite message of the profile: the frame as hex with the
  EDT and its decoded meaning field by field (:func:`echonet_vectors`). Layout vectors are built
  from :mod:`drready.echonet.extension`'s encoders; exchange vectors (a request and the answer
  of a real node, and after a Set the INF announcing what it changed among the EPCs of 0x9D)
  from a simulated DR-ready unit on a stopped clock, so they are deterministic;
* ``openadr/`` — OpenADR 3.1.0 objects as JSON, built by :mod:`drready.openadr.profile`'s own
  builders (:mod:`drready.evaluation.openadr_vectors`), each valid against the 3.1.0 schema;
* ``schemas/`` — a JSON Schema (draft 2020-12) for every private payload type of the OpenADR
  profile (:mod:`drready.evaluation.openadr_vectors`);
* ``method/`` — inputs → expected baseline, envelope and plan for a handful of households and
  windows (:mod:`drready.evaluation.method_vectors`);
* ``index.json`` — every file with its one-line meaning.

Every file name says what it holds: ``f2-up-request-id.json``, ``f2-refused-direction.json``,
``f1-potential-report-group.json`` …
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DEFAULT_TZ, DeviceId, Direction, ResponseStatus
from drready.domain.time import zone
from drready.echonet import extension as ext
from drready.echonet.errors import EchonetError
from drready.echonet.frame import CONTROLLER, EOJ, ESV, Frame, Property, decode_frame, encode_frame
from drready.echonet.node import NodeCore
from drready.echonet.objects import node_profile, water_heater_object
from drready.planning.unit import UnitConfig

__all__ = ["VECTOR_CLOCK", "Vector", "decode_edt", "echonet_vectors"]

TZ = zone(DEFAULT_TZ)
HEATER = EOJ(0x02, 0x6B, 0x01)
VECTOR_CLOCK = datetime(2026, 5, 11, 20, 0, tzinfo=TZ)
"""The simulated unit's (stopped) clock for the exchange vectors: 20:00 JST, 11 May 2026."""
MAKER_CODE = "000005"


@dataclass(frozen=True)
class Vector:
    """One published vector: where it goes, what it shows, and its JSON body."""

    path: str
    summary: str
    body: dict[str, Any]


def _unit() -> tuple[NodeCore, SimulatedWaterHeater]:
    """A DR-ready unit (4 persons, 460 L, two shift times) on the stopped vector clock."""
    config = UnitConfig(
        device_id=DeviceId(maker_code=MAKER_CODE, serial="VECTOR0001"), persons=4, tank_l=460.0
    )
    heater = SimulatedWaterHeater(config, SimClock(VECTOR_CLOCK, speed=0.0), seed=3)
    maker = bytes.fromhex(MAKER_CODE)
    obj = water_heater_object(heater, maker)
    profile = node_profile(maker, heater.device_id.to_echonet_id(), [obj.eoj])
    return NodeCore([profile, obj]), heater


def _frame_json(raw: bytes) -> dict[str, Any]:
    f = decode_frame(raw)

    def props(ps: tuple[Property, ...]) -> list[dict[str, Any]]:
        return [
            {"epc": f"0x{p.epc:02X}", "pdc": len(p.edt), "edt": p.edt.hex().upper()} for p in ps
        ]

    out: dict[str, Any] = {
        "hex": raw.hex().upper(),
        "tid": f.tid,
        "seoj": str(f.seoj),
        "deoj": str(f.deoj),
        "esv": f"0x{f.esv:02X} {ESV(f.esv).name}",
        "properties": props(f.properties),
    }
    if f.get_properties or f.esv in (ESV.SETGET, ESV.SETGET_RES, ESV.SETGET_SNA):
        out["get_properties"] = props(f.get_properties)
    return out


def _time(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M+09:00")


def decode_edt(epc: int, edt: bytes) -> dict[str, Any]:
    """The decoded meaning of an EDT of this profile, field by field (docs § 5, § 4)."""
    if epc == ext.EPC_DR_REQUEST:
        r = ext.decode_dr_request(edt, TZ)
        return {
            "direction": r.direction.value,
            "window_start": _time(r.start),
            "window_length_min": int((r.end - r.start).total_seconds() // 60),
            "amount_wh": r.amount_wh,
            "request_id": r.request_id,
        }
    if epc == ext.EPC_DR_RESPONSE:
        a = ext.decode_dr_response(edt)
        return {
            "status": "none" if a.status is None else a.status.value,
            "accepted_wh": a.accepted_wh,
            "request_id": a.request_id,
        }
    if epc == ext.EPC_POTENTIAL_WINDOW:
        start, end = ext.decode_window(edt, TZ)
        return {
            "window_start": _time(start),
            "window_length_min": int((end - start).total_seconds() // 60),
        }
    if epc == ext.EPC_POTENTIAL:
        p = ext.decode_potential(edt)
        return {
            "up_wh": p.up_wh,
            "down_wh": p.down_wh,
            "confidence_percent": round(p.confidence * 100),
            "slots": [
                {
                    "baseline_w": p.baseline_w[i],
                    "least_w": p.min_w[i],
                    "most_w": p.max_w[i],
                    "cumulative_least_wh": p.cum_min_wh[i],
                    "cumulative_most_wh": p.cum_max_wh[i],
                }
                for i in range(len(p.baseline_w))
            ],
        }
    if epc == ext.EPC_PLAN:
        start, minutes, energy, stored = ext.decode_plan(edt, TZ)
        return {
            "plan_start": _time(start),
            "slot_length_min": minutes,
            "slots": [
                {"energy_wh": e, "stored_heat_wh": s} for e, s in zip(energy, stored, strict=True)
            ],
        }
    if epc in (0xCB, 0xCE):
        hours = (10, 13, 15, 17) if epc == 0xCB else (13, 15, 17)
        values = struct.unpack(f">{len(hours)}I", edt)
        return {f"at{h:02d}00_wh": v for h, v in zip(hours, values, strict=True)}
    if epc in (0xCC, 0xCF):
        hours = (10, 13, 15, 17) if epc == 0xCC else (13, 15, 17)
        values = struct.unpack(f">{len(hours)}H", edt)
        return {f"at{h:02d}00_wh_per_h": v for h, v in zip(hours, values, strict=True)}
    if epc in (0xCA, 0xCD):
        return {"shift_time": "none" if edt[0] == 0 else f"{edt[0]:02d}:00"}
    if epc == 0xC7:
        return {"participation": edt[0] == 0x01}
    if epc == 0xB2:
        return {"heating": edt[0] == 0x41}
    if epc == 0x84:
        return {"instantaneous_power_w": int.from_bytes(edt, "big")}
    if epc == 0x85:
        return {"cumulative_energy_kwh": int.from_bytes(edt, "big") / 1000.0}
    if epc == 0x83:
        return {
            "prefix": f"0x{edt[0]:02X}",
            "maker_code": edt[1:4].hex().upper(),
            "serial": edt[4:].rstrip(b"\x00").decode("ascii"),
        }
    if epc == 0x8A:
        return {"maker_code": edt.hex().upper()}
    if epc in (0xDB, 0xDC, 0xDD):
        return {"rated_power_w": int.from_bytes(edt, "big")}
    if epc == 0xC9:
        return {"energy_shifts": edt[0]}
    if epc == 0xD1:
        return {"supply_temp_c": edt[0]}
    if epc == 0xD8:
        return {"suppliable_hot_water_l": int.from_bytes(edt, "big")}
    if epc == 0xE1:
        return {"hot_water_in_tank_l": int.from_bytes(edt, "big")}
    if epc == 0xE2:
        return {"tank_capacity_l": int.from_bytes(edt, "big")}
    if epc == 0xB0:
        modes = {0x41: "automatic", 0x42: "manual heating", 0x43: "manual, not heating"}
        return {"automatic_heating": modes.get(edt[0], f"0x{edt[0]:02X}")}
    if epc == 0xC3:
        return {"supplying_hot_water": edt[0] == 0x41}
    if epc == 0x80:
        return {"operating": edt[0] == 0x30}
    if epc == 0x81:
        return {"installation_location": edt.hex().upper()}
    return {}


def _layout(path: str, summary: str, epc: int, edt: bytes, rule: str) -> Vector:
    """A layout vector: an EDT, its decoded meaning, and the SetC (or Get_Res) frame carrying
    it."""
    settable = epc in (ext.EPC_DR_REQUEST, ext.EPC_POTENTIAL_WINDOW, 0xC7, 0xCA, 0xCD)
    frame = (
        Frame(1, CONTROLLER, HEATER, int(ESV.SETC), (Property(epc, edt),))
        if settable
        else Frame(1, HEATER, CONTROLLER, int(ESV.GET_RES), (Property(epc, edt),))
    )
    return Vector(
        path,
        summary,
        {
            "summary": summary,
            "rules": rule,
            "epc": f"0x{epc:02X}",
            "edt": edt.hex().upper(),
            "decoded": decode_edt(epc, edt),
            "frame": _frame_json(encode_frame(frame)),
        },
    )


def _exchange(
    core: NodeCore,
    path: str,
    summary: str,
    rule: str,
    esv: ESV,
    props: tuple[Property, ...],
    gets: tuple[Property, ...] = (),
    tid: int = 1,
) -> Vector:
    """An exchange vector: a request and the answer of the vector unit, both decoded."""
    request = encode_frame(Frame(tid, CONTROLLER, HEATER, int(esv), props, gets))
    answers = core.handle(request)
    body: dict[str, Any] = {"summary": summary, "rules": rule, "request": _frame_json(request)}
    for p in props:
        if p.edt:
            try:
                body["request"].setdefault("decoded", {})[f"0x{p.epc:02X}"] = decode_edt(
                    p.epc, p.edt
                )
            except (EchonetError, ValueError, struct.error) as err:  # why the node refuses it
                body["request"].setdefault("why_refused", {})[f"0x{p.epc:02X}"] = str(err)
    if answers:
        answer = decode_frame(answers[0])
        body["answer"] = _frame_json(answers[0])
        decoded = {
            f"0x{p.epc:02X}": decode_edt(p.epc, p.edt)
            for p in (*answer.properties, *answer.get_properties)
            if p.edt and esv != ESV.SETC
        }
        if decoded:
            body["answer"]["decoded"] = decoded
    else:
        body["answer"] = None
    # what the Set changed among the EPCs of 0x9D, announced to 224.0.23.0 (EL-M3)
    infs = core.changed_announcements() if esv in (ESV.SETC, ESV.SETI, ESV.SETGET) else []
    if infs:
        inf = decode_frame(infs[0])
        body["announcement"] = {
            "to": "224.0.23.0:3610",
            **_frame_json(infs[0]),
            "decoded": {f"0x{p.epc:02X}": decode_edt(p.epc, p.edt) for p in inf.properties},
        }
    return Vector(path, summary, body)


def echonet_vectors() -> list[Vector]:
    """Every ECHONET Lite vector (layout, then exchanges with the vector unit)."""
    day = VECTOR_CLOCK + timedelta(hours=14)  # 12 May 10:00
    up_id = ext.DrRequestEdt(
        Direction.UP, day, day + timedelta(hours=3), 2000, "drready-assignment-17"
    )
    up_plain = ext.DrRequestEdt(Direction.UP, day, day + timedelta(hours=3), 2000)
    night = VECTOR_CLOCK + timedelta(hours=4)  # 12 May 00:00
    down_id = ext.DrRequestEdt(
        Direction.DOWN, night, night + timedelta(hours=2), 1000, "drready-assignment-18"
    )
    out = [
        _layout(
            "echonet/f2-up-request-id.json",
            "0xF0: up-DR 2 kWh, 12 May 2026 10:00-13:00 JST, request id (the worked example)",
            ext.EPC_DR_REQUEST,
            up_id.encode(TZ),
            "EL-F0-1, EL-E2, EL-E3",
        ),
        _layout(
            "echonet/f2-up-request-first-layout.json",
            "0xF0: the same request in the 13-byte first layout (no request id)",
            ext.EPC_DR_REQUEST,
            up_plain.encode(TZ),
            "EL-F0-1",
        ),
        _layout(
            "echonet/f2-down-request-id.json",
            "0xF0: down-DR 1 kWh, 12 May 2026 00:00-02:00 JST, request id",
            ext.EPC_DR_REQUEST,
            down_id.encode(TZ),
            "EL-F0-1",
        ),
    ]
    for status, accepted, rid, tag in (
        (ResponseStatus.ACCEPTED, 2000, "drready-assignment-17", "accepted-id"),
        (ResponseStatus.PARTIAL, 1250, "drready-assignment-17", "partial-id"),
        (ResponseStatus.REJECTED, 0, "drready-assignment-17", "rejected-id"),
        (ResponseStatus.ACCEPTED, 2000, None, "accepted-first-layout"),
    ):
        out.append(
            _layout(
                f"echonet/f2-response-{tag}.json",
                f"0xF1: {status.value}, {accepted} Wh" + (f", for {rid}" if rid else ""),
                ext.EPC_DR_RESPONSE,
                ext.DrResponseEdt(status, accepted, rid).encode(),
                "EL-F1-1, EL-F1-2",
            )
        )
    out.append(
        _layout(
            "echonet/f2-response-none-yet.json",
            "0xF1 before any request: status 0x00, 0 Wh",
            ext.EPC_DR_RESPONSE,
            ext.NO_RESPONSE.encode(),
            "EL-F1-1",
        )
    )
    out.append(
        _layout(
            "echonet/f1-potential-window.json",
            "0xF2: the potential window 12 May 2026 10:00-14:00 JST",
            ext.EPC_POTENTIAL_WINDOW,
            ext.encode_window(day, day + timedelta(hours=4), TZ),
            "EL-F2-1",
        )
    )
    out += _exchanges(day, up_id, down_id)
    return out


def _exchanges(day: datetime, up_id: ext.DrRequestEdt, down_id: ext.DrRequestEdt) -> list[Vector]:
    core, _heater = _unit()
    f0 = ext.EPC_DR_REQUEST
    good = up_id.encode(TZ)
    out = [
        _exchange(
            core,
            "echonet/f6-identity.json",
            "Get 0x83, 0x8A: identification number and maker code",
            "EL-S1",
            ESV.GET,
            (Property(0x83), Property(0x8A)),
        ),
        _exchange(
            core,
            "echonet/f1-standard-shift-energies.json",
            "Get 0xC9, 0xCB, 0xCC, 0xCE, 0xCF: the standard shift's expected energies",
            "EL-S3",
            ESV.GET,
            tuple(Property(e) for e in (0xC9, 0xCB, 0xCC, 0xCE, 0xCF)),
        ),
        _exchange(
            core,
            "echonet/f5-power.json",
            "Get 0x84, 0x85, 0xB2, 0xDB, 0xDC, 0xDD: power, energy, heating status, ratings",
            "EL-S2",
            ESV.GET,
            tuple(Property(e) for e in (0x84, 0x85, 0xB2, 0xDB, 0xDC, 0xDD)),
        ),
        _exchange(
            core,
            "echonet/f1-tank-water.json",
            "Get 0xD1, 0xD8, 0xE1, 0xE2: supply temperature setting, hot water that can still be "
            "supplied at it, hot water in the tank, tank capacity",
            "EL-S4",
            ESV.GET,
            tuple(Property(e) for e in (0xD1, 0xD8, 0xE1, 0xE2)),
        ),
        _exchange(
            core,
            "echonet/f1-potential-setget.json",
            "SetGet 0xF2 = 12 May 10:00-14:00, Get 0xF3: the window and its envelope atomically",
            "EL-F3-1, EL-F3-3, EL-E4, EL-E6",
            ESV.SETGET,
            (
                Property(
                    ext.EPC_POTENTIAL_WINDOW, ext.encode_window(day, day + timedelta(hours=4), TZ)
                ),
            ),
            (Property(ext.EPC_POTENTIAL_WINDOW), Property(ext.EPC_POTENTIAL)),
        ),
    ]
    refusals = {
        "direction": (b"\x03" + good[1:], "direction 0x03"),
        "minute": (good[:6] + b"\x0f" + good[7:], "start at minute 15"),
        "length": (good[:7] + struct.pack(">H", 45) + good[9:], "window length 45 min"),
        "amount-zero": (good[:9] + struct.pack(">I", 0) + good[13:], "amount 0 Wh"),
        "date": (good[:3] + b"\x02\x1f" + good[5:], "31 February"),
        "request-id": (good[:13] + b"\x03a/b", "request id with '/'"),
        "id-length": (good[:13] + b"\x05abc", "id length byte 5 for 3 characters"),
    }
    for tag, (edt, why) in refusals.items():
        out.append(
            _exchange(
                core,
                f"echonet/f2-refused-{tag}.json",
                f"SetC 0xF0 with {why}: refused with SetC_SNA echoing the EDT, nothing changes",
                "EL-F0-1",
                ESV.SETC,
                (Property(f0, edt),),
            )
        )
    beyond = ext.DrRequestEdt(
        Direction.UP,
        datetime(2099, 1, 1, 10, tzinfo=TZ),
        datetime(2099, 1, 1, 10, 30, tzinfo=TZ),
        1,
        "drready-conformance-0001",
    )
    out += [
        _exchange(
            core,
            "echonet/f2-up-setget-accepted.json",
            "SetGet 0xF0 (up 2 kWh 10:00-13:00, drready-assignment-17), Get 0xF1: the answer",
            "EL-L1, EL-F0-2, EL-F1-1, EL-S6",
            ESV.SETGET,
            (Property(f0, good),),
            (Property(ext.EPC_DR_RESPONSE),),
        ),
        _exchange(
            core,
            "echonet/f2-up-retry-same-id.json",
            "The same 0xF0 again: answered from memory, not planned twice",
            "EL-L2",
            ESV.SETGET,
            (Property(f0, good),),
            (Property(ext.EPC_DR_RESPONSE),),
        ),
        _exchange(
            core,
            "echonet/f2-down-setget.json",
            "SetGet 0xF0 (down 1 kWh 00:00-02:00, drready-assignment-18), Get 0xF1: a second "
            "request is added to the first",
            "EL-L3, EL-F1-1",
            ESV.SETGET,
            (Property(f0, down_id.encode(TZ)),),
            (Property(ext.EPC_DR_RESPONSE),),
        ),
        _exchange(
            core,
            "echonet/f2-rejected-beyond-horizon.json",
            "SetGet 0xF0 for 2099: Set accepted, 0xF1 rejected (0x43), 0 Wh, with the id",
            "EL-F0-2",
            ESV.SETGET,
            (Property(f0, beyond.encode(TZ)),),
            (Property(ext.EPC_DR_RESPONSE),),
        ),
        _exchange(
            core,
            "echonet/f2-up-seti.json",
            "SetI 0xF0 (the 13-byte first layout): no answer when accepted",
            "EL-L1",
            ESV.SETI,
            (
                Property(
                    f0,
                    ext.DrRequestEdt(Direction.UP, day, day + timedelta(hours=1), 300).encode(TZ),
                ),
            ),
        ),
        _exchange(
            core,
            "echonet/f2-start-time-standard-shift.json",
            "SetC 0xC7 = 0x01, 0xCA = 0x0D: the standard start-time-only request (13:00)",
            "EL-S5",
            ESV.SETC,
            (Property(0xC7, b"\x01"), Property(0xCA, b"\x0d")),
        ),
        _exchange(
            core,
            "echonet/f2-start-time-refused-0xCD-09.json",
            "SetC 0xCD = 0x09: shift time 2 takes 0x0A-0x11 only, refused",
            "EL-S5",
            ESV.SETC,
            (Property(0xCD, b"\x09"),),
        ),
        _exchange(
            core,
            "echonet/f4-plan.json",
            "Get 0xF4: the heating plan from the slot in progress (30-min slots, at most 60)",
            "EL-F4-1, EL-E5, EL-E6",
            ESV.GET,
            (Property(ext.EPC_PLAN),),
        ),
        _exchange(  # last: with automatic heating off the unit plans no more heating
            core,
            "echonet/status-announcement-0xB0.json",
            "SetC 0xB0 = 0x43 (automatic heating off): Set_Res, and the INF of every EPC of "
            "0x9D whose value changed",
            "EL-M3",
            ESV.SETC,
            (Property(0xB0, b"\x43"),),
        ),
    ]
    return out
