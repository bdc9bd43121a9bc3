"""Storage of the VTN's OpenADR objects (C1, S1 privacy filters in SQL, D6 ven/resource groups).

A document store in two tables, for SQLite and PostgreSQL alike (SQLAlchemy 2):

* ``oadr_object``: one row per program, event, report, subscription, ven or resource. ``body``
  holds the object exactly as the VTN returns it: its wire JSON text in the canonical form of
  :func:`wire_json` (the engine's JSON serialiser), so list reads answer the stored text as it
  is, without decoding and re-encoding it (:func:`list_wire`); the other columns are copies of
  what the API filters on (``object_type``, ``client_id``, ``name``, ``program_id``,
  ``event_id``, ``ven_id``, ``objects`` of subscriptions, ``ends_at`` of events) with indexes,
  ``unique_key`` enforces the name rules of Definition.md "Object names", and ``seq`` (the
  primary key, monotonically increasing) gives list answers a stable order for ``skip``/``limit``.
* ``oadr_target``: one row per (object, target) so target filters and targeting run in SQL.

All functions are keyword-only and take the session; they flush but never commit.

:class:`RawStore` runs the statements of the hottest requests (a VEN listing its events,
a VEN posting a report, a VEN's client creating a resource) on pooled DBAPI connections
instead, compiled once per engine from the same SQLAlchemy statements, and commits posted
reports and resources in groups (one transaction per turn of the event loop); on SQLite it
orders those writes among worker processes with an ``flock`` on
``<database>-drready-write.lock`` beside the database file.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar, cast

from pydantic_core import to_json
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    false,
    or_,
    select,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine.interfaces import DBAPICursor, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.elements import TextClause

__all__ = [
    "Base",
    "Filters",
    "RawStore",
    "ResourceOutcome",
    "StoredObject",
    "StoredTarget",
    "WireRow",
    "create_all",
    "create_object",
    "delete_object",
    "get_object",
    "get_program_id",
    "granted_among",
    "list_bodies",
    "list_objects",
    "list_wire",
    "new_object_id",
    "targets_of_vens",
    "update_object",
    "visible_event_program_id",
    "wire_json",
]


def wire_json(value: Any) -> str:
    """``value`` (JSON-ready) as compact JSON text: the bytes the VTN answers for it.

    The engine's ``json_serializer`` (:func:`drready.openadr.vtn.app.make_engine`): what the
    ``body`` column holds is byte for byte what :func:`drready.openadr.vtn.deps.json_response`
    sends for the same object (pydantic-core's JSON: no whitespace, UTF-8 kept as is), so a
    stored body can be answered without a decode/encode round trip. Rows written by an engine
    with another serialiser (older versions: ``json.dumps``) still decode to the same objects;
    answered raw they differ only in insignificant whitespace and escapes.
    """
    return to_json(value).decode()


class Base(DeclarativeBase):
    """Declarative base of the VTN tables."""


class StoredObject(Base):
    """One OpenADR object (see the module docstring)."""

    __tablename__ = "oadr_object"
    # Lists are "WHERE object_type = ? … ORDER BY seq LIMIT n": with (object_type, seq) the
    # database walks one type's rows in order whatever its statistics say. With object_type
    # alone, PostgreSQL on stale statistics (21 000 reports posted since the last ANALYZE, as
    # after the load benchmark's POST rows) walked the primary key through every report to list
    # 20 events: 3.2 ms instead of 0.17 ms per GET /events query, growing with the reports,
    # until autovacuum analyzes the table.
    __table_args__ = (Index("ix_oadr_object_type_seq", "object_type", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(128), unique=True)
    object_type: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(128), index=True)
    name: Mapped[str | None] = mapped_column(String(128), index=True)
    unique_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    program_id: Mapped[str | None] = mapped_column(String(128), index=True)
    event_id: Mapped[str | None] = mapped_column(String(128), index=True)
    ven_id: Mapped[str | None] = mapped_column(String(128), index=True)
    objects: Mapped[str | None] = mapped_column(String(128))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(), index=True)
    targets: Mapped[list[str]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime())
    modified: Mapped[datetime] = mapped_column(DateTime())

    # Loaded only when needed (replacing or deleting an object's targets): reads use the
    # ``targets`` column, and an eager "selectin" load cost a second query on every read.
    target_rows: Mapped[list[StoredTarget]] = relationship(
        cascade="all, delete-orphan", lazy="select"
    )


class StoredTarget(Base):
    """One target of one object."""

    __tablename__ = "oadr_target"

    object_seq: Mapped[int] = mapped_column(
        ForeignKey("oadr_object.seq", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


_OBJECTS = cast(Table, StoredObject.__table__)
_TARGETS = cast(Table, StoredTarget.__table__)


def create_all(engine: Engine) -> None:
    """Create the tables and any index they lack (idempotent: a database made by an earlier
    version gets the indexes added since)."""
    Base.metadata.create_all(engine)
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def new_object_id() -> str:
    """A fresh object ID: 22 url-safe characters, matching objectID ``^[a-zA-Z0-9_-]*$``."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Filters:
    """Row filters of :func:`list_objects`; ``None`` means 'no filter'. All are ANDed.

    ``targets_any``: the object has at least one of these targets; with
    ``include_untargeted`` objects without any target also pass.
    ``objects_any``: subscriptions whose objectOperations name one of these object types.
    ``ends_after``: events whose end is later than this (or open-ended).
    """

    client_id: str | None = None
    name: str | None = None
    program_id: str | None = None
    event_id: str | None = None
    ven_id: str | None = None
    targets_any: frozenset[str] | None = None
    include_untargeted: bool = False
    objects_any: frozenset[str] | None = None
    ends_after: datetime | None = None


def _naive_utc(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None:
        return value
    return (value - offset).replace(tzinfo=None)


def _set_targets(row: StoredObject, targets: Collection[str]) -> None:
    unique = list(dict.fromkeys(targets))
    row.targets = unique
    row.target_rows = [StoredTarget(target=t) for t in unique]


def create_object(
    *,
    session: Session,
    object_id: str,
    object_type: str,
    body: dict[str, Any],
    created: datetime,
    client_id: str | None = None,
    name: str | None = None,
    unique_key: str | None = None,
    program_id: str | None = None,
    event_id: str | None = None,
    ven_id: str | None = None,
    objects: Collection[str] = (),
    ends_at: datetime | None = None,
    targets: Collection[str] = (),
) -> None:
    """Insert an object (at once, so a unique-name clash raises ``IntegrityError`` here).

    Two Core inserts on the session's connection (object, then its target rows) rather than an
    ORM unit of work: nobody reads the new row back through the session, and the flush
    machinery cost more than the inserts.
    """
    connection = session.connection()
    result = connection.execute(
        _OBJECTS.insert(),
        {
            "id": object_id,
            "object_type": object_type,
            "client_id": client_id,
            "name": name,
            "unique_key": unique_key,
            "program_id": program_id,
            "event_id": event_id,
            "ven_id": ven_id,
            "objects": _objects_text(objects),
            "ends_at": None if ends_at is None else _naive_utc(ends_at),
            "targets": list(dict.fromkeys(targets)),
            "body": body,
            "created": _naive_utc(created),
            "modified": _naive_utc(created),
        },
    )
    unique = list(dict.fromkeys(targets))
    if unique:
        key = result.inserted_primary_key
        if key is None:  # pragma: no cover - every dialect reports the autoincrement key
            raise RuntimeError("insert did not report the new object's seq")
        seq = key[0]
        connection.execute(_TARGETS.insert(), [{"object_seq": seq, "target": t} for t in unique])


def _objects_text(objects: Collection[str]) -> str | None:
    return "," + ",".join(sorted(set(objects))) + "," if objects else None


def update_object(
    *,
    session: Session,
    row: StoredObject,
    body: dict[str, Any],
    modified: datetime,
    client_id: str | None = None,
    name: str | None = None,
    unique_key: str | None = None,
    program_id: str | None = None,
    event_id: str | None = None,
    ven_id: str | None = None,
    objects: Collection[str] = (),
    ends_at: datetime | None = None,
    targets: Collection[str] = (),
) -> StoredObject:
    """Replace an object's body and index columns (id, type and ``seq`` stay)."""
    row.body = body
    row.client_id = client_id
    row.name = name
    row.unique_key = unique_key
    row.program_id = program_id
    row.event_id = event_id
    row.ven_id = ven_id
    row.objects = _objects_text(objects)
    row.ends_at = None if ends_at is None else _naive_utc(ends_at)
    row.modified = _naive_utc(modified)
    _set_targets(row, targets)
    session.flush()
    return row


def delete_object(*, session: Session, row: StoredObject) -> None:
    """Delete an object and its targets."""
    session.delete(row)
    session.flush()


_BY_ID_WHERE = (
    StoredObject.object_type == bindparam("object_type"),
    StoredObject.id == bindparam("object_id"),
)
_GET_OBJECT = select(StoredObject).where(*_BY_ID_WHERE)
_GET_PROGRAM_ID = select(StoredObject.program_id).where(*_BY_ID_WHERE)


def get_object(*, session: Session, object_type: str, object_id: str) -> StoredObject | None:
    """The object of this type and id, or ``None``."""
    params = {"object_type": object_type, "object_id": object_id}
    return session.scalars(_GET_OBJECT, params).one_or_none()


def _list_conditions(object_type: str, filters: Filters) -> list[Any]:
    conditions: list[Any] = [StoredObject.object_type == object_type]
    for column, value in (
        (StoredObject.client_id, filters.client_id),
        (StoredObject.name, filters.name),
        (StoredObject.program_id, filters.program_id),
        (StoredObject.event_id, filters.event_id),
        (StoredObject.ven_id, filters.ven_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if filters.targets_any is not None:
        matched = (
            exists().where(
                StoredTarget.object_seq == StoredObject.seq,
                StoredTarget.target.in_(sorted(filters.targets_any)),
            )
            if filters.targets_any
            else false()
        )
        if filters.include_untargeted:
            untargeted = ~exists().where(StoredTarget.object_seq == StoredObject.seq)
            conditions.append(or_(matched, untargeted))
        else:
            conditions.append(matched)
    if filters.objects_any is not None:
        conditions.append(
            or_(*(StoredObject.objects.contains(f",{o},") for o in sorted(filters.objects_any)))
            if filters.objects_any
            else false()
        )
    if filters.ends_after is not None:
        conditions.append(
            or_(
                StoredObject.ends_at.is_(None),
                StoredObject.ends_at > _naive_utc(filters.ends_after),
            )
        )
    return conditions


def get_program_id(
    *, session: Session, object_type: str, object_id: str
) -> tuple[str | None] | None:
    """``(program_id,)`` of the object of this type and id, or ``None`` if there is none.

    One column rather than the whole entity (no body decoding) for existence checks.
    """
    params = {"object_type": object_type, "object_id": object_id}
    row = session.connection().execute(_GET_PROGRAM_ID, params).one_or_none()
    return None if row is None else (row[0],)


def list_objects(
    *, session: Session, object_type: str, filters: Filters, skip: int, limit: int
) -> list[StoredObject]:
    """Objects of a type passing ``filters``, in creation order (``seq``), paged."""
    stmt = (
        select(StoredObject)
        .where(and_(*_list_conditions(object_type, filters)))
        .order_by(StoredObject.seq)
        .offset(skip)
        .limit(limit)
    )
    return list(session.scalars(stmt))


_FILTER_COLUMNS = ("client_id", "name", "program_id", "event_id", "ven_id")


@lru_cache(maxsize=256)
def _bodies_statement(
    object_type: str,
    columns: tuple[str, ...],
    targets: str,
    include_untargeted: bool,
    objects_any: tuple[str, ...] | None,
    ends_after: bool,
    raw: bool = False,
    n_targets: int | None = None,
) -> Any:
    # One statement object per filter shape, values as bind parameters: building a select costs
    # more than running it, and a reused statement hits SQLAlchemy's compiled cache directly.
    # ``raw``: body and targets as stored text (CAST to TEXT returns a SQLite TEXT value or a
    # PostgreSQL ``json`` value verbatim, with no JSON decoding). ``n_targets``: the target
    # filter as that many plain parameters ``f_target_<i>`` rather than one expanding IN, so the
    # statement compiles once to final SQL (:class:`RawStore`).
    conditions: list[Any] = [StoredObject.object_type == object_type]
    for name in columns:
        conditions.append(getattr(StoredObject, name) == bindparam(f"f_{name}"))
    if targets != "none":
        wanted = (
            bindparam("f_targets", expanding=True)
            if n_targets is None
            else [bindparam(f"f_target_{i}", type_=String) for i in range(n_targets)]
        )
        matched = (
            exists().where(
                StoredTarget.object_seq == StoredObject.seq,
                StoredTarget.target.in_(wanted),
            )
            if targets == "some"
            else false()
        )
        if include_untargeted:
            untargeted = ~exists().where(StoredTarget.object_seq == StoredObject.seq)
            conditions.append(or_(matched, untargeted))
        else:
            conditions.append(matched)
    if objects_any is not None:
        conditions.append(
            or_(*(StoredObject.objects.contains(f",{o},") for o in objects_any))
            if objects_any
            else false()
        )
    if ends_after:
        conditions.append(
            or_(StoredObject.ends_at.is_(None), StoredObject.ends_at > bindparam("f_ends_after"))
        )
    columns_out: tuple[Any, ...] = (
        (sql_cast(StoredObject.body, Text), sql_cast(StoredObject.targets, Text))
        if raw
        else (StoredObject.body,)
    )
    return (
        select(*columns_out)
        .where(and_(*conditions))
        .order_by(StoredObject.seq)
        .offset(bindparam("f_skip", type_=Integer))
        .limit(bindparam("f_limit", type_=Integer))
    )


_Shape = tuple[str, tuple[str, ...], str, bool, tuple[str, ...] | None, bool, bool, int | None]


def _bodies_query(
    object_type: str,
    filters: Filters,
    skip: int,
    limit: int,
    *,
    raw: bool,
    plain_targets: bool = False,
) -> tuple[_Shape, dict[str, Any]]:
    """The statement shape (:func:`_bodies_statement` arguments) and parameters of a list."""
    params: dict[str, Any] = {"f_skip": skip, "f_limit": limit}
    columns: list[str] = []
    for name in _FILTER_COLUMNS:
        value = getattr(filters, name)
        if value is not None:
            columns.append(name)
            params[f"f_{name}"] = value
    targets = "none"
    n_targets: int | None = None
    if filters.targets_any is not None:
        targets = "some" if filters.targets_any else "empty"
        if filters.targets_any:
            wanted = sorted(filters.targets_any)
            if plain_targets:
                n_targets = len(wanted)
                params.update({f"f_target_{i}": t for i, t in enumerate(wanted)})
            else:
                params["f_targets"] = wanted
    if filters.ends_after is not None:
        params["f_ends_after"] = _naive_utc(filters.ends_after)
    shape: _Shape = (
        object_type,
        tuple(columns),
        targets,
        filters.include_untargeted,
        None if filters.objects_any is None else tuple(sorted(filters.objects_any)),
        filters.ends_after is not None,
        raw,
        n_targets,
    )
    return shape, params


def list_bodies(
    *, session: Session, object_type: str, filters: Filters, skip: int, limit: int
) -> list[dict[str, Any]]:
    """The ``body`` of each object :func:`list_objects` would answer, in the same order.

    Selects the one column on the session's connection: no ORM entities are built (identity
    map, attribute state), which is most of a list request's database cost.
    """
    shape, params = _bodies_query(object_type, filters, skip, limit, raw=False)
    return list(session.connection().scalars(_bodies_statement(*shape), params))


WireRow = tuple[str, str]
"""``(body, targets)`` of a stored object as stored: its wire JSON text and the JSON text of
its targets column (``[]`` without targets)."""


def list_wire(
    *, session: Session, object_type: str, filters: Filters, skip: int, limit: int
) -> list[WireRow]:
    """:data:`WireRow` of each object :func:`list_bodies` would answer, in the same order.

    The body is the text as stored (see :func:`wire_json`), not decoded: list answers join these
    texts, and only objects whose targets a reader may not all see are decoded (target hiding,
    :meth:`drready.openadr.vtn.service.TargetView.render_wire`).
    """
    shape, params = _bodies_query(object_type, filters, skip, limit, raw=True)
    result = session.connection().execute(_bodies_statement(*shape), params)
    return [(body, targets) for body, targets in result]


_OWNED_BY_CLIENT = (
    "(o.object_type = 'VEN' AND o.client_id = :client) "
    "OR (o.object_type = 'RESOURCE' AND o.ven_id IN "
    "(SELECT v.id FROM oadr_object v WHERE v.object_type = 'VEN' AND v.client_id = :client))"
)
"""SQL condition on ``oadr_object o``: a ven object of client ``:client`` or a resource of one."""
_GRANTED = text(
    "SELECT DISTINCT t.target FROM oadr_target t JOIN oadr_object o ON t.object_seq = o.seq "
    f"WHERE {_OWNED_BY_CLIENT}"
)


def _granted_to_client(target_row: str) -> str:
    """SQL condition: the target row ``target_row`` (an ``oadr_target`` alias) belongs to an
    object of client ``:client`` — a correlated EXISTS on the object's primary key.

    Written as EXISTS, not as a join, so that SQLite looks the few targets in question up on the
    target index and then their objects; as a join with bound parameters it chose to walk every
    resource of the type index instead (a "MULTI-INDEX OR"): ~0.8 s per question at 100 000
    resources, 0.1 ms this way (issue 11 item 3)."""
    return (
        f"EXISTS (SELECT 1 FROM oadr_object o WHERE o.seq = {target_row}.object_seq "
        f"AND ({_OWNED_BY_CLIENT}))"
    )


_GRANTED_AMONG_MAX = 100
"""Most requested targets checked one by one (:func:`granted_among`); more: all granted."""


@lru_cache(maxsize=_GRANTED_AMONG_MAX)
def _granted_among_sql(count: int) -> TextClause:
    """Which of ``count`` requested targets (``:w0`` …) client ``:client`` was granted: the
    target index first, so the cost is that of the names asked, not of the VEN's fleet."""
    names = ", ".join(f":w{i}" for i in range(count))
    return text(
        f"SELECT DISTINCT t.target FROM oadr_target t WHERE t.target IN ({names}) "
        f"AND {_granted_to_client('t')}"
    )


def granted_among(*, session: Session, client_id: str, wanted: Collection[str]) -> frozenset[str]:
    """``targets_of_vens(...) & wanted``, reading only the ``wanted`` targets' rows.

    A VEN asking for its events 50 resource names at a time (a maker cloud in units mode) made
    the VTN read every target of the VEN's whole fleet per query: at 70 000 units a poll of the
    cloud took ~50 s (issue 11 item 3).
    """
    wanted = sorted(set(wanted))
    if not wanted:
        return frozenset()
    if len(wanted) > _GRANTED_AMONG_MAX:
        return targets_of_vens(session=session, client_id=client_id) & frozenset(wanted)
    params: dict[str, Any] = {f"w{i}": name for i, name in enumerate(wanted)}
    params["client"] = client_id
    return frozenset(session.connection().scalars(_granted_among_sql(len(wanted)), params))


_VISIBLE_EVENT = text(
    "SELECT e.program_id FROM oadr_object e "
    "WHERE e.object_type = 'EVENT' AND e.id = :object_id "
    "AND (NOT EXISTS (SELECT 1 FROM oadr_target u WHERE u.object_seq = e.seq) "
    "OR EXISTS (SELECT 1 FROM oadr_target m WHERE m.object_seq = e.seq "
    "AND EXISTS (SELECT 1 FROM oadr_target t WHERE t.target = m.target "
    f"AND {_granted_to_client('t')})))"
)
"""``(program_id,)`` of event ``:object_id`` if client ``:client`` may see it: the event has no
targets, or one of them is granted to the client (as ``GET /events`` with all its targets)."""


def visible_event_program_id(
    *, session: Session, event_id: str, client_id: str | None
) -> tuple[str | None] | None:
    """``(program_id,)`` of the event ``event_id`` if it exists and ``client_id`` may see it
    (``None``: BL, sees every event), else ``None`` — one answer for both, so callers cannot
    tell an invisible event from a missing one."""
    if client_id is None:
        return get_program_id(session=session, object_type="EVENT", object_id=event_id)
    params = {"object_id": event_id, "client": client_id}
    row = session.connection().execute(_VISIBLE_EVENT, params).one_or_none()
    return None if row is None else (row[0],)


def targets_of_vens(*, session: Session, client_id: str) -> frozenset[str]:
    """The targets granted to a client: those of its ven objects and of their resources.

    One prepared statement on the target index: it runs for every VEN read of programs and
    events, so it avoids building ORM queries per call.
    """
    return frozenset(session.connection().scalars(_GRANTED, {"client": client_id}))


# --- the hottest statements on DBAPI connections ----------------------------------------------


class _Prepared:
    """A statement compiled once for one dialect into final SQL, run on a DBAPI cursor.

    Its parameters are bound as SQLAlchemy would bind them: in the dialect's paramstyle
    (positional tuple or named dict), literal values of the statement included, each value
    through its type's bind processor for the dialect (e.g. SQLite's DATETIME text); only JSON
    values are passed through as text (already JSON, see :func:`wire_json`).
    """

    __slots__ = ("defaults", "names", "positional", "processors", "sql")

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("statement needs per-execution rendering: not preparable")
        self.sql: str = compiled.string
        self.positional: bool = bool(dialect.positional)
        names = compiled.positiontup if self.positional else compiled.bind_names.values()
        self.names: tuple[str, ...] = tuple(names or ())
        self.defaults: dict[str, Any] = {}
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name in dict.fromkeys(self.names):
            bind = compiled.binds[name]
            if not bind.required:
                self.defaults[name] = bind.effective_value
            impl = bind.type.dialect_impl(dialect)
            if isinstance(impl, JSON):
                continue  # JSON values arrive as JSON text
            processor = impl.bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor

    def execute(self, cursor: DBAPICursor, values: dict[str, Any]) -> DBAPICursor:
        """Run the statement with ``values`` (the statement's own literals added)."""
        params = {**self.defaults, **values}  # a copy: the processors replace values
        for name, processor in self.processors.items():
            params[name] = processor(params[name])
        if self.positional:
            cursor.execute(self.sql, tuple(params[name] for name in self.names))
        else:
            cursor.execute(self.sql, params)
        return cursor


_REPORT_COLUMNS = (
    "id",
    "object_type",
    "client_id",
    "name",
    "event_id",
    "program_id",
    "targets",
    "body",
    "created",
    "modified",
)


_RESOURCE_COLUMNS = (
    "id",
    "object_type",
    "client_id",
    "name",
    "unique_key",
    "ven_id",
    "targets",
    "body",
    "created",
    "modified",
)
_OWNED_VEN = text(
    "SELECT 1 FROM oadr_object WHERE object_type = 'VEN' AND id = :ven_id AND client_id = :client"
)
"""A row if ven ``:ven_id`` exists and belongs to client ``:client`` (``load_owned``)."""
_RESOURCE_NAMED = text(
    "SELECT 1 FROM oadr_object WHERE name = :name AND object_type || '' = 'RESOURCE'"
)
"""A row if a resource is named ``:name`` (``check_unique_name``, whatever its unique_key).

``object_type || ''`` keeps SQLite's planner (no statistics) on the ``name`` index: with a
plain ``object_type = 'RESOURCE'`` it searched ``ix_oadr_object_type_seq`` and so read every
resource for each one created (a maker's 100 000 units: quadratic)."""

ResourceOutcome = Literal["stored", "no ven", "name taken"]
"""What :meth:`RawStore.create_resource` did: stored it, or refused it (its ``venID`` is not
a ven of the client; its ``resourceName`` is taken)."""

_T = TypeVar("_T")
_PendingReport = tuple[dict[str, Any], _Prepared, dict[str, Any]]
"""A report waiting for the group commit: its column values, the event lookup and its values."""
_RAW_TARGETS_MAX = 16  # more requested targets (rare): the expanding statement on a session
_RAW_SHAPES_MAX = 1024  # prepared list statements kept per engine


class RawStore:
    """The statements of the VTN's hottest requests (VENs listing events, posting reports),
    compiled once for one engine's dialect and run on a pooled DBAPI connection.

    The same SQL as the session functions above (:func:`list_wire`, :func:`targets_of_vens`,
    :func:`get_program_id`, :func:`create_object`), without SQLAlchemy's per-execution work
    (session and transaction objects, cache-key lookup, parameter and result processing): on
    SQLite that work took more CPU than the queries (the two queries of a VEN's event list:
    ~250 µs through a session, ~70 µs here). Functions that may run a statement this class
    has not prepared take a session instead.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.integrity_error: type[Exception] = self.dialect.loaded_dbapi.IntegrityError
        self._granted = _Prepared(_GRANTED, self.dialect)
        self._among: dict[int, _Prepared] = {}
        self._visible_event = _Prepared(_VISIBLE_EVENT, self.dialect)
        self._program_id = _Prepared(_GET_PROGRAM_ID, self.dialect)
        insert = _OBJECTS.insert().values(
            {name: bindparam(name, type_=_OBJECTS.c[name].type) for name in _REPORT_COLUMNS}
        )
        self._insert_report = _Prepared(insert, self.dialect)
        self._owned_ven = _Prepared(_OWNED_VEN, self.dialect)
        self._resource_named = _Prepared(_RESOURCE_NAMED, self.dialect)
        insert = _OBJECTS.insert().values(
            {name: bindparam(name, type_=_OBJECTS.c[name].type) for name in _RESOURCE_COLUMNS}
        )
        self._insert_resource = _Prepared(insert, self.dialect)
        self._pending_resources: dict[
            asyncio.AbstractEventLoop,
            list[tuple[dict[str, Any], asyncio.Future[ResourceOutcome]]],
        ] = {}
        self._lists: dict[_Shape, _Prepared] = {}
        self._pending: dict[
            asyncio.AbstractEventLoop, list[tuple[_PendingReport, asyncio.Future[bool]]]
        ] = {}
        self._lock_path: str | None = None
        self._lock_fd: int | None = None
        database = engine.url.database
        if engine.url.get_backend_name() == "sqlite" and database not in (None, "", ":memory:"):
            self._lock_path = f"{database}-drready-write.lock"

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Around a hot write (first write statement to commit) on SQLite: one writer at a time
        among the processes serving this database file, queued by the kernel (``flock``).

        SQLite lets one connection write at a time; a second one waits in its busy handler,
        which sleeps 1, 2, 5, 10 … ms between attempts while the first needs ~0.2 ms, and the
        sleep blocks the worker's event loop. Waiting on this lock instead ends as soon as the
        holder is done. It only orders the hot writes: any other writer still has SQLite's own
        locking (and busy timeout), so correctness never depends on it. PostgreSQL: no-op.
        """
        fd = self._lock_fd
        if fd is None:
            if self._lock_path is None:
                yield
                return
            fd = self._lock_fd = os.open(
                self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            weakref.finalize(self, os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def connect(self) -> Iterator[PoolProxiedConnection]:
        """A DBAPI connection from the engine's pool, returned (rolled back unless committed)
        afterwards, also on error."""
        connection = self.engine.raw_connection()
        try:
            yield connection
        finally:
            connection.close()

    def targets_of_vens(self, connection: PoolProxiedConnection, client_id: str) -> frozenset[str]:
        """:func:`targets_of_vens` on ``connection``."""
        cursor = self._granted.execute(connection.cursor(), {"client": client_id})
        try:
            return frozenset(row[0] for row in cursor.fetchall())
        finally:
            cursor.close()

    def granted_among(
        self, connection: PoolProxiedConnection, client_id: str, wanted: Collection[str]
    ) -> frozenset[str]:
        """:func:`granted_among` on ``connection``."""
        names = sorted(set(wanted))
        if not names:
            return frozenset()
        if len(names) > _GRANTED_AMONG_MAX:
            return self.targets_of_vens(connection, client_id) & frozenset(names)
        prepared = self._among.get(len(names))
        if prepared is None:
            prepared = self._among[len(names)] = _Prepared(
                _granted_among_sql(len(names)), self.dialect
            )
        params: dict[str, Any] = {f"w{i}": name for i, name in enumerate(names)}
        params["client"] = client_id
        cursor = prepared.execute(connection.cursor(), params)
        try:
            return frozenset(row[0] for row in cursor.fetchall())
        finally:
            cursor.close()

    def get_program_id(
        self, connection: PoolProxiedConnection, object_type: str, object_id: str
    ) -> tuple[str | None] | None:
        """:func:`get_program_id` on ``connection``."""
        values = {"object_type": object_type, "object_id": object_id}
        cursor = self._program_id.execute(connection.cursor(), values)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else (row[0],)

    def list_wire(
        self,
        connection: PoolProxiedConnection,
        *,
        object_type: str,
        filters: Filters,
        skip: int,
        limit: int,
    ) -> list[WireRow] | None:
        """:func:`list_wire` on ``connection``; ``None`` when more than 16 targets are
        requested (call :func:`list_wire` with a session then)."""
        if filters.targets_any is not None and len(filters.targets_any) > _RAW_TARGETS_MAX:
            return None
        shape, params = _bodies_query(
            object_type, filters, skip, limit, raw=True, plain_targets=True
        )
        prepared = self._lists.get(shape)
        if prepared is None:
            if len(self._lists) >= _RAW_SHAPES_MAX:
                self._lists.clear()
            prepared = self._lists[shape] = _Prepared(_bodies_statement(*shape), self.dialect)
        cursor = prepared.execute(connection.cursor(), params)
        try:
            return [(body, targets) for body, targets in cursor.fetchall()]
        finally:
            cursor.close()

    async def create_report(
        self,
        *,
        object_id: str,
        body_json: str,
        created: datetime,
        client_id: str,
        name: str,
        event_id: str,
        sees_all_events: bool = False,
    ) -> bool:
        """Store a report as :func:`create_object` would (``program_id``: its event's; no
        targets), ``body_json`` being :func:`wire_json` of its body; ``False``, storing
        nothing, when there is no event ``event_id`` that ``client_id`` may see
        (:func:`visible_event_program_id`; every event with ``sees_all_events``, for BL).
        Returns once the report is committed.

        Group commit: the reports posted during one turn of the event loop are inserted and
        committed together, in one transaction under :meth:`write_lock`, at the start of the
        next turn. A commit writes every page the inserts touched (the table and nine indexes:
        ~11 pages for one report) and the reports of one turn share most of them, so a group
        costs little more than one report, and the write lock is taken once per group. If a
        group fails on a unique clash, each report is retried alone, so only the clashing one
        raises ``integrity_error``; any other failure is raised to every caller.
        """
        values = {
            "id": object_id,
            "object_type": "REPORT",
            "client_id": client_id,
            "name": name,
            "event_id": event_id,
            "targets": "[]",  # wire_json([])
            "body": body_json,
            "created": _naive_utc(created),
            "modified": _naive_utc(created),
        }
        # the event lookup is decided here, outside the write lock: BL sees every event, a
        # VEN those it may see (the same answer for an invisible and a missing event)
        pending_report: _PendingReport = (
            (values, self._program_id, {"object_type": "EVENT", "object_id": event_id})
            if sees_all_events
            else (values, self._visible_event, {"object_id": event_id, "client": client_id})
        )
        # self._insert_committed is looked up at commit time (tests count its groups)
        return await _group_commit(
            self._pending,
            pending_report,
            lambda rows: self._insert_committed(rows),
            self.integrity_error,
        )

    def _insert_committed(self, rows: list[_PendingReport]) -> list[bool]:
        """Insert ``rows`` in one transaction; whether each was stored (its event was found)."""
        # (one INSERT … SELECT of the event's program_id took twice as long on SQLite, which
        # materialises a SELECT from the table being inserted into)
        with self.connect() as connection, self.write_lock():
            try:
                cursor = connection.cursor()
                stored = []
                for values, statement, lookup in rows:
                    event = statement.execute(cursor, lookup).fetchone()
                    if event is not None:
                        self._insert_report.execute(cursor, {**values, "program_id": event[0]})
                    stored.append(event is not None)
                cursor.close()
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
        return stored

    async def create_resource(
        self,
        *,
        object_id: str,
        body_json: str,
        created: datetime,
        client_id: str,
        name: str,
        ven_id: str,
    ) -> ResourceOutcome:
        """Store a resource a VEN's client creates (no targets: only BL grants them) as
        :func:`create_object` would, ``body_json`` being :func:`wire_json` of its body, after
        the checks of ``POST /resources``, in order: ven ``ven_id`` is ``client_id``'s
        (``load_owned``), no resource is named ``name`` (``check_unique_name``). Returns once
        committed (or refused, storing nothing).

        Group commit as :meth:`create_report`: the resources posted during one turn of the
        event loop are checked, inserted and committed in one transaction (a name taken by an
        earlier one of the group is seen as taken). A unique clash the checks did not see (a
        concurrent commit by another worker) fails the group, which is retried resource by
        resource, so only the clashing one raises ``integrity_error``.
        """
        values = {
            "id": object_id,
            "object_type": "RESOURCE",
            "client_id": client_id,
            "name": name,
            "unique_key": f"RESOURCE:{name}",
            "ven_id": ven_id,
            "targets": "[]",  # wire_json([])
            "body": body_json,
            "created": _naive_utc(created),
            "modified": _naive_utc(created),
        }
        return await _group_commit(
            self._pending_resources,
            values,
            lambda rows: self._insert_resources(rows),
            self.integrity_error,
        )

    def _insert_resources(self, rows: list[dict[str, Any]]) -> list[ResourceOutcome]:
        """Check and insert ``rows`` in one transaction; what became of each."""
        outcomes: list[ResourceOutcome] = []
        with self.connect() as connection, self.write_lock():
            try:
                cursor = connection.cursor()
                for values in rows:
                    owned = {"ven_id": values["ven_id"], "client": values["client_id"]}
                    if self._owned_ven.execute(cursor, owned).fetchone() is None:
                        outcomes.append("no ven")
                    elif (
                        self._resource_named.execute(cursor, {"name": values["name"]}).fetchone()
                        is not None
                    ):
                        outcomes.append("name taken")
                    else:
                        self._insert_resource.execute(cursor, values)
                        outcomes.append("stored")
                cursor.close()
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
        return outcomes


_V = TypeVar("_V")


def _group_commit(
    queues: dict[asyncio.AbstractEventLoop, list[tuple[_V, asyncio.Future[_T]]]],
    values: _V,
    insert: Callable[[list[_V]], list[_T]],
    integrity_error: type[Exception],
) -> asyncio.Future[_T]:
    """Queue ``values`` to be written with every other row queued in this turn of the running
    loop, by one ``insert`` (one transaction) at the end of the turn; the future of its result.

    A unique clash (``integrity_error``) in a group retries the group row by row, so only the
    clashing row fails; any other error is every caller's answer (e.g. a lock timeout).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    pending = queues.setdefault(loop, [])
    pending.append((values, future))
    if len(pending) == 1:
        loop.call_soon(_commit_group, queues, loop, insert, integrity_error)
    return future


def _commit_group(
    queues: dict[asyncio.AbstractEventLoop, list[tuple[_V, asyncio.Future[_T]]]],
    loop: asyncio.AbstractEventLoop,
    insert: Callable[[list[_V]], list[_T]],
    integrity_error: type[Exception],
) -> None:
    batch = queues.pop(loop, [])
    try:
        results = insert([values for values, _ in batch])
    except integrity_error as err:
        if len(batch) == 1:
            _settle(batch[0][1], err)
            return
        for values, future in batch:  # find the clashing one(s)
            try:
                (one,) = insert([values])
            except integrity_error as clash:
                _settle(future, clash)
            else:
                _settle(future, one)
    except Exception as err:
        for _, future in batch:
            _settle(future, err)
    else:
        for (_, future), one in zip(batch, results, strict=True):
            _settle(future, one)


def _settle(future: asyncio.Future[_T], result: _T | BaseException) -> None:
    if future.done():  # the caller was cancelled: its row is committed all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
