"""The servicer's north-bound REST API, ``/api/v1`` (U2, D3, D6, S1; issue 11 item 2).

What an aggregator's trading desk, a market system and a meter data provider call; every
operation needs a bearer token with its scope (:mod:`drready.servicer.web.auth`):

* ``POST /api/v1/orders`` — an order: ``direction`` (``up``/``down``), ``window`` (``start``,
  ``end``: aware, on 30-minute boundaries, within one local day, starting in the future and
  within :data:`MAX_LEAD` from now), either ``energy_kwh`` over the window or ``power_kw`` per
  30-minute slot, and an optional ``deadline`` for its dispatch — or ``"kind": "start_time"``
  with a heating ``start`` alone (F2 by start time, issue 17: the window is ``[start, start +
  4 h)``, up-DR, no amount: each unit heats there what its plan allows and answers with it).
  ``Idempotency-Key`` header:
  the same key with the same body answers the same order (200; 201 when it was created), with
  another body 409. The servicer takes it from there (:mod:`drready.servicer.orders`).
* ``GET /api/v1/orders/{id}`` — its status along
  :data:`~drready.servicer.storage.lifecycle.ORDER_LIFE` and what it got so far per route
  (requested, accepted, delivered so far, shortfall; ``?detail=resources`` per resource).
* ``GET /api/v1/orders`` — a list, filtered by ``status`` and by ``date`` (local day of the
  window), ``limit``/``offset``.
* ``GET /api/v1/portfolio/potential?start=&end=`` — the latest potential collected for exactly
  that window, per route and in total, with the resources that did not answer; 404 with the
  reason when none was collected.
* ``GET /api/v1/settlements/{date}`` — the dispatches of that local day settled from meter
  data, JSON or CSV (``Accept: text/csv`` or ``?format=csv``).
* ``POST /api/v1/meter-readings`` — 30-minute energy per resource from a meter data provider
  (in reality the grid operator's smart-meter data): series of consecutive slots per resource,
  each slot ended, within the baseline's look-back; stored or replaced per (resource, slot).

Strict input: a body is a pydantic model with ``extra="forbid"``; unknown fields, unknown query
parameters, wrong types, numbers out of range and times off the slot grid answer 400 with a
problem whose ``detail`` names the field and the allowed range — never a 5xx. Handlers are plain
functions: FastAPI runs them in its thread pool, so the database work never blocks the event
loop the schedule runs on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from drready.domain import DEFAULT_TZ, SLOT, SLOT_HOURS, Direction, Instant, is_slot_aligned
from drready.domain.base import bounded_float
from drready.domain.requests import START_TIME_WINDOW
from drready.domain.time import zone
from drready.openadr.vtn.deps import Principal, require_scopes
from drready.openadr.vtn.errors import ApiError, api_error_response, problem_response
from drready.servicer.core.portfolio import PortfolioPotential
from drready.servicer.core.settlement import CSV_COLUMNS
from drready.servicer.orders import OrderFigures, order_figures
from drready.servicer.service import Servicer
from drready.servicer.settling import LOOKBACK_DAYS, SettledEvent
from drready.servicer.storage.lifecycle import OrderStatus
from drready.servicer.storage.orders import START_TIME, IdempotencyConflictError, OrderRecord
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.auth import (
    METER_WRITE,
    ORDERS_READ,
    ORDERS_WRITE,
    PORTFOLIO_READ,
    SETTLEMENTS_READ,
)

__all__ = [
    "MAX_LEAD",
    "ApiContext",
    "MeterReadings",
    "MeterSeries",
    "OrderCreate",
    "OrderOut",
    "OrderWindow",
    "api_router",
    "install_api_error_handlers",
]

_log = logging.getLogger("drready.servicer.api")

#: Furthest ahead an order's window may start: the resources plan up to a day and a half ahead.
MAX_LEAD = timedelta(days=7)
#: Largest energy an order may ask [kWh] and power per slot [kW] (a GW-scale portfolio).
MAX_ORDER_KWH = 1e6
MAX_ORDER_KW = 1e6
#: Largest energy of one metered 30-minute slot [kWh] (a group of a million units at 10 kW).
MAX_SLOT_KWH = 5e6
#: Most values in one meter post.
MAX_METER_VALUES = 200_000
#: Longest meter series [slots]: the look-back and the event day.
MAX_SERIES_SLOTS = (LOOKBACK_DAYS + 1) * 48
_KEY_LENGTH = 128
_CSV_MEDIA = "text/csv; charset=utf-8"


# ------------------------------------------------------------------------------ body models
def _iso_text(value: Any) -> Any:
    """Instants come as RFC 3339 text only (a bare number is not a time)."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string with a UTC offset")
    return value


