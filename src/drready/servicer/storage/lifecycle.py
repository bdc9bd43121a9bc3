"""The life of an assignment, of a dispatch and of an order, as transition tables (F2, D3, U2;
reliability: a status changes only along an edge drawn here).

An *assignment* is one resource's share of a dispatch in one round (F2); a *dispatch* is the
portfolio's answer to a target. Their statuses are stored in the ``assignment`` and
``dispatch`` tables (:mod:`drready.servicer.storage.db`) and change only in
:mod:`drready.servicer.storage.dispatches`, which asks these tables for every change, in the
style of h11's ``_state.py``: ``{state: {event: next_state}}``, and a pair that is not in the
table raises :class:`TransitionError` naming the state, the event and the states that allow it.

Assignment (``answer_*`` is ``answer_accepted``, ``answer_partial`` or ``answer_rejected``;
the next status is the answer's)::

    pending ──send──► sent ──answer_*──► accepted | partial | rejected ──┐
       │               │                     ▲        ▲                  │ answer_*
       │               │                     │        └──────────────────┘ (a newer report)
       │               └──silence──► silent ─┘ answer_* (late: stored, flagged)
       │
       └──cancel──► cancelled ◄──cancel── sent, accepted, partial

* ``send``: the assignment's DR event was created on the VTN.
* ``answer_*``: a plan report (F3/F4) answered it. From ``silent`` the answer is *late*
  (flagged, not counted); from an answered status it revises the answer (the store keeps the
  newer report only).
* ``silence``: no answer within the servicer's response timeout (its event is then deleted and
  the amount re-dispatched, D3).
* ``cancel``: withdrawn before its end; a rejected, silent or cancelled one has nothing left to
  withdraw. A cancelled assignment takes no answer (the store reports it as ignored).

Dispatch: ``open ──assign──► open`` (a round of assignments is added), ``open ──close──►
closed``; a closed dispatch takes no new round.

Order — what a client of the servicer's north-bound API asked for (a direction, a window, an
amount), stored in ``dr_order`` and changed only by :mod:`drready.servicer.storage.orders`. The
main line, then the side edges::

    requested ─ask─► collecting ─dispatch─► dispatched ─start─► delivering ─end─► delivered
                                                                                   │ settle
                                                                                   ▼
                                                                                settled
    collecting ─nothing─► rejected          dispatched ─accept─► accepted ─start─► delivering
    requested, collecting ─expire─► expired  dispatched ─refuse─► rejected
    accepted ─refuse─► rejected ─accept─► accepted    accepted, rejected ─redispatch─► dispatched

* ``ask``: the servicer asked the resources for their potential in the order's window (F1).
* ``dispatch``: the order's target was split over the resources that declared potential and
  their DR events sent (F2); ``nothing``: no resource declared any, nothing was sent.
* ``accept`` / ``refuse``: no answer is awaited any more and something / nothing was accepted
  (a revised answer may move an order between the two); ``redispatch``: a new round of events
  went out for the shortfall (D3) and its answers are awaited.
* ``start``: the window began with something accepted; ``end``: the window is over and the
  dispatch closed; ``settle``: the day's settlement covered it (U2).
* ``expire``: nothing was dispatched by the order's deadline (or its window's start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from drready.domain import ResponseStatus

__all__ = [
    "ANSWER_EVENTS",
    "ASSIGNMENT_LIFE",
    "DISPATCH_LIFE",
    "ORDER_LIFE",
    "AssignmentEvent",
    "AssignmentStatus",
    "DispatchEvent",
    "DispatchStatus",
    "OrderEvent",
    "OrderStatus",
    "TransitionError",
    "TransitionTable",
]


class AssignmentStatus(StrEnum):
    """Status of an assignment (stored in ``assignment.status``)."""

    PENDING = "pending"
    """Decided and stored; its DR event is not created yet."""
    SENT = "sent"
    """Its DR event is on the VTN; no answer yet."""
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"
    SILENT = "silent"
    """No answer in time; its event was withdrawn."""
    CANCELLED = "cancelled"


class AssignmentEvent(StrEnum):
    """What happens to an assignment."""

    SEND = "send"
    ANSWER_ACCEPTED = "answer_accepted"
    ANSWER_PARTIAL = "answer_partial"
    ANSWER_REJECTED = "answer_rejected"
    SILENCE = "silence"
    CANCEL = "cancel"


class DispatchStatus(StrEnum):
    """Status of a dispatch (stored in ``dispatch.status``): open while its window or its
    answers are pending."""

    OPEN = "open"
    CLOSED = "closed"


class DispatchEvent(StrEnum):
    """What happens to a dispatch."""

    ASSIGN = "assign"
    """A round of assignments is added."""
    CLOSE = "close"


class OrderStatus(StrEnum):
    """Status of an order of the north-bound API (stored in ``dr_order.status``)."""

    REQUESTED = "requested"
    """Received and stored; nothing asked yet."""
    COLLECTING = "collecting"
    """The resources were asked for their potential in the window."""
    DISPATCHED = "dispatched"
    """DR events are out; answers are awaited."""
    ACCEPTED = "accepted"
    """No answer is awaited; something was accepted."""
    REJECTED = "rejected"
    """No answer is awaited and nothing was accepted (or nobody declared potential)."""
    DELIVERING = "delivering"
    """The window is running with something accepted."""
    DELIVERED = "delivered"
    """The window is over and the dispatch closed."""
    SETTLED = "settled"
    """The day's settlement covered it."""
    EXPIRED = "expired"
    """Nothing was dispatched by the deadline."""


