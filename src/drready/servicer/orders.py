"""Orders of the north-bound API carried out by the servicer's BL (U2, D3, F1, F2, F5; issue 11
item 2: dispatch of accepted orders, follow-up and re-dispatch of shortfall, F5 during windows).

An order (:mod:`drready.servicer.storage.orders`) says what to deliver: a direction, a window and
an energy or a power per slot. :class:`OrderDesk` moves each order along its life
(:data:`~drready.servicer.storage.lifecycle.ORDER_LIFE`) with the servicer's own steps
(:class:`~drready.servicer.service.Servicer`):

1. ``requested`` → ask every resource for its potential in the order's window (F1) →
   ``collecting``;
2. once every resource asked has answered, or ``potential_wait`` has passed, or the dispatch
   deadline is one step away: split the target over the resources that declared potential and
   send their DR events (F2) → ``dispatched`` (``rejected`` when nobody declared any); the
   dispatch is labelled with the order's id, so a servicer killed in between finds it on restart
   instead of dispatching the order twice; an order by heating start time alone (``kind``
   ``start_time``, issue 17) sends instead one event without amount to each resource that
   declared up potential (:meth:`Servicer.dispatch_start_time`, profile OA-F2-2): its target is
   0 kWh, so what the units accept is what it gets, with no shortfall and no re-dispatch;
3. follow-up of the dispatch (:meth:`Servicer.follow_up`: answers, silence, re-dispatch of the
   shortfall in further rounds, D3) and the order's status from what it shows
   (:func:`order_event`, a pure function of the facts);
4. F5 power reports collected while the window runs (:meth:`OrderDesk.collect_power`), and
   once more when the order is delivered, for the reports of the window's last minutes.

An order not dispatched by its deadline (by default its window's start) expires.

Figures (:func:`order_figures`): per route — route i, home gateways; route ii, maker clouds, from
the VEN's route in the registry — what was requested of the resources, what they accepted and
what they **delivered so far**: for each resource that accepted and each slot of the window
that has ended, its energy in the slot (the 30-minute meter reading when one was posted to
``POST /api/v1/meter-readings``, else the F5 energy counter across the slot) minus the baseline
it declared with its potential (F1), in the order's direction. This is the live figure; the
settlement (:mod:`drready.servicer.settling`) later pays by the ERAB baseline from 30 days of
meter history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from drready.domain import SLOT, SLOT_HOURS, Direction, DomainModel, FlexibilityEnvelope, Instant
from drready.openadr.ven import VenError
from drready.servicer.core.dispatch import EnergyTarget, PowerTarget
from drready.servicer.service import Servicer
from drready.servicer.storage.dispatches import DispatchRecord
from drready.servicer.storage.lifecycle import (
    AssignmentStatus,
    DispatchStatus,
    OrderEvent,
    OrderStatus,
)
from drready.servicer.storage.orders import START_TIME, OrderRecord
from drready.servicer.storage.registry import ResourceRecord
from drready.servicer.storage.store import ServicerStore

__all__ = [
    "DispatchFacts",
    "OrderDesk",
    "OrderFigures",
    "ResourceFigures",
    "RouteFigures",
    "delivered_so_far",
    "order_event",
    "order_figures",
    "slot_energies_from_counter",
]

_log = logging.getLogger("drready.servicer.orders")

FloatArray = npt.NDArray[np.float64]
Route = Literal["gateway", "cloud"]
#: The routes, in the order figures list them: route i (home gateways), route ii (maker clouds).
ROUTES: tuple[Route, ...] = ("gateway", "cloud")
_AWAITING = (AssignmentStatus.PENDING, AssignmentStatus.SENT)
_COMMITTED = (AssignmentStatus.ACCEPTED, AssignmentStatus.PARTIAL)
#: Farthest an F5 counter is extrapolated beyond its samples to a slot boundary [s]: a VEN's
#: power reports start inside the window and stop before its end (one a minute or so; at
#: most half a slot is estimated so).
EXTRAPOLATION_S = 900.0
#: The reason an order records with an event of its follow-up (the others need none).
_REASONS = {
    OrderEvent.REFUSE: "nothing accepted: every resource asked refused or stayed silent",
}
#: Most events one follow-up may apply to an order (e.g. rejected → accepted → delivering).
_MAX_EVENTS_PER_STEP = 4


# ------------------------------------------------------------------------- the order's status
@dataclass(frozen=True)
class DispatchFacts:
    """What an order's status follows from, once dispatched."""

    now: datetime
    window_start: datetime
    awaiting: bool
    """Some DR event of the dispatch is still unsent or unanswered."""
    accepted_kwh: float
    """Accepted on time, over every round [kWh]."""
    closed: bool
    """The dispatch is closed (its window is over and nothing is awaited)."""


