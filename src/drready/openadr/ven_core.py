"""The VEN's protocol state without I/O, shared by the maker cloud and the home gateway (C1, D6).

A drready VEN — the maker cloud (route ii) or the home gateway (route i) — answers the servicer's
events through the profile (:mod:`drready.openadr.profile`): a potential request (F1) with a
potential report, a DR event (F2) with a plan report (F3/F4), and power reports (F5) inside the
DR windows it accepted. *What* it does and *when* is decided here, by :class:`VenCore`, which
contains no I/O whatsoever (in the manner of h11): it is fed **inputs** — the VEN's own reports
read once at recovery, the events read on each poll, the current time, and the results of the
work it asked for — and answers with **actions**: log lines and at most one piece of work at a
time (ask units for potential, apply a round of DR requests, sample power, post a report). The
shells (:class:`drready.cloud.service.MakerCloud`, :class:`drready.gateway.ven.GatewayVen`,
through :class:`drready.openadr.ven.PollingVen`) execute the work — fleet arrays or ECHONET Lite
calls, HTTPS posts — and feed each result back with :meth:`VenCore.handle`::

    actions = core.handle(Recovered(reports, now))      # once, before the first poll
    actions = core.handle(Polled(now, events, resources))
    # actions: Log(...)*, then one of AskPotential | ApplyRequests | SamplePower | PostReport,
    # whose result (PotentialGiven | RequestsAnswered | WorkFailed | PowerSampled | Posted |
    # PostRefused) is the next input; a list without work ends the poll. A VTN outage (or any
    # error in the shell) mid-poll is the input Interrupted.

The rules, once for both routes:

* **Classify** each event once: a potential request (``profile.is_potential_request``), a DR
  event (``profile.is_dr_event``), or foreign (skipped with a log line, never retried). Events
  are taken in the order they were created. An event that does not follow the profile (no
  window, no ``DISPATCH_SETPOINT_RELATIVE``) or targets none of the VEN's resources is skipped
  with the reason.
* **F1** — the targeted resources (all when untargeted) are asked for their envelopes. When
  none gives one and a failure may pass (a unit that did not answer) while the window is still
  open, the event is *not yet* answered and asked again on the next poll; otherwise it is
  skipped with the reasons. Resources that gave none are left out of the report (logged).
* **F2–F4** — the poll's new DR events are applied in **rounds** of events that share no
  resource (each round is one piece of work: the fleet plans it at once, the gateway asks its
  units concurrently), in creation order; the plan report of each is posted before the next
  round. The request id the units get is the event name (``profile.request_from_event``: the
  one kW → kWh conversion of a request on the VEN side).
* **Once only** — an event's units are asked once: an answer whose report cannot be posted
  (VTN outage) is held and the *same* report posted on a later poll. Asking again would cost
  a second round of ECHONET Lite exchanges or fleet planning, could give other figures, and a
  unit that cannot tell a retry (a 0xF0 Set without the request id) would take it as a second
  request. A report the VTN refuses (4xx) skips the event for good.
* **F5** — during an answered DR window, the resources that accepted something are sampled
  and reported, at most every ``power_interval`` per event, stamped with the poll's ``now``
  (the instant on the events' clock); the window is dropped at its end, or when the VTN refuses
  its report. A window whose resources all fail to give a sample is tried on the next poll.
* **Restart** — the VEN's own reports (read once, before the first poll) mark every event it
  answered (potential or plan report) as posted, and the DR windows still running resume their
  power reports, paced from the last power report found.

The life of an event is the transition table :data:`TRANSITIONS` (:class:`Phase` × :class:`Step`
→ :class:`Phase`); a step the table does not allow raises :class:`VenCoreError`, as does an
input out of order (a shell's bug, never the VTN's).

References
----------
OpenADR Alliance, "OpenADR 3.1.0 Specification" (``Definition.md`` "Targeting", "Reports");
the drready profile, ``docs/profile-openadr3.md``; N. J. Smith, h11 (``h11/_connection.py``,
``h11/_state.py``): the sans-IO shape and the state machine as a table.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from drready.domain import DrRequest, FlexibilityEnvelope, PowerSample
from drready.openadr import profile
from drready.openadr.models import Event, Report, ReportCreate

__all__ = [
    "TRANSITIONS",
    "Action",
    "ApplyRequests",
    "AskPotential",
    "DrAsk",
    "Input",
    "Interrupted",
    "Log",
    "Phase",
    "Polled",
    "PostRefused",
    "PostReport",
    "Posted",
    "PotentialGiven",
    "PowerSampled",
    "PowerWindow",
    "Recovered",
    "RequestsAnswered",
    "SamplePower",
    "Step",
    "UnitAnswer",
    "UnitFailure",
    "UnitWork",
    "VenCore",
    "VenCoreError",
    "WorkFailed",
]


class VenCoreError(RuntimeError):
    """The core was fed out of order or a step its table forbids: a bug in the shell."""


# ------------------------------------------------------------------ the event lifecycle


class Phase(StrEnum):
    """Where one event stands for this VEN."""

    NEW = "new"
    """Seen, not answered: worked on in this poll or the next."""
    ASKING = "asking"
    """Potential request: its resources are being asked for their envelopes."""
    QUEUED = "queued"
    """DR event: waiting for its round in this poll."""
    APPLYING = "applying"
    """DR event: its request is with its resources."""
    ANSWERED = "answered"
    """Its resources answered; the report is held until it is on the VTN."""
    POSTING = "posting"
    """Its report is being posted."""
    POSTED = "posted"
    """Answered on the VTN (final)."""
    SKIPPED = "skipped"
    """Foreign, off-profile, not for this VEN, unanswerable or refused by the VTN (final)."""


class Step(StrEnum):
    """What happens to an event."""

    RECOVER = "recover"  # found among the VEN's own reports at recovery
    SKIP = "skip"  # not answered, for good (the reason is logged)
    ASK = "ask"  # potential asked of its resources
    NOT_YET = "not yet"  # nobody answered but may: ask again on the next poll
    QUEUE = "queue"  # a DR event waiting for its round
    APPLY = "apply"  # its round is applied
    ANSWER = "answer"  # the report is built and held
    POST = "post"  # the held report is posted
    DONE = "done"  # the VTN took the report
    REFUSE = "refuse"  # the VTN refused the report (4xx)
    INTERRUPT = "interrupt"  # the poll stopped (VTN outage, an error in the shell)


TRANSITIONS: Mapping[Phase, Mapping[Step, Phase]] = MappingProxyType(
    {
        Phase.NEW: {
            Step.RECOVER: Phase.POSTED,
            Step.SKIP: Phase.SKIPPED,
            Step.ASK: Phase.ASKING,
            Step.QUEUE: Phase.QUEUED,
        },
        Phase.ASKING: {
            Step.ANSWER: Phase.ANSWERED,
            Step.NOT_YET: Phase.NEW,
            Step.SKIP: Phase.SKIPPED,
            Step.INTERRUPT: Phase.NEW,  # nothing was promised yet: ask again
        },
        Phase.QUEUED: {Step.APPLY: Phase.APPLYING, Step.INTERRUPT: Phase.NEW},
        Phase.APPLYING: {
            Step.ANSWER: Phase.ANSWERED,
            Step.SKIP: Phase.SKIPPED,
            Step.INTERRUPT: Phase.NEW,  # the work itself failed: no answer to hold
        },
        Phase.ANSWERED: {Step.POST: Phase.POSTING, Step.INTERRUPT: Phase.ANSWERED},
        Phase.POSTING: {
            Step.DONE: Phase.POSTED,
            Step.REFUSE: Phase.SKIPPED,
            Step.INTERRUPT: Phase.ANSWERED,  # the same report goes out on a later poll
        },
        Phase.POSTED: {},
        Phase.SKIPPED: {},
    }
)
"""The life of an event: ``TRANSITIONS[phase][step]`` is the phase after ``step``; a missing key
is a step not allowed in that phase (:class:`VenCoreError`)."""


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Recovered:
    """The VEN's own reports on the VTN, read once before the first poll (restart safety)."""

    reports: tuple[Report, ...]
    now: datetime


