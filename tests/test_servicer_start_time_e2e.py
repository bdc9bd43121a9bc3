"""An order by heating start time alone, from the north-bound API to the units and back, over
the real protocols (issue 17 item 1; profile OA-F2-2, OA-F3-2).

``drready vtn serve`` runs as a child process over HTTPS; a maker cloud (route ii, one resource
per unit, 6 units) is its VEN; the servicer is the VTN's BL with its own SQLite store and its
north-bound API in process. One simulated clock drives them all. The aggregator places
``{"kind": "start_time", "start": "13:00"}``; the order desk asks the potential (F1), then sends
each resource that declared up potential an event with ``CONTROL_LEVEL_OFFSET`` −1 and **no**
``DISPATCH_SETPOINT_RELATIVE`` (checked against the 3.1.0 schema and its enumerations); the
units plan heating from 13:00 and answer; the order is delivering in the window (F5), delivered
after it, and settled from meter data like any order.

The references are independent of the servicer's code: each unit's up potential for
13:00–17:00 as the cloud's fleet computes it before the request (the open request must be
accepted with exactly that, not a cap and not a partial status), and each unit's no-DR plan
(the heat moved must land in the window, on top of the baseline); for the settlement, meter data
built by hand so that the ERAB baseline is 0.1 kWh a slot and each unit delivered exactly what
it accepted.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from drready.cloud.fleet import MakerFleet
from drready.cloud.service import MakerCloud
from drready.device.clock import SimClock
from drready.domain import DEFAULT_TZ, Direction, ResponseStatus
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import to_wire
from drready.planning.problem import Fleet
from drready.security.tokens import ClientRegistry
from drready.servicer.metrics import ServicerMetrics
from drready.servicer.orders import OrderDesk
from drready.servicer.service import Servicer
from drready.servicer.settling import settle_due
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.app import ServiceState, create_app
from drready.servicer.web.auth import AUDIENCE, SERVICER_POLICY
from drready.sim.day_demo import FLAT_TARIFF
from drready.sim.processes import VtnProcess
from tests.openadr_conformant import check

TZ = zone(DEFAULT_TZ)
DAY = date(2025, 5, 14)
START = datetime(2025, 5, 14, 13, 0, tzinfo=TZ)
END = START + timedelta(hours=4)
CLIENTS = {"dr-servicer": "bl", "maker-cloud": "ven"}
DESK_SECRET = secrets.token_urlsafe(24)
METER_SECRET = secrets.token_urlsafe(24)


class _ApiClock:
    """The simulated clock as the API's process clock."""

    scale = 1.0

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now()


def test_a_start_time_order_reaches_the_units_without_amount_and_they_heat_from_it(
    tmp_path: Path,
) -> None:
    asyncio.run(_start_time_order(tmp_path))


