"""End to end, route ii: the servicer's VTN and a maker cloud of 100 units over HTTPS (F1–F6, D6).

The real VTN (app factory, SQLite, uvicorn with TLS, see ``tests/test_ven_client.py``), the
maker cloud (:class:`drready.cloud.service.MakerCloud` with a real
:class:`drready.openadr.ven.VenClient`) and the servicer's business logic as plain httpx:

1. F6: the cloud registers its ven and one resource per unit; BL grants each resource its name
   as a target, so that events targeted at units reach the cloud (Definition.md "Targeting").
2. F1: BL asks for the potential of 10:00–14:00 with a potential-request event; the cloud
   reports; BL rebuilds the 100 envelopes with ``profile.envelopes_from_report``.
3. F2–F4: BL dispatches up-DR to 10 units, each 80 % of its reported potential — **one event
   per unit**, because the amounts differ (the profile carries per-unit amounts of a split
   dispatch as separate events); the cloud plans them together and answers with plan reports.
4. F5: with the cloud's "now" inside the window, the cloud sends power reports at most every
   ``power_interval_s``.

Group mode (D6): one resource named after the maker (``FLEET-000005``), a group request split
over the units, the group's plan equal to the sum of the units' plans; two makers' clouds join
the same VTN in group mode, each seeing only the events for its own group.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from drready.cloud.fleet import DEFAULT_MAKER_CODE, MakerFleet
from drready.cloud.service import MakerCloud, run_cloud
from drready.domain import DEFAULT_TZ, Direction, DrRequest, PowerSource, ResponseStatus
from drready.domain.clock import SimClock
from drready.domain.tolerances import ENERGY_TOL_KWH
from drready.openadr import profile
from drready.openadr.models import (
    BlResourceCreate,
    BlVenCreate,
    EventCreate,
    Interval,
    IntervalPeriod,
    Report,
    ValuesMap,
    from_wire,
)
from drready.openadr.ven import VenClient
from tests.test_ven_client import VEN_ID, Bl, Vtn, serve_vtn

TOKYO = ZoneInfo(DEFAULT_TZ)
DAY = date(2025, 5, 14)
START = datetime(2025, 5, 14, 10, 0, tzinfo=TOKYO)
END = datetime(2025, 5, 14, 14, 0, tzinfo=TOKYO)
BEFORE = datetime(2025, 5, 14, 8, 0, tzinfo=TOKYO)  # the cloud's "now" before the window
TOL_KWH = 1e-3  # the amounts travel as kW rounded to 1e-6 and plans as kWh to 1e-6
SLOT_TOL = 1e-5  # a slot's kW/kWh rounded to 1e-6 on the wire; min/max rebuilt from two of them
GROUP = profile.group_resource(DEFAULT_MAKER_CODE)
"""The demo maker's group resource, ``FLEET-000005`` (D6)."""
GROUP_TOL = 1e-4  # the group's slot figures against float sums of 100 units' (as SLOT_TOL)


def _reports(bl: Bl, event_id: str, name: str) -> list[Report]:
    found = [from_wire(Report, r) for r in bl.get("/reports", eventID=event_id)]
    return [r for r in found if r.report_name == name]


def _grant_names(bl: Bl) -> None:
    """BL grants every resource of ``cloud-1`` its own name as a target."""
    ven = bl.get("/vens", venName=VEN_ID)[0]
    for skip in range(0, 1000, 50):
        page = bl.get("/resources", venID=ven["id"], skip=skip, limit=50)
        for r in page:
            bl.put(
                f"/resources/{r['id']}",
                BlResourceCreate(
                    client_id=VEN_ID,
                    resource_name=r["resourceName"],
                    ven_id=ven["id"],
                    targets=(r["resourceName"],),
                ),
            )
        if len(page) < 50:
            break


def _dr_request(rid: str, amount: float) -> DrRequest:
    return DrRequest(
        request_id=rid,
        direction=Direction.UP,
        start=START,
        end=END,
        amount_kwh=amount,
        issuer="dr-servicer",
        issued_at=BEFORE,
    )


def test_units_mode_potential_dispatch_plan_and_power(tmp_path: Path) -> None:
    fleet = MakerFleet.random(100, DAY, seed=1)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            asyncio.run(_units_mode(vtn, bl, fleet))
        finally:
            bl.close()


