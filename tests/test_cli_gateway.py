"""`drready gateway serve` as a user runs it: help, argument checks, no heater found."""

from __future__ import annotations

from typer.testing import CliRunner

from drready.cli import app

runner = CliRunner()


def test_help_explains_every_flag() -> None:
    result = runner.invoke(app, ["gateway", "serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--vtn", "--host", "--interface", "--client-id", "--ca", "--power-interval"):
        assert flag in result.output


def test_bad_arguments_name_the_flag() -> None:
    env = {"DRREADY_CLIENT_SECRET": "s3cret"}
    bad = [
        (["--vtn", "https://localhost:1", "--interval", "0"], "--interval"),
        (["--vtn", "ftp://x"], "--vtn"),
        (["--vtn", "https://localhost:1", "--host", "not-an-ip"], "--host"),
        (["--vtn", "https://localhost:1", "--discovery-window", "60"], "--discovery-window"),
    ]
    for args, flag in bad:
        result = runner.invoke(app, ["gateway", "serve", *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert flag in result.output
    result = runner.invoke(app, ["gateway", "serve", "--vtn", "https://localhost:1"], env={})
    assert result.exit_code == 2 and "DRREADY_CLIENT_SECRET" in result.output


def test_no_water_heater_at_the_host_is_a_clear_error() -> None:
    result = runner.invoke(
        app,
        [
            "gateway",
            "serve",
            "--vtn",
            "https://localhost:1",
            "--host",
            "127.0.0.93",
            "--discovery-window",
            "0.2",
        ],
        env={"DRREADY_CLIENT_SECRET": "s3cret"},
    )
    assert result.exit_code == 2, result.output
    assert "no water heater" in result.output
