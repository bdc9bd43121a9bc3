"""Standard-only water heaters (the installed base) in domain terms: pure functions (F1–F5, U2).

About a million EcoCutes speak ECHONET Lite class 0x026B but none has drready's maker EPCs
0xF0–0xF4. What they offer is the **standard energy shift**: participation 0xC7, the standard
time to start heating 0xC8, the number of shift times 0xC9, daytime heating shift time 1 and 2
(0xCA, 0xCD: a whole hour 09–17), and for each shift time the expected electric energy and the
energy per hour of heating when heating is shifted to 10, 13, 15 or 17 h (0xCB/0xCC for shift 1,
0xCE/0xCF for 13, 15, 17 h of shift 2). This module maps them onto the unified data model, so
that the gateway serves such units through the same upstream profile as DR-ready ones. The
mapping and its limits are the "standard-only units" section of ``docs/profile-echonet-lite.md``:

* **Target day.** Shift times are for the unit's target day: the day whose standard heating
  start (0xC8, the evening before) is still ahead (:func:`drready.device.energy_shift.target_day`).
  A window on another day gets nothing from a standard-only unit.
* **F1** (:func:`standard_envelope`) — up-DR only: the shift windows ``[h:00, h + 4 h)`` of the
  offered hours (with a non-zero expected energy, settable for a free shift time, not begun)
  that lie *inside* the asked window; ``up_kwh`` is the largest expected energy among them (one
  shift at a time: two shifts' figures are each computed from the unit's own baseline and are
  not known to add up). ``down_kwh`` = 0. Per slot: baseline 0 (a unit following its standard
  heating heats at night; its daytime reheats are not known), most power = 0xCC/0xCF (Wh per
  hour of heating) in the slots of an offered shift window, cumulative most energy = that power
  accumulated, at most ``up_kwh``. **Confidence** :data:`STANDARD_CONFIDENCE` = 0.5: 0xCB is the
  unit's *expected* energy — neither a bound nor a level, as likely above as below.
* **F2** (:func:`decide_shift`) — a request becomes a start time: participation 0xC7 = 1 and the
  shift time of the offered window nearest the amount (0xCA, or 0xCD where 0xC9 = 2 and shift 1
  cannot take that hour or is in use). Amounts are whole shifts: the unit shifts its whole
  heating, no amount can be set, so the amount is rounded to the nearest shift (or to nothing
  when no shift is nearer than nothing) and the difference is stated in the response's reason;
  the accepted amount is ``min(asked, expected)``. Down-DR is rejected.
* **F3/F4** (:func:`inferred_plan`) — what the gateway can honestly infer: over the target
  day's shift span 09:00–21:00, each shift time set delivers its expected energy at its
  0xCC/0xCF rate from the shift time; nothing else is known in that span (taken as 0), and the
  stored heat is not available (0).
* **F5** — measured from 0x84/0x85 where the unit has them; else estimated (flagged) as 0xB2
  (heating) × the seasonal rated power (:func:`seasonal_rating_w`: 0xDB Dec–Mar, 0xDC Apr, May,
  Oct, Nov, 0xDD Jun–Sep), integrated over time into an energy counter
  (:class:`EnergyEstimator`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Final
from zoneinfo import ZoneInfo

from drready.device.energy_shift import (
    MAX_WH,
    MAX_WH_PER_HOUR,
    REPORT_HOURS,
    SHIFT_WINDOW,
    allowed_shift_hours,
)
from drready.domain import (
    SLOT,
    SLOT_HOURS,
    DeviceId,
    Direction,
    DrRequest,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    SlotGrid,
)
from drready.domain.tolerances import ENERGY_TOL_KWH, ZERO_KWH

__all__ = [
    "PLAN_SPAN_HOURS",
    "SHIFT_EPCS",
    "STANDARD_CONFIDENCE",
    "EnergyEstimator",
    "ShiftDecision",
    "ShiftOffer",
    "ShiftOption",
    "decide_shift",
    "decode_offer",
    "inferred_plan",
    "seasonal_rating_w",
    "shift_options",
    "standard_envelope",
]

STANDARD_CONFIDENCE: Final = 0.5
"""Confidence of a standard-only unit's F1: 0xCB is an expected value, not a bound."""
SHIFT_EPCS: Final = (0xC7, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF)
"""The energy-shift EPCs the gateway reads of a standard-only unit."""
PLAN_SPAN_HOURS: Final = (9, 21)
"""``[from, to)`` hours of the target day an inferred plan covers: every shift window."""
DEFAULT_START_HOUR: Final = 22
"""0xC8 assumed when a unit does not give it (the MRA's most common value)."""
_SHIFT_EPC = {1: 0xCA, 2: 0xCD}