def _on_slot_grid(value: datetime) -> datetime:
    if not is_slot_aligned(value):
        raise ValueError(
            f"must be on a 30-minute boundary (hh:00 or hh:30, no seconds), got {value.isoformat()}"
        )
    return value


SlotInstant = Annotated[Instant, BeforeValidator(_iso_text), AfterValidator(_on_slot_grid)]
AnyInstant = Annotated[Instant, BeforeValidator(_iso_text)]


class _Body(BaseModel):
    """A request body of this API: unknown fields refused, numbers not given as text."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderWindow(_Body):
    """The window of an order: whole 30-minute slots of one local day."""

    start: SlotInstant = Field(description="Start, e.g. 2026-05-14T10:00:00+09:00.")
    end: SlotInstant = Field(description="End, exclusive; at most the next local midnight.")

    @model_validator(mode="after")
    def _check(self) -> OrderWindow:
        if not self.start < self.end:
            raise ValueError(
                f"window.end: must be after window.start, got {self.start.isoformat()} – "
                f"{self.end.isoformat()}"
            )
        tz = zone(DEFAULT_TZ)
        day = self.start.astimezone(tz).date()
        next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        if self.end > next_midnight:
            raise ValueError(
                f"window.end: must be at most {next_midnight.isoformat()} (a window lies within "
                f"one local day in {DEFAULT_TZ}; settlement is per day), got {self.end.isoformat()}"
            )
        return self

    @property
    def n_slots(self) -> int:
        return (self.end - self.start) // SLOT


# Strict: a number, never text ("3") or a boolean (an integer is a number)
_OrderKwh = Annotated[float, Strict(), bounded_float(0.0, MAX_ORDER_KWH, lo_open=True)]
_SlotKw = Annotated[float, Strict(), bounded_float(0.0, MAX_ORDER_KW)]


class OrderCreate(_Body):
    """An order (``POST /api/v1/orders``).

    ``kind`` ``"amount"`` (the default): ``direction``, ``window`` and ``energy_kwh`` or
    ``power_kw``, not both. ``kind`` ``"start_time"`` (F2 by heating start time alone): ``start``
    and nothing of the amount; the window is ``[start, start + 4 h)`` (ECHONET Lite's daytime
    heating shift, 0xCA), the direction up (``direction`` may be given, as ``"up"`` only).
    """

    kind: Literal["amount", "start_time"] = Field(
        default="amount",
        description="'amount': an energy or a power in a window; 'start_time': a heating start "
        "time alone (the units heat from it what their plans allow).",
    )
    direction: Literal["up", "down"] | None = Field(
        default=None,
        description="'up': consume more in the window; 'down': consume less. Required for "
        "kind 'amount'; 'up' or absent for kind 'start_time'.",
    )
    window: OrderWindow | None = Field(default=None, description="Required for kind 'amount'.")
    start: SlotInstant | None = Field(
        default=None,
        description="Kind 'start_time' only: the heating start time, e.g. "
        "2026-05-14T13:00:00+09:00; the window is 4 h from it, within the local day.",
    )
    energy_kwh: _OrderKwh | None = Field(
        default=None, description="Energy to shift over the window [kWh], (0, 1e6]."
    )
    power_kw: tuple[_SlotKw, ...] | None = Field(
        default=None,
        description="Deviation per 30-minute slot of the window [kW], each in [0, 1e6], one "
        "value per slot, at least one > 0.",
    )
    deadline: AnyInstant | None = Field(
        default=None,
        description="Latest instant to dispatch the order (after now, at most window.start); "
        "default window.start.",
    )

    @model_validator(mode="after")
    def _check(self) -> OrderCreate:
        if self.kind == "start_time":
            return self._check_start_time()
        if self.direction is None:
            raise ValueError("direction: required")
        if self.window is None:
            raise ValueError("window: required")
        if self.start is not None:
            raise ValueError("start: only with kind 'start_time' (an amount order gives window)")
        if (self.energy_kwh is None) == (self.power_kw is None):
            raise ValueError("energy_kwh, power_kw: give exactly one of them")
        if self.power_kw is not None:
            n = self.window.n_slots
            if len(self.power_kw) != n:
                raise ValueError(
                    f"power_kw: must have one value per 30-minute slot of the window ({n}), "
                    f"got {len(self.power_kw)}"
                )
            if not any(p > 0 for p in self.power_kw):
                raise ValueError("power_kw: must have at least one value > 0")
        return self

    def _check_start_time(self) -> OrderCreate:
        """An order by start time alone: ``start``, no amount, no window, up-DR."""
        if self.start is None:
            raise ValueError("start: required with kind 'start_time'")
        if self.window is not None:
            raise ValueError(
                "window: not with kind 'start_time' (give start; the window is "
                f"{_hours(START_TIME_WINDOW)} h from it)"
            )
        for name in ("energy_kwh", "power_kw"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name}: not with kind 'start_time' (no amount: each unit heats from the "
                    "start what its plan allows)"
                )
        if self.direction not in (None, "up"):
            raise ValueError(
                "direction: must be 'up' with kind 'start_time' (a heating start time moves "
                f"heating into the window), got {self.direction!r}"
            )
        tz = zone(DEFAULT_TZ)
        day = self.start.astimezone(tz).date()
        next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        if self.start + START_TIME_WINDOW > next_midnight:
            raise ValueError(
                f"start: must be at most {(next_midnight - START_TIME_WINDOW).isoformat()} (its "
                f"{_hours(START_TIME_WINDOW)} h window lies within one local day in "
                f"{DEFAULT_TZ}), got {self.start.isoformat()}"
            )
        return self

    @property
    def order_window(self) -> tuple[datetime, datetime]:
        """The window ``[start, end)`` the order asks about (either kind)."""
        if self.start is not None:
            return self.start, self.start + START_TIME_WINDOW
        assert self.window is not None  # checked by _check
        return self.window.start, self.window.end

    @property
    def target_kwh(self) -> float:
        """The energy asked over the window [kWh] (0 for an order by start time alone)."""
        if self.power_kw is not None:
            return sum(self.power_kw) * SLOT_HOURS
        return float(self.energy_kwh or 0.0)

    def canonical(self) -> str:
        """The body as one text, instants in UTC: equal for the same order however written."""
        start, end = self.order_window
        data: dict[str, Any] = {
            "direction": self.direction or "up",
            "window": [start.timestamp(), end.timestamp()],
            "energy_kwh": self.energy_kwh,
            "power_kw": None if self.power_kw is None else list(self.power_kw),
            "deadline": None if self.deadline is None else self.deadline.timestamp(),
        }
        if self.kind != "amount":  # an amount order's text as before kinds existed
            data["kind"] = self.kind
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


_SlotKwh = Annotated[float, Strict(), bounded_float(0.0, MAX_SLOT_KWH)]


class MeterSeries(_Body):
    """Consecutive 30-minute energies of one resource from ``start``."""

    resource: str = Field(
        min_length=1, max_length=128, description="The resource's name (DeviceId or group)."
    )
    start: SlotInstant = Field(description="Start of the first slot.")
    energy_kwh: tuple[_SlotKwh, ...] = Field(
        min_length=1,
        max_length=MAX_SERIES_SLOTS,
        description=f"Energy per slot [kWh], each in [0, {MAX_SLOT_KWH:g}].",
    )


class MeterReadings(_Body):
    """A post of a meter data provider (``POST /api/v1/meter-readings``)."""

    series: tuple[MeterSeries, ...] = Field(min_length=1, max_length=10_000)


# ------------------------------------------------------------------------------ answers
class OrderOut(BaseModel):
    """An order as the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["amount", "start_time"] = Field(
        default="amount",
        description="'start_time': by heating start time alone (target_kwh 0: no amount asked).",
    )
    status: OrderStatus
    status_reason: str | None = None
    direction: Direction
    window: dict[str, datetime]
    energy_kwh: float | None
    power_kw: tuple[float, ...] | None
    target_kwh: float
    deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    requested_kwh: float | None = Field(default=None, description="Last figures (lists).")
    accepted_kwh: float | None = None
    delivered_kwh: float | None = None