class OrderEvent(StrEnum):
    """What happens to an order."""

    ASK = "ask"
    DISPATCH = "dispatch"
    NOTHING = "nothing"
    ACCEPT = "accept"
    REFUSE = "refuse"
    REDISPATCH = "redispatch"
    START = "start"
    END = "end"
    SETTLE = "settle"
    EXPIRE = "expire"


_S = TypeVar("_S", bound=StrEnum)
_E = TypeVar("_E", bound=StrEnum)


class TransitionError(ValueError):
    """An event that the current status does not take (a pair missing from the table)."""

    def __init__(
        self,
        subject: str,
        state: StrEnum,
        event: StrEnum,
        allowed_from: tuple[StrEnum, ...],
        detail: str | None = None,
    ) -> None:
        self.subject = subject
        self.state = state
        self.event = event
        self.allowed_from = allowed_from
        needs = " or ".join(s.value for s in allowed_from) or "a status no one has"
        message = f"{subject} is {state.value}; {event.value!r} needs it {needs}"
        super().__init__(f"{message}: {detail}" if detail else message)


@dataclass(frozen=True)
class TransitionTable(Generic[_S, _E]):
    """A state machine as a table ``{state: {event: next_state}}`` (read only)."""

    name: str
    """What the states are of, for messages (``"assignment"``)."""
    initial: _S
    """The status a new record starts in."""
    table: Mapping[_S, Mapping[_E, _S]]

    def next(self, state: _S, event: _E, *, subject: str | None = None, detail: str = "") -> _S:
        """The status after ``event`` in ``state``; :class:`TransitionError` (naming
        ``subject``, default the table's name, and ``detail`` if given) if it takes none."""
        try:
            return self.table[state][event]
        except KeyError:
            raise TransitionError(
                subject or self.name, state, event, self.sources(event), detail or None
            ) from None

    def allows(self, state: _S, event: _E) -> bool:
        """Whether ``state`` takes ``event``."""
        return event in self.table.get(state, {})

    def sources(self, event: _E) -> tuple[_S, ...]:
        """The states that take ``event``, in table order."""
        return tuple(s for s, edges in self.table.items() if event in edges)

    def moves(self, event: _E) -> dict[_S, _S]:
        """``{state: next_state}`` of every state that takes ``event``."""
        return {s: edges[event] for s, edges in self.table.items() if event in edges}


