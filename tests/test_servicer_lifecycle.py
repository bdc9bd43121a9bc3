"""The assignment and dispatch lifecycles: the transition tables, pair by pair, alone and through
the store on SQLite and PostgreSQL (F2, D3).

``EXPECTED`` is the life drawn in ``drready.servicer.storage.lifecycle``, written out by hand:
every (status, event) pair and the status it leads to, or ``None`` where the status does not
take the event. The tables must say exactly that, and the store must move a stored assignment
exactly so — an allowed pair leaves the table's next status in the database, a forbidden one
changes nothing: the strict operations (sending, adding a round) raise ``TransitionError``; the
ones that apply to whatever takes the event (silence, cancel, close, answers) report it in
their result (0 rows, ``False``, outcome ``ignored``), as they always have.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import product

import pytest

from drready.domain import ResponseStatus
from drready.servicer.storage.db import ResourceKind
from drready.servicer.storage.dispatches import AssignmentRecord, ResponseOutcome
from drready.servicer.storage.lifecycle import (
    ANSWER_EVENTS,
    ASSIGNMENT_LIFE,
    DISPATCH_LIFE,
    AssignmentEvent,
    AssignmentStatus,
    DispatchEvent,
    DispatchStatus,
    TransitionError,
)
from drready.servicer.storage.store import ServicerStore

S = AssignmentStatus
E = AssignmentEvent
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=9)))

_ANSWERS = {
    E.ANSWER_ACCEPTED: S.ACCEPTED,
    E.ANSWER_PARTIAL: S.PARTIAL,
    E.ANSWER_REJECTED: S.REJECTED,
}
_NONE = dict.fromkeys(E, None)

#: (status, event) → next status, None where forbidden: the module docstring's picture.
EXPECTED: dict[AssignmentStatus, dict[AssignmentEvent, AssignmentStatus | None]] = {
    S.PENDING: {**_NONE, E.SEND: S.SENT, E.CANCEL: S.CANCELLED},
    S.SENT: {**_NONE, **_ANSWERS, E.SILENCE: S.SILENT, E.CANCEL: S.CANCELLED},
    S.ACCEPTED: {**_NONE, **_ANSWERS, E.CANCEL: S.CANCELLED},
    S.PARTIAL: {**_NONE, **_ANSWERS, E.CANCEL: S.CANCELLED},
    S.REJECTED: {**_NONE, **_ANSWERS},
    S.SILENT: {**_NONE, **_ANSWERS},
    S.CANCELLED: {**_NONE},
}
PAIRS = list(product(AssignmentStatus, AssignmentEvent))

D = DispatchStatus
DISPATCH_EXPECTED: dict[DispatchStatus, dict[DispatchEvent, DispatchStatus | None]] = {
    D.OPEN: {DispatchEvent.ASSIGN: D.OPEN, DispatchEvent.CLOSE: D.CLOSED},
    D.CLOSED: {DispatchEvent.ASSIGN: None, DispatchEvent.CLOSE: None},
}


# ---------------------------------------------------------------------- the tables alone


def test_every_status_has_a_row_and_the_lives_start_where_they_should() -> None:
    assert set(ASSIGNMENT_LIFE.table) == set(AssignmentStatus)
    assert set(DISPATCH_LIFE.table) == set(DispatchStatus)
    assert ASSIGNMENT_LIFE.initial is S.PENDING and DISPATCH_LIFE.initial is D.OPEN
    assert {s: ANSWER_EVENTS[s] for s in ResponseStatus} == {
        ResponseStatus.ACCEPTED: E.ANSWER_ACCEPTED,
        ResponseStatus.PARTIAL: E.ANSWER_PARTIAL,
        ResponseStatus.REJECTED: E.ANSWER_REJECTED,
    }


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_assignment_table_pair(state: AssignmentStatus, event: AssignmentEvent) -> None:
    expected = EXPECTED[state][event]
    assert ASSIGNMENT_LIFE.allows(state, event) is (expected is not None)
    if expected is not None:
        assert ASSIGNMENT_LIFE.next(state, event) is expected
        assert ASSIGNMENT_LIFE.moves(event)[state] is expected
        return
    with pytest.raises(TransitionError) as info:
        ASSIGNMENT_LIFE.next(state, event, subject="assignment 7")
    err = info.value
    assert (err.state, err.event) == (state, event)
    sources = tuple(s for s in AssignmentStatus if EXPECTED[s][event] is not None)
    assert err.allowed_from == sources == ASSIGNMENT_LIFE.sources(event)
    assert str(err) == (
        f"assignment 7 is {state.value}; {event.value!r} needs it "
        + " or ".join(s.value for s in sources)
    )
    assert state not in ASSIGNMENT_LIFE.moves(event)


def test_dispatch_table_every_pair() -> None:
    for state, event in product(DispatchStatus, DispatchEvent):
        expected = DISPATCH_EXPECTED[state][event]
        if expected is None:
            with pytest.raises(TransitionError, match=f"dispatch is {state.value}; "):
                DISPATCH_LIFE.next(state, event)
        else:
            assert DISPATCH_LIFE.next(state, event) is expected


def test_a_transition_error_is_a_value_error_and_carries_the_detail() -> None:
    with pytest.raises(ValueError, match=r"is sent; 'send' needs it pending: it was sent as"):
        ASSIGNMENT_LIFE.next(S.SENT, E.SEND, detail="it was sent as event 'a', not 'b'")


# ---------------------------------------------------------------------- through the store


@pytest.fixture
def store(db_url: str) -> Iterator[ServicerStore]:
    s = ServicerStore.open(db_url)
    reg = s.registry()
    reg.upsert_ven(ven_id="v1", ven_name="maker-cloud", route="cloud", client_id="c1", at=T0)
    reg.upsert_resource(
        resource_id="r0",
        ven_id="v1",
        resource_name="000005:HW0000000",
        kind=ResourceKind.UNIT,
        rated_power_kw=1.5,
    )
    try:
        yield s
    finally:
        s.close()


_ANSWER_OF = {
    E.ANSWER_ACCEPTED: ("accepted", 1.0, None),
    E.ANSWER_PARTIAL: ("partial", 0.5, "tank nearly full"),
    E.ANSWER_REJECTED: ("rejected", 0.0, "hot water needed"),
}


def _answer(
    store: ServicerStore, a: AssignmentRecord, event: AssignmentEvent, report: str, at: datetime
) -> ResponseOutcome:
    status, accepted, reason = _ANSWER_OF[event]
    return store.record_response(
        event_id=a.event_id or a.event_name,  # a pending one has no event: nobody can answer it
        status=status,
        accepted_kwh=accepted,
        report_id=report,
        responded_at=at,
        reason=reason,
    )


def _assignment_in(store: ServicerStore, state: AssignmentStatus, k: int) -> AssignmentRecord:
    """A new assignment (requested 1 kWh), brought to ``state`` by the store's own operations."""
    did = store.create_dispatch(
        label=f"walk-{k}",
        direction="up",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        target_kind="energy",
        target={"energy_kwh": 1.0},
        assignments=[("r0", 1.0)],
        created_at=T0,
    )
    record = store.get_dispatch(did)
    assert record is not None
    aid = record.assignments[0].id
    if state is not S.PENDING:
        assert store.mark_assignment_sent(assignment_id=aid, event_id=f"ev-{k}", sent_at=T0)
    sent = store.get_assignment(aid)
    assert sent is not None
    answer = {s: e for e, s in _ANSWERS.items()}.get(state)
    if answer is not None:
        first = _answer(store, sent, answer, f"rep-{k}", T0 + timedelta(minutes=1))
        assert first is ResponseOutcome.RECORDED
    if state is S.SILENT:
        assert store.mark_silent(assignment_ids=[aid]) == 1
    if state is S.CANCELLED:
        assert store.cancel_assignments(assignment_ids=[aid]) == 1
    got = store.get_assignment(aid)
    assert got is not None and got.status is state
    return got


