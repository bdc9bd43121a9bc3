"""Units that learn their household, and the E1 check on households given as draws (issue 13
items 2 and 3).

The households here are written by hand — a fixed daily pattern of draws in 5-minute steps, a
trip, guests — not taken from drready's generator, and the conformal bound is checked against
a hand-computed order statistic.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.domain import DEFAULT_TZ, Direction, SlotGrid
from drready.evaluation.deliverability import EvalWindow
from drready.evaluation.households import Households, evaluate_households, read_households_csv
from drready.planning.conformal import conformal_rank, conformal_upper, min_scores_for
from drready.planning.forecast import (
    UsageHistory,
    decode_use_l,
    encode_use_l,
    learned_forecast,
)
from drready.planning.problem import Fleet, draw_forecast

FIRST = date(2026, 10, 5)  # a Monday
UP_10_14 = EvalWindow(Direction.UP, time(10), time(14))


def day_profile(scale: float = 1.0, day_off: bool = False) -> np.ndarray:
    """One day of a 3-person home in 5-minute steps [L at 40 °C]: 30 L at 07:00 (08:00 on a day
    off), 10 L at noon, a 180 L bath at 19:00–19:15, a 40 L shower at 19:30, 20 L at 21:00."""
    u = np.zeros(288, np.float32)
    m = (8 if day_off else 7) * 12
    u[m : m + 2] = 15 * scale
    u[12 * 12] = 10 * scale
    u[19 * 12 : 19 * 12 + 3] = 60 * scale
    u[19 * 12 + 6 : 19 * 12 + 8] = 20 * scale
    u[21 * 12] = 20 * scale
    return u


def home(n_days: int, event: range = range(0), scale: float = 1.0) -> np.ndarray:
    """``n_days`` of the pattern, the days in ``event`` scaled by ``scale``."""
    return np.concatenate(
        [
            day_profile(scale if d in event else 1.0, (FIRST + timedelta(d)).weekday() >= 5)
            for d in range(n_days)
        ]
    )


def households(uses: list[np.ndarray], tariff: str = "night") -> Households:
    n = len(uses)
    return Households(
        FIRST,
        np.stack(uses),
        np.full(n, 3, np.int64),
        np.full(n, 370.0),
        (tariff,) * n,
        tuple(f"h{i}" for i in range(n)),
    )


# ------------------------------------------------------------------ conformal bound


def test_conformal_bound_is_the_hand_computed_order_statistic() -> None:
    # 9 scores at 80 %: k = ⌈(9 + 1) · 0.8⌉ = 8, the 8th smallest of the sorted scores
    scores = np.array([5.0, -2.0, 7.5, 0.0, 3.0, 11.0, -4.0, 6.0, 2.0])
    bound, ok, n = conformal_upper(scores, 0.8)
    assert sorted(scores)[7] == 7.5
    assert float(bound) == 7.5 and bool(ok) and int(n) == 9
    # a missing score (NaN) is not counted: 8 scores, k = ⌈9 · 0.8⌉ = 8 → the largest
    with_gap = np.append(scores[:8], np.nan)
    bound, ok, n = conformal_upper(with_gap, 0.8)
    assert float(bound) == 11.0 and bool(ok) and int(n) == 8
    # too few for 95 % (k = ⌈10 · 0.95⌉ = 10 > 9): the largest, flagged as not guaranteed
    bound, ok, _ = conformal_upper(scores, 0.95)
    assert float(bound) == 11.0 and not bool(ok)
    assert min_scores_for(0.95) == 19
    assert conformal_rank([18, 19], 0.95).tolist() == [19, 19]
    # along an axis, per row
    rows = np.stack([scores, -scores])
    bound, _, _ = conformal_upper(rows, 0.8, axis=1)
    assert bound.tolist() == [7.5, sorted(-scores)[7]]


def test_history_coding_and_ring() -> None:
    litres = np.array([0.0, 0.05, 2.0, 40.0, 180.0, 900.0])
    back = decode_use_l(encode_use_l(litres))
    assert np.allclose(back, litres, rtol=0.02, atol=0.1)
    h = UsageHistory(2, days=14)
    assert h.bytes_per_unit == 14 * 48
    at = datetime(2026, 10, 5, 19, 0, tzinfo=SlotGrid.day_ahead(FIRST).zoneinfo)
    h.observe(at, slice(None), np.array([180.0, 0.0]))
    days, use = h.series(slice(None))
    assert days == [FIRST] and abs(float(use[0, 0, 38]) - 180.0) < 2.0
    assert np.isnan(use[0, 0, 37]) and float(use[1, 0, 38]) == 0.0
    # a date 14 days later recycles the row of FIRST
    h.observe(at + timedelta(days=14), slice(None), np.array([1.0, 1.0]))
    days, _ = h.series(slice(None))
    assert days[0] == FIRST + timedelta(days=14)


# ------------------------------------------------------------------ learning


def test_learned_forecast_follows_the_home_not_the_schedule() -> None:
    """After 22 days (at least the 19 scores a guaranteed bound needs at 95 %) the forecast is
    the home's own pattern (the bath at 19:00, 180 L), and its margins are its own errors: this
    home keeps its workday morning (30 L at 07:00) on Sports Day (Mon 2026-10-12), which the
    calendar counts as a day off (08:00) — 30 L, the only error it ever makes, besides the
    coding's rounding."""
    h = UsageHistory(1)
    use = home(22).reshape(1, 22, 48, 6).sum(axis=3)
    h.load(FIRST, use)
    fleet = Fleet.single(3, 370.0)
    grid = SlotGrid.day_ahead(FIRST + timedelta(days=22))
    prior = draw_forecast(fleet, grid)
    f = learned_forecast(h, slice(None), grid, 0.95, prior)
    # slot 40 of the grid (from 23:00) is 19:00–19:30: the bath, 180 L; the shower follows
    assert f.mean_l[40, 0] == pytest.approx(180.0, rel=0.02)
    assert f.mean_l[41, 0] == pytest.approx(40.0, rel=0.02)
    assert f.mean_l[:, 0].sum() == pytest.approx(280.0, rel=0.02)  # the day; none 00–07 h
    assert f.over_l is not None and f.under_l is not None
    assert 29.0 < float(f.over_l.max()) < 32.0 and float(f.under_l.max()) < 32.0
    # the cold start for a home seen for fewer than 14 days: the prior, unchanged
    cold = UsageHistory(1)
    cold.load(FIRST, use[:, :10])
    f0 = learned_forecast(cold, slice(None), grid, 0.95, prior)
    assert np.array_equal(f0.mean_l, prior.mean_l)


