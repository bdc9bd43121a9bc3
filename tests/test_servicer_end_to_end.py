"""The servicer over the real protocols: both routes, dispatch, silence, re-dispatch (U2, D3).

Everything runs as it would in the field, on loopback: ``drready vtn serve`` as a child
process over HTTPS; a maker cloud (route ii, one resource per unit) and a home gateway
(route i) whose water heaters are ECHONET Lite nodes on 127.0.0.81–82; the servicer as the
VTN's BL with its own SQLite store. One simulated clock drives the units, VENs and servicer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drready.cloud.fleet import MakerFleet
from drready.cloud.service import MakerCloud
from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DEFAULT_TZ, DeviceId, Direction
from drready.domain.time import zone
from drready.domain.tolerances import REL_TOL
from drready.echonet.controller import EchonetController
from drready.echonet.serve import water_heater_node
from drready.gateway.ven import GatewayVen, discover_links
from drready.openadr.models import ReportCreate
from drready.openadr.ven import VenError
from drready.planning.problem import Fleet
from drready.planning.unit import UnitConfig
from drready.servicer.core.dispatch import EnergyTarget, PowerTarget
from drready.servicer.service import Servicer
from drready.servicer.storage.db import ResourceState
from drready.servicer.storage.dispatches import DispatchRecord
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.snapshot import build_snapshot
from drready.sim.day_demo import FLAT_TARIFF
from drready.sim.processes import VtnProcess

TZ = zone(DEFAULT_TZ)
DAY = date(2025, 5, 14)
START = datetime(2025, 5, 14, 10, 0, tzinfo=TZ)
END = datetime(2025, 5, 14, 14, 0, tzinfo=TZ)
HOSTS = ("127.0.0.81", "127.0.0.82")
CLIENTS = {"dr-servicer": "bl", "maker-cloud": "ven", "home-gateway": "ven"}
ROUTES = {"maker-cloud": "cloud", "home-gateway": "gateway"}


@dataclass
class World:
    clock: SimClock
    vtn: VtnProcess
    store: ServicerStore
    servicer: Servicer
    cloud: MakerCloud
    gateway: GatewayVen
    heaters: list[SimulatedWaterHeater]
    fleet: MakerFleet

    async def poll(self, *, gateway: bool = True) -> None:
        now = self.clock.now()
        await self.cloud.poll_once(now)
        if gateway:
            await self.gateway.poll_once(now)


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path, units: int = 30, store_url: str | None = None
) -> AsyncIterator[World]:
    clock = SimClock(datetime(2025, 5, 14, 8, 0, tzinfo=TZ), speed=0.0)
    heaters = [
        SimulatedWaterHeater(
            UnitConfig(DeviceId(maker_code="000005", serial=f"HG{k:07d}"), 4, 460.0),
            clock,
            seed=40 + k,
            tariff=FLAT_TARIFF,
        )
        for k in range(len(HOSTS))
    ]
    nodes = [water_heater_node(h, u) for h, u in zip(HOSTS, heaters, strict=True)]
    for node in nodes:
        await node.start()
    fleet = MakerFleet(
        Fleet.random(np.random.default_rng(5), units), DAY, seed=5, tariff=FLAT_TARIFF
    )
    vtn = VtnProcess(tmp_path / "vtn", CLIENTS)
    await asyncio.to_thread(vtn.start)
    store = ServicerStore.open(store_url or f"sqlite:///{tmp_path / 'servicer.db'}")
    try:
        async with (
            EchonetController(interface="127.0.0.1") as lan,
            vtn.ven_client("home-gateway") as gw_client,
            vtn.ven_client("maker-cloud") as cloud_client,
            vtn.bl_client("dr-servicer") as bl,
        ):
            links = await discover_links(lan, HOSTS, window_s=0.3, clock=clock.now)
            gateway = GatewayVen(links, gw_client, power_interval_s=60)
            cloud = MakerCloud(fleet, cloud_client, power_interval_s=60)
            servicer = Servicer(
                bl,
                store,
                clock=clock.now,
                routes=ROUTES,
                response_timeout=timedelta(minutes=15),
            )
            await cloud.register()
            await gateway.register()
            await servicer.start()
            yield World(clock, vtn, store, servicer, cloud, gateway, heaters, fleet)
    finally:
        for node in nodes:
            await node.close()
        store.close()
        await asyncio.to_thread(vtn.stop)


def test_both_routes_potential_dispatch_and_a_silent_gateway_redispatched(
    tmp_path: Path, db_url: str
) -> None:
    """On the servicer's SQLite file and on PostgreSQL."""
    asyncio.run(_silent_gateway(tmp_path, db_url))