def test_store_walks_every_assignment_pair(store: ServicerStore) -> None:
    """Each of the 42 (status, event) pairs on a stored assignment of its own."""
    later = T0 + timedelta(hours=1)
    for k, (state, event) in enumerate(PAIRS):
        a = _assignment_in(store, state, k)
        expected = EXPECTED[state][event]
        label = f"{state.value} --{event.value}-->"
        if event is E.SEND:
            if expected is None:
                with pytest.raises(TransitionError, match=f"is {state.value}; 'send' needs it"):
                    store.mark_assignment_sent(assignment_id=a.id, event_id=f"new-{k}")
            else:
                assert store.mark_assignment_sent(assignment_id=a.id, event_id=f"new-{k}")
        elif event in _ANSWER_OF:
            outcome = _answer(store, a, event, f"rep-new-{k}", later)
            if expected is None:
                unaddressable = a.event_id is None
                want = ResponseOutcome.UNKNOWN if unaddressable else ResponseOutcome.IGNORED
                assert outcome is want, label
            else:
                want = {S.SENT: ResponseOutcome.RECORDED, S.SILENT: ResponseOutcome.LATE}.get(
                    state, ResponseOutcome.REVISED
                )
                assert outcome is want, label
        elif event is E.SILENCE:
            changed = store.mark_silent(assignment_ids=[a.id])
            assert changed == (expected is not None), label
        else:
            changed = store.cancel_assignments(assignment_ids=[a.id])
            assert changed == (expected is not None), label
        after = store.get_assignment(a.id)
        assert after is not None
        if expected is None:
            assert after == a, f"{label} changed the assignment"
        else:
            assert after.status is expected, label
            assert after.late is (state is S.SILENT and event in _ANSWER_OF), label


def test_store_walks_every_dispatch_pair(store: ServicerStore) -> None:
    for k, (state, event) in enumerate(product(DispatchStatus, DispatchEvent)):
        did = store.create_dispatch(
            label=f"d-{k}",
            direction="down",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            target_kind="energy",
            target={},
            created_at=T0,
        )
        if state is D.CLOSED:
            assert store.close_dispatch(dispatch_id=did)
        expected = DISPATCH_EXPECTED[state][event]
        if event is DispatchEvent.ASSIGN:
            if expected is None:
                with pytest.raises(TransitionError, match=f"dispatch {did} is closed; 'assign'"):
                    store.add_assignments(dispatch_id=did, round=1, assignments=[("r0", 1.0)])
            else:
                ids = store.add_assignments(dispatch_id=did, round=1, assignments=[("r0", 1.0)])
                assert len(ids) == 1
        else:
            assert store.close_dispatch(dispatch_id=did) is (expected is not None)
        record = store.get_dispatch(did)
        assert record is not None
        assert record.status is (state if expected is None else expected)
        assert len(record.assignments) == (1 if expected is D.OPEN else 0)
