"""MRA loading (Release R) and the schema-driven EDT codec (C1), for every property."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from drready.echonet.errors import PropertyValueError
from drready.echonet.mra import MRA_RELEASE, Access, PropertySpec, class_spec, known_class_ids
from drready.echonet.values import decode_value, encode_value, validate_edt

CLASSES = (0x0EF0, 0x026B, 0x027D, 0x0288)
_FORMATS = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4}
_SIGNED = {"int8", "int16", "int32"}


def _code(text: str) -> int:
    return int(text.split("...")[0], 16)


def example_edt(schema: Mapping[str, Any]) -> bytes:
    """One valid EDT for ``schema``, built from the schema alone (first/minimum choices)."""
    if "oneOf" in schema:
        return example_edt(schema["oneOf"][0])
    kind = schema["type"]
    if kind == "number":
        size = _FORMATS[schema["format"]]
        raw = schema["enum"][0] if "enum" in schema else schema.get("minimum", 0)
        return int(raw).to_bytes(size, "big", signed=schema["format"] in _SIGNED)
    if kind in ("state", "numericValue"):
        return _code(schema["enum"][0]["edt"]).to_bytes(int(schema.get("size", 1)), "big")
    if kind == "level":
        if "base" in schema:
            width = max(1, (len(schema["base"]) - 1) // 2)
            return int(schema["base"], 16).to_bytes(width, "big")
        return bytes([schema.get("minimum", 0)])
    if kind == "bitmap":
        word = 0
        for entry in schema["bitmaps"]:
            mask = int(entry["position"]["bitMask"], 2)
            shift = (mask & -mask).bit_length() - 1
            first = _code(entry["value"]["enum"][0]["edt"]) if "enum" in entry["value"] else 0
            word |= (first << shift) << (8 * entry["position"]["index"])
        return word.to_bytes(schema["size"], "big")
    if kind == "time":
        return bytes([12, 34, 56])[: schema.get("size", 2)]
    if kind == "date":
        return bytes.fromhex("07E8071A")[: schema.get("size", 4)]
    if kind == "date-time":
        return bytes.fromhex("07E8071A0C2238")[: schema.get("size", 7)]
    if kind == "raw":
        return bytes(range(1, max(1, schema.get("minSize", 1)) + 1))
    if kind == "object":
        return b"".join(example_edt(e["element"]) for e in schema["properties"])
    if kind == "array":
        count = schema.get("minItems", 1) or 1
        return example_edt(schema["items"]) * count
    raise AssertionError(f"example_edt: unknown type {kind}")


def _all_properties() -> list[tuple[int, PropertySpec]]:
    return [(cid, spec) for cid in CLASSES for spec in class_spec(cid).properties.values()]


ALL = _all_properties()
IDS = [f"{cid:04X}-{spec.epc:02X}" for cid, spec in ALL]


# --------------------------------------------------------------------------- MRA


def test_known_classes() -> None:
    assert MRA_RELEASE == "R"
    assert set(known_class_ids()) >= {0x0000, 0x0EF0, 0x026B, 0x027D, 0x0288}
    with pytest.raises(KeyError, match="0x0130"):
        class_spec(0x0130)


def test_water_heater_class_spec() -> None:
    cls = class_spec(0x026B)
    assert cls.short_name == "electricWaterHeater"
    assert cls.name_en == "Electric water heater"
    props = cls.properties
    for epc in (0x80, 0x84, 0x85, 0xB0, *range(0xC7, 0xD0), 0xE1, 0xE2):
        assert epc in props, hex(epc)
    assert props[0x80].short_name == "operationStatus"  # from the super class
    assert props[0xC7].set is Access.REQUIRED
    assert props[0xC7].get is Access.REQUIRED
    assert props[0xCB].set is Access.NOT_APPLICABLE
    assert props[0xE3].get is Access.REQUIRED_O
    assert props[0x85].data["multiple"] == 0.001
    assert props[0x85].data["unit"] == "kWh"


def test_release_r_entry_is_chosen() -> None:
    # 0xB0: Release A–H has INF optional, Release I–latest makes INF required.
    assert class_spec(0x026B).properties[0xB0].inf is Access.REQUIRED
    # 0x93: "locationInformation" (A, B), "remoteControl" (C–G, H–latest with 0x61…).
    remote = class_spec(0x026B).properties[0x93]
    assert remote.short_name == "remoteControl"
    assert any(e["edt"] == "0x61" for e in remote.data["enum"])
    # 0x81: raw_1 until B, oneOf raw_1 / raw_17 from C.
    assert "oneOf" in class_spec(0x0000).properties[0x81].data


def test_refs_resolved_everywhere() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            assert "$ref" not in node
            for value in node.values():
                walk(value)
        elif isinstance(node, tuple | list):
            for value in node:
                walk(value)

    for _, spec in ALL:
        walk(spec.data)


def test_node_profile() -> None:
    props = class_spec(0x0EF0).properties
    for epc in (0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0x9D, 0x9E, 0x9F):
        assert epc in props, hex(epc)
    assert props[0x80].short_name == "operatingStatus"  # own entry wins over super class
    assert props[0x80].set is Access.NOT_APPLICABLE


def test_own_entry_wins_over_super_class() -> None:
    assert class_spec(0x027D).properties[0x89].get is Access.REQUIRED
    assert class_spec(0x026B).properties[0x89].get is Access.OPTIONAL


# --------------------------------------------------------------------------- every property


@pytest.mark.parametrize(("cid", "spec"), ALL, ids=IDS)
def test_example_round_trips(cid: int, spec: PropertySpec) -> None:
    edt = example_edt(spec.data)
    value = decode_value(spec, edt)
    assert encode_value(spec, value) == edt
    validate_edt(spec, edt)


def _fixed(schema: Mapping[str, Any]) -> bool:
    if "oneOf" in schema:
        return all(_fixed(a) for a in schema["oneOf"])
    kind = schema["type"]
    if kind == "raw":
        return bool(schema["minSize"] == schema["maxSize"])
    if kind == "object":
        return all(_fixed(e["element"]) for e in schema["properties"])
    if kind == "array":
        return bool(schema.get("minItems") == schema.get("maxItems"))
    return True


@pytest.mark.parametrize(("cid", "spec"), ALL, ids=IDS)
def test_wrong_size_raises(cid: int, spec: PropertySpec) -> None:
    bad = [bytes(256)]
    if _fixed(spec.data):
        bad += [example_edt(spec.data) + b"\x00", example_edt(spec.data)[:-1]]
    for edt in bad:
        with pytest.raises(PropertyValueError, match=f"EPC 0x{spec.epc:02X}") as info:
            validate_edt(spec, edt)
        assert info.value.epc == spec.epc


NUMBERS = [(c, s) for c, s in ALL if s.data.get("type") == "number"]


@pytest.mark.parametrize(("cid", "spec"), NUMBERS, ids=[f"{c:04X}-{s.epc:02X}" for c, s in NUMBERS])
def test_out_of_range_number_raises(cid: int, spec: PropertySpec) -> None:
    schema = spec.data
    size = _FORMATS[schema["format"]]
    signed = schema["format"] in _SIGNED
    lo_fmt = -(1 << (8 * size - 1)) if signed else 0
    hi_fmt = (1 << (8 * size - 1)) - 1 if signed else (1 << (8 * size)) - 1
    if "enum" in schema:
        candidates = [v for v in range(lo_fmt, min(hi_fmt, 300)) if v not in schema["enum"]][:1]
    else:
        candidates = [schema["maximum"] + 1, schema["minimum"] - 1]
    tested = 0
    for raw in candidates:
        if lo_fmt <= raw <= hi_fmt:
            with pytest.raises(PropertyValueError, match=f"EPC 0x{spec.epc:02X}"):
                validate_edt(spec, raw.to_bytes(size, "big", signed=signed))
            tested += 1
    if tested == 0:
        pytest.skip("range covers the whole format")


STATES = [(c, s) for c, s in ALL if s.data.get("type") == "state"]


@pytest.mark.parametrize(("cid", "spec"), STATES, ids=[f"{c:04X}-{s.epc:02X}" for c, s in STATES])
def test_state_not_in_enum_raises(cid: int, spec: PropertySpec) -> None:
    size = int(spec.data.get("size", 1))
    ranges = [(_code(e["edt"]), int(e["edt"].split("...")[-1], 16)) for e in spec.data["enum"]]
    code = next(
        c for c in range(1 << (8 * min(size, 2))) if not any(a <= c <= b for a, b in ranges)
    )
    with pytest.raises(PropertyValueError, match=f"EPC 0x{spec.epc:02X}"):
        validate_edt(spec, code.to_bytes(size, "big"))
    with pytest.raises(PropertyValueError, match=f"EPC 0x{spec.epc:02X}"):
        encode_value(spec, "noSuchState")


# --------------------------------------------------------------------------- hand checks


def _wh(epc: int) -> PropertySpec:
    return class_spec(0x026B).properties[epc]


@pytest.mark.parametrize(
    ("epc", "value", "hexbytes"),
    [
        (0xE1, 350, "01 5E"),  # remaining hot water 350 L
        (0xC7, "true", "01"),  # participates in energy shift
        (0xC7, "false", "00"),
        (0xCA, "at1300", "0D"),  # heating shift to 13:00
        (0xCA, "cleared", "00"),
        (0x80, "true", "30"),  # operation status ON
        (0x84, 1234, "04 D2"),  # 1234 W
        (0x85, 1.234, "00 00 04 D2"),  # 0.001 kWh steps (number_0-999999.999kWh)
        (0xB3, 60, "3C"),
        (0xB3, "undefined", "FD"),
        (0xE8, 3, "33"),  # level_31-8: 0x33 is level 3
        (0x91, "06:30", "06 1E"),
        (0x8E, "2024-07-26", "07 E8 07 1A"),
        (0xC2, {"noHotWater": True, "leaking": False, "freezing": False}, "00 00 00 01"),
        (
            0xCB,
            {"at1000": 1000, "at1300": 2000, "at1500": 3000, "at1700": 4000},
            "00 00 03 E8 00 00 07 D0 00 00 0B B8 00 00 0F A0",
        ),
        (0x83, bytes.fromhex("FE000005") + bytes(13), "FE 00 00 05" + " 00" * 13),
    ],
)
def test_water_heater_hand_checks(epc: int, value: Any, hexbytes: str) -> None:
    edt = bytes.fromhex(hexbytes)
    spec = _wh(epc)
    assert encode_value(spec, value) == edt
    assert decode_value(spec, edt) == value


def test_hand_check_messages() -> None:
    with pytest.raises(PropertyValueError, match="EPC 0xE1: 70000 is outside 0–65533 L"):
        encode_value(_wh(0xE1), 70000)
    with pytest.raises(PropertyValueError, match=r"EPC 0x85: .*multiple of 0\.001 kWh"):
        encode_value(_wh(0x85), 1.2345)
    with pytest.raises(PropertyValueError, match="EPC 0xB3"):
        validate_edt(_wh(0xB3), b"\x65")  # 101 °C: neither 0–100 nor 0xFD
    with pytest.raises(PropertyValueError, match="EPC 0xC8"):
        validate_edt(_wh(0xC8), b"\x02")  # only 1, 20–24 allowed


def test_scaled_and_special_values() -> None:
    assert decode_value(_wh(0x85), bytes.fromhex("3B9AC9FF")) == 999999.999
    assert isinstance(decode_value(_wh(0x84), b"\x00\x01"), int)
    meter = class_spec(0x0288).properties
    assert decode_value(meter[0xE0], bytes.fromhex("FFFFFFFE")) == "noData"
    assert decode_value(meter[0xE7], bytes.fromhex("FFFFFF38")) == -200
    assert decode_value(meter[0xE1], b"\x01") == 0.1
    assert encode_value(meter[0xE1], 0.1) == b"\x01"
    current = decode_value(meter[0xE8], bytes.fromhex("001E 7FFE"))
    assert current == {"rPhase": 3.0, "tPhase": "noData"}
    assert decode_value(meter[0xEA], bytes.fromhex("07E8071A0C1E00 000004D2")) == {
        "dateAndTime": "2024-07-26T12:30:00",
        "electricEnergy": 1234,
    }


def test_node_profile_lists() -> None:
    props = class_spec(0x0EF0).properties
    value = decode_value(props[0xD6], bytes.fromhex("02 026B01 027D01"))
    assert value == {"numberOfInstances": 2, "instanceList": [b"\x02\x6b\x01", b"\x02\x7d\x01"]}
    assert encode_value(props[0xD6], value) == bytes.fromhex("02026B01027D01")


def test_unsupported_schema_passes_raw_hex() -> None:
    spec = PropertySpec(
        0xF9, "x", "x", "x", Access.OPTIONAL, Access.OPTIONAL, Access.OPTIONAL, {"type": "weird"}
    )
    assert decode_value(spec, b"\x01\x02") == "0102"
    validate_edt(spec, b"\xff")
    assert encode_value(spec, "0102") == b"\x01\x02"