async def _units_mode(vtn: Vtn, bl: Bl, fleet: MakerFleet) -> None:
    program_id = bl.post("/programs", profile.program())["id"]
    async with vtn.ven() as ven:
        cloud = MakerCloud(fleet, ven, power_interval_s=60)
        log = await cloud.register()
        assert "100 resource(s)" in log[0]
        _grant_names(bl)

        # F1: potential for 10:00-14:00, asked of every unit (no targets)
        ask = bl.post("/events", profile.potential_request(program_id, START, END))
        log = await cloud.poll_once(BEFORE)
        assert any("potential report" in line for line in log), log
        (report,) = _reports(bl, ask["id"], "potential")
        envelopes = profile.envelopes_from_report(report, computed_at=BEFORE)
        assert len(envelopes) == 100
        assert sum(e.up_kwh for e in envelopes) > 0
        expected = {str(e.device_id): e for e in fleet.envelopes(START, END)}
        for env in envelopes:
            mine = expected[str(env.device_id)]
            assert env.up_kwh == pytest.approx(mine.up_kwh, abs=ENERGY_TOL_KWH)
            assert env.down_kwh == pytest.approx(mine.down_kwh, abs=ENERGY_TOL_KWH)
            assert env.window_start == mine.window_start and env.window_end == mine.window_end
            for got, want in zip(env.slots, mine.slots, strict=True):
                assert got.baseline_kw == pytest.approx(want.baseline_kw, abs=SLOT_TOL)
                assert got.min_kw == pytest.approx(want.min_kw, abs=SLOT_TOL)
                assert got.max_kw == pytest.approx(want.max_kw, abs=SLOT_TOL)
                assert got.cum_max_kwh == pytest.approx(want.cum_max_kwh, abs=SLOT_TOL)
        assert await cloud.poll_once(BEFORE) == []  # answered once only
        assert len(_reports(bl, ask["id"], "potential")) == 1

        # F2: up-DR to the 10 units with the most potential, 80 % each, one event per unit
        chosen = sorted(envelopes, key=lambda e: -e.up_kwh)[:10]
        dispatched = []
        for k, env in enumerate(chosen):
            req = _dr_request(f"up-{k}", 0.8 * env.up_kwh)
            ev = bl.post("/events", profile.dr_event(program_id, req, [str(env.device_id)]))
            dispatched.append((ev["id"], req, env))
        log = await cloud.poll_once(BEFORE)
        assert sum("plan report" in line for line in log) == 10, log

        # F3/F4: BL reads the answers and the DR-aware plans
        for event_id, req, env in dispatched:
            (plan_rep,) = _reports(bl, event_id, "plan")
            (answer,) = profile.answers_from_report(plan_rep, req)
            assert answer.response.device_id == env.device_id
            assert answer.response.status is ResponseStatus.ACCEPTED
            assert answer.plan.honours == (req.request_id,)
            extra = answer.plan.window_energy_kwh(START, END) - env.baseline_kwh
            assert extra == pytest.approx(answer.response.accepted_kwh, abs=TOL_KWH)
            assert extra == pytest.approx(req.amount_kwh, abs=TOL_KWH)

        # F5: power reports during the event, at most every power_interval_s
        during = START + timedelta(hours=1)
        log = await cloud.poll_once(during)
        assert sum("power report" in line for line in log) == 10, log
        assert await cloud.poll_once(during + timedelta(seconds=30)) == []
        log = await cloud.poll_once(during + timedelta(seconds=61))
        assert sum("power report" in line for line in log) == 10
        for event_id, _, env in dispatched:
            powers = _reports(bl, event_id, "power")
            assert len(powers) == 2
            samples = [s for r in powers for s in profile.samples_from_report(r)]
            assert {s.device_id for s in samples} == {env.device_id}
            assert {s.timestamp for s in samples} == {during, during + timedelta(seconds=61)}
            assert all(s.source is PowerSource.MEASURED for s in samples)
            assert all(s.power_w >= 0 and s.cumulative_energy_kwh > 0 for s in samples)
            first, second = sorted(samples, key=lambda s: s.timestamp)
            assert second.cumulative_energy_kwh >= first.cumulative_energy_kwh
        assert await cloud.poll_once(END) == []  # the window is over: no more power reports
        # a plan report was posted once per event, whatever the number of polls
        assert all(len(_reports(bl, e, "plan")) == 1 for e, _, _ in dispatched)


def test_a_restarted_cloud_does_not_answer_twice(tmp_path: Path) -> None:
    fleet = MakerFleet.random(3, DAY, seed=2)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            program_id = bl.post("/programs", profile.program())["id"]
            ask = bl.post("/events", profile.potential_request(program_id, START, END))

            async def once() -> list[str]:
                async with vtn.ven() as ven:
                    return await MakerCloud(fleet, ven).poll_once(BEFORE)

            assert any("potential report" in line for line in asyncio.run(once()))
            assert not any("potential report" in line for line in asyncio.run(once()))
            assert len(_reports(bl, ask["id"], "potential")) == 1
        finally:
            bl.close()


