"""The servicer reads ``DRREADY_ENERGY_SHIFT_ONLY`` from the VTN's resources and dispatches a
standard-only unit whole or not at all (issue 15 item 1, F6, U2), over an in-memory VTN."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from drready.cloud.fleet import MakerFleet
from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import Resource, ValuesMap, VenResourceCreate
from drready.servicer.core.dispatch import EnergyTarget
from drready.servicer.service import Servicer, _energy_shift_hours
from drready.servicer.storage.store import ServicerStore

from .test_servicer_quarantine import FakeBl

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 14, 8, 0, tzinfo=TZ)
W_START = datetime(2026, 5, 14, 10, 0, tzinfo=TZ)
W_END = datetime(2026, 5, 14, 14, 0, tzinfo=TZ)
CLIENT = "gateway"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((10, 13, 15, 17), (10, 13, 15, 17)),
        ((17, 10, 10), (10, 17)),
        ((10.0, 24, -1, 9.5, True, "13"), (10,)),  # whole hours 0–23 only
        ((), ()),
    ],
)
def test_shift_hours_read_from_the_attribute(
    values: tuple[object, ...], expected: tuple[int, ...]
) -> None:
    attrs = (ValuesMap.model_construct(type=profile.ENERGY_SHIFT_ONLY, values=values),)
    assert _energy_shift_hours(attrs) == expected


def test_no_attribute_means_dr_ready() -> None:
    assert _energy_shift_hours(profile.resource_attributes(1.5)) is None
    assert _energy_shift_hours(None) is None


async def _run(target_of: str) -> tuple[dict[str, float], dict[str, tuple[int, ...]]]:
    fleet = MakerFleet.random(2, NOW.date(), seed=3)
    names = [str(d) for d in fleet.device_ids]
    envelopes = fleet.envelopes(W_START, W_END)
    up = {n: e.up_kwh for n, e in zip(names, envelopes, strict=True)}
    bl = FakeBl()
    ven = bl.add_ven(CLIENT)
    for i, n in enumerate(names):
        attrs = profile.resource_attributes(1.5, energy_shift_hours=[10] if i == 0 else None)
        create = VenResourceCreate.model_construct(resource_name=n, ven_id=ven, attributes=attrs)
        bl.resources.append(
            Resource.from_create(create, object_id=f"res-{i}", now=NOW, client_id=CLIENT)
        )
    store = ServicerStore.open("sqlite://")
    servicer = Servicer(bl, store, clock=lambda: NOW, routes={CLIENT: "gateway"})  # type: ignore[arg-type]
    await servicer.start()
    await servicer.sync_resources()
    request_id = await servicer.ask_potential(W_START, W_END)
    bl.post(CLIENT, profile.potential_report(bl.events[request_id], envelopes, CLIENT))
    await servicer.collect_potential(request_id)
    std = up[names[0]]
    energy = {"part": std * 0.5, "whole": std}[target_of]
    dispatch_id = await servicer.dispatch(
        "t", EnergyTarget(direction="up", energy_kwh=energy), request_id
    )
    record = store.get_dispatch(dispatch_id)
    assert record is not None
    by_id = {r.id: r.resource_name for r in servicer.registry.list_resources()}
    asked = {by_id[a.resource_id]: a.requested_kwh for a in record.assignments}
    return {
        "std": asked.get(names[0], 0.0),
        "ready": asked.get(names[1], 0.0),
        "std_up": std,
    }, servicer.energy_shift_hours


def test_standard_unit_whole_or_nothing_through_the_servicer() -> None:
    part, hours = asyncio.run(_run("part"))
    assert list(hours.values()) == [(10,)]
    assert part["std"] == 0.0  # half its amount: never a part
    assert part["ready"] == pytest.approx(part["std_up"] * 0.5, abs=1e-3)
    whole, _ = asyncio.run(_run("whole"))
    assert whole["std"] == pytest.approx(whole["std_up"], abs=1e-3)
    assert whole["ready"] == 0.0
