"""Maker-specific EPCs 0xF0–0xF4 of class 0x026B: what standard ECHONET Lite cannot carry (F1–F4).

The standard energy-shift EPCs (0xC7–0xCF) express only *up*-DR that moves the heating to a
whole hour between 09:00 and 17:00, with the expected energy at four fixed candidate times. A
DR-ready unit must also take a requested **amount**, a **window** anywhere on the 30-minute
grid, **down**-DR, and report its **full heating plan** (F4). drready proposes these EPCs, laid
out field by field in ``docs/profile-echonet-lite.md``; all integers are big-endian:

======  =====================  =====  =======================================================
EPC     name                   size   layout
======  =====================  =====  =======================================================
0xF0    DR request (set, get)  13,    direction (0x01 up, 0x02 down) · window start (year u16,
                               15–78  month, day, hour, minute: 6 B, local time of the node) ·
                                      window length [min] u16 (multiple of 30, ≤ 2880) ·
                                      amount [Wh] u32 (> 0) · optional request id: length u8
                                      (1–64) · ASCII from ``[A-Za-z0-9._:-]``
0xF1    DR response (get)      5,     status (0x41 accepted, 0x42 partial, 0x43 rejected, 0x00
                               7–70   no request yet) · accepted amount [Wh] u32 · the request
                                      id of the 0xF0 answered, as in 0xF0 — only when that
                                      0xF0 carried one
0xF2    potential window       8      window start (6 B as above) · window length [min] u16
        (set, get)                    (multiple of 30, ≤ 720: at most 24 slots)
0xF3    DR potential (get)     10+    up-DR [Wh] u32 · down-DR [Wh] u32 · confidence [%] u8 ·
                               10n    n u8 · n × (baseline, least, most power [W] u16 ×3 ·
                                      cumulative least, most energy from the window start
                                      [Wh] u16 ×2) — the envelope of the window of 0xF2 (F1)
0xF4    heating plan (get)     8+4n   plan start (6 B) · slot length [min] u8 (30) · n u8 ·
                                      n × (planned energy [Wh] u16 · expected stored heat at
                                      the slot end [Wh] u16) (F4; n ≤ 60)
======  =====================  =====  =======================================================

The request id (F2, D1) is the servicer's: a gateway sets the id of the OpenADR event it
answers (``DrRequest.request_id``), the unit plans the request under that id — so the plan it
honours names the servicer's event — and 0xF1 echoes it, so the gateway knows whose answer it
reads. A 13-byte 0xF0 (no id) stays valid: the unit then names the request itself and 0xF1 keeps
its 5-byte form, so controllers that know only the first layout read what they always read.

Amounts cross this boundary once each way, as whole Wh: :func:`wh_from_kwh` going down to the
unit, :func:`kwh_from_wh` coming back (:meth:`DrRequestEdt.from_request`,
:meth:`DrRequestEdt.to_request`, :meth:`DrResponseEdt.from_response`).

Hand-written because the MRA, by definition, does not describe maker-specific properties; the
codec here is as strict as the MRA-driven one (every field range-checked on Set).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from drready.domain import Direction, DrRequest, DrResponse, ResponseStatus
from drready.domain.base import RequestId
from drready.echonet.errors import PropertyValueError

EPC_DR_REQUEST = 0xF0
EPC_DR_RESPONSE = 0xF1
EPC_POTENTIAL_WINDOW = 0xF2
EPC_POTENTIAL = 0xF3
EPC_PLAN = 0xF4
MAX_WINDOW_MINUTES = 48 * 60
MAX_PLAN_SLOTS = 60
MAX_POTENTIAL_SLOTS = 24
DR_REQUEST_SIZE = 13
"""Size of a 0xF0 EDT without a request id [bytes]."""
DR_RESPONSE_SIZE = 5
"""Size of a 0xF1 EDT without a request id [bytes]."""
MAX_REQUEST_ID_LEN = 64
"""Longest request id 0xF0/0xF1 carry [characters] (``drready.domain.RequestId``)."""
MAX_AMOUNT_WH = 1_000_000_000
"""Largest amount of a 0xF0 request [Wh] (1 GWh: far above any unit, well inside u32)."""
ECHONET_LITE_ISSUER = "echonet-lite"
"""``DrRequest.issuer`` of the requests a unit receives over 0xF0."""

_REQUEST_ID: TypeAdapter[str] = TypeAdapter(RequestId)

_DIRECTION_CODE = {Direction.UP: 0x01, Direction.DOWN: 0x02}
_STATUS_CODE = {
    ResponseStatus.ACCEPTED: 0x41,
    ResponseStatus.PARTIAL: 0x42,
    ResponseStatus.REJECTED: 0x43,
}


def encode_time(epc: int, when: datetime, tz: ZoneInfo) -> bytes:
    """6-byte local date-time: year u16, month, day, hour, minute."""
    local = when.astimezone(tz)
    return struct.pack(">HBBBB", local.year, local.month, local.day, local.hour, local.minute)


def decode_time(epc: int, edt: bytes, tz: ZoneInfo) -> datetime:
    """Inverse of :func:`encode_time`; ``PropertyValueError`` naming the EPC on a bad date."""
    year, month, day, hour, minute = struct.unpack(">HBBBB", edt[:6])
    try:
        return datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError as err:
        raise PropertyValueError(epc, f"EPC 0x{epc:02X}: invalid date-time: {err}") from err


def _window(epc: int, edt: bytes, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = decode_time(epc, edt[:6], tz)
    (minutes,) = struct.unpack(">H", edt[6:8])
    if minutes == 0 or minutes % 30 or minutes > MAX_WINDOW_MINUTES:
        raise PropertyValueError(
            epc,
            f"EPC 0x{epc:02X}: window length must be a multiple of 30 in 30–"
            f"{MAX_WINDOW_MINUTES} min, got {minutes}",
        )
    if start.minute % 30:
        raise PropertyValueError(
            epc, f"EPC 0x{epc:02X}: window start must be on a 30-minute boundary"
        )
    return start, start + timedelta(minutes=minutes)


def wh_from_kwh(energy_kwh: float) -> int:
    """An amount [kWh] as the whole Wh the EPCs carry (rounded to the nearest)."""
    return round(energy_kwh * 1000.0)


def kwh_from_wh(energy_wh: int) -> float:
    """Whole Wh from an EPC as an amount [kWh]."""
    return energy_wh / 1000.0


def encode_request_id(request_id: str | None) -> bytes:
    """The optional request-id field of 0xF0/0xF1: length u8 · ASCII; empty for None."""
    if request_id is None:
        return b""
    data = _REQUEST_ID.validate_python(request_id).encode("ascii")
    return bytes([len(data)]) + data


def decode_request_id(epc: int, field: bytes) -> str | None:
    """Inverse of :func:`encode_request_id` (``field`` is the EDT after the fixed part)."""
    if not field:
        return None
    n = field[0]
    if not 1 <= n <= MAX_REQUEST_ID_LEN or len(field) != 1 + n:
        raise PropertyValueError(
            epc,
            f"EPC 0x{epc:02X}: the request id must be a length byte (1–{MAX_REQUEST_ID_LEN}) and "
            f"that many characters, got length {n} and {len(field) - 1} bytes",
        )
    try:
        return _REQUEST_ID.validate_python(field[1:].decode("ascii"))
    except (UnicodeDecodeError, ValidationError) as err:
        raise PropertyValueError(
            epc, f"EPC 0x{epc:02X}: the request id must be characters from [A-Za-z0-9._:-]"
        ) from err


@dataclass(frozen=True)
class DrRequestEdt:
    """Decoded 0xF0: a DR request (F2) with its amount in whole Wh and, optionally, its id."""

    direction: Direction
    start: datetime
    end: datetime
    amount_wh: int
    request_id: str | None = None

    @classmethod
    def from_request(cls, request: DrRequest) -> DrRequestEdt:
        """The EDT of ``request`` (kWh → Wh once, at least 1 Wh), carrying its id."""
        return cls(
            request.direction,
            request.start,
            request.end,
            max(1, wh_from_kwh(request.amount_kwh)),
            request.request_id,
        )

    def to_request(self, default_id: str, issued_at: datetime) -> DrRequest:
        """The request the unit plans: this EDT's id, or ``default_id`` if it carries none
        (Wh → kWh once)."""
        return DrRequest(
            request_id=self.request_id or default_id,
            direction=self.direction,
            start=self.start,
            end=self.end,
            amount_kwh=kwh_from_wh(self.amount_wh),
            issuer=ECHONET_LITE_ISSUER,
            issued_at=issued_at,
        )

    def encode(self, tz: ZoneInfo) -> bytes:
        minutes = int((self.end - self.start).total_seconds() // 60)
        return (
            bytes([_DIRECTION_CODE[self.direction]])
            + encode_time(EPC_DR_REQUEST, self.start, tz)
            + struct.pack(">HI", minutes, self.amount_wh)
            + encode_request_id(self.request_id)
        )


def decode_dr_request(edt: bytes, tz: ZoneInfo) -> DrRequestEdt:
    """Parse and range-check a 0xF0 EDT (13 bytes, or 15–78 with a request id)."""
    if not DR_REQUEST_SIZE <= len(edt) <= DR_REQUEST_SIZE + 1 + MAX_REQUEST_ID_LEN:
        raise PropertyValueError(
            EPC_DR_REQUEST,
            f"EPC 0xF0: EDT must be {DR_REQUEST_SIZE} bytes, or {DR_REQUEST_SIZE + 2}–"
            f"{DR_REQUEST_SIZE + 1 + MAX_REQUEST_ID_LEN} with a request id, got {len(edt)}",
        )
    codes = {v: k for k, v in _DIRECTION_CODE.items()}
    if edt[0] not in codes:
        raise PropertyValueError(
            EPC_DR_REQUEST,
            f"EPC 0xF0: direction must be 0x01 (up) or 0x02 (down), got {edt[0]:#04x}",
        )
    start, end = _window(EPC_DR_REQUEST, edt[1:9], tz)
    (amount,) = struct.unpack(">I", edt[9:13])
    if not 0 < amount <= MAX_AMOUNT_WH:
        raise PropertyValueError(
            EPC_DR_REQUEST, f"EPC 0xF0: amount must be within 1–{MAX_AMOUNT_WH} Wh, got {amount}"
        )
    request_id = decode_request_id(EPC_DR_REQUEST, edt[DR_REQUEST_SIZE:])
    return DrRequestEdt(codes[edt[0]], start, end, amount, request_id)


@dataclass(frozen=True)
class DrResponseEdt:
    """Decoded 0xF1: the unit's answer (F2) to the last 0xF0, and the id of that request when
    the 0xF0 carried one. ``status`` is None before any request."""

    status: ResponseStatus | None
    accepted_wh: int
    request_id: str | None = None

    @classmethod
    def from_response(cls, response: DrResponse, request_id: str | None) -> DrResponseEdt:
        """The EDT of ``response`` (kWh → Wh once), echoing ``request_id`` (None: the 0xF0
        answered carried no id)."""
        return cls(response.status, wh_from_kwh(response.accepted_kwh), request_id)

    def encode(self) -> bytes:
        code = 0x00 if self.status is None else _STATUS_CODE[self.status]
        # clip: u32 field; the unit never accepts more than the u32 amount it was asked for
        accepted = max(0, min(self.accepted_wh, 0xFFFFFFFF))
        return bytes([code]) + struct.pack(">I", accepted) + encode_request_id(self.request_id)


NO_RESPONSE = DrResponseEdt(None, 0)
"""0xF1 before any request: status 0x00, 0 Wh."""


def decode_dr_response(edt: bytes) -> DrResponseEdt:
    """Parse a 0xF1 EDT (5 bytes, or 7–70 with the request id)."""
    if not DR_RESPONSE_SIZE <= len(edt) <= DR_RESPONSE_SIZE + 1 + MAX_REQUEST_ID_LEN:
        raise PropertyValueError(
            EPC_DR_RESPONSE,
            f"EPC 0xF1: EDT must be {DR_RESPONSE_SIZE} bytes, or {DR_RESPONSE_SIZE + 2}–"
            f"{DR_RESPONSE_SIZE + 1 + MAX_REQUEST_ID_LEN} with a request id, got {len(edt)}",
        )
    codes = {v: k for k, v in _STATUS_CODE.items()}
    if edt[0] != 0 and edt[0] not in codes:
        raise PropertyValueError(EPC_DR_RESPONSE, f"EPC 0xF1: unknown status {edt[0]:#04x}")
    (accepted,) = struct.unpack(">I", edt[1:DR_RESPONSE_SIZE])
    request_id = decode_request_id(EPC_DR_RESPONSE, edt[DR_RESPONSE_SIZE:])
    return DrResponseEdt(None if edt[0] == 0 else codes[edt[0]], accepted, request_id)


def encode_window(start: datetime, end: datetime, tz: ZoneInfo) -> bytes:
    """0xF2: window start and length."""
    minutes = int((end - start).total_seconds() // 60)
    return encode_time(EPC_POTENTIAL_WINDOW, start, tz) + struct.pack(">H", minutes)


def decode_window(edt: bytes, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Parse and range-check a 0xF2 EDT (at most 24 slots: the envelope must fit one EDT)."""
    if len(edt) != 8:
        raise PropertyValueError(
            EPC_POTENTIAL_WINDOW, f"EPC 0xF2: EDT must be 8 bytes, got {len(edt)}"
        )
    start, end = _window(EPC_POTENTIAL_WINDOW, edt, tz)
    if end - start > timedelta(minutes=30 * MAX_POTENTIAL_SLOTS):
        raise PropertyValueError(
            EPC_POTENTIAL_WINDOW,
            f"EPC 0xF2: window length must be at most {30 * MAX_POTENTIAL_SLOTS} min",
        )
    return start, end


