"""drready's year against the national calculation method, month by month (E1).

The method's figures come from ``tests/national_method.py``, a re-implementation of its published
formulas that shares no code with ``drready.physics``. It is itself checked first: fed the
method's own region-6 weather and calendar it reproduces what the method's reference
implementation (BRI-EES-House/pyhees Ver. 3.7, run once outside this repository: 4 persons, a
bath, full-auto, e_rtd 3.3, region 6, no daytime heating) computes, 1 840.37 kWh a year.
Then drready's ``drready simulate year`` and the re-implementation get the same inputs — Tokyo's
typical-year weather of :mod:`drready.physics.climate`, the national schedule on the real 2026
calendar — and must agree within ±10 % in every month.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.physics.climate import DAYS_IN_MONTH, TOKYO, air_temp_c
from drready.physics.draws import day_type_on
from tests import national_method as nm

DATA = Path(__file__).parent / "data"
CALENDAR = Path(__file__).parents[1] / "src/drready/data/hot_water/day_type_calendar.csv"

PYHEES_REGION_6_KWH = 1840.374288
"""pyhees Ver. 3.7 (commit f9ce1ec), ``section7_1_e.calc_E_E_hs_d_t`` summed over the year."""
PYHEES_REGION_6_MONTHLY_KWH = (
    258.2, 237.6, 232.7, 149.3, 124.0, 93.8, 77.5, 69.2, 86.6, 124.7, 163.1, 223.7,
)  # fmt: skip
PYHEES_REGION_6_REHEAT_KWH = 464.950289
"""Its reheat load L''_ba2 over the year (the issue's ≈ 465 kWh of heat)."""


def _national_calendar() -> list[str]:
    lines = CALENDAR.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",")[2] for line in lines]


def test_the_reimplementation_reproduces_the_reference_implementation() -> None:
    air = np.loadtxt(DATA / "pyhees_region6_outdoor_air_c.csv", skiprows=1)
    ave, night = nm.daily_and_night_means(air)
    loads = nm.hourly_loads(4, _national_calendar(), ave, nm.mains_temp_c(ave), "full_auto")
    res = nm.electricity(loads, ave, night)
    assert res.electricity_kwh.sum() == pytest.approx(PYHEES_REGION_6_KWH, rel=1e-9)
    assert res.bath_kwh.sum() == pytest.approx(PYHEES_REGION_6_REHEAT_KWH, rel=1e-9)
    monthly = nm.monthly(res.electricity_kwh, DAYS_IN_MONTH)
    np.testing.assert_allclose(monthly, PYHEES_REGION_6_MONTHLY_KWH, atol=0.051)


def _national_tokyo_2026() -> nm.Result:
    """The method's figures on drready's inputs: Tokyo's hourly air (at the middle of each
    hour), the method's own daily/night means and mains water, 2026's real day types."""
    air = air_temp_c(TOKYO, np.arange(8760) + 0.5)
    ave, night = nm.daily_and_night_means(air)
    types = [day_type_on(date(2026, 1, 1) + timedelta(days=i)).value for i in range(365)]
    loads = nm.hourly_loads(4, types, ave, nm.mains_temp_c(ave), "full_auto")
    return nm.electricity(loads, ave, night)


@pytest.fixture(scope="module")
def national() -> nm.Result:
    return _national_tokyo_2026()


def _simulate(tank_l: float) -> dict[str, object]:
    args = ["simulate", "year", "--persons", "4", "--tank-l", str(tank_l), "--year", "2026"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.output)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tank_l", [460.0, 370.0])
def test_every_month_within_10_percent_of_the_method(national: nm.Result, tank_l: float) -> None:
    out = _simulate(tank_l)
    months = out["months"]
    assert isinstance(months, list)
    assert [m["month"] for m in months] == list(range(1, 13))
    assert [m["days"] for m in months] == list(DAYS_IN_MONTH)
    ours = np.array([m["electricity_kwh"] for m in months])
    theirs = nm.monthly(national.electricity_kwh, DAYS_IN_MONTH)
    gap = ours / theirs - 1.0
    assert np.all(np.abs(gap) <= 0.10), dict(enumerate(np.round(100 * gap, 1), start=1))
    assert out["annual_electricity_kwh"] == pytest.approx(theirs.sum(), rel=0.03)
    # the loads are the method's: taps within the heat capacity's 1 % (4.146 vs 4.186 kJ/(L·K)),
    # the bath's keep-warm heat exactly (the method's 1.25 is the reheat circuit's, not the bath's)
    taps = np.array([m["tap_heat_kwh"] for m in months])
    np.testing.assert_allclose(taps, nm.monthly(national.tap_kwh, DAYS_IN_MONTH), rtol=0.015)
    bath = np.array([m["bath_heat_kwh"] for m in months])
    reheat = nm.monthly(national.bath_kwh, DAYS_IN_MONTH) / nm.FULL_AUTO_REHEAT_FACTOR
    np.testing.assert_allclose(bath, reheat, atol=1e-3)  # the JSON rounds to Wh
    # the standby loss follows the plan's stored heat, not the method's regression: the year
    # agrees within a few per cent, the months within 25 %
    loss = np.array([m["standby_loss_kwh"] for m in months])
    month_of_day = np.repeat(np.arange(12), DAYS_IN_MONTH)
    their_loss = np.bincount(month_of_day, national.loss_kwh_d)
    assert loss.sum() == pytest.approx(their_loss.sum(), rel=0.05)
    np.testing.assert_allclose(loss, their_loss, rtol=0.25)
    # JIS C 9220's ratio on this year: heat delivered (taps + bath keep-warm) / electricity
    delivered = sum(m["heat_delivered_kwh"] for m in months)
    assert out["annual_efficiency"] == pytest.approx(
        delivered / sum(m["electricity_kwh"] for m in months), rel=1e-3
    )
    assert 2.6 <= float(out["annual_efficiency"]) <= 3.0  # type: ignore[arg-type]
    assert out["shortage_steps"] == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--persons", "5"], "drready: error: --persons: must be within 1–4, got 5"),
        (["--year", "1900"], "drready: error: --year: must be within 1971–2099, got 1900"),
        (
            ["--rated-efficiency", "3.25"],
            "drready: error: --rated-efficiency: rated_efficiency must be a step of 0.1 in "
            "2.7–3.6, got 3.25",
        ),
        (["--tank-l", "50"], "drready: error: --tank-l: must be within 100–1000 L, got 50.0"),
    ],
)
def test_simulate_year_names_the_bad_option(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "year", *args, "--json"])
    assert result.exit_code == 2
    assert result.stderr.strip() == line
