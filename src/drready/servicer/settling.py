"""The running servicer's daily settlement: each closed dispatch settled from the 30-minute meter
history the servicer keeps (U2, D2, D6; issue 11 item 2).

:func:`settle_due` is the settlement job of the schedule (:mod:`drready.servicer.run`). For
every dispatch whose window is over, that is closed and not settled yet, it

1. takes the resources that **accepted** the event on time (accepted or partial, not late) —
   only they took part: a resource that refused delivered nothing it is paid for, and crediting
   it with its own load shifts would pay it for other events
   (:func:`drready.servicer.core.settlement.settle_event` settles exactly the ``resource_ids``
   it is given);
2. reads their meter slots (``meter_slot``, posted to ``POST /api/v1/meter-readings``) for the
   event day and the :data:`LOOKBACK_DAYS` days before it, the look-back of the ERAB baseline
   ("High 4 of 5" on weekdays, "High 2 of 3" on weekends and Japanese holidays, same-day
   adjustment left out when another DR window of the day overlaps its hours, earlier DR days of
   the resource excluded);
3. settles them (:func:`~drready.servicer.core.settlement.settle_event`): per resource and slot
   the baseline, the metered use, the delivered energy, what was **requested** of it and what it
   **accepted** — two columns of the CSV, never one for the other — and the reason for each
   resource without a baseline;
4. stores the result and its CSV once (``settlement``) and marks the order ``settled``.

A dispatch whose accepting resources have no meter reading in the window yet waits for the next
run; after :data:`METER_WAIT` it is settled with the reasons. Meter slots older than the oldest
look-back still needed, and power readings older than :data:`POWER_KEPT`, are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta

import holidays
import numpy as np
from pydantic import Field

from drready.domain import DEFAULT_TZ, Direction, DomainModel, Instant
from drready.domain.time import zone
from drready.servicer.core.baseline import SLOTS_PER_DAY, BaselineConfig, EventWindow
from drready.servicer.core.settlement import EventSettlement, settle_event
from drready.servicer.storage.dispatches import DispatchRecord
from drready.servicer.storage.lifecycle import (
    AssignmentStatus,
    DispatchStatus,
    OrderEvent,
    OrderStatus,
)
from drready.servicer.storage.registry import ResourceRecord
from drready.servicer.storage.store import ServicerStore

__all__ = [
    "LOOKBACK_DAYS",
    "METER_WAIT",
    "POWER_KEPT",
    "SettledEvent",
    "SettledResource",
    "SettledRoute",
    "settle_dispatch",
    "settle_due",
]

_log = logging.getLogger("drready.servicer.settling")

#: Days of meter history before an event day that its baseline may look at (the guideline's
#: "past 30 days"), kept by the servicer.
LOOKBACK_DAYS = BaselineConfig().lookback_days
#: How long a dispatch waits for its meter data before it is settled with reasons.
METER_WAIT = timedelta(days=7)
#: How long F5 power readings are kept (live figures and the dashboard only).
POWER_KEPT = timedelta(days=7)
_COMMITTED = (AssignmentStatus.ACCEPTED, AssignmentStatus.PARTIAL)


class SettledResource(DomainModel):
    """One resource's settlement over the window [kWh]."""

    resource_name: str
    route: str = Field(description="'gateway' (route i) or 'cloud' (route ii).")
    requested_kwh: float = Field(ge=0.0, description="Asked of it, over every round.")
    accepted_kwh: float = Field(ge=0.0, description="Accepted on time.")
    baseline_kwh: float
    actual_kwh: float
    delivered_kwh: float


class SettledRoute(DomainModel):
    """The settled resources of one route, summed [kWh]."""

    route: str
    n_resources: int = Field(ge=0)
    requested_kwh: float = Field(ge=0.0)
    accepted_kwh: float = Field(ge=0.0)
    delivered_kwh: float


