"""Trust no peer: the servicer's BL loop under a hostile VEN (S1; issue 12 item 2).

A fake BL client plays the VTN: an honest maker cloud answers as the profile says; a hostile
VEN registers resources and posts well-formed-but-hostile reports (another VEN's resource,
`junk`, `bad name`, an interval without BASELINE, NaN/huge values, a report on another VEN's
event). The hypothesis test checks that none of it changes the honest VEN's stored data or
stops ``sync_resources``, ``collect_potential``, ``follow_up`` or ``collect_power``; every bit
of it is in the quarantine with a reason.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drready.cloud.fleet import MakerFleet
from drready.domain import DEFAULT_TZ, FlexibilityEnvelope, PowerSample, PowerSource, ResponseStatus
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import (
    Event,
    EventCreate,
    Interval,
    IntervalPeriod,
    Program,
    Report,
    ReportCreate,
    ReportResource,
    Resource,
    ValuesMap,
    Ven,
    VenResourceCreate,
    VenVenCreate,
)
from drready.servicer.core.dispatch import EnergyTarget
from drready.servicer.metrics import ServicerMetrics
from drready.servicer.service import Servicer
from drready.servicer.storage.db import QuarantineReason
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.store import ServicerStore

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 14, 8, 0, tzinfo=TZ)
W_START = datetime(2026, 5, 14, 10, 0, tzinfo=TZ)
W_END = datetime(2026, 5, 14, 12, 0, tzinfo=TZ)
HONEST, EVIL = "maker-cloud", "evil"


@cache
def _fleet() -> tuple[list[str], list[FlexibilityEnvelope]]:
    fleet = MakerFleet.random(2, NOW.date(), seed=3)
    return [str(d) for d in fleet.device_ids], fleet.envelopes(W_START, W_END)


class FakeBl:
    """The BL client's surface the servicer uses, over in-memory VTN objects."""

    def __init__(self) -> None:
        self.vens_: list[Ven] = []
        self.resources: list[Resource] = []
        self.events: dict[str, Event] = {}
        self.reports_: list[Report] = []
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def add_ven(self, client_id: str) -> str:
        ven = Ven.from_create(
            VenVenCreate(ven_name=client_id), object_id=self._id("ven"), now=NOW,
            client_id=client_id,
        )  # fmt: skip
        self.vens_.append(ven)
        return ven.id

    def add_resource(self, client_id: str, ven_id: str, name: str) -> None:
        create = VenResourceCreate.model_construct(resource_name=name, ven_id=ven_id)
        res = Resource.from_create(create, object_id=self._id("res"), now=NOW, client_id=client_id)
        self.resources.append(res)

    def post(self, client_id: str, create: ReportCreate) -> None:
        self.reports_.append(
            Report.from_create(create, object_id=self._id("rep"), now=NOW, client_id=client_id)
        )

    async def ensure_program(self) -> Program:
        return Program.from_create(profile.program(), object_id="prog", now=NOW)

    async def vens(self) -> list[Ven]:
        return list(self.vens_)

    async def all_resources(self) -> list[Resource]:
        return list(self.resources)

    async def grant_own_name(self, res: Resource) -> None:
        return None

    async def create_event(self, create: EventCreate) -> Event:
        event = Event.from_create(create, object_id=self._id("ev"), now=NOW)
        self.events[event.id] = event
        return event

    async def delete_event(self, event_id: str) -> None:
        self.events.pop(event_id, None)

    async def reports(self, event_id: str) -> list[Report]:
        return [r for r in self.reports_ if r.event_id == event_id]


def _resource(name: str, rows: Sequence[Sequence[tuple[str, Any]]]) -> ReportResource:
    intervals = tuple(
        Interval.model_construct(
            id=i,
            interval_period=IntervalPeriod(start=W_START, duration="PT2H"),
            payloads=tuple(ValuesMap.model_construct(type=t, values=(v,)) for t, v in row),
        )
        for i, row in enumerate(rows)
    )
    return ReportResource.model_construct(resource_name=name, intervals=intervals)


