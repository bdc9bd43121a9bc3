"""The evaluation mode (評価モード) and the spec sheet a maker publishes per model (issue 13
item 4, E1, F1).

The study group's wording for heat pump water heaters: a unit publishes its DR potential as the
**DR-able share of its daily heating energy**, computed under a fixed *evaluation mode*, and the
share must be **at least 50 %**. This module fixes drready's evaluation mode — one documented
reference condition, the same for every maker, so that two sheets compare — and computes a
model's sheet under it (``drready evaluate spec-sheet``; ``docs/evaluation-mode.md``).

The evaluation mode (:data:`EVALUATION_MODE`)
---------------------------------------------
* **Household**: ``persons`` (the model's rated household, 1–4) with a bathtub, drawing the
  national schedule's expected use of a weekday (no noise: the mode is deterministic).
* **Tank**: ``tank_l`` of the model; the heat pump of the national method's 3.3 class
  (``physics.heatpump.RATED_33_CLASS``), boiling as the planner does.
* **Climate and days**: Tokyo (region 6), one reference day per month — the third Wednesday of
  each month of 2026 (all weekdays of the real calendar) — so the sheet holds the whole year.
* **Tariff**: the night-time TOU (``planning.tariff.NIGHT_TOU``: the night plans heat pump water
  heaters are sold with), so the no-DR plan heats at night.
* **Start**: the day-ahead plan from 23:00 the evening before, a quarter-full tank (the
  planner's default), as the unit declares its potential (F1) for the next day.
* **DR window**: up-DR 10:00–14:00 — "start heating at 10:00" for
  :data:`~drready.domain.requests.START_TIME_WINDOW` (F2 by start time alone), the daytime
  shift of night heating the study group names first (PV surplus).
* **Confidence**: the declared potential at 95 %, as every drready unit declares it.

The figures
-----------
* ``required_kwh`` of a day: the electricity of the day's required heating — the expected draw
  heat of the 24 h from 23:00, each slot's heat at that slot's COP (the scorecard's
  "shiftable share" denominator, :mod:`drready.evaluation.scorecard`).
* ``dr_able_kwh``: the unit's declared up-DR potential in the window (F1,
  ``FlexibilityEnvelope.up_kwh``), counted at most up to ``required_kwh`` — heat loaded for
  later days is not a share of *this* day's heating.
* ``dr_able_share`` = Σ ``dr_able_kwh`` / Σ ``required_kwh`` over the twelve days (the year's
  share, energy-weighted); **PASS** when it is at least :data:`THRESHOLD` (50 %). The lowest
  month is shown beside it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Final

from drready.domain import DeviceId
from drready.domain.requests import START_TIME_WINDOW
from drready.physics.climate import TOKYO
from drready.physics.draws import day_type_for
from drready.physics.heatpump import RATED_33_CLASS
from drready.planning.tariff import NIGHT_TOU
from drready.planning.unit import UnitConfig, UnitPlanner

__all__ = [
    "CONFIDENCE",
    "EVALUATION_MODE",
    "REFERENCE_YEAR",
    "THRESHOLD",
    "WINDOW_START",
    "MonthFigure",
    "SpecSheet",
    "reference_days",
    "spec_sheet",
]

THRESHOLD: Final = 0.5
"""The study group's rule: the DR-able share of the daily heating energy is at least 50 %."""
REFERENCE_YEAR: Final = 2026
"""The year whose third Wednesdays are the reference days."""
WINDOW_START: Final = time(10, 0)
"""The evaluation window starts at 10:00 and lasts ``START_TIME_WINDOW`` (4 h)."""
CONFIDENCE: Final = 0.95
"""The confidence of the declared potential under the evaluation mode."""
EVALUATION_MODE: Final = "drready-evaluation-mode-1"
"""The name of this evaluation mode (a sheet names the mode it was computed under)."""
_SERIAL: Final = "SPECSHEET"


def reference_days(year: int = REFERENCE_YEAR) -> list[date]:
    """The third Wednesday of each month of ``year``.

    >>> [d.isoformat() for d in reference_days()][:3]
    ['2026-01-21', '2026-02-18', '2026-03-18']
    """
    out = []
    for month in range(1, 13):
        weeks = calendar.monthcalendar(year, month)
        wednesdays = [w[calendar.WEDNESDAY] for w in weeks if w[calendar.WEDNESDAY]]
        out.append(date(year, month, wednesdays[2]))
    return out


