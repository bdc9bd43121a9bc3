"""Orders of the servicer's north-bound API: the ``dr_order`` table (U2, D3; reliability: an
order is stored once per idempotency key, and its status changes only along
:data:`~drready.servicer.storage.lifecycle.ORDER_LIFE`).

An order is what a client (the aggregator's trading desk, a market system) asks the servicer to
deliver: a direction, a window, and either an energy over the window or a power per slot, with
an optional deadline for the dispatch — or, by **heating start time alone** (F2, issue 17: the
study group's "start heating at 13:00", the amount optional), an up-DR window with neither: its
``kind`` is then ``start_time`` and its ``target_kwh`` 0 (the units heat what their plans
allow). :class:`OrderStore` keeps

* the order as received (with a hash of its canonical body) and the client that sent it;
* its **idempotency key** (HTTP ``Idempotency-Key``, scoped to the client): :meth:`~OrderStore.
  create` with a key already used returns the stored order when the body hash is the same and
  raises :class:`IdempotencyConflictError` when it differs — a retry never makes a second order,
  a reused key never silently means another;
* its status and reason, changed by :meth:`~OrderStore.apply` only along the transition table,
  with the potential request and the dispatch it became;
* the figures the service last computed for it (requested, accepted, delivered per route), for
  lists and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select, update

from drready.domain import DEFAULT_TZ, Direction
from drready.domain.time import zone
from drready.servicer.storage.db import WRITE_OPTION, Order, dialect_insert
from drready.servicer.storage.lifecycle import ORDER_LIFE, OrderEvent, OrderStatus
from drready.servicer.storage.validation import (
    MAX_ENERGY_KWH,
    check_id,
    check_json,
    check_number,
    check_window,
    enum_value,
    instant,
)

__all__ = [
    "FINAL_ORDER_STATUSES",
    "START_TIME",
    "IdempotencyConflictError",
    "OrderRecord",
    "OrderStore",
]

_ORDER = cast(Table, Order.__table__)

#: Statuses after which nothing more happens to an order.
FINAL_ORDER_STATUSES = frozenset({OrderStatus.SETTLED, OrderStatus.EXPIRED})
#: ``OrderRecord.kind`` of an order by heating start time alone (no energy, no power).
START_TIME = "start_time"
#: Length of an order id (a UUID's text form).
_ORDER_ID_LENGTH = 36
#: Length of a request hash (SHA-256, hex).
_HASH_LENGTH = 64


class IdempotencyConflictError(ValueError):
    """An idempotency key already names an order with a different body (HTTP 409)."""

    def __init__(self, key: str, order_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used for order {order_id} with a different body; "
            "use a new key for a new order"
        )
        self.key = key
        self.order_id = order_id


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as stored."""

    id: str
    client_id: str
    idempotency_key: str | None
    request_hash: str
    direction: Direction
    window_start: datetime
    window_end: datetime
    energy_kwh: float | None
    """The energy over the window [kWh], when the order gave one."""
    power_kw: tuple[float, ...] | None
    """The power per 30-minute slot [kW], when the order gave it."""
    target_kwh: float
    """The energy the order asks for over the window [kWh] (either form)."""
    deadline: datetime | None
    status: OrderStatus
    status_reason: str | None
    potential_request_id: str | None
    potential_asked_at: datetime | None
    dispatch_id: int | None
    figures: Any
    created_at: datetime
    updated_at: datetime

    @property
    def kind(self) -> str:
        """``"start_time"`` for an order by heating start time alone (neither an energy nor a
        power: the units heat from the window's start what their plans allow), else
        ``"amount"``."""
        return START_TIME if self.energy_kwh is None and self.power_kw is None else "amount"


