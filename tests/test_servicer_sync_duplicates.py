"""Duplicate resource names inside one registry sync (S1: trust no peer; issue 12): two VENs, or
one VEN twice, listing the same resource name in one VTN listing are quarantined, never raised;
a name the registry already holds stays with its resource; the other resources sync."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drready.openadr import profile
from drready.openadr.models import ValuesMap
from drready.servicer.service import Servicer
from drready.servicer.storage.db import QuarantineReason
from drready.servicer.storage.store import ServicerStore
from tests.test_servicer_quarantine import EVIL, HONEST, NOW, FakeBl, _fleet


def _servicer(tmp_path: Path, bl: FakeBl) -> tuple[Servicer, ServicerStore]:
    store = ServicerStore.open(f"sqlite:///{tmp_path / 'servicer.db'}")
    return Servicer(bl, store, clock=lambda: NOW), store  # type: ignore[arg-type]


def _reasons(store: ServicerStore) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in store.quarantine.latest(100):
        out.setdefault(row.report_id, set()).add(row.reason)
    return out


def test_one_ven_listing_a_name_twice_keeps_the_first_and_quarantines_the_twin(
    tmp_path: Path,
) -> None:
    names, _ = _fleet()
    bl = FakeBl()
    honest = bl.add_ven(HONEST)
    bl.add_resource(HONEST, honest, names[0])
    bl.add_resource(HONEST, honest, names[1])
    bl.add_resource(HONEST, honest, names[1])  # the same name again, another resource id
    # the twin declares itself a standard-only unit: it must not change the name's hours
    twin = bl.resources[-1]
    attrs = (ValuesMap.model_construct(type=profile.ENERGY_SHIFT_ONLY, values=[1]),)
    bl.resources[-1] = twin.model_copy(update={"attributes": attrs})
    servicer, store = _servicer(tmp_path, bl)
    asyncio.run(servicer.sync_resources())  # never raises
    registered = {r.resource_name: r.id for r in servicer.registry.list_resources()}
    first = bl.resources[1]
    assert registered == {names[0]: bl.resources[0].id, names[1]: first.id}
    assert names[1] not in servicer.energy_shift_hours
    reasons = _reasons(store)
    assert reasons[f"resource:{twin.id}"] == {QuarantineReason.REFUSED.value}
    assert f"resource:{first.id}" not in reasons
    # listed the other way round next time: the registry's holder keeps the name
    bl.resources[1], bl.resources[2] = bl.resources[2], bl.resources[1]
    asyncio.run(servicer.sync_resources())
    assert {r.resource_name: r.id for r in servicer.registry.list_resources()} == registered
    assert names[1] not in servicer.energy_shift_hours
    assert store.quarantine.counts()[QuarantineReason.REFUSED] == 1


def test_two_vens_listing_one_name_the_first_listed_keeps_it(tmp_path: Path) -> None:
    names, _ = _fleet()
    bl = FakeBl()
    honest, evil = bl.add_ven(HONEST), bl.add_ven(EVIL)
    bl.add_resource(HONEST, honest, names[0])
    bl.add_resource(HONEST, honest, names[1])
    bl.add_resource(EVIL, evil, names[1])  # the same new name from another VEN, same listing
    servicer, store = _servicer(tmp_path, bl)
    asyncio.run(servicer.sync_resources())
    owners = {r.resource_name: r.ven_id for r in servicer.registry.list_resources()}
    assert owners == {names[0]: honest, names[1]: honest}
    squatter = bl.resources[-1]
    assert _reasons(store) == {f"resource:{squatter.id}": {QuarantineReason.NOT_OWNER.value}}


def test_a_registered_name_stays_with_its_resource_when_a_twin_appears(tmp_path: Path) -> None:
    names, _ = _fleet()
    bl = FakeBl()
    honest, evil = bl.add_ven(HONEST), bl.add_ven(EVIL)
    bl.add_resource(HONEST, honest, names[0])
    servicer, store = _servicer(tmp_path, bl)
    asyncio.run(servicer.sync_resources())
    (kept,) = servicer.registry.list_resources()
    # later: the same VEN and another one list twins of the registered name, listed first
    bl.add_resource(HONEST, honest, names[0])
    bl.add_resource(EVIL, evil, names[0])
    bl.resources.reverse()
    asyncio.run(servicer.sync_resources())
    (still,) = servicer.registry.list_resources()
    assert (still.id, still.ven_id, still.resource_name) == (kept.id, kept.ven_id, names[0])
    assert still.state == kept.state
    reasons = _reasons(store)
    twin, squatter = bl.resources[1], bl.resources[0]
    assert reasons[f"resource:{twin.id}"] == {QuarantineReason.REFUSED.value}
    assert reasons[f"resource:{squatter.id}"] == {QuarantineReason.NOT_OWNER.value}
    assert f"resource:{kept.id}" not in reasons
