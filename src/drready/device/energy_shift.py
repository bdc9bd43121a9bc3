"""The ECHONET Lite energy shift of a water heater (class 0x026B, EPC 0xC7–0xCF) as F1–F3 (U2).

The standard's daytime heating shift (Release I and later) lets a controller move a unit's
heating to a whole hour in the day — the route to up-DR that units speaking only the standard
offer. This module holds its semantics, pure, so that the live unit
(:class:`drready.device.heater.SimulatedWaterHeater`) only plans: which day the shift times are
for, each shift time's window, which hours may be set, the DR request a set shift time makes,
the figures 0xCB/0xCC/0xCE/0xCF report, and the clearing rules of the MRA as the transitions of
:class:`ShiftState`.

Mapping onto F1–F3
------------------
* **Target day** (:func:`target_day`). The day whose shift times are still open: the day ``D``
  whose standard start time (EPC 0xC8) — ``D − 1`` at ``h``:00 for ``h`` = 20–23, ``D`` 00:00
  for 24, ``D`` 01:00 for 1 — is the first one still in the future. With the default 22: before
  22:00 the next calendar day, from 22:00 on the day after it.
* **Shift window** (:func:`shift_window`) for shift time ``h``: ``[D h:00, D h:00 + 4 h)``, cut
  at the end of the plan in force if it reaches beyond it (only possible with standard times 20
  and 21).
* **0xCB / 0xCE** (:func:`expected_energy_wh`) — for each reported hour (:data:`REPORT_HOURS`),
  the unit's up-DR potential (F1, ``FlexibilityEnvelope.up_kwh``) of that hour's shift window,
  in Wh (rounded; 0 when the window is outside the plan horizon or already begun). A live
  value, recomputed from the current state on every read.
* **0xCC / 0xCF** (:func:`energy_per_hour_wh`) — that potential divided by the hours the heat
  pump would run to deliver it: the run time at rated heat output of the net extra heat the
  plan that takes the whole potential adds in the window (so: the mean electric input while
  heating in that window, Wh per hour of heating; 0 when there is no potential).
* **0xCA / 0xCD set** — with participation on, setting shift time ``n`` to ``h`` is an up-DR
  :class:`~drready.domain.DrRequest` (F2, :func:`shift_request`) with id
  ``shift<n>-<YYYYMMDD>-<hh>`` for the shift window of the target day and the amount of the
  potential behind the reported expected energy (unrounded, at least
  :data:`MIN_SHIFT_REQUEST_KWH`); the unit re-plans (F3) and answers. A rejected request leaves
  the shift time cleared. Setting ``None`` clears it and withdraws its request. With
  participation off a set is refused (``ValueError``): the unit has not agreed to shift.
* **Clearing (MRA)** (:meth:`ShiftState.on_slot_start`). Shift time ``n`` is cleared (``None``,
  0x00) when its window begins; participation (0xC7) is cleared when the last set shift time
  has begun. Setting participation off clears both shift times and withdraws their requests
  (:meth:`ShiftState.set_participation`).

References
----------
ECHONET Consortium, "APPENDIX Detailed Requirements for ECHONET Device objects" / Machine
Readable Appendix Release R, class 0x026B (electric water heater): EPC 0xC7 participation in
energy shift, 0xC8 standard time to start heating, 0xC9 number of energy shifts, 0xCA/0xCD
daytime heating shift time 1/2 (0x09–0x11), 0xCB/0xCE expected electric energy at the shift
times, 0xCC/0xCF consumption of electric energy per hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Final
from zoneinfo import ZoneInfo

from drready.domain import Direction, DrRequest
from drready.domain.tolerances import ZERO_KWH

__all__ = [
    "ENERGY_SHIFT_ISSUER",
    "MIN_SHIFT_REQUEST_KWH",
    "REPORT_HOURS",
    "SHIFT_HOURS",
    "SHIFT_WINDOW",
    "STANDARD_START_HOURS",
    "ShiftState",
    "allowed_shift_hours",
    "check_energy_shifts",
    "check_shift_number",
    "check_standard_start_hour",
    "energy_per_hour_wh",
    "expected_energy_wh",
    "shift_request",
    "shift_window",
    "target_day",
]

SHIFT_WINDOW: Final = timedelta(hours=4)
"""Length of the heating window a daytime shift time moves heating into."""
STANDARD_START_HOURS: Final = (20, 21, 22, 23, 24, 1)
"""Allowed standard times to start heating, EPC 0xC8 (24 = midnight)."""
SHIFT_HOURS: Final = {1: tuple(range(9, 18)), 2: tuple(range(10, 18))}
"""Allowed daytime heating shift times, EPC 0xCA (shift 1) and 0xCD (shift 2) [h]; with two
energy shifts, 17:00 is not allowed for shift 1."""
REPORT_HOURS: Final = {1: (10, 13, 15, 17), 2: (13, 15, 17)}
"""Shift times whose expected energy is reported: EPC 0xCB/0xCC (shift 1), 0xCE/0xCF (shift 2)."""
ENERGY_SHIFT_ISSUER: Final = "echonet-energy-shift"
"""``DrRequest.issuer`` of the requests a set shift time makes."""
MIN_SHIFT_REQUEST_KWH: Final = 0.001
"""Smallest amount a set shift time asks for [kWh] (1 Wh, the unit of 0xCB): a shift time set
against a potential of 0 is still a request, answered "rejected" with the reason."""
MAX_WH_PER_HOUR: Final = 65533
"""Largest value of EPC 0xCC/0xCF [Wh/h] (the MRA's data range)."""
MAX_WH: Final = 4294967293
"""Largest value of EPC 0xCB/0xCE [Wh] (the MRA's data range)."""


def check_standard_start_hour(hour: int) -> None:
    """``ValueError`` unless ``hour`` is an allowed EPC 0xC8 value (20–24 or 1)."""
    if hour not in STANDARD_START_HOURS:
        raise ValueError(
            f"standard_start_hour must be one of {STANDARD_START_HOURS} (EPC 0xC8), got {hour}"
        )


def check_energy_shifts(energy_shifts: int) -> None:
    """``ValueError`` unless ``energy_shifts`` is an allowed EPC 0xC9 value, 1 or 2."""
    if energy_shifts not in (1, 2):
        raise ValueError(f"energy_shifts must be 1 or 2 (EPC 0xC9), got {energy_shifts}")


def check_shift_number(n: int, energy_shifts: int) -> None:
    """``ValueError`` unless ``n`` names one of the unit's ``energy_shifts`` shift times."""
    if n not in (1, 2) or n > energy_shifts:
        raise ValueError(
            f"shift number must be 1…{energy_shifts} "
            f"(number_of_energy_shifts={energy_shifts}), got {n}"
        )


def allowed_shift_hours(n: int, energy_shifts: int) -> tuple[int, ...]:
    """The hours shift time ``n`` may be set to (EPC 0xCA: 9–17, 0xCD: 10–17; with two energy
    shifts shift 1 ends at 16).

    >>> allowed_shift_hours(1, 2)
    (9, 10, 11, 12, 13, 14, 15, 16)
    """
    allowed = SHIFT_HOURS[n]
    return allowed[:-1] if n == 1 and energy_shifts == 2 else allowed


def target_day(local_now: datetime, standard_start_hour: int) -> date:
    """The day whose shift times are still open at ``local_now`` (in the unit's zone).

    >>> from datetime import datetime
    >>> target_day(datetime(2026, 5, 12, 21, 59), 22), target_day(datetime(2026, 5, 12, 22), 22)
    (datetime.date(2026, 5, 13), datetime.date(2026, 5, 14))
    """
    h = standard_start_hour
    if h == 1:
        return local_now.date() + timedelta(days=0 if local_now.hour < 1 else 1)
    if h == 24:
        return local_now.date() + timedelta(days=1)
    return local_now.date() + timedelta(days=1 if local_now.hour < h else 2)


def shift_window(
    day: date, hour: int, tz: ZoneInfo, not_before: datetime, plan_end: datetime
) -> tuple[datetime, datetime] | None:
    """``[day hour:00, + 4 h)`` cut at ``plan_end``; None when it begins before ``not_before``
    (the current slot) or nothing of it is left before ``plan_end``."""
    start = datetime.combine(day, dtime(hour, 0), tzinfo=tz)
    end = min(start + SHIFT_WINDOW, plan_end)
    if start < not_before or end <= start:
        return None
    return start, end


def expected_energy_wh(potential_kwh: float) -> int:
    """EPC 0xCB/0xCE value of a shift window's up-DR potential [Wh], within the MRA's range."""
    return min(round(potential_kwh * 1000.0), MAX_WH)


def energy_per_hour_wh(up_kwh: float, extra_heat_kwh: float, heat_output_kw: float) -> int:
    """EPC 0xCC/0xCF: mean electric input while heating to deliver ``up_kwh`` [Wh/h].

    ``extra_heat_kwh`` is the net heat the plan taking the whole potential adds in the window;
    the heat pump runs ``extra_heat_kwh / heat_output_kw`` hours for it. 0 without potential or
    run time.

    >>> energy_per_hour_wh(1.0, 4.5, 4.5)
    1000
    """
    if up_kwh <= ZERO_KWH:
        return 0
    hours = extra_heat_kwh / heat_output_kw
    return 0 if hours <= 0 else min(round(up_kwh / hours * 1000.0), MAX_WH_PER_HOUR)


def shift_request(
    n: int,
    day: date,
    hour: int,
    window: tuple[datetime, datetime],
    potential_kwh: float,
    issued_at: datetime,
) -> DrRequest:
    """The up-DR request (F2) setting shift time ``n`` to ``hour`` on ``day`` makes."""
    return DrRequest(
        request_id=f"shift{n}-{day:%Y%m%d}-{hour:02d}",
        direction=Direction.UP,
        start=window[0],
        end=window[1],
        amount_kwh=max(potential_kwh, MIN_SHIFT_REQUEST_KWH),
        issuer=ENERGY_SHIFT_ISSUER,
        issued_at=issued_at,
    )


@dataclass
class ShiftState:
    """EPC 0xC7 participation and the set shift times, with the MRA's transitions.

    ``shift_time[n]`` is the hour of shift ``n`` (None: cleared); a set shift time also has the
    start of its window (``shift_start``) and the id of the request it made
    (``shift_request``). Every transition returns the request ids it withdraws, for the unit to
    re-plan without them.
    """

    participation: bool = False
    shift_time: dict[int, int | None] = field(default_factory=lambda: {1: None, 2: None})
    shift_start: dict[int, datetime] = field(default_factory=dict)
    shift_request: dict[int, str] = field(default_factory=dict)

    def set_participation(self, value: bool) -> set[str]:
        """0xC7 set; off clears both shift times and withdraws their requests."""
        self.participation = bool(value)
        if value:
            return set()
        withdrawn = set(self.shift_request.values())
        self.shift_time = {1: None, 2: None}
        self.shift_start.clear()
        self.shift_request.clear()
        return withdrawn

    def clear(self, n: int) -> set[str]:
        """Shift time ``n`` cleared (0x00 set, or before a new value); its request withdrawn."""
        self.shift_time[n] = None
        self.shift_start.pop(n, None)
        old = self.shift_request.pop(n, None)
        return set() if old is None else {old}

    def record(self, n: int, hour: int, start: datetime, request_id: str) -> None:
        """Shift time ``n`` set to ``hour``: its window starts at ``start``, ``request_id``
        accepted (in full or in part)."""
        self.shift_time[n] = hour
        self.shift_start[n] = start
        self.shift_request[n] = request_id

    def on_slot_start(self, t: datetime) -> None:
        """MRA clearing at slot start ``t``: a shift time whose window has begun is cleared;
        participation with it when no set shift time is left. The request stays accepted."""
        for n in (1, 2):
            start = self.shift_start.get(n)
            if start is not None and start <= t:
                self.shift_time[n] = None
                del self.shift_start[n]
                self.shift_request.pop(n, None)
                if not self.shift_start:
                    self.participation = False
