"""Orders of the north-bound API (issue 11 item 2): the order's life as a transition table, the
status a dispatched order takes from the facts (hand-written table), live delivery from meter
and F5 counters, and the order, job and settlement stores on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import product

import numpy as np
import pytest

from drready.domain import DEFAULT_TZ, Direction
from drready.domain.time import zone
from drready.servicer.orders import (
    DispatchFacts,
    delivered_so_far,
    order_event,
    slot_energies_from_counter,
)
from drready.servicer.storage.lifecycle import (
    ORDER_LIFE,
    OrderEvent,
    OrderStatus,
    TransitionError,
)
from drready.servicer.storage.orders import IdempotencyConflictError
from drready.servicer.storage.store import ServicerStore

TZ = zone(DEFAULT_TZ)
T0 = datetime(2026, 5, 14, 8, 0, tzinfo=TZ)
W0 = datetime(2026, 5, 14, 10, 0, tzinfo=TZ)
OS = OrderStatus
E = OrderEvent
_NONE = dict.fromkeys(E, None)

#: (status, event) → next status, None where forbidden: the picture in lifecycle's docstring.
EXPECTED: dict[OrderStatus, dict[OrderEvent, OrderStatus | None]] = {
    OS.REQUESTED: {**_NONE, E.ASK: OS.COLLECTING, E.EXPIRE: OS.EXPIRED},
    OS.COLLECTING: {
        **_NONE,
        E.DISPATCH: OS.DISPATCHED,
        E.NOTHING: OS.REJECTED,
        E.EXPIRE: OS.EXPIRED,
    },
    OS.DISPATCHED: {**_NONE, E.ACCEPT: OS.ACCEPTED, E.REFUSE: OS.REJECTED, E.START: OS.DELIVERING},
    OS.ACCEPTED: {
        **_NONE,
        E.REFUSE: OS.REJECTED,
        E.REDISPATCH: OS.DISPATCHED,
        E.START: OS.DELIVERING,
    },
    OS.REJECTED: {**_NONE, E.ACCEPT: OS.ACCEPTED, E.REDISPATCH: OS.DISPATCHED},
    OS.DELIVERING: {**_NONE, E.END: OS.DELIVERED},
    OS.DELIVERED: {**_NONE, E.SETTLE: OS.SETTLED},
    OS.SETTLED: {**_NONE},
    OS.EXPIRED: {**_NONE},
}
PAIRS = list(product(OrderStatus, OrderEvent))


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_the_order_table_is_the_picture(state: OrderStatus, event: OrderEvent) -> None:
    want = EXPECTED[state][event]
    assert ORDER_LIFE.allows(state, event) is (want is not None)
    if want is None:
        with pytest.raises(TransitionError, match=f"order is {state.value}; '{event.value}'"):
            ORDER_LIFE.next(state, event)
    else:
        assert ORDER_LIFE.next(state, event) is want
    assert ORDER_LIFE.initial is OS.REQUESTED


def facts(
    minutes: int, *, awaiting: bool = False, accepted: float = 0.0, closed: bool = False
) -> DispatchFacts:
    """Facts ``minutes`` after 10:00, the window's start."""
    return DispatchFacts(
        now=W0 + timedelta(minutes=minutes),
        window_start=W0,
        awaiting=awaiting,
        accepted_kwh=accepted,
        closed=closed,
    )


# (status, facts, the event) worked out by hand from order_event's rules
EVENT_CASES: list[tuple[OrderStatus, DispatchFacts, OrderEvent | None]] = [
    (OS.DISPATCHED, facts(-60, awaiting=True), None),  # answers still out
    (OS.DISPATCHED, facts(-60, awaiting=True, accepted=1.0), None),  # some in, others out
    (OS.DISPATCHED, facts(-60, accepted=1.0), E.ACCEPT),
    (OS.DISPATCHED, facts(-60), E.REFUSE),
    (OS.DISPATCHED, facts(5, awaiting=True, accepted=1.0), E.START),  # window began
    (OS.DISPATCHED, facts(5, awaiting=True), None),  # began, nothing accepted yet
    (OS.ACCEPTED, facts(-30, accepted=2.0), None),
    (OS.ACCEPTED, facts(-30, awaiting=True, accepted=2.0), E.REDISPATCH),  # round 2 out
    (OS.ACCEPTED, facts(-30), E.REFUSE),  # a revised answer took it back
    (OS.ACCEPTED, facts(0, accepted=2.0), E.START),  # at 10:00 exactly
    (OS.REJECTED, facts(-30), None),
    (OS.REJECTED, facts(-30, awaiting=True), E.REDISPATCH),
    (OS.REJECTED, facts(-30, accepted=0.5), E.ACCEPT),
    (OS.REJECTED, facts(90), None),
    (OS.DELIVERING, facts(60, accepted=2.0), None),  # over, dispatch not closed yet
    (OS.DELIVERING, facts(60, accepted=2.0, closed=True), E.END),
    (OS.DELIVERED, facts(600, accepted=2.0, closed=True), None),  # only settlement moves it
    (OS.REQUESTED, facts(-60), None),
]