class SettledEvent(DomainModel):
    """A dispatch settled from meter data (what ``GET /api/v1/settlements/{date}`` lists)."""

    dispatch_id: int
    order_id: str | None
    event_id: str = Field(description="The id in the CSV's event_id column.")
    direction: Direction
    window_start: Instant
    window_end: Instant
    settled_at: Instant
    baseline_rule: str
    resources: tuple[SettledResource, ...]
    routes: tuple[SettledRoute, ...]
    requested_kwh: float = Field(ge=0.0)
    accepted_kwh: float = Field(ge=0.0)
    delivered_kwh: float
    unsettled: dict[str, str] = Field(
        default_factory=dict, description="Accepting resources without a baseline: the reason."
    )
    note: str | None = None


def _midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone(tz))


def _window(record: DispatchRecord, tz: str) -> EventWindow:
    return EventWindow.from_times(record.window_start, record.window_end, tz)


def _day_windows(records: Sequence[DispatchRecord], tz: str) -> dict[int, EventWindow]:
    """The event window of each dispatch that lies within one local day (the others cannot be
    settled by a daily baseline and are left out)."""
    out = {}
    for r in records:
        try:
            out[r.id] = _window(r, tz)
        except ValueError as err:
            _log.warning("dispatch not settled: %s", err, extra={"dispatch_id": r.id})
    return out


def _shares(record: DispatchRecord) -> tuple[dict[str, float], dict[str, float]]:
    """Requested (every round) and accepted (on time) per resource id of a dispatch."""
    requested: dict[str, float] = {}
    accepted: dict[str, float] = {}
    for a in record.assignments:
        requested[a.resource_id] = requested.get(a.resource_id, 0.0) + a.requested_kwh
        if a.status in _COMMITTED and not a.late and (a.accepted_kwh or 0.0) > 0.0:
            accepted[a.resource_id] = accepted.get(a.resource_id, 0.0) + (a.accepted_kwh or 0.0)
    return requested, accepted


def _config(days: Sequence[date]) -> BaselineConfig:
    years = {d.year for d in days}
    return BaselineConfig(holidays=frozenset(holidays.country_holidays("JP", years=years)))


