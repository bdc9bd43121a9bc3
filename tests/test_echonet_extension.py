"""The proposed maker-specific EPCs 0xF0/0xF1 with the request id (F2, D1): exact-byte tables,
both directions, truncated and malformed inputs, the 13-byte form of the first layout, and the
one kWh ↔ Wh conversion at the boundary."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from drready.domain import DeviceId, Direction, DrRequest, DrResponse, ResponseStatus
from drready.echonet import extension as ext
from drready.echonet.errors import PropertyValueError
from tests.echonet_helpers import TZ

T10 = datetime(2026, 5, 12, 10, tzinfo=TZ)
T13 = datetime(2026, 5, 12, 13, tzinfo=TZ)
T01 = datetime(2026, 5, 13, 1, tzinfo=TZ)
T05 = datetime(2026, 5, 13, 5, tzinfo=TZ)
SERVICER_ID = "drready-assignment-17"  # how the servicer names its events: 21 characters
ID_HEX = "15 " + SERVICER_ID.encode("ascii").hex(" ")
LONGEST_ID = "A" * 64
DEVICE = DeviceId.parse("000005:HW0000001")

# (case, decoded 0xF0, exact bytes)
F0_CASES: list[tuple[str, ext.DrRequestEdt, str]] = [
    (
        "first layout: 13 bytes, no id (the profile's worked example)",
        ext.DrRequestEdt(Direction.UP, T10, T13, 2000),
        "01 07EA 05 0C 0A 00 00B4 000007D0",
    ),
    (
        "down-DR overnight with the servicer's id",
        ext.DrRequestEdt(Direction.DOWN, T01, T05, 1500, SERVICER_ID),
        f"02 07EA 05 0D 01 00 00F0 000005DC {ID_HEX}",
    ),
    (
        "shortest id",
        ext.DrRequestEdt(Direction.UP, T10, T13, 1, "x"),
        "01 07EA 05 0C 0A 00 00B4 00000001 01 78",
    ),
    (
        "longest id, every allowed kind of character",
        ext.DrRequestEdt(Direction.UP, T10, T13, 1, "a-Z_0.9:" * 8),
        "01 07EA 05 0C 0A 00 00B4 00000001 40 " + ("a-Z_0.9:" * 8).encode().hex(" "),
    ),
]

# (case, decoded 0xF1, exact bytes)
F1_CASES: list[tuple[str, ext.DrResponseEdt, str]] = [
    ("no request yet", ext.NO_RESPONSE, "00 00000000"),
    ("accepted, first layout", ext.DrResponseEdt(ResponseStatus.ACCEPTED, 2000), "41 000007D0"),
    (
        "partial, naming the servicer's request",
        ext.DrResponseEdt(ResponseStatus.PARTIAL, 1234, SERVICER_ID),
        f"42 000004D2 {ID_HEX}",
    ),
    (
        "rejected, shortest id",
        ext.DrResponseEdt(ResponseStatus.REJECTED, 0, "x"),
        "43 00000000 01 78",
    ),
]


@pytest.mark.parametrize(("case", "edt", "wire"), F0_CASES, ids=[c[0] for c in F0_CASES])
def test_dr_request_both_ways(case: str, edt: ext.DrRequestEdt, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert edt.encode(TZ) == data, case
    assert ext.decode_dr_request(data, TZ) == edt, case


@pytest.mark.parametrize(("case", "edt", "wire"), F1_CASES, ids=[c[0] for c in F1_CASES])
def test_dr_response_both_ways(case: str, edt: ext.DrResponseEdt, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert edt.encode() == data, case
    assert ext.decode_dr_response(data) == edt, case


@pytest.mark.parametrize(("case", "edt", "wire"), F0_CASES, ids=[c[0] for c in F0_CASES])
def test_dr_request_truncated(case: str, edt: ext.DrRequestEdt, wire: str) -> None:
    data = bytes.fromhex(wire)
    for n in range(len(data)):
        if n == ext.DR_REQUEST_SIZE:  # the first layout is a valid request without an id
            assert ext.decode_dr_request(data[:n], TZ) == edt.__class__(
                edt.direction, edt.start, edt.end, edt.amount_wh
            )
            continue
        with pytest.raises(PropertyValueError, match="EPC 0xF0") as err:
            ext.decode_dr_request(data[:n], TZ)
        assert err.value.epc == ext.EPC_DR_REQUEST


@pytest.mark.parametrize(("case", "edt", "wire"), F1_CASES, ids=[c[0] for c in F1_CASES])
def test_dr_response_truncated(case: str, edt: ext.DrResponseEdt, wire: str) -> None:
    data = bytes.fromhex(wire)
    for n in range(len(data)):
        if n == ext.DR_RESPONSE_SIZE:
            assert ext.decode_dr_response(data[:n]).request_id is None
            continue
        with pytest.raises(PropertyValueError, match="EPC 0xF1"):
            ext.decode_dr_response(data[:n])


BASE_F0 = "01 07EA 05 0C 0A 00 00B4 000007D0"


@pytest.mark.parametrize(
    ("case", "wire", "message"),
    [
        ("bad direction", "03 07EA 05 0C 0A 00 00B4 000007D0", "direction"),
        ("amount 0", "01 07EA 05 0C 0A 00 00B4 00000000", "amount"),
        ("amount above 1 GWh", "01 07EA 05 0C 0A 00 00B4 3B9ACA01", "amount"),
        ("month 13", "01 07EA 0D 0C 0A 00 00B4 000007D0", "invalid date-time"),
        ("start off the 30-minute grid", "01 07EA 05 0C 0A 0A 00B4 000007D0", "30-minute"),
        ("window of 0 min", "01 07EA 05 0C 0A 00 0000 000007D0", "window length"),
        ("window over 48 h", "01 07EA 05 0C 0A 00 0B5E 000007D0", "window length"),
        ("length byte only", f"{BASE_F0} 00", "request id"),
        ("length 0 and a character", f"{BASE_F0} 00 78", "request id"),
        ("length beyond the EDT", f"{BASE_F0} 05 78 78 78", "request id"),
        ("length short of the EDT", f"{BASE_F0} 01 78 78", "request id"),
        ("a space in the id", f"{BASE_F0} 03 61 20 62", r"\[A-Za-z0-9\._:-\]"),
        ("a slash in the id", f"{BASE_F0} 03 61 2F 62", r"\[A-Za-z0-9\._:-\]"),
        ("non-ASCII id", f"{BASE_F0} 03 E3 81 82", r"\[A-Za-z0-9\._:-\]"),
        ("id of 65 characters", f"{BASE_F0} 41 " + "41 " * 65, "with a request id"),
    ],
)
def test_dr_request_refused(case: str, wire: str, message: str) -> None:
    with pytest.raises(PropertyValueError, match=message):
        ext.decode_dr_request(bytes.fromhex(wire), TZ)


@pytest.mark.parametrize(
    ("case", "wire", "message"),
    [
        ("unknown status", "44 00000000", "unknown status"),
        ("length byte only", "41 000007D0 00", "request id"),
        ("length beyond the EDT", "41 000007D0 02 78", "request id"),
        ("a space in the id", "41 000007D0 03 61 20 62", r"\[A-Za-z0-9\._:-\]"),
    ],
)
def test_dr_response_refused(case: str, wire: str, message: str) -> None:
    with pytest.raises(PropertyValueError, match=message):
        ext.decode_dr_response(bytes.fromhex(wire))


def test_ids_that_cannot_travel_are_refused_on_encode_too() -> None:
    for bad in ("a b", "", "A" * 65, "日本"):
        with pytest.raises(ValidationError):
            ext.DrRequestEdt(Direction.UP, T10, T13, 1, bad).encode(TZ)
        with pytest.raises(ValidationError):
            ext.DrResponseEdt(ResponseStatus.ACCEPTED, 1, bad).encode()
    assert len(ext.DrRequestEdt(Direction.UP, T10, T13, 1, LONGEST_ID).encode(TZ)) == 78


def test_accepted_amount_is_clamped_to_the_u32_field() -> None:
    assert ext.DrResponseEdt(ResponseStatus.ACCEPTED, 2**32).encode() == bytes.fromhex(
        "41 FFFFFFFF"
    )
    assert ext.DrResponseEdt(ResponseStatus.REJECTED, -5).encode() == bytes.fromhex("43 00000000")


def test_amounts_cross_the_boundary_once_as_whole_wh() -> None:
    request = DrRequest(
        request_id=SERVICER_ID,
        direction=Direction.UP,
        start=T10,
        end=T13,
        amount_kwh=2.0004,
        issued_at=T10,
    )
    edt = ext.DrRequestEdt.from_request(request)
    assert edt == ext.DrRequestEdt(Direction.UP, T10, T13, 2000, SERVICER_ID)
    tiny = ext.DrRequestEdt.from_request(request.model_copy(update={"amount_kwh": 0.0004}))
    assert tiny.amount_wh == 1  # a request is never 0 Wh on the wire
    # on the unit: the id it carries, else the unit's own
    got = edt.to_request("el-minted", T10)
    assert (got.request_id, got.amount_kwh, got.issuer) == (SERVICER_ID, 2.0, "echonet-lite")
    assert ext.DrRequestEdt(Direction.UP, T10, T13, 2000).to_request(
        "el-minted", T10
    ).request_id == ("el-minted")
    response = DrResponse.from_amounts(got, DEVICE, 1.2344, "partial")
    assert ext.DrResponseEdt.from_response(response, SERVICER_ID) == ext.DrResponseEdt(
        ResponseStatus.PARTIAL, 1234, SERVICER_ID
    )
    assert ext.kwh_from_wh(1234) == 1.234 and ext.wh_from_kwh(1.234) == 1234
