"""A hostile VEN over the real protocol (S1: trust no peer; issue 12 items 1–2): ``drready vtn
serve`` as a child process over HTTPS, an honest maker cloud (route ii), a hostile VEN with its
own valid credentials, and the real :class:`Servicer` as the VTN's BL.

The hostile VEN squats the honest unit's name, reports on an event it cannot see, claims the
honest unit's potential (5 000 kWh), posts a potential report without BASELINE, a potential for a
resource that does not exist and a plan accepting the honest unit's DR. The VTN refuses what it
can (409, 404); the servicer quarantines the rest with its reason and never raises, and the
honest VEN's potential, dispatch and acceptance come through exactly as without the hostile
VEN. No ECHONET Lite (no UDP port 3610)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drready.cloud.fleet import MakerFleet
from drready.cloud.service import MakerCloud
from drready.device.clock import SimClock
from drready.domain import DEFAULT_TZ, DeviceId, Direction, FlexibilityEnvelope
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import (
    Interval,
    IntervalPeriod,
    ReportCreate,
    ReportResource,
    ValuesMap,
)
from drready.openadr.ven import VtnError
from drready.planning.problem import Fleet
from drready.servicer.core.dispatch import EnergyTarget
from drready.servicer.service import Servicer
from drready.servicer.storage.db import QuarantineReason
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.store import ServicerStore
from drready.sim.day_demo import FLAT_TARIFF
from drready.sim.processes import VtnProcess

TZ = zone(DEFAULT_TZ)
DAY = date(2025, 5, 14)
START = datetime(2025, 5, 14, 10, 0, tzinfo=TZ)
END = datetime(2025, 5, 14, 14, 0, tzinfo=TZ)
CLIENTS = {"dr-servicer": "bl", "maker-cloud": "ven", "evil": "ven"}
EVIL_UNIT = "000005:EVIL0001"


def _report(event_id: str, kind: str, resources: list[ReportResource]) -> ReportCreate:
    return ReportCreate(
        event_id=event_id, client_name="evil", report_name=kind, resources=tuple(resources)
    )


def _no_baseline(name: str) -> ReportResource:
    interval = Interval(
        id=0,
        interval_period=IntervalPeriod(start=START, duration="PT4H"),
        payloads=(ValuesMap(type=profile.UP_AVAILABLE, values=(1.0,)),),
    )
    return ReportResource(resource_name=name, intervals=(interval,))


def test_a_hostile_ven_neither_stops_the_servicer_nor_changes_the_honest_dr(
    tmp_path: Path,
) -> None:
    asyncio.run(_hostile(tmp_path))


async def _hostile(tmp_path: Path) -> None:
    clock = SimClock(datetime(2025, 5, 14, 8, 0, tzinfo=TZ), speed=0.0)
    fleet = MakerFleet(Fleet.random(np.random.default_rng(5), 4), DAY, seed=5, tariff=FLAT_TARIFF)
    vtn = VtnProcess(tmp_path / "vtn", CLIENTS)
    await asyncio.to_thread(vtn.start)
    store = ServicerStore.open(f"sqlite:///{tmp_path / 'servicer.db'}")
    try:
        async with (
            vtn.ven_client("maker-cloud") as cloud_client,
            vtn.ven_client("evil") as evil,
            vtn.bl_client("dr-servicer") as bl,
        ):  # fmt: skip
            cloud = MakerCloud(fleet, cloud_client, power_interval_s=60)
            servicer = Servicer(
                bl, store, clock=clock.now, routes={"maker-cloud": "cloud"},
                response_timeout=timedelta(minutes=15),
            )  # fmt: skip
            await cloud.register()
            await servicer.start()
            honest = sorted(r.resource_name for r in await cloud_client.resources())
            assert len(honest) >= 4
            victim = next(n for n in honest if ":" in n and not n.endswith("FLEET"))

            # squatting: the honest unit's name is taken, whoever asks (VTN: 409)
            await evil.ensure_ven()
            with pytest.raises(VtnError) as squat:
                await evil.ensure_resource(victim)
            assert squat.value.status == 409
            await evil.ensure_resource(EVIL_UNIT)
            await evil.ensure_resource("bad name")  # no DeviceId: the servicer refuses it
            await servicer.sync_resources()  # never raises
            owners = {r.resource_name: r.ven_name for r in servicer.registry.list_resources()}
            assert {owners[n] for n in honest} == {"maker-cloud"}
            assert owners.get(EVIL_UNIT) == "evil" and "bad name" not in owners

            # the potential request: the honest VEN answers; the hostile one posts lies
            request_id = await servicer.ask_potential(START, END)
            await cloud.poll_once(clock.now())
            (event,) = [e for e in await evil.events() if e.id == request_id]
            huge = FlexibilityEnvelope.model_validate(
                {
                    **fleet.envelopes(START, END)[0].model_dump(),
                    "device_id": DeviceId.parse(victim),
                    "up_kwh": 5000.0,
                }
            )
            claimed = profile.potential_report(event, [huge], "evil")
            await evil.post_report(claimed)  # the honest unit's potential, 5 000 kWh
            await evil.post_report(_report(request_id, "potential", [_no_baseline(EVIL_UNIT)]))
            junk = claimed.model_copy(
                update={
                    "resources": tuple(
                        r.model_copy(update={"resource_name": "junk"}) for r in claimed.resources
                    )
                }
            )
            await evil.post_report(junk)  # a potential for a resource that does not exist
            potential = await servicer.collect_potential(request_id)  # never raises
            honest_reports = [r for r in await bl.reports(request_id) if r.client_id != "evil"]
            expected = {
                str(env.device_id): env.up_kwh
                for report in honest_reports
                for env in profile.envelopes_from_report(report, clock.now())
            }
            names = {r.id: r.resource_name for r in servicer.registry.list_resources()}
            table = store.potentials(request_id)
            stored = {
                names[rid]: float(up)
                for rid, up in zip(table.resource_ids, table.up_kwh, strict=True)
            }
            assert stored == pytest.approx(expected)  # only the honest answers, unchanged
            assert potential.up_kwh == pytest.approx(sum(expected.values()), rel=1e-9)
            assert potential.up_kwh < 5000.0

            # the DR: the hostile VEN cannot see the honest unit's event, nor answer it
            dispatch_id = await servicer.dispatch(
                "up", EnergyTarget(direction=Direction.UP, energy_kwh=1.0), request_id
            )
            record = store.get_dispatch(dispatch_id)
            assert record is not None and record.assignments
            honest_event = next(a.event_id for a in record.assignments if a.event_id)
            assert honest_event not in {e.id for e in await evil.events()}
            with pytest.raises(VtnError) as hidden:
                await evil.post_report(_report(honest_event, "plan", [_no_baseline(victim)]))
            assert hidden.value.status == 404
            await cloud.poll_once(clock.now())
            record = await servicer.follow_up(dispatch_id)  # never raises
            assert all(a.status is AssignmentStatus.ACCEPTED for a in record.assignments)
            share = servicer.share(dispatch_id)
            assert share.accepted_kwh == pytest.approx(1.0, abs=5e-3)
            await servicer.collect_power(dispatch_id)  # never raises
            await servicer.sync_resources()  # nor does a second sync

            counts = store.quarantine.counts()
            assert counts[QuarantineReason.NOT_OWNER] >= 1  # the 5 000 kWh claim
            assert counts[QuarantineReason.UNREADABLE] >= 1  # no BASELINE
            assert counts[QuarantineReason.UNKNOWN_RESOURCE] >= 1  # `junk`
            assert counts[QuarantineReason.REFUSED] >= 1  # `bad name`
            assert {q.client_id for q in store.quarantine.latest(50)} == {"evil"}
    finally:
        store.close()
        await asyncio.to_thread(vtn.stop)