@dataclass(frozen=True)
class ShiftOffer:
    """A unit's energy-shift state: 0xC7, 0xC8, 0xC9, set shift times 0xCA/0xCD and, per shift
    time and reported hour, the expected energy (0xCB/0xCE) and energy per hour (0xCC/0xCF)
    [Wh, Wh/h]."""

    standard_start_hour: int
    energy_shifts: int
    participation: bool
    set_hours: Mapping[int, int | None]
    expected_wh: Mapping[int, Mapping[int, int]]
    per_hour_wh: Mapping[int, Mapping[int, int]]

    def shift_epc(self, n: int) -> int:
        """The EPC of shift time ``n`` (0xCA or 0xCD)."""
        return _SHIFT_EPC[n]


def _table(edt: bytes | None, hours: tuple[int, ...], size: int, top: int) -> dict[int, int]:
    fmt = ">" + ("I" if size == 4 else "H") * len(hours)
    if edt is None or len(edt) != size * len(hours):
        return {}
    # a value above the MRA's range is one of its overflow/underflow codes: nothing known
    return {h: v if v <= top else 0 for h, v in zip(hours, struct.unpack(fmt, edt), strict=True)}


def _hour(edt: bytes | None) -> int | None:
    return None if edt is None or len(edt) != 1 or edt[0] == 0 else edt[0]


def decode_offer(values: Mapping[int, bytes | None], energy_shifts: int = 1) -> ShiftOffer:
    """The offer from the EDTs of :data:`SHIFT_EPCS` (missing ones: None); ``energy_shifts``
    when 0xC9 is not given.

    >>> o = decode_offer({0xC7: b"\\x01", 0xCA: b"\\x0d", 0xCB: bytes(4) + (1500).to_bytes(4,
    ...     "big") + bytes(8)})
    >>> o.participation, o.set_hours[1], o.expected_wh[1][13], o.energy_shifts
    (True, 13, 1500, 1)
    """
    c8, c9 = values.get(0xC8), values.get(0xC9)
    known = c8 is not None and len(c8) == 1 and c8[0] in (1, 20, 21, 22, 23, 24)
    start = c8[0] if known and c8 is not None else DEFAULT_START_HOUR
    shifts = c9[0] if c9 is not None and len(c9) == 1 and c9[0] in (1, 2) else energy_shifts
    h1, h2 = REPORT_HOURS[1], REPORT_HOURS[2]
    return ShiftOffer(
        standard_start_hour=start,
        energy_shifts=shifts,
        participation=values.get(0xC7) == b"\x01",
        set_hours={1: _hour(values.get(0xCA)), 2: _hour(values.get(0xCD))},
        expected_wh={
            1: _table(values.get(0xCB), h1, 4, MAX_WH),
            2: _table(values.get(0xCE), h2, 4, MAX_WH) if shifts == 2 else {},
        },
        per_hour_wh={
            1: _table(values.get(0xCC), h1, 2, MAX_WH_PER_HOUR),
            2: _table(values.get(0xCF), h2, 2, MAX_WH_PER_HOUR) if shifts == 2 else {},
        },
    )


@dataclass(frozen=True)
class ShiftOption:
    """Shift time ``shift`` set to ``hour``: its window, expected energy and heating power."""

    shift: int
    hour: int
    start: datetime
    end: datetime
    expected_kwh: float
    power_kw: float
    """Mean electric input while heating: 0xCC/0xCF, at least the expected energy over the
    4 h window [kW]."""


