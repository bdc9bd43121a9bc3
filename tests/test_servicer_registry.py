"""Servicer registry: VENs and resources, market registration encrypted at rest, and a device
side that cannot see it — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from drready.servicer.storage.crypto import (
    ENV_DATA_KEY,
    ENV_DATA_KEY_FILE,
    DataKeyError,
    DecryptionError,
    KeyRing,
    associated_data,
    generate_key,
    key_fingerprint,
    write_key_file,
)
from drready.servicer.storage.db import Base, ResourceKind, ResourceState, VenRoute
from drready.servicer.storage.registry import (
    DeviceFacingResource,
    DeviceFacingVen,
    MarketRegistration,
    ProductClass,
    Registry,
    VoltageClass,
    normalize_supply_point_id,
)
from drready.servicer.storage.store import ServicerStore

JST = timezone(timedelta(hours=9))
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=JST)
SUPPLY_POINT = "0300111234567890123456"
RETAILER = "Example Denryoku Retail KK"
KEY1 = secrets.token_bytes(32)


def _ring(key_id: str = "k1") -> KeyRing:
    return KeyRing([(key_id, secrets.token_bytes(32))])


@pytest.fixture
def store(db_url: str) -> Iterator[ServicerStore]:
    s = ServicerStore.open(db_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def registry(store: ServicerStore) -> Registry:
    reg = store.registry(KeyRing([("k1", KEY1)]))
    reg.upsert_ven(ven_id="v-gw", ven_name="home-gw-1", route="gateway", client_id="gw1", at=T0)
    reg.upsert_ven(ven_id="v-cl", ven_name="maker-cloud", route="cloud", client_id="mc", at=T0)
    reg.upsert_resource(
        resource_id="r-unit",
        ven_id="v-gw",
        resource_name="000005:HW0000001",
        kind="unit",
        rated_power_kw=1.5,
    )
    reg.upsert_resource(
        resource_id="r-fleet",
        ven_id="v-cl",
        resource_name="FLEET",
        kind="group",
        n_units=1000,
        rated_power_kw=1500.0,
    )
    return reg


def _registration(**changes: Any) -> MarketRegistration:
    data: dict[str, Any] = {
        "supply_point_id": SUPPLY_POINT,
        "voltage_class": "low",
        "retailer": RETAILER,
        "contract_power_kw": 6.0,
        "product_class": "tertiary_reserve_2",
    }
    data.update(changes)
    return MarketRegistration.model_validate(data)


# ---------------------------------------------------------------------- VENs and resources


def test_upserts_are_idempotent_and_listing_joins_the_ven(registry: Registry) -> None:
    assert not registry.upsert_ven(
        ven_id="v-gw", ven_name="home-gw-1", route="gateway", client_id="gw1"
    )
    assert registry.upsert_ven(
        ven_id="v-gw", ven_name="home-gw-1b", route="gateway", client_id="gw1"
    )
    ven = registry.get_ven("v-gw")
    assert ven is not None and ven.ven_name == "home-gw-1b" and ven.created_at == T0
    assert not registry.upsert_resource(
        resource_id="r-fleet",
        ven_id="v-cl",
        resource_name="FLEET",
        kind="group",
        n_units=1000,
        rated_power_kw=1500.0,
    )
    assert registry.upsert_resource(
        resource_id="r-fleet",
        ven_id="v-cl",
        resource_name="FLEET",
        kind="group",
        n_units=1001,
        rated_power_kw=1501.5,
    )
    rows = registry.list_resources()
    assert [(r.id, r.ven_name, r.route, r.kind, r.n_units) for r in rows] == [
        ("r-unit", "home-gw-1b", VenRoute.GATEWAY, ResourceKind.UNIT, 1),
        ("r-fleet", "maker-cloud", VenRoute.CLOUD, ResourceKind.GROUP, 1001),
    ]
    assert [r.id for r in registry.list_resources(route="cloud")] == ["r-fleet"]
    assert [r.id for r in registry.list_resources(ven_id="v-gw")] == ["r-unit"]
    assert registry.resource_ids_by_name(["FLEET", "nope"]) == {"FLEET": "r-fleet"}
    assert registry.mark_ven_seen("v-cl", T0 + timedelta(minutes=5))
    assert not registry.mark_ven_seen("v-cl", T0)  # never moves backwards
    seen = registry.get_ven("v-cl")
    assert seen is not None and seen.last_seen_at == T0 + timedelta(minutes=5)


def test_resource_states(registry: Registry) -> None:
    both = ["r-unit", "r-fleet"]
    assert registry.mark_offline(both) == 2
    assert registry.mark_offline(both) == 0
    assert [r.id for r in registry.list_resources(state="offline")] == ["r-unit", "r-fleet"]
    assert registry.retire(["r-unit"]) == 1
    assert registry.mark_active(both, T0 + timedelta(hours=1)) == 1  # retired stays retired
    states = {r.id: (r.state, r.last_seen_at) for r in registry.list_resources()}
    assert states == {
        "r-unit": (ResourceState.RETIRED, None),
        "r-fleet": (ResourceState.ACTIVE, T0 + timedelta(hours=1)),
    }
    # a state change is not undone by re-registering the resource
    registry.upsert_resource(
        resource_id="r-unit",
        ven_id="v-gw",
        resource_name="000005:HW0000001",
        kind="unit",
        rated_power_kw=1.5,
    )
    unit = registry.get_resource("r-unit")
    assert unit is not None and unit.state is ResourceState.RETIRED


_BAD_RESOURCES: list[tuple[dict[str, Any], str]] = [
    ({"resource_name": "HW1"}, "resource_name of a unit must be its DeviceId"),
    ({"n_units": 2}, "n_units must be 1 for a unit"),
    ({"kind": "group", "n_units": 0}, "n_units must be an integer ≥ 1"),
    ({"rated_power_kw": 0.0}, r"rated_power_kw must be finite and in \(0, 1e\+07\] kW"),
    ({"rated_power_kw": float("inf")}, "rated_power_kw must be finite"),
    ({"kind": "cluster"}, "kind must be one of 'unit', 'group'"),
    ({"ven_id": "v-none"}, "ven_id 'v-none' is not registered"),
    ({"resource_id": ""}, "resource_id must be 1–128 printable characters"),
    ({"resource_name": "000005:HW0000001"}, "resource_name '000005:HW0000001' is already used"),
]


def test_bad_resources_are_refused_naming_the_field(registry: Registry) -> None:
    before = registry.list_resources()
    for changes, message in _BAD_RESOURCES:
        args: dict[str, Any] = {
            "resource_id": "r-new",
            "ven_id": "v-gw",
            "resource_name": "000005:HW0000002",
            "kind": "unit",
            "rated_power_kw": 1.5,
        }
        args.update(changes)
        with pytest.raises(ValueError, match=message):
            registry.upsert_resource(**args)
    assert registry.list_resources() == before


# ---------------------------------------------------------------------- MarketRegistration


def test_market_registration_validation_names_the_field_without_echoing_it() -> None:
    reg = _registration(supply_point_id="03-0011-1234-5678-9012-3456")
    assert reg.supply_point_id == SUPPLY_POINT and reg.area == "Tokyo"
    full_width = "０３００１１１２３４５６７８９０１２３４５６"
    assert _registration(supply_point_id=full_width).supply_point_id == SUPPLY_POINT
    assert reg.masked_supply_point_id == "03" + "*" * 16 + "3456"
    assert SUPPLY_POINT not in repr(reg) and RETAILER not in repr(reg)
    assert (
        reg.voltage_class is VoltageClass.LOW
        and reg.product_class is ProductClass.TERTIARY_RESERVE_2
    )

    cases: list[tuple[dict[str, Any], str]] = [
        ({"supply_point_id": SUPPLY_POINT[:-1]}, "supply_point_id must be the 22-digit"),
        ({"supply_point_id": SUPPLY_POINT + "7"}, "got 23 digits"),
        ({"supply_point_id": "03001112345678901234AB"}, "got characters other than digits"),
        ({"supply_point_id": "11" + SUPPLY_POINT[2:]}, "area code 01–10"),
        ({"voltage_class": "medium"}, "voltage_class"),
        ({"retailer": "  "}, "retailer must be 1–100 characters, got 0"),
        ({"retailer": "x" * 101}, "retailer must be 1–100 characters, got 101"),
        ({"contract_power_kw": 0.0}, r"contract_power_kw must be finite and > 0"),
        ({"contract_power_kw": 2e6}, r"contract_power_kw must be <= 1000000.*\(0, 1000000\]"),
        ({"contract_power_kw": float("nan")}, "contract_power_kw must be finite"),
        ({"product_class": "tertiary"}, "product_class"),
        ({"customer_name": "Taro"}, "customer_name"),
    ]
    for changes, message in cases:
        with pytest.raises(ValidationError, match=message) as info:
            _registration(**changes)
        assert SUPPLY_POINT[:-1] not in str(info.value)  # never echoed
    labels = {p: p.label_ja for p in ProductClass}
    assert labels[ProductClass.SECONDARY_RESERVE_1] == "需給調整市場 二次調整力①"
    assert labels[ProductClass.CAPACITY_DR] == "容量市場 発動指令電源"
    assert normalize_supply_point_id("10 0000 0000 0000 0000 0000") == "10" + "0" * 20


# ---------------------------------------------------------------------- encryption at rest


def _all_rows_text(store: ServicerStore) -> str:
    """Every row of every servicer table, as text (bytes as hex and latin-1)."""
    parts = []
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        parts += [raw.hex(), raw.decode("latin-1")]
                    else:
                        parts.append(json.dumps(value, default=str, ensure_ascii=False))
    return "\n".join(parts)


def test_market_registration_round_trip_and_no_plaintext_at_rest(
    store: ServicerStore, registry: Registry, db_url: str
) -> None:
    reg = _registration(product_class=ProductClass.KWH_DR_TYPE_1_2)
    registry.set_market_registration("r-unit", reg, at=T0)
    assert registry.get_market_registration("r-unit") == reg
    assert registry.get_market_registration("r-fleet") is None
    assert [r.has_market_registration for r in registry.list_resources()] == [True, False]

    dump = _all_rows_text(store)
    assert "000005:HW0000001" in dump  # the scan sees plaintext columns …
    for secret in (SUPPLY_POINT, RETAILER, "kwh_dr_type_1_2"):
        assert secret not in dump  # … and finds no market data in any of them
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database or "")
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"000005:HW0000001" in raw
        for secret in (SUPPLY_POINT, RETAILER):
            assert secret.encode() not in raw
            assert secret.encode("utf-16-le") not in raw

    # the row is AES-256-GCM under the ring's key, bound to the resource id (checked with the
    # primitive directly, not through the registry)
    with store.engine.connect() as conn:
        ciphertext, nonce, key_id = conn.execute(
            text("SELECT ciphertext, nonce, key_id FROM market_registration")
        ).one()
    assert key_id == "k1" and len(bytes(nonce)) == 12
    plain = AESGCM(KEY1).decrypt(bytes(nonce), bytes(ciphertext), associated_data("r-unit"))
    assert MarketRegistration.model_validate_json(plain) == reg


def test_wrong_key_missing_key_and_swapped_ciphertext_fail_clearly(
    store: ServicerStore, registry: Registry
) -> None:
    registry.set_market_registration("r-unit", _registration(), at=T0)
    registry.set_market_registration("r-fleet", _registration(contract_power_kw=500.0), at=T0)

    wrong = Registry(store.engine, _ring("k1"))  # same id, other bytes
    with pytest.raises(DecryptionError, match=r"resource 'r-unit'.*authentication failed"):
        wrong.get_market_registration("r-unit")
    other_id = Registry(store.engine, _ring("k2"))
    with pytest.raises(DataKeyError, match="sealed with key id 'k1', which is not in the key ring"):
        other_id.get_market_registration("r-unit")

    # copy r-unit's sealed row over r-fleet's: the fleet row must not decrypt to r-unit's data
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE market_registration SET "
                "ciphertext = (SELECT ciphertext FROM market_registration WHERE resource_id = "
                "'r-unit'), nonce = (SELECT nonce FROM market_registration WHERE resource_id = "
                "'r-unit') WHERE resource_id = 'r-fleet'"
            )
        )
    with pytest.raises(DecryptionError, match=r"resource 'r-fleet'.*belongs to another row"):
        registry.get_market_registration("r-fleet")
    assert registry.get_market_registration("r-unit") == _registration()
    assert registry.delete_market_registration("r-fleet")
    assert not registry.delete_market_registration("r-fleet")


def test_key_rotation_reencrypts_under_the_new_primary(
    store: ServicerStore, registry: Registry
) -> None:
    registry.set_market_registration("r-unit", _registration(), at=T0)
    new_key = secrets.token_bytes(32)
    rotated = Registry(store.engine, KeyRing([("k2", new_key), ("k1", KEY1)]))
    assert rotated.get_market_registration("r-unit") == _registration()  # old rows still open
    assert rotated.reencrypt_market_registrations(at=T0) == 1
    assert rotated.reencrypt_market_registrations(at=T0) == 0
    only_new = Registry(store.engine, KeyRing([("k2", new_key)]))
    assert only_new.get_market_registration("r-unit") == _registration()
    with pytest.raises(DataKeyError, match="'k2'"):
        registry.get_market_registration("r-unit")  # the old ring alone no longer suffices


# ---------------------------------------------------------------------- device side


def test_device_facing_view_never_touches_or_carries_market_data(
    store: ServicerStore, registry: Registry
) -> None:
    registry.set_market_registration("r-unit", _registration(), at=T0)
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        view = registry.device_facing_view()
        one = registry.device_facing_view("v-gw")
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    assert statements and not any("market_registration" in s for s in statements)
    wire = view.model_dump_json()
    for secret in (SUPPLY_POINT, RETAILER, "tertiary_reserve_2", "contract_power"):
        assert secret not in wire
    assert "000005:HW0000001" in wire and "FLEET" in wire
    assert [r.id for r in one.resources] == ["r-unit"] and [v.id for v in one.vens] == ["v-gw"]
    market_fields = set(MarketRegistration.model_fields)
    for model in (DeviceFacingVen, DeviceFacingResource):
        assert not market_fields & set(model.model_fields)


# ---------------------------------------------------------------------- key configuration


def test_key_ring_from_environment_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataKeyError, match=f"{ENV_DATA_KEY}.*{ENV_DATA_KEY_FILE}"):
        KeyRing.from_env({})
    key = generate_key()
    raw = base64.b64decode(key)
    ring = KeyRing.from_env({ENV_DATA_KEY: key})
    assert ring.key_ids == (key_fingerprint(raw),) and ring.primary_key_id.startswith("fp-")
    two = KeyRing.from_env({ENV_DATA_KEY: f"new:{generate_key()}, old:{key}"})
    assert two.key_ids == ("new", "old") and two.primary_key_id == "new"
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert KeyRing.parse(urlsafe, "x").key_ids == ring.key_ids
    assert key not in repr(two)

    with pytest.raises(DataKeyError, match=f"{ENV_DATA_KEY}: entry 1 must be base64 of exactly 32"):
        KeyRing.from_env({ENV_DATA_KEY: base64.b64encode(b"short").decode()})
    with pytest.raises(DataKeyError, match=f"{ENV_DATA_KEY}: entry 2 is not valid base64"):
        KeyRing.from_env({ENV_DATA_KEY: f"{key} not*base64!"})
    with pytest.raises(DataKeyError, match="'a' is given twice with different keys"):
        KeyRing.from_env({ENV_DATA_KEY: f"a:{key} a:{generate_key()}"})

    path = tmp_path / "data.key"
    key_id = write_key_file(path, key_id="2026-07")
    assert key_id == "2026-07" and (path.stat().st_mode & 0o777) == 0o600
    from_file = KeyRing.from_env({ENV_DATA_KEY_FILE: str(path)})
    assert from_file.key_ids == ("2026-07",)
    with pytest.raises(FileExistsError):
        write_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(DataKeyError, match="readable by others; chmod 600"):
        KeyRing.from_env({ENV_DATA_KEY_FILE: str(path)})
    inside_repo = Path(__file__).resolve().parent / "never-written.key"
    with pytest.raises(DataKeyError, match="inside the git work tree"):
        KeyRing.from_env({ENV_DATA_KEY_FILE: str(inside_repo)})
    with pytest.raises(DataKeyError, match="inside the git work tree"):
        write_key_file(inside_repo)
    assert not inside_repo.exists()
    with pytest.raises(DataKeyError, match="cannot read"):
        KeyRing.from_env({ENV_DATA_KEY_FILE: str(tmp_path / "missing.key")})


def test_registry_reads_the_key_from_the_environment_when_not_given(
    registry: Registry, store: ServicerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DATA_KEY, raising=False)
    monkeypatch.delenv(ENV_DATA_KEY_FILE, raising=False)
    bare = store.registry()
    with pytest.raises(DataKeyError, match=ENV_DATA_KEY):
        bare.set_market_registration("r-unit", _registration())
    monkeypatch.setenv(ENV_DATA_KEY, generate_key())
    env_registry = store.registry()
    env_registry.set_market_registration("r-unit", _registration(), at=datetime.now(UTC))
    assert env_registry.get_market_registration("r-unit") == _registration()
