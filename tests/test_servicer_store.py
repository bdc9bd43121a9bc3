"""Servicer storage: migrations, idempotent records, restart survival — on SQLite and PostgreSQL.

Every test that touches a database runs twice: on a SQLite file in ``tmp_path`` and on a fresh
schema of the session's PostgreSQL database (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import setuptools  # type: ignore[import-untyped]
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

import drready.servicer.storage.migrations as migrations
from drready.domain import SLOT, PowerSample
from drready.servicer.storage.db import Base, ResourceKind, make_engine, table_names
from drready.servicer.storage.dispatches import ResponseOutcome
from drready.servicer.storage.lifecycle import AssignmentStatus, DispatchStatus, TransitionError
from drready.servicer.storage.potentials import PotentialInput
from drready.servicer.storage.store import ServicerStore

JST = timezone(timedelta(hours=9))
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=JST)
SLOT_2 = timedelta(hours=1)
REPO_SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def store(db_url: str) -> Iterator[ServicerStore]:
    s = ServicerStore.open(db_url)
    try:
        yield s
    finally:
        s.close()


def _register(store: ServicerStore, n: int = 3) -> list[str]:
    """One cloud VEN with ``n`` unit resources r0…; returns their ids."""
    reg = store.registry()
    reg.upsert_ven(ven_id="v1", ven_name="maker-cloud", route="cloud", client_id="c1", at=T0)
    ids = []
    for i in range(n):
        reg.upsert_resource(
            resource_id=f"r{i}",
            ven_id="v1",
            resource_name=f"000005:HW{i:07d}",
            kind=ResourceKind.UNIT,
            rated_power_kw=1.5,
        )
        ids.append(f"r{i}")
    return ids


def _dispatch(store: ServicerStore, resources: list[str], amounts: list[float]) -> int:
    return store.create_dispatch(
        label="evening-down",
        direction="down",
        window_start=T0,
        window_end=T0 + timedelta(hours=2),
        target_kind="energy",
        target={"energy_kwh": sum(amounts)},
        assignments=list(zip(resources, amounts, strict=True)),
        created_at=T0 - timedelta(hours=1),
    )


# ---------------------------------------------------------------------- migrations


def test_migrated_schema_equals_the_models_and_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrations.current_revision(engine) is None
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == migrations.head_revision() == "0003"
        assert migrations.schema_differences(engine) == []
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO processed_report (id, kind, processed_at) "
                    "VALUES ('rep-1', 'plan', :at)"
                ),
                {"at": datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        migrations.upgrade(engine)  # second run: nothing to do, data kept
        assert migrations.current_revision(engine) == "0003"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM processed_report")).scalar_one() == 1
        # a database from a newer drready is refused, not clobbered
        with engine.begin() as conn:
            conn.execute(text("UPDATE servicer_alembic_version SET version_num = '0099'"))
        with pytest.raises(RuntimeError, match=r"'0099'.*ships revisions up to '0003'"):
            migrations.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE servicer_alembic_version SET version_num = '0002'"))
        # the comparison is not blind: remove an index and it is reported
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_assignment_status_sent_at"))
        diffs = migrations.schema_differences(engine)
        assert any(
            d[0] == "add_index" and d[1].name == "ix_assignment_status_sent_at" for d in diffs
        )
    finally:
        engine.dispose()


def test_a_database_at_0001_upgrades_to_0002_keeping_its_rows(db_url: str) -> None:
    """The running service's tables (orders, schedule, settlements) arrive by migration on a
    servicer database made by an earlier drready; its records stay."""
    engine = make_engine(db_url)
    try:
        migrations.upgrade(engine, "0001")
        assert migrations.current_revision(engine) == "0001"
        assert "dr_order" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO processed_report (id, kind, processed_at) "
                    "VALUES ('rep-1', 'plan', :at)"
                ),
                {"at": datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == "0003"
        tables = set(inspect(engine).get_table_names())
        assert {"dr_order", "scheduler_job", "settlement", "quarantined_report"} <= tables
        assert migrations.schema_differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM processed_report")).scalar_one() == 1
    finally:
        engine.dispose()


def test_migrations_run_by_url_and_ignore_foreign_tables(db_url: str) -> None:
    # a VTN table in the same database is neither touched nor reported
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE oadr_object (seq INTEGER PRIMARY KEY)"))
        migrations.upgrade(db_url)  # by URL: opens and disposes its own engine
        assert migrations.schema_differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM oadr_object")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_failed_migration_leaves_the_database_as_it_was(db_url: str) -> None:
    # 'ven' is created before 'resource' clashes: the DDL must roll back with it (on SQLite
    # only because make_engine makes the driver run DDL inside the transaction)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE resource (x INTEGER)"))
        with pytest.raises(SQLAlchemyError, match="resource"):
            migrations.upgrade(engine)
        assert set(inspect(engine).get_table_names()) == {"resource"}
        assert migrations.current_revision(engine) is None
    finally:
        engine.dispose()


def test_migrations_ship_as_packages_without_an_ini_file() -> None:
    packages = setuptools.find_packages(str(REPO_SRC))
    assert "drready.servicer.storage.migrations" in packages
    assert "drready.servicer.storage.migrations.versions" in packages
    location = Path(migrations.__file__).parent
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()
    assert (location / "versions" / "0002_orders_schedule_settlement.py").is_file()
    assert (location / "versions" / "0003_quarantine.py").is_file()
    assert not list(location.rglob("alembic.ini"))
    # every model table is created by the revisions (checked against the DB above) and the
    # models own exactly these tables
    assert table_names() == set(Base.metadata.tables) and len(table_names()) == 16


def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- timestamps


def test_instants_come_back_aware_utc_and_naive_ones_are_refused(store: ServicerStore) -> None:
    store.record_potential_request(
        request_id="pr-1",
        window_start=T0,
        window_end=T0 + timedelta(hours=3),
        requested_at=datetime(2026, 7, 1, 9, 30, 15, 123456, tzinfo=JST),
    )
    got = store.potential_request("pr-1")
    assert got is not None
    assert got.window_start == T0 and got.window_start.utcoffset() == timedelta(0)
    assert got.window_start.hour == 1  # 10:00 JST is 01:00 UTC
    assert got.requested_at.microsecond == 123456
    with pytest.raises(ValueError, match="window_start must be timezone-aware"):
        store.record_potential_request(
            request_id="pr-2",
            window_start=datetime(2026, 7, 1, 10, 0),
            window_end=T0 + timedelta(hours=3),
        )


# ---------------------------------------------------------------------- potentials


def test_potentials_same_report_twice_changes_nothing(store: ServicerStore) -> None:
    _register(store, 2)
    assert store.record_potential_request(
        request_id="pr-1", window_start=T0, window_end=T0 + timedelta(hours=2), requested_at=T0
    )
    assert not store.record_potential_request(  # again: unchanged
        request_id="pr-1", window_start=T0, window_end=T0 + timedelta(hours=4), requested_at=T0
    )
    first = [
        PotentialInput("r0", up_kwh=2.0, down_kwh=1.0, confidence=0.9, slots=[{"k": 0}]),
        PotentialInput("r1", up_kwh=3.0, down_kwh=0.5, confidence=0.95),
    ]
    t1 = T0 + timedelta(minutes=1)
    assert (
        store.record_potentials(
            request_id="pr-1", potentials=first, report_id="rep-a", received_at=t1
        )
        == 2
    )
    again = [PotentialInput("r0", up_kwh=9.0, down_kwh=9.0, confidence=0.5)]
    assert (
        store.record_potentials(
            request_id="pr-1", potentials=again, report_id="rep-a", received_at=t1
        )
        == 0
    )
    # an older, different report does not replace a newer answer
    assert (
        store.record_potentials(
            request_id="pr-1", potentials=again, report_id="rep-old", received_at=T0
        )
        == 0
    )
    table = store.potentials("pr-1")
    assert table.resource_ids == ("r0", "r1")
    np.testing.assert_array_equal(table.up_kwh, [2.0, 3.0])
    np.testing.assert_array_equal(table.down_kwh, [1.0, 0.5])
    assert table.slots == ([{"k": 0}], None)
    # a newer report replaces r0 only
    assert (
        store.record_potentials(
            request_id="pr-1", potentials=again, report_id="rep-b", received_at=t1 + timedelta(1)
        )
        == 1
    )
    table = store.potentials("pr-1")
    np.testing.assert_array_equal(table.up_kwh, [9.0, 3.0])
    assert table.report_ids == ("rep-b", "rep-a")
    window = store.potential_request("pr-1")
    assert window is not None and window.window_end == T0 + timedelta(hours=2)


# ---------------------------------------------------------------------- dispatch and responses


def test_response_rules_duplicate_late_revised_stale_ignored(store: ServicerStore) -> None:
    ids = _register(store, 4)
    did = _dispatch(store, ids, [1.0, 2.0, 3.0, 4.0])
    a = store.get_dispatch(did)
    assert a is not None and [x.status for x in a.assignments] == [AssignmentStatus.PENDING] * 4
    aid = [x.id for x in a.assignments]
    for i, x in enumerate(aid):
        assert store.mark_assignment_sent(assignment_id=x, event_id=f"ev{i}", sent_at=T0)
    assert not store.mark_assignment_sent(assignment_id=aid[0], event_id="ev0", sent_at=T0)
    t = T0 + timedelta(minutes=2)

    # first answer recorded; the same report again changes nothing
    assert (
        store.record_response(
            event_id="ev0",
            status="partial",
            accepted_kwh=0.4,
            report_id="rep0",
            responded_at=t,
            reason="tank nearly full",
        )
        is ResponseOutcome.RECORDED
    )
    before = store.get_assignment(aid[0])
    assert (
        store.record_response(
            event_id="ev0", status="accepted", accepted_kwh=1.0, report_id="rep0", responded_at=t
        )
        is ResponseOutcome.DUPLICATE
    )
    assert store.get_assignment(aid[0]) == before
    assert before is not None and before.status is AssignmentStatus.PARTIAL
    assert before.accepted_kwh == 0.4 and before.reason == "tank nearly full" and not before.late

    # a newer report revises; an older different one is stale
    assert (
        store.record_response(
            event_id="ev0",
            status="accepted",
            accepted_kwh=1.0,
            report_id="rep0b",
            responded_at=t + timedelta(minutes=1),
        )
        is ResponseOutcome.REVISED
    )
    assert (
        store.record_response(
            event_id="ev0",
            status="rejected",
            accepted_kwh=0.0,
            report_id="rep0c",
            responded_at=t - timedelta(minutes=1),
            reason="x",
        )
        is ResponseOutcome.STALE
    )
    got = store.get_assignment(aid[0])
    assert got is not None and got.status is AssignmentStatus.ACCEPTED and got.report_id == "rep0b"

    # silent, then a late answer: recorded and flagged
    assert store.mark_silent(assignment_ids=[aid[1]]) == 1
    assert store.mark_silent(assignment_ids=[aid[1], aid[0]]) == 0  # neither is 'sent' now
    assert (
        store.record_response(
            event_id="ev1",
            status="accepted",
            accepted_kwh=2.0,
            report_id="rep1",
            responded_at=t + timedelta(minutes=10),
        )
        is ResponseOutcome.LATE
    )
    late = store.get_assignment(aid[1])
    assert late is not None and late.late and late.status is AssignmentStatus.ACCEPTED
    assert late.accepted_kwh == 2.0 and late.report_id == "rep1"

    # cancelled: ignored; unknown event: nothing
    assert store.cancel_assignments(assignment_ids=[aid[2]]) == 1
    assert (
        store.record_response(
            event_id="ev2", status="accepted", accepted_kwh=3.0, report_id="rep2", responded_at=t
        )
        is ResponseOutcome.IGNORED
    )
    assert store.get_assignment(aid[2]).status is AssignmentStatus.CANCELLED  # type: ignore[union-attr]
    assert (
        store.record_response(
            event_id="nope", status="accepted", accepted_kwh=1.0, report_id="rep9", responded_at=t
        )
        is ResponseOutcome.UNKNOWN
    )

    # bad answers name the field
    with pytest.raises(ValueError, match=r"accepted_kwh must be in \[0, 4.0\]"):
        store.record_response(
            event_id="ev3", status="accepted", accepted_kwh=4.5, report_id="r", responded_at=t
        )
    with pytest.raises(ValueError, match="accepted_kwh must be 0 when status is 'rejected'"):
        store.record_response(
            event_id="ev3", status="rejected", accepted_kwh=1.0, report_id="r", responded_at=t
        )
    with pytest.raises(ValueError, match="status must be one of 'accepted', 'partial'"):
        store.record_response(
            event_id="ev3", status="maybe", accepted_kwh=1.0, report_id="r", responded_at=t
        )
    assert store.get_assignment(aid[3]).status is AssignmentStatus.SENT  # type: ignore[union-attr]


def test_assignments_rounds_are_idempotent_and_sending_is_checked(store: ServicerStore) -> None:
    ids = _register(store, 3)
    did = _dispatch(store, ids[:2], [1.0, 2.0])
    round2 = store.add_assignments(dispatch_id=did, round=2, assignments=[("r2", 0.5)])
    assert store.add_assignments(dispatch_id=did, round=2, assignments=[("r2", 0.5)]) == round2
    with pytest.raises(ValueError, match=r"exists with requested_kwh 0\.5, got 0\.7"):
        store.add_assignments(dispatch_id=did, round=2, assignments=[("r2", 0.7)])
    with pytest.raises(ValueError, match=r"assignments: unknown resource id\(s\) \['zz'\]"):
        store.add_assignments(dispatch_id=did, round=3, assignments=[("zz", 0.5)])
    with pytest.raises(ValueError, match="round must be an integer ≥ 1"):
        store.add_assignments(dispatch_id=did, round=0, assignments=[("r2", 0.5)])
    record = store.get_dispatch(did)
    assert record is not None
    assert [(x.resource_id, x.round) for x in record.assignments] == [
        ("r0", 1),
        ("r1", 1),
        ("r2", 2),
    ]

    first, second = record.assignments[0].id, record.assignments[1].id
    store.mark_assignment_sent(assignment_id=first, event_id="ev-a", sent_at=T0)
    with pytest.raises(ValueError, match="was sent as event 'ev-a', not 'ev-b'"):
        store.mark_assignment_sent(assignment_id=first, event_id="ev-b", sent_at=T0)
    with pytest.raises(ValueError, match="event_id 'ev-a' belongs to another assignment"):
        store.mark_assignment_sent(assignment_id=second, event_id="ev-a", sent_at=T0)
    assert store.get_assignment(second).status is AssignmentStatus.PENDING  # type: ignore[union-attr]

    assert store.close_dispatch(dispatch_id=did)
    assert not store.close_dispatch(dispatch_id=did)
    assert store.open_dispatches() == []
    with pytest.raises(TransitionError, match=f"dispatch {did} is closed; 'assign' needs it open"):
        store.add_assignments(dispatch_id=did, round=3, assignments=[("r0", 1.0)])


def test_awaiting_response_finds_the_silent_candidates(store: ServicerStore) -> None:
    ids = _register(store, 3)
    did = _dispatch(store, ids, [1.0, 1.0, 1.0])
    record = store.get_dispatch(did)
    assert record is not None
    aid = [x.id for x in record.assignments]
    sent = [T0, T0 + timedelta(minutes=3), T0 + timedelta(minutes=6)]
    for i, (x, at) in enumerate(zip(aid, sent, strict=True)):
        store.mark_assignment_sent(assignment_id=x, event_id=f"e{i}", sent_at=at)
    store.record_response(
        event_id="e0", status="accepted", accepted_kwh=1.0, report_id="p0", responded_at=T0
    )
    deadline = T0 + timedelta(minutes=5)  # sent before it: e0 (answered) and e1
    waiting = store.awaiting_response(sent_before=deadline)
    assert [w.event_id for w in waiting] == ["e1"]
    assert store.mark_silent(assignment_ids=[w.id for w in waiting]) == 1
    assert store.awaiting_response(sent_before=T0 + timedelta(hours=1))[0].event_id == "e2"
    assert waiting[0].event_name == f"drready-assignment-{aid[1]}"


def test_processing_a_report_is_recorded_once_even_under_concurrency(
    store: ServicerStore,
) -> None:
    ids = _register(store, 1)
    did = _dispatch(store, ids, [1.0])
    record = store.get_dispatch(did)
    assert record is not None
    store.mark_assignment_sent(assignment_id=record.assignments[0].id, event_id="ev", sent_at=T0)
    outcomes: list[ResponseOutcome] = []
    marks: list[bool] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        outcomes.append(
            store.record_response(
                event_id="ev",
                status="accepted",
                accepted_kwh=1.0,
                report_id="rep",
                responded_at=T0 + timedelta(minutes=1),
            )
        )
        marks.append(store.mark_processed(report_id="rep", kind="plan"))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == sorted([ResponseOutcome.RECORDED] + [ResponseOutcome.DUPLICATE] * 5)
    assert marks.count(True) == 1 and marks.count(False) == 5
    assert store.is_processed("rep") and not store.is_processed("other")


# ---------------------------------------------------------------------- readings, meter, tracking


def test_duplicate_power_readings_change_nothing(store: ServicerStore) -> None:
    _register(store, 2)
    stamps = [T0 + timedelta(minutes=m) for m in (0, 1, 2)]
    assert (
        store.record_power_readings(
            resource_ids="r0",
            timestamps=stamps,
            power_w=[1000.0, 0.0, 1200.0],
            cumulative_kwh=[10.0, np.nan, 10.04],
            source="measured",
            report_id="p1",
        )
        == 3
    )
    # the same readings again — even with other values — are left as they are
    assert (
        store.record_power_readings(
            resource_ids="r0", timestamps=stamps, power_w=[5.0, 5.0, 5.0], source="estimated"
        )
        == 0
    )
    series = store.power_readings(resource_id="r0", start=T0, end=T0 + timedelta(hours=1))
    np.testing.assert_array_equal(series.power_w, [1000.0, 0.0, 1200.0])
    np.testing.assert_array_equal(series.cumulative_kwh, [10.0, np.nan, 10.04])
    assert series.sources == ("measured",) * 3 and series.report_ids == ("p1",) * 3
    assert series.timestamps == tuple(stamps)

    samples = [
        PowerSample(
            device_id="000005:HW0000001",
            timestamp=T0 + timedelta(minutes=m),
            power_w=800.0,
            cumulative_energy_kwh=5.0 + m,
            source="estimated",
        )
        for m in (1, 2)
    ]
    assert store.record_power_samples(resource_id="r1", samples=samples, report_id="p2") == 2
    assert store.record_power_samples(resource_id="r1", samples=samples, report_id="p2") == 0
    other = store.power_readings(resource_id="r1", start=T0, end=T0 + timedelta(hours=1))
    np.testing.assert_array_equal(other.cumulative_kwh, [6.0, 7.0])

    with pytest.raises(ValueError, match=r"power_w\[1\] must be finite and in \[0, 1e\+10\]"):
        store.record_power_readings(
            resource_ids="r0", timestamps=stamps, power_w=[1.0, -1.0, 1.0], source="measured"
        )
    with pytest.raises(ValueError, match="power_w must have 3 elements"):
        store.record_power_readings(
            resource_ids="r0", timestamps=stamps, power_w=[1.0, 1.0], source="measured"
        )
    with pytest.raises(ValueError, match=r"source\[0\] must be 'measured' or 'estimated'"):
        store.record_power_readings(
            resource_ids="r0", timestamps=stamps[:1], power_w=[1.0], source=["metered"]
        )


def test_meter_slots_upsert_and_matrix(store: ServicerStore) -> None:
    _register(store, 3)
    day = datetime(2026, 7, 1, tzinfo=JST)
    slot = SLOT
    starts = [day, day + slot, day + 3 * slot]
    assert (
        store.upsert_meter_slots(
            resource_ids=["r0", "r0", "r1"],
            slot_starts=[*starts[:2], day],
            energy_kwh=[0.5, 0.25, 1.0],
            source="smart_meter",
            updated_at=T0,
        )
        == 3
    )
    # the same values again: no change; one corrected value: one row
    assert (
        store.upsert_meter_slots(
            resource_ids=["r0", "r0"],
            slot_starts=starts[:2],
            energy_kwh=[0.5, 0.25],
            source="smart_meter",
        )
        == 0
    )
    assert (
        store.upsert_meter_slots(
            resource_ids="r0", slot_starts=[starts[2]], energy_kwh=[0.75], source="smart_meter"
        )
        == 1
    )
    assert (
        store.upsert_meter_slots(
            resource_ids="r0", slot_starts=[day + slot], energy_kwh=[0.3], source="smart_meter"
        )
        == 1
    )
    m = store.meter_slots(resource_ids=["r2", "r0", "r1"], start=day, end=day + 4 * slot)
    assert m.resource_ids == ("r2", "r0", "r1")
    assert m.slot_starts == tuple(day + k * slot for k in range(4))
    expected = np.array(
        [
            [np.nan, np.nan, np.nan, np.nan],
            [0.5, 0.3, np.nan, 0.75],
            [1.0, np.nan, np.nan, np.nan],
        ]
    )
    np.testing.assert_array_equal(m.energy_kwh, expected)
    assert int(m.present.sum()) == 4

    with pytest.raises(ValueError, match=r"slot_starts\[1\] must be aligned to a 30-minute slot"):
        store.upsert_meter_slots(
            resource_ids="r0",
            slot_starts=[day, day + timedelta(minutes=10)],
            energy_kwh=[1.0, 1.0],
            source="smart_meter",
        )
    with pytest.raises(ValueError, match=r"energy_kwh\[0\] must be finite and in \[0, "):
        store.upsert_meter_slots(
            resource_ids="r0", slot_starts=[day], energy_kwh=[np.inf], source="smart_meter"
        )


def test_tracking_run_points_round_trip(store: ServicerStore) -> None:
    run_id = store.create_tracking_run(
        started_at=T0, offered_kw=100.0, tolerance_share=0.1, step_s=0.5, label="u1-test"
    )
    t_s = np.arange(6) * 0.5
    command = np.array([100.0, 90.0, 80.0, 110.0, 100.0, 95.0])
    heater = np.array([60.0, 60.0, 55.0, 70.0, 65.0, 60.0])
    battery = command - heater
    soc = 10.0 - np.cumsum(battery) * 0.5 / 3600.0
    n = store.add_tracking_points(
        run_id=run_id,
        t_s=t_s,
        command_kw=command,
        heater_kw=heater,
        battery_kw=battery,
        output_kw=heater + battery,
        soc_kwh=soc,
        heater_source=["measured", "measured", "planned", "planned", "measured", "measured"],
    )
    assert n == 6
    assert (
        store.add_tracking_points(
            run_id=run_id,
            t_s=t_s[:2],
            command_kw=[0.0, 0.0],
            heater_kw=[0.0, 0.0],
            battery_kw=[0.0, 0.0],
            output_kw=[0.0, 0.0],
            soc_kwh=[0.0, 0.0],
            heater_source="planned",
        )
        == 0
    )
    series = store.tracking_points(run_id)
    np.testing.assert_array_equal(series.t_s, t_s)
    np.testing.assert_array_equal(series.command_kw, command)
    np.testing.assert_array_equal(series.output_kw, command)
    np.testing.assert_allclose(series.soc_kwh, soc, rtol=0, atol=0)
    assert series.heater_measured.tolist() == [True, True, False, False, True, True]
    assert series.t[1] - series.t[0] == timedelta(milliseconds=500)
    assert series.run.offered_kw == 100.0 and series.run.label == "u1-test"
    with pytest.raises(ValueError, match="tolerance_share must be finite and in"):
        store.create_tracking_run(
            started_at=T0, offered_kw=1.0, tolerance_share=1.5, step_s=1.0, label="x"
        )
    with pytest.raises(ValueError, match="run_id 999 does not exist"):
        store.tracking_points(999)


# ---------------------------------------------------------------------- restart survival


def test_everything_survives_a_new_engine_on_the_same_url(db_url: str) -> None:
    first = ServicerStore.open(db_url)
    ids = _register(first, 2)
    did = _dispatch(first, ids, [1.5, 2.5])
    record = first.get_dispatch(did)
    assert record is not None
    a0, a1 = (x.id for x in record.assignments)
    first.mark_assignment_sent(assignment_id=a0, event_id="ev0", sent_at=T0)
    first.mark_assignment_sent(assignment_id=a1, event_id="ev1", sent_at=T0)
    first.record_response(
        event_id="ev0",
        status="accepted",
        accepted_kwh=1.5,
        report_id="rep0",
        responded_at=T0 + timedelta(minutes=1),
    )
    first.mark_processed(report_id="rep0", kind="plan")
    before = first.open_dispatches()
    first.close()

    second = ServicerStore.open(db_url)
    try:
        after = second.open_dispatches()
        assert after == before
        assert [x.status for x in after[0].assignments] == [
            AssignmentStatus.ACCEPTED,
            AssignmentStatus.SENT,
        ]
        assert after[0].target == {"energy_kwh": 4.0}
        assert after[0].status is DispatchStatus.OPEN
        assert not second.mark_processed(report_id="rep0", kind="plan")
        assert [w.event_id for w in second.awaiting_response(sent_before=T0 + timedelta(1))] == [
            "ev1"
        ]
    finally:
        second.close()


_CHILD = r"""
import os, signal, sys
from datetime import datetime, timedelta, timezone
from sqlalchemy import text
from drready.servicer.storage.db import WRITE_OPTION
from drready.servicer.storage.store import ServicerStore