def _option(offer: ShiftOffer, n: int, hour: int, day: date, tz: ZoneInfo) -> ShiftOption | None:
    wh = offer.expected_wh.get(n, {}).get(hour, 0)
    if wh <= 0:
        return None
    start = datetime.combine(day, dtime(hour, 0), tzinfo=tz)
    per_hour = offer.per_hour_wh.get(n, {}).get(hour, 0)
    # at least the mean over the window: the unit expects the whole energy inside it (0xCC is
    # rounded to whole Wh/h, so 4 h of it may fall a few Wh short of 0xCB)
    kw = max(per_hour / 1000.0, wh / 1000.0 / (SHIFT_WINDOW / timedelta(hours=1)))
    return ShiftOption(n, hour, start, start + SHIFT_WINDOW, wh / 1000.0, kw)


def shift_options(
    offer: ShiftOffer,
    day: date,
    tz: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    not_before: datetime,
) -> list[ShiftOption]:
    """The shifts the unit can still be given whose window lies inside ``[window_start,
    window_end)``: reported hours with a non-zero expected energy, settable for a free shift
    time (nothing set there yet), starting at or after ``not_before``."""
    out = []
    for n in (1, 2)[: offer.energy_shifts]:
        if offer.set_hours.get(n) is not None:
            continue
        allowed = allowed_shift_hours(n, offer.energy_shifts)
        for hour in REPORT_HOURS[n]:
            opt = _option(offer, n, hour, day, tz) if hour in allowed else None
            if opt is None or opt.start < not_before:
                continue
            if window_start <= opt.start and opt.end <= window_end:
                out.append(opt)
    return out


def _best(options: Sequence[ShiftOption]) -> ShiftOption | None:
    return max(
        options, key=lambda o: (o.expected_kwh, -o.start.timestamp(), -o.shift), default=None
    )


def standard_envelope(
    device_id: DeviceId,
    options: Sequence[ShiftOption],
    window_start: datetime,
    window_end: datetime,
    computed_at: datetime,
) -> FlexibilityEnvelope:
    """F1 of a standard-only unit for ``[window_start, window_end)`` from its
    :func:`shift_options` for that window (see the module)."""
    best = _best(options)
    up = 0.0 if best is None else best.expected_kwh
    slots = []
    most = 0.0
    t = window_start
    while t < window_end:
        kw = max((o.power_kw for o in options if o.start <= t < o.end), default=0.0)
        most = min(most + kw * SLOT_HOURS, up)  # never more than one shift delivers
        slots.append(
            EnvelopeSlot(
                start=t, baseline_kw=0.0, min_kw=0.0, max_kw=kw, cum_min_kwh=0.0, cum_max_kwh=most
            )
        )
        t += SLOT
    return FlexibilityEnvelope(
        device_id=device_id,
        computed_at=computed_at,
        window_start=window_start,
        window_end=window_end,
        confidence=STANDARD_CONFIDENCE,
        up_kwh=up,
        down_kwh=0.0,
        slots=tuple(slots),
    )


@dataclass(frozen=True)
class ShiftDecision:
    """What to do with a request: the shift to set (None: reject), the amount accepted [kWh]
    and the reason (the rounding, or why not)."""

    option: ShiftOption | None
    accepted_kwh: float
    reason: str | None