@dataclass(frozen=True)
class Polled:
    """The events read on one poll, at ``now`` on the events' clock, and the names of the
    resources the VEN offers now (a gateway's grow as its units are identified)."""

    now: datetime
    events: tuple[Event, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class UnitFailure:
    """A resource that gave no answer: why, and whether asking again may help."""

    reason: str
    transient: bool


@dataclass(frozen=True)
class PotentialGiven:
    """Result of :class:`AskPotential`: the envelopes given (in the order asked) and the
    resources that gave none."""

    event_id: str
    envelopes: tuple[FlexibilityEnvelope, ...]
    failures: tuple[UnitFailure, ...] = ()


@dataclass(frozen=True)
class UnitAnswer:
    """One resource's answer to a DR request (F3/F4), and a note for the log (e.g. why a unit
    that did not answer is reported rejected)."""

    answer: profile.PlanAnswer
    note: str | None = None


@dataclass(frozen=True)
class RequestsAnswered:
    """Result of :class:`ApplyRequests`: per event id of the round, one answer per target, in
    the order of its targets."""

    answers: Mapping[str, tuple[UnitAnswer, ...]]


@dataclass(frozen=True)
class WorkFailed:
    """Result of :class:`AskPotential` or :class:`ApplyRequests` when the work could not be done
    at all (a window the planner cannot plan, …): its events are skipped with ``reason``."""

    reason: str


@dataclass(frozen=True)
class PowerSampled:
    """Result of :class:`SamplePower`: a sample per resource that gave one, a reason per resource
    that did not."""

    samples: Mapping[str, PowerSample]
    failures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Posted:
    """Result of :class:`PostReport`: the VTN took it as report ``report_id``."""

    report_id: str


@dataclass(frozen=True)
class PostRefused:
    """Result of :class:`PostReport`: the VTN refused it (4xx) or it could not be sent as is."""

    reason: str


@dataclass(frozen=True)
class Interrupted:
    """The poll stopped before its work was done (a VTN outage, an error in the shell)."""

    reason: str


Input = (
    Recovered
    | Polled
    | PotentialGiven
    | RequestsAnswered
    | WorkFailed
    | PowerSampled
    | Posted
    | PostRefused
    | Interrupted
)
"""What :meth:`VenCore.handle` takes."""


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Log:
    """A line for the VEN's log (one per action taken or event skipped)."""

    line: str


@dataclass(frozen=True)
class AskPotential:
    """F1: ask ``targets`` for their envelopes of ``[start, end)``; answer :class:`PotentialGiven`
    (or :class:`WorkFailed`)."""

    event_id: str
    start: datetime
    end: datetime
    targets: tuple[str, ...]


@dataclass(frozen=True)
class DrAsk:
    """One DR event of a round: its request (``request_id`` = the event name) for ``targets``."""

    event_id: str
    request: DrRequest
    targets: tuple[str, ...]


@dataclass(frozen=True)
class ApplyRequests:
    """F2: apply a round of DR events that share no resource, at ``now``; answer
    :class:`RequestsAnswered` (or :class:`WorkFailed`)."""

    asks: tuple[DrAsk, ...]
    now: datetime


@dataclass(frozen=True)
class SamplePower:
    """F5: sample the power of ``targets`` at ``now``; answer :class:`PowerSampled`."""

    targets: tuple[str, ...]
    now: datetime


@dataclass(frozen=True)
class PostReport:
    """Post ``body`` (a potential, plan or power report of event ``event_id``); answer
    :class:`Posted` or :class:`PostRefused`, or :class:`Interrupted` on a VTN outage."""

    event_id: str
    body: ReportCreate


UnitWork = AskPotential | ApplyRequests | SamplePower
"""Work on the VEN's resources (fleet arrays or ECHONET Lite calls)."""
Action = Log | UnitWork | PostReport
"""What :meth:`VenCore.handle` returns."""


_ANSWERS: Mapping[type, tuple[type, ...]] = MappingProxyType(
    {
        AskPotential: (PotentialGiven, WorkFailed),
        ApplyRequests: (RequestsAnswered, WorkFailed),
        SamplePower: (PowerSampled,),
        PostReport: (Posted, PostRefused),
    }
)
"""The inputs that answer each kind of work (any other is :class:`VenCoreError`)."""


@dataclass(frozen=True)
class PowerWindow:
    """An answered DR event's window: its accepting ``resources`` get power reports (F5)."""

    event_id: str
    start: datetime
    end: datetime
    resources: tuple[str, ...]
    last_power: datetime | None = None
    """When its last power report was taken (paces the next)."""
    resumed: bool = False
    """Resumed at recovery from the VEN's own reports (answered before a restart)."""

    def due(self, now: datetime, interval: timedelta) -> bool:
        """Whether a power report is due at ``now`` (inside the window, ``interval`` after the
        last)."""
        return self.start <= now < self.end and (
            self.last_power is None or now - self.last_power >= interval
        )


# ------------------------------------------------------------------ the core


@dataclass
class _Record:
    """What the core knows of one event."""

    event_id: str
    phase: Phase = Phase.NEW
    event: Event | None = None
    request: DrRequest | None = None
    targets: tuple[str, ...] = ()
    body: ReportCreate | None = None  # the answer, held until posted
    summary: str = ""  # the tail of the log line once posted
    window: PowerWindow | None = None  # to open once the plan report is posted


@dataclass(frozen=True)
class _Classify:
    """Look at a potential request or a foreign event (in creation order)."""

    event_id: str


@dataclass(frozen=True)
class _DrEvents:
    """Look at the poll's DR events: re-post held answers, skip or queue the new ones."""

    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Post:
    """Post an event's held report."""

    event_id: str


@dataclass(frozen=True)
class _Round:
    """Apply DR events that share no resource, at once."""

    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Power:
    """Sample and report power in the windows due."""


@dataclass(frozen=True)
class _PowerPost:
    """Post one window's power report."""

    event_id: str
    body: ReportCreate
    n_resources: int


_Item = _Classify | _DrEvents | _Post | _Round | _Power | _PowerPost
"""A step of a poll's agenda (what the core does next, in order)."""


class VenCore:
    """The protocol state of one VEN (see the module docstring for the rules).

    Parameters
    ----------
    client_name : str
        ``clientName`` of the VEN's reports.
    power_interval : timedelta
        Least time between two power reports of one DR event, > 0.
    group : str, optional
        The VEN offers its fleet as one resource of this name, its maker's
        ``profile.group_resource`` (D6): reports name the group's resource so
        (``profile.group_named``) and the log says so. None: one resource per unit.
    """

    def __init__(
        self, client_name: str, *, power_interval: timedelta, group: str | None = None
    ) -> None:
        if not client_name:
            raise ValueError("client_name: must not be empty")
        if not power_interval > timedelta(0):
            raise ValueError(f"power_interval must be > 0, got {power_interval}")
        self.client_name = client_name
        self.power_interval = power_interval
        self.group = group
        self.recovered = False
        self._records: dict[str, _Record] = {}
        self._windows: dict[str, PowerWindow] = {}
        self._agenda: deque[_Item] = deque()
        self._waiting: UnitWork | PostReport | None = None
        self._waiting_for: _Item | None = None
        self._due: tuple[PowerWindow, ...] = ()
        self._now: datetime | None = None
        self._resources: tuple[str, ...] = ()

    # ------------------------------------------------------------------ inspection
    @property
    def windows(self) -> Mapping[str, PowerWindow]:
        """The DR windows getting power reports, by event id (read-only)."""
        return MappingProxyType(self._windows)

    @property
    def busy(self) -> bool:
        """Whether a poll is under way (work asked for and not yet answered)."""
        return self._now is not None

    def phase(self, event_id: str) -> Phase | None:
        """Where event ``event_id`` stands (None: never seen)."""
        record = self._records.get(event_id)
        return None if record is None else record.phase

    # ------------------------------------------------------------------ input
    def handle(self, received: Input) -> list[Action]:
        """Take one input; return the log lines and at most one piece of work (last).

        Raises
        ------
        VenCoreError
            An input out of order: a poll before recovery or during another poll, a result
            that does not answer the work asked for.
        """
        if isinstance(received, Recovered):
            return self._recover(received)
        if isinstance(received, Polled):
            return self._poll(received)
        if isinstance(received, Interrupted):
            return self._interrupt()
        return self._result(received)

    def _move(self, record: _Record, step: Step) -> None:
        after = TRANSITIONS[record.phase].get(step)
        if after is None:
            raise VenCoreError(
                f"event {record.event_id}: step {step.value!r} not allowed in phase "
                f"{record.phase.value!r}"
            )
        record.phase = after

    def _record(self, event_id: str) -> _Record:
        record = self._records.get(event_id)
        if record is None:
            record = self._records[event_id] = _Record(event_id)
        return record

    # ------------------------------------------------------------------ recovery
    def _recover(self, received: Recovered) -> list[Action]:
        if self.recovered or self.busy:
            raise VenCoreError("Recovered: a VEN recovers once, before its first poll")
        self.recovered = True
        reports = received.reports
        answered = list(
            dict.fromkeys(r.event_id for r in reports if r.report_name in profile.ANSWER_REPORTS)
        )
        for event_id in answered:
            self._move(self._record(event_id), Step.RECOVER)
        last_power: dict[str, datetime] = {}
        for r in reports:
            if r.report_name != profile.POWER_REPORT:
                continue
            try:
                stamps = [s.timestamp for s in profile.samples_from_report(r)]
            except ValueError:  # not readable as F5: no evidence of when it was taken
                continue
            for stamp in stamps:
                seen = last_power.get(r.event_id)
                last_power[r.event_id] = stamp if seen is None else max(seen, stamp)
        resumed = 0
        for r in reports:
            if r.report_name != profile.PLAN_REPORT or r.event_id in self._windows:
                continue
            try:
                found = profile.accepted_window(r)
            except ValueError:  # not readable as F3: no window to resume
                continue
            if found is not None and received.now < found[1]:
                start, end, names = found
                last = last_power.get(r.event_id)
                self._windows[r.event_id] = PowerWindow(
                    r.event_id, start, end, names, last, resumed=True
                )
                resumed += 1
        if not answered:
            return []
        return [Log(f"recovered {len(answered)} answered event(s), {resumed} DR window(s) running")]

    # ------------------------------------------------------------------ a poll
    def _poll(self, received: Polled) -> list[Action]:
        if not self.recovered:
            raise VenCoreError("Polled: feed the VEN's own reports (Recovered) first")
        if self.busy:
            raise VenCoreError(
                f"Polled: the last poll still waits for the result of {self._waiting}"
            )
        self._now = received.now
        self._resources = received.resources
        events = sorted(received.events, key=lambda e: (e.created_date_time, e.id))
        dr: list[str] = []
        for event in events:
            record = self._record(event.id)
            if record.phase in (Phase.POSTED, Phase.SKIPPED):
                continue
            record.event = event
            if not profile.is_potential_request(event) and profile.is_dr_event(event):
                dr.append(event.id)
            else:
                self._agenda.append(_Classify(event.id))
        self._agenda.append(_DrEvents(tuple(dr)))
        self._agenda.append(_Power())
        return self._advance([])

    def _advance(self, out: list[Action]) -> list[Action]:
        """Work through the agenda until a piece of work is asked for or the poll is over."""
        while self._agenda:
            item = self._agenda.popleft()
            work = self._start(item, out)
            if work is not None:
                self._waiting, self._waiting_for = work, item
                out.append(work)
                return out
        self._now = None
        return out

    def _start(self, item: _Item, out: list[Action]) -> UnitWork | PostReport | None:
        if isinstance(item, _Classify):
            return self._classify(self._records[item.event_id], out)
        if isinstance(item, _DrEvents):
            self._dr_events(item.event_ids, out)
            return None
        if isinstance(item, _Post):
            record = self._records[item.event_id]
            self._move(record, Step.POST)
            assert record.body is not None  # an answered event holds its report
            return PostReport(record.event_id, record.body)
        if isinstance(item, _Round):
            asks = []
            for event_id in item.event_ids:
                record = self._records[event_id]
                self._move(record, Step.APPLY)
                assert record.request is not None  # queued with its request
                asks.append(DrAsk(event_id, record.request, record.targets))
            return ApplyRequests(tuple(asks), self._clock())
        if isinstance(item, _Power):
            return self._sample_power(out)
        return PostReport(item.event_id, item.body)

    def _clock(self) -> datetime:
        if self._now is None:
            raise VenCoreError("no poll under way")
        return self._now

    def _targets(self, event: Event, *, all_if_untargeted: bool) -> tuple[str, ...]:
        """The VEN's resources ``event`` targets (all when untargeted, if asked), in the
        event's order, each once."""
        if not event.targets:
            return self._resources if all_if_untargeted else ()
        ours = set(self._resources)
        return tuple(t for t in dict.fromkeys(event.targets) if t in ours)

    def _skip(self, record: _Record, line: str, out: list[Action]) -> None:
        self._move(record, Step.SKIP)
        out.append(Log(f"event {record.event_id}: {line}"))

    def _classify(self, record: _Record, out: list[Action]) -> AskPotential | PostReport | None:
        event = record.event
        assert event is not None  # set when polled
        if not profile.is_potential_request(event):
            self._skip(record, "not a drready potential request or DR event, skipped", out)
            return None
        if record.phase is Phase.ANSWERED:  # held since an outage: the same report
            self._agenda.appendleft(_Post(record.event_id))
            return None
        window = profile.event_window(event)
        if window is None:
            self._skip(
                record, "skipped: intervalPeriod must give the window's start and duration", out
            )
            return None
        targets = self._targets(event, all_if_untargeted=True)
        if not targets:
            self._skip(record, self._not_ours(potential=True), out)
            return None
        self._move(record, Step.ASK)
        return AskPotential(record.event_id, window[0], window[1], targets)

    def _not_ours(self, *, potential: bool) -> str:
        """Why an event that targets none of the VEN's resources is skipped."""
        if self.group is not None:
            what = "potential request" if potential else "DR event"
            return f"{what} not for {self.group}"
        if potential:
            return "potential request targets none of our units"
        return "DR event without a target among our units, skipped"

    def _dr_events(self, event_ids: Sequence[str], out: list[Action]) -> None:
        posts: list[_Item] = []
        queued: list[_Record] = []
        for event_id in event_ids:
            record = self._records[event_id]
            event = record.event
            assert event is not None  # set when polled
            if record.phase is Phase.ANSWERED:  # held since an outage: the same report
                posts.append(_Post(event_id))
                continue
            try:
                request = profile.request_from_event(event, issued_at=event.created_date_time)
            except ValueError as err:  # ProfileError and ValidationError included
                self._skip(record, f"skipped: {err}", out)
                continue
            targets = self._targets(event, all_if_untargeted=False)
            if not targets:
                self._skip(record, self._not_ours(potential=False), out)
                continue
            record.request, record.targets = request, targets
            self._move(record, Step.QUEUE)
            queued.append(record)
        self._agenda.extendleft(reversed([*posts, *_rounds(queued)]))

    # ------------------------------------------------------------------ results
    def _result(self, received: Input) -> list[Action]:
        work, item = self._waiting, self._waiting_for
        if work is None or not isinstance(received, _ANSWERS[type(work)]):
            raise VenCoreError(
                f"{type(received).__name__} does not answer "
                + ("anything: no work was asked for" if work is None else repr(work))
            )
        if isinstance(received, PotentialGiven) and (
            not isinstance(work, AskPotential) or received.event_id != work.event_id
        ):
            raise VenCoreError(f"PotentialGiven for {received.event_id} answers {work!r}")
        self._waiting = self._waiting_for = None
        out: list[Action] = []
        if isinstance(received, PotentialGiven):
            self._potential_given(self._records[received.event_id], received, out)
        elif isinstance(received, RequestsAnswered):
            assert isinstance(item, _Round)  # ApplyRequests comes from a round
            self._requests_answered(item.event_ids, received, out)
        elif isinstance(received, WorkFailed):
            ids: tuple[str, ...] = (work.event_id,) if isinstance(work, AskPotential) else ()
            if isinstance(item, _Round):
                ids = item.event_ids
            for event_id in ids:
                self._skip(self._records[event_id], f"skipped: {received.reason}", out)
        elif isinstance(received, PowerSampled):
            self._power_sampled(received, out)
        elif isinstance(received, Posted | PostRefused):
            if isinstance(item, _PowerPost):
                self._power_posted(item, received, out)
            else:
                assert isinstance(work, PostReport)  # the only work Posted answers
                self._posted(self._records[work.event_id], received, out)
        return self._advance(out)

    def _potential_given(
        self, record: _Record, received: PotentialGiven, out: list[Action]
    ) -> None:
        event = record.event
        assert event is not None  # asked from an event
        why = "; ".join(f.reason for f in received.failures)
        if not received.envelopes:
            window = profile.event_window(event)
            still_open = window is not None and self._clock() < window[1]
            if still_open and any(f.transient for f in received.failures):
                self._move(record, Step.NOT_YET)
                out.append(Log(f"event {record.event_id}: not answered yet: {why}"))
            else:
                self._skip(record, f"no unit gave its potential: {why}", out)
            return
        try:
            body = profile.potential_report(event, received.envelopes, self.client_name)
        except ValueError as err:
            self._skip(record, f"skipped: {err}", out)
            return
        record.body = self._named(body)
        record.summary = f" for {len(received.envelopes)} resource(s)" + (
            f"; left out: {why}" if received.failures else ""
        )
        self._move(record, Step.ANSWER)
        self._agenda.appendleft(_Post(record.event_id))

    def _requests_answered(
        self, event_ids: Sequence[str], received: RequestsAnswered, out: list[Action]
    ) -> None:
        missing = [e for e in event_ids if e not in received.answers]
        if missing:
            raise VenCoreError(f"RequestsAnswered has no answers for event(s) {missing}")
        posts: list[_Item] = []
        for event_id in event_ids:
            record = self._records[event_id]
            event, request = record.event, record.request
            assert event is not None and request is not None  # applied from a queued event
            given = received.answers[event_id]
            answers = [u.answer for u in given]
            try:
                body = self._named(profile.plan_report(event, answers, self.client_name))
            except ValueError as err:
                self._skip(record, f"skipped: {err}", out)
                continue
            accepted = sum(a.response.accepted_kwh for a in answers)
            notes = "; ".join(u.note for u in given if u.note)
            record.body = body
            of = "" if request.open_amount else f" of {request.amount_kwh * len(answers):.3f}"
            record.summary = (
                f" for {len(answers)} resource(s), {accepted:.3f}{of} kWh accepted"
                + (" (by start time alone)" if request.open_amount else "")
                + (f"; {notes}" if notes else "")
            )
            names = tuple(
                res.resource_name
                for res, a in zip(body.resources, answers, strict=True)
                if a.response.accepted_kwh > 0
            )
            record.window = (
                PowerWindow(event_id, request.start, request.end, names) if names else None
            )
            self._move(record, Step.ANSWER)
            posts.append(_Post(event_id))
        self._agenda.extendleft(reversed(posts))

    def _posted(self, record: _Record, received: Posted | PostRefused, out: list[Action]) -> None:
        if isinstance(received, PostRefused):
            self._move(record, Step.REFUSE)
            out.append(Log(f"event {record.event_id}: skipped: {received.reason}"))
            return
        self._move(record, Step.DONE)
        assert record.body is not None  # posted from a held report
        kind = record.body.report_name
        out.append(
            Log(f"event {record.event_id}: {kind} report {received.report_id}{record.summary}")
        )
        if record.window is not None:
            self._windows[record.event_id] = record.window
        record.body = None  # posted: nothing more to hold

    # ------------------------------------------------------------------ F5
    def _sample_power(self, out: list[Action]) -> SamplePower | None:
        now = self._clock()
        for window in list(self._windows.values()):
            if now >= window.end:
                del self._windows[window.event_id]
        self._due = tuple(w for w in self._windows.values() if w.due(now, self.power_interval))
        ours = set(self._resources)
        wanted = tuple(
            n for n in dict.fromkeys(n for w in self._due for n in w.resources) if n in ours
        )
        if not wanted:
            return None
        return SamplePower(wanted, now)

    def _power_sampled(self, received: PowerSampled, out: list[Action]) -> None:
        now = self._clock()
        work = self._due
        self._due = ()
        out += [Log(f"unit {n}: no power sample: {why}") for n, why in received.failures.items()]
        posts: list[_Item] = []
        for window in work:
            mine = [
                _stamped(received.samples[n], now)
                for n in window.resources
                if n in received.samples
            ]
            if not mine:
                continue  # nobody answered: try again on the next poll
            try:
                body = self._named(profile.power_report(window.event_id, mine, self.client_name))
            except ValueError as err:
                self._power_failed(window.event_id, str(err), out)
                continue
            posts.append(_PowerPost(window.event_id, body, len(mine)))
        self._agenda.extendleft(reversed(posts))

    def _power_posted(
        self, item: _PowerPost, received: Posted | PostRefused, out: list[Action]
    ) -> None:
        if isinstance(received, PostRefused):
            self._power_failed(item.event_id, received.reason, out)
            return
        now = self._clock()
        window = self._windows.get(item.event_id)
        if window is not None:
            self._windows[item.event_id] = replace(window, last_power=now)
        out.append(
            Log(
                f"event {item.event_id}: power report {received.report_id} at {now.isoformat()} "
                f"for {item.n_resources} resource(s)"
            )
        )

    def _power_failed(self, event_id: str, reason: str, out: list[Action]) -> None:
        out.append(Log(f"event {event_id}: power report failed: {reason}"))
        self._windows.pop(event_id, None)

    # ------------------------------------------------------------------ interruption
    def _interrupt(self) -> list[Action]:
        for record in self._records.values():
            if Step.INTERRUPT in TRANSITIONS[record.phase]:
                self._move(record, Step.INTERRUPT)
        self._agenda.clear()
        self._waiting = self._waiting_for = None
        self._due = ()
        self._now = None
        return []

    def _named(self, report: ReportCreate) -> ReportCreate:
        return report if self.group is None else profile.group_named(report, self.group)


def _rounds(records: Iterable[_Record]) -> list[_Item]:
    """Rounds of events that share no resource, greedily in the given order."""
    rest = list(records)
    rounds: list[_Item] = []
    while rest:
        taken: list[_Record] = []
        later: list[_Record] = []
        busy: set[str] = set()
        for record in rest:
            if busy.isdisjoint(record.targets):
                taken.append(record)
                busy.update(record.targets)
            else:
                later.append(record)
        rounds.append(_Round(tuple(r.event_id for r in taken)))
        rest = later
    return rounds


def _stamped(sample: PowerSample, now: datetime) -> PowerSample:
    """``sample`` stamped with ``now``: when the VEN sampled, on the events' clock (a link
    stamps wall time; the servicer's events may run on simulated time)."""
    return sample if sample.timestamp == now else sample.model_copy(update={"timestamp": now})