T0 = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=9)))
store = ServicerStore.open(sys.argv[1])
reg = store.registry()
reg.upsert_ven(ven_id="v1", ven_name="gw-1", route="gateway", at=T0)
for i in range(2):
    reg.upsert_resource(resource_id=f"r{i}", ven_id="v1", resource_name=f"000005:HW{i:07d}",
                        kind="unit", rated_power_kw=1.5)
did = store.create_dispatch(label="d", direction="up", window_start=T0,
                            window_end=T0 + timedelta(hours=1), target_kind="energy",
                            target={"energy_kwh": 3.0}, assignments=[("r0", 1.0), ("r1", 2.0)])
a0, a1 = (a.id for a in store.get_dispatch(did).assignments)
store.mark_assignment_sent(assignment_id=a0, event_id="ev0", sent_at=T0)
store.mark_assignment_sent(assignment_id=a1, event_id="ev1", sent_at=T0)
store.record_response(event_id="ev0", status="partial", accepted_kwh=0.5, report_id="rep0",
                      responded_at=T0, reason="tank full")
store.mark_processed(report_id="rep0", kind="plan")
print("committed", flush=True)
# killed in the middle of the next write: the half-done transaction must leave no trace
with store.engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
    conn.execute(text("UPDATE assignment SET status = 'cancelled'"))
    conn.execute(text("DELETE FROM processed_report"))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_servicer_loses_nothing_committed_and_keeps_nothing_half_done(
    db_url: str,
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, db_url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_SRC)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip() == "committed"
    store = ServicerStore.open(db_url)
    try:
        (dispatch,) = store.open_dispatches()
        got = [(x.event_id, x.status, x.accepted_kwh, x.reason) for x in dispatch.assignments]
        assert got == [
            ("ev0", AssignmentStatus.PARTIAL, 0.5, "tank full"),
            ("ev1", AssignmentStatus.SENT, None, None),
        ]
        assert store.is_processed("rep0")
        # recovery continues: the answer that was pending arrives after the restart
        assert (
            store.record_response(
                event_id="ev1",
                status="accepted",
                accepted_kwh=2.0,
                report_id="rep1",
                responded_at=T0 + timedelta(minutes=3),
            )
            is ResponseOutcome.RECORDED
        )
        # and the report processed before the crash is still recognised
        assert (
            store.record_response(
                event_id="ev0",
                status="partial",
                accepted_kwh=0.5,
                report_id="rep0",
                responded_at=T0,
            )
            is ResponseOutcome.DUPLICATE
        )
    finally:
        store.close()


