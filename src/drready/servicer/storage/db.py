"""The servicer's own tables: its business records, apart from the VTN's OpenADR objects
(D6 registry, U1/U2 dispatch and command following, F1/F2/F5 records, S1 data at rest).

The VTN keeps the OpenADR objects it serves (``drready.openadr.vtn.store``); the servicer keeps
what it decides and what settlement needs, keyed by the VTN's ids:

==========================  ================================================================
table                       one row per
==========================  ================================================================
``ven``                     VEN (a home gateway, route i, or a maker cloud, route ii)
``resource``                resource of a VEN: one unit (DeviceId) or a group ("FLEET-000005", D6)
``market_registration``     resource's market registration, AES-256-GCM ciphertext only
``potential_request``       potential (F1) request event sent to the VENs
``potential``               (request, resource) answer: up/down kWh, confidence, slots
``dispatch``                DR dispatch of the portfolio (a window and a target)
``assignment``              (dispatch, resource, round) share of a dispatch, its VTN event
                            and the resource's answer (F2)
``power_reading``           (resource, instant) power sample (F5)
``meter_slot``              (resource, 30-minute slot) metered energy (settlement)
``processed_report``        VTN report already processed (idempotent report handling)
``tracking_run``            command-following run (U1)
``tracking_point``          (run, instant) point of a command-following run
``dr_order``                order of the north-bound API (a direction, a window, an amount),
                            its idempotency key, status and the dispatch it became (U2)
``scheduler_job``           job of the service's schedule: its last due instant and outcome
``settlement``              dispatch settled from meter data: the result (JSON) and its CSV
==========================  ================================================================

The ``status`` columns of ``dispatch``, ``assignment`` and ``dr_order`` hold the states of
:mod:`drready.servicer.storage.lifecycle`, whose transition tables say how they may change.

Instants are stored in UTC and read back as timezone-aware UTC datetimes on SQLite and
PostgreSQL alike (:class:`UtcDateTime`); naive datetimes are refused. Every constraint and index
has an explicit name, so the shipped migrations (``drready.servicer.storage.migrations``) and these
models can be compared exactly.

:func:`make_engine` opens a SQLite file (WAL journal, foreign keys on, real transactions for DDL
too, ``BEGIN IMMEDIATE`` for writers) or PostgreSQL (``postgresql+psycopg://…``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

# The values of the ``status`` columns below; defined, with how they change, in ``lifecycle``.
from drready.servicer.storage.lifecycle import AssignmentStatus, DispatchStatus, OrderStatus

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_DATABASE_URL",
    "ID_LENGTH",
    "WRITE_OPTION",
    "Assignment",
    "Base",
    "Dispatch",
    "HeaterSource",
    "MarketRegistrationRow",
    "MeterSlot",
    "Order",
    "Potential",
    "PotentialRequest",
    "PowerReading",
    "ProcessedReport",
    "QuarantineReason",
    "QuarantinedReport",
    "Resource",
    "ResourceKind",
    "ResourceState",
    "SchedulerJob",
    "SettlementRow",
    "TargetKind",
    "TrackingPoint",
    "TrackingRun",
    "UtcDateTime",
    "Ven",
    "VenRoute",
    "database_url",
    "dialect_insert",
    "make_engine",
    "table_names",
    "utc_now",
]

#: Environment variable holding the servicer's database URL.
ENV_DATABASE_URL = "DRREADY_SERVICER_DATABASE_URL"
#: Default database: a SQLite file in the working directory (like the VTN's ``drready-vtn.db``).
DEFAULT_DATABASE_URL = "sqlite:///drready-servicer.db"
#: Longest VTN object id stored (ven, resource, event and report ids) [characters].
ID_LENGTH = 128
#: Execution option marking a write transaction (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "drready_write"


class VenRoute(StrEnum):
    """How a VEN reaches the servicer."""

    GATEWAY = "gateway"
    """Route i: a home gateway speaking ECHONET Lite to the units of one home."""
    CLOUD = "cloud"
    """Route ii: a maker cloud for many units."""


class ResourceKind(StrEnum):
    """What a resource stands for (D6)."""

    UNIT = "unit"
    """One water heater; the resource name is its DeviceId string."""
    GROUP = "group"
    """A group of units managed behind the VEN (a maker cloud's "FLEET-<maker code>")."""


class ResourceState(StrEnum):
    """Whether the servicer dispatches to a resource."""

    ACTIVE = "active"
    OFFLINE = "offline"
    RETIRED = "retired"


class QuarantineReason(StrEnum):
    """Why the servicer set a VEN's report or resource aside instead of using it (S1: trust no
    peer; issue 12 item 2)."""

    UNREADABLE = "unreadable"
    """It does not follow the profile (e.g. an interval without BASELINE, a name that is no
    DeviceId, a value that is no number)."""
    IMPLAUSIBLE = "implausible"
    """A value is not finite, negative where it cannot be, or beyond what the resource's rating
    can do over the window."""
    UNKNOWN_RESOURCE = "unknown_resource"
    """It speaks for a resource the registry does not have."""
    NOT_OWNER = "not_owner"
    """The posting client does not own the resource in the registry (another VEN's resource,
    or a resource named like another VEN's)."""
    NOT_OUR_EVENT = "not_our_event"
    """A plan or power report that answers no event the servicer created for that resource."""
    REFUSED = "refused"
    """The registry or a store refused it (a bad rating, a conflicting name)."""


class TargetKind(StrEnum):
    """What a dispatch's target is: an energy over the window, a power, or a price signal."""

    ENERGY = "energy"
    POWER = "power"
    PRICE = "price"


class HeaterSource(StrEnum):
    """Whether a tracking point's heater power was measured (F5) or taken from the plan."""

    MEASURED = "measured"
    PLANNED = "planned"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v.value}'" for v in values) + ")"


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant stored in UTC.

    PostgreSQL: ``timestamp with time zone``. SQLite (no time zones): the naive UTC wall time,
    whose text form sorts like the instants. Binding a naive datetime raises ``ValueError``;
    results are aware UTC datetimes on both backends.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"instants must be timezone-aware (e.g. +09:00), got naive {value.isoformat()}"
            )
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_ID = String(ID_LENGTH)
#: Auto-incremented 64-bit keys (SQLite's rowid alias must be spelled INTEGER).
_SERIAL = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base of the servicer tables (a metadata of their own, apart from the VTN)."""

    metadata = MetaData()


class Ven(Base):
    """A VEN known to the VTN: a home gateway or a maker cloud."""

    __tablename__ = "ven"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_ven"),
        UniqueConstraint("ven_name", name="uq_ven_ven_name"),
        CheckConstraint(_in("route", VenRoute), name="ck_ven_route"),
        Index("ix_ven_client_id", "client_id"),
    )

    id: Mapped[str] = mapped_column(_ID)
    ven_name: Mapped[str] = mapped_column(_ID)
    route: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(_ID)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Resource(Base):
    """A resource of a VEN: one unit or a group of units, with its rating."""

    __tablename__ = "resource"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_resource"),
        UniqueConstraint("ven_id", "resource_name", name="uq_resource_ven_id_resource_name"),
        CheckConstraint(_in("kind", ResourceKind), name="ck_resource_kind"),
        CheckConstraint(_in("state", ResourceState), name="ck_resource_state"),
        CheckConstraint("n_units >= 1", name="ck_resource_n_units"),
        CheckConstraint("rated_power_kw > 0", name="ck_resource_rated_power_kw"),
        Index("ix_resource_state", "state"),
    )

    id: Mapped[str] = mapped_column(_ID)
    ven_id: Mapped[str] = mapped_column(ForeignKey("ven.id", name="fk_resource_ven_id_ven"))
    resource_name: Mapped[str] = mapped_column(_ID)
    kind: Mapped[str] = mapped_column(String(8))
    n_units: Mapped[int] = mapped_column(Integer)
    rated_power_kw: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16))
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MarketRegistrationRow(Base):
    """A resource's market registration, encrypted (``drready.servicer.storage.crypto``); no
    plaintext."""

    __tablename__ = "market_registration"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", name="pk_market_registration"),
        Index("ix_market_registration_key_id", "key_id"),
    )

    resource_id: Mapped[str] = mapped_column(
        ForeignKey(
            "resource.id", name="fk_market_registration_resource_id_resource", ondelete="CASCADE"
        )
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PotentialRequest(Base):
    """A potential (F1) request: the VTN event asking the VENs for their DR potential."""

    __tablename__ = "potential_request"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_potential_request"),
        Index("ix_potential_request_window_start", "window_start"),
    )

    id: Mapped[str] = mapped_column(_ID)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Potential(Base):
    """One resource's answer to a potential request (from a VEN report)."""

    __tablename__ = "potential"
    __table_args__ = (
        PrimaryKeyConstraint("request_id", "resource_id", name="pk_potential"),
        Index("ix_potential_resource_id", "resource_id"),
    )

    request_id: Mapped[str] = mapped_column(
        ForeignKey(
            "potential_request.id",
            name="fk_potential_request_id_potential_request",
            ondelete="CASCADE",
        )
    )
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resource.id", name="fk_potential_resource_id_resource")
    )
    up_kwh: Mapped[float] = mapped_column(Double)
    down_kwh: Mapped[float] = mapped_column(Double)
    confidence: Mapped[float] = mapped_column(Double)
    slots: Mapped[Any] = mapped_column(JSON, nullable=True)
    report_id: Mapped[str] = mapped_column(_ID)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Dispatch(Base):
    """A DR dispatch of the portfolio: direction, window and target."""

    __tablename__ = "dispatch"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_dispatch"),
        CheckConstraint("direction IN ('up', 'down')", name="ck_dispatch_direction"),
        CheckConstraint(_in("target_kind", TargetKind), name="ck_dispatch_target_kind"),
        CheckConstraint(_in("status", DispatchStatus), name="ck_dispatch_status"),
        Index("ix_dispatch_status", "status"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, autoincrement=True)
    label: Mapped[str] = mapped_column(_ID)
    direction: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())
    target_kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(8))