@dataclass(frozen=True)
class PotentialEdt:
    """Decoded 0xF3: totals and per-slot envelope of the potential window."""

    up_wh: int
    down_wh: int
    confidence: float
    baseline_w: tuple[int, ...]
    min_w: tuple[int, ...]
    max_w: tuple[int, ...]
    cum_min_wh: tuple[int, ...]
    cum_max_wh: tuple[int, ...]


def _u16(v: float) -> int:
    # clip: the u16 fields hold 0–65533 (0xFFFE/0xFFFF are ECHONET's overflow codes)
    return max(0, min(round(v), 0xFFFD))


def encode_potential(p: PotentialEdt) -> bytes:
    """0xF3 from its decoded form."""
    n = len(p.baseline_w)
    if n > MAX_POTENTIAL_SLOTS:
        raise ValueError(f"at most {MAX_POTENTIAL_SLOTS} slots fit 0xF3, got {n}")
    head = struct.pack(">IIBB", p.up_wh, p.down_wh, round(p.confidence * 100), n)
    body = b"".join(
        struct.pack(
            ">HHHHH",
            _u16(p.baseline_w[i]),
            _u16(p.min_w[i]),
            _u16(p.max_w[i]),
            _u16(p.cum_min_wh[i]),
            _u16(p.cum_max_wh[i]),
        )
        for i in range(n)
    )
    return head + body