def _report(event_id: str, name: str, resources: Sequence[ReportResource]) -> ReportCreate:
    return ReportCreate.model_construct(
        event_id=event_id,
        client_name=EVIL,
        report_name=name,
        payload_descriptors=None,
        resources=tuple(resources),
    )


NAMES = st.sampled_from(["junk", "bad name", "000005:EVIL0001", "FLEET", "x\x00y"]) | st.just(
    "HONEST"
)
VALUES = st.sampled_from([math.nan, math.inf, -1.0, 1e300, 0.5, "7", None, True])
TYPES = st.sampled_from(
    [profile.BASELINE, profile.UP_ENERGY, profile.DEMAND, profile.RESPONSE, "JUNK"]
)
ROWS = st.lists(st.lists(st.tuples(TYPES, VALUES), max_size=3), min_size=0, max_size=3)
HOSTILE = st.lists(
    st.tuples(
        st.sampled_from(["potential", "plan", "power"]),
        st.sampled_from(["potential", "dr", "evil"]),
        st.lists(st.tuples(NAMES, ROWS), min_size=0, max_size=3),
    ),
    max_size=6,
)


async def _run(store: ServicerStore, hostile: list[Any], evil_names: list[str]) -> dict[str, Any]:
    names, envelopes = _fleet()
    clock = [NOW]
    bl = FakeBl()
    honest_ven = bl.add_ven(HONEST)
    for n in names:
        bl.add_resource(HONEST, honest_ven, n)
    evil_ven = bl.add_ven(EVIL)
    for n in evil_names:
        bl.add_resource(EVIL, evil_ven, names[0] if n == "HONEST" else n)
    servicer = Servicer(bl, store, clock=lambda: clock[0], routes={HONEST: "cloud"})  # type: ignore[arg-type]
    await servicer.start()
    asked = await servicer.sync_resources()
    request_id = await servicer.ask_potential(W_START, W_END)
    pot = profile.potential_report(bl.events[request_id], envelopes, HONEST)
    bl.post(HONEST, pot)

    def hostile_reports(dr_event: str | None) -> None:
        for kind, on, resources in hostile:
            event = {"potential": request_id, "dr": dr_event, "evil": "ev-evil"}[on]
            if event is None:
                continue
            res = [_resource(names[0] if n == "HONEST" else n, rows) for n, rows in resources]
            bl.post(EVIL, _report(event, kind, res))

    hostile_reports(None)
    portfolio = await servicer.collect_potential(request_id)
    dispatch_id = await servicer.dispatch("t", EnergyTarget(direction="up", energy_kwh=1.0),
                                          request_id)  # fmt: skip
    record = store.get_dispatch(dispatch_id)
    assert record is not None
    events = [a.event_id for a in record.assignments if a.event_id]
    for ev in events:
        hostile_reports(ev)
    record = await servicer.follow_up(dispatch_id)
    # the honest VEN accepts (as if its plan report was read) and reports power
    for a in record.assignments:
        store.record_response(event_id=a.event_id or "", status=ResponseStatus.ACCEPTED,
                              accepted_kwh=a.requested_kwh, report_id=f"h-{a.id}",
                              responded_at=NOW)  # fmt: skip
        name = next(r.resource_name for r in servicer.registry.list_resources()
                    if r.id == a.resource_id)  # fmt: skip
        sample = PowerSample(device_id=profile._device_or_group(name), timestamp=W_START,
                             power_w=900.0, cumulative_energy_kwh=1.0,
                             source=PowerSource.MEASURED)  # fmt: skip
        bl.post(HONEST, profile.power_report(a.event_id or "", [sample], HONEST))
    hostile_reports(events[0] if events else None)
    power = await servicer.collect_power(dispatch_id)
    await servicer.sync_resources()  # a second pass still runs
    return {
        "asked": sorted(a.resource_name for a in asked if a.ven_name == HONEST),
        "potential": {n: e.model_dump() for n, e in servicer.envelopes(request_id).items()},
        "up_kwh": portfolio.up_kwh if hasattr(portfolio, "up_kwh") else None,
        "assignments": [
            (a.resource_id, a.requested_kwh, a.status)
            for a in store.get_dispatch(dispatch_id).assignments
        ],  # type: ignore[union-attr]
        "power": {n: [s.power_w for s in v] for n, v in power.items()},
    }