# ---------------------------------------------------------------------- bad input


_BAD_CALLS: list[tuple[Callable[[ServicerStore], object], str]] = [
    (
        lambda s: s.create_dispatch(
            label="x",
            direction="sideways",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            target_kind="energy",
            target={},
        ),
        "direction must be one of 'up', 'down'",
    ),
    (
        lambda s: s.create_dispatch(
            label="x",
            direction="up",
            window_start=T0,
            window_end=T0,
            target_kind="energy",
            target={},
        ),
        "window_end must be after window_start",
    ),
    (
        lambda s: s.create_dispatch(
            label="x",
            direction="up",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            target_kind="volts",
            target={},
        ),
        "target_kind must be one of 'energy', 'power', 'price'",
    ),
    (
        lambda s: s.create_dispatch(
            label="x",
            direction="up",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            target_kind="energy",
            target={"energy_kwh": float("nan")},
        ),
        "target must be JSON",
    ),
    (
        lambda s: s.create_dispatch(
            label="x",
            direction="up",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            target_kind="energy",
            target={},
            assignments=[("r0", -1.0)],
        ),
        r"assignments\[0\].requested_kwh must be finite and in \(0, ",
    ),
    (
        lambda s: s.record_potentials(
            request_id="pr",
            report_id="rep",
            potentials=[PotentialInput("r0", up_kwh=1.0, down_kwh=1.0, confidence=1.2)],
        ),
        r"potentials\[0\].confidence must be finite and in \[0, 1\]",
    ),
    (
        lambda s: s.mark_processed(report_id="", kind="plan"),
        "report_id must be 1–128 printable characters",
    ),
    (
        lambda s: s.meter_slots(
            resource_ids=["r0"], start=T0 + timedelta(minutes=15), end=T0 + timedelta(hours=1)
        ),
        "start must be aligned to a 30-minute slot boundary",
    ),
]


def test_bad_input_names_the_field_and_writes_nothing(store: ServicerStore) -> None:
    _register(store, 1)
    store.record_potential_request(request_id="pr", window_start=T0, window_end=T0 + SLOT_2)
    before = store.counts()
    for call, message in _BAD_CALLS:
        with pytest.raises(ValueError, match=message):
            call(store)
    assert store.counts() == before