class Assignment(Base):
    """A resource's share of a dispatch in one round, its VTN event and the answer."""

    __tablename__ = "assignment"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_assignment"),
        UniqueConstraint("event_id", name="uq_assignment_event_id"),
        UniqueConstraint(
            "dispatch_id",
            "resource_id",
            "round",
            name="uq_assignment_dispatch_id_resource_id_round",
        ),
        CheckConstraint(_in("status", AssignmentStatus), name="ck_assignment_status"),
        CheckConstraint("round >= 1", name="ck_assignment_round"),
        CheckConstraint("requested_kwh > 0", name="ck_assignment_requested_kwh"),
        CheckConstraint(
            "accepted_kwh IS NULL OR accepted_kwh >= 0", name="ck_assignment_accepted_kwh"
        ),
        Index("ix_assignment_resource_id", "resource_id"),
        Index("ix_assignment_status_sent_at", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(
        ForeignKey("dispatch.id", name="fk_assignment_dispatch_id_dispatch", ondelete="CASCADE")
    )
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resource.id", name="fk_assignment_resource_id_resource")
    )
    round: Mapped[int] = mapped_column(Integer)
    requested_kwh: Mapped[float] = mapped_column(Double)
    event_id: Mapped[str | None] = mapped_column(_ID)
    status: Mapped[str] = mapped_column(String(16))
    accepted_kwh: Mapped[float | None] = mapped_column(Double)
    reason: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    report_id: Mapped[str | None] = mapped_column(_ID)