async def _silent_gateway(tmp_path: Path, db_url: str) -> None:
    async with world(tmp_path, store_url=db_url) as w:
        asked = await w.servicer.sync_resources()
        assert len(asked) == 32
        routes = {a.route for a in asked}
        assert routes == {"gateway", "cloud"}
        # the ratings travelled as resource attributes (F6)
        rated = {r.resource_name: r.rated_power_kw for r in w.servicer.registry.list_resources()}
        fleet_rated = w.fleet.rated_inputs_kw()
        assert rated[w.fleet.names[0]] == pytest.approx(fleet_rated[0], rel=REL_TOL)
        assert all(0.5 < rated[str(h.device_id)] < 3.0 for h in w.heaters)

        # F1 over both routes
        request_id = await w.servicer.ask_potential(START, END)
        await w.poll()
        pot = await w.servicer.collect_potential(request_id)
        assert (pot.n_asked, pot.n_answered) == (32, 32) and not pot.missing
        direct = {str(e.device_id): e.up_kwh for e in w.fleet.envelopes(START, END)}
        assert pot.up_kwh == pytest.approx(
            sum(direct.values()) + sum(r.up_kwh for r in pot.routes if r.route == "gateway"),
            rel=REL_TOL,
        )
        gw_up = sum(w.servicer.envelopes(request_id)[str(h.device_id)].up_kwh for h in w.heaters)
        assert gw_up > 0.5  # the homes declared potential too

        # dispatch half of it; the gateway then goes silent (its VEN stops polling)
        target = round(0.5 * pot.up_kwh, 3)
        dispatch_id = await w.servicer.dispatch(
            "absorb solar", EnergyTarget(direction=Direction.UP, energy_kwh=target), request_id
        )
        record = w.store.get_dispatch(dispatch_id)
        assert record is not None
        first = {a.resource_id for a in record.assignments}
        names = {r.id: r.resource_name for r in w.servicer.registry.list_resources()}
        assert {str(h.device_id) for h in w.heaters} <= {names[i] for i in first}
        assert sum(a.requested_kwh for a in record.assignments) == pytest.approx(target, abs=1e-3)
        # fairness: every resource asked the same share of what it declared
        envs = w.servicer.envelopes(request_id)
        shares = [a.requested_kwh / envs[names[a.resource_id]].up_kwh for a in record.assignments]
        assert max(shares) - min(shares) < 1e-3

        await w.poll(gateway=False)
        record = await w.servicer.follow_up(dispatch_id)
        statuses = {names[a.resource_id]: a.status for a in record.assignments}
        assert all(
            s is AssignmentStatus.ACCEPTED for n, s in statuses.items() if n.startswith("000005:C")
        )
        assert all(statuses[str(h.device_id)] is AssignmentStatus.SENT for h in w.heaters)
        share = w.servicer.share(dispatch_id)
        assert share.rounds == 1 and share.awaiting_kwh > 0

        # 16 minutes of silence: declared silent, events deleted, shortfall re-dispatched
        w.clock.advance(timedelta(minutes=16))
        record = await w.servicer.follow_up(dispatch_id)
        silent = [a for a in record.assignments if a.status is AssignmentStatus.SILENT]
        assert {names[a.resource_id] for a in silent} == {str(h.device_id) for h in w.heaters}
        second = [a for a in record.assignments if a.round == 2]
        assert second and all(names[a.resource_id].startswith("000005:C") for a in second)
        missing = sum(a.requested_kwh for a in silent)
        assert sum(a.requested_kwh for a in second) == pytest.approx(missing, abs=2e-3)
        offline = {
            r.resource_name
            for r in w.servicer.registry.list_resources()
            if r.state is ResourceState.OFFLINE
        }
        assert offline == {str(h.device_id) for h in w.heaters}

        await w.poll(gateway=False)
        record = await w.servicer.follow_up(dispatch_id)
        share = w.servicer.share(dispatch_id)
        assert share.rounds == 2 and share.awaiting_kwh == 0
        assert share.accepted_kwh == pytest.approx(target, abs=5e-3)  # D3: covered, no operator
        # the gateway comes back: the deleted events never reach its heaters
        await w.gateway.poll_once(w.clock.now())
        assert all(not h.heating_plan().honours for h in w.heaters)

        # F5 during the window, stored once however often it is read
        w.clock.advance(START + timedelta(minutes=30) - w.clock.now())
        await w.poll()
        got = await w.servicer.collect_power(dispatch_id)
        accepted = {names[a.resource_id] for a in record.assignments if a.accepted_kwh}
        assert set(got) == accepted
        assert await w.servicer.collect_power(dispatch_id) == {}


