"""The orders ``drready stack up`` places with the servicer, as a trading desk would: an I/O-free
core (h11 style, ``handle(input, now) -> actions``) and its plan of the day (U2, D3; issue 11
item 5: the demo day's orders through the servicer's north-bound API).

Every simulated day of the run carries the demo day's two orders (local time,
:data:`~drready.domain.time.DEFAULT_TZ`):

* up-DR 10:00–14:00 (absorb solar surplus), sized at 20:00 the evening before — a day-ahead
  order, placed while the installed base's energy shift is still open (ECHONET Lite's shift
  times close at 22:00 for the next day, so a standard-only unit can take part only in an order
  dispatched before then); an order whose sizing time is before the run began is sized at once;
* down-DR 17:00–20:00 (scarcity), sized at 13:30 the same day.

"Sized" means: read the portfolio potential the servicer collected for exactly that window
(``GET /api/v1/portfolio/potential``) and order ``share`` of it in the order's direction
(``POST /api/v1/orders`` with an ``Idempotency-Key`` that names the run and the order, so a
retry after a lost answer never makes a second order). Until the potential is there (404, or
nothing to sell) the core asks again every :data:`RETRY`; an order still unplaced
:data:`LAST_CALL` before its window is given up with the reason. Once placed, the order is read
every :data:`READ_EVERY` (``GET /api/v1/orders/{id}?detail=resources``) until it reaches a
final status, and once more at the end of the run.

The life of one planned order is a transition table (:data:`TRANSITIONS`); a step it does not
allow raises :class:`OrderDriverError`. :class:`OrderDriver` holds no sockets and no clock:
the shell (:mod:`drready.sim.stack`) feeds it what it read and does what it asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from drready.domain import DEFAULT_TZ, Direction
from drready.domain.time import zone

__all__ = [
    "ANSWERED_STATUSES",
    "FINAL_STATUSES",
    "LAST_CALL",
    "MIN_ORDER_KWH",
    "READ_EVERY",
    "RETRY",
    "TRANSITIONS",
    "OrderDriver",
    "OrderDriverError",
    "OrderPlan",
    "OrderPosted",
    "OrderRead",
    "OrderRefused",
    "PlanState",
    "PlanStep",
    "PostOrder",
    "PotentialMissing",
    "PotentialRead",
    "ReadOrder",
    "ReadPotential",
    "Tick",
    "day_plans",
    "plans_between",
]

#: Wait between two reads of a potential that was not there yet [simulated time].
RETRY = timedelta(minutes=15)
#: An order not placed this long before its window starts is given up (the servicer needs time
#: to ask the resources and dispatch).
LAST_CALL = timedelta(minutes=30)
#: Wait between two reads of a placed order [simulated time].
READ_EVERY = timedelta(minutes=30)
#: Smallest order [kWh]: below it there is nothing to sell (the API refuses 0 kWh).
MIN_ORDER_KWH = 0.1
#: Order statuses after which nothing more happens within a run (``settled`` and ``expired``
#: end an order's life; ``rejected`` ends it unless a re-dispatch finds takers, which the
#: servicer reports as a later status anyway).
FINAL_STATUSES = frozenset({"settled", "expired"})
#: Statuses that answer an order (the servicer decided something; no longer "requested",
#: "collecting" or "dispatched" with answers awaited).
ANSWERED_STATUSES = frozenset(
    {"accepted", "rejected", "delivering", "delivered", "settled", "expired"}
)
_ENERGY_DECIMALS = 3  # an order's energy in whole Wh


@dataclass(frozen=True)
class OrderPlan:
    """One order the run means to place.

    Attributes
    ----------
    key : str
        Its idempotency key (unique in the run).
    direction : Direction
    start, end : datetime
        The window (aware).
    share : float
        Share of the declared potential to order, (0, 1].
    size_at : datetime
        When to read the potential and place it.
    """

    key: str
    direction: Direction
    start: datetime
    end: datetime
    share: float
    size_at: datetime


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zone(DEFAULT_TZ))


def day_plans(day: date, *, run_id: str, up_share: float, down_share: float) -> list[OrderPlan]:
    """The demo day's two orders on ``day`` (see the module docstring).

    >>> [p.key for p in day_plans(date(2026, 5, 14), run_id="r1", up_share=0.6, down_share=0.6)]
    ['r1-2026-05-14-up', 'r1-2026-05-14-down']
    """
    tag = f"{run_id}-{day.isoformat()}"
    return [
        OrderPlan(
            f"{tag}-up",
            Direction.UP,
            _at(day, 10),
            _at(day, 14),
            up_share,
            _at(day - timedelta(days=1), 20),
        ),
        OrderPlan(
            f"{tag}-down", Direction.DOWN, _at(day, 17), _at(day, 20), down_share, _at(day, 13, 30)
        ),
    ]


def plans_between(
    first: datetime, last: datetime, *, run_id: str, up_share: float, down_share: float
) -> list[OrderPlan]:
    """Every planned order whose window starts after ``first`` and ends by ``last``."""
    tz = zone(DEFAULT_TZ)
    day, out = first.astimezone(tz).date(), []
    while _at(day, 0) <= last:
        for plan in day_plans(day, run_id=run_id, up_share=up_share, down_share=down_share):
            if plan.start > first and plan.end <= last:
                out.append(plan)
        day += timedelta(days=1)
    return out


# ------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Tick:
    """Time passed: see what is due."""


@dataclass(frozen=True)
class PotentialRead:
    """The potential collected for a plan's window [kWh]."""

    key: str
    up_kwh: float
    down_kwh: float