async def _start_time_order(tmp_path: Path) -> None:
    clock = SimClock(datetime(2025, 5, 14, 8, 0, tzinfo=TZ), speed=0.0)
    fleet = MakerFleet(Fleet.random(np.random.default_rng(7), 6), DAY, seed=7, tariff=FLAT_TARIFF)
    # the independent references, before anything is asked: each unit's up potential from
    # 13:00 for 4 h, and its no-DR plan
    potential_kwh = {
        str(fleet.device_ids[u]): env.up_kwh for u, env in enumerate(fleet.envelopes(START, END))
    }
    baseline = {str(fleet.device_ids[u]): fleet.baseline_plan(u) for u in range(fleet.size)}
    assert sum(v > 0.01 for v in potential_kwh.values()) >= 3  # the test means something
    vtn = VtnProcess(tmp_path / "vtn", CLIENTS)
    await asyncio.to_thread(vtn.start)
    store = ServicerStore.open(f"sqlite:///{tmp_path / 'servicer.db'}")
    try:
        async with (
            vtn.ven_client("maker-cloud") as cloud_client,
            vtn.bl_client("dr-servicer") as bl,
        ):
            cloud = MakerCloud(fleet, cloud_client, power_interval_s=60)
            servicer = Servicer(
                bl, store, clock=clock.now, routes={"maker-cloud": "cloud"},
                response_timeout=timedelta(minutes=15),
            )  # fmt: skip
            await cloud.register()
            program_id = await servicer.start()
            await servicer.sync_resources()
            desk = OrderDesk(
                servicer, potential_wait=timedelta(minutes=10), step=timedelta(minutes=1)
            )
            clients = ClientRegistry(signing_key=secrets.token_urlsafe(48), policy=SERVICER_POLICY)
            clients.add_client("desk", DESK_SECRET, role="trader")
            clients.add_client("meter", METER_SECRET, role="meter")
            api_clock = _ApiClock(clock)
            app = create_app(
                store=store,
                servicer=servicer,
                clock=api_clock,
                registry=clients,
                tokens=clients.token_service("https://servicer.test", audience=AUDIENCE),
                base_url="https://servicer.test",
                metrics=ServicerMetrics(store, now=clock.now),
                state=ServiceState(),
            )
            with TestClient(app, base_url="https://servicer.test") as http:
                form = {"grant_type": "client_credentials", "client_id": "desk"}
                token = http.post("/auth/token", data=form | {"client_secret": DESK_SECRET})
                auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
                placed = http.post(
                    "/api/v1/orders",
                    json={"kind": "start_time", "start": START.isoformat()},
                    headers=auth,
                )
                assert placed.status_code == 201, placed.text
                order_id = placed.json()["id"]

                # F1: the potential of the window the start time opens
                assert await desk.step(clock.now()) == 1
                order = store.order(order_id)
                assert order is not None and order.status.value == "collecting"
                await cloud.poll_once(clock.now())
                clock.advance(timedelta(minutes=1))
                assert await desk.step(clock.now()) == 1  # everyone answered: dispatched
                order = store.order(order_id)
                assert order is not None and order.status.value == "dispatched"
                assert order.dispatch_id is not None

                # F2 as it is on the VTN: one event per resource with up potential, the
                # direction and no amount, valid against the 3.1.0 schema and enumerations
                events = [e for e in await bl.events(program_id=program_id) if e.event_name]
                dr_events = [e for e in events if profile.is_dr_event(e)]
                record = store.get_dispatch(order.dispatch_id)
                assert record is not None
                asked = {a.event_id for a in record.assignments}
                assert {e.id for e in dr_events} == asked
                names = {r.id: r.resource_name for r in servicer.registry.list_resources()}
                assert {names[a.resource_id] for a in record.assignments} == {
                    n for n, kwh in potential_kwh.items() if kwh >= servicer.min_request_kwh
                }
                for event in dr_events:
                    wire = to_wire(event)
                    check("event", wire)
                    (interval,) = wire["intervals"]
                    payloads = {p["type"]: p["values"] for p in interval["payloads"]}
                    assert payloads == {"CONTROL_LEVEL_OFFSET": [-1]}
                    assert "DISPATCH_SETPOINT_RELATIVE" not in str(wire)
                    assert profile.event_window(event) == (START, END)
                # what the maker cloud reads for its unit: an open request from 13:00
                target = dr_events[0].targets[0]
                seen = await cloud_client.events(program_id=program_id, targets=[target])
                (theirs,) = [e for e in seen if profile.is_dr_event(e)]
                request = profile.request_from_event(theirs)
                assert request.open_amount and request.direction is Direction.UP
                assert (request.start, request.end) == (START, END)

                # F3/F4: the units plan and answer; the order takes what they accepted
                await cloud.poll_once(clock.now())
                clock.advance(timedelta(minutes=1))
                await desk.step(clock.now())
                order = store.order(order_id)
                assert order is not None and order.status.value == "accepted", order
                record = store.get_dispatch(order.dispatch_id)
                assert record is not None
                plans = await servicer.accepted_plans(order.dispatch_id)
                accepted_total = 0.0
                for a in record.assignments:
                    name = names[a.resource_id]
                    assert a.status is AssignmentStatus.ACCEPTED, (name, a)
                    assert a.round == 1  # no target, so no second round
                    # accepted with exactly the unit's own potential from 13:00 (5e-6: the
                    # wire's 1e-6 rounding), neither a cap nor partial
                    assert a.accepted_kwh == pytest.approx(potential_kwh[name], abs=5e-6)
                    assert a.accepted_kwh is not None
                    accepted_total += a.accepted_kwh
                    plan, base = plans[name], baseline[name]
                    assert a.event_name in plan.honours
                    in_window = np.array([START <= s.start < END for s in plan.slots], dtype=bool)
                    got = np.array([s.energy_kwh for s in plan.slots])
                    ref = np.array([s.energy_kwh for s in base.slots])
                    assert plan.grid == base.grid
                    # the plan heats from 13:00: the window holds at least the baseline plus
                    # what was accepted (1e-4 kWh: the wire's rounding per slot)
                    assert got[in_window].sum() >= ref[in_window].sum() + a.accepted_kwh - 1e-4
                    assert got[in_window].sum() > ref[in_window].sum() + 0.01
                detail = http.get(f"/api/v1/orders/{order_id}", headers=auth).json()
                assert detail["kind"] == "start_time" and detail["status"] == "accepted"
                figures = detail["figures"]
                assert figures["target_kwh"] == 0.0 and figures["shortfall_kwh"] == 0.0
                assert figures["accepted_kwh"] == pytest.approx(accepted_total, abs=1e-9)
                assert figures["requested_kwh"] == pytest.approx(
                    sum(potential_kwh[names[a.resource_id]] for a in record.assignments),
                    abs=1e-5,
                )
                unit_answers = await bl.reports(record.assignments[0].event_id or "")
                assert unit_answers and all(r.report_name == "plan" for r in unit_answers)
                decoded = profile.plan_answers(
                    unit_answers[0], request_id=record.assignments[0].event_name, requested_kwh=None
                )
                assert decoded[0].response.status is ResponseStatus.ACCEPTED

                # the window runs (F5 from the units), ends, and the order is delivered
                clock.advance(START + timedelta(minutes=30) - clock.now())
                await cloud.poll_once(clock.now())
                await desk.step(clock.now())
                assert await desk.collect_power(clock.now()) == len(record.assignments)
                order = store.order(order_id)
                assert order is not None and order.status.value == "delivering"
                clock.advance(END + timedelta(minutes=30) - clock.now())
                await cloud.poll_once(clock.now())
                await desk.step(clock.now())
                order = store.order(order_id)
                assert order is not None and order.status.value == "delivered", order

                # settled from meter data like any order: a flat 0.1 kWh per slot for 20 days
                # and on the day, plus what each unit accepted spread over the window's 8 slots
                # — so the ERAB baseline is 0.1 and each delivered exactly what it accepted
                day0 = datetime.combine(DAY - timedelta(days=20), datetime.min.time(), TZ)
                n = 20 * 48 + 35  # up to 17:30 on the day, every slot ended
                first_window_slot = 20 * 48 + 26  # 13:00
                series = []
                for a in record.assignments:
                    kwh = [0.1] * n
                    for k in range(first_window_slot, first_window_slot + 8):
                        kwh[k] += (a.accepted_kwh or 0.0) / 8
                    series.append(
                        {
                            "resource": names[a.resource_id],
                            "start": day0.isoformat(),
                            "energy_kwh": kwh,
                        }
                    )
                meter_form = form | {"client_id": "meter", "client_secret": METER_SECRET}
                meter_token = http.post("/auth/token", data=meter_form).json()["access_token"]
                posted = http.post(
                    "/api/v1/meter-readings",
                    json={"series": series},
                    headers={"Authorization": f"Bearer {meter_token}"},
                )
                assert posted.status_code == 200, posted.text
                resources = servicer.registry.list_resources()
                assert settle_due(store, resources, now=clock.now()) == [order.dispatch_id]
                got = http.get(f"/api/v1/settlements/{DAY.isoformat()}", headers=auth)
                assert got.status_code == 200, got.text
                (event,) = got.json()["events"]
                assert event["order_id"] == order_id and event["direction"] == "up"
                assert event["accepted_kwh"] == pytest.approx(accepted_total, abs=1e-9)
                assert event["delivered_kwh"] == pytest.approx(accepted_total, abs=1e-6)
                assert {r["resource_name"] for r in event["resources"]} == {
                    names[a.resource_id] for a in record.assignments
                }
                final = http.get(f"/api/v1/orders/{order_id}", headers=auth).json()
                assert final["status"] == "settled"
                assert final["settled_kwh"] == pytest.approx(accepted_total, abs=1e-6)
    finally:
        store.close()
        await asyncio.to_thread(vtn.stop)