def _frozen(table: dict[_S, dict[_E, _S]]) -> Mapping[_S, Mapping[_E, _S]]:
    return MappingProxyType({s: MappingProxyType(edges) for s, edges in table.items()})


_S_ = AssignmentStatus
_A = AssignmentEvent
_ANSWERS = {
    _A.ANSWER_ACCEPTED: _S_.ACCEPTED,
    _A.ANSWER_PARTIAL: _S_.PARTIAL,
    _A.ANSWER_REJECTED: _S_.REJECTED,
}

#: The assignment's life (see the module docstring for the picture).
ASSIGNMENT_LIFE: TransitionTable[AssignmentStatus, AssignmentEvent] = TransitionTable(
    name="assignment",
    initial=_S_.PENDING,
    table=_frozen(
        {
            _S_.PENDING: {_A.SEND: _S_.SENT, _A.CANCEL: _S_.CANCELLED},
            _S_.SENT: {**_ANSWERS, _A.SILENCE: _S_.SILENT, _A.CANCEL: _S_.CANCELLED},
            _S_.ACCEPTED: {**_ANSWERS, _A.CANCEL: _S_.CANCELLED},
            _S_.PARTIAL: {**_ANSWERS, _A.CANCEL: _S_.CANCELLED},
            _S_.REJECTED: {**_ANSWERS},
            _S_.SILENT: {**_ANSWERS},
            _S_.CANCELLED: {},
        }
    ),
)

#: The dispatch's life: open (rounds may be added) until closed.
DISPATCH_LIFE: TransitionTable[DispatchStatus, DispatchEvent] = TransitionTable(
    name="dispatch",
    initial=DispatchStatus.OPEN,
    table=_frozen(
        {
            DispatchStatus.OPEN: {
                DispatchEvent.ASSIGN: DispatchStatus.OPEN,
                DispatchEvent.CLOSE: DispatchStatus.CLOSED,
            },
            DispatchStatus.CLOSED: {},
        }
    ),
)

_O = OrderStatus
_OE = OrderEvent

#: The order's life (see the module docstring for the picture).
ORDER_LIFE: TransitionTable[OrderStatus, OrderEvent] = TransitionTable(
    name="order",
    initial=_O.REQUESTED,
    table=_frozen(
        {
            _O.REQUESTED: {_OE.ASK: _O.COLLECTING, _OE.EXPIRE: _O.EXPIRED},
            _O.COLLECTING: {
                _OE.DISPATCH: _O.DISPATCHED,
                _OE.NOTHING: _O.REJECTED,
                _OE.EXPIRE: _O.EXPIRED,
            },
            _O.DISPATCHED: {
                _OE.ACCEPT: _O.ACCEPTED,
                _OE.REFUSE: _O.REJECTED,
                _OE.START: _O.DELIVERING,
            },
            _O.ACCEPTED: {
                _OE.REFUSE: _O.REJECTED,
                _OE.REDISPATCH: _O.DISPATCHED,
                _OE.START: _O.DELIVERING,
            },
            _O.REJECTED: {_OE.ACCEPT: _O.ACCEPTED, _OE.REDISPATCH: _O.DISPATCHED},
            _O.DELIVERING: {_OE.END: _O.DELIVERED},
            _O.DELIVERED: {_OE.SETTLE: _O.SETTLED},
            _O.SETTLED: {},
            _O.EXPIRED: {},
        }
    ),
)

#: The answer event of each F2 response status.
ANSWER_EVENTS: Mapping[ResponseStatus, AssignmentEvent] = MappingProxyType(
    {
        ResponseStatus.ACCEPTED: _A.ANSWER_ACCEPTED,
        ResponseStatus.PARTIAL: _A.ANSWER_PARTIAL,
        ResponseStatus.REJECTED: _A.ANSWER_REJECTED,
    }
)
