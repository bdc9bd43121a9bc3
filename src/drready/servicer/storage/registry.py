"""The servicer's registry: VENs, their resources, and market registration data (D6, S1, F6).

VENs are home gateways (route i) or maker clouds (route ii); a resource is one unit, named by
its :class:`~drready.domain.DeviceId`, or a group of units (a maker cloud's
``"FLEET-<maker code>"``, e.g. ``"FLEET-000005"``, D6; ``"FLEET"`` before profile version 1) with
its unit count and rated power. Ids are the VTN's object ids.

**Market registration data lives here and only here.** A resource's :class:`MarketRegistration`
(supply-point ID, voltage class, retailer, contract power, product class) is what the servicer
needs to register it with a market; devices and VENs never need it, and the device side is built
so that it could not leak it:

* it is stored only as AES-256-GCM ciphertext bound to the resource id
  (:mod:`drready.servicer.storage.crypto`); the table has no plaintext column;
* :meth:`Registry.device_facing_view` — everything the servicer may pass towards VENs and
  devices — is read from the ``ven`` and ``resource`` tables alone, into models whose fields
  are a fixed whitelist (the tests check that no statement it runs touches
  ``market_registration`` and that a supply-point ID never appears in its output);
* the model's ``repr`` hides the supply-point ID and the retailer, so a log line cannot carry
  them, and validation errors never echo the supply-point ID.

Supply-point ID (供給地点特定番号)
--------------------------------
The number that identifies an electricity supply point in Japan, introduced with full retail
liberalisation (April 2016) and shared by every retailer and the switching support system of
OCCTO: **22 digits**, the first two the area of the general transmission and distribution
operator — 01 Hokkaido, 02 Tohoku, 03 Tokyo, 04 Chubu, 05 Hokuriku, 06 Kansai, 07 Chugoku,
08 Shikoku, 09 Kyushu, 10 Okinawa. (City gas supply points have 17 digits; they are not
accepted here.) Bills print it in groups, so spaces and hyphens between digits are dropped and
full-width digits are read as ASCII (NFKC) before the check.
Sources: ENEOS Power, "供給地点特定番号とは" (electricity 22 digits, gas 17, area codes 01–10),
https://www.eneos-power.co.jp/article/basics-electricity/supply-point-number-check ;
dreamdenki.jp, "供給地点特定番号とは?" (22 digits per supply point, shared by all retailers).

Product classes
---------------
:class:`ProductClass` lists the markets a DR resource can be registered for, with English
identifiers that translate the Japanese names (which are normative): the five products of the
balancing market (需給調整市場) run by EPRX — 一次, 二次①, 二次②, 三次①, 三次② 調整力, told apart
by response time; trading began with 三次② on 31 March 2021 and all five trade since FY2024 —,
the capacity market's demand-response category 発動指令電源 (where DR moved from the 電源I'
tender in FY2024), and the kWh negawatt trades of the ERAB guideline, 類型1① (a retailer
buying its own customers' negawatts) and 類型1② (other retailers' customers). The European-style
abbreviations in the member docstrings (FCR, S-FRR, FRR, RR, RR-FIT) are the customary English
glosses, for orientation only.
Sources: 電気新聞, "電力需給調整力取引所(EPRX)を設立" (https://www.denkishimbun.com/sp/115186:
five products 1次–3次(2) by response time, 3次(2) first from 31 March 2021, all by FY2024);
EnergyShift, "需給調整市場 三次調整力②の取引開始" (2021-05-26); 電気新聞, DR and aggregators
(https://www.denkishimbun.com/sp/186414: 電源I' → 容量市場 発動指令電源 from FY2024);
資源エネルギー庁, "エネルギー・リソース・アグリゲーション・ビジネスに関するガイドライン" and the
negawatt-trading briefing of 2016-11-30 (類型1①, 類型1②).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import Engine, Table, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from drready.domain import MAX_POWER_W, DeviceId
from drready.domain.base import bounded_float
from drready.servicer.storage.crypto import KeyRing, Sealed, associated_data
from drready.servicer.storage.db import (
    WRITE_OPTION,
    MarketRegistrationRow,
    Resource,
    ResourceKind,
    ResourceState,
    Ven,
    VenRoute,
    dialect_insert,
)
from drready.servicer.storage.validation import CHUNK, check_id, enum_value, instant

__all__ = [
    "MAX_CONTRACT_POWER_KW",
    "MAX_RATED_POWER_KW",
    "SUPPLY_POINT_AREAS",
    "DeviceFacingResource",
    "DeviceFacingVen",
    "DeviceFacingView",
    "MarketRegistration",
    "ProductClass",
    "Registry",
    "ResourceRecord",
    "VenRecord",
    "VoltageClass",
    "normalize_supply_point_id",
]

#: Area codes (first two digits of a supply-point ID) of the ten general transmission and
#: distribution areas.
SUPPLY_POINT_AREAS: dict[str, str] = {
    "01": "Hokkaido",
    "02": "Tohoku",
    "03": "Tokyo",
    "04": "Chubu",
    "05": "Hokuriku",
    "06": "Kansai",
    "07": "Chugoku",
    "08": "Shikoku",
    "09": "Kyushu",
    "10": "Okinawa",
}
_SUPPLY_POINT_DIGITS = 22
#: Largest contract power accepted [kW]: 1 GW, above any single supply point (extra-high-voltage
#: contracts reach hundreds of MW); it catches nonsense such as watts entered as kilowatts of a
#: large site, not every typo.
MAX_CONTRACT_POWER_KW = 1e6
#: Largest rated power of a resource (a unit or a group, D6) [kW], as ``MAX_POWER_W``.
MAX_RATED_POWER_KW = MAX_POWER_W / 1000.0
_RETAILER_MAX = 100


class VoltageClass(StrEnum):
    """Supply voltage class of the contract."""

    LOW = "low"
    """低圧: up to 600 V AC (homes: 100/200 V)."""
    HIGH = "high"
    """高圧: above 600 V up to 7 kV AC (typically 6.6 kV)."""
    EXTRA_HIGH = "extra_high"
    """特別高圧: above 7 kV."""


class ProductClass(StrEnum):
    """The market product a resource is registered for (see the module docstring)."""

    PRIMARY_RESERVE = "primary_reserve"
    """需給調整市場 一次調整力 (Frequency Containment Reserve, FCR)."""
    SECONDARY_RESERVE_1 = "secondary_reserve_1"
    """需給調整市場 二次調整力① (Synchronized Frequency Restoration Reserve, S-FRR)."""
    SECONDARY_RESERVE_2 = "secondary_reserve_2"
    """需給調整市場 二次調整力② (Frequency Restoration Reserve, FRR)."""
    TERTIARY_RESERVE_1 = "tertiary_reserve_1"
    """需給調整市場 三次調整力① (Replacement Reserve, RR)."""
    TERTIARY_RESERVE_2 = "tertiary_reserve_2"
    """需給調整市場 三次調整力② (Replacement Reserve for FIT forecast errors, RR-FIT)."""
    CAPACITY_DR = "capacity_dr"
    """容量市場 発動指令電源 (demand response in the capacity market)."""
    KWH_DR_TYPE_1_1 = "kwh_dr_type_1_1"
    """ERAB guideline kWh negawatt 類型1① (the retailer's own customers)."""
    KWH_DR_TYPE_1_2 = "kwh_dr_type_1_2"
    """ERAB guideline kWh negawatt 類型1② (customers of other retailers)."""

    @property
    def label_ja(self) -> str:
        """The Japanese name of the product."""
        return _PRODUCT_LABELS_JA[self]


_PRODUCT_LABELS_JA = {
    ProductClass.PRIMARY_RESERVE: "需給調整市場 一次調整力",
    ProductClass.SECONDARY_RESERVE_1: "需給調整市場 二次調整力①",
    ProductClass.SECONDARY_RESERVE_2: "需給調整市場 二次調整力②",
    ProductClass.TERTIARY_RESERVE_1: "需給調整市場 三次調整力①",
    ProductClass.TERTIARY_RESERVE_2: "需給調整市場 三次調整力②",
    ProductClass.CAPACITY_DR: "容量市場 発動指令電源",
    ProductClass.KWH_DR_TYPE_1_1: "ネガワット 類型1①",
    ProductClass.KWH_DR_TYPE_1_2: "ネガワット 類型1②",
}

_SEPARATORS_RE = re.compile(r"[\s\-‐‑‒–—―ー]")
_DIGITS_RE = re.compile(r"[0-9]+")


def normalize_supply_point_id(value: str, field: str = "supply_point_id") -> str:
    """The 22-digit form of a supply-point ID, else ``ValueError`` naming ``field``.

    Full-width digits become ASCII (NFKC), spaces and hyphens are dropped. The message never
    repeats the number (it identifies a customer), only what is wrong with it.
    """
    compact = _SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", value))
    rule = (
        f"{field} must be the {_SUPPLY_POINT_DIGITS}-digit 供給地点特定番号 (spaces and "
        "hyphens between digits allowed)"
    )
    if not _DIGITS_RE.fullmatch(compact):
        raise ValueError(f"{rule}, got characters other than digits")
    if len(compact) != _SUPPLY_POINT_DIGITS:
        raise ValueError(f"{rule}, got {len(compact)} digits")
    if compact[:2] not in SUPPLY_POINT_AREAS:
        raise ValueError(
            f"{field} must start with an area code 01–10 (01 Hokkaido … 10 Okinawa), "
            f"got {compact[:2]}"
        )
    return compact


class MarketRegistration(BaseModel):
    """What the servicer registers a resource with in a market (never sent to devices).

    Validation errors name the field and the rule but never the value given
    (``hide_input_in_errors``): they may end up in logs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    supply_point_id: str = Field(
        repr=False,
        description="供給地点特定番号: 22 digits, area code 01–10 first.",
        examples=["0300111234567890123456"],
    )
    voltage_class: VoltageClass = Field(description="'low', 'high' or 'extra_high'.")
    retailer: str = Field(repr=False, description="Retail electricity supplier, 1–100 chars.")
    contract_power_kw: Annotated[float, bounded_float(0.0, MAX_CONTRACT_POWER_KW, lo_open=True)] = (
        Field(description="Contract power of the supply point [kW], (0, 1e6].")
    )
    product_class: ProductClass = Field(description="Market product (ProductClass).")

    @field_validator("supply_point_id", mode="before")
    @classmethod
    def _supply_point(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return normalize_supply_point_id(value, info.field_name or "supply_point_id")
        return value

    @field_validator("retailer")
    @classmethod
    def _retailer(cls, value: str) -> str:
        text = value.strip()
        if not text.isprintable():
            raise ValueError("retailer must be printable text (no control characters)")
        if not 1 <= len(text) <= _RETAILER_MAX:
            raise ValueError(
                f"retailer must be 1–{_RETAILER_MAX} characters, got {len(text)} characters"
            )
        return text

    @property
    def area(self) -> str:
        """The transmission area of the supply point (from its first two digits)."""
        return SUPPLY_POINT_AREAS[self.supply_point_id[:2]]

    @property
    def masked_supply_point_id(self) -> str:
        """The supply-point ID with all but the area code and the last four digits hidden."""
        sp = self.supply_point_id
        return sp[:2] + "*" * (len(sp) - 6) + sp[-4:]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VenRecord(_Record):
    """A VEN as the registry keeps it."""

    id: str
    ven_name: str
    route: VenRoute
    client_id: str | None
    created_at: datetime
    last_seen_at: datetime | None


class ResourceRecord(_Record):
    """A resource with its VEN's name and route."""

    id: str
    ven_id: str
    ven_name: str
    route: VenRoute
    resource_name: str
    kind: ResourceKind
    n_units: int
    rated_power_kw: float
    state: ResourceState
    last_seen_at: datetime | None
    has_market_registration: bool


class DeviceFacingVen(_Record):
    """What the device side may know of a VEN."""

    id: str
    ven_name: str


class DeviceFacingResource(_Record):
    """What the device side may know of a resource: identity, size, state; no market data."""

    id: str
    ven_id: str
    resource_name: str
    kind: ResourceKind
    n_units: int
    rated_power_kw: float
    state: ResourceState


class DeviceFacingView(_Record):
    """Everything the servicer may pass towards VENs and devices about its registry."""

    vens: tuple[DeviceFacingVen, ...]
    resources: tuple[DeviceFacingResource, ...]


_VEN = cast(Table, Ven.__table__)
_RES = cast(Table, Resource.__table__)
_MREG = cast(Table, MarketRegistrationRow.__table__)


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), CHUNK):
        yield unique[i : i + CHUNK]