def decode_potential(edt: bytes) -> PotentialEdt:
    """Inverse of :func:`encode_potential`."""
    if len(edt) < 10 or len(edt) != 10 + 10 * edt[9]:
        raise PropertyValueError(EPC_POTENTIAL, f"EPC 0xF3: EDT length {len(edt)} does not match n")
    up, down, conf, n = struct.unpack(">IIBB", edt[:10])
    rows = [struct.unpack(">HHHHH", edt[10 + 10 * i : 20 + 10 * i]) for i in range(n)]
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    return PotentialEdt(up, down, conf / 100.0, *(tuple(c) for c in cols))


def encode_plan(start: datetime, slot_wh: list[int], stored_wh: list[int], tz: ZoneInfo) -> bytes:
    """0xF4: plan start, slot length, and per slot the energy and the stored heat at its end."""
    n = min(len(slot_wh), MAX_PLAN_SLOTS)
    return (
        encode_time(EPC_PLAN, start, tz)
        + bytes([30, n])
        + b"".join(struct.pack(">HH", _u16(slot_wh[i]), _u16(stored_wh[i])) for i in range(n))
    )


def decode_plan(edt: bytes, tz: ZoneInfo) -> tuple[datetime, int, list[int], list[int]]:
    """Inverse of :func:`encode_plan`: (start, slot minutes, Wh per slot, stored Wh)."""
    if len(edt) < 8 or len(edt) != 8 + 4 * edt[7]:
        raise PropertyValueError(EPC_PLAN, f"EPC 0xF4: EDT length {len(edt)} does not match n")
    start = decode_time(EPC_PLAN, edt[:6], tz)
    n = edt[7]
    pairs = [struct.unpack(">HH", edt[8 + 4 * i : 12 + 4 * i]) for i in range(n)]
    return start, edt[6], [a for a, _ in pairs], [b for _, b in pairs]