class OrderDetail(OrderOut):
    """An order with its figures now (``GET /api/v1/orders/{id}``)."""

    figures: OrderFigures
    settled_kwh: float | None = Field(description="Delivered as settled; None until settled.")


class OrderList(BaseModel):
    orders: tuple[OrderOut, ...]


class PotentialOut(BaseModel):
    """The latest potential collected for a window."""

    request_id: str
    requested_at: datetime
    potential: PortfolioPotential


class SettlementDay(BaseModel):
    date: date
    events: tuple[SettledEvent, ...]


class MeterAccepted(BaseModel):
    received: int = Field(description="Slots received.")
    written: int = Field(description="Slots stored or changed (the others were already there).")


# ------------------------------------------------------------------------------ context
@dataclass(frozen=True)
class ApiContext:
    """What the routes need: the store, the BL (read only) and the process clock."""

    store: ServicerStore
    servicer: Servicer
    now: Callable[[], datetime]
    tz: str = DEFAULT_TZ


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx


ContextDep = Annotated[ApiContext, Depends(_context)]
# module-level: FastAPI resolves these annotations in the module's namespace
OrdersWriter = Annotated[Principal, Depends(require_scopes(ORDERS_WRITE))]
OrdersReader = Annotated[Principal, Depends(require_scopes(ORDERS_READ))]
PortfolioReader = Annotated[Principal, Depends(require_scopes(PORTFOLIO_READ))]
SettlementsReader = Annotated[Principal, Depends(require_scopes(SETTLEMENTS_READ))]
MeterWriter = Annotated[Principal, Depends(require_scopes(METER_WRITE))]


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}")


