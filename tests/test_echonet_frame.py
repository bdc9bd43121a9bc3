"""ECHONET Lite frame codec and property maps (C1): exact-byte tables, truncation, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drready.echonet.errors import FrameError, PropertyValueError, UnsupportedFrameFormat
from drready.echonet.frame import (
    CONTROLLER,
    EOJ,
    ESV,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
    is_request,
    response_for,
    sna_for,
)
from drready.echonet.propmap import decode_property_map, encode_property_map

WATER_HEATER = EOJ(0x02, 0x6B, 0x01)

# (frame, exact bytes) — examples after ECHONET Lite Spec. Part II ch. 3.2 / 4.3.
FRAME_CASES: list[tuple[str, Frame, str]] = [
    (
        "Get 0x80 controller → water heater",
        Frame(0x0001, CONTROLLER, WATER_HEATER, ESV.GET, (Property(0x80),)),
        "10 81 00 01 05 FF 01 02 6B 01 62 01 80 00",
    ),
    (
        "Get_Res 0x80 = 0x30 (ON)",
        Frame(0x0001, WATER_HEATER, CONTROLLER, ESV.GET_RES, (Property(0x80, b"\x30"),)),
        "10 81 00 01 02 6B 01 05 FF 01 72 01 80 01 30",
    ),
    (
        "SetGet: set 0xC7 = 0x01, get 0xE1 and 0xE2",
        Frame(
            0x0002,
            CONTROLLER,
            WATER_HEATER,
            ESV.SETGET,
            (Property(0xC7, b"\x01"),),
            (Property(0xE1), Property(0xE2)),
        ),
        "10 81 00 02 05 FF 01 02 6B 01 6E 01 C7 01 01 02 E1 00 E2 00",
    ),
    (
        "SetGet_Res with values",
        Frame(
            0x0002,
            WATER_HEATER,
            CONTROLLER,
            ESV.SETGET_RES,
            (Property(0xC7),),
            (Property(0xE1, b"\x01\x5e"), Property(0xE2, b"\x01\xc2")),
        ),
        "10 81 00 02 02 6B 01 05 FF 01 7E 01 C7 00 02 E1 02 01 5E E2 02 01 C2",
    ),
    (
        "INF instance list notification (0xD5) from the node profile",
        Frame(
            0x0000,
            NODE_PROFILE,
            NODE_PROFILE,
            ESV.INF,
            (Property(0xD5, bytes.fromhex("01026B01")),),
        ),
        "10 81 00 00 0E F0 01 0E F0 01 73 01 D5 04 01 02 6B 01",
    ),
    (
        "OPC = 0 (Get_SNA without properties)",
        Frame(0xFFFF, WATER_HEATER, CONTROLLER, ESV.GET_SNA),
        "10 81 FF FF 02 6B 01 05 FF 01 52 00",
    ),
    (
        "unknown ESV 0x6F kept as int",
        Frame(0x1234, CONTROLLER, WATER_HEATER, 0x6F, (Property(0xB0, b"\x41"),)),
        "10 81 12 34 05 FF 01 02 6B 01 6F 01 B0 01 41",
    ),
]


@pytest.mark.parametrize(
    ("name", "frame", "hexbytes"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES]
)
def test_frame_table_both_directions(name: str, frame: Frame, hexbytes: str) -> None:
    data = bytes.fromhex(hexbytes)
    assert encode_frame(frame) == data
    assert decode_frame(data) == frame


def test_decoded_esv_is_int_and_known_values_compare() -> None:
    frame = decode_frame(bytes.fromhex("10 81 00 01 05 FF 01 02 6B 01 62 01 80 00"))
    assert frame.esv == ESV.GET
    assert ESV(frame.esv) is ESV.GET
    unknown = decode_frame(bytes.fromhex("10 81 00 01 05 FF 01 02 6B 01 99 00"))
    assert unknown.esv == 0x99


@pytest.mark.parametrize(
    ("name", "frame", "hexbytes"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES]
)
def test_every_truncation_raises_frame_error(name: str, frame: Frame, hexbytes: str) -> None:
    data = bytes.fromhex(hexbytes)
    for n in range(len(data)):
        with pytest.raises(FrameError):
            decode_frame(data[:n])


@pytest.mark.parametrize(
    ("name", "frame", "hexbytes"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES]
)
def test_trailing_bytes_raise(name: str, frame: Frame, hexbytes: str) -> None:
    with pytest.raises(FrameError, match="trailing"):
        decode_frame(bytes.fromhex(hexbytes) + b"\x00")


def test_pdc_past_end_names_offset() -> None:
    with pytest.raises(FrameError, match="offset 13"):
        decode_frame(bytes.fromhex("10 81 00 01 02 6B 01 05 FF 01 72 01 80 02 30"))


def test_bad_ehd1_is_frame_error_not_unsupported() -> None:
    with pytest.raises(FrameError, match="EHD1") as info:
        decode_frame(bytes.fromhex("11 81 00 01 05 FF 01 02 6B 01 62 01 80 00"))
    assert not isinstance(info.value, UnsupportedFrameFormat)


@pytest.mark.parametrize("ehd2", [0x82, 0x80, 0x00])
def test_format2_and_unknown_ehd2_are_unsupported(ehd2: int) -> None:
    data = bytes([0x10, ehd2]) + bytes.fromhex("00 01 05 FF 01 02 6B 01 62 01 80 00")
    with pytest.raises(UnsupportedFrameFormat):
        decode_frame(data)


def test_get_properties_only_for_setget() -> None:
    with pytest.raises(ValueError, match="SetGet"):
        Frame(1, CONTROLLER, WATER_HEATER, ESV.GET, (), (Property(0x80),))


@pytest.mark.parametrize("bad", [-1, 256])
def test_eoj_and_property_validate_ranges(bad: int) -> None:
    with pytest.raises(ValueError):
        EOJ(bad, 0, 0)
    with pytest.raises(ValueError):
        Property(bad)
    with pytest.raises(ValueError):
        Frame(0x10000 if bad > 0 else bad, CONTROLLER, WATER_HEATER, ESV.GET)
    with pytest.raises(ValueError):
        Property(0x80, bytes(256))


def test_eoj_helpers() -> None:
    eoj = EOJ.parse("0x026B01")
    assert eoj == WATER_HEATER == EOJ.parse("026b01") == EOJ.from_bytes(b"\x02\x6b\x01")
    assert eoj.class_id == 0x026B
    assert str(eoj) == "026B01"
    assert eoj.to_bytes() == b"\x02\x6b\x01"
    with pytest.raises(ValueError):
        EOJ.parse("026B")


def test_esv_helpers() -> None:
    assert response_for(ESV.SETI) is ESV.SET_RES
    assert response_for(ESV.SETC) is ESV.SET_RES
    assert response_for(ESV.GET) is ESV.GET_RES
    assert response_for(ESV.INF_REQ) is ESV.INF
    assert response_for(ESV.SETGET) is ESV.SETGET_RES
    assert response_for(ESV.INFC) is ESV.INFC_RES
    assert sna_for(ESV.SETI) is ESV.SETI_SNA
    assert sna_for(ESV.SETC) is ESV.SETC_SNA
    assert sna_for(ESV.GET) is ESV.GET_SNA
    assert sna_for(ESV.INF_REQ) is ESV.INF_SNA
    assert sna_for(ESV.SETGET) is ESV.SETGET_SNA
    assert all(is_request(e) for e in (ESV.SETI, ESV.SETC, ESV.GET, ESV.INF_REQ, ESV.SETGET))
    assert not any(is_request(e) for e in (ESV.GET_RES, ESV.INF, ESV.INFC, ESV.GET_SNA))
    with pytest.raises(ValueError):
        response_for(ESV.GET_RES)
    with pytest.raises(ValueError):
        sna_for(ESV.INFC)


# --------------------------------------------------------------------------- hypothesis

_bytes = st.integers(0, 255)
_eojs = st.builds(EOJ, _bytes, _bytes, _bytes)
_props = st.lists(st.builds(Property, _bytes, st.binary(max_size=20)), max_size=8).map(tuple)


@st.composite
def _frames(draw: st.DrawFn) -> Frame:
    esv = draw(_bytes)
    setget = esv in (ESV.SETGET, ESV.SETGET_RES, ESV.SETGET_SNA)
    return Frame(
        draw(st.integers(0, 0xFFFF)),
        draw(_eojs),
        draw(_eojs),
        esv,
        draw(_props),
        draw(_props) if setget else (),
    )


@given(_frames())
def test_round_trip_random_frames(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@given(st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(lambda b: b"\x10\x81" + b)))
def test_fuzz_decode_raises_only_frame_errors(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert encode_frame(frame) == data


# --------------------------------------------------------------------------- property maps


def test_property_map_list_form_exact_bytes() -> None:
    assert encode_property_map([0xE0, 0x80, 0x9F]) == bytes.fromhex("03 80 9F E0")
    assert decode_property_map(bytes.fromhex("03 80 9F E0")) == (0x80, 0x9F, 0xE0)
    assert encode_property_map([]) == b"\x00"
    assert decode_property_map(b"\x00") == ()


# A real device's Get property map (22 EPCs), test vector of smdn/Smdn.Net.EchonetLite
# (PropertyMapSerializerTests): byte i bit j ↔ EPC 0x80 + i + 0x10·j (Part II, Appendix 1).
BITMAP_EPCS = (
    0x80, 0x81, 0x82, 0x83, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
    0x8E, 0x8F, 0x90, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xB0, 0xB3,
)  # fmt: skip
BITMAP_EDT = "16 0B 01 01 09 00 00 00 01 01 01 03 03 03 03 03 03"


def test_property_map_bitmap_form_exact_bytes() -> None:
    assert encode_property_map(BITMAP_EPCS) == bytes.fromhex(BITMAP_EDT)
    assert decode_property_map(bytes.fromhex(BITMAP_EDT)) == BITMAP_EPCS


def test_property_map_bitmap_corners() -> None:
    low = encode_property_map(range(0x80, 0x90))
    assert low == bytes([16]) + b"\x01" * 16
    high = encode_property_map(range(0xF0, 0x100))
    assert high == bytes([16]) + b"\x80" * 16
    assert encode_property_map(range(0x80, 0x100)) == bytes([128]) + b"\xff" * 16


@pytest.mark.parametrize(
    "edt",
    [
        "",  # empty
        "02 80",  # count 2, one EPC
        "01 80 81",  # count 1, two EPCs
        "10 01",  # bitmap too short
        "11 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01",  # count 17, 16 bits set
        "02 80 80",  # duplicate
        "01 10",  # EPC < 0x80
    ],
)
def test_property_map_bad_edt(edt: str) -> None:
    with pytest.raises(PropertyValueError, match="EPC 0x9E") as info:
        decode_property_map(bytes.fromhex(edt), epc=0x9E)
    assert info.value.epc == 0x9E


def test_property_map_rejects_epc_outside_range() -> None:
    with pytest.raises(ValueError):
        encode_property_map([0x7F])


@given(st.sets(st.integers(0x80, 0xFF)))
def test_property_map_round_trip(epcs: set[int]) -> None:
    edt = encode_property_map(epcs)
    assert len(edt) == (1 + len(epcs) if len(epcs) < 16 else 17)
    assert decode_property_map(edt) == tuple(sorted(epcs))
