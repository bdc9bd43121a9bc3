"""The E1 DR-potential scorecard: methods, verdicts, JSON, HTML and argument checks (E1, F1).

The library's :class:`ScorecardSettings` names the bad field; ``drready evaluate potential``
(:mod:`drready.cli.evaluate`) prints the scorecard and turns a bad argument into exit status 2
naming the option."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from drready.cli import app
from drready.cli.evaluate import show_scorecard
from drready.evaluation.methods import MethodContext, ours
from drready.evaluation.scorecard import (
    SEASONS,
    ScorecardSettings,
    days_over_the_year,
    parse_window,
    representative_days,
    score,
)

N = 120
DAYS_PER_SEASON = 1
UP = "up 10:00–14:00"
DOWN = "down 00:00–04:00"


def half_of_ours(ctx: MethodContext) -> Any:
    """A user method: half the engine's potential."""
    return ours(ctx) * 0.5


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    tmp = tmp_path_factory.mktemp("scorecard")
    csv_path = tmp / "declared.csv"
    days = [d for d, _ in representative_days(DAYS_PER_SEASON)]
    lines = ["household,day,direction,declared_kwh"]
    for h in range(N):
        for i, d in enumerate(days):
            lines.append(f"{h},{d.isoformat() if i % 2 else i},up,1.0")
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    html = tmp / "report.html"
    buf = io.StringIO()
    settings = ScorecardSettings(
        households=N,
        days_per_season=DAYS_PER_SEASON,
        seed=7,
        methods=("ours", "naive", "fixed-margin", "tests.test_evaluation_scorecard:half_of_ours"),
        fixed_margin=0.3,
        csv=csv_path,
    )
    data = show_scorecard(settings, as_json=True, html=html, console=Console(file=buf, width=200))
    return data, buf.getvalue(), html


def test_ours_is_deliverable_and_close_to_oracle(run: tuple[dict[str, Any], str, Path]) -> None:
    data, _, _ = run
    for label in (UP, DOWN):
        s = data["results"]["ours"][label]["overall"]
        assert s["asked"] > 100
        assert s["deliverability"] >= 0.95
        assert s["declared_over_oracle"] >= 0.85
        assert s["dr_caused_shortages"] == 0


def test_fixed_margin_under_declares(run: tuple[dict[str, Any], str, Path]) -> None:
    data, _, _ = run
    for label in (UP, DOWN):
        ours_r = data["results"]["ours"][label]["overall"]["declared_over_oracle"]
        fm_r = data["results"]["fixed-margin"][label]["overall"]["declared_over_oracle"]
        assert fm_r == pytest.approx(0.7 * ours_r, rel=1e-3)
        assert fm_r < ours_r - 0.2


def test_naive_over_declares_and_fails_to_deliver(run: tuple[dict[str, Any], str, Path]) -> None:
    # Rated power × window, capped only by the whole tank: it ignores how full the tank is and
    # what the household draws, so many units are asked for more than they can absorb.
    data, _, _ = run
    naive = data["results"]["naive"][UP]["overall"]
    ours_up = data["results"]["ours"][UP]["overall"]
    # on average it declares about what ours does, but to the wrong households: many cannot
    # deliver their figure
    assert naive["deliverability"] < 0.8 < ours_up["deliverability"]
    tg = [t for t in data["targets"] if t["method"] == "naive"]
    assert tg and tg[0]["name"].startswith("over-declares") and tg[0]["passed"]


def test_user_callable_and_csv_methods_are_evaluated(
    run: tuple[dict[str, Any], str, Path],
) -> None:
    data, _, _ = run
    user = "tests.test_evaluation_scorecard:half_of_ours"
    assert data["config"]["methods"] == ["ours", "naive", "fixed-margin", user, "csv"]
    for label in (UP, DOWN):
        ours_d = data["results"]["ours"][label]["overall"]["declared_kwh"]
        assert data["results"][user][label]["overall"]["declared_kwh"] == pytest.approx(
            0.5 * ours_d, rel=1e-3
        )
    csv_up = data["results"]["csv"][UP]["overall"]
    assert csv_up["declared_kwh"] == pytest.approx(1.0)
    assert csv_up["asked"] == N * 4
    assert data["results"]["csv"][DOWN]["overall"]["declared_kwh"] == 0.0