def order_event(status: OrderStatus, facts: DispatchFacts) -> OrderEvent | None:
    """The event a dispatched order takes from ``facts``, or ``None`` (see the module
    docstring of :mod:`drready.servicer.storage.lifecycle` for what each event means).

    Apply it and ask again: one follow-up may move an order more than one step (a rejected
    order whose re-dispatch was accepted after its window began: accept, then start).
    """
    started = facts.now >= facts.window_start
    something = facts.accepted_kwh > 0.0
    if status is OrderStatus.DISPATCHED:
        if something and started:
            return OrderEvent.START
        if facts.awaiting:
            return None
        return OrderEvent.ACCEPT if something else OrderEvent.REFUSE
    if status is OrderStatus.ACCEPTED:
        if something and started:
            return OrderEvent.START
        if facts.awaiting:
            return OrderEvent.REDISPATCH
        return None if something else OrderEvent.REFUSE
    if status is OrderStatus.REJECTED:
        if facts.awaiting:
            return OrderEvent.REDISPATCH
        return OrderEvent.ACCEPT if something else None
    if status is OrderStatus.DELIVERING:
        return OrderEvent.END if facts.closed else None
    return None


def dispatch_facts(record: DispatchRecord, now: datetime) -> DispatchFacts:
    """The facts of a dispatch as stored."""
    return DispatchFacts(
        now=now,
        window_start=record.window_start,
        awaiting=any(a.status in _AWAITING for a in record.assignments),
        accepted_kwh=sum(
            a.accepted_kwh or 0.0
            for a in record.assignments
            if a.status in _COMMITTED and not a.late
        ),
        closed=record.status is DispatchStatus.CLOSED,
    )


# ------------------------------------------------------------------------- delivery, pure
def slot_energies_from_counter(
    t_s: npt.ArrayLike,
    counter_kwh: npt.ArrayLike,
    edges_s: npt.ArrayLike,
    max_extrapolation_s: float = EXTRAPOLATION_S,
) -> FloatArray:
    """Energy per slot [kWh] from an energy counter's samples (F5), NaN where the samples do
    not reach the slot's boundaries.

    Between samples the counter is interpolated linearly. A boundary up to
    ``max_extrapolation_s`` before the first sample or after the last is extrapolated along the
    first or last pair of samples: a VEN reports power only inside the DR window (from its
    start, until before its end), so the window's own two boundaries are never between samples.

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Sample times [s] (any epoch), increasing.
    counter_kwh : array_like, shape (n,)
        Cumulative energy at those times [kWh]; NaN samples are ignored.
    edges_s : array_like, shape (S + 1,)
        Slot boundaries [s], same epoch.
    max_extrapolation_s : float
        Farthest a boundary may lie outside the samples' span [s].

    Returns
    -------
    ndarray, shape (S,)
        The counter's rise across each slot; NaN for a slot with a boundary out of reach.

    Examples
    --------
    >>> slot_energies_from_counter([60, 900, 1740], [1.02, 1.3, 1.58],
    ...                            [0, 1800, 3600]).round(6).tolist()
    [0.6, nan]
    """
    t = np.asarray(t_s, dtype=np.float64)
    c = np.asarray(counter_kwh, dtype=np.float64)
    edges = np.asarray(edges_s, dtype=np.float64)
    keep = np.isfinite(c) & np.isfinite(t)
    t, c = t[keep], c[keep]
    out = np.full(edges.size - 1, np.nan)
    if t.size < 2:
        return out
    at_edges = np.interp(edges, t, c)
    before = edges < t[0]
    after = edges > t[-1]
    head_rate = (c[1] - c[0]) / (t[1] - t[0])
    tail_rate = (c[-1] - c[-2]) / (t[-1] - t[-2])
    at_edges[before] = c[0] - head_rate * (t[0] - edges[before])
    at_edges[after] = c[-1] + tail_rate * (edges[after] - t[-1])
    reach = (edges >= t[0] - max_extrapolation_s) & (edges <= t[-1] + max_extrapolation_s)
    rise = np.diff(at_edges)
    ok = reach[:-1] & reach[1:]
    out[ok] = rise[ok]
    return out


