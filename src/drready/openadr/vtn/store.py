"""Storage of the VTN's OpenADR objects (C1, S1 privacy filters in SQL, D6 ven/resource groups).

A document store in two tables, for SQLite and PostgreSQL alike (SQLAlchemy 2):

* ``oadr_object``: one row per program, event, report, subscription, ven or resource. ``body``
  holds the object exactly as the VTN returns it (wire JSON); the other columns are copies of
  what the API filters on (``object_type``, ``client_id``, ``name``, ``program_id``,
  ``event_id``, ``ven_id``, ``objects`` of subscriptions, ``ends_at`` of events) with indexes,
  ``unique_key`` enforces the name rules of Definition.md "Object names", and ``seq`` (the
  primary key, monotonically increasing) gives list answers a stable order for ``skip``/``limit``.
* ``oadr_target``: one row per (object, target) so target filters and targeting run in SQL.

All functions are keyword-only and take the session; they flush but never commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    exists,
    false,
    or_,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

__all__ = [
    "Base",
    "Filters",
    "StoredObject",
    "StoredTarget",
    "create_all",
    "create_object",
    "delete_object",
    "get_object",
    "get_program_id",
    "list_bodies",
    "list_objects",
    "new_object_id",
    "targets_of_vens",
    "update_object",
]


class Base(DeclarativeBase):
    """Declarative base of the VTN tables."""


class StoredObject(Base):
    """One OpenADR object (see the module docstring)."""

    __tablename__ = "oadr_object"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(128), unique=True)
    object_type: Mapped[str] = mapped_column(String(16), index=True)
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
    """Create the tables (idempotent)."""
    Base.metadata.create_all(engine)


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
) -> Any:
    # One statement object per filter shape, values as bind parameters: building a select costs
    # more than running it, and a reused statement hits SQLAlchemy's compiled cache directly.
    conditions: list[Any] = [StoredObject.object_type == object_type]
    for name in columns:
        conditions.append(getattr(StoredObject, name) == bindparam(f"f_{name}"))
    if targets != "none":
        matched = (
            exists().where(
                StoredTarget.object_seq == StoredObject.seq,
                StoredTarget.target.in_(bindparam("f_targets", expanding=True)),
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
    return (
        select(StoredObject.body)
        .where(and_(*conditions))
        .order_by(StoredObject.seq)
        .offset(bindparam("f_skip", type_=Integer))
        .limit(bindparam("f_limit", type_=Integer))
    )


def list_bodies(
    *, session: Session, object_type: str, filters: Filters, skip: int, limit: int
) -> list[dict[str, Any]]:
    """The ``body`` of each object :func:`list_objects` would answer, in the same order.

    Selects the one column on the session's connection: no ORM entities are built (identity
    map, attribute state), which is most of a list request's database cost.
    """
    params: dict[str, Any] = {"f_skip": skip, "f_limit": limit}
    columns: list[str] = []
    for name in _FILTER_COLUMNS:
        value = getattr(filters, name)
        if value is not None:
            columns.append(name)
            params[f"f_{name}"] = value
    targets = "none"
    if filters.targets_any is not None:
        targets = "some" if filters.targets_any else "empty"
        if filters.targets_any:
            params["f_targets"] = sorted(filters.targets_any)
    if filters.ends_after is not None:
        params["f_ends_after"] = _naive_utc(filters.ends_after)
    stmt = _bodies_statement(
        object_type,
        tuple(columns),
        targets,
        filters.include_untargeted,
        None if filters.objects_any is None else tuple(sorted(filters.objects_any)),
        filters.ends_after is not None,
    )
    return list(session.connection().scalars(stmt, params))


_GRANTED = text(
    "SELECT DISTINCT t.target FROM oadr_target t JOIN oadr_object o ON t.object_seq = o.seq "
    "WHERE (o.object_type = 'VEN' AND o.client_id = :client) "
    "OR (o.object_type = 'RESOURCE' AND o.ven_id IN "
    "(SELECT v.id FROM oadr_object v WHERE v.object_type = 'VEN' AND v.client_id = :client))"
)


def targets_of_vens(*, session: Session, client_id: str) -> frozenset[str]:
    """The targets granted to a client: those of its ven objects and of their resources.

    One prepared statement on the target index: it runs for every VEN read of programs and
    events, so it avoids building ORM queries per call.
    """
    return frozenset(session.connection().scalars(_GRANTED, {"client": client_id}))