def test_json_has_documented_keys(run: tuple[dict[str, Any], str, Path]) -> None:
    data, out, _ = run
    assert json.loads(out) == data  # --json prints exactly the returned dict
    assert set(data) == {
        "config",
        "runtime_s",
        "results",
        "shiftable_share",
        "targets",
        "passed",
    }
    assert {"households", "days_per_season", "seed", "windows", "days", "methods"} <= set(
        data["config"]
    )
    entry = data["results"]["ours"][UP]
    assert set(entry) == {"overall", "by_season", "by_persons", "by_day_type"}
    assert set(entry["by_season"]) == {"winter", "spring", "summer", "autumn"}
    assert set(entry["by_persons"]) == {"1", "2", "3", "4"}
    assert set(entry["overall"]) == {
        "cases",
        "asked",
        "declared_kwh",
        "delivered_kwh",
        "oracle_kwh",
        "deliverability",
        "declared_over_oracle",
        "dr_caused_shortages",
    }
    share = data["shiftable_share"][UP]
    assert set(share) == {*data["config"]["methods"], "oracle"}
    assert set(share["ours"]["winter"]) == {"1", "2", "3", "4", "all"}
    assert 0.0 < share["ours"]["all"]["all"] <= share["oracle"]["all"]["all"] * 1.01
    for t in data["targets"]:
        assert {"name", "method", "window", "value", "threshold", "comparison", "passed"} == set(t)


def test_html_report_is_self_contained(run: tuple[dict[str, Any], str, Path]) -> None:
    _, _, html = run
    text = html.read_text(encoding="utf-8")
    assert "<img" in text and "data:image/png;base64," in text
    for name in ("ours", "naive", "fixed-margin", "csv", "half_of_ours"):
        assert name in text


def test_table_output_shows_targets() -> None:
    buf = io.StringIO()
    settings = ScorecardSettings(households=40, days_per_season=1, seed=3, methods=("ours",))
    show_scorecard(settings, as_json=False, html=None, console=Console(file=buf, width=200))
    text = buf.getvalue()
    assert "ours" in text and "PASS" in text and "Targets" in text


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"households": 0}, "households"),
        ({"households": True}, "households"),
        ({"days_per_season": 0}, "days_per_season"),
        ({"seed": -1}, "seed"),
        ({"fixed_margin": 1.0}, "fixed_margin"),
        ({"confidence": 0.3}, "confidence"),
        ({"csv": Path("/nonexistent/declared.csv")}, "csv"),
        ({"windows": ["sideways:10:00-14:00"]}, "windows"),
        ({"windows": []}, "windows"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValidationError, match=name) as info:
        ScorecardSettings(
            **{"households": 10, "days_per_season": 1, "methods": ("ours",), **kwargs}
        )
    assert info.value.errors()[0]["loc"][0] == name


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"methods": ("bogus",)}, "methods"),
        ({"methods": ()}, "methods"),
        ({"methods": ("nope_module_xyz:f",)}, "methods"),
        ({"methods": ("csv",)}, "csv"),
    ],
)
def test_methods_that_do_not_resolve_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        score(ScorecardSettings(**{"households": 10, "days_per_season": 1, **kwargs}))


def test_bad_csv_rows_name_csv(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("household,day,direction,declared_kwh\n999,0,up,1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="csv"):
        score(ScorecardSettings(households=10, days_per_season=1, methods=("ours",), csv=p))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--households", "0"], "--households"),
        (["--days-per-season", "0"], "--days-per-season"),
        (["--seed", "-1"], "--seed"),
        (["--fixed-margin", "1.0"], "--fixed-margin"),
        (["--method", "bogus"], "--method"),
        (["--method", "nope_module_xyz:f"], "--method"),
        (["--method", "csv"], "--csv"),
        (["--csv", "/nonexistent/declared.csv"], "--csv"),
        (["--html", "/nonexistent/dir/report.html"], "--html"),
        (["--window", "sideways:10:00-14:00"], "--window"),
    ],
)
def test_command_exits_2_naming_the_option(args: list[str], option: str) -> None:
    result = CliRunner().invoke(app, ["evaluate", "potential", "--households", "10", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"drready: error: {option}: "), result.output


def test_windows_parse_and_days_spread() -> None:
    w = parse_window("down:17:00-20:00")
    assert w.direction.value == "down" and w.start.hour == 17 and w.end.hour == 20
    days = representative_days(7)
    assert len(days) == 28
    assert [s for _, s in days].count("summer") == 7
    assert len({d for d, _ in days}) == 28
    assert np.all(np.diff([d.toordinal() for d, _ in days]) > 0)


def test_days_over_the_year_spreads_n_days_over_the_seasons() -> None:
    """`--days N` (issue 13 item 5): N days in all, the seasons as even as whole days allow."""
    for n in (1, 4, 5, 7, 28):
        picked = days_over_the_year(n)
        assert len(picked) == n
        counts = Counter(season for _, season in picked)
        assert max(counts.values()) - min(counts.get(s, 0) for s in SEASONS) <= 1
        assert len({d for d, _ in picked}) == n  # no day twice
    # a multiple of four is the same as days per season
    assert days_over_the_year(28) == representative_days(7)
    settings = ScorecardSettings(households=10, n_days=5, methods=("ours",))
    assert len(settings.days()) == 5
    with pytest.raises(ValueError, match="n_days must be <= 360"):
        ScorecardSettings(n_days=361)