def delivered_so_far(
    direction: Direction, baseline_kw: npt.ArrayLike, energy_kwh: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Delivered energy per resource over the slots measured [kWh], and how many slots.

    ``baseline_kw`` (R, S): the baseline each resource declared, mean kW per slot; ``energy_kwh``
    (R, S): its measured energy per slot, NaN where not (yet) measured. Delivered in a slot is
    ``energy − baseline × 0.5 h`` for up-DR and ``baseline × 0.5 h − energy`` for down-DR.

    Examples
    --------
    >>> d, n = delivered_so_far(Direction.UP, [[1.0, 1.0, 1.0]], [[0.75, np.nan, 0.5]])
    >>> d.tolist(), n.tolist()
    ([0.25], [2])
    """
    base = np.asarray(baseline_kw, dtype=np.float64) * SLOT_HOURS
    energy = np.asarray(energy_kwh, dtype=np.float64)
    diff = energy - base if direction is Direction.UP else base - energy
    known = np.isfinite(diff)
    return np.where(known, diff, 0.0).sum(axis=1), known.sum(axis=1).astype(np.int64)


# ------------------------------------------------------------------------- figures
class RouteFigures(DomainModel):
    """An order's figures over the resources of one route [kWh]."""

    route: Route = Field(description="'gateway' (route i, home gateways) or 'cloud' (route ii).")
    n_resources: int = Field(ge=0, description="Resources of this route asked for a share.")
    requested_kwh: float = Field(ge=0.0, description="Asked of them, over every round.")
    accepted_kwh: float = Field(ge=0.0, description="Accepted on time.")
    delivered_kwh: float = Field(description="Delivered so far by those that accepted.")


class ResourceFigures(DomainModel):
    """An order's figures for one resource [kWh]."""

    resource_name: str
    route: Route
    status: str = Field(description="Status of its latest DR event (assignment).")
    requested_kwh: float = Field(ge=0.0)
    accepted_kwh: float = Field(ge=0.0)
    baseline_kwh: float | None = Field(
        description="Baseline it declared for the window (F1); None if unknown."
    )
    delivered_kwh: float | None = Field(description="Delivered so far; None unless it accepted.")
    measured_slots: int = Field(ge=0, description="Ended slots with a meter or F5 energy.")


class OrderFigures(DomainModel):
    """What an order has got so far [kWh] (see the module docstring for ``delivered``)."""

    computed_at: Instant
    target_kwh: float = Field(ge=0.0, description="What the order asks over the window.")
    potential_kwh: float | None = Field(
        description="Portfolio potential declared for the window in the order's direction."
    )
    requested_kwh: float = Field(ge=0.0)
    accepted_kwh: float = Field(ge=0.0)
    delivered_kwh: float
    shortfall_kwh: float = Field(ge=0.0, description="Target not accepted (≥ 0).")
    rounds: int = Field(ge=0, description="Dispatch rounds so far.")
    slots_ended: int = Field(ge=0, description="Slots of the window that have ended.")
    routes: tuple[RouteFigures, ...]
    resources: tuple[ResourceFigures, ...] = ()


def _route(r: ResourceRecord | None) -> Route:
    return "gateway" if r is not None and r.route.value == "gateway" else "cloud"


def _declared_baseline_kw(
    envelopes: Mapping[str, FlexibilityEnvelope], names: Sequence[str], n_slots: int
) -> FloatArray:
    out = np.full((len(names), n_slots), np.nan)
    for i, name in enumerate(names):
        env = envelopes.get(name)
        if env is not None and len(env.slots) == n_slots:
            out[i] = [s.baseline_kw for s in env.slots]
    return out


def _measured_energy(
    store: ServicerStore,
    resource_ids: Sequence[str],
    start: datetime,
    n_slots: int,
    ended: int,
) -> FloatArray:
    """Energy per (resource, slot) of the window's ended slots: meter, else F5 counter."""
    energy = np.full((len(resource_ids), n_slots), np.nan)
    if not resource_ids or ended == 0:
        return energy
    end = start + n_slots * SLOT
    meter = store.meter_slots(resource_ids=list(resource_ids), start=start, end=end)
    energy[:, :ended] = meter.energy_kwh[:, :ended]
    edges = np.array([(start + k * SLOT).timestamp() for k in range(ended + 1)])
    for i, rid in enumerate(resource_ids):
        missing = ~np.isfinite(energy[i, :ended])
        if not missing.any():
            continue
        series = store.power_readings(resource_id=rid, start=start - SLOT, end=end + SLOT)
        if len(series.timestamps) < 2:
            continue
        t_s = np.array([t.timestamp() for t in series.timestamps])
        counter = slot_energies_from_counter(t_s, series.cumulative_kwh, edges)
        energy[i, :ended] = np.where(missing, counter, energy[i, :ended])
    return energy


def order_figures(
    store: ServicerStore,
    servicer: Servicer,
    order: OrderRecord,
    *,
    now: datetime,
    record: DispatchRecord | None = None,
) -> OrderFigures:
    """The order's figures at ``now`` from the servicer's records (no VTN request)."""
    resources = {r.id: r for r in servicer.registry.list_resources()}
    potential: float | None = None
    envelopes: dict[str, FlexibilityEnvelope] = {}
    if order.potential_request_id is not None:
        envelopes = servicer.envelopes(order.potential_request_id)
        pot = servicer.stored_potential(order.potential_request_id)
        potential = pot.up_kwh if order.direction is Direction.UP else pot.down_kwh
    if record is None and order.dispatch_id is not None:
        record = store.get_dispatch(order.dispatch_id)
    n_slots = round((order.window_end - order.window_start) / SLOT)
    # slots of the window that have ended: none before it starts, all once it is over
    ended = min(max((now - order.window_start) // SLOT, 0), n_slots)
    by_resource: dict[str, dict[str, float]] = {}
    latest: dict[str, tuple[int, str]] = {}
    rounds = 0
    for a in record.assignments if record is not None else ():
        rounds = max(rounds, a.round)
        fig = by_resource.setdefault(a.resource_id, {"requested": 0.0, "accepted": 0.0})
        fig["requested"] += a.requested_kwh
        if a.status in _COMMITTED and not a.late:
            fig["accepted"] += a.accepted_kwh or 0.0
        if a.resource_id not in latest or a.round >= latest[a.resource_id][0]:
            latest[a.resource_id] = (a.round, a.status.value)
    ids = sorted(by_resource)
    names = [resources[i].resource_name if i in resources else i for i in ids]
    took_part = [i for i in ids if by_resource[i]["accepted"] > 0.0]
    baseline_kw = _declared_baseline_kw(envelopes, names, n_slots)
    energy = _measured_energy(store, took_part, order.window_start, n_slots, ended)
    index = {rid: k for k, rid in enumerate(took_part)}
    rows = []
    for i, rid in enumerate(ids):
        fig = by_resource[rid]
        base = baseline_kw[i]
        delivered: float | None = None
        measured = 0
        if rid in index:
            d, n = delivered_so_far(
                order.direction, base[None, :ended], energy[index[rid], None, :ended]
            )
            delivered, measured = float(d[0]), int(n[0])
        rows.append(
            ResourceFigures(
                resource_name=names[i],
                route=_route(resources.get(rid)),
                status=latest[rid][1],
                requested_kwh=fig["requested"],
                accepted_kwh=fig["accepted"],
                baseline_kwh=float(base.sum() * SLOT_HOURS) if np.isfinite(base).all() else None,
                delivered_kwh=delivered,
                measured_slots=measured,
            )
        )
    routes = tuple(
        RouteFigures(
            route=route,
            n_resources=sum(1 for r in rows if r.route == route),
            requested_kwh=sum(r.requested_kwh for r in rows if r.route == route),
            accepted_kwh=sum(r.accepted_kwh for r in rows if r.route == route),
            delivered_kwh=sum(r.delivered_kwh or 0.0 for r in rows if r.route == route),
        )
        for route in ROUTES
    )
    accepted = sum(r.accepted_kwh for r in routes)
    return OrderFigures(
        computed_at=now,
        target_kwh=order.target_kwh,
        potential_kwh=potential,
        requested_kwh=sum(r.requested_kwh for r in routes),
        accepted_kwh=accepted,
        delivered_kwh=sum(r.delivered_kwh for r in routes),
        shortfall_kwh=max(order.target_kwh - accepted, 0.0),
        rounds=rounds,
        slots_ended=ended,
        routes=routes,
        resources=tuple(rows),
    )


# ------------------------------------------------------------------------- the workflow
class OrderDesk:
    """Carries the orders in progress one step further each time :meth:`step` runs.

    Parameters
    ----------
    servicer : Servicer
        The BL (started: its program known).
    potential_wait : timedelta
        Longest wait for the resources' potential answers before dispatching with those in.
    step : timedelta
        How often :meth:`step` runs: an order is dispatched when its deadline is less than
        one step away, whatever has answered.
    """

    def __init__(self, servicer: Servicer, *, potential_wait: timedelta, step: timedelta) -> None:
        if potential_wait <= timedelta(0) or step <= timedelta(0):
            raise ValueError("potential_wait and step must be > 0")
        self.servicer = servicer
        self.store = servicer.store
        self.potential_wait = potential_wait
        self.step_every = step

    async def step(self, now: datetime) -> int:
        """One pass over the orders in progress; returns how many changed status. A VTN error
        on one order is logged and the others go on; it is raised at the end (the schedule
        then retries the job)."""
        changed = 0
        failure: VenError | None = None
        for order in self.store.orders_in_progress(now=now):
            try:
                changed += await self._advance(order, now)
            except VenError as err:
                _log.warning("order step failed: %s", err, extra={"order_id": order.id})
                failure = err
        if failure is not None:
            raise failure
        return changed

    async def _advance(self, order: OrderRecord, now: datetime) -> int:
        deadline = order.deadline or order.window_start
        if order.status is OrderStatus.REQUESTED:
            if now >= deadline:
                return self._apply(order, OrderEvent.EXPIRE, now, "deadline passed before dispatch")
            request_id = await self.servicer.ask_potential(order.window_start, order.window_end)
            self.store.apply_order_event(
                order_id=order.id, event=OrderEvent.ASK, at=now, potential_request_id=request_id
            )
            _log.info(
                "potential asked for order",
                extra={"order_id": order.id, "event_id": request_id},
            )
            return 1
        if order.status is OrderStatus.COLLECTING:
            return await self._collecting(order, now, deadline)
        if order.dispatch_id is None:
            return 0
        record = await self.servicer.follow_up(order.dispatch_id)
        n = 0
        status: OrderStatus = order.status
        for _ in range(_MAX_EVENTS_PER_STEP):
            event = order_event(status, dispatch_facts(record, now))
            if event is None:
                break
            if event is OrderEvent.END:  # the window's last power reports, before it is left
                await self.servicer.collect_power(order.dispatch_id)
            reason = _REASONS.get(event)
            status = self.store.apply_order_event(
                order_id=order.id, event=event, at=now, reason=reason
            ).status
            _log.info("order %s", status.value, extra={"order_id": order.id})
            n += 1
        self._store_figures(order, now, record)
        return n

    async def _collecting(self, order: OrderRecord, now: datetime, deadline: datetime) -> int:
        existing = self.store.dispatch_ids_by_label(order.id)
        if existing:  # dispatched before a restart, not recorded on the order
            return self._dispatched(order, existing[0], now)
        if now >= deadline:
            return self._apply(order, OrderEvent.EXPIRE, now, "deadline passed before dispatch")
        request_id = order.potential_request_id or ""
        pot = await self.servicer.collect_potential(request_id)
        everyone = pot.n_asked > 0 and pot.n_answered >= pot.n_asked
        waited = order.potential_asked_at is not None and (
            now - order.potential_asked_at >= self.potential_wait
        )
        last_chance = now + self.step_every >= deadline
        if not (everyone or waited or last_chance):
            return 0
        available = pot.up_kwh if order.direction is Direction.UP else pot.down_kwh
        if available < self.servicer.min_request_kwh:
            word = order.direction.value
            return self._apply(
                order,
                OrderEvent.NOTHING,
                now,
                f"no {word}-DR potential declared for the window "
                f"({pot.n_answered} of {pot.n_asked} resources answered)",
            )
        if order.kind == START_TIME:
            dispatch_id = await self.servicer.dispatch_start_time(order.id, request_id)
            return self._dispatched(order, dispatch_id, now)
        target: EnergyTarget | PowerTarget
        if order.power_kw is not None:
            target = PowerTarget(direction=order.direction, power_kw=order.power_kw)
        else:
            target = EnergyTarget(direction=order.direction, energy_kwh=order.target_kwh)
        try:
            dispatch_id = await self.servicer.dispatch(order.id, target, request_id)
        except ValueError as err:
            return self._apply(order, OrderEvent.NOTHING, now, f"not dispatched: {err}")
        return self._dispatched(order, dispatch_id, now)

    def _dispatched(self, order: OrderRecord, dispatch_id: int, now: datetime) -> int:
        record = self.store.get_dispatch(dispatch_id)
        if record is None or not record.assignments:
            return self._apply(
                order, OrderEvent.NOTHING, now, "no resource could take a share of the target"
            )
        self.store.apply_order_event(
            order_id=order.id, event=OrderEvent.DISPATCH, at=now, dispatch_id=dispatch_id
        )
        _log.info(
            "order dispatched to %d resources",
            len(record.assignments),
            extra={"order_id": order.id, "dispatch_id": dispatch_id},
        )
        self._store_figures(order, now, record)
        return 1

    def _apply(self, order: OrderRecord, event: OrderEvent, now: datetime, reason: str) -> int:
        self.store.apply_order_event(order_id=order.id, event=event, at=now, reason=reason)
        _log.info("order %s: %s", event.value, reason, extra={"order_id": order.id})
        return 1

    def _store_figures(self, order: OrderRecord, now: datetime, record: DispatchRecord) -> None:
        fresh = self.store.order(order.id) or order
        figures = order_figures(self.store, self.servicer, fresh, now=now, record=record)
        self.store.set_order_figures(
            order_id=order.id,
            figures=figures.model_copy(update={"resources": ()}).model_dump(mode="json"),
            at=now,
        )

    def refresh_figures(self, order_ids: Sequence[str], now: datetime) -> None:
        """Store fresh figures of these orders (after meter data or a settlement came)."""
        for order_id in order_ids:
            order = self.store.order(order_id)
            if order is not None and order.dispatch_id is not None:
                record = self.store.get_dispatch(order.dispatch_id)
                if record is not None:
                    self._store_figures(order, now, record)

    async def collect_power(self, now: datetime) -> int:
        """Collect the F5 power reports of the orders whose window runs (or ended less than a
        slot ago); returns how many resources reported."""
        n = 0
        for order in self.store.orders_in_progress(now=now):
            if order.dispatch_id is None:
                continue
            if order.window_start <= now < order.window_end + SLOT:
                n += len(await self.servicer.collect_power(order.dispatch_id))
        return n

    async def collect_potentials(self, now: datetime, horizon: timedelta) -> int:
        """Store the new answers to every potential request asked within ``horizon`` whose
        window has not ended (the day-ahead collections, read by ``GET /portfolio/potential``);
        returns how many requests were read."""
        open_requests = self.store.open_potential_requests(
            window_end_after=now, requested_after=now - horizon
        )
        for request in open_requests:
            await self.servicer.collect_potential(request.request_id)
        return len(open_requests)