@pytest.mark.parametrize(("status", "fact", "event"), EVENT_CASES)
def test_the_status_a_dispatched_order_takes(
    status: OrderStatus, fact: DispatchFacts, event: OrderEvent | None
) -> None:
    got = order_event(status, fact)
    assert got is event
    if got is not None:
        ORDER_LIFE.next(status, got)  # every event it answers is an edge of the table


def test_delivery_from_meter_and_counter_by_hand() -> None:
    # counter samples every 15 min: +0.5 kWh in the first slot, +0 in the second, then gone
    t = np.array([0.0, 900.0, 1800.0, 2700.0, 3600.0])
    counter = np.array([10.0, 10.25, 10.5, 10.5, np.nan])
    edges = np.array([0.0, 1800.0, 3600.0, 5400.0])
    got = slot_energies_from_counter(t, counter, edges, 600.0)
    # 3600 lies 900 s past the last good sample (2700), beyond a 600 s reach: the
    # second slot is unknown; with a 900 s reach it is extrapolated flat (the last pair's rate)
    np.testing.assert_allclose(got[:1], [0.5])
    assert np.isnan(got[1:]).all()
    np.testing.assert_allclose(slot_energies_from_counter(t, counter, edges, 900.0)[:2], [0.5, 0.0])
    # interpolated between samples: 10.5 at 1800, 10.5 at 2700 → 0 from 1800 to 2700
    np.testing.assert_allclose(slot_energies_from_counter(t, counter, [1800.0, 2700.0]), [0.0])
    assert np.isnan(slot_energies_from_counter([0.0], [1.0], [0.0, 1800.0])).all()
    # a window's reports start after its start and stop before its end: both boundaries are
    # extrapolated along the first and last pair (0.6 kWh/h from 60 s to 1740 s → 0.3 kWh)
    samples_t = np.array([60.0, 600.0, 1200.0, 1740.0])
    samples_c = 5.0 + samples_t * (0.6 / 3600.0)
    np.testing.assert_allclose(
        slot_energies_from_counter(samples_t, samples_c, [0.0, 1800.0]), [0.3]
    )
    # declared baseline 1 kW (0.5 kWh per slot); up-DR: energy − baseline, down: baseline − energy
    base = np.array([[1.0, 1.0, 1.0], [0.0, 0.4, 0.4]])
    energy = np.array([[0.75, np.nan, 0.5], [0.1, 0.2, np.nan]])
    up, n_up = delivered_so_far(Direction.UP, base, energy)
    down, n_down = delivered_so_far(Direction.DOWN, base, energy)
    np.testing.assert_allclose(up, [0.25 + 0.0, 0.1 + 0.0])
    np.testing.assert_allclose(down, [-0.25, -0.1])
    assert n_up.tolist() == n_down.tolist() == [2, 2]


# ------------------------------------------------------------------------------ stores
@pytest.fixture
def store(db_url: str) -> Iterator[ServicerStore]:
    s = ServicerStore.open(db_url)
    yield s
    s.close()


def _order(store: ServicerStore, order_id: str, key: str | None, digest: str = "a" * 64) -> object:
    return store.create_order(
        order_id=order_id,
        client_id="desk",
        idempotency_key=key,
        request_hash=digest,
        direction="up",
        window_start=W0,
        window_end=W0 + timedelta(hours=2),
        energy_kwh=3.0,
        power_kw=None,
        target_kwh=3.0,
        deadline=None,
        created_at=T0,
    )