class PowerReading(Base):
    """A power sample of a resource (F5)."""

    __tablename__ = "power_reading"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "timestamp", name="pk_power_reading"),
        CheckConstraint("source IN ('measured', 'estimated')", name="ck_power_reading_source"),
    )

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resource.id", name="fk_power_reading_resource_id_resource")
    )
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    power_w: Mapped[float] = mapped_column(Double)
    cumulative_kwh: Mapped[float | None] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(16))
    report_id: Mapped[str | None] = mapped_column(_ID)


class MeterSlot(Base):
    """Metered energy of a resource in one 30-minute slot (settlement)."""

    __tablename__ = "meter_slot"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "slot_start", name="pk_meter_slot"),
        Index("ix_meter_slot_slot_start", "slot_start"),
    )

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resource.id", name="fk_meter_slot_resource_id_resource")
    )
    slot_start: Mapped[datetime] = mapped_column(UtcDateTime())
    energy_kwh: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ProcessedReport(Base):
    """A VTN report the servicer has processed (so processing it again is skipped)."""

    __tablename__ = "processed_report"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_processed_report"),)

    id: Mapped[str] = mapped_column(_ID)
    kind: Mapped[str] = mapped_column(String(32))
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class QuarantinedReport(Base):
    """A VEN's report (or resource, at sync) set aside, with the reason (S1; issue 12 item 2).

    One row per report, resource and reason: the same report read again adds nothing.
    ``resource_name`` is ``""`` for a report as a whole; names and details are stored as
    printable text, cut to their column (a hostile VEN chooses them).
    """

    __tablename__ = "quarantined_report"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_quarantined_report"),
        UniqueConstraint(
            "report_id",
            "resource_name",
            "reason",
            name="uq_quarantined_report_report_id_resource_name_reason",
        ),
        CheckConstraint(_in("reason", QuarantineReason), name="ck_quarantined_report_reason"),
        Index("ix_quarantined_report_quarantined_at", "quarantined_at"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, autoincrement=True)
    report_id: Mapped[str] = mapped_column(_ID)
    """The VTN's report id (``resource:<id>`` for a resource refused at sync)."""
    kind: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str | None] = mapped_column(_ID)
    resource_name: Mapped[str] = mapped_column(_ID)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TrackingRun(Base):
    """A command-following run (U1): the offered power and its tolerance."""

    __tablename__ = "tracking_run"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_tracking_run"),)

    id: Mapped[int] = mapped_column(_SERIAL, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    offered_kw: Mapped[float] = mapped_column(Double)
    tolerance_share: Mapped[float] = mapped_column(Double)
    step_s: Mapped[float] = mapped_column(Double)
    label: Mapped[str] = mapped_column(_ID)


class TrackingPoint(Base):
    """One instant of a command-following run."""

    __tablename__ = "tracking_point"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "t", name="pk_tracking_point"),
        CheckConstraint(_in("heater_source", HeaterSource), name="ck_tracking_point_heater_source"),
    )

    run_id: Mapped[int] = mapped_column(
        ForeignKey(
            "tracking_run.id", name="fk_tracking_point_run_id_tracking_run", ondelete="CASCADE"
        )
    )
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    command_kw: Mapped[float] = mapped_column(Double)
    heater_kw: Mapped[float] = mapped_column(Double)
    battery_kw: Mapped[float] = mapped_column(Double)
    output_kw: Mapped[float] = mapped_column(Double)
    soc_kwh: Mapped[float] = mapped_column(Double)
    heater_source: Mapped[str] = mapped_column(String(16))


