"""The evaluation mode and the maker's spec sheet (issue 13 item 4): the reference days are what
the document says, the sheet's DR-able energy is what the unit itself declares (F1) for the
evaluation window, the share follows its definition, and the 50 % rule separates a model with a
tank too small for its household from the standard 460 L model."""

from __future__ import annotations

import json
from datetime import date

import holidays
import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.evaluation.spec_sheet import THRESHOLD, reference_days, spec_sheet

runner = CliRunner()


def test_reference_days_are_the_third_wednesdays_and_working_days() -> None:
    days = reference_days()
    assert [d.month for d in days] == list(range(1, 13))
    jp = holidays.country_holidays("JP", years=2026)
    for d in days:
        assert d.weekday() == 2 and 15 <= d.day <= 21  # the third Wednesday
        assert d not in jp
    assert days[0] == date(2026, 1, 21) and days[-1] == date(2026, 12, 16)  # by a calendar


def test_the_sheet_declares_what_the_unit_declares_for_the_window() -> None:
    sheet = spec_sheet(4, 460.0)
    jan = sheet.months[0]
    # the unit's own F1 for the same day and window, through the command a maker would run
    out = runner.invoke(
        app, ["potential", "--date", "2026-01-21", "--window", "10:00-14:00", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert jan.potential_kwh == pytest.approx(json.loads(out.output)["up_kwh"], abs=1e-4)
    for m in sheet.months:
        assert m.dr_able_kwh == pytest.approx(min(m.potential_kwh, m.required_kwh))
        assert 0.0 < m.share <= 1.0
    total = sum(m.dr_able_kwh for m in sheet.months) / sum(m.required_kwh for m in sheet.months)
    assert sheet.dr_able_share == pytest.approx(total)
    # winter needs the most heating: the required energy is largest in January, least in August
    by_month = {m.month: m.required_kwh for m in sheet.months}
    assert by_month[1] > by_month[4] > by_month[8]


def test_the_fifty_percent_rule_separates_models() -> None:
    assert spec_sheet(4, 460.0).passed
    small = spec_sheet(4, 100.0)  # a 100 L tank cannot take half a 4-person day at once
    assert not small.passed and small.dr_able_share < THRESHOLD


def test_cli_prints_the_sheet_as_json_and_names_a_bad_option() -> None:
    out = runner.invoke(
        app, ["evaluate", "spec-sheet", "--persons", "4", "--tank-l", "460", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["result"] == "PASS" and data["threshold"] == 0.5
    assert data["model"] == {"persons": 4, "tank_l": 460.0}
    mode = data["evaluation_mode"]
    assert mode["window"].startswith("up-DR 10:00-14:00") and len(mode["days"]) == 12
    assert [m["month"] for m in data["months"]] == list(range(1, 13))
    bad = runner.invoke(app, ["evaluate", "spec-sheet", "--persons", "9"])
    assert bad.exit_code == 2 and "--persons" in bad.output