class Registry:
    """VENs, resources and (encrypted) market registrations over a SQLAlchemy engine.

    Every method runs in its own transaction. ``keys`` is needed only for market registrations;
    when ``None`` it is read from the environment (:meth:`KeyRing.from_env`) at first use.
    The schema must exist (``drready.servicer.storage.migrations.ensure_schema``).
    """

    def __init__(self, engine: Engine, keys: KeyRing | None = None) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._keys = keys

    @property
    def keys(self) -> KeyRing:
        """The data key ring (loaded from the environment on first use)."""
        if self._keys is None:
            self._keys = KeyRing.from_env()
        return self._keys

    # ------------------------------------------------------------------ VENs
    def upsert_ven(
        self,
        *,
        ven_id: str,
        ven_name: str,
        route: VenRoute | str,
        client_id: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Insert or update a VEN; returns whether anything changed (same data twice: False).

        ``at`` (default now) is its ``created_at`` when new. Raises ``ValueError`` for a bad
        field or a ``ven_name`` already used by another VEN.
        """
        check_id(ven_id, "ven_id")
        check_id(ven_name, "ven_name")
        route_value = enum_value(VenRoute, route, "route")
        if client_id is not None:
            check_id(client_id, "client_id")
        created = instant(at, "at")
        values = {
            "id": ven_id,
            "ven_name": ven_name,
            "route": route_value.value,
            "client_id": client_id,
            "created_at": created,
        }
        try:
            with self._writer.begin() as conn:
                stmt = dialect_insert(conn, _VEN).values(values)
                ex = stmt.excluded
                stmt = stmt.on_conflict_do_update(
                    index_elements=[_VEN.c.id],
                    set_={"ven_name": ex.ven_name, "route": ex.route, "client_id": ex.client_id},
                    where=(
                        _VEN.c.ven_name.is_distinct_from(ex.ven_name)
                        | _VEN.c.route.is_distinct_from(ex.route)
                        | _VEN.c.client_id.is_distinct_from(ex.client_id)
                    ),
                ).returning(_VEN.c.id)
                return conn.execute(stmt).first() is not None
        except IntegrityError as err:
            raise ValueError(
                f"ven_name {ven_name!r} is already used by another VEN (ven_id {ven_id!r})"
            ) from err

    def get_ven(self, ven_id: str) -> VenRecord | None:
        """The VEN with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_VEN).where(_VEN.c.id == ven_id)).mappings().first()
        return None if row is None else VenRecord.model_validate(dict(row))

    def list_vens(self) -> list[VenRecord]:
        """Every VEN, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_VEN).order_by(_VEN.c.ven_name)).mappings().all()
        return [VenRecord.model_validate(dict(r)) for r in rows]

    def mark_ven_seen(self, ven_id: str, at: datetime | None = None) -> bool:
        """Set a VEN's ``last_seen_at`` (never moved backwards); whether it changed."""
        seen = instant(at, "at")
        with self._writer.begin() as conn:
            result = conn.execute(
                update(_VEN)
                .where(_VEN.c.id == ven_id)
                .where((_VEN.c.last_seen_at.is_(None)) | (_VEN.c.last_seen_at < seen))
                .values(last_seen_at=seen)
            )
            return result.rowcount > 0

    # ------------------------------------------------------------------ resources
    def upsert_resource(
        self,
        *,
        resource_id: str,
        ven_id: str,
        resource_name: str,
        kind: ResourceKind | str,
        rated_power_kw: float,
        n_units: int = 1,
    ) -> bool:
        """Insert or update a resource; returns whether anything changed.

        A ``unit`` is named by its DeviceId string (``"000005:HW0000001"``) and has
        ``n_units == 1``; a ``group`` has any name (e.g. ``"FLEET-000005"``) and ``n_units ≥ 1``.
        ``rated_power_kw`` is the rated electric input of the unit or the sum over the group,
        in (0, 1e7] kW. A new resource starts ``active``; an update keeps the state.

        Raises
        ------
        ValueError
            Naming the bad field, an unknown ``ven_id``, or a name already used by another
            resource of the VEN.
        """
        check_id(resource_id, "resource_id")
        check_id(ven_id, "ven_id")
        check_id(resource_name, "resource_name")
        kind_value = enum_value(ResourceKind, kind, "kind")
        if kind_value is ResourceKind.UNIT:
            try:
                DeviceId.parse(resource_name)
            except ValueError as err:
                raise ValueError(
                    f"resource_name of a unit must be its DeviceId 'MMMMMM:SERIAL' "
                    f"(e.g. '000005:HW0000001'), got {resource_name!r}"
                ) from err
        if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 1:
            raise ValueError(f"n_units must be an integer ≥ 1, got {n_units!r}")
        if kind_value is ResourceKind.UNIT and n_units != 1:
            raise ValueError(f"n_units must be 1 for a unit, got {n_units}")
        rated = float(rated_power_kw)
        if not (math.isfinite(rated) and 0.0 < rated <= MAX_RATED_POWER_KW):
            raise ValueError(
                f"rated_power_kw must be finite and in (0, {MAX_RATED_POWER_KW:g}] kW, "
                f"got {rated_power_kw!r}"
            )
        values = {
            "id": resource_id,
            "ven_id": ven_id,
            "resource_name": resource_name,
            "kind": kind_value.value,
            "n_units": n_units,
            "rated_power_kw": rated,
            "state": ResourceState.ACTIVE.value,
        }
        changed = ("ven_id", "resource_name", "kind", "n_units", "rated_power_kw")
        try:
            with self._writer.begin() as conn:
                if conn.execute(select(_VEN.c.id).where(_VEN.c.id == ven_id)).first() is None:
                    raise ValueError(f"ven_id {ven_id!r} is not registered (upsert_ven first)")
                stmt = dialect_insert(conn, _RES).values(values)
                ex = stmt.excluded
                differs = [_RES.c[c].is_distinct_from(ex[c]) for c in changed]
                where = differs[0]
                for d in differs[1:]:
                    where = where | d
                stmt = stmt.on_conflict_do_update(
                    index_elements=[_RES.c.id],
                    set_={c: ex[c] for c in changed},
                    where=where,
                ).returning(_RES.c.id)
                return conn.execute(stmt).first() is not None
        except IntegrityError as err:
            raise ValueError(
                f"resource_name {resource_name!r} is already used by another resource of VEN "
                f"{ven_id!r}"
            ) from err

    def _resource_select(self) -> Any:
        has_reg = (
            select(_MREG.c.resource_id)
            .where(_MREG.c.resource_id == _RES.c.id)
            .exists()
            .label("has_market_registration")
        )
        return select(
            _RES.c.id,
            _RES.c.ven_id,
            _VEN.c.ven_name,
            _VEN.c.route,
            _RES.c.resource_name,
            _RES.c.kind,
            _RES.c.n_units,
            _RES.c.rated_power_kw,
            _RES.c.state,
            _RES.c.last_seen_at,
            has_reg,
        ).join_from(_RES, _VEN, _RES.c.ven_id == _VEN.c.id)

    def list_resources(
        self,
        *,
        state: ResourceState | str | None = None,
        ven_id: str | None = None,
        route: VenRoute | str | None = None,
    ) -> list[ResourceRecord]:
        """Resources with their VEN's name and route, by VEN name then resource name."""
        stmt = self._resource_select()
        if state is not None:
            stmt = stmt.where(_RES.c.state == enum_value(ResourceState, state, "state").value)
        if ven_id is not None:
            stmt = stmt.where(_RES.c.ven_id == ven_id)
        if route is not None:
            stmt = stmt.where(_VEN.c.route == enum_value(VenRoute, route, "route").value)
        stmt = stmt.order_by(_VEN.c.ven_name, _RES.c.resource_name)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [ResourceRecord.model_validate(dict(r)) for r in rows]

    def get_resource(self, resource_id: str) -> ResourceRecord | None:
        """The resource with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(self._resource_select().where(_RES.c.id == resource_id))
                .mappings()
                .first()
            )
        return None if row is None else ResourceRecord.model_validate(dict(row))

    def mark_active(self, resource_ids: Sequence[str], at: datetime | None = None) -> int:
        """Mark resources active and seen at ``at`` (retired ones stay retired); rows changed."""
        seen = instant(at, "at")
        return self._update_state(
            resource_ids,
            {"state": ResourceState.ACTIVE.value, "last_seen_at": seen},
            _RES.c.state != ResourceState.RETIRED.value,
        )

    def mark_offline(self, resource_ids: Sequence[str]) -> int:
        """Mark active resources offline (not dispatched until seen again); rows changed."""
        return self._update_state(
            resource_ids,
            {"state": ResourceState.OFFLINE.value},
            _RES.c.state == ResourceState.ACTIVE.value,
        )

    def retire(self, resource_ids: Sequence[str]) -> int:
        """Retire resources for good (their records stay for settlement); rows changed."""
        return self._update_state(
            resource_ids,
            {"state": ResourceState.RETIRED.value},
            _RES.c.state != ResourceState.RETIRED.value,
        )

    def _update_state(self, resource_ids: Sequence[str], values: dict[str, Any], cond: Any) -> int:
        if isinstance(resource_ids, str):
            raise TypeError("resource_ids must be a sequence of ids, not one string")
        count = 0
        with self._writer.begin() as conn:
            for chunk in _chunks(resource_ids):
                result = conn.execute(
                    update(_RES).where(_RES.c.id.in_(chunk)).where(cond).values(values)
                )
                count += result.rowcount
        return count

    # ------------------------------------------------------------------ market registration
    def set_market_registration(
        self,
        resource_id: str,
        registration: MarketRegistration,
        at: datetime | None = None,
    ) -> None:
        """Store (or replace) a resource's market registration, encrypted with the primary key."""
        if not isinstance(registration, MarketRegistration):
            raise TypeError("registration must be a MarketRegistration")
        updated = instant(at, "at")
        sealed = self.keys.seal(
            registration.model_dump_json().encode("utf-8"), aad=associated_data(resource_id)
        )
        with self._writer.begin() as conn:
            if conn.execute(select(_RES.c.id).where(_RES.c.id == resource_id)).first() is None:
                raise ValueError(f"resource_id {resource_id!r} is not registered")
            self._write_sealed(conn, resource_id, sealed, updated)

    @staticmethod
    def _write_sealed(
        conn: Connection, resource_id: str, sealed: Sealed, updated: datetime
    ) -> None:
        stmt = dialect_insert(conn, _MREG).values(
            resource_id=resource_id,
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            key_id=sealed.key_id,
            updated_at=updated,
        )
        ex = stmt.excluded
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_MREG.c.resource_id],
                set_={
                    "ciphertext": ex.ciphertext,
                    "nonce": ex.nonce,
                    "key_id": ex.key_id,
                    "updated_at": ex.updated_at,
                },
            )
        )

    def get_market_registration(self, resource_id: str) -> MarketRegistration | None:
        """The resource's decrypted market registration, or ``None`` if it has none.

        Raises
        ------
        DataKeyError
            The row was sealed with a key id the ring lacks.
        DecryptionError
            Wrong key under that id, altered bytes, or a ciphertext of another resource.
        """
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_MREG.c.ciphertext, _MREG.c.nonce, _MREG.c.key_id).where(
                    _MREG.c.resource_id == resource_id
                )
            ).first()
        if row is None:
            return None
        sealed = Sealed(ciphertext=bytes(row[0]), nonce=bytes(row[1]), key_id=row[2])
        plaintext = self.keys.open(
            sealed,
            aad=associated_data(resource_id),
            what=f"market registration of resource {resource_id!r}",
        )
        return MarketRegistration.model_validate_json(plaintext)

    def delete_market_registration(self, resource_id: str) -> bool:
        """Remove a resource's market registration; whether there was one."""
        with self._writer.begin() as conn:
            result = conn.execute(_MREG.delete().where(_MREG.c.resource_id == resource_id))
            return result.rowcount > 0

    def reencrypt_market_registrations(self, at: datetime | None = None) -> int:
        """Re-seal every registration not under the primary key (key rotation); rows moved.

        Needs every old key id in the ring; after it, the old keys may be dropped.
        """
        updated = instant(at, "at")
        primary = self.keys.primary_key_id
        moved = 0
        with self._writer.begin() as conn:
            rows = conn.execute(
                select(_MREG.c.resource_id, _MREG.c.ciphertext, _MREG.c.nonce, _MREG.c.key_id)
                .where(_MREG.c.key_id != primary)
                .order_by(_MREG.c.resource_id)
            ).all()
            for resource_id, ciphertext, nonce, key_id in rows:
                aad = associated_data(resource_id)
                plaintext = self.keys.open(
                    Sealed(bytes(ciphertext), bytes(nonce), key_id),
                    aad=aad,
                    what=f"market registration of resource {resource_id!r}",
                )
                self._write_sealed(conn, resource_id, self.keys.seal(plaintext, aad=aad), updated)
                moved += 1
        return moved

    # ------------------------------------------------------------------ device side
    def device_facing_view(self, ven_id: str | None = None) -> DeviceFacingView:
        """The registry as the device side may see it (all VENs, or one): no market data.

        Reads the ``ven`` and ``resource`` tables only; the result's models have no field that
        could hold market registration data.
        """
        ven_stmt = select(_VEN.c.id, _VEN.c.ven_name).order_by(_VEN.c.ven_name)
        res_stmt = select(
            _RES.c.id,
            _RES.c.ven_id,
            _RES.c.resource_name,
            _RES.c.kind,
            _RES.c.n_units,
            _RES.c.rated_power_kw,
            _RES.c.state,
        ).order_by(_RES.c.ven_id, _RES.c.resource_name)
        if ven_id is not None:
            ven_stmt = ven_stmt.where(_VEN.c.id == ven_id)
            res_stmt = res_stmt.where(_RES.c.ven_id == ven_id)
        with self._engine.connect() as conn:
            vens = conn.execute(ven_stmt).mappings().all()
            resources = conn.execute(res_stmt).mappings().all()
        return DeviceFacingView(
            vens=tuple(DeviceFacingVen.model_validate(dict(v)) for v in vens),
            resources=tuple(DeviceFacingResource.model_validate(dict(r)) for r in resources),
        )

    def resource_ids_by_name(self, names: Iterable[str]) -> dict[str, str]:
        """Map resource names (any VEN) to their ids, for names that are unique."""
        wanted = list(dict.fromkeys(names))
        found: dict[str, list[str]] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(wanted):
                for rid, name in conn.execute(
                    select(_RES.c.id, _RES.c.resource_name).where(_RES.c.resource_name.in_(chunk))
                ):
                    found.setdefault(name, []).append(rid)
        return {name: ids[0] for name, ids in found.items() if len(ids) == 1}