class Order(Base):
    """An order of the north-bound API: what to deliver, its status, the dispatch it became."""

    __tablename__ = "dr_order"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_dr_order"),
        UniqueConstraint(
            "client_id", "idempotency_key", name="uq_dr_order_client_id_idempotency_key"
        ),
        CheckConstraint("direction IN ('up', 'down')", name="ck_dr_order_direction"),
        CheckConstraint(_in("status", OrderStatus), name="ck_dr_order_status"),
        CheckConstraint("target_kwh >= 0", name="ck_dr_order_target_kwh"),
        Index("ix_dr_order_status", "status"),
        Index("ix_dr_order_window_start", "window_start"),
    )

    id: Mapped[str] = mapped_column(String(36))
    client_id: Mapped[str] = mapped_column(_ID)
    idempotency_key: Mapped[str | None] = mapped_column(_ID)
    request_hash: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())
    energy_kwh: Mapped[float | None] = mapped_column(Double)
    power_kw: Mapped[Any] = mapped_column(JSON, nullable=True)
    target_kwh: Mapped[float] = mapped_column(Double)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    potential_request_id: Mapped[str | None] = mapped_column(
        ForeignKey(
            "potential_request.id", name="fk_dr_order_potential_request_id_potential_request"
        )
    )
    potential_asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dispatch_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispatch.id", name="fk_dr_order_dispatch_id_dispatch")
    )
    figures: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SchedulerJob(Base):
    """A job of the service's schedule: the due instant it last ran for, and how it went."""

    __tablename__ = "scheduler_job"
    __table_args__ = (PrimaryKeyConstraint("name", name="pk_scheduler_job"),)

    name: Mapped[str] = mapped_column(String(64))
    last_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SettlementRow(Base):
    """A dispatch settled from 30-minute meter data (U2): the result and its CSV."""

    __tablename__ = "settlement"
    __table_args__ = (
        PrimaryKeyConstraint("dispatch_id", name="pk_settlement"),
        Index("ix_settlement_event_day", "event_day"),
    )

    dispatch_id: Mapped[int] = mapped_column(
        ForeignKey("dispatch.id", name="fk_settlement_dispatch_id_dispatch", ondelete="CASCADE")
    )
    event_day: Mapped[date] = mapped_column(Date)
    """Local date of the event window."""
    settled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    result: Mapped[Any] = mapped_column(JSON)
    csv: Mapped[str] = mapped_column(Text)


def table_names() -> frozenset[str]:
    """Names of the servicer's tables (what its migrations own)."""
    return frozenset(Base.metadata.tables)


def database_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The database URL: ``url``, else ``$DRREADY_SERVICER_DATABASE_URL``, else a SQLite file."""
    return url or env.get(ENV_DATABASE_URL) or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None) -> Engine:
    """An engine for the servicer's database (:func:`database_url` picks the URL).

    SQLite file: WAL journal (readers never wait for the writer), ``synchronous=NORMAL``,
    ``foreign_keys=ON``, a 10 s busy timeout, and transactions that the driver would otherwise
    leave out: DDL runs inside them (migrations are atomic) and a connection opened with the
    execution option :data:`WRITE_OPTION` begins ``IMMEDIATE``, so a writer waits for the lock
    up front instead of failing when it upgrades a read. PostgreSQL: a pre-pinged pool.
    """
    resolved = make_url(database_url(url))
    kwargs: dict[str, Any] = {}
    sqlite = resolved.get_backend_name() == "sqlite"
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False}
        if resolved.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_pre_ping=True, pool_size=8, max_overflow=16, pool_timeout=10)
    engine = create_engine(resolved, **kwargs)
    if sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" event then emits BEGIN itself, so
    # every statement (DDL included) runs inside the transaction SQLAlchemy thinks it has.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dialect_insert(connection: Connection, table: Table) -> Any:
    """An ``INSERT`` with ``on_conflict_do_nothing``/``on_conflict_do_update`` for the
    connection's backend (SQLite and PostgreSQL spell them alike)."""
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"database backend {name!r} is not supported (use SQLite or PostgreSQL)")
