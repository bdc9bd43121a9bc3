"""Annual efficiency of the standard household, and the honesty of declared potential (F1, E1)."""

from __future__ import annotations

from datetime import date, time

import numpy as np
import pytest

from drready.domain import Direction
from drready.evaluation.deliverability import EvalWindow, evaluate_declared_potential
from drready.evaluation.scorecard import TARGET_DECLARED_OVER_ORACLE
from drready.planning.problem import Fleet
from drready.sim.annual import simulate_standard_year


@pytest.mark.slow
def test_annual_efficiency_of_standard_household_in_rated_band():
    # the standard 4-person household with a 460 L and a 370 L tank, a whole year in Tokyo
    # (2026's real calendar, full-auto bath keep-warm, night heating)
    fleet = Fleet(np.array([4, 4]), np.array([460.0, 370.0]), np.array([True, True]))
    res = simulate_standard_year(fleet)
    eff = res.efficiency
    # JIS C 9220's ratio on this simulated year (not the JIS test conditions): a rated-3.3 unit
    # lands in the band of the rated classes, 2.7–3.6 (2.78 / 2.79; the national method gives
    # 2.84 on the same inputs, tests/test_national_method.py compares month by month)
    assert np.all((eff >= 2.7) & (eff <= 3.6)), eff
    # the standard schedule itself never runs these tanks dry
    assert np.all(res.shortage_steps == 0)
    # about 450 L/day at 40 °C: ~10–20 kWh/day of heat at the taps
    assert np.all((res.heat_delivered_kwh / 365 > 10) & (res.heat_delivered_kwh / 365 < 20))


@pytest.mark.slow
def test_declared_potential_is_deliverable_and_not_needlessly_small():
    days = [date(2026, 1, 14), date(2026, 4, 15), date(2026, 7, 15), date(2026, 10, 14)]
    windows = [
        EvalWindow(Direction.UP, time(10), time(14)),  # solar surplus
        EvalWindow(Direction.DOWN, time(0), time(4)),  # inside the night heating
    ]
    for outcome in evaluate_declared_potential(400, days, windows, seed=7):
        asked = int(outcome.asked(0.1).sum())
        assert asked > 500, outcome.window  # the check is about real requests
        assert outcome.deliverability() >= 0.95, outcome.window
        assert outcome.shortages == 0, outcome.window
        assert outcome.declared_over_oracle() >= TARGET_DECLARED_OVER_ORACLE, outcome.window


def test_shortage_is_counted_never_hidden():
    # a 1-person home asked to hold a 4-person winter day with an empty tank runs short
    from datetime import date as d

    from drready.domain import SlotGrid
    from drready.physics.draws import day_type_for, expected_step_use_l
    from drready.planning.execution import execute_plan
    from drready.planning.problem import build_problem, days_covering, draw_forecast

    fleet = Fleet.single(1, 370.0)
    grid = SlotGrid.day_ahead(d(2026, 1, 14), n_slots=48)
    p = build_problem(fleet, grid, np.array([0.0]), draw_forecast(fleet, grid))
    span, offset = days_covering(grid)
    heavy = Fleet.single(4, 370.0)
    use = (
        expected_step_use_l(heavy.persons, [day_type_for(x) for x in span], 5)[
            :, offset * 6 : (offset + 48) * 6
        ]
        * 3.0
    )
    run = execute_plan(p, np.zeros((1, 48)), use, np.zeros(use.shape, bool), fleet.reserve_l)
    assert run.has_shortage[0]
    assert run.unmet_kwh[0] > 1.0
    assert run.auto_reheat_steps[0] > 0  # the safeguard ran, and still could not keep up
