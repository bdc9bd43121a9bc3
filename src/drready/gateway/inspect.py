"""An installer's diagnostic: what the gateway would send upstream for each water heater (C1, F1,
F5, F6).

:func:`inspect_home` discovers the water heaters on the LAN (multicast plus unicast probing of
given addresses) and, per unit, reads what the gateway would offer the servicer for a window:
its identity (F6), its level (``dr-ready`` or ``standard``, :mod:`drready.gateway.capability`),
its DR potential (F1: up and down kWh) and its power now (F5, measured or estimated). A unit it
cannot use is listed with the reason. ``drready gateway inspect`` prints the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from drready.domain import FlexibilityEnvelope
from drready.echonet.controller import EchonetController
from drready.echonet.errors import EchonetError
from drready.gateway.capability import DEFAULT_EXTENSION_MAKERS, Level
from drready.gateway.home import HomeGateway, WaterHeaterLink, unique_links
from drready.gateway.ven import MAX_LINK_WINDOW, join_envelopes

__all__ = ["UnitReport", "inspect_home", "window_on"]


@dataclass(frozen=True)
class UnitReport:
    """One unit as the gateway sees it (None where not known; ``reason`` when unusable)."""

    address: str
    eoj: str
    device_id: str | None
    level: str
    up_kwh: float | None
    down_kwh: float | None
    power_kw: float | None
    power_source: str | None
    reason: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "address": self.address,
            "eoj": self.eoj,
            "device_id": self.device_id,
            "level": self.level,
            "up_kwh": None if self.up_kwh is None else round(self.up_kwh, 3),
            "down_kwh": None if self.down_kwh is None else round(self.down_kwh, 3),
            "power_kw": None if self.power_kw is None else round(self.power_kw, 3),
            "power_source": self.power_source,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def window_on(
    start: time, end: time, now: datetime, day: date | None = None
) -> tuple[datetime, datetime]:
    """``[start, end)`` on ``day``, or on the first day (today or tomorrow, in ``now``'s zone)
    whose ``start`` is still ahead; an ``end`` not after ``start`` is on the next day.

    >>> from zoneinfo import ZoneInfo
    >>> now = datetime(2026, 5, 12, 11, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    >>> [t.isoformat() for t in window_on(time(10), time(14), now)]
    ['2026-05-13T10:00:00+09:00', '2026-05-13T14:00:00+09:00']
    """
    tz = now.tzinfo
    if day is None:
        day = now.date()
        if datetime.combine(day, start, tzinfo=tz) <= now:
            day += timedelta(days=1)
    t0 = datetime.combine(day, start, tzinfo=tz)
    t1 = datetime.combine(day, end, tzinfo=tz)
    if t1 <= t0:
        t1 += timedelta(days=1)
    return t0, t1


async def _envelope(link: WaterHeaterLink, start: datetime, end: datetime) -> FlexibilityEnvelope:
    if link.level is Level.STANDARD:
        return await link.flexibility_envelope(start, end)
    parts = []
    t = start
    while t < end:
        t_next = min(t + MAX_LINK_WINDOW, end)
        parts.append(await link.flexibility_envelope(t, t_next))
        t = t_next
    return join_envelopes(parts)


async def _unit(
    link: WaterHeaterLink, start: datetime, end: datetime, timeout_s: float
) -> UnitReport:
    where = (link.address, str(link.eoj))
    device: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            device = str(await link.device_id())
            cap = await link.capability()
            if cap.level is Level.UNUSABLE:
                return UnitReport(
                    *where, device, str(cap.level), None, None, None, None, cap.reason
                )
            env = await _envelope(link, start, end)
            sample = await link.power_sample()
    except (TimeoutError, OSError, EchonetError, ValueError) as err:
        reason = str(err) or f"no answer within {timeout_s:g} s"
        return UnitReport(*where, device, str(Level.UNUSABLE), None, None, None, None, reason)
    return UnitReport(
        *where,
        device,
        str(cap.level),
        env.up_kwh,
        env.down_kwh,
        sample.power_w / 1000.0,
        str(sample.source),
    )


async def inspect_home(
    controller: EchonetController,
    start: datetime,
    end: datetime,
    *,
    hosts: Iterable[str] = (),
    discovery_window_s: float = 2.0,
    unit_timeout_s: float = 60.0,
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS,
    clock: Callable[[], datetime] | None = None,
) -> list[UnitReport]:
    """Every water heater found (multicast plus unicast to ``hosts``) and what the gateway
    would send upstream for ``[start, end)``, the units read concurrently."""
    home = HomeGateway(controller, clock=clock, extension_makers=extension_makers, known=set(hosts))
    links = unique_links(await home.discover(discovery_window_s, multicast=True))
    return list(await asyncio.gather(*(_unit(li, start, end, unit_timeout_s) for li in links)))
