"""Tests of DR settlement (drready.servicer.core.settlement): signs for up- and down-DR by hand, the
portfolio as the sum of its resources, how requests are spread, the CSV round trip and its
checks, the baseline-to-settlement path, an event settled from meter history by hand, and the
invariant that actual = baseline delivers 0."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from drready.domain import DEFAULT_TZ, Direction, SlotGrid
from drready.servicer.core.baseline import BaselineConfig, EventWindow, compute_baseline
from drready.servicer.core.settlement import (
    CSV_COLUMNS,
    ResourceSettlement,
    Settlement,
    delivered_kwh,
    event_baseline_config,
    read_settlement_csv,
    settle,
    settle_baseline,
    settle_event,
)

from .test_servicer_baseline import EVENT, JUNE, d, hand_case

TOKYO = ZoneInfo(DEFAULT_TZ)
START = datetime(2026, 6, 10, 14, 0, tzinfo=TOKYO)
WINDOW = SlotGrid(start=START, n_slots=2)


def two_resources(direction: Direction, requested: object = (1.0, 0.0)) -> Settlement:
    return settle(
        event_id="ev-1",
        direction=direction,
        window=WINDOW,
        resource_ids=["hp-a", "hp-b"],
        baseline_kwh=[[1.0, 1.0], [0.5, 0.25]],
        actual_kwh=[[0.25, 1.5], [0.5, 0.0]],
        requested_kwh=requested,  # type: ignore[arg-type]
    )


def test_signs_down_dr_by_hand() -> None:
    s = two_resources(Direction.DOWN)
    a, b = s.resources
    assert a.delivered_kwh == (0.75, -0.5)  # baseline − actual: used less, then more
    assert b.delivered_kwh == (0.0, 0.25)
    assert a.requested_kwh == (0.5, 0.5)  # 1 kWh for the window spread over 2 slots
    assert a.delivered_ratio == (1.5, -1.0)
    assert b.delivered_ratio == (None, None)  # nothing requested
    assert a.total_delivered_kwh == 0.25 and a.total_delivered_ratio == 0.25
    assert b.total_delivered_ratio is None


def test_signs_up_dr_by_hand() -> None:
    s = two_resources(Direction.UP)
    a, b = s.resources
    assert a.delivered_kwh == (-0.75, 0.5)  # actual − baseline
    assert b.delivered_kwh == (0.0, -0.25)
    assert s.portfolio.delivered_kwh == (-0.75, 0.25)


def test_requested_per_slot_and_validation() -> None:
    s = two_resources(Direction.DOWN, requested=[[0.25, 0.75], [0.0, 0.5]])
    assert s.resources[0].requested_kwh == (0.25, 0.75)
    assert s.resources[1].delivered_ratio == (None, 0.5)
    with pytest.raises(ValueError, match=r"requested_kwh must have shape \(2,\)"):
        two_resources(Direction.DOWN, requested=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        two_resources(Direction.DOWN, requested=[1.0, -2.0])


def test_portfolio_is_the_sum_of_resources() -> None:
    rng = np.random.default_rng(3)
    n_res, n = 7, 6
    base = rng.gamma(2.0, 0.3, size=(n_res, n))
    act = rng.gamma(2.0, 0.3, size=(n_res, n))
    req = rng.uniform(0.0, 2.0, size=n_res)
    s = settle(
        event_id="ev-2",
        direction=Direction.DOWN,
        window=SlotGrid(start=START, n_slots=n),
        resource_ids=[f"hp-{i}" for i in range(n_res)],
        baseline_kwh=base,
        actual_kwh=act,
        requested_kwh=req,
    )
    p = s.portfolio
    np.testing.assert_allclose(p.baseline_kwh, base.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(p.actual_kwh, act.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(p.delivered_kwh, (base - act).sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.requested_kwh, np.full(n, req.sum() / n), rtol=1e-14)
    assert p.total_delivered_kwh == pytest.approx(sum(r.total_delivered_kwh for r in s.resources))
    assert p.total_delivered_ratio == pytest.approx(p.total_delivered_kwh / req.sum())
    np.testing.assert_array_equal(s.array("actual_kwh"), act)


# -- CSV ------------------------------------------------------------------------------------


def test_csv_round_trip_through_a_stream_and_a_file(tmp_path: Path) -> None:
    s = two_resources(Direction.DOWN)
    text = s.to_csv_text()
    lines = text.splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + 2 * 2 + 2  # header, 2 resources × 2 slots, 2 portfolio rows
    assert lines[1] == (
        "ev-1,down,resource,hp-a,2026-06-10T14:00:00+09:00,2026-06-10T14:30:00+09:00,"
        "1.0,0.25,0.75,0.5,,1.5"  # accepted_kwh not known: empty
    )
    assert lines[3].endswith(",0.5,0.5,0.0,0.0,,")  # hp-b slot 1: nothing requested, no ratio
    assert lines[-1] == (
        "ev-1,down,portfolio,,2026-06-10T14:30:00+09:00,2026-06-10T15:00:00+09:00,"
        "1.25,1.5,-0.25,0.5,,-0.5"
    )
    assert read_settlement_csv(io.StringIO(text)) == s
    path = tmp_path / "settlement.csv"
    s.to_csv(path)
    assert path.read_text(encoding="utf-8") == text
    assert read_settlement_csv(path) == s
    assert read_settlement_csv(str(path)) == s


def test_requested_and_accepted_are_separate_columns_and_round_trip() -> None:
    """requested_kwh holds what was asked, accepted_kwh what the resource took on (the demo's
    CSV once held accepted amounts under requested_kwh)."""
    s = settle(
        event_id="ev-2",
        direction=Direction.UP,
        window=SlotGrid(start=START, n_slots=2),
        resource_ids=["hp-a", "hp-b"],
        baseline_kwh=[[0.5, 0.5], [0.2, 0.2]],
        actual_kwh=[[1.0, 0.75], [0.2, 0.45]],
        requested_kwh=[1.0, 0.5],
        accepted_kwh=[0.5, 0.5],
    )
    a, b = s.resources
    assert a.requested_kwh == (0.5, 0.5) and a.accepted_kwh == (0.25, 0.25)
    assert a.total_accepted_kwh == 0.5 and b.total_accepted_kwh == 0.5
    assert s.portfolio.accepted_kwh == (0.5, 0.5) and s.portfolio.requested_kwh == (0.75, 0.75)
    lines = s.to_csv_text().splitlines()
    assert lines[1].endswith(",0.5,1.0,0.5,0.5,0.25,1.0")  # base, actual, dlv, req, acc, ratio
    rows = list(csv.DictReader(io.StringIO(s.to_csv_text())))
    assert [r["requested_kwh"] for r in rows] == ["0.5", "0.5", "0.25", "0.25", "0.75", "0.75"]
    assert [r["accepted_kwh"] for r in rows] == ["0.25", "0.25", "0.25", "0.25", "0.5", "0.5"]
    assert read_settlement_csv(io.StringIO(s.to_csv_text())) == s
    with pytest.raises(ValueError, match="accepted_kwh must have shape"):
        settle(
            event_id="ev-2",
            direction=Direction.UP,
            window=SlotGrid(start=START, n_slots=2),
            resource_ids=["hp-a"],
            baseline_kwh=[[0.5, 0.5]],
            actual_kwh=[[1.0, 0.75]],
            requested_kwh=[1.0],
            accepted_kwh=[0.5, 0.5, 0.5],
        )


def test_a_csv_written_before_the_accepted_column_is_still_read() -> None:
    s = two_resources(Direction.DOWN)
    rows = list(csv.DictReader(io.StringIO(s.to_csv_text())))
    out = io.StringIO()
    old = [c for c in CSV_COLUMNS if c != "accepted_kwh"]
    writer = csv.DictWriter(out, fieldnames=old, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    assert read_settlement_csv(io.StringIO(out.getvalue())) == s


def test_csv_round_trip_is_exact_for_random_values() -> None:
    rng = np.random.default_rng(11)
    base = rng.gamma(2.0, 0.3, size=(5, 4))
    s = settle(
        event_id="ev:3",
        direction=Direction.UP,
        window=SlotGrid(start=START, n_slots=4),
        resource_ids=["a b", 'quote"d', "comma,id", "日本語", "x"],
        baseline_kwh=base,
        actual_kwh=base + rng.normal(0, 0.1, size=base.shape),
        requested_kwh=rng.uniform(0, 1, size=(5, 4)),
    )
    again = read_settlement_csv(io.StringIO(s.to_csv_text()))
    assert again == s
    np.testing.assert_array_equal(again.array("delivered_kwh"), s.array("delivered_kwh"))


def _edit(text: str, line: int, column: str, value: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    rows[line - 2][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize(
    ("line", "column", "value", "match"),
    [
        (7, "baseline_kwh", "1.3", r"portfolio baseline_kwh at 2026-06-10T14:30:00\+09:00"),
        (2, "delivered_kwh", "-0.75", "delivered_kwh must be baseline − actual"),
        (3, "direction", "up", "one event per file"),
        (3, "slot_start", "2026-06-10T14:00:00+09:00", "slot_end must be slot_start"),
        (2, "slot_start", "2026-06-10T05:00:00+00:00", rf"UTC offset of {DEFAULT_TZ}"),
        (2, "actual_kwh", "nan", "actual_kwh must be finite"),
        (2, "level", "total", "level must be 'resource' or 'portfolio'"),
        (2, "direction", "sideways", "direction must be 'up' or 'down'"),
    ],
)
def test_csv_reader_refuses_inconsistent_files(
    line: int, column: str, value: str, match: str
) -> None:
    text = _edit(two_resources(Direction.DOWN).to_csv_text(), line, column, value)
    with pytest.raises(ValueError, match=match):
        read_settlement_csv(io.StringIO(text))


def test_csv_reader_refuses_wrong_header_and_missing_slots() -> None:
    text = two_resources(Direction.DOWN).to_csv_text()
    with pytest.raises(ValueError, match="header must be"):
        read_settlement_csv(io.StringIO(text.replace("baseline_kwh", "baseline", 1)))
    lines = text.splitlines(keepends=True)
    with pytest.raises(ValueError, match="'hp-b' must cover the window's 2 consecutive slots"):
        read_settlement_csv(io.StringIO("".join(lines[:4] + lines[5:])))
    with pytest.raises(ValueError, match="portfolio rows must cover"):
        read_settlement_csv(io.StringIO("".join(lines[:-1])))
    with pytest.raises(ValueError, match="no resource rows"):
        read_settlement_csv(io.StringIO(lines[0]))


# -- models and inputs ---------------------------------------------------------------------


def test_models_refuse_inconsistent_values() -> None:
    good = two_resources(Direction.DOWN)
    with pytest.raises(ValidationError, match="delivered_kwh must be actual − baseline for up-DR"):
        Settlement(
            event_id="ev-1",
            direction=Direction.UP,
            window=WINDOW,
            resources=good.resources,
        )
    with pytest.raises(ValidationError, match="appears more than once"):
        Settlement(
            event_id="ev-1",
            direction=Direction.DOWN,
            window=WINDOW,
            resources=(good.resources[0], good.resources[0]),
        )
    with pytest.raises(ValidationError, match="one value per slot of the window"):
        Settlement(
            event_id="ev-1",
            direction=Direction.DOWN,
            window=SlotGrid(start=START, n_slots=3),
            resources=good.resources,
        )
    with pytest.raises(ValidationError, match=r"actual_kwh must have one value per slot \(2\)"):
        ResourceSettlement(
            resource_id="x",
            baseline_kwh=(1.0, 1.0),
            actual_kwh=(1.0,),
            delivered_kwh=(0.0, 0.0),
            requested_kwh=(0.0, 0.0),
        )
    with pytest.raises(ValidationError, match="requested_kwh"):
        ResourceSettlement(
            resource_id="x",
            baseline_kwh=(1.0,),
            actual_kwh=(1.0,),
            delivered_kwh=(0.0,),
            requested_kwh=(-1.0,),
        )


def test_settle_names_missing_values() -> None:
    with pytest.raises(ValueError, match=r"baseline_kwh must be finite.*'hp-b' at 14:30"):
        settle(
            event_id="ev-1",
            direction=Direction.DOWN,
            window=WINDOW,
            resource_ids=["hp-a", "hp-b"],
            baseline_kwh=[[1.0, 1.0], [0.5, np.nan]],
            actual_kwh=[[0.25, 1.5], [0.5, 0.0]],
            requested_kwh=[1.0, 1.0],
        )
    with pytest.raises(ValueError, match=r"actual_kwh must have shape \(resources, slots\)"):
        settle(
            event_id="ev-1",
            direction=Direction.DOWN,
            window=WINDOW,
            resource_ids=["hp-a", "hp-b"],
            baseline_kwh=[[1.0, 1.0], [0.5, 0.5]],
            actual_kwh=[[0.25, 1.5]],
            requested_kwh=[1.0, 1.0],
        )


# -- from the baseline ---------------------------------------------------------------------


def test_settle_from_the_hand_computed_baseline() -> None:
    x = np.concatenate([hand_case(), hand_case()])
    x[1, 9, 28:32] = [0.9, 0.8, 0.7, 0.6]
    base = compute_baseline(x, JUNE, EVENT, dr_days={d(4)}, resource_ids=["hp-1", "hp-2"])
    s = settle_baseline(
        base, x[:, 9], event_id="dr-0610", direction=Direction.DOWN, requested_kwh=[2.0, 0.4]
    )
    assert s.window == EVENT.slot_grid()
    assert s.slot_starts()[0] == START
    # Baseline 0.60, 0.60, 0.70, 0.70 (see the baseline tests); hp-1 used 0.05, 0.05, 0.15, 0.15.
    np.testing.assert_allclose(s.resources[0].delivered_kwh, [0.55, 0.55, 0.55, 0.55])
    np.testing.assert_allclose(s.resources[1].delivered_kwh, [-0.3, -0.2, 0.0, 0.1], atol=1e-12)
    assert s.resources[0].total_delivered_ratio == pytest.approx(2.2 / 2.0)
    np.testing.assert_allclose(s.resources[1].requested_kwh, [0.1] * 4)
    # The window's slots alone give the same settlement.
    again = settle_baseline(
        base, x[:, 9, 28:32], event_id="dr-0610", direction=Direction.DOWN, requested_kwh=[2, 0.4]
    )
    assert again == s
    loose = compute_baseline(x, JUNE, EVENT, dr_days=[{d(2), d(3), d(4)}, {d(4)}], strict=False)
    with pytest.raises(ValueError, match="without a baseline: 'resource-0'"):
        settle_baseline(loose, x[:, 9], event_id="e", direction=Direction.UP, requested_kwh=[1, 1])
    with pytest.raises(ValueError, match=r"actual_kwh must have shape \(2, 48\)"):
        settle_baseline(
            base, x[:, 9, :10], event_id="e", direction=Direction.UP, requested_kwh=[1, 1]
        )


# -- an event settled from meter history (the servicer's daily settlement) -----------------


def _three_resources() -> np.ndarray:
    """hp-1 is the baseline tests' hand case; hp-2 the same history with a different event
    day; hp-3 the same history, but DR on 2–4 June leaves it 4 eligible weekdays of 5."""
    x = np.concatenate([hand_case(), hand_case(), hand_case()])
    x[1, 9, 28:32] = [0.9, 0.8, 0.7, 0.6]
    return x


_DR_DAYS = [{d(4)}, {d(4)}, {d(2), d(3), d(4)}]
_IDS = ["hp-1", "hp-2", "hp-3"]


def _window(start: str, end: str) -> EventWindow:
    day = "2026-06-10T"
    return EventWindow.from_times(
        datetime.fromisoformat(day + start).replace(tzinfo=TOKYO),
        datetime.fromisoformat(day + end).replace(tzinfo=TOKYO),
    )


# other windows of the day → baseline per window slot of hp-1 (the adjustment window is
# 10:00–13:00; with it Δ = +0.15 on 0.45, 0.45, 0.55, 0.55, see hand_case)
_ADJUSTED = [0.60, 0.60, 0.70, 0.70]
_UNADJUSTED = [0.45, 0.45, 0.55, 0.55]
OTHER_WINDOWS = [
    ((), _ADJUSTED),
    ((("14:00", "16:00"),), _ADJUSTED),  # the event itself is not another window
    ((("17:00", "20:00"),), _ADJUSTED),  # later in the day
    ((("09:00", "10:00"),), _ADJUSTED),  # ends as the adjustment window starts
    ((("13:00", "14:00"),), _ADJUSTED),  # starts as it ends
    ((("12:30", "13:00"),), _UNADJUSTED),  # inside it: its deviation would enter
    ((("11:00", "12:00"), ("17:00", "20:00")), _UNADJUSTED),
]


@pytest.mark.parametrize(("others", "baseline"), OTHER_WINDOWS)
def test_settle_event_by_hand(others: tuple[tuple[str, str], ...], baseline: list[float]) -> None:
    result = settle_event(
        _three_resources(),
        JUNE,
        EVENT,
        event_id="dr-0610",
        direction=Direction.DOWN,
        resource_ids=_IDS,
        requested_kwh=[2.0, 0.4, 1.0],
        other_windows=[_window(a, b) for a, b in others],
        dr_days=_DR_DAYS,
    )
    s = result.settlement
    assert s is not None and s.resource_ids == ("hp-1", "hp-2")  # hp-3 has no baseline
    assert s.window == EVENT.slot_grid() and s.event_id == "dr-0610"
    b = np.array(baseline)
    np.testing.assert_allclose(s.resources[0].baseline_kwh, b, atol=1e-12)
    # hp-1 used 0.05, 0.05, 0.15, 0.15 on the event day; hp-2 0.9, 0.8, 0.7, 0.6
    np.testing.assert_allclose(
        s.resources[0].delivered_kwh, b - [0.05, 0.05, 0.15, 0.15], atol=1e-12
    )
    np.testing.assert_allclose(s.resources[1].delivered_kwh, b - [0.9, 0.8, 0.7, 0.6], atol=1e-12)
    assert s.resources[0].requested_kwh == (0.5, 0.5, 0.5, 0.5)  # 2 kWh over 4 slots
    assert s.resources[1].requested_kwh == pytest.approx((0.1, 0.1, 0.1, 0.1))
    # the totals the servicer reports: adjusted 2.2 and −0.4 kWh, unadjusted 1.6 and −1.0
    assert result.total_delivered_kwh(["hp-1"]) == pytest.approx(b.sum() - 0.4)
    assert result.total_delivered_kwh(["hp-1", "hp-2"]) == pytest.approx(2 * b.sum() - 3.4)
    assert result.total_delivered_kwh(["hp-1", "hp-3"]) == result.total_delivered_kwh(["hp-1"])
    assert result.total_delivered_kwh(["hp-3"]) is None
    assert result.total_delivered_kwh([]) is None
    assert list(result.unsettled) == ["hp-3"]
    assert "4 eligible weekdays" in result.unsettled["hp-3"]
    assert "need 5" in result.unsettled["hp-3"]
    assert result.baseline.resource_ids == tuple(_IDS)  # every baseline kept for audit


def test_settle_event_up_dr_and_nobody_settled() -> None:
    up = settle_event(
        _three_resources(),
        JUNE,
        EVENT,
        event_id="dr-up",
        direction=Direction.UP,
        resource_ids=_IDS,
        requested_kwh=[[0.25, 0.25, 0.25, 0.25], [0.0] * 4, [1.0] * 4],
        dr_days=_DR_DAYS,
    )
    assert up.settlement is not None
    # actual − baseline: hp-2 used 0.9 against 0.60 → +0.3 in the first slot
    np.testing.assert_allclose(
        up.settlement.resources[1].delivered_kwh, [0.3, 0.2, 0.0, -0.1], atol=1e-12
    )
    assert up.settlement.resources[0].requested_kwh == (0.25, 0.25, 0.25, 0.25)
    none = settle_event(
        _three_resources()[2:],
        JUNE,
        EVENT,
        event_id="dr-none",
        direction=Direction.DOWN,
        resource_ids=["hp-3"],
        requested_kwh=[1.0],
        dr_days=[_DR_DAYS[2]],
    )
    assert none.settlement is None and none.total_delivered_kwh(["hp-3"]) is None
    assert list(none.unsettled) == ["hp-3"]
    with pytest.raises(ValueError, match=r"requested_kwh must have shape \(3,\)"):
        settle_event(
            _three_resources(),
            JUNE,
            EVENT,
            event_id="e",
            direction=Direction.DOWN,
            resource_ids=_IDS,
            requested_kwh=[1.0, 1.0],
        )


def test_event_baseline_config_keeps_a_config_without_adjustment() -> None:
    plain = BaselineConfig(same_day_adjustment=False)
    assert event_baseline_config(EVENT, plain, [_window("12:00", "13:00")]) is plain
    shorter = BaselineConfig(adjustment_from_h_before=2.0)  # 12:00–13:00
    assert event_baseline_config(EVENT, shorter, [_window("11:00", "12:00")]) is shorter
    dropped = event_baseline_config(EVENT, shorter, [_window("11:00", "12:30")])
    assert dropped.same_day_adjustment is False
    assert dropped.model_copy(update={"same_day_adjustment": True}) == shorter


def test_event_window_and_slot_grid_agree() -> None:
    w = EventWindow.from_times(START, START + timedelta(hours=2))
    assert w.slot_grid().starts() == [START + timedelta(minutes=30 * k) for k in range(4)]


# -- the invariant: actual = baseline delivers nothing -------------------------------------

_ENERGIES = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(1, 6)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@given(base=_ENERGIES, direction=st.sampled_from(list(Direction)))
@settings(max_examples=60, deadline=None)
def test_actual_equal_to_baseline_delivers_zero(base: np.ndarray, direction: Direction) -> None:
    assert (delivered_kwh(direction, base, base) == 0.0).all()
    n_res, n = base.shape
    s = settle(
        event_id="prop",
        direction=direction,
        window=SlotGrid(start=START, n_slots=n),
        resource_ids=[f"r{i}" for i in range(n_res)],
        baseline_kwh=base,
        actual_kwh=base.copy(),
        requested_kwh=np.ones(n_res),
    )
    assert all(v == 0.0 for r in s.resources for v in r.delivered_kwh)
    assert all(v == 0.0 for v in s.portfolio.delivered_kwh)
    assert all(r == 0.0 for res in s.resources for r in res.delivered_ratio)