def _only_query(*names: str) -> Callable[[Request], None]:
    allowed = frozenset(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            listed = ", ".join(sorted(allowed)) or "none"
            raise _bad(f"query.{unknown[0]}", f"unknown parameter (allowed: {listed})")

    return check


def _local(value: datetime, tz: str) -> datetime:
    return value.astimezone(zone(tz))


def _order_out(order: OrderRecord, tz: str) -> OrderOut:
    figures = order.figures or {}
    return OrderOut(
        id=order.id,
        kind="start_time" if order.kind == START_TIME else "amount",
        status=order.status,
        status_reason=order.status_reason,
        direction=order.direction,
        window={
            "start": _local(order.window_start, tz),
            "end": _local(order.window_end, tz),
        },
        energy_kwh=order.energy_kwh,
        power_kw=order.power_kw,
        target_kwh=order.target_kwh,
        deadline=None if order.deadline is None else _local(order.deadline, tz),
        created_at=_local(order.created_at, tz),
        updated_at=_local(order.updated_at, tz),
        requested_kwh=figures.get("requested_kwh"),
        accepted_kwh=figures.get("accepted_kwh"),
        delivered_kwh=figures.get("delivered_kwh"),
    )


def _parse_instant(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(
            field, f"must be an ISO 8601 date-time with a UTC offset, got {value!r:.60}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _bad(field, f"must carry a UTC offset (e.g. +09:00), got {value!r:.60}")
    if not is_slot_aligned(parsed):
        raise _bad(field, f"must be on a 30-minute boundary, got {value!r:.60}")
    return parsed


def _parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(field, f"must be a date YYYY-MM-DD, got {value!r:.40}") from None


# ------------------------------------------------------------------------------ routes
def api_router() -> APIRouter:
    """The ``/api/v1`` routes (see the module docstring)."""
    router = APIRouter(prefix="/api/v1")

    @router.post(
        "/orders",
        response_model=OrderOut,
        status_code=201,
        tags=["orders"],
        summary="Place an order (idempotent with Idempotency-Key)",
        responses={200: {"description": "The same key and body again: the same order."}},
        dependencies=[Depends(_only_query())],
    )
    def create_order(
        body: OrderCreate,
        ctx: ContextDep,
        response: Response,
        principal: OrdersWriter,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="1–128 printable ASCII characters; a retry with the same key and "
                "body returns the same order.",
            ),
        ] = None,
    ) -> OrderOut:
        now = ctx.now()
        if idempotency_key is not None and not (
            1 <= len(idempotency_key) <= _KEY_LENGTH
            and idempotency_key.isascii()
            and idempotency_key.isprintable()
        ):
            raise _bad("Idempotency-Key", f"must be 1–{_KEY_LENGTH} printable ASCII characters")
        start, end = body.order_window
        start_field = "start" if body.kind == "start_time" else "window.start"
        if start <= now:
            raise _bad(
                start_field, f"must be in the future (now is {_local(now, ctx.tz).isoformat()})"
            )
        if start > now + MAX_LEAD:
            raise _bad(start_field, f"must be within {MAX_LEAD.days} days from now")
        if body.deadline is not None and not now < body.deadline <= start:
            raise _bad(
                "deadline",
                f"must be after now ({_local(now, ctx.tz).isoformat()}) and at most "
                f"window.start ({start.isoformat()}), got {body.deadline.isoformat()}",
            )
        try:
            order, created = ctx.store.create_order(
                order_id=str(uuid.uuid4()),
                client_id=principal.client_id,
                idempotency_key=idempotency_key,
                request_hash=hashlib.sha256(body.canonical().encode()).hexdigest(),
                direction=body.direction or "up",
                window_start=start,
                window_end=end,
                energy_kwh=body.energy_kwh,
                power_kw=body.power_kw,
                target_kwh=body.target_kwh,
                deadline=body.deadline,
                created_at=now,
                start_time=body.kind == "start_time",
            )
        except IdempotencyConflictError as err:
            raise ApiError(409, str(err)) from None
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/api/v1/orders/{order.id}"
        return _order_out(order, ctx.tz)

    @router.get(
        "/orders/{order_id}",
        response_model=OrderDetail,
        tags=["orders"],
        summary="An order: its status and what it got so far per route",
        dependencies=[Depends(_only_query("detail"))],
    )
    def get_order(
        order_id: str,
        ctx: ContextDep,
        _: OrdersReader,
        detail: Annotated[
            Literal["resources"] | None, Query(description="'resources': per-resource figures.")
        ] = None,
    ) -> OrderDetail:
        order = ctx.store.order(order_id) if len(order_id) <= 36 else None
        if order is None:
            raise ApiError(404, f"order {order_id[:40]!r} not found")
        now = ctx.now()
        figures = order_figures(ctx.store, ctx.servicer, order, now=now)
        if detail is None:
            figures = figures.model_copy(update={"resources": ()})
        settled = None
        if order.dispatch_id is not None:
            record = ctx.store.settlement(order.dispatch_id)
            if record is not None:
                settled = float(record.result.get("delivered_kwh", 0.0))
        out = _order_out(order, ctx.tz)
        return OrderDetail(
            **out.model_dump(exclude={"requested_kwh", "accepted_kwh", "delivered_kwh"}),
            requested_kwh=figures.requested_kwh,
            accepted_kwh=figures.accepted_kwh,
            delivered_kwh=figures.delivered_kwh,
            figures=figures,
            settled_kwh=settled,
        )

    @router.get(
        "/orders",
        response_model=OrderList,
        tags=["orders"],
        summary="Orders, newest window first",
        dependencies=[Depends(_only_query("status", "date", "limit", "offset"))],
    )
    def list_orders(
        ctx: ContextDep,
        _: OrdersReader,
        status: Annotated[str | None, Query(description="One order status.")] = None,
        date_: Annotated[
            str | None, Query(alias="date", description="Local day of the window, YYYY-MM-DD.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> OrderList:
        if status is not None and status not in {s.value for s in OrderStatus}:
            allowed = ", ".join(s.value for s in OrderStatus)
            raise _bad("status", f"must be one of {allowed}, got {status!r:.40}")
        day = None if date_ is None else _parse_day(date_, "date")
        orders = ctx.store.list_orders(
            status=status, day=day, tz=ctx.tz, limit=limit, offset=offset
        )
        return OrderList(orders=tuple(_order_out(o, ctx.tz) for o in orders))

    @router.get(
        "/portfolio/potential",
        response_model=PotentialOut,
        tags=["portfolio"],
        summary="The latest potential collected for a window, per route, with who did not answer",
        dependencies=[Depends(_only_query("start", "end"))],
    )
    def get_potential(
        ctx: ContextDep,
        _: PortfolioReader,
        start: Annotated[str, Query(description="Window start, ISO 8601 with offset.")],
        end: Annotated[str, Query(description="Window end, exclusive.")],
    ) -> PotentialOut:
        window_start = _parse_instant(start, "start")
        window_end = _parse_instant(end, "end")
        if not window_start < window_end:
            raise _bad("end", "must be after start")
        record = ctx.store.latest_potential_request(
            window_start=window_start, window_end=window_end
        )
        if record is None:
            raise ApiError(
                404,
                f"no potential collected for {window_start.isoformat()} – {window_end.isoformat()}"
                " yet: the servicer asks at its potential times for the next day's windows and "
                "for each order's window",
            )
        return PotentialOut(
            request_id=record.request_id,
            requested_at=_local(record.requested_at, ctx.tz),
            potential=ctx.servicer.stored_potential(record.request_id),
        )

    @router.get(
        "/settlements/{day}",
        response_model=SettlementDay,
        tags=["settlements"],
        summary="The dispatches of a local day settled from meter data (JSON or CSV)",
        responses={200: {"content": {"text/csv": {}}}},
        dependencies=[Depends(_only_query("format"))],
    )
    def get_settlements(
        day: str,
        request: Request,
        ctx: ContextDep,
        _: SettlementsReader,
        format_: Annotated[
            str | None, Query(alias="format", description="'json' (default) or 'csv'.")
        ] = None,
    ) -> Response:
        when = _parse_day(day, "date")
        if format_ not in (None, "json", "csv"):
            raise _bad("format", f"must be 'json' or 'csv', got {format_!r:.20}")
        records = ctx.store.settlements_of_day(when)
        if not records:
            raise ApiError(404, f"no settlement for {when.isoformat()} yet")
        accept = request.headers.get("accept", "")
        as_csv = format_ == "csv" or (format_ is None and "text/csv" in accept)
        if as_csv:
            return Response(_joined_csv([r.csv for r in records]), media_type=_CSV_MEDIA)
        events = tuple(SettledEvent.model_validate(r.result) for r in records)
        body = SettlementDay(date=when, events=events)
        return Response(body.model_dump_json(), media_type="application/json")

    @router.post(
        "/meter-readings",
        response_model=MeterAccepted,
        tags=["meter"],
        summary="30-minute metered energy per resource (a meter data provider)",
        dependencies=[Depends(_only_query())],
    )
    def post_meter_readings(
        body: MeterReadings,
        ctx: ContextDep,
        _: MeterWriter,
    ) -> MeterAccepted:
        now = ctx.now()
        oldest = (now - timedelta(days=LOOKBACK_DAYS + 1)).astimezone(zone(ctx.tz))
        total = sum(len(s.energy_kwh) for s in body.series)
        if total > MAX_METER_VALUES:
            raise _bad("series", f"at most {MAX_METER_VALUES} values per post, got {total}")
        names = [s.resource for s in body.series]
        ids = ctx.store.registry().resource_ids_by_name(names)
        resource_ids: list[str] = []
        starts: list[datetime] = []
        energy: list[float] = []
        seen: set[tuple[str, float]] = set()
        for i, s in enumerate(body.series):
            rid = ids.get(s.resource)
            if rid is None:
                raise _bad(f"series[{i}].resource", f"unknown resource {s.resource!r:.140}")
            end = s.start + len(s.energy_kwh) * SLOT
            if end > now:
                raise _bad(
                    f"series[{i}].energy_kwh",
                    f"the last slot ends at {_local(end, ctx.tz).isoformat()}, after now "
                    f"({_local(now, ctx.tz).isoformat()}): meter data are for slots that ended",
                )
            if s.start < oldest:
                raise _bad(
                    f"series[{i}].start",
                    f"must be within the last {LOOKBACK_DAYS + 1} days (the baseline's "
                    f"look-back), got {s.start.isoformat()}",
                )
            for k, value in enumerate(s.energy_kwh):
                slot = s.start + k * SLOT
                key = (rid, slot.timestamp())
                if key in seen:
                    raise _bad(
                        f"series[{i}].energy_kwh[{k}]",
                        f"slot {slot.isoformat()} of {s.resource!r:.60} is given twice",
                    )
                seen.add(key)
                resource_ids.append(rid)
                starts.append(slot)
                energy.append(value)
        written = ctx.store.upsert_meter_slots(
            resource_ids=resource_ids,
            slot_starts=starts,
            energy_kwh=energy,
            source="meter-api",
            updated_at=now,
        )
        return MeterAccepted(received=total, written=written)

    return router


def _joined_csv(texts: Sequence[str]) -> str:
    """The CSVs of several settled dispatches under one header (``event_id`` tells them apart);
    a header alone when none settled a resource."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for text in texts:
        rows = list(csv.reader(io.StringIO(text)))
        writer.writerows(rows[1:])
    return out.getvalue()


# ------------------------------------------------------------------------------ errors
def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "header", "path"):
        head, rest = parts[0], parts[1:]
        parts = rest if head == "body" else [head, *rest]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def describe_validation(errors: Sequence[Any]) -> str:
    """One ``field: rule`` per error, the field as the client wrote it."""
    lines = []
    for err in errors:
        kind = err.get("type")
        loc = tuple(err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required"
        elif kind == "json_invalid":
            message = "not valid JSON"
            loc = ("body",)
        if _NAMES_ITS_FIELDS.match(message):  # a model's own check names the fields it means
            lines.append(message)
            continue
        name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        if name and message.startswith(name + " "):  # "energy_kwh must be …" under energy_kwh
            message = message[len(name) + 1 :]
        lines.append(f"{_field(loc)}: {message}")
    return "; ".join(dict.fromkeys(lines))


#: A message that starts with the field path(s) it concerns, "window.end: …".
_NAMES_ITS_FIELDS = re.compile(r"^[A-Za-z_][\w.\[\]]*(, [A-Za-z_][\w.\[\]]*)*: ")


def install_api_error_handlers(app: FastAPI) -> None:
    """Problem answers (RFC 7807) for the API: 400 naming the field for bad input, the status
    of an :class:`~drready.openadr.vtn.errors.ApiError`, 404/405 for unknown routes and
    methods, 500 without internals for anything unexpected."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return api_error_response(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(400, describe_validation(exc.errors()))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, detail, headers=exc.headers)

    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled error", exc_info=exc)
        return problem_response(500, "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