def _record(row: Any) -> OrderRecord:
    return OrderRecord(
        id=row.id,
        client_id=row.client_id,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        direction=Direction(row.direction),
        window_start=row.window_start,
        window_end=row.window_end,
        energy_kwh=row.energy_kwh,
        power_kw=None if row.power_kw is None else tuple(float(x) for x in row.power_kw),
        target_kwh=row.target_kwh,
        deadline=row.deadline,
        status=OrderStatus(row.status),
        status_reason=row.status_reason,
        potential_request_id=row.potential_request_id,
        potential_asked_at=row.potential_asked_at,
        dispatch_id=row.dispatch_id,
        figures=row.figures,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_hash(value: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) != _HASH_LENGTH
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise ValueError(f"request_hash must be {_HASH_LENGTH} lowercase hex digits, got {value!r}")
    return value


class OrderStore:
    """Orders over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    # ------------------------------------------------------------------ writes
    def create(
        self,
        *,
        order_id: str,
        client_id: str,
        idempotency_key: str | None,
        request_hash: str,
        direction: Direction | str,
        window_start: datetime,
        window_end: datetime,
        energy_kwh: float | None,
        power_kw: Sequence[float] | None,
        target_kwh: float,
        deadline: datetime | None,
        created_at: datetime | None = None,
        start_time: bool = False,
    ) -> tuple[OrderRecord, bool]:
        """Store a new order in status ``requested``; returns it and whether it is new.

        With an ``idempotency_key`` the client used before: the stored order and ``False`` when
        ``request_hash`` is the one stored, :class:`IdempotencyConflictError` otherwise.
        Exactly one of ``energy_kwh`` and ``power_kw`` must be given — or, with ``start_time``
        (an order by heating start time alone), neither, direction ``up`` and ``target_kwh`` 0.
        """
        if not isinstance(order_id, str) or not 1 <= len(order_id) <= _ORDER_ID_LENGTH:
            raise ValueError(f"order_id must be 1–{_ORDER_ID_LENGTH} characters, got {order_id!r}")
        check_id(client_id, "client_id")
        if idempotency_key is not None:
            check_id(idempotency_key, "idempotency_key")
        _check_hash(request_hash)
        direction_value = enum_value(Direction, direction, "direction")
        check_window(window_start, window_end)
        if start_time:
            if energy_kwh is not None or power_kw is not None or target_kwh != 0.0:
                raise ValueError(
                    "an order by start time alone has no energy_kwh, power_kw nor target_kwh"
                )
            if direction_value is not Direction.UP:
                raise ValueError("an order by start time alone is up-DR (direction 'up')")
        elif (energy_kwh is None) == (power_kw is None):
            raise ValueError("give exactly one of energy_kwh and power_kw")
        energy = (
            None
            if energy_kwh is None
            else check_number(energy_kwh, "energy_kwh", 0.0, MAX_ENERGY_KWH, lo_open=True)
        )
        power = None if power_kw is None else check_json([float(x) for x in power_kw], "power_kw")
        target = check_number(target_kwh, "target_kwh", 0.0, MAX_ENERGY_KWH)
        if deadline is not None:
            instant(deadline, "deadline")
        at = instant(created_at, "created_at")
        values = {
            "id": order_id,
            "client_id": client_id,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "direction": direction_value.value,
            "window_start": window_start,
            "window_end": window_end,
            "energy_kwh": energy,
            "power_kw": power,
            "target_kwh": target,
            "deadline": deadline,
            "status": ORDER_LIFE.initial.value,
            "created_at": at,
            "updated_at": at,
        }
        with self._writer.begin() as conn:
            if idempotency_key is None:
                conn.execute(_ORDER.insert().values(values))
                row = conn.execute(select(_ORDER).where(_ORDER.c.id == order_id)).one()
                return _record(row), True
            stmt = (
                dialect_insert(conn, _ORDER)
                .values(values)
                .on_conflict_do_nothing(
                    index_elements=[_ORDER.c.client_id, _ORDER.c.idempotency_key]
                )
                .returning(_ORDER.c.id)
            )
            created = conn.execute(stmt).first() is not None
            row = conn.execute(
                select(_ORDER)
                .where(_ORDER.c.client_id == client_id)
                .where(_ORDER.c.idempotency_key == idempotency_key)
            ).one()
        record = _record(row)
        if not created and record.request_hash != request_hash:
            raise IdempotencyConflictError(idempotency_key, record.id)
        return record, created

    def apply(
        self,
        *,
        order_id: str,
        event: OrderEvent,
        at: datetime | None = None,
        reason: str | None = None,
        potential_request_id: str | None = None,
        dispatch_id: int | None = None,
    ) -> OrderRecord:
        """Move the order along ``event`` (:data:`~drready.servicer.storage.lifecycle.ORDER_LIFE`;
        a :class:`~drready.servicer.storage.lifecycle.TransitionError` if its status does not
        take it), recording the reason of its new status (``None``: none) and, for
        ``ask``/``dispatch``, the potential request or the dispatch. Returns the order as it is
        afterwards."""
        when = instant(at, "at")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise ValueError("reason must be a string of at most 1000 characters")
        with self._writer.begin() as conn:
            row = conn.execute(
                select(_ORDER.c.status).where(_ORDER.c.id == order_id).with_for_update()
            ).first()
            if row is None:
                raise ValueError(f"order_id {order_id!r} does not exist")
            new = ORDER_LIFE.next(OrderStatus(row.status), event, subject=f"order {order_id}")
            values: dict[str, Any] = {
                "status": new.value,
                "status_reason": reason,  # the reason of this status; none clears the last one
                "updated_at": when,
            }
            if event is OrderEvent.ASK:
                if potential_request_id is None:
                    raise ValueError("potential_request_id is needed to ask")
                values["potential_request_id"] = check_id(
                    potential_request_id, "potential_request_id"
                )
                values["potential_asked_at"] = when
            if dispatch_id is not None:
                values["dispatch_id"] = dispatch_id
            conn.execute(update(_ORDER).where(_ORDER.c.id == order_id).values(values))
            return _record(conn.execute(select(_ORDER).where(_ORDER.c.id == order_id)).one())

    def set_figures(self, *, order_id: str, figures: Any, at: datetime | None = None) -> bool:
        """Store the figures last computed for the order; whether it exists."""
        data = check_json(figures, "figures")
        when = instant(at, "at")
        with self._writer.begin() as conn:
            changed = conn.execute(
                update(_ORDER).where(_ORDER.c.id == order_id).values(figures=data, updated_at=when)
            ).rowcount
        return bool(changed)

    # ------------------------------------------------------------------ reads
    def get(self, order_id: str) -> OrderRecord | None:
        """The order with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_ORDER).where(_ORDER.c.id == order_id)).first()
        return None if row is None else _record(row)

    def by_dispatch(self, dispatch_id: int) -> OrderRecord | None:
        """The order that became dispatch ``dispatch_id``, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_ORDER).where(_ORDER.c.dispatch_id == dispatch_id)).first()
        return None if row is None else _record(row)

    def find(
        self,
        *,
        status: OrderStatus | str | None = None,
        day: date | None = None,
        tz: str = DEFAULT_TZ,
        limit: int = 50,
        offset: int = 0,
    ) -> list[OrderRecord]:
        """Orders, newest window first: of one status, and/or whose window starts on local
        ``day`` (in ``tz``)."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValueError(f"limit must be in 1–1000 and offset ≥ 0, got {limit}, {offset}")
        stmt = select(_ORDER)
        if status is not None:
            stmt = stmt.where(_ORDER.c.status == enum_value(OrderStatus, status, "status").value)
        if day is not None:
            start = datetime.combine(day, time(0), tzinfo=zone(tz))
            stmt = stmt.where(_ORDER.c.window_start >= start).where(
                _ORDER.c.window_start < start + timedelta(days=1)
            )
        stmt = stmt.order_by(_ORDER.c.window_start.desc(), _ORDER.c.created_at.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit).offset(offset)).all()
        return [_record(r) for r in rows]

    def in_progress(self, *, now: datetime) -> list[OrderRecord]:
        """The orders the service still works on at ``now``, oldest first: every status but the
        final ones, ``delivered`` (it waits for settlement only) and a ``rejected`` order whose
        window is over."""
        instant(now, "now")
        done = [s.value for s in FINAL_ORDER_STATUSES] + [OrderStatus.DELIVERED.value]
        stmt = (
            select(_ORDER)
            .where(_ORDER.c.status.not_in(done))
            .where((_ORDER.c.status != OrderStatus.REJECTED.value) | (_ORDER.c.window_end > now))
            .order_by(_ORDER.c.created_at, _ORDER.c.id)
        )
        with self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt).all()]

    def delivered_by_route(self) -> dict[str, float]:
        """Delivered energy so far, summed over every order's stored figures, by route [kWh]."""
        out: dict[str, float] = {}
        with self._engine.connect() as conn:
            for figures in conn.scalars(
                select(_ORDER.c.figures).where(_ORDER.c.figures.is_not(None))
            ):
                for route in (figures or {}).get("routes", ()):
                    name = str(route.get("route"))
                    out[name] = out.get(name, 0.0) + float(route.get("delivered_kwh") or 0.0)
        return out

    def counts(self) -> dict[OrderStatus, int]:
        """Orders per status (every status, 0 included)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_ORDER.c.status, func.count()).group_by(_ORDER.c.status)
            ).all()
        out = dict.fromkeys(OrderStatus, 0)
        for status, n in rows:
            out[OrderStatus(status)] = int(n)
        return out