def test_below_a_guaranteed_bound_the_unit_is_no_less_careful_than_the_cold_start() -> None:
    """With 14 days observed (13–14 scores per boundary, fewer than the 19 a bound at 95 %
    needs) the use's upper curve (expected cumulative use + over) is nowhere below the cold
    start's — the national schedule's expected cumulative use + its z·σ + timing margin, from
    the prior itself — and the lower curve nowhere above the cold start's; the mean is still
    the home's own. With 22 days (≥ 19 scores) the unit's own bound: this regular home's only
    error is 30 L, far inside the schedule's margin."""
    use = home(22).reshape(1, 22, 48, 6).sum(axis=3)
    fleet = Fleet.single(3, 370.0)
    for n_days in (14, 22):
        h = UsageHistory(1)
        h.load(FIRST, use[:, :n_days])
        grid = SlotGrid.day_ahead(FIRST + timedelta(days=n_days))
        prior = draw_forecast(fleet, grid)
        f = learned_forecast(h, slice(None), grid, 0.95, prior)
        assert f.over_l is not None and f.under_l is not None
        over_p, under_p = prior.margins_l(0.95)
        cum = np.concatenate([[0.0], np.cumsum(f.mean_l[:, 0])])
        cum_p = np.concatenate([[0.0], np.cumsum(prior.mean_l[:, 0])])
        upper, lower = cum + f.over_l[:, 0], cum - f.under_l[:, 0]
        upper_p, lower_p = cum_p + over_p[:, 0], cum_p - under_p[:, 0]
        assert f.mean_l[40, 0] == pytest.approx(180.0, rel=0.02)  # the home's bath at 19:00
        if n_days == 14:
            assert (upper >= upper_p - 1e-6).all() and (lower <= lower_p + 1e-6).all()
            assert np.isclose(upper, upper_p).any() and np.isclose(lower, lower_p).any()
            assert float(f.over_l.max()) > 100.0
        else:
            assert float(f.over_l.max()) < 32.0 and float(f.under_l.max()) < 32.0
            assert (upper < upper_p - 50.0).any() and (lower > lower_p + 50.0).any()