def test_duplicate_and_late_reports_are_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_duplicates(tmp_path, monkeypatch))


async def _duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with world(tmp_path, units=4) as w:
        reads: list[int] = []
        get_dispatch = w.store.get_dispatch

        def counted(dispatch_id: int) -> DispatchRecord | None:
            reads.append(dispatch_id)
            return get_dispatch(dispatch_id)

        await w.servicer.sync_resources()
        request_id = await w.servicer.ask_potential(START, END)
        await w.poll()
        pot = await w.servicer.collect_potential(request_id)
        again = await w.servicer.collect_potential(request_id)
        assert again.up_kwh == pot.up_kwh  # a report is counted once
        dispatch_id = await w.servicer.dispatch(
            "dup",
            EnergyTarget(direction=Direction.UP, energy_kwh=round(0.4 * pot.up_kwh, 3)),
            request_id,
        )
        await w.poll()
        monkeypatch.setattr(w.store, "get_dispatch", counted)
        await w.servicer.follow_up(dispatch_id)
        # the dispatch is read once, and once more after the answers changed it
        assert reads == [dispatch_id] * 2
        before = w.servicer.share(dispatch_id)
        # the cloud posts one of its plan reports again (a retry after a lost answer)
        record = w.store.get_dispatch(dispatch_id)
        assert record is not None
        cloud_ids = {
            r.id
            for r in w.servicer.registry.list_resources()
            if r.resource_name.startswith("000005:C")
        }
        a = next(a for a in record.assignments if a.resource_id in cloud_ids)
        (report,) = [r for r in await w.servicer.bl.reports(a.event_id) if r.report_name == "plan"]
        copy = ReportCreate.model_validate(report.model_dump(exclude={"id"}, by_alias=False))
        await w.cloud.ven.post_report(copy)
        reads.clear()
        await w.servicer.follow_up(dispatch_id)
        assert reads == [dispatch_id]  # nothing changed: read once
        monkeypatch.undo()
        after = w.servicer.share(dispatch_id)
        assert after.accepted_kwh == pytest.approx(before.accepted_kwh)
        assert after.rounds == before.rounds
        n_power = w.store.counts()
        await w.servicer.collect_power(dispatch_id)
        assert w.store.counts() == n_power  # nothing new before the window

        # what the dashboard shows: every event once, in local time; every resource
        snap = build_snapshot(w.servicer, [], None, run_state="running", now=w.clock.now())
        assert len(snap.events) == len(record.assignments)
        assert {e.window_start.hour for e in snap.events} == {10}  # 10:00 JST, not 01:00 UTC
        assert {e.status for e in snap.events} == {"accepted"}
        assert len(snap.resources) == 6 and snap.run_state == "running"
        assert sum(e.accepted_kwh or 0.0 for e in snap.events) == pytest.approx(after.accepted_kwh)


