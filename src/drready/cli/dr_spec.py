"""``drready plan --request SPEC``: the command line's compact spelling of a DR request (F2).

``up|down:HH:MM-HH:MM:KWH`` for a day in a time zone, e.g. ``up:10:00-13:00:3.0``. A format of
the command line only, so it lives here and not in the domain model: the library takes
:class:`~drready.domain.DrRequest` objects, which validate themselves.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from datetime import time as dtime

from drready.domain import Direction, DrRequest
from drready.domain.time import DEFAULT_TZ, zone

__all__ = ["parse_dr_spec"]

_CLI_FORMAT = "'up|down:HH:MM-HH:MM:KWH' (e.g. 'up:10:00-13:00:3.0')"
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
    ``"<direction>-<HHMM>-<HHMM>"`` (``"up-1000-1300"``); ``issued_at`` defaults to now.

    Raises
    ------
    ValueError
        Naming the bad part of ``spec`` (direction, times, amount) or, as a pydantic
        ``ValidationError``, the rule the resulting request breaks (e.g. alignment).
    """
    zi = zone(tz)
    head, sep, rest = spec.strip().partition(":")
    if not sep:
        raise ValueError(f"DR spec {spec!r} must look like {_CLI_FORMAT}")
    direction_text = head.strip().lower()
    if direction_text not in {d.value for d in Direction}:
        raise ValueError(
            f"direction {head!r} in DR spec {spec!r} must be 'up' or 'down' (format {_CLI_FORMAT})"
        )
    direction = Direction(direction_text)
    window_text, sep, amount_text = rest.rpartition(":")
    if not sep or "-" not in window_text:
        raise ValueError(f"DR spec {spec!r} must look like {_CLI_FORMAT}")
    try:
        amount_kwh = float(amount_text)
    except ValueError as err:
        raise ValueError(
            f"amount {amount_text!r} in DR spec {spec!r} must be a number of kWh "
            f"(format {_CLI_FORMAT})"
        ) from err
    if not math.isfinite(amount_kwh) or amount_kwh <= 0:
        raise ValueError(f"amount {amount_text!r} in DR spec {spec!r} must be finite and > 0 kWh")
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
