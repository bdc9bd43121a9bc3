"""The ``drready`` package itself: sub-commands loaded on first use, the root help without
importing them, and the shared parsers and error line of :mod:`drready.cli.common`."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.core import TyperCommand
from typer.testing import CliRunner

from drready.cli import SUBCOMMANDS, app, common, load_subcommand
from drready.domain import DeviceId
from drready.domain.time import DEFAULT_TZ, zone
from drready.planning.unit import UnitConfig

runner = CliRunner()
TZ = zone(DEFAULT_TZ)


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_the_registry_help_is_each_commands_own(name: str) -> None:
    command = load_subcommand(name)
    stub = TyperCommand(name, help=SUBCOMMANDS[name][1])
    for limit in (30, 60, 10_000):
        assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_root_help_lists_every_command_without_importing_one() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from drready.cli import app\n"
        "out = CliRunner().invoke(app, ['--help']).output\n"
        "loaded = [m for m in sys.modules if m.startswith('drready.cli.') or m == 'numpy']\n"
        "print(loaded)\n"
        "print(out)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    first, _, help_text = result.stdout.partition("\n")
    assert first == "[]"
    for name in SUBCOMMANDS:
        assert f"  {name} " in help_text, name


def test_a_mistyped_command_is_one_line_with_a_suggestion() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "drready.cli", "potentail"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "drready: error: No such command 'potentail'. Did you mean 'potential'?"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["potential", "--persons", "7"], "--persons: persons must be <= 4, got 7"),
        (["potential", "--tank-l", "20"], "--tank-l: tank_l must be finite and >= 100, got 20.0"),
        (["potential", "--confidence", "1.5"], "--confidence: confidence must be <= 0.999"),
        (["plan", "--initial-heat-kwh", "150"], "--initial-heat-kwh: initial_heat_kwh must be"),
        (["potential", "--maker-code", "zz"], "--maker-code: maker_code must be exactly 6"),
        (["potential", "--serial", "a b"], "--serial: serial must be"),
        (["potential", "--date", "2026-02-30"], "--date: must be YYYY-MM-DD, got '2026-02-30'"),
        (["echonet", "serve", "--address", "127.0.0.31", "--persons", "0"], "--persons: "),
        (["echonet", "serve", "--address", "127.0.0.31", "--speed", "0"], "--speed: must be"),
        (["engine-demo", "--households", "0"], "--households: must be within 1–100000, got 0"),
        (["demo", "--homes", "11"], "--homes: "),
        (["demo", "--date", "2025-13-01"], "--date: must be YYYY-MM-DD"),
        (["vtn", "serve", "--port", "0"], "--port: must be within 1–65535, got 0"),
        (["cloud", "serve", "--vtn", "https://x", "--mode", "both"], "--mode: must be 'units'"),
        (["cloud", "serve", "--vtn", "https://x", "--units", "0"], "--units: must be within"),
    ],
)
def test_bad_arguments_exit_2_with_the_option_and_the_librarys_message(
    args: list[str], line: str
) -> None:
    result = runner.invoke(app, args, env={"DRREADY_CLIENT_SECRET": "s3cret"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"drready: error: {line}"), lines[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-12", date(2026, 5, 12)),
        ("2024-02-29", date(2024, 2, 29)),
    ],
)
def test_parse_date(text: str, expected: date) -> None:
    assert common.parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("10:00-15:00", datetime(2026, 5, 12, 10, tzinfo=TZ), datetime(2026, 5, 12, 15, tzinfo=TZ)),
        (
            "00:00-00:30",
            datetime(2026, 5, 12, 0, tzinfo=TZ),
            datetime(2026, 5, 12, 0, 30, tzinfo=TZ),
        ),
        ("22:30-24:00", datetime(2026, 5, 12, 22, 30, tzinfo=TZ), datetime(2026, 5, 13, tzinfo=TZ)),
    ],
)
def test_parse_window(text: str, start: datetime, end: datetime) -> None:
    assert common.parse_window(text, date(2026, 5, 12), DEFAULT_TZ) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10h-15h", "must be HH:MM-HH:MM (e.g. 10:00-15:00), got '10h-15h'"),
        ("10:00", "must be HH:MM-HH:MM (e.g. 10:00-15:00), got '10:00'"),
        ("12:00-10:00", "end must be after start, got '12:00-10:00'"),
        ("10:00-10:00", "end must be after start, got '10:00-10:00'"),
        ("10:15-12:00", "times must be on 30-minute boundaries, got '10:15-12:00'"),
    ],
)
def test_parse_window_fails_naming_the_option(
    text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info:
        common.parse_window(text, date(2026, 5, 12), DEFAULT_TZ)
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == f"drready: error: --window: {message}\n"


@pytest.mark.parametrize(
    ("value", "lo", "hi", "unit", "message"),
    [
        (0.5, 1, 3600, "s", "--x: must be within 1–3600 s, got 0.5"),
        (0, 1, 64, "", "--x: must be within 1–64, got 0"),
        (60.0, 0.1, 10, "s", "--x: must be within 0.1–10 s, got 60.0"),
    ],
)
def test_check_range(
    value: float, lo: float, hi: float, unit: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common.check_range("--x", lo, lo, hi, unit)  # the ends are inside
    common.check_range("--x", hi, lo, hi, unit)
    with pytest.raises(typer.Exit):
        common.check_range("--x", value, lo, hi, unit)
    assert capsys.readouterr().err == f"drready: error: {message}\n"


@pytest.mark.parametrize(
    ("field", "option"),
    [
        ("persons", "--persons"),
        ("tank_l", "--tank-l"),
        ("device_id.serial", "--serial"),
        ("device_id.maker_code", "--maker-code"),
        ("initial_heat_kwh", "--initial-heat-kwh"),
        ("day", "--date"),
        ("out_dir", "--out"),
        ("windows", "--window"),
        ("methods", "--method"),
        ("keep_serving", "--keep-serving"),
        ("days_per_season", "--days-per-season"),
    ],
)
def test_option_for(field: str, option: str) -> None:
    assert common.option_for(field) == option


def test_validated_builds_the_model_or_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    device = {"maker_code": "000005", "serial": "HW0000001"}
    cfg = common.validated(UnitConfig, device_id=device, persons=2, tank_l=370)
    assert cfg == UnitConfig(DeviceId.model_validate(device), 2, 370.0)
    with pytest.raises(typer.Exit):
        common.validated(UnitConfig, device_id=device, persons=2, tank_l=5000)
    assert capsys.readouterr().err == (
        "drready: error: --tank-l: tank_l must be <= 1000, got 5000.0 "
        "(allowed range: [100, 1000])\n"
    )
    with pytest.raises(ValidationError):  # the library alone raises, naming the field
        UnitConfig.model_validate({"device_id": device, "persons": 2, "tank_l": 5000})


@pytest.mark.parametrize(
    ("call", "line"),
    [
        (lambda: common.parse_ipv4("10.0.0.300", "--host"), "--host: must be an IPv4 address"),
        (
            lambda: common.require_http_url("ftp://x"),
            "--vtn: must be an https:// URL, got 'ftp://x'",
        ),
        (
            lambda: common.output_file(Path("/nonexistent/dir/r.html"), "--html"),
            "--html: directory /nonexistent/dir does not exist",
        ),
    ],
)
def test_small_parsers_fail_naming_the_option(
    call: object, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(call)
    with pytest.raises(typer.Exit):
        call()
    assert capsys.readouterr().err.startswith(f"drready: error: {line}")


def test_client_secret_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRREADY_CLIENT_SECRET", "s3cret")
    assert common.client_secret("x") == "s3cret"
    monkeypatch.delenv("DRREADY_CLIENT_SECRET")
    with pytest.raises(typer.Exit):
        common.client_secret("this cloud's OAuth2 client secret")
    assert capsys.readouterr().err == (
        "drready: error: DRREADY_CLIENT_SECRET: set it to this cloud's OAuth2 client secret\n"
    )