#: The (report kind, event) pairs the servicer reads; others it never looks at.
READ = {("potential", "potential"), ("plan", "dr"), ("power", "dr")}


def _fresh_store(tmp: str) -> ServicerStore:
    return ServicerStore.open("sqlite://")


def test_honest_run_reference() -> None:
    store = _fresh_store("")
    out = asyncio.run(_run(store, [], []))
    names, _ = _fleet()
    assert out["asked"] == sorted(names)
    assert set(out["potential"]) == set(names)
    assert all(s is AssignmentStatus.ACCEPTED for _, _, s in out["assignments"])
    assert set(out["power"]) <= set(names) and out["power"]
    assert sum(store.quarantine.counts().values()) == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile=HOSTILE, evil_names=st.lists(NAMES, max_size=3))
def test_hostile_ven_never_changes_honest_data_nor_stops_the_loop(
    hostile: list[Any], evil_names: list[str]
) -> None:
    reference = asyncio.run(_run(_fresh_store(""), [], []))
    store = _fresh_store("")
    out = asyncio.run(_run(store, hostile, evil_names))
    assert out == reference
    honest = {r.resource_name for r in store.registry().list_resources() if r.ven_name == HONEST}
    assert honest == set(_fleet()[0])
    # whatever the hostile VEN posted on our events or for our resources is in the quarantine
    posted = sum(1 for kind, on, res in hostile if res and (kind, on) in READ) + len(
        [n for n in evil_names if n in ("HONEST", "bad name", "x\x00y", "junk")]
    )
    if posted:
        assert sum(store.quarantine.counts().values()) >= 1


def test_each_hostile_probe_is_quarantined_with_its_reason() -> None:
    store = _fresh_store("")
    names, _ = _fleet()
    hostile = [
        ("potential", "potential", [("HONEST", [[(profile.UP_ENERGY, 5000.0)]])]),
        ("potential", "potential", [("000005:EVIL0001", [[("JUNK", 1.0)]])]),
        ("power", "dr", [("junk", [[(profile.DEMAND, 1.0)]])]),
        ("plan", "dr", [("HONEST", [[(profile.RESPONSE, "ACCEPTED")]])]),
    ]
    asyncio.run(_run(store, hostile, ["HONEST", "bad name", "000005:EVIL0001"]))
    counts = store.quarantine.counts()
    assert counts[QuarantineReason.NOT_OWNER] >= 3  # a squatted name, two reports
    assert counts[QuarantineReason.REFUSED] == 1  # `bad name` is no DeviceId
    assert counts[QuarantineReason.UNREADABLE] == 1  # an interval without BASELINE
    assert counts[QuarantineReason.UNKNOWN_RESOURCE] >= 1  # `junk` (posted on each event)
    latest = store.quarantine.latest(20)
    assert {q.client_id for q in latest} == {EVIL}
    text = ServicerMetrics(store, now=lambda: NOW).render().decode()
    assert 'drready_servicer_quarantined_reports_total{reason="not_owner"}' in text
    assert names[0] in {q.resource_name for q in latest}


@pytest.mark.parametrize("dummy", [0])
def test_quarantine_texts_are_printable_and_cut(dummy: int) -> None:
    store = _fresh_store("")
    assert store.quarantine.record(report_id="r\x00" * 100, kind="power", client_id="c",
                                   resource_name="a\x00b", reason="unreadable",
                                   detail="x" * 10_000, at=NOW)  # fmt: skip
    assert not store.quarantine.record(report_id="r\x00" * 100, kind="power", client_id="c",
                                       resource_name="a\x00b", reason="unreadable",
                                       detail="other", at=NOW + timedelta(1))  # fmt: skip
    (q,) = store.quarantine.latest()
    assert q.resource_name == "a\\x00b" and len(q.report_id) == 128 and len(q.detail) == 500
