"""DR-caused shortages as the parties measure them (issue 11 items 5, 7): the no-DR twin of the
maker cloud's live fleet and of a node's heater, the status file they keep, and the stack's sum
of them.

Independent checks: a twin is the same households on the same draws, so a fleet never asked
anything matches its twin step for step (equal shortage steps and energy) and counts zero
DR-caused shortages; the count itself is checked on hand-made differences; the status file is
private, replaced atomically and read back to the same values; the stack names a party that
left none instead of reporting a number it does not have.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drready.cloud.live import LiveFleet
from drready.device.status import PartyStatus, heater_status, read_status, write_status
from drready.domain import DEFAULT_TZ
from drready.domain.clock import SimClock
from drready.domain.time import zone
from drready.planning.problem import Fleet
from drready.planning.rolling import ScheduleForecaster
from drready.sim.stack import _shortages
from drready.sim.stack_state import new_run_dir

TZ = zone(DEFAULT_TZ)
T0 = datetime(2026, 5, 12, 15, tzinfo=TZ)


def test_a_fleet_never_asked_matches_its_twin_step_for_step() -> None:
    clock = SimClock(T0, speed=0.0)
    fleet = LiveFleet.random(40, clock, seed=4, no_dr_twin=True)
    assert fleet.twin is not None and fleet.twin.twin is None
    clock.advance(timedelta(hours=30))  # through an evening's baths and a night's heating
    assert fleet.advance() is not None
    assert fleet.twin.at == fleet.at
    np.testing.assert_array_equal(fleet.shortage_steps(), fleet.twin.shortage_steps())
    np.testing.assert_allclose(fleet.units_state().energy_kwh, fleet.twin.units_state().energy_kwh)
    count = fleet.shortage_count()
    assert count.dr_caused == 0 and count.units == 40
    assert count.twin_shortage_steps == count.shortage_steps


def test_dr_caused_counts_units_with_more_shortage_steps_than_their_twin() -> None:
    clock = SimClock(T0, speed=0.0)
    fleet = LiveFleet.random(5, clock, seed=4, no_dr_twin=True)
    assert fleet.twin is not None
    base = fleet.shortage_steps(advance=False)
    fleet._shortages[1] += 2  # unit 1: two steps more than its twin
    fleet._shortages[3] += 1
    fleet.twin._shortages[3] += 1  # unit 3: its twin ran dry as often: not DR-caused
    fleet.twin._shortages[4] += 5  # unit 4: fewer than its twin
    count = fleet.shortage_count(advance=False)
    assert count.dr_caused == 1
    assert count.shortage_steps == int(base.sum()) + 3
    assert count.twin_shortage_steps == int(base.sum()) + 6
    without = LiveFleet.random(5, SimClock(T0, speed=0.0), seed=4).shortage_count()
    assert without.dr_caused is None and without.twin_shortage_steps is None


def test_a_twin_needs_the_default_forecaster() -> None:
    with pytest.raises(ValueError, match="no_dr_twin"):
        LiveFleet(
            Fleet.random(np.random.default_rng(0), 2),
            SimClock(T0, speed=0.0),
            forecaster=ScheduleForecaster(),
            no_dr_twin=True,
        )


@dataclass
class _Heater:
    shortage_count: int
    now: datetime = T0


@pytest.mark.parametrize(
    ("mine", "twin", "caused"), [(0, 0, 0), (3, 0, 1), (3, 3, 0), (2, 5, 0), (6, 5, 1)]
)
def test_heater_status_against_its_twin(mine: int, twin: int, caused: int) -> None:
    status = heater_status(_Heater(mine), _Heater(twin))  # type: ignore[arg-type]
    assert (status.shortage_steps, status.twin_shortage_steps) == (mine, twin)
    assert status.dr_caused_shortages == caused and status.units == 1
    alone = heater_status(_Heater(mine), None)  # type: ignore[arg-type]
    assert alone.dr_caused_shortages is None


def test_the_status_file_is_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    assert read_status(path) is None
    status = PartyStatus(
        party="cloud",
        at=T0,
        units=10,
        shortage_steps=4,
        twin_shortage_steps=4,
        dr_caused_shortages=0,
        final=True,
    )
    write_status(path, status)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_status(path) == status
    write_status(path, status.model_copy(update={"shortage_steps": 5}))
    assert read_status(path) == status.model_copy(update={"shortage_steps": 5})
    assert sorted(os.listdir(tmp_path)) == ["cloud.json"]  # no temporary file left
    path.write_text('{"party": "cloud"')  # cut short
    assert read_status(path) is None


def test_the_stack_sums_final_statuses_and_names_what_is_missing(tmp_path: Path) -> None:
    run = new_run_dir("stack", explicit=tmp_path / "run")
    (run.path / "status").mkdir()

    def put(name: str, caused: int | None, final: bool = True) -> None:
        write_status(
            run.path / "status" / f"{name}.json",
            PartyStatus(
                party="cloud" if name == "cloud" else "water-heater",
                at=T0,
                units=1,
                shortage_steps=caused or 0,
                twin_shortage_steps=None if caused is None else 0,
                dr_caused_shortages=caused,
                final=final,
            ),
        )

    put("cloud", 2)
    put("home-1", 0)
    put("home-2", 1)
    names = ["vtn", "home-1", "home-2", "battery", "cloud", "gateway", "servicer"]
    missing: list[str] = []
    counters, total = _shortages(run, names, missing)
    assert total == 3 and missing == []
    assert sorted(counters) == ["cloud", "home-1", "home-2"]
    put("home-2", 1, final=False)  # killed before its last word
    counters, total = _shortages(run, [*names, "home-3"], missing)
    assert total is None
    assert missing == [
        "DR-caused shortages: home-2 left no final status file",
        "DR-caused shortages: home-3 left no final status file",
    ]
