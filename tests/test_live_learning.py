"""The live fleet that learns (``LiveFleet(learning=True)``, ``cloud serve --forecast
learning``; issue 13 item 2, issue 11 item 3): the units start with their households' past 28
days, plan from them (not from the national schedule), keep learning as the fleet rolls, and
the no-DR twin learns on its own forecaster.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.cloud.live import LiveFleet
from drready.domain import SlotGrid
from drready.domain.clock import SimClock
from drready.planning.forecast import HISTORY_DAYS, MIN_HISTORY_DAYS, LearningForecaster
from drready.planning.problem import draw_forecast
from drready.planning.rolling import rolling_grid

ZONE = SlotGrid.day_ahead(date(2026, 10, 20)).zoneinfo


def test_learning_fleet_starts_with_its_households_past_and_keeps_learning() -> None:
    clock = SimClock(datetime(2026, 10, 20, 1, 10, tzinfo=ZONE), speed=0.0)
    live = LiveFleet.random(30, clock, seed=2, learning=True, no_dr_twin=True)
    learner = live.forecaster
    assert isinstance(learner, LearningForecaster)
    assert live.twin is not None and live.twin.forecaster is not learner
    assert isinstance(live.twin.forecaster, LearningForecaster)
    days, use = learner.history.series(slice(None))
    # 27 whole days to 2026-10-19 (the last to 23:00 seeded, 23:00–24:00 executed by the
    # warm-up) and today to 01:00
    assert len(days) == HISTORY_DAYS and days[-1] == date(2026, 10, 20)
    assert not np.isnan(use[:, :-1, :]).any()
    assert not np.isnan(use[:, -1, :2]).any() and np.isnan(use[:, -1, 2:]).all()
    assert (np.nansum(use, axis=(1, 2)) > 0).all()
    # the twin's households are the same: it was seeded with the same past
    np.testing.assert_array_equal(live.twin.forecaster.history.codes, learner.history.codes)
    # warm: the forecast is the units' own, not the national schedule's
    grid = rolling_grid(live.at)
    own = learner.forecast(live.fleet, grid, slice(None))
    national = draw_forecast(live.fleet, grid)
    assert own.over_l is not None and not np.allclose(own.mean_l, national.mean_l)
    # an F1 answer for the whole fleet, then a roll: the slot that ended is observed
    env = live.group_envelope(
        datetime(2026, 10, 20, 10, 0, tzinfo=ZONE), datetime(2026, 10, 20, 14, 0, tzinfo=ZONE)
    )
    assert env is not None
    live.advance(datetime(2026, 10, 20, 1, 31, tzinfo=ZONE))
    _, use2 = learner.history.series(slice(None))
    assert not np.isnan(use2[:, -1, 2]).any() and np.isnan(use2[:, -1, 3]).all()
    assert MIN_HISTORY_DAYS <= HISTORY_DAYS


def test_learning_refuses_a_forecaster_of_the_callers() -> None:
    clock = SimClock(datetime(2026, 10, 20, 1, 10, tzinfo=ZONE), speed=0.0)
    base = LiveFleet.random(2, clock)
    with pytest.raises(ValueError, match="learning"):
        LiveFleet(base.fleet, clock, learning=True, forecaster=LearningForecaster(2))


def test_cloud_serve_names_a_bad_forecast_option() -> None:
    res = CliRunner().invoke(
        app, ["cloud", "serve", "--vtn", "https://127.0.0.1:9", "--forecast", "psychic"]
    )
    assert res.exit_code == 2, res.output
    assert "--forecast" in res.output and "'national' or 'learning'" in res.output


@pytest.mark.parametrize(("given", "learning"), [([], False), (["--forecast", "learning"], True)])
def test_cloud_serve_passes_the_forecast_to_the_fleet(
    monkeypatch: pytest.MonkeyPatch, given: list[str], learning: bool
) -> None:
    """National by default; ``--forecast learning`` reaches ``run_cloud(learning=True)``."""
    import drready.cli.cloud as cli_cloud

    seen: dict[str, object] = {}
    monkeypatch.setattr(cli_cloud, "run_cloud", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("DRREADY_CLIENT_SECRET", "s3cret-for-the-test")
    res = CliRunner().invoke(app, ["cloud", "serve", "--vtn", "https://127.0.0.1:9", *given])
    assert res.exit_code == 0, res.output
    assert seen["learning"] is learning