@dataclass(frozen=True)
class PotentialMissing:
    """No potential for the window yet (404), or the read failed."""

    key: str
    reason: str


@dataclass(frozen=True)
class OrderPosted:
    """The servicer took the order (201, or 200 for the same key and body)."""

    key: str
    order_id: str


@dataclass(frozen=True)
class OrderRefused:
    """The servicer refused the order for good (a 4xx other than 401/429); or the post failed
    (``final=False``: transport error, 5xx, 429 — post again with the same key)."""

    key: str
    reason: str
    final: bool = True


@dataclass(frozen=True)
class OrderRead:
    """What ``GET /api/v1/orders/{id}`` answered (its JSON)."""

    order_id: str
    body: Mapping[str, Any]


Input = Tick | PotentialRead | PotentialMissing | OrderPosted | OrderRefused | OrderRead


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True)
class ReadPotential:
    plan: OrderPlan


@dataclass(frozen=True)
class PostOrder:
    plan: OrderPlan
    energy_kwh: float


@dataclass(frozen=True)
class ReadOrder:
    order_id: str


Action = ReadPotential | PostOrder | ReadOrder


# ------------------------------------------------------------------------------ life of a plan
class PlanState(StrEnum):
    WAITING = "waiting"
    """Not yet sized (before ``size_at``, or the potential was not there)."""
    SIZING = "sizing"
    """Its potential is being read."""
    POSTING = "posting"
    """Sized; the order is being placed."""
    PLACED = "placed"
    """The servicer has it; read until final."""
    CLOSED = "closed"
    """Final status read."""
    GIVEN_UP = "given_up"
    """Not placed: no potential before the last call, or refused."""


class PlanStep(StrEnum):
    DUE = "due"
    SIZED = "sized"
    NO_POTENTIAL = "no_potential"
    POSTED = "posted"
    POST_FAILED = "post_failed"
    REFUSED = "refused"
    TOO_LATE = "too_late"
    FINAL = "final"


_S, _P = PlanState, PlanStep
#: state → step → next state; anything else is a bug of the shell or the core.
TRANSITIONS: Mapping[PlanState, Mapping[PlanStep, PlanState]] = {
    _S.WAITING: {_P.DUE: _S.SIZING, _P.TOO_LATE: _S.GIVEN_UP},
    _S.SIZING: {_P.SIZED: _S.POSTING, _P.NO_POTENTIAL: _S.WAITING},
    _S.POSTING: {_P.POSTED: _S.PLACED, _P.POST_FAILED: _S.POSTING, _P.REFUSED: _S.GIVEN_UP},
    _S.PLACED: {_P.FINAL: _S.CLOSED},
    _S.CLOSED: {},
    _S.GIVEN_UP: {},
}


class OrderDriverError(RuntimeError):
    """A step the transition table does not allow (a bug, not a peer's fault)."""