def test_order_store_idempotency_life_and_lists(store: ServicerStore) -> None:
    first, created = _order(store, "o-1", "k")  # type: ignore[misc]
    assert created and first.status is OS.REQUESTED and first.target_kwh == 3.0
    again, created = _order(store, "o-2", "k")  # type: ignore[misc]
    assert not created and again.id == "o-1"  # the same key and body: the stored order
    with pytest.raises(IdempotencyConflictError, match="'k' was used for order o-1"):
        _order(store, "o-3", "k", digest="b" * 64)
    _order(store, "o-4", None)
    _order(store, "o-5", None)
    assert {o.id for o in store.list_orders()} == {"o-1", "o-4", "o-5"}
    with pytest.raises(ValueError, match="exactly one of energy_kwh and power_kw"):
        store.create_order(
            order_id="o-6", client_id="desk", idempotency_key=None, request_hash="c" * 64,
            direction="up", window_start=W0, window_end=W0 + timedelta(hours=1),
            energy_kwh=None, power_kw=None, target_kwh=1.0, deadline=None,
        )  # fmt: skip
    # the life: ask needs a potential request; a pair off the table is refused and changes nothing
    store.record_potential_request(
        request_id="pot-1", window_start=W0, window_end=W0 + timedelta(hours=2), requested_at=T0
    )
    with pytest.raises(TransitionError, match="order o-1 is requested; 'dispatch'"):
        store.apply_order_event(order_id="o-1", event=E.DISPATCH, at=T0)
    asked = store.apply_order_event(
        order_id="o-1", event=E.ASK, at=T0, potential_request_id="pot-1"
    )
    assert asked.status is OS.COLLECTING and asked.potential_asked_at == T0
    gone = store.apply_order_event(order_id="o-4", event=E.EXPIRE, at=T0, reason="too late")
    assert (gone.status, gone.status_reason) == (OS.EXPIRED, "too late")
    assert store.order_counts()[OS.EXPIRED] == 1 and store.order_counts()[OS.COLLECTING] == 1
    assert [o.id for o in store.orders_in_progress(now=T0)] == ["o-1", "o-5"]
    assert store.list_orders(status="expired")[0].id == "o-4"
    assert store.list_orders(day=date(2026, 5, 15)) == []
    assert store.set_order_figures(
        order_id="o-1", figures={"routes": [{"route": "cloud", "delivered_kwh": 1.5}]}, at=T0
    )
    assert store.delivered_by_route() == {"cloud": 1.5}


def test_an_order_by_start_time_alone_is_stored_without_amount_and_up_only(
    store: ServicerStore,
) -> None:
    def create(order_id: str, **changes: object) -> object:
        args: dict[str, object] = {
            "order_id": order_id, "client_id": "desk", "idempotency_key": None,
            "request_hash": "d" * 64, "direction": "up", "window_start": W0,
            "window_end": W0 + timedelta(hours=4), "energy_kwh": None, "power_kw": None,
            "target_kwh": 0.0, "deadline": None, "start_time": True,
        }  # fmt: skip
        return store.create_order(**{**args, **changes})  # type: ignore[arg-type]

    order, created = create("st-1")  # type: ignore[misc]
    assert created and order.kind == "start_time" and order.target_kwh == 0.0
    assert store.order("st-1").kind == "start_time"  # type: ignore[union-attr]
    amount, _ = _order(store, "st-2", None)  # type: ignore[misc]
    assert amount.kind == "amount"
    for changes in ({"energy_kwh": 1.0}, {"power_kw": [1.0] * 8}, {"target_kwh": 1.0}):
        with pytest.raises(ValueError, match="no energy_kwh, power_kw nor target_kwh"):
            create("st-3", **changes)
    with pytest.raises(ValueError, match="is up-DR"):
        create("st-4", direction="down")
    assert {o.id for o in store.list_orders()} == {"st-1", "st-2"}


def test_job_store_keeps_the_last_successful_due_instant(store: ServicerStore) -> None:
    due = T0.replace(hour=7)
    ok = store.record_job_run(name="potential", due_at=due, attempted_at=due, ok=True)
    assert (ok.last_due_at, ok.runs, ok.failures) == (due, 1, 0)
    later = due + timedelta(hours=6)
    failed = store.record_job_run(
        name="potential", due_at=later, attempted_at=later, ok=False, error="VTN away"
    )
    assert failed.last_due_at == due  # still due for 13:00
    assert (failed.last_ok, failed.last_error, failed.runs, failed.failures) == (
        False, "VTN away", 2, 1,
    )  # fmt: skip
    store.record_job_run(name="potential", due_at=due, attempted_at=later, ok=True)
    assert store.job_records()["potential"].last_due_at == due  # never moved back
    assert store.job_records()["potential"].last_error is None


def test_a_dispatch_is_settled_once_and_found_by_label(store: ServicerStore) -> None:
    dispatch_id = store.create_dispatch(
        label="o-1", direction="up", window_start=W0, window_end=W0 + timedelta(hours=1),
        target_kind="energy", target={"energy_kwh": 1.0}, created_at=T0,
    )  # fmt: skip
    assert store.dispatch_ids_by_label("o-1") == [dispatch_id]
    assert store.dispatch_ids_by_label("o-2") == []
    day = W0.date()
    assert store.save_settlement(dispatch_id=dispatch_id, event_day=day, result={"a": 1}, csv="x")
    assert not store.save_settlement(
        dispatch_id=dispatch_id, event_day=day, result={"a": 2}, csv="y"
    )
    (saved,) = store.settlements_of_day(day)
    assert (saved.result, saved.csv) == ({"a": 1}, "x")
    assert store.settled_dispatch_ids() == {dispatch_id}