def test_a_trip_or_guests_lower_the_declared_potential_and_it_is_delivered() -> None:
    """Three days away (no use) or three days of guests (twice the use) enter the unit's
    scores: the up-DR it declares afterwards is lower than the regular home's on the same days,
    and it is delivered (≥ 95 % of the declared, no DR-caused shortage)."""
    n_days = 24
    regular = home(n_days)
    trip = home(n_days, range(17, 20), 0.0)
    guests = home(n_days, range(17, 20), 2.0)
    sc = evaluate_households(
        households([regular, trip, guests]), windows=(UP_10_14,), history_days=15
    )
    o = sc.outcomes[("ours", 0)]
    declared = o.declared_kwh.reshape(-1, 3)
    delivered = o.delivered_kwh.reshape(-1, 3)
    # the first two days after the trip (back on day 20) and after the guests (gone on day 21)
    after_trip = [i for i, d in enumerate(sc.days) if 20 <= (d - FIRST).days < 22]
    after_guests = [i for i, d in enumerate(sc.days) if 21 <= (d - FIRST).days < 23]
    assert len(after_trip) == len(after_guests) == 2
    assert np.all(declared[after_trip, 1] < declared[after_trip, 0] - 0.3)
    assert np.all(declared[after_guests, 2] < declared[after_guests, 0] - 0.3)
    for col, rows in ((1, after_trip), (2, after_guests), (0, list(range(len(sc.days))))):
        assert np.all(delivered[rows, col] >= 0.95 * declared[rows, col])
    assert o.shortages == 0


# ------------------------------------------------------------------ measured data files


def write_csvs(tmp: Path, n_days: int = 17) -> tuple[Path, Path]:
    """Two homes, hourly rows with a +09:00 offset (and one row in UTC)."""
    lines = ["household,time,litres_40c"]
    for d in range(n_days):
        day = FIRST + timedelta(days=d)
        for name, scale in (("alpha", 1.0), ("beta", 1.5)):
            lines.append(f"{name},{day}T07:00:00+09:00,{30 * scale}")
            lines.append(f"{name},{day}T19:00:00+09:00,{180 * scale}")
            lines.append(f"{name},{day}T21:00:00+09:00,{20 * scale}")
    lines.append(f"alpha,{FIRST}T03:30:00+00:00,12.5")  # 12:30 in Japan
    draws = tmp / "draws.csv"
    draws.write_text("\n".join(lines) + "\n", encoding="utf-8")
    homes = tmp / "homes.csv"
    homes.write_text(
        "household,persons,tank_l,tariff\nalpha,3,370,night\nbeta,6,460,tou\n", encoding="utf-8"
    )
    return draws, homes


def test_read_households_csv(tmp_path: Path) -> None:
    draws, homes = write_csvs(tmp_path)
    hh = read_households_csv(draws, homes)
    assert hh.names == ("alpha", "beta") and hh.n_days == 17
    assert hh.persons.tolist() == [3, 6] and hh.tariff == ("night", "tou")
    steps = hh.use_l.reshape(2, 17, 288)
    assert steps[0, 0, 7 * 12] == 30.0 and steps[1, 0, 19 * 12] == 270.0
    assert steps[0, 0, 12 * 12 + 6] == 12.5  # the UTC row lands at 12:30 local
    assert float(steps[0].sum()) == pytest.approx(17 * 230 + 12.5)