@dataclass
class _Tracked:
    plan: OrderPlan
    state: PlanState = PlanState.WAITING
    next_at: datetime | None = None
    energy_kwh: float | None = None
    order_id: str | None = None
    last: Mapping[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    outcome: str | None = None
    """Why it is not placed yet: 'not_collected', 'nothing_to_sell' or 'refused'."""


class OrderDriver:
    """The orders of a run (see the module docstring).

    Parameters
    ----------
    plans : sequence of OrderPlan
        What to place (keys unique).
    """

    def __init__(self, plans: Sequence[OrderPlan]) -> None:
        keys = [p.key for p in plans]
        if len(set(keys)) != len(keys):
            raise ValueError("plans: keys must be unique")
        self._tracked = {p.key: _Tracked(p, next_at=p.size_at) for p in plans}
        self._by_order: dict[str, str] = {}

    def _step(self, t: _Tracked, step: PlanStep) -> None:
        following = TRANSITIONS[t.state].get(step)
        if following is None:
            raise OrderDriverError(f"{t.plan.key}: no step {step.value!r} from {t.state.value!r}")
        t.state = following

    def handle(self, event: Input, now: datetime) -> list[Action]:
        """What to do after ``event`` at simulated time ``now``."""
        if isinstance(event, Tick):
            return self._tick(now)
        if isinstance(event, OrderRead):
            return self._read(event, now)
        t = self._tracked[event.key]
        if isinstance(event, PotentialRead):
            potential = event.up_kwh if t.plan.direction is Direction.UP else event.down_kwh
            energy = round(t.plan.share * potential, _ENERGY_DECIMALS)
            if energy < MIN_ORDER_KWH:
                t.outcome = "nothing_to_sell"
                return self._missing(t, f"{potential:.3f} kWh declared: nothing to sell", now)
            self._step(t, PlanStep.SIZED)
            t.energy_kwh = energy
            return [PostOrder(t.plan, energy)]
        if isinstance(event, PotentialMissing):
            t.outcome = "not_collected"
            return self._missing(t, event.reason, now)
        if isinstance(event, OrderPosted):
            self._step(t, PlanStep.POSTED)
            t.order_id = event.order_id
            t.next_at = now + READ_EVERY
            self._by_order[event.order_id] = t.plan.key
            return []
        # OrderRefused
        if not event.final:
            self._step(t, PlanStep.POST_FAILED)
            t.reasons.append(event.reason)
            assert t.energy_kwh is not None  # sized before posting
            return [PostOrder(t.plan, t.energy_kwh)]  # the same key: a safe retry
        self._step(t, PlanStep.REFUSED)
        t.outcome = "refused"
        t.reasons.append(event.reason)
        return []

    def _missing(self, t: _Tracked, reason: str, now: datetime) -> list[Action]:
        self._step(t, PlanStep.NO_POTENTIAL)
        t.reasons.append(reason)
        t.next_at = now + RETRY
        return self._tick(now)

    def _tick(self, now: datetime) -> list[Action]:
        out: list[Action] = []
        for t in self._tracked.values():
            due = t.next_at is not None and now >= t.next_at
            if t.state is PlanState.WAITING and now >= t.plan.start - LAST_CALL:
                self._step(t, PlanStep.TOO_LATE)
                t.reasons.append(f"not placed by {(t.plan.start - LAST_CALL).isoformat()}")
            elif t.state is PlanState.WAITING and due:
                self._step(t, PlanStep.DUE)
                t.next_at = None
                out.append(ReadPotential(t.plan))
            elif t.state is PlanState.PLACED and due and t.order_id is not None:
                t.next_at = now + READ_EVERY
                out.append(ReadOrder(t.order_id))
        return out

    def _read(self, event: OrderRead, now: datetime) -> list[Action]:
        t = self._tracked[self._by_order[event.order_id]]
        t.last = event.body
        if t.state is PlanState.PLACED and str(event.body.get("status")) in FINAL_STATUSES:
            self._step(t, PlanStep.FINAL)
            t.next_at = None
        return []

    def closing_reads(self) -> list[ReadOrder]:
        """One last read of every placed order (at the end of the run)."""
        return [ReadOrder(t.order_id) for t in self._tracked.values() if t.order_id is not None]

    def report(self) -> list[dict[str, Any]]:
        """One entry per planned order: the plan, what was placed and what the servicer last
        said (``requested_kwh``/``accepted_kwh``/``delivered_kwh`` from its figures); an order
        given up says why (``given_up_because``: ``not_collected`` — no potential for the
        window by the last call —, ``nothing_to_sell`` — the potential was zero — or
        ``refused`` by the API)."""
        out = []
        for t in self._tracked.values():
            body = t.last or {}
            figures = body.get("figures") or {}
            out.append(
                {
                    "id": t.order_id,
                    "key": t.plan.key,
                    "direction": t.plan.direction.value,
                    "window_start": t.plan.start.isoformat(),
                    "window_end": t.plan.end.isoformat(),
                    "requested_kwh": t.energy_kwh or 0.0,
                    "accepted_kwh": float(figures.get("accepted_kwh", 0.0) or 0.0),
                    "delivered_kwh": float(figures.get("delivered_kwh", 0.0) or 0.0),
                    "status": str(body.get("status", t.state.value)),
                    "driver_state": t.state.value,
                    "given_up_because": t.outcome if t.state is PlanState.GIVEN_UP else None,
                    "notes": list(dict.fromkeys(t.reasons)),
                    "figures": figures,
                }
            )
        return out
