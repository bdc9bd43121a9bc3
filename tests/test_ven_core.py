"""The VEN core without a server: every rule of the drready VEN, input by input (C1, D6, F1–F6).

:class:`~drready.openadr.ven_core.VenCore` is fed what a shell would feed it (its own reports at
recovery, the events of a poll, the results of the work it asked for) and each answer is
checked against the exact actions expected, written out by hand — as h11's tests do for its
connection state machine. Report bodies are built with the profile functions the core must use,
so a difference in a body is a difference in what the VEN would post. No VTN, no fleet, no
ECHONET Lite: the whole file runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drready.domain import (
    DEFAULT_TZ,
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    PowerSample,
    PowerSource,
    SlotGrid,
)
from drready.openadr import profile
from drready.openadr.models import (
    Event,
    EventCreate,
    Interval,
    IntervalPeriod,
    Report,
    ReportCreate,
    ValuesMap,
)
from drready.openadr.ven_core import (
    TRANSITIONS,
    Action,
    ApplyRequests,
    AskPotential,
    DrAsk,
    Input,
    Interrupted,
    Log,
    Phase,
    Polled,
    Posted,
    PostRefused,
    PostReport,
    PotentialGiven,
    PowerSampled,
    PowerWindow,
    Recovered,
    RequestsAnswered,
    SamplePower,
    Step,
    UnitAnswer,
    UnitFailure,
    VenCore,
    VenCoreError,
    WorkFailed,
)

TZ = ZoneInfo(DEFAULT_TZ)
T0 = datetime(2026, 5, 12, 8, 0, tzinfo=TZ)  # the first poll, two hours before the window
START = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
END = datetime(2026, 5, 12, 12, 0, tzinfo=TZ)
MINUTE = timedelta(minutes=1)
CLIENT = "ven-1"
FLEET = profile.group_resource("000005")
A, B, C = "000005:HW0000001", "000005:HW0000002", "000005:HW0000003"
OTHER = "000005:HW0000099"  # a resource of another VEN
UNITS = (A, B, C)


# --------------------------------------------------------------------------- fixtures


def _event(create: EventCreate, event_id: str, created: datetime) -> Event:
    return Event.from_create(create, object_id=event_id, now=created)


def potential_event(
    event_id: str,
    targets: Sequence[str] | None = None,
    *,
    end: datetime = END,
    created: datetime = T0,
) -> Event:
    return _event(profile.potential_request("prog-1", START, end, targets), event_id, created)


def dr_request(request_id: str, amount_kwh: float) -> DrRequest:
    return DrRequest(
        request_id=request_id,
        direction=Direction.UP,
        start=START,
        end=END,
        amount_kwh=amount_kwh,
        issuer="dr-servicer",
        issued_at=T0,
    )


def dr_event(
    event_id: str, request_id: str, amount_kwh: float, targets: Sequence[str], created: datetime
) -> Event:
    create = profile.dr_event("prog-1", dr_request(request_id, amount_kwh), targets)
    return _event(create, event_id, created)


def envelope(name: str) -> FlexibilityEnvelope:
    """4 slots at baseline 1 kW, 0–3 kW: least 0, baseline 2, most 6 kWh: up 4, down 2."""
    slots = tuple(
        EnvelopeSlot(
            start=START + k * timedelta(minutes=30),
            baseline_kw=1.0,
            min_kw=0.0,
            max_kw=3.0,
            cum_min_kwh=0.0,
            cum_max_kwh=1.5 * (k + 1),
        )
        for k in range(4)
    )
    return FlexibilityEnvelope(
        device_id=DeviceId.parse(name) if name != FLEET else profile.GROUP_DEVICE_ID,
        computed_at=T0,
        window_start=START,
        window_end=END,
        confidence=0.95,
        up_kwh=4.0,
        down_kwh=2.0,
        slots=slots,
    )


def device(name: str) -> DeviceId:
    return profile.GROUP_DEVICE_ID if name == FLEET else DeviceId.parse(name)


def answer(
    request: DrRequest, name: str, accepted_kwh: float, note: str | None = None
) -> UnitAnswer:
    grid = SlotGrid(start=START, n_slots=4)
    plan = HeatingPlan(
        device_id=device(name),
        created_at=T0,
        grid=grid,
        slots=tuple(PlanSlot.from_power(s, 1.0, 5.0) for s in grid.starts()),
        honours=(request.request_id,) if accepted_kwh > 0 else (),
    )
    reason = None if accepted_kwh >= request.amount_kwh else "not enough potential in the window"
    response = DrResponse.from_amounts(request, device(name), accepted_kwh, reason)
    return UnitAnswer(profile.PlanAnswer(response, plan), note)


def sample(name: str, at: datetime, power_w: float = 1500.0) -> PowerSample:
    return PowerSample(
        device_id=device(name),
        timestamp=at,
        power_w=power_w,
        cumulative_energy_kwh=12.5,
        source=PowerSource.MEASURED,
    )


def potential_body(event: Event, names: Sequence[str]) -> ReportCreate:
    return profile.potential_report(event, [envelope(n) for n in names], CLIENT)


def plan_body(event: Event, answers: Sequence[UnitAnswer]) -> ReportCreate:
    return profile.plan_report(event, [a.answer for a in answers], CLIENT)


def power_body(
    event_id: str, names: Sequence[str], at: datetime, power_w: float = 1500.0
) -> ReportCreate:
    return profile.power_report(event_id, [sample(n, at, power_w) for n in names], CLIENT)


def stored(report: ReportCreate, report_id: str, at: datetime = T0) -> Report:
    """A report as the VTN keeps it (what a restarted VEN reads back)."""
    return Report.from_create(report, object_id=report_id, now=at, client_id=CLIENT)


def core(*, group: str | None = None) -> VenCore:
    """A core after a first start: recovery found nothing."""
    c = VenCore(CLIENT, power_interval=MINUTE, group=group)
    assert c.handle(Recovered((), T0)) == []
    return c


def play(c: VenCore, steps: Sequence[tuple[Input, list[Action]]]) -> None:
    """Feed each input; the core must answer exactly the actions listed with it."""
    for k, (received, expected) in enumerate(steps):
        got = c.handle(received)
        assert got == expected, f"step {k}: {received!r}"


# --------------------------------------------------------------------------- F1


def test_a_potential_request_is_answered_once() -> None:
    c = core()
    ev = potential_event("ev-1")  # untargeted: every resource of the VEN
    envelopes = (envelope(A), envelope(B), envelope(C))
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [AskPotential("ev-1", START, END, UNITS)]),
            (PotentialGiven("ev-1", envelopes), [PostReport("ev-1", potential_body(ev, UNITS))]),
            (Posted("rp-1"), [Log("event ev-1: potential report rp-1 for 3 resource(s)")]),
            (Polled(T0 + MINUTE, (ev,), UNITS), []),
        ],
    )
    assert c.phase("ev-1") is Phase.POSTED and not c.busy


def test_a_targeted_potential_request_asks_its_units_in_its_order_once_each() -> None:
    c = core()
    ev = potential_event("ev-1", [C, OTHER, A, C])
    play(c, [(Polled(T0, (ev,), UNITS), [AskPotential("ev-1", START, END, (C, A))])])


def test_units_that_gave_no_potential_are_left_out_and_said() -> None:
    c = core()
    ev = potential_event("ev-1", [A, B])
    failure = UnitFailure("127.0.0.2 did not answer over ECHONET Lite (timeout)", True)
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [AskPotential("ev-1", START, END, (A, B))]),
            (
                PotentialGiven("ev-1", (envelope(A),), (failure,)),
                [PostReport("ev-1", potential_body(ev, [A]))],
            ),
            (
                Posted("rp-1"),
                [
                    Log(
                        "event ev-1: potential report rp-1 for 1 resource(s); "
                        "left out: 127.0.0.2 did not answer over ECHONET Lite (timeout)"
                    )
                ],
            ),
        ],
    )


def test_no_unit_answered_not_yet_while_the_window_is_open_then_given_up() -> None:
    c = core()
    ev = potential_event("ev-1")
    why = "unit A did not answer"
    silent = UnitFailure(why, True)
    refused = UnitFailure("unit B: window outside its horizon", False)
    play(
        c,
        [
            (Polled(T0, (ev,), (A,)), [AskPotential("ev-1", START, END, (A,))]),
            (
                PotentialGiven("ev-1", (), (silent,)),
                [Log("event ev-1: not answered yet: unit A did not answer")],
            ),
        ],
    )
    assert c.phase("ev-1") is Phase.NEW
    play(
        c,
        [  # asked again on the next poll; after the window's end it is given up
            (Polled(END - MINUTE, (ev,), (A,)), [AskPotential("ev-1", START, END, (A,))]),
            (PotentialGiven("ev-1", (), (silent,)), [Log("event ev-1: not answered yet: " + why)]),
            (Polled(END, (ev,), (A,)), [AskPotential("ev-1", START, END, (A,))]),
            (
                PotentialGiven("ev-1", (), (silent,)),
                [Log("event ev-1: no unit gave its potential: " + why)],
            ),
            (Polled(END + MINUTE, (ev,), (A,)), []),
        ],
    )
    # a refusal is final at once, whatever the time
    c = core()
    play(
        c,
        [
            (Polled(T0, (ev,), (B,)), [AskPotential("ev-1", START, END, (B,))]),
            (
                PotentialGiven("ev-1", (), (refused,)),
                [Log("event ev-1: no unit gave its potential: unit B: window outside its horizon")],
            ),
        ],
    )
    assert c.phase("ev-1") is Phase.SKIPPED


def test_a_potential_the_planner_cannot_give_skips_the_event_with_the_reason() -> None:
    c = core()
    ev = potential_event("ev-1")
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [AskPotential("ev-1", START, END, UNITS)]),
            (
                WorkFailed("window [..) is not inside the grid"),
                [Log("event ev-1: skipped: window [..) is not inside the grid")],
            ),
            (Polled(T0 + MINUTE, (ev,), UNITS), []),
        ],
    )


# --------------------------------------------------------------------------- F2–F4


def test_a_dr_event_is_answered_once_with_the_servicers_request_id() -> None:
    c = core()
    ev = dr_event("ev-2", "drready-assignment-42", 1.6, [A], T0)
    request = profile.request_from_event(ev)
    # converted once, at the boundary: 0.8 kW over 2 h is 1.6 kWh, the event name is the id
    assert request.request_id == "drready-assignment-42" and request.amount_kwh == 1.6
    given = (answer(request, A, 1.6),)
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [ApplyRequests((DrAsk("ev-2", request, (A,)),), T0)]),
            (RequestsAnswered({"ev-2": given}), [PostReport("ev-2", plan_body(ev, given))]),
            (
                Posted("rp-2"),
                [
                    Log(
                        "event ev-2: plan report rp-2 for 1 resource(s), "
                        "1.600 of 1.600 kWh accepted"
                    )
                ],
            ),
            (Polled(T0 + MINUTE, (ev,), UNITS), []),
        ],
    )
    assert c.windows == {"ev-2": PowerWindow("ev-2", START, END, (A,))}
    assert given[0].answer.plan.honours == ("drready-assignment-42",)


def test_a_dr_answer_with_notes_and_a_rejected_unit_gets_power_only_where_accepted() -> None:
    c = core()
    ev = dr_event("ev-2", "r-2", 1.0, [A, B], T0)
    request = profile.request_from_event(ev)
    given = (
        answer(request, A, 1.0),
        answer(request, B, 0.0, "127.0.0.2 did not answer over ECHONET Lite"),
    )
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [ApplyRequests((DrAsk("ev-2", request, (A, B)),), T0)]),
            (RequestsAnswered({"ev-2": given}), [PostReport("ev-2", plan_body(ev, given))]),
            (
                Posted("rp-2"),
                [
                    Log(
                        "event ev-2: plan report rp-2 for 2 resource(s), 1.000 of 2.000 kWh "
                        "accepted; 127.0.0.2 did not answer over ECHONET Lite"
                    )
                ],
            ),
        ],
    )
    assert c.windows["ev-2"].resources == (A,)


def test_overlapping_dr_events_go_in_rounds_of_disjoint_units_posting_before_the_next() -> None:
    c = core()
    events = [
        dr_event("e1", "r1", 1.0, [A], T0),
        dr_event("e2", "r2", 1.0, [A, B], T0 + MINUTE),
        dr_event("e3", "r3", 1.0, [B], T0 + 2 * MINUTE),
        dr_event("e4", "r4", 1.0, [C], T0 + 3 * MINUTE),
    ]
    e1, e2, e3, e4 = events
    r = {e.id: profile.request_from_event(e) for e in events}
    g = {
        "e1": (answer(r["e1"], A, 1.0),),
        "e2": (answer(r["e2"], A, 0.5), answer(r["e2"], B, 0.0)),
        "e3": (answer(r["e3"], B, 1.0),),
        "e4": (answer(r["e4"], C, 0.0),),
    }
    round_1 = ApplyRequests(
        (DrAsk("e1", r["e1"], (A,)), DrAsk("e3", r["e3"], (B,)), DrAsk("e4", r["e4"], (C,))), T0
    )
    play(
        c,
        [  # e2 shares A with e1 and B with e3: it waits for the second round
            (Polled(T0, tuple(reversed(events)), UNITS), [round_1]),
            (
                RequestsAnswered({k: g[k] for k in ("e1", "e3", "e4")}),
                [PostReport("e1", plan_body(e1, g["e1"]))],
            ),
            (
                Posted("rp-1"),
                [
                    Log(
                        "event e1: plan report rp-1 for 1 resource(s), 1.000 of 1.000 kWh accepted"
                    ),
                    PostReport("e3", plan_body(e3, g["e3"])),
                ],
            ),
            (
                Posted("rp-3"),
                [
                    Log(
                        "event e3: plan report rp-3 for 1 resource(s), 1.000 of 1.000 kWh accepted"
                    ),
                    PostReport("e4", plan_body(e4, g["e4"])),
                ],
            ),
            (
                Posted("rp-4"),
                [
                    Log(
                        "event e4: plan report rp-4 for 1 resource(s), 0.000 of 1.000 kWh accepted"
                    ),
                    ApplyRequests((DrAsk("e2", r["e2"], (A, B)),), T0),
                ],
            ),
            (RequestsAnswered({"e2": g["e2"]}), [PostReport("e2", plan_body(e2, g["e2"]))]),
            (
                Posted("rp-2"),
                [Log("event e2: plan report rp-2 for 2 resource(s), 0.500 of 2.000 kWh accepted")],
            ),
        ],
    )
    assert set(c.windows) == {"e1", "e2", "e3"}  # e4 accepted nothing: no power reports


def test_a_round_the_planner_cannot_plan_skips_its_events_only() -> None:
    c = core()
    e1, e2 = dr_event("e1", "r1", 1.0, [A], T0), dr_event("e2", "r2", 1.0, [A], T0 + MINUTE)
    r1, r2 = profile.request_from_event(e1), profile.request_from_event(e2)
    given = (answer(r2, A, 1.0),)
    play(
        c,
        [
            (Polled(T0, (e1, e2), UNITS), [ApplyRequests((DrAsk("e1", r1, (A,)),), T0)]),
            (
                WorkFailed("window outside the grid"),
                [
                    Log("event e1: skipped: window outside the grid"),
                    ApplyRequests((DrAsk("e2", r2, (A,)),), T0),
                ],
            ),
            (RequestsAnswered({"e2": given}), [PostReport("e2", plan_body(e2, given))]),
        ],
    )
    assert c.phase("e1") is Phase.SKIPPED


# --------------------------------------------------------------------------- once only


def test_a_vtn_outage_mid_post_reposts_the_same_answers_without_asking_the_units_again() -> None:
    c = core()
    e1, e2 = dr_event("e1", "r1", 1.0, [A], T0), dr_event("e2", "r2", 1.0, [B], T0)
    pot = potential_event("p1", created=T0 - MINUTE)
    r1, r2 = profile.request_from_event(e1), profile.request_from_event(e2)
    g1, g2 = (answer(r1, A, 1.0),), (answer(r2, B, 0.4),)
    polled = Polled(T0, (e1, e2, pot), UNITS)
    play(
        c,
        [
            (polled, [AskPotential("p1", START, END, UNITS)]),
            (
                PotentialGiven("p1", (envelope(A), envelope(B), envelope(C))),
                [PostReport("p1", potential_body(pot, UNITS))],
            ),
            (Interrupted("POST /reports: VTN answered 503"), []),  # the VTN goes away
        ],
    )
    assert c.phase("p1") is Phase.ANSWERED and c.phase("e1") is Phase.NEW
    play(
        c,
        [  # the held potential report goes out as it was; the DR events are asked once
            (
                Polled(T0 + MINUTE, (e1, e2, pot), UNITS),
                [PostReport("p1", potential_body(pot, UNITS))],
            ),
            (
                Posted("rp-p"),
                [
                    Log("event p1: potential report rp-p for 3 resource(s)"),
                    ApplyRequests((DrAsk("e1", r1, (A,)), DrAsk("e2", r2, (B,))), T0 + MINUTE),
                ],
            ),
            (RequestsAnswered({"e1": g1, "e2": g2}), [PostReport("e1", plan_body(e1, g1))]),
            (Interrupted("POST /reports: connection refused"), []),
        ],
    )
    assert (c.phase("e1"), c.phase("e2")) == (Phase.ANSWERED, Phase.ANSWERED)
    assert c.windows == {}  # not accepted on the VTN yet: no power reports
    play(
        c,
        [  # both plan reports re-posted; no ApplyRequests: the units are not asked twice
            (Polled(T0 + 2 * MINUTE, (e1, e2, pot), UNITS), [PostReport("e1", plan_body(e1, g1))]),
            (
                Posted("rp-1"),
                [
                    Log(
                        "event e1: plan report rp-1 for 1 resource(s), 1.000 of 1.000 kWh accepted"
                    ),
                    PostReport("e2", plan_body(e2, g2)),
                ],
            ),
            (
                Posted("rp-2"),
                [Log("event e2: plan report rp-2 for 1 resource(s), 0.400 of 1.000 kWh accepted")],
            ),
            (Polled(T0 + 3 * MINUTE, (e1, e2, pot), UNITS), []),
        ],
    )
    assert set(c.windows) == {"e1", "e2"}


def test_an_outage_before_the_units_answered_asks_them_on_the_next_poll() -> None:
    c = core()
    e1 = dr_event("e1", "r1", 1.0, [A], T0)
    r1 = profile.request_from_event(e1)
    apply = ApplyRequests((DrAsk("e1", r1, (A,)),), T0)
    play(c, [(Polled(T0, (e1,), UNITS), [apply]), (Interrupted("cancelled"), [])])
    assert c.phase("e1") is Phase.NEW
    play(c, [(Polled(T0, (e1,), UNITS), [apply])])


def test_a_held_answer_of_an_event_deleted_meanwhile_is_never_posted() -> None:
    c = core()
    e1 = dr_event("e1", "r1", 1.0, [A], T0)
    r1 = profile.request_from_event(e1)
    g1 = (answer(r1, A, 1.0),)
    play(
        c,
        [
            (Polled(T0, (e1,), UNITS), [ApplyRequests((DrAsk("e1", r1, (A,)),), T0)]),
            (RequestsAnswered({"e1": g1}), [PostReport("e1", plan_body(e1, g1))]),
            (Interrupted("503"), []),
            (Polled(T0 + MINUTE, (), UNITS), []),  # BL deleted the event (D3 timeout)
        ],
    )
    assert c.phase("e1") is Phase.ANSWERED


def test_a_report_the_vtn_refuses_skips_its_event_for_good() -> None:
    c = core()
    ev = potential_event("ev-1", [A])
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [AskPotential("ev-1", START, END, (A,))]),
            (PotentialGiven("ev-1", (envelope(A),)), [PostReport("ev-1", potential_body(ev, [A]))]),
            (
                PostRefused("POST /reports: VTN answered 400 Bad Request: bad report"),
                [
                    Log(
                        "event ev-1: skipped: "
                        "POST /reports: VTN answered 400 Bad Request: bad report"
                    )
                ],
            ),
            (Polled(T0 + MINUTE, (ev,), UNITS), []),
        ],
    )


# --------------------------------------------------------------------------- skipped events


def _no_period(create: EventCreate) -> EventCreate:
    return create.model_copy(update={"interval_period": None})


SIMPLE = EventCreate(
    program_id="prog-1",
    event_name="simple",
    interval_period=IntervalPeriod(start=START, duration="PT1H"),
    intervals=(Interval(id=0, payloads=(ValuesMap(type="SIMPLE", values=(1,)),)),),
)
SKIPPED_CASES = [
    # (event, the line logged)
    (SIMPLE, "not a drready potential request or DR event, skipped"),
    (
        profile.potential_request("prog-1", START, END, [OTHER]),
        "potential request targets none of our units",
    ),
    (
        _no_period(profile.potential_request("prog-1", START, END)),
        "skipped: intervalPeriod must give the window's start and duration",
    ),
    (
        profile.dr_event("prog-1", dr_request("r", 1.0), [OTHER]),
        "DR event without a target among our units, skipped",
    ),
    (
        profile.dr_event("prog-1", dr_request("r", 1.0), []),
        "DR event without a target among our units, skipped",
    ),
    (
        _no_period(profile.dr_event("prog-1", dr_request("r", 1.0), [A])),
        "skipped: event.intervalPeriod must give the window's start and duration",
    ),
]


@pytest.mark.parametrize(("create", "line"), SKIPPED_CASES)
def test_foreign_malformed_and_other_vens_events_are_skipped_once_with_the_reason(
    create: EventCreate, line: str
) -> None:
    c = core()
    ev = _event(create, "ev-x", T0)
    play(
        c,
        [
            (Polled(T0, (ev,), UNITS), [Log(f"event ev-x: {line}")]),
            (Polled(T0 + MINUTE, (ev,), UNITS), []),
        ],
    )
    assert c.phase("ev-x") is Phase.SKIPPED


def test_potential_requests_and_skips_come_in_creation_order_then_the_dr_rounds() -> None:
    c = core()
    d = dr_event("d", "r", 1.0, [A], T0)
    s = _event(SIMPLE, "s", T0 + MINUTE)
    p = potential_event("p", [B], created=T0 + 2 * MINUTE)
    r = profile.request_from_event(d)
    play(
        c,
        [
            (
                Polled(T0, (p, s, d), UNITS),
                [
                    Log("event s: not a drready potential request or DR event, skipped"),
                    AskPotential("p", START, END, (B,)),
                ],
            ),
            (PotentialGiven("p", (envelope(B),)), [PostReport("p", potential_body(p, [B]))]),
            (
                Posted("rp-p"),
                [
                    Log("event p: potential report rp-p for 1 resource(s)"),
                    ApplyRequests((DrAsk("d", r, (A,)),), T0),
                ],
            ),
        ],
    )


# --------------------------------------------------------------------------- F5


def _answered(c: VenCore, ev: Event, names: Sequence[str], at: datetime = T0) -> None:
    """Let ``c`` answer DR event ``ev``, every unit accepting in full."""
    request = profile.request_from_event(ev)
    given = tuple(answer(request, n, request.amount_kwh) for n in names)
    c.handle(Polled(at, (ev,), UNITS))
    c.handle(RequestsAnswered({ev.id: given}))
    assert c.handle(Posted(f"rp-{ev.id}"))[0] == Log(
        f"event {ev.id}: plan report rp-{ev.id} for {len(names)} resource(s), "
        f"{len(names):.3f} of {len(names):.3f} kWh accepted"
    )


def test_power_reports_are_paced_by_the_interval_and_stop_at_the_window_end() -> None:
    c = core()
    ev = dr_event("ev-2", "r", 1.0, [A, B], T0)
    _answered(c, ev, [A, B])
    t1, t2, t3 = START, START + 30 * timedelta(seconds=1), START + MINUTE
    late = sample(A, t1 - timedelta(seconds=7))  # a link stamps its own clock: restamped
    play(
        c,
        [
            (Polled(T0 + MINUTE, (ev,), UNITS), []),  # before the window: nothing due
            (Polled(t1, (ev,), UNITS), [SamplePower((A, B), t1)]),
            (
                PowerSampled({A: late, B: sample(B, t1)}),
                [PostReport("ev-2", power_body("ev-2", [A, B], t1))],
            ),
            (
                Posted("pw-1"),
                [Log(f"event ev-2: power report pw-1 at {t1.isoformat()} for 2 resource(s)")],
            ),
            (Polled(t2, (ev,), UNITS), []),  # 30 s later: not yet
            (Polled(t3, (ev,), UNITS), [SamplePower((A, B), t3)]),
            (
                PowerSampled({B: sample(B, t3)}, {A: "127.0.0.1 did not answer"}),
                [
                    Log("unit 000005:HW0000001: no power sample: 127.0.0.1 did not answer"),
                    PostReport("ev-2", power_body("ev-2", [B], t3)),
                ],
            ),
            (
                Posted("pw-2"),
                [Log(f"event ev-2: power report pw-2 at {t3.isoformat()} for 1 resource(s)")],
            ),
            (Polled(END - MINUTE, (ev,), UNITS), [SamplePower((A, B), END - MINUTE)]),
            (
                PowerSampled({}, {A: "silent", B: "silent"}),  # nobody: tried on the next poll
                [
                    Log("unit 000005:HW0000001: no power sample: silent"),
                    Log("unit 000005:HW0000002: no power sample: silent"),
                ],
            ),
            (Polled(END, (ev,), UNITS), []),  # the window is over
        ],
    )
    assert c.windows == {}


def test_one_sample_serves_every_window_due_and_a_refused_power_report_ends_its_window() -> None:
    c = core()
    e1, e2 = dr_event("e1", "r1", 1.0, [A], T0), dr_event("e2", "r2", 1.0, [A, B], T0)
    _answered(c, e1, [A])
    _answered(c, e2, [A, B])
    play(
        c,
        [
            (Polled(START, (e1, e2), UNITS), [SamplePower((A, B), START)]),
            (
                PowerSampled({A: sample(A, START), B: sample(B, START)}),
                [PostReport("e1", power_body("e1", [A], START))],
            ),
            (
                PostRefused("POST /reports: VTN answered 404 Not Found"),
                [
                    Log("event e1: power report failed: POST /reports: VTN answered 404 Not Found"),
                    PostReport("e2", power_body("e2", [A, B], START)),
                ],
            ),
            (
                Posted("pw-2"),
                [Log(f"event e2: power report pw-2 at {START.isoformat()} for 2 resource(s)")],
            ),
        ],
    )
    assert list(c.windows) == ["e2"]


def test_a_power_post_lost_to_an_outage_is_due_again_on_the_next_poll() -> None:
    c = core()
    ev = dr_event("ev-2", "r", 1.0, [A], T0)
    _answered(c, ev, [A])
    later = START + timedelta(seconds=10)
    play(
        c,
        [
            (Polled(START, (ev,), UNITS), [SamplePower((A,), START)]),
            (
                PowerSampled({A: sample(A, START)}),
                [PostReport("ev-2", power_body("ev-2", [A], START))],
            ),
            (Interrupted("503"), []),
            (Polled(later, (ev,), UNITS), [SamplePower((A,), later)]),
        ],
    )


# --------------------------------------------------------------------------- restart


def test_restart_recovers_answered_events_and_resumes_running_windows_paced_from_the_last() -> None:
    pot = potential_event("p1")
    ev = dr_event("e2", "r2", 1.0, [A, B], T0)
    ended = dr_event("e3", "r3", 1.0, [C], T0)
    request = profile.request_from_event(ev)
    given = (answer(request, A, 1.0), answer(request, B, 0.0))
    last = START + 5 * MINUTE
    ended_plan = plan_body(ended, (answer(profile.request_from_event(ended), C, 1.0),))
    reports = (
        stored(potential_body(pot, UNITS), "rp-1"),
        stored(plan_body(ev, given), "rp-2"),
        stored(power_body("e2", [A], START), "pw-1", START),
        stored(power_body("e2", [A], last), "pw-2", last),
        stored(ended_plan.model_copy(update={"event_id": "e3"}), "rp-3"),
    )
    c = VenCore(CLIENT, power_interval=MINUTE)
    now = last + timedelta(seconds=30)
    assert c.handle(Recovered(reports, now)) == [
        Log("recovered 3 answered event(s), 2 DR window(s) running")
    ]
    # e3's window (10:00-12:00) still runs too; B accepted nothing in e2: no power for B
    assert c.windows["e2"] == PowerWindow("e2", START, END, (A,), last_power=last, resumed=True)
    assert c.windows["e3"] == PowerWindow("e3", START, END, (C,), last_power=None, resumed=True)
    events = (pot, ev, ended)
    play(
        c,
        [
            (Polled(now, events, UNITS), [SamplePower((C,), now)]),  # e2 is paced from 10:05
            (PowerSampled({C: sample(C, now)}), [PostReport("e3", power_body("e3", [C], now))]),
            (
                Posted("pw-3"),
                [Log(f"event e3: power report pw-3 at {now.isoformat()} for 1 resource(s)")],
            ),
            (Polled(last + MINUTE, events, UNITS), [SamplePower((A,), last + MINUTE)]),
        ],
    )
    assert {e: c.phase(e) for e in ("p1", "e2", "e3")} == dict.fromkeys(
        ("p1", "e2", "e3"), Phase.POSTED
    )
    # after the window: nothing runs any more
    c = VenCore(CLIENT, power_interval=MINUTE)
    assert c.handle(Recovered(reports, END)) == [
        Log("recovered 3 answered event(s), 0 DR window(s) running")
    ]


# --------------------------------------------------------------------------- group mode


def test_group_mode_answers_for_the_fleet_resource() -> None:
    fleet = FLEET
    c = core(group=FLEET)
    pot = potential_event("p1", created=T0 - MINUTE)
    unit_pot = potential_event("p2", [A])
    ev = dr_event("e1", "g1", 10.0, [fleet], T0 + MINUTE)
    unit_ev = dr_event("e2", "u1", 1.0, [A], T0 + MINUTE)
    request = profile.request_from_event(ev)
    given = (answer(request, fleet, 6.0),)
    group_env = envelope(fleet)
    pot_body = profile.group_named(profile.potential_report(pot, [group_env], CLIENT), FLEET)
    plan = profile.group_named(plan_body(ev, given), FLEET)
    assert [r.resource_name for r in pot_body.resources] == [fleet]
    assert [r.resource_name for r in plan.resources] == [fleet]
    play(
        c,
        [
            (
                Polled(T0, (pot, unit_pot, ev, unit_ev), (fleet,)),
                [AskPotential("p1", START, END, (fleet,))],
            ),
            (PotentialGiven("p1", (group_env,)), [PostReport("p1", pot_body)]),
            (
                Posted("rp-1"),
                [
                    Log("event p1: potential report rp-1 for 1 resource(s)"),
                    Log(f"event p2: potential request not for {FLEET}"),
                    Log(f"event e2: DR event not for {FLEET}"),
                    ApplyRequests((DrAsk("e1", request, (fleet,)),), T0),
                ],
            ),
            (RequestsAnswered({"e1": given}), [PostReport("e1", plan)]),
            (
                Posted("rp-2"),
                [Log("event e1: plan report rp-2 for 1 resource(s), 6.000 of 10.000 kWh accepted")],
            ),
            (Polled(START, (), (fleet,)), [SamplePower((fleet,), START)]),
            (
                PowerSampled({fleet: sample(fleet, START, 45_000.0)}),
                [
                    PostReport(
                        "e1", profile.group_named(power_body("e1", [fleet], START, 45_000.0), FLEET)
                    )
                ],
            ),
        ],
    )
    assert c.windows["e1"].resources == (fleet,)


# --------------------------------------------------------------------------- misuse


def test_inputs_out_of_order_are_the_shells_bug() -> None:
    fresh = VenCore(CLIENT, power_interval=MINUTE)
    with pytest.raises(VenCoreError, match="Recovered"):
        fresh.handle(Polled(T0, (), UNITS))
    c = core()
    with pytest.raises(VenCoreError, match="once"):
        c.handle(Recovered((), T0))
    with pytest.raises(VenCoreError, match="no work was asked for"):
        c.handle(Posted("rp-1"))
    ev = potential_event("ev-1")
    c.handle(Polled(T0, (ev,), UNITS))
    with pytest.raises(VenCoreError, match="does not answer"):
        c.handle(Posted("rp-1"))
    with pytest.raises(VenCoreError, match="PotentialGiven for ev-9"):
        c.handle(PotentialGiven("ev-9", ()))
    with pytest.raises(VenCoreError, match="still waits"):
        c.handle(Polled(T0, (ev,), UNITS))
    with pytest.raises(ValueError, match="power_interval"):
        VenCore(CLIENT, power_interval=timedelta(0))


def test_the_lifecycle_table() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert TRANSITIONS[Phase.POSTED] == {} and TRANSITIONS[Phase.SKIPPED] == {}
    # an interruption never loses an answer and never leaves work in flight
    assert TRANSITIONS[Phase.POSTING][Step.INTERRUPT] is Phase.ANSWERED
    assert TRANSITIONS[Phase.ANSWERED][Step.INTERRUPT] is Phase.ANSWERED
    for phase in (Phase.ASKING, Phase.QUEUED, Phase.APPLYING):
        assert TRANSITIONS[phase][Step.INTERRUPT] is Phase.NEW
    # every phase but the final ones can be reached from NEW
    reached = {Phase.NEW}
    while True:
        more = {after for p in reached for after in TRANSITIONS[p].values()} - reached
        if not more:
            break
        reached |= more
    assert reached == set(Phase)