@pytest.mark.parametrize(
    ("draws_text", "homes_text", "message"),
    [
        (
            "household,when,litres_40c\n",
            None,
            "draws: draws.csv line 1: missing column 'time'",
        ),
        (
            "household,time,litres_40c\nalpha,2026-10-05T07:00:00,30\n",
            None,
            "draws: draws.csv line 2: time '2026-10-05T07:00:00' has no UTC offset",
        ),
        (
            "household,time,litres_40c\nalpha,2026-10-05T07:00:00+09:00,-3\n",
            None,
            "draws: draws.csv line 2: litres_40c must be a number within 0–1000, got '-3'",
        ),
        (
            "household,time,litres_40c\ngamma,2026-10-05T07:00:00+09:00,3\n",
            None,
            "draws: draws.csv line 2: household 'gamma' is not in homes.csv",
        ),
        (
            None,
            "household,persons,tank_l,tariff\nalpha,9,370,night\n",
            "homes: homes.csv line 2: persons must be within 1–8, got 9",
        ),
        (
            None,
            "household,persons,tank_l,tariff\nalpha,3,370,cheap\n",
            "homes: homes.csv line 2: tariff must be one of flat, night, tou, got 'cheap'",
        ),
        (
            None,
            "household,persons,tank_l,tariff\nalpha,3,50,night\n",
            "homes: homes.csv line 2: tank_l must be a number within 100–1000, got '50'",
        ),
        (
            "household,time,litres_40c\nalpha,2026-10-05T07:00:00+09:00,3\n",
            "household,persons,tank_l,tariff\nalpha,3,370,night\n",
            "draws: the span 2026-10-05–2026-10-05 is 1 days; at least 16 are needed",
        ),
    ],
)
def test_csv_errors_name_file_line_column_and_range(
    tmp_path: Path, draws_text: str | None, homes_text: str | None, message: str
) -> None:
    draws, homes = write_csvs(tmp_path)
    if draws_text is not None:
        draws.write_text(draws_text, encoding="utf-8")
    if homes_text is not None:
        homes.write_text(homes_text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_households_csv(draws, homes)
    assert message in str(err.value)


def test_cli_scores_measured_households(tmp_path: Path) -> None:
    """``drready evaluate potential --draws --homes``: 14 days of history, the rest scored, the
    scorecard's JSON; a bad file exits 2 naming the option and the line."""
    draws, homes = write_csvs(tmp_path, n_days=17)
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["evaluate", "potential", "--draws", str(draws), "--homes", str(homes), "--json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["date"] for d in data["config"]["days"]] == [
        (FIRST + timedelta(days=d)).isoformat() for d in (14, 15)
    ]
    assert data["config"]["households"] == 2
    ours = data["results"]["ours"]
    assert set(ours) == {"up 10:00–14:00", "down 00:00–04:00"}
    up = ours["up 10:00–14:00"]["overall"]
    assert up["cases"] == 4 and up["dr_caused_shortages"] == 0
    assert up["declared_kwh"] > 0.5 and up["deliverability"] >= 0.95
    homes.write_text("household,persons,tank_l,tariff\nalpha,0,370,night\n", encoding="utf-8")
    bad = runner.invoke(
        app, ["evaluate", "potential", "--draws", str(draws), "--homes", str(homes)]
    )
    assert bad.exit_code == 2
    assert "--homes: homes: homes.csv line 2: persons must be within 1–8, got 0" in bad.output


def test_days_of_the_real_calendar_in_the_scorecard_json(tmp_path: Path) -> None:
    draws, homes = write_csvs(tmp_path, n_days=17)
    sc = evaluate_households(read_households_csv(draws, homes, tz=DEFAULT_TZ))
    # 2026-10-19 and -20 are a Monday and a Tuesday: weekday types on the real calendar
    assert [sc.day_type_of(d).value.startswith("weekday") for d in sc.days] == [True, True]


def test_the_live_fleet_learns_through_its_forecaster_hook() -> None:
    """``LiveFleet(forecaster=LearningForecaster(...))``: the units plan from their own history
    (14 hand-written days preloaded) and record every executed slot."""
    from drready.cloud.live import LiveFleet
    from drready.domain.clock import SimClock
    from drready.planning.forecast import LearningForecaster

    zone_jst = SlotGrid.day_ahead(FIRST).zoneinfo
    start = datetime(2026, 10, 20, 1, 10, tzinfo=zone_jst)  # the morning after 15 days
    learner = LearningForecaster(5, confidence=0.95)
    learner.history.load(FIRST, np.tile(home(15).reshape(1, 15, 48, 6).sum(axis=3), (5, 1, 1)))
    clock = SimClock(start, speed=0.0)
    base = LiveFleet.random(5, clock, seed=1)
    live = LiveFleet(base.fleet, clock, seed=1, forecaster=learner)
    # the warm-up executed 23:00–01:00 and the forecaster kept each slot's use
    days, use = learner.history.series(slice(None))
    assert days[-1] == date(2026, 10, 20)
    assert not np.isnan(use[:, -2, 46:]).any() and not np.isnan(use[:, -1, :2]).any()
    assert np.isnan(use[:, -1, 2]).all()  # 01:00–01:30 is still in progress
    # its forecast is the households' own pattern: the 180 L bath at 19:00 of the day
    grid = SlotGrid.day_ahead(date(2026, 10, 21))
    f = learner.forecast(live.fleet, grid, slice(None))
    assert f.mean_l[40] == pytest.approx(np.full(5, 180.0), rel=0.03)


def test_cli_scenario_library_reports_every_class_and_tariff() -> None:
    """``--scenarios``: every class under every tariff, the targets checked per cell."""
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "potential",
            "--scenarios",
            "--households",
            "1",
            "--days",
            "1",
            "--window",
            "down:00:00-03:00",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data["classes"]) == [
        "standard",
        "late-baths",
        "guests",
        "trips",
        "shift-workers",
        "heavy-use",
        "seasonal",
    ]
    assert all(set(per) == {"flat", "night", "tou"} for per in data["classes"].values())
    assert data["targets_checked"] == 7 * 3 * 3
    assert data["passed"] == (not data["failed"])