def test_events_off_profile_are_logged_and_skipped(tmp_path: Path) -> None:
    fleet = MakerFleet.random(3, DAY, seed=3)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            program_id = bl.post("/programs", profile.program())["id"]
            simple = EventCreate(
                program_id=program_id,
                event_name="simple",
                interval_period=IntervalPeriod(start=START, duration="PT1H"),
                intervals=(Interval(id=0, payloads=(ValuesMap(type="SIMPLE", values=(1,)),)),),
            )
            bl.post("/events", simple)
            far = START + timedelta(days=5)  # outside the fleet's day-ahead grid
            bl.post("/events", profile.potential_request(program_id, far, far + timedelta(hours=1)))
            late = _dr_request("late", 1.0)
            bl.post("/events", profile.dr_event(program_id, late, [fleet.names[0]]))

            async def register() -> None:
                async with vtn.ven() as ven:
                    await MakerCloud(fleet, ven).register()

            asyncio.run(register())
            _grant_names(bl)

            async def main() -> list[str]:
                async with vtn.ven() as ven:
                    cloud = MakerCloud(fleet, ven)
                    first = await cloud.poll_once(START + timedelta(minutes=30))
                    assert await cloud.poll_once(START + timedelta(minutes=31)) == []
                    return first

            log = asyncio.run(main())
            text = "\n".join(log)
            assert "not a drready potential request or DR event, skipped" in text
            assert "skipped: window" in text  # the far window: outside the grid
            # the DR event arriving after its start is answered, rejected with the reason
            (plan_line,) = [line for line in log if "plan report" in line]
            assert "0.000 of 1.000 kWh accepted" in plan_line
            assert all(r["reportName"] != "potential" for r in bl.get("/reports"))
        finally:
            bl.close()


def test_group_mode_splits_the_request_and_sums_the_plans(tmp_path: Path) -> None:
    fleet = MakerFleet.random(100, DAY, seed=4)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            asyncio.run(_group_mode(vtn, bl, fleet))
        finally:
            bl.close()


async def _group_mode(vtn: Vtn, bl: Bl, fleet: MakerFleet) -> None:
    program_id = bl.post("/programs", profile.program())["id"]
    async with vtn.ven() as ven:
        cloud = MakerCloud(fleet, ven, mode="group", power_interval_s=60)
        await cloud.register()
        resources = bl.get("/resources")
        assert [r["resourceName"] for r in resources] == [GROUP]
        ven_obj = bl.get("/vens", venName=VEN_ID)[0]
        bl.put(  # BL may as well grant the target on the ven object
            f"/vens/{ven_obj['id']}",
            BlVenCreate(client_id=VEN_ID, ven_name=VEN_ID, targets=(GROUP,)),
        )

        ask = bl.post("/events", profile.potential_request(program_id, START, END))
        await cloud.poll_once(BEFORE)
        (report,) = _reports(bl, ask["id"], "potential")
        assert [r.resource_name for r in report.resources] == [GROUP]
        (group_env,) = profile.envelopes_from_report(report, computed_at=BEFORE)
        assert str(group_env.device_id) == f"{DEFAULT_MAKER_CODE}:FLEET"
        units = fleet.envelopes(START, END)
        assert group_env.up_kwh == pytest.approx(sum(e.up_kwh for e in units), abs=SLOT_TOL)
        for j, slot in enumerate(group_env.slots):
            assert slot.max_kw == pytest.approx(
                sum(e.slots[j].max_kw for e in units), abs=GROUP_TOL
            )
            assert slot.cum_max_kwh == pytest.approx(
                sum(e.slots[j].cum_max_kwh for e in units), abs=GROUP_TOL
            )

        req = _dr_request("group-up", 0.5 * group_env.up_kwh)
        ev = bl.post("/events", profile.dr_event(program_id, req, [GROUP]))
        log = await cloud.poll_once(BEFORE)
        assert any("plan report" in line for line in log), log
        (plan_rep,) = _reports(bl, ev["id"], "plan")
        assert [r.resource_name for r in plan_rep.resources] == [GROUP]
        (answer,) = profile.answers_from_report(plan_rep, req)
        assert answer.response.status is ResponseStatus.ACCEPTED
        extra = answer.plan.window_energy_kwh(START, END) - group_env.baseline_kwh
        assert extra == pytest.approx(req.amount_kwh, abs=TOL_KWH)
        # the group plan is the sum of the units' plans
        unit_energy = np.array(
            [[s.energy_kwh for s in fleet.unit_plan(u).slots] for u in range(fleet.size)]
        ).sum(axis=0)
        got = np.array([s.energy_kwh for s in answer.plan.slots])
        np.testing.assert_allclose(got, unit_energy, atol=SLOT_TOL)
        # the split: in proportion to potential, never above it
        shares = [
            fleet.unit_plan(u).window_energy_kwh(START, END)
            - fleet.baseline_plan(u).window_energy_kwh(START, END)
            for u in range(fleet.size)
        ]
        for got_kwh, env in zip(shares, units, strict=True):
            assert got_kwh <= env.up_kwh + TOL_KWH
            assert got_kwh == pytest.approx(0.5 * env.up_kwh, abs=TOL_KWH)

        log = await cloud.poll_once(START + timedelta(minutes=90))
        (power,) = _reports(bl, ev["id"], "power")
        (resource,) = power.resources
        assert resource.resource_name == GROUP
        payloads = {p.type: p.values[0] for p in resource.intervals[0].payloads}
        demand_kw = payloads[profile.DEMAND]
        assert isinstance(demand_kw, float) and demand_kw >= 0
        assert power.payload_descriptors is not None
        assert {d.reading_type for d in power.payload_descriptors} == {"DIRECT_READ"}