def test_a_killed_servicer_and_a_crashed_vtn_lose_nothing(tmp_path: Path) -> None:
    asyncio.run(_crashes(tmp_path))


async def _crashes(tmp_path: Path) -> None:
    async with world(tmp_path, units=12) as w:
        await w.servicer.sync_resources()
        request_id = await w.servicer.ask_potential(START, END)
        await w.poll()
        pot = await w.servicer.collect_potential(request_id)
        target = round(0.6 * pot.up_kwh, 3)
        # a servicer process decides a dispatch and is killed after 5 of 14 events
        config = tmp_path / "child.json"
        config.write_text(
            json.dumps(
                {
                    "store": f"sqlite:///{tmp_path / 'servicer.db'}",
                    "url": w.vtn.base_url,
                    "ca": str(w.vtn.ca_file),
                    "secret": w.vtn.secrets["dr-servicer"],
                    "routes": ROUTES,
                    "now": w.clock.now().isoformat(),
                    "request_id": request_id,
                    "target_kwh": target,
                    "kill_after": 5,
                }
            )
        )
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tests.servicer_crash_child", str(config)],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        (record,) = w.store.open_dispatches()
        n = len(record.assignments)
        assert n == 14
        assert sum(a.status is AssignmentStatus.SENT for a in record.assignments) == 4
        # restarted: what was decided is sent once — the 5th event, created before the kill
        # but not marked sent, is found by its name instead of being created again
        assert await w.servicer.resume() == [record.id]
        program_events = await w.servicer.bl.events(program_id=w.servicer.program_id)
        dr_events = [e for e in program_events if (e.event_name or "").startswith("drready-a")]
        assert len(dr_events) == n
        assert {e.event_name for e in dr_events} == {a.event_name for a in record.assignments}

        # the VTN crashes (SIGKILL) mid-event and comes back on its database
        await w.poll()
        w.vtn.kill()
        with pytest.raises(VenError):
            await w.cloud.poll_once(w.clock.now())
        await asyncio.to_thread(w.vtn.start, fresh=False)
        w.clock.advance(START + timedelta(minutes=40) - w.clock.now())
        await w.poll()  # new tokens (the restarted VTN signs with a new key)
        record = await w.servicer.follow_up(record.id)
        not_accepted = [
            (a.round, a.status.value, a.reason)
            for a in record.assignments
            if a.status is not AssignmentStatus.ACCEPTED
        ]
        assert not not_accepted
        assert w.servicer.share(record.id).accepted_kwh == pytest.approx(target, abs=5e-3)
        got = await w.servicer.collect_power(record.id)
        assert len(got) == n  # every resource's power report reached the servicer


def test_a_power_target_goes_out_as_events_and_comes_back_accepted(tmp_path: Path) -> None:
    asyncio.run(_power_target(tmp_path))


async def _power_target(tmp_path: Path) -> None:
    """ "Shed/absorb X kW in every slot": the LP shapes it per slot, the events carry each
    resource's energy over the window, the answers cover the target's energy."""
    async with world(tmp_path, units=6) as w:
        await w.servicer.sync_resources()
        request_id = await w.servicer.ask_potential(START, END)
        await w.poll()
        pot = await w.servicer.collect_potential(request_id)
        per_slot_kw = round(0.3 * min(np.subtract(pot.max_kw, pot.baseline_kw)), 3)
        assert per_slot_kw > 0.1
        dispatch_id = await w.servicer.dispatch(
            "absorb per slot", PowerTarget(direction=Direction.UP, power_kw=per_slot_kw), request_id
        )
        await w.poll()
        record = await w.servicer.follow_up(dispatch_id)
        assert record.target_kind.value == "power"
        share = w.servicer.share(dispatch_id)
        assert share.target_kwh == pytest.approx(per_slot_kw * 8 * 0.5)  # 8 slots of 0.5 h
        assert share.accepted_kwh == pytest.approx(share.target_kwh, abs=5e-3)
        assert all(a.status is AssignmentStatus.ACCEPTED for a in record.assignments)
