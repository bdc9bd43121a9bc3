"""Tests of the unified data model ``drready.domain`` (D1; F1–F6).

Every validation rule is exercised with a bad value, and the error message is checked to name
the field (and, where it has one, the allowed range).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from drready.cli.dr_spec import parse_dr_spec
from drready.domain import (
    MODELS,
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    PowerSample,
    PowerSource,
    ResponseStatus,
    SlotGrid,
    count_window_slots,
    ensure_aware,
    is_slot_aligned,
    write_json_schemas,
)
from drready.domain.base import float_fields_validated

JST = ZoneInfo("Asia/Tokyo")
DEV = DeviceId(maker_code="000005", serial="HW0000001")
T0 = datetime(2026, 5, 12, 10, 0, tzinfo=JST)
ISSUED = datetime(2026, 5, 11, 18, 0, tzinfo=JST)


def at(hour: int, minute: int = 0, day: int = 12) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=JST)


def expect_error(fn: Any, *fragments: str) -> str:
    """Call ``fn``; it must raise a ValidationError whose text contains every fragment."""
    with pytest.raises(ValidationError) as info:
        fn()
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def round_trip(obj: BaseModel) -> None:
    again = type(obj).model_validate_json(obj.model_dump_json())
    assert again == obj
    assert again.model_dump_json() == obj.model_dump_json()


# -- builders -----------------------------------------------------------------------------------
def make_envelope(n: int = 4, start: datetime = T0, **kw: Any) -> FlexibilityEnvelope:
    slots = tuple(
        EnvelopeSlot(
            start=start + k * timedelta(minutes=30),
            baseline_kw=0.5,
            min_kw=0.0,
            max_kw=1.5,
            cum_min_kwh=0.0,
            cum_max_kwh=0.75 * (k + 1),
        )
        for k in range(n)
    )
    fields: dict[str, Any] = {
        "device_id": DEV,
        "computed_at": ISSUED,
        "window_start": start,
        "window_end": start + n * timedelta(minutes=30),
        "confidence": 0.9,
        "up_kwh": 2.0,
        "down_kwh": 1.0,
        "slots": slots,
    }
    fields.update(kw)
    return FlexibilityEnvelope(**fields)


def make_request(**kw: Any) -> DrRequest:
    fields: dict[str, Any] = {
        "request_id": "up-1000-1300",
        "direction": Direction.UP,
        "start": at(10),
        "end": at(13),
        "amount_kwh": 3.0,
        "issuer": "servicer-A",
        "issued_at": ISSUED,
    }
    fields.update(kw)
    return DrRequest(**fields)


def make_plan(n: int = 4, **kw: Any) -> HeatingPlan:
    grid = SlotGrid(start=T0, n_slots=n)
    slots = tuple(
        PlanSlot.from_power(s, power_kw=1.0 * (k % 2), stored_heat_kwh=10.0 + k)
        for k, s in enumerate(grid.starts())
    )
    fields: dict[str, Any] = {
        "device_id": DEV,
        "created_at": ISSUED,
        "grid": grid,
        "slots": slots,
        "honours": ("up-1000-1300",),
        "cost_yen": 12.5,
    }
    fields.update(kw)
    return HeatingPlan(**fields)


# -- base behaviour -----------------------------------------------------------------------------
def test_models_registry_is_complete() -> None:
    assert set(MODELS) == {
        "DeviceId",
        "SlotGrid",
        "EnvelopeSlot",
        "FlexibilityEnvelope",
        "DrRequest",
        "DrResponse",
        "PlanSlot",
        "HeatingPlan",
        "PowerSample",
    }


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_frozen_and_forbid_extra(name: str) -> None:
    model = MODELS[name]
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_float_field_is_range_checked(name: str) -> None:
    checked = float_fields_validated(MODELS[name])
    assert all(checked.values()), checked


def test_frozen_and_extra_in_practice() -> None:
    with pytest.raises(ValidationError):
        DEV.serial = "X"  # type: ignore[misc]
    expect_error(
        lambda: DeviceId.model_validate({"maker_code": "000005", "serial": "A", "name": "Taro"}),
        "name",
        "Extra inputs are not permitted",
    )


def test_examples_round_trip() -> None:
    req = make_request()
    for obj in (
        DEV,
        SlotGrid.day_ahead(date(2026, 5, 12)),
        make_envelope(),
        make_envelope().slots[0],
        req,
        DrResponse.from_amounts(req, DEV, 1.0, reason="tank nearly full"),
        make_plan(),
        make_plan().slots[1],
        PowerSample(
            device_id=DEV,
            timestamp=T0,
            power_w=1234.5,
            cumulative_energy_kwh=100.25,
            source=PowerSource.MEASURED,
        ),
    ):
        round_trip(obj)


# -- ids (F6) -----------------------------------------------------------------------------------
def test_device_id_string_form() -> None:
    assert str(DEV) == "000005:HW0000001"
    assert DeviceId.parse("000005:HW0000001") == DEV
    assert hash(DeviceId.parse(str(DEV))) == hash(DEV)


def test_device_id_echonet_bytes_hand_example() -> None:
    expected = bytes(
        [0xFE, 0x00, 0x00, 0x05]
        + [0x48, 0x57, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31]  # "HW0000001"
        + [0x00] * 4
    )
    assert len(expected) == 17
    assert DEV.to_echonet_id() == expected
    assert DeviceId.from_echonet_id(expected) == DEV
    full = DeviceId(maker_code="ABCDEF", serial="0123456789abc")
    assert full.to_echonet_id() == b"\xfe\xab\xcd\xef0123456789abc"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xfe\x00\x00\x05HW", "17 bytes"),
        (b"\xfe" + b"\x00" * 17, "17 bytes"),
        (b"\x00\x00\x00\x05HW0000001\x00\x00\x00\x00", "0xFE"),
        (b"\xfe\x00\x00\x05HW\x00000001\x00\x00\x00\x00", "padded"),
        (b"\xfe\x00\x00\x05HW\xff000001\x00\x00\x00\x00", "ASCII"),
        (b"\xfe\x00\x00\x05" + b"\x00" * 13, "serial"),
    ],
)
def test_device_id_from_bad_echonet_bytes(raw: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        DeviceId.from_echonet_id(raw)


@pytest.mark.parametrize(
    ("maker", "serial", "field"),
    [
        ("00005", "A", "maker_code"),
        ("0000050", "A", "maker_code"),
        ("00000a", "A", "maker_code"),
        ("00000G", "A", "maker_code"),
        ("000005", "", "serial"),
        ("000005", "A" * 14, "serial"),
        ("000005", "HW 1", "serial"),
        ("000005", "HW:1", "serial"),
        ("000005", "機器", "serial"),
    ],
)
def test_device_id_rejects(maker: str, serial: str, field: str) -> None:
    allowed = "6 uppercase hex" if field == "maker_code" else "1–13 characters"
    expect_error(lambda: DeviceId(maker_code=maker, serial=serial), f"{field} must be", allowed)


def test_device_id_parse_rejects() -> None:
    expect_error(lambda: DeviceId.parse("000005HW1"), "MMMMMM:SERIAL")
    expect_error(lambda: DeviceId.parse("000005:HW:1"), "serial must be")


@given(
    maker=st.from_regex(r"[0-9A-F]{6}", fullmatch=True),
    serial=st.from_regex(r"[A-Za-z0-9._\-]{1,13}", fullmatch=True),
)
def test_device_id_properties(maker: str, serial: str) -> None:
    d = DeviceId(maker_code=maker, serial=serial)
    assert DeviceId.parse(str(d)) == d
    raw = d.to_echonet_id()
    assert len(raw) == 17 and raw[0] == 0xFE
    assert DeviceId.from_echonet_id(raw) == d
    round_trip(d)


# -- time ---------------------------------------------------------------------------------------
def test_day_ahead_grid() -> None:
    g = SlotGrid.day_ahead(date(2026, 5, 12))
    assert g.start == datetime(2026, 5, 11, 23, 0, tzinfo=timezone(timedelta(hours=9)))
    assert g.start.isoformat() == "2026-05-11T23:00:00+09:00"
    assert g.n_slots == 64
    assert g.end == at(7, day=13)
    assert g.index_of(at(10)) == 22
    assert (g.slot_minutes, g.slot_hours) == (30, 0.5)
    starts = g.starts()
    assert len(starts) == 64 and starts[0] == g.start and starts[-1] == at(6, 30, day=13)
    assert all(s.tzinfo == JST for s in starts)


def test_utc_offset_is_the_same_instant() -> None:
    g = SlotGrid.day_ahead(date(2026, 5, 12))
    assert g.index_of(datetime(2026, 5, 12, 1, 0, tzinfo=UTC)) == 22
    utc_grid = SlotGrid(start=datetime(2026, 5, 11, 14, 0, tzinfo=UTC), n_slots=64)
    assert utc_grid == g  # equal instants
    assert utc_grid.starts()[0].isoformat() == "2026-05-11T23:00:00+09:00"
    req = make_request(start=at(10).astimezone(UTC), end=at(13).astimezone(UTC))
    assert req == make_request()
    assert g.window_indices(req.start, req.end) == (22, 28)


def test_grid_windows_and_contains() -> None:
    g = SlotGrid(start=T0, n_slots=8)  # 10:00–14:00
    assert g.window_indices(at(10), at(14)) == (0, 8)
    assert g.window_indices(at(11, 30), at(12)) == (3, 4)
    assert g.contains(at(10), at(14))
    assert not g.contains(at(9, 30), at(11))
    assert not g.contains(at(12), at(14, 30))
    assert not g.contains(at(12), at(12))
    assert not g.contains(at(12, 15), at(13))
    assert g.hours == 4.0
    with pytest.raises(ValueError, match=r"end must be after start"):
        g.window_indices(at(12), at(11))
    with pytest.raises(ValueError, match=r"inside the grid \[2026-05-12T10:00:00\+09:00"):
        g.window_indices(at(9), at(11))
    with pytest.raises(ValueError, match=r"start must be aligned.*got 10:15"):
        g.window_indices(at(10, 15), at(11))
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        g.contains(at(10), datetime(2026, 5, 12, 11))


@pytest.mark.parametrize(
    ("dt", "fragment"),
    [
        (at(14), r"dt must be a slot start inside the grid \[2026-05-12T10:00:00\+09:00, "),
        (at(9, 30), "inside the grid"),
        (at(10, 15), r"dt must be aligned .* got 10:15"),
        (at(10, 0) + timedelta(seconds=1), r"got 10:00:01"),
        (datetime(2026, 5, 12, 10), "dt must be timezone-aware"),
    ],
)
def test_index_of_rejects(dt: datetime, fragment: str) -> None:
    g = SlotGrid(start=T0, n_slots=8)
    with pytest.raises(ValueError, match=fragment):
        g.index_of(dt)


def test_slot_grid_rejects() -> None:
    expect_error(lambda: SlotGrid(start=T0, n_slots=0), "n_slots must be between 1 and 96", "got 0")
    expect_error(lambda: SlotGrid(start=T0, n_slots=97), "n_slots must be between 1 and 96")
    expect_error(
        lambda: SlotGrid(start=at(10, 15), n_slots=4),
        "start must be aligned to a 30-minute slot boundary (minute 0 or 30, second 0), got 10:15",
    )
    expect_error(lambda: SlotGrid(start=T0, n_slots=4, tz="Mars/Olympus"), "tz must be a valid")
    expect_error(lambda: SlotGrid(start=T0, n_slots=4, tz=""), "tz must be a valid")
    expect_error(lambda: SlotGrid(start=datetime(2026, 5, 12, 10), n_slots=4), "start", "aware")
    expect_error(
        lambda: SlotGrid.model_validate_json('{"start": "2026-05-12T10:00:00", "n_slots": 4}'),
        "start",
        "timezone",
    )
    # Alignment is checked in the grid's zone: 10:00 UTC is 15:45 in Kathmandu.
    expect_error(
        lambda: SlotGrid(
            start=datetime(2026, 5, 12, 10, tzinfo=UTC), n_slots=4, tz="Asia/Kathmandu"
        ),
        "got 15:45",
    )


def test_grid_handles_dst_by_elapsed_time() -> None:
    # Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00.
    berlin = ZoneInfo("Europe/Berlin")
    g = SlotGrid(start=datetime(2026, 3, 29, 1, 0, tzinfo=berlin), n_slots=4, tz="Europe/Berlin")
    assert [s.strftime("%H:%M") for s in g.starts()] == ["01:00", "01:30", "03:00", "03:30"]
    assert g.index_of(datetime(2026, 3, 29, 3, 0, tzinfo=berlin)) == 2
    assert g.end == datetime(2026, 3, 29, 4, 0, tzinfo=berlin)


def test_time_helpers() -> None:
    assert is_slot_aligned(at(10)) and is_slot_aligned(at(10, 30))
    assert not is_slot_aligned(at(10, 15))
    assert not is_slot_aligned(at(10) + timedelta(microseconds=1))
    assert ensure_aware(T0, "x") is T0
    with pytest.raises(ValueError, match="when must be timezone-aware"):
        ensure_aware(datetime(2026, 5, 12), "when")
    assert count_window_slots(at(10), at(13)) == 6
    with pytest.raises(ValueError, match=r"window longer than the planning horizon: 50.0 h > 48 h"):
        count_window_slots(at(10), at(12, day=14))
    assert count_window_slots(at(10), at(10, day=14)) == 96
    # Aligned wall clocks whose offsets differ by 15 minutes leave a partial slot.
    nepal = timezone(timedelta(hours=5, minutes=45))
    with pytest.raises(ValueError, match="whole number of 30-minute slots"):
        count_window_slots(at(10), datetime(2026, 5, 12, 10, 0, tzinfo=nepal))


@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    n=st.integers(1, 96),
    k=st.integers(0, 95),
)
def test_grid_index_properties(day: date, n: int, k: int) -> None:
    g = SlotGrid.day_ahead(day, n_slots=n)
    k = k % n
    s = g.starts()[k]
    assert g.index_of(s) == k
    assert g.index_of(s.astimezone(UTC)) == k
    assert g.window_indices(s, g.end) == (k, n)
    round_trip(g)


# -- flexibility (F1) ---------------------------------------------------------------------------
def test_envelope_ok_and_summary() -> None:
    env = make_envelope(up_kwh=2.123456, confidence=0.95)
    assert env.n_slots == 4
    assert env.baseline_kwh == pytest.approx(1.0)
    assert env.grid() == SlotGrid(start=T0, n_slots=4)
    summary = env.summary()
    assert summary == {
        "device_id": "000005:HW0000001",
        "window_start": "2026-05-12T10:00:00+09:00",
        "window_end": "2026-05-12T12:00:00+09:00",
        "up_kwh": 2.1235,
        "down_kwh": 1.0,
        "confidence": 0.95,
        "slots": [
            {"start": s.isoformat(), "baseline_kw": 0.5, "min_kw": 0.0, "max_kw": 1.5}
            for s in SlotGrid(start=T0, n_slots=4).starts()
        ],
    }
    json.dumps(summary)  # JSON-ready


def test_envelope_slot_rejects() -> None:
    ok: dict[str, Any] = {
        "start": T0,
        "baseline_kw": 0.5,
        "min_kw": 0.0,
        "max_kw": 1.5,
        "cum_min_kwh": 0.0,
        "cum_max_kwh": 0.75,
    }

    def bad(**kw: Any) -> Any:
        return lambda: EnvelopeSlot(**{**ok, **kw})

    EnvelopeSlot(**{**ok, "min_kw": 0.5 + 5e-7})  # within tolerance
    expect_error(bad(min_kw=-0.1), "min_kw must be finite and >= 0, got -0.1")
    expect_error(bad(max_kw=math.inf), "max_kw must be finite")
    expect_error(bad(baseline_kw=math.nan), "baseline_kw must be finite")
    expect_error(bad(cum_max_kwh=math.nan), "cum_max_kwh must be finite")
    expect_error(bad(min_kw=0.6), "min_kw must be <= baseline_kw", "0.6")
    expect_error(bad(max_kw=0.4), "baseline_kw must be <= max_kw")
    expect_error(bad(cum_min_kwh=1.0), "cum_min_kwh must be <= cum_max_kwh")
    expect_error(bad(start=at(10, 15)), "start must be aligned", "got 10:15")


def test_envelope_rejects() -> None:
    expect_error(lambda: make_envelope(confidence=0.4), "confidence must be finite and >= 0.5")
    expect_error(
        lambda: make_envelope(confidence=1.0),
        "confidence must be < 1, got 1.0 (allowed range: [0.5, 1))",
    )
    expect_error(lambda: make_envelope(up_kwh=-1.0), "up_kwh must be finite and >= 0, got -1.0")
    expect_error(lambda: make_envelope(down_kwh=math.inf), "down_kwh must be finite")
    expect_error(lambda: make_envelope(window_end=T0), "window_end must be after window_start")
    expect_error(
        lambda: make_envelope(window_end=T0 + timedelta(hours=50)),
        "window longer than the planning horizon: 50.0 h > 48 h",
    )
    expect_error(lambda: make_envelope(window_start=at(10, 10)), "window_start must be aligned")
    expect_error(lambda: make_envelope(window_end=at(13)), "slots must have one entry", "(6)")
    env = make_envelope()
    shuffled = (env.slots[1], env.slots[0], *env.slots[2:])
    expect_error(lambda: make_envelope(slots=shuffled), "slots[0].start must be")
    dropping = list(env.slots)
    dropping[2] = dropping[2].model_copy(update={"cum_max_kwh": 0.1})
    expect_error(lambda: make_envelope(slots=tuple(dropping)), "slots[2].cum_max_kwh must be >=")
    expect_error(lambda: make_envelope(computed_at=datetime(2026, 5, 12)), "computed_at")


slot_values = st.floats(0.0, 5.0, allow_nan=False)


@st.composite
def envelopes(draw: st.DrawFn) -> FlexibilityEnvelope:
    n = draw(st.integers(1, 96))
    start = SlotGrid.day_ahead(draw(st.dates(date(2020, 1, 1), date(2040, 1, 1)))).start
    offset = draw(st.sampled_from([UTC, JST, timezone(timedelta(hours=-4))]))
    start = start.astimezone(offset)
    cum_min = cum_max = 0.0
    slots = []
    for k in range(n):
        a, b, c = sorted(draw(slot_values) for _ in range(3))
        cum_min += a * 0.5
        cum_max += c * 0.5
        slots.append(
            EnvelopeSlot(
                start=start + k * timedelta(minutes=30),
                baseline_kw=b,
                min_kw=a,
                max_kw=c,
                cum_min_kwh=cum_min,
                cum_max_kwh=cum_max,
            )
        )
    return FlexibilityEnvelope(
        device_id=DEV,
        computed_at=start - timedelta(minutes=draw(st.integers(0, 10_000))),
        window_start=start,
        window_end=start + n * timedelta(minutes=30),
        confidence=draw(st.floats(0.5, 1.0, exclude_max=True)),
        up_kwh=draw(st.floats(0.0, 100.0)),
        down_kwh=draw(st.floats(0.0, 100.0)),
        slots=tuple(slots),
    )


@given(envelopes())
def test_envelope_round_trip_property(env: FlexibilityEnvelope) -> None:
    round_trip(env)
    assert env.baseline_kwh == pytest.approx(sum(s.baseline_kw for s in env.slots) / 2)
    assert len(env.summary()["slots"]) == env.n_slots


# -- requests (F2) ------------------------------------------------------------------------------
def test_request_ok() -> None:
    req = make_request()
    assert req.n_slots == 6 and req.hours == 3.0
    # No deadline: a request issued after its start is still a valid request.
    late = make_request(issued_at=at(11))
    assert late.issued_at > late.start
    assert make_request(issuer="電力会社 A").issuer == "電力会社 A"
    assert make_request(amount_kwh=1e6).amount_kwh == 1e6


def test_request_rejects() -> None:
    expect_error(
        lambda: make_request(amount_kwh=-1.0), "amount_kwh must be finite and > 0, got -1.0"
    )
    expect_error(lambda: make_request(amount_kwh=0.0), "amount_kwh must be finite and > 0")
    expect_error(lambda: make_request(amount_kwh=math.nan), "amount_kwh must be finite")
    expect_error(lambda: make_request(amount_kwh=2e6), "amount_kwh must be <= 1000000")
    expect_error(
        lambda: make_request(start=at(10, 15)),
        "start must be aligned to a 30-minute slot boundary (minute 0 or 30, second 0), got 10:15",
    )
    expect_error(lambda: make_request(end=at(13, 0) + timedelta(seconds=5)), "end must be aligned")
    expect_error(lambda: make_request(end=at(10)), "end must be after start")
    expect_error(
        lambda: make_request(end=at(12, day=14)),
        "window longer than the planning horizon: 50.0 h > 48 h",
    )
    expect_error(lambda: make_request(request_id=""), "request_id must be 1–64 characters")
    expect_error(lambda: make_request(request_id="a b"), "request_id", "[A-Za-z0-9._:-]")
    expect_error(lambda: make_request(request_id="x" * 65), "request_id must be 1–64")
    expect_error(lambda: make_request(issuer=""), "issuer must be 1–64 printable characters")
    expect_error(lambda: make_request(issuer="a\nb"), "issuer must be")
    expect_error(lambda: make_request(direction="sideways"), "direction")
    expect_error(lambda: make_request(issued_at=datetime(2026, 5, 11)), "issued_at", "aware")


def test_cli_dr_spec_examples() -> None:
    day = date(2026, 5, 12)
    up = parse_dr_spec("up:10:00-13:00:3.0", day, issued_at=ISSUED)
    assert up == DrRequest(
        request_id="up-1000-1300",
        direction=Direction.UP,
        start=at(10),
        end=at(13),
        amount_kwh=3.0,
        issued_at=ISSUED,
    )
    down = parse_dr_spec("down:17:00-20:00:1.5", day, request_id="d1", issued_at=ISSUED)
    assert (down.direction, down.request_id, down.n_slots, down.amount_kwh) == (
        Direction.DOWN,
        "d1",
        6,
        1.5,
    )
    night = parse_dr_spec("down:22:00-24:00:2", day)
    assert night.end == datetime(2026, 5, 13, 0, 0, tzinfo=JST)
    assert night.request_id == "down-2200-2400"
    assert night.issued_at.tzinfo is not None
    utc = parse_dr_spec("up:01:00-04:00:3", day, tz="UTC", issued_at=ISSUED)
    assert utc.start == at(10)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("sideways:10:00-13:00:3", "direction 'sideways'"),
        ("up", "must look like"),
        ("up:10:00:3", "must look like"),
        ("up:10:00-13:00:lots", "amount 'lots'"),
        ("up:10:00-13:00:-3", "amount '-3'"),
        ("up:10:00-13:00:nan", "amount 'nan'"),
        ("up:1000-13:00:3", "start time '1000'"),
        ("up:10:00-13h:3", "end time '13h'"),
        ("up:25:00-26:00:3", "start time '25:00'"),
        ("up:24:00-24:00:3", "start time '24:00'"),
        ("up:10:00-24:30:3", "end time '24:30'"),
        ("up:10:61-11:00:3", "start time '10:61'"),
    ],
)
def test_cli_dr_spec_bad_parts(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")) as info:
        parse_dr_spec(spec, date(2026, 5, 12))
    assert not isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("up:10:15-13:00:3", "start must be aligned"),
        ("up:13:00-10:00:3", "end must be after start"),
    ],
)
def test_cli_dr_spec_rule_violations(spec: str, fragment: str) -> None:
    expect_error(lambda: parse_dr_spec(spec, date(2026, 5, 12)), fragment)


def test_cli_dr_spec_bad_tz() -> None:
    with pytest.raises(ValueError, match="tz must be a valid IANA"):
        parse_dr_spec("up:10:00-13:00:3", date(2026, 5, 12), tz="Nowhere/City")


@given(
    direction=st.sampled_from(Direction),
    start_slot=st.integers(0, 47),
    length=st.integers(1, 48),
    amount=st.floats(1e-3, 1e6),
)
def test_request_round_trip_property(
    direction: Direction, start_slot: int, length: int, amount: float
) -> None:
    end_slot = min(start_slot + length, 48)
    hm = [f"{k // 2:02d}:{30 * (k % 2):02d}" for k in (start_slot, end_slot)]
    spec = f"{direction.value}:{hm[0]}-{hm[1]}:{amount!r}"
    req = parse_dr_spec(spec, date(2026, 5, 12), issued_at=ISSUED)
    assert req.n_slots == end_slot - start_slot
    assert req.amount_kwh == amount
    round_trip(req)


def test_response_from_amounts() -> None:
    req = make_request()
    full = DrResponse.from_amounts(req, DEV, 3.0 * (1 + 1e-9))
    assert (full.status, full.accepted_kwh, full.requested_kwh) == (
        ResponseStatus.ACCEPTED,
        3.0,
        3.0,
    )
    almost = DrResponse.from_amounts(req, DEV, 3.0 * (1 - 1e-7))
    assert almost.status is ResponseStatus.ACCEPTED and almost.accepted_kwh == 3.0
    part = DrResponse.from_amounts(req, DEV, 1.2, reason="tank limit")
    assert (part.status, part.accepted_kwh, part.reason) == (
        ResponseStatus.PARTIAL,
        1.2,
        "tank limit",
    )
    none = DrResponse.from_amounts(req, DEV, -1e-9, reason="no storage left")
    assert (none.status, none.accepted_kwh) == (ResponseStatus.REJECTED, 0.0)
    assert DrResponse.from_amounts(req, DEV, 5e-7, reason="x").status is ResponseStatus.REJECTED
    expect_error(lambda: DrResponse.from_amounts(req, DEV, 1.2), "reason is required", "partial")
    with pytest.raises(ValueError, match=r"accepted_kwh must be in \[0, 3\]"):
        DrResponse.from_amounts(req, DEV, 3.5)
    with pytest.raises(ValueError, match=r"accepted_kwh must be in \[0, 3\]"):
        DrResponse.from_amounts(req, DEV, -0.5)
    with pytest.raises(ValueError, match="accepted_kwh must be finite"):
        DrResponse.from_amounts(req, DEV, math.nan)


def test_response_rejects() -> None:
    base: dict[str, Any] = {"request_id": "r1", "device_id": DEV, "requested_kwh": 3.0}

    def bad(**kw: Any) -> Any:
        return lambda: DrResponse(**{**base, **kw})

    expect_error(
        bad(status="accepted", accepted_kwh=2.0),
        "accepted_kwh must equal requested_kwh",
        "'accepted'",
    )
    expect_error(
        bad(status="accepted", accepted_kwh=3.1), "accepted_kwh must be in [0, requested_kwh]"
    )
    expect_error(bad(status="rejected", accepted_kwh=0.5, reason="x"), "accepted_kwh must be 0")
    expect_error(
        bad(status="rejected", accepted_kwh=0.0), "reason is required when status is 'rejected'"
    )
    expect_error(
        bad(status="partial", accepted_kwh=3.0, reason="x"),
        "accepted_kwh must be in (0, requested_kwh)",
    )
    expect_error(bad(status="partial", accepted_kwh=0.0, reason="x"), "'partial'")
    expect_error(
        bad(status="partial", accepted_kwh=1.0), "reason is required when status is 'partial'"
    )
    expect_error(bad(status="partial", accepted_kwh=1.0, reason="  "), "reason must not be blank")
    expect_error(bad(status="accepted", accepted_kwh=-1.0), "accepted_kwh must be finite and >= 0")
    expect_error(bad(status="accepted", accepted_kwh=math.inf), "accepted_kwh must be finite")
    expect_error(
        bad(status="accepted", accepted_kwh=0.0, requested_kwh=0.0), "requested_kwh must be"
    )
    expect_error(bad(status="maybe", accepted_kwh=0.0), "status")
    ok = DrResponse(**base, status="accepted", accepted_kwh=3.0)
    assert ok.reason is None and ok.status is ResponseStatus.ACCEPTED


# -- plan (F3/F4) -------------------------------------------------------------------------------
def test_plan_ok() -> None:
    plan = make_plan(n=8)
    assert plan.energy_kwh == pytest.approx(2.0)
    assert plan.window_energy_kwh(at(10, 30), at(11, 30)) == pytest.approx(0.5)
    assert plan.window_energy_kwh(at(10), at(14)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="inside the grid"):
        plan.window_energy_kwh(at(13), at(15))
    assert make_plan(honours=()).honours == ()


def test_plan_slot_rejects() -> None:
    ok: dict[str, Any] = {"start": T0, "power_kw": 1.0, "energy_kwh": 0.5, "stored_heat_kwh": 5.0}

    def bad(**kw: Any) -> Any:
        return lambda: PlanSlot(**{**ok, **kw})

    PlanSlot(**{**ok, "energy_kwh": 0.5 + 9e-7})  # within tolerance
    expect_error(bad(energy_kwh=0.6), "energy_kwh must equal power_kw × 0.5 h = 0.5", "got 0.6")
    expect_error(bad(power_kw=-1.0, energy_kwh=-0.5), "power_kw must be finite and >= 0")
    expect_error(bad(stored_heat_kwh=-0.1), "stored_heat_kwh must be finite and >= 0")
    expect_error(bad(stored_heat_kwh=math.nan), "stored_heat_kwh must be finite")
    expect_error(bad(start=at(10, 45)), "start must be aligned", "got 10:45")


def test_plan_rejects() -> None:
    plan = make_plan()
    expect_error(
        lambda: make_plan(slots=plan.slots[:3]), "slots must have one entry per grid slot (4)"
    )
    swapped = (plan.slots[1], plan.slots[0], *plan.slots[2:])
    expect_error(
        lambda: make_plan(slots=swapped), "slots[0].start must be 2026-05-12T10:00:00+09:00"
    )
    expect_error(lambda: make_plan(cost_yen=-1.0), "cost_yen must be finite and >= 0")
    expect_error(lambda: make_plan(honours=("a", "a")), "honours must not repeat", "'a'")
    expect_error(lambda: make_plan(honours=("bad id",)), "honours must be 1–64 characters")
    expect_error(lambda: make_plan(created_at=datetime(2026, 5, 12)), "created_at", "aware")


# -- power (F5) ---------------------------------------------------------------------------------
def test_power_sample_rules() -> None:
    ok: dict[str, Any] = {
        "device_id": DEV,
        "timestamp": T0 + timedelta(seconds=17, microseconds=5),  # any instant, not aligned
        "power_w": 1500.0,
        "cumulative_energy_kwh": 3.0,
        "source": "estimated",
    }
    sample = PowerSample(**ok)
    assert sample.source is PowerSource.ESTIMATED
    round_trip(sample)
    for field, value, fragment in [
        (
            "power_w",
            -1.0,
            "power_w must be finite and >= 0, got -1.0 (allowed range: [0, 10000000000])",
        ),
        ("power_w", 2e10, "power_w must be <= 10000000000"),
        ("power_w", math.inf, "power_w must be finite"),
        ("cumulative_energy_kwh", -0.5, "cumulative_energy_kwh must be finite and >= 0"),
        ("cumulative_energy_kwh", math.nan, "cumulative_energy_kwh must be finite"),
        ("source", "guessed", "source"),
        ("timestamp", datetime(2026, 5, 12, 10), "timestamp must be timezone-aware"),
        ("device_id", "nope", "device id must look like"),
    ]:
        expect_error(lambda f=field, v=value: PowerSample(**{**ok, f: v}), fragment)


@given(
    power_w=st.floats(0.0, 100_000.0),
    energy=st.floats(0.0, 1e9),
    source=st.sampled_from(PowerSource),
    ts=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, JST, ZoneInfo("America/New_York")]),
    ),
)
def test_power_sample_round_trip_property(
    power_w: float, energy: float, source: PowerSource, ts: datetime
) -> None:
    round_trip(
        PowerSample(
            device_id=DEV,
            timestamp=ts,
            power_w=power_w,
            cumulative_energy_kwh=energy,
            source=source,
        )
    )


def test_json_nan_refused() -> None:
    text = (
        '{"device_id": {"maker_code": "000005", "serial": "A"}, '
        '"timestamp": "2026-05-12T10:00:00+09:00", "power_w": NaN, '
        '"cumulative_energy_kwh": 1.0, "source": "measured"}'
    )
    expect_error(lambda: PowerSample.model_validate_json(text), "power_w must be finite")


def test_device_id_accepts_string_form_in_json() -> None:
    text = (
        '{"device_id": "000005:HW0000001", "timestamp": "2026-05-12T01:00:00Z", '
        '"power_w": 10, "cumulative_energy_kwh": 1, "source": "measured"}'
    )
    sample = PowerSample.model_validate_json(text)
    assert sample.device_id == DEV and sample.timestamp == T0  # 01:00Z is 10:00 JST


# -- schema -------------------------------------------------------------------------------------
def test_write_json_schemas(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "schemas"
    paths = write_json_schemas(out)
    assert sorted(p.name for p in paths) == sorted(f"{n}.schema.json" for n in MODELS)
    for path in paths:
        assert path.parent == out
        schema = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.removesuffix(".schema.json")
        assert schema["title"] == name
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
        assert set(schema["properties"]) == set(MODELS[name].model_fields)
    request = json.loads((out / "DrRequest.schema.json").read_text(encoding="utf-8"))
    assert "amount_kwh" in request["required"]
    assert request["properties"]["direction"]["$ref"].endswith("Direction")
    assert write_json_schemas(out) == paths  # idempotent, overwrites