def test_two_makers_join_in_group_mode_and_see_only_their_own_events(tmp_path: Path) -> None:
    """Issue 17 item 1: each maker's group is its own resource (``FLEET-<maker code>``), so two
    maker clouds both register in group mode (the VTN refuses a taken resourceName), and an
    event for one maker's group — here F2 by start time alone, "start heating at 10:00" — is
    answered by that maker only, accepted with what its fleet heats there."""
    fleets = {
        "cloud-1": MakerFleet.random(20, DAY, seed=6, maker_code="000005"),
        "cloud-2": MakerFleet.random(20, DAY, seed=7, maker_code="00000A"),
    }
    with serve_vtn(tmp_path, other_vens=("cloud-2",)) as vtn:
        bl = vtn.bl()
        try:
            asyncio.run(_two_makers(vtn, bl, fleets))
        finally:
            bl.close()


async def _two_makers(vtn: Vtn, bl: Bl, fleets: dict[str, MakerFleet]) -> None:
    program_id = bl.post("/programs", profile.program())["id"]
    async with vtn.ven() as ven1, vtn.ven("cloud-2") as ven2:
        clouds = {
            name: MakerCloud(fleets[name], v, mode="group", power_interval_s=60)
            for name, v in (("cloud-1", ven1), ("cloud-2", ven2))
        }
        for cloud in clouds.values():
            await cloud.register()
        names = {r["resourceName"]: r for r in bl.get("/resources")}
        assert sorted(names) == ["FLEET-000005", "FLEET-00000A"]
        for name, r in names.items():  # BL grants each group its own name, as the servicer does
            client = "cloud-1" if name.endswith("000005") else "cloud-2"
            bl.put(
                f"/resources/{r['id']}",
                BlResourceCreate(
                    client_id=client, resource_name=name, ven_id=r["venID"], targets=(name,)
                ),
            )
        req = DrRequest.at_start_time("start-1000", START, BEFORE)
        ev = bl.post("/events", profile.dr_event(program_id, req, ["FLEET-00000A"]))
        assert "DISPATCH_SETPOINT_RELATIVE" not in str(ev["intervals"])
        log1 = await clouds["cloud-1"].poll_once(BEFORE)
        assert not any("plan report" in line for line in log1), log1
        log2 = await clouds["cloud-2"].poll_once(BEFORE)
        assert any("kWh accepted (by start time alone)" in line for line in log2), log2
        (plan_rep,) = _reports(bl, ev["id"], "plan")
        assert [r.resource_name for r in plan_rep.resources] == ["FLEET-00000A"]
        (answer,) = profile.answers_from_report(plan_rep, req)
        potential = fleets["cloud-2"].group_envelope(START, req.end).up_kwh
        assert answer.response.status is ResponseStatus.ACCEPTED
        assert answer.response.accepted_kwh == pytest.approx(potential, rel=1e-3)
        assert potential > 1.0


def test_vtn_outage_backs_off_and_run_cloud_returns(tmp_path: Path) -> None:
    fleet = MakerFleet.random(2, DAY, seed=5)

    async def main() -> None:
        ven = VenClient(
            "https://127.0.0.1:9",
            VEN_ID,
            "x" * 20,
            verify=True,
            ven_name=VEN_ID,
            timeout_s=1,
        )
        cloud = MakerCloud(fleet, ven)
        async with ven:
            await cloud.run(0.01, now=lambda: BEFORE, max_polls=3)  # no exception escapes
        assert not cloud.registered

    asyncio.run(main())
    run_cloud(
        2,
        "https://127.0.0.1:9",
        client_id=VEN_ID,
        client_secret="x" * 20,
        ca_file=None,
        interval_s=0.01,
        max_polls=1,
        clock=SimClock(BEFORE, speed=0.0),  # the live fleet starts at any instant
    )