@dataclass(frozen=True)
class MonthFigure:
    """One reference day: the day's required heating electricity, the declared up-DR potential
    in the window (uncapped), the part of it that counts, and the share."""

    month: int
    day: date
    required_kwh: float
    potential_kwh: float
    dr_able_kwh: float

    @property
    def share(self) -> float:
        return self.dr_able_kwh / self.required_kwh


@dataclass(frozen=True)
class SpecSheet:
    """A model's sheet under the evaluation mode."""

    persons: int
    tank_l: float
    months: tuple[MonthFigure, ...]

    @property
    def dr_able_share(self) -> float:
        """Σ DR-able / Σ required over the reference days."""
        return sum(m.dr_able_kwh for m in self.months) / sum(m.required_kwh for m in self.months)

    @property
    def passed(self) -> bool:
        return self.dr_able_share >= THRESHOLD

    def as_dict(self) -> dict[str, Any]:
        """The sheet as published (JSON form of ``drready evaluate spec-sheet --json``)."""
        end = (datetime.combine(date(2000, 1, 1), WINDOW_START) + START_TIME_WINDOW).time()
        worst = min(self.months, key=lambda m: m.share)
        return {
            "model": {"persons": self.persons, "tank_l": self.tank_l},
            "evaluation_mode": {
                "name": EVALUATION_MODE,
                "household": f"{self.persons} persons with a bathtub, the national schedule's "
                "expected weekday use",
                "tank_l": self.tank_l,
                "heat_pump": f"national method 3.3 class ({RATED_33_CLASS.heat_output_kw} kW "
                "heat output)",
                "climate": f"{TOKYO.name} (region 6)",
                "days": [m.day.isoformat() for m in self.months],
                "tariff": NIGHT_TOU.name,
                "start": "day-ahead plan from 23:00 the evening before, quarter-full tank",
                "window": f"up-DR {WINDOW_START:%H:%M}-{end:%H:%M} (heating start "
                f"{WINDOW_START:%H:%M})",
                "confidence": CONFIDENCE,
            },
            "months": [
                {
                    "month": m.month,
                    "day": m.day.isoformat(),
                    "required_kwh": round(m.required_kwh, 4),
                    "potential_kwh": round(m.potential_kwh, 4),
                    "dr_able_kwh": round(m.dr_able_kwh, 4),
                    "share": round(m.share, 4),
                }
                for m in self.months
            ],
            "annual_required_kwh": round(sum(m.required_kwh for m in self.months), 4),
            "annual_dr_able_kwh": round(sum(m.dr_able_kwh for m in self.months), 4),
            "dr_able_share": round(self.dr_able_share, 4),
            "lowest_month": {"month": worst.month, "share": round(worst.share, 4)},
            "threshold": THRESHOLD,
            "result": "PASS" if self.passed else "FAIL",
        }


def spec_sheet(persons: int, tank_l: float) -> SpecSheet:
    """The sheet of a model rated for ``persons`` with a ``tank_l`` tank under the evaluation
    mode (``ValueError`` naming ``persons`` or ``tank_l`` and its range when out of it)."""
    config = UnitConfig(DeviceId(maker_code="000000", serial=_SERIAL), persons, tank_l)
    months = []
    for day in reference_days():
        if day_type_for(day) != day_type_for(date(REFERENCE_YEAR, 1, 21)):
            raise ValueError(f"reference day {day} is not a weekday of the calendar")
        unit = UnitPlanner.day_ahead(
            config, day, climate=TOKYO, tariff=NIGHT_TOU, confidence=CONFIDENCE
        )
        start = datetime.combine(day, WINDOW_START, tzinfo=unit.grid.zoneinfo)
        potential = unit.flexibility_envelope(start, start + START_TIME_WINDOW).up_kwh
        p = unit.problem
        day_slots = slice(0, 48)  # 23:00 the evening before + 24 h
        required = float((p.draw_kwh[day_slots, 0] / p.cop[day_slots, 0]).sum())
        months.append(MonthFigure(day.month, day, required, potential, min(potential, required)))
    return SpecSheet(persons=persons, tank_l=float(tank_l), months=tuple(months))
