"""``drready plan --request SPEC``: the command line's compact spelling of a DR request (F2).

Two forms, for a day in a time zone:

* ``up|down:HH:MM-HH:MM:KWH`` — an amount over a window, e.g. ``up:10:00-13:00:3.0``;
* ``start:HH:MM[:KWH]`` — F2 by start time alone, the study group's wording ("start heating at
  13:00", issue 13 item 4), e.g. ``start:13:00``: an up-DR request for the 4 hours from that
  time (``DrRequest.at_start_time``); without an amount the unit heats there as much as its
  plan allows and answers with that amount, with one it is asked for that amount.

A format of the command line only, so it lives here and not in the domain model: the library
takes :class:`~drready.domain.DrRequest` objects, which validate themselves.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime

from pydantic import ValidationError

from drready.domain import Direction, DrRequest
from drready.domain.time import DEFAULT_TZ, zone

__all__ = ["parse_dr_spec", "spec_error_line"]

_CLI_FORMAT = (
    "'up|down:HH:MM-HH:MM:KWH' (e.g. 'up:10:00-13:00:3.0') or 'start:HH:MM[:KWH]' "
    "(e.g. 'start:13:00')"
)
START = "start"
"""The head of the start-time form."""
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})")


def parse_dr_spec(
    spec: str,
    day: date,
    tz: str = DEFAULT_TZ,
    request_id: str | None = None,
    issued_at: datetime | None = None,
) -> DrRequest:
    """Parse a command-line spec such as ``"up:10:00-13:00:3.0"`` for ``day`` in ``tz``.

    ``"24:00"`` is accepted as an end time (the next midnight). The default request id is
    ``"<direction>-<HHMM>-<HHMM>"`` (``"up-1000-1300"``), ``"start-<HHMM>"`` for the start-time
    form (``"start:13:00"``); ``issued_at`` defaults to now.

    Raises
    ------
    ValueError
        Naming the bad part of ``spec`` (direction, times, amount) or, as a pydantic
        ``ValidationError``, the rule the resulting request breaks (e.g. alignment):
        :func:`spec_error_line` makes either one line.
    """
    return _parse(spec, day, tz, request_id, issued_at)


def spec_error_line(spec: str, err: ValueError) -> str:
    """One line for the command line from an error of :func:`parse_dr_spec`.

    >>> spec_error_line("up:1", ValueError("DR spec 'up:1' must look like …"))
    "DR spec 'up:1' must look like …"
    """
    if isinstance(err, ValidationError):
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())
        return f"DR spec {spec!r}: {reasons}"
    return str(err).splitlines()[-1].strip()


def _parse(
    spec: str, day: date, tz: str, request_id: str | None, issued_at: datetime | None
) -> DrRequest:
    zi = zone(tz)
    head, sep, rest = spec.strip().partition(":")
    if not sep:
        raise ValueError(f"DR spec {spec!r} must look like {_CLI_FORMAT}")
    direction_text = head.strip().lower()
    if direction_text == START:
        return _parse_start(spec, rest, day, zi, request_id, issued_at)
    if direction_text not in {d.value for d in Direction}:
        raise ValueError(
            f"direction {head!r} in DR spec {spec!r} must be 'up', 'down' or 'start' "
            f"(format {_CLI_FORMAT})"
        )
    direction = Direction(direction_text)
    window_text, sep, amount_text = rest.rpartition(":")
    if not sep or "-" not in window_text:
        raise ValueError(f"DR spec {spec!r} must look like {_CLI_FORMAT}")
    amount_kwh = _parse_amount(amount_text, spec)
    start_text, _, end_text = window_text.partition("-")
    start_hm = _parse_clock(start_text, "start time", spec, allow_24=False)
    end_hm = _parse_clock(end_text, "end time", spec, allow_24=True)

    def at(hm: tuple[int, int]) -> datetime:
        if hm == (24, 0):
            return datetime.combine(day + timedelta(days=1), dtime(0, 0), tzinfo=zi)
        return datetime.combine(day, dtime(*hm), tzinfo=zi)

    if request_id is None:
        request_id = f"{direction.value}-{start_hm[0]:02d}{start_hm[1]:02d}-" + (
            f"{end_hm[0]:02d}{end_hm[1]:02d}"
        )
    return DrRequest(
        request_id=request_id,
        direction=direction,
        start=at(start_hm),
        end=at(end_hm),
        amount_kwh=amount_kwh,
        issued_at=issued_at if issued_at is not None else datetime.now(zi),
    )


def _parse_start(
    spec: str,
    rest: str,
    day: date,
    zi: tzinfo,
    request_id: str | None,
    issued_at: datetime | None,
) -> DrRequest:
    """``start:HH:MM[:KWH]`` (``rest`` is what follows ``start:``)."""
    parts = rest.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"DR spec {spec!r} must look like {_CLI_FORMAT}")
    hm = _parse_clock(":".join(parts[:2]), "start time", spec, allow_24=False)
    amount_kwh = _parse_amount(parts[2], spec) if len(parts) == 3 else None
    start = datetime.combine(day, dtime(*hm), tzinfo=zi)
    return DrRequest.at_start_time(
        request_id if request_id is not None else f"{START}-{hm[0]:02d}{hm[1]:02d}",
        start,
        issued_at if issued_at is not None else datetime.now(zi),
        amount_kwh=amount_kwh,
    )


def _parse_amount(amount_text: str, spec: str) -> float:
    try:
        amount_kwh = float(amount_text)
    except ValueError as err:
        raise ValueError(
            f"amount {amount_text!r} in DR spec {spec!r} must be a number of kWh "
            f"(format {_CLI_FORMAT})"
        ) from err
    if not math.isfinite(amount_kwh) or amount_kwh <= 0:
        raise ValueError(f"amount {amount_text!r} in DR spec {spec!r} must be finite and > 0 kWh")
    return amount_kwh


def _parse_clock(text: str, what: str, spec: str, *, allow_24: bool) -> tuple[int, int]:
    m = _CLOCK_RE.fullmatch(text.strip())
    allowed = "00:00–24:00" if allow_24 else "00:00–23:59"
    if m is None:
        raise ValueError(
            f"{what} {text!r} in DR spec {spec!r} must be HH:MM ({allowed}; format {_CLI_FORMAT})"
        )
    hour, minute = int(m.group(1)), int(m.group(2))
    ok = (0 <= hour <= 23 and 0 <= minute <= 59) or (allow_24 and (hour, minute) == (24, 0))
    if not ok:
        raise ValueError(f"{what} {text!r} in DR spec {spec!r} must be in {allowed}")
    return hour, minute