def decide_shift(request: DrRequest, options: Sequence[ShiftOption], day: date) -> ShiftDecision:
    """F2 for a standard-only unit: the offered shift nearest the amount (see the module).

    ``options`` are :func:`shift_options` for the request's window on the unit's target
    ``day``.
    """
    if request.direction is Direction.DOWN:
        return ShiftDecision(
            None,
            0.0,
            "a standard-only unit offers no down-DR (the energy shift only moves "
            "heating into the day)",
        )
    if not options:
        return ShiftDecision(
            None,
            0.0,
            f"no shift window of {day.isoformat()} (the unit's target day) lies inside the "
            "request's window: a standard-only unit shifts heating to 10, 13, 15 or 17 h for "
            "4 h",
        )
    asked = request.amount_kwh
    if request.open_amount:  # by start time alone: the shift from that hour, whatever it holds
        at = [o for o in options if o.start == request.start] or list(options)
        first = min(at, key=lambda o: (o.start, -o.expected_kwh))
        what = f"standard energy shift to {first.hour:02d}:00 (shift time {first.shift})"
        return ShiftDecision(first, first.expected_kwh, f"{what}: the unit's expected energy")
    nearest = min(options, key=lambda o: (abs(o.expected_kwh - asked), -o.expected_kwh))
    got = nearest.expected_kwh
    what = f"standard energy shift to {nearest.hour:02d}:00 (shift time {nearest.shift})"
    if got - asked > asked:  # nothing is nearer than the smallest shift: rounded to 0
        return ShiftDecision(
            None,
            0.0,
            f"amounts are whole shifts: the nearest, {what}, is the unit's expected "
            f"{got:.3f} kWh, more than twice the {asked:.3f} kWh asked",
        )
    if abs(got - asked) <= ENERGY_TOL_KWH:
        return ShiftDecision(nearest, asked, f"{what}: the unit's expected {got:.3f} kWh")
    side = "more" if got > asked else "less"
    return ShiftDecision(
        nearest,
        min(asked, got),
        f"{what} delivers the unit's expected {got:.3f} kWh, {abs(got - asked):.3f} kWh "
        f"{side} than asked (amounts are whole shifts)",
    )


def inferred_plan(
    device_id: DeviceId,
    created_at: datetime,
    day: date,
    tz: ZoneInfo,
    shifts: Sequence[ShiftOption],
    honours: Sequence[str] = (),
) -> HeatingPlan:
    """F4 of a standard-only unit: the target day's 09:00–21:00 with each set shift's expected
    energy at its power from the shift time (see the module)."""
    start = datetime.combine(day, dtime(PLAN_SPAN_HOURS[0], 0), tzinfo=tz)
    grid = SlotGrid(start=start, n_slots=2 * (PLAN_SPAN_HOURS[1] - PLAN_SPAN_HOURS[0]))
    energy = [0.0] * grid.n_slots
    for opt in shifts:
        left = opt.expected_kwh
        for k, s in enumerate(grid.starts()):
            if opt.start <= s < opt.end and left > ZERO_KWH:
                e = min(opt.power_kw * SLOT_HOURS, left)
                energy[k] += e
                left -= e
    slots = tuple(
        PlanSlot(start=s, power_kw=e / SLOT_HOURS, energy_kwh=e, stored_heat_kwh=0.0)
        for s, e in zip(grid.starts(), energy, strict=True)
    )
    return HeatingPlan(
        device_id=device_id,
        created_at=created_at,
        grid=grid,
        slots=slots,
        honours=tuple(dict.fromkeys(honours)),
    )


def seasonal_rating_w(
    month: int, winter_w: int | None, mid_w: int | None, summer_w: int | None
) -> int | None:
    """The rated power consumption of the season of ``month`` [W]: 0xDB (winter, Dec–Mar),
    0xDC (in-between, Apr, May, Oct, Nov), 0xDD (summer, Jun–Sep); another season's where that
    one is missing (the largest), None when the unit gives none.

    >>> [seasonal_rating_w(m, 1500, 1200, 900) for m in (1, 4, 7, 11, 12)]
    [1500, 1200, 900, 1200, 1500]
    """
    if month in (12, 1, 2, 3):
        own = winter_w
    elif month in (6, 7, 8, 9):
        own = summer_w
    else:
        own = mid_w
    if own:
        return own
    others = [w for w in (winter_w, mid_w, summer_w) if w]
    return max(others) if others else None


@dataclass
class EnergyEstimator:
    """An estimated energy counter: the power estimate held since the last update, integrated
    over time [kWh]. Updating at every change of 0xB2 (INF) makes it exact for an on/off heat
    pump running at its rating."""

    energy_kwh: float = 0.0
    last: datetime | None = None
    power_w: float = 0.0

    def update(self, now: datetime, power_w: float) -> float:
        """Account for the time since the last update at the power then, hold ``power_w``
        from ``now`` on; returns the counter [kWh]. An update from the past changes nothing
        but the held power."""
        if self.last is not None and now > self.last:
            self.energy_kwh += self.power_w * (now - self.last).total_seconds() / 3.6e6
        if self.last is None or now >= self.last:
            self.last = now
        self.power_w = power_w
        return self.energy_kwh