def settle_dispatch(
    store: ServicerStore,
    resources: Mapping[str, ResourceRecord],
    record: DispatchRecord,
    *,
    now: datetime,
    others: Sequence[DispatchRecord] = (),
    tz: str = DEFAULT_TZ,
    force: bool = False,
) -> SettledEvent | None:
    """Settle one closed dispatch (see the module docstring) and store it; ``None`` when its
    accepting resources have no meter data in the window yet and ``force`` is false.

    ``resources``: the registry by resource id; ``others``: the other dispatches (for the DR
    windows of the day and the resources' earlier DR days).
    """
    order = store.order_by_dispatch(record.id)
    event_id = order.id if order is not None else f"dispatch-{record.id}"
    requested, accepted = _shares(record)
    ids = sorted(accepted)
    names = [resources[i].resource_name if i in resources else i for i in ids]
    route = {i: (resources[i].route.value if i in resources else "cloud") for i in ids}
    window = _window(record, tz)
    days = [window.day - timedelta(days=LOOKBACK_DAYS - k) for k in range(LOOKBACK_DAYS + 1)]
    result: EventSettlement | None = None
    note: str | None = None
    if ids:
        matrix = store.meter_slots(
            resource_ids=ids,
            start=_midnight(days[0], tz),
            end=_midnight(window.day + timedelta(days=1), tz),
        )
        meter = matrix.energy_kwh.reshape(len(ids), len(days), SLOTS_PER_DAY)
        in_window = meter[:, -1, window.start_slot : window.end_slot]
        if not np.isfinite(in_window).any() and not force:
            return None
        windows = _day_windows([o for o in others if o.id != record.id], tz)
        earlier: dict[str, set[date]] = {r: set() for r in ids}
        for o in others:
            w = windows.get(o.id)
            if w is None or w.day == window.day:
                continue
            for rid in _shares(o)[1]:
                if rid in earlier:
                    earlier[rid].add(w.day)
        dr_days = [earlier[r] for r in ids]
        result = settle_event(
            meter,
            days,
            window,
            event_id=event_id,
            direction=record.direction,
            resource_ids=names,
            requested_kwh=[requested[i] for i in ids],
            accepted_kwh=[accepted[i] for i in ids],
            config=_config(days),
            other_windows=[w for w in windows.values() if w.day == window.day],
            dr_days=dr_days,
        )
    else:
        note = "no resource accepted the event: nothing to settle"
    settled = []
    if result is not None and result.settlement is not None:
        by_name = dict(zip(names, ids, strict=True))
        for res in result.settlement.resources:
            rid = by_name[res.resource_id]
            settled.append(
                SettledResource(
                    resource_name=res.resource_id,
                    route=route[rid],
                    requested_kwh=requested[rid],
                    accepted_kwh=accepted[rid],
                    baseline_kwh=res.total_baseline_kwh,
                    actual_kwh=res.total_actual_kwh,
                    delivered_kwh=res.total_delivered_kwh,
                )
            )
    routes = tuple(
        SettledRoute(
            route=r,
            n_resources=sum(1 for s in settled if s.route == r),
            requested_kwh=sum(s.requested_kwh for s in settled if s.route == r),
            accepted_kwh=sum(s.accepted_kwh for s in settled if s.route == r),
            delivered_kwh=sum(s.delivered_kwh for s in settled if s.route == r),
        )
        for r in ("gateway", "cloud")
    )
    event = SettledEvent(
        dispatch_id=record.id,
        order_id=None if order is None else order.id,
        event_id=event_id,
        direction=record.direction,
        window_start=record.window_start,
        window_end=record.window_end,
        settled_at=now,
        baseline_rule=str(_config(days)) if ids else "",
        resources=tuple(settled),
        routes=routes,
        requested_kwh=sum(s.requested_kwh for s in settled),
        accepted_kwh=sum(s.accepted_kwh for s in settled),
        delivered_kwh=sum(s.delivered_kwh for s in settled),
        unsettled={} if result is None else dict(result.unsettled),
        note=note,
    )
    csv_text = (
        "" if result is None or result.settlement is None else result.settlement.to_csv_text()
    )
    if store.save_settlement(
        dispatch_id=record.id,
        event_day=window.day,
        result=event.model_dump(mode="json"),
        csv=csv_text,
        settled_at=now,
    ):
        _log.info(
            "dispatch settled: %.3f kWh delivered by %d resources",
            event.delivered_kwh,
            len(settled),
            extra={"dispatch_id": record.id, "order_id": event.order_id},
        )
    if order is not None and order.status is OrderStatus.DELIVERED:
        store.apply_order_event(order_id=order.id, event=OrderEvent.SETTLE, at=now)
    return event


def settle_due(
    store: ServicerStore,
    resources: Sequence[ResourceRecord],
    *,
    now: datetime,
    tz: str = DEFAULT_TZ,
) -> list[int]:
    """Settle every closed dispatch whose window is over and that is not settled yet (those
    without meter data wait, up to :data:`METER_WAIT`), then delete meter slots no baseline
    needs any more and old power readings. Returns the ids of the dispatches settled."""
    by_id = {r.id: r for r in resources}
    records = store.dispatches()
    windows = _day_windows(records, tz)
    settled_ids = store.settled_dispatch_ids()
    done: list[int] = []
    waiting_days: list[date] = []
    for record in records:
        if record.id in settled_ids or record.id not in windows:
            continue
        if record.status is not DispatchStatus.CLOSED or record.window_end > now:
            waiting_days.append(windows[record.id].day)
            continue
        force = now - record.window_end >= METER_WAIT
        if settle_dispatch(store, by_id, record, now=now, others=records, tz=tz, force=force):
            done.append(record.id)
        else:
            waiting_days.append(windows[record.id].day)
    today = now.astimezone(zone(tz)).date()
    oldest = min([today, *waiting_days])
    store.prune_readings(
        meter_before=_midnight(oldest - timedelta(days=LOOKBACK_DAYS), tz),
        power_before=now - POWER_KEPT,
    )
    return done