def test_the_single_heater_learns_through_its_forecaster_hook() -> None:
    """``SimulatedWaterHeater(forecaster=LearningForecaster(1))``: a unit left running for 16
    days keeps its household's measured use, slot by slot, and then forecasts from it."""
    from drready.device.clock import SimClock
    from drready.device.heater import SimulatedWaterHeater
    from drready.domain import DeviceId
    from drready.planning.forecast import LearningForecaster
    from drready.planning.unit import UnitConfig

    cfg = UnitConfig(DeviceId(maker_code="000005", serial="HW0000001"), 3, 370.0)
    zone_jst = SlotGrid.day_ahead(FIRST).zoneinfo
    clock = SimClock(datetime(2026, 10, 4, 23, 0, tzinfo=zone_jst), speed=0.0)
    learner = LearningForecaster(1, confidence=0.95)
    heater = SimulatedWaterHeater(cfg, clock, forecaster=learner)
    for _ in range(16):
        clock.advance(timedelta(days=1))
        heater.advance()
    days, use = learner.history.series(slice(None))
    assert len(days) == 17 and days[-1] == date(2026, 10, 20)
    assert not np.isnan(use[0, 1:-1]).any()  # every slot of every whole day was observed
    assert 100.0 < float(use[0, 1:-1].sum(axis=1).mean()) < 1000.0  # litres a day, 3 persons
    f = learner.forecast(cfg.fleet(), SlotGrid.day_ahead(date(2026, 10, 21)), slice(0, 1))
    assert f.over_l is not None and f.confidence == 0.95
    assert np.allclose(f.mean_l[:48, 0].sum(), use[0, 1:-1].sum(axis=1).mean(), rtol=0.5)


def _library_forecasters() -> object:
    """benchmarks/library_forecasters.py (not a package), loaded from its file."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "library_forecasters.py"
    spec = importlib.util.spec_from_file_location("library_forecasters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves its annotations there
    spec.loader.exec_module(module)
    return module


def test_the_forecasters_benchmark_reproduces_the_built_forecast_and_its_analog() -> None:
    """The variants the method doc (§11, §12) reports are measured by
    benchmarks/library_forecasters.py: without options its forecast is the one built
    (learned_forecast, on a noisy 28-day history), and a periodic analog is the mean of the
    days P, 2P back, hand-computed here (use = the day's index + 1 in every slot)."""
    lf: object = _library_forecasters()
    rng = np.random.default_rng(3)
    n_days = 28
    use = rng.gamma(0.6, 20.0, size=(3, n_days, 48))
    h = UsageHistory(3)
    h.load(FIRST, use)
    fleet = Fleet.random(np.random.default_rng(1), 3)
    grid = SlotGrid.day_ahead(FIRST + timedelta(days=n_days))
    prior = draw_forecast(fleet, grid)
    built = learned_forecast(h, slice(None), grid, 0.95, prior)
    bench = lf.make_forecast(lf.Variant())(h, slice(None), grid, 0.95, prior)  # type: ignore[attr-defined]
    assert built.over_l is not None and bench.over_l is not None
    assert built.under_l is not None and bench.under_l is not None
    np.testing.assert_allclose(bench.mean_l, built.mean_l, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bench.over_l, built.over_l, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(bench.under_l, built.under_l, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(bench.after_end_l, built.after_end_l, rtol=1e-5)
    # the analog 14x2 from the planning time at 23:00 of day 27 (offset 46 of that day): the
    # slots of day 28 from days 14 and 0; 23:00 of day 27 (not observed yet) from day 13
    flat = np.tile(np.arange(1.0, n_days + 1.0)[:, None], (1, 48)).reshape(1, -1)
    a = 48 * (n_days - 1) + 46
    fc = lf._analog(flat, a, 64, 14, 2)  # type: ignore[attr-defined]
    assert fc[0, 0] == pytest.approx(14.0)  # day 13 only: day -1 is before the history
    assert fc[0, 2] == pytest.approx((15.0 + 1.0) / 2)  # day 28, 00:00: days 14 and 0
    assert fc[0, 50] == pytest.approx((16.0 + 2.0) / 2)  # day 29, 00:00: days 15 and 1
