"""What every ``drready`` sub-command shares: the one-line error, parsers and option types.

The contract other tools script against: a bad argument exits with status 2 and one line on
stderr, ``drready: error: <argument>: <message>``, naming the option the user typed
(:func:`fail`). Inputs the library validates (a :class:`~drready.planning.unit.UnitConfig`, the
scorecard's settings, the demo's settings) are built as pydantic models here and their
``ValidationError`` becomes that line through one table, :data:`OPTION_OF_FIELD`
(:func:`fail_validation`). Inputs only the command line has (dates, windows, addresses, URLs,
ranges of poll intervals) get one parser each. Serves every requirement the sub-commands do
(F1–F6, C1, S1, D1, E1).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from drready.domain.base import format_number
from drready.domain.time import zone

__all__ = [
    "OPTION_OF_FIELD",
    "CaOpt",
    "ConfOpt",
    "DateOpt",
    "HeatOpt",
    "InsecureHttpOpt",
    "IntervalOpt",
    "JsonOpt",
    "MakerOpt",
    "PersonsOpt",
    "SerialOpt",
    "TankOpt",
    "VtnOpt",
    "check_range",
    "client_secret",
    "console",
    "fail",
    "fail_validation",
    "first_line",
    "last_line",
    "option_for",
    "output_file",
    "parse_date",
    "parse_ipv4",
    "parse_window",
    "require_http_url",
    "sub_app",
    "validated",
]

#: Where the commands print tables and results (stdout).
console = Console()


def sub_app(help_text: str) -> typer.Typer:
    """A sub-command group (``drready vtn``, ``drready echonet`` …) or a module of top-level
    commands, configured like the root: help without rich markup, no arguments → help."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def fail(argument: str, message: str) -> NoReturn:
    """Exit 2 with one line naming the argument."""
    print(f"drready: error: {argument}: {message}", file=sys.stderr)
    raise typer.Exit(2)


def first_line(err: BaseException) -> str:
    """The first line of an error's text (library errors lead with the argument and reason)."""
    return str(err).splitlines()[0]


def last_line(err: BaseException) -> str:
    """The last line of an error's text (a pydantic ``ValueError`` ends with the reason)."""
    return str(err).splitlines()[-1].strip()


#: Field of a validated model → the option it comes from, for every sub-command; a field not
#: listed is its own name as an option (``keep_serving`` → ``--keep-serving``).
OPTION_OF_FIELD: dict[str, str] = {
    "persons": "--persons",
    "tank_l": "--tank-l",
    "device_id": "--maker-code/--serial",
    "device_id.maker_code": "--maker-code",
    "device_id.serial": "--serial",
    "confidence": "--confidence",
    "initial_heat_kwh": "--initial-heat-kwh",
    "day": "--date",
    "out_dir": "--out",
    "client_names": "--client",
    "methods": "--method",
    "windows": "--window",
    "n_days": "--days",
}


def option_for(field: str) -> str:
    """The option a model field (``"device_id.serial"``) comes from (:data:`OPTION_OF_FIELD`)."""
    return OPTION_OF_FIELD.get(field) or "--" + field.split(".")[0].replace("_", "-")


def fail_validation(err: ValidationError) -> NoReturn:
    """Exit 2 naming the option of the first invalid field, with the model's own message."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))  # no index
    message = str(first["msg"]).removeprefix("Value error, ")
    fail(option_for(field), message)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **fields: object) -> M:
    """``model`` built from ``fields`` (the library validates); exit 2 naming the option of the
    first invalid field."""
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        fail_validation(err)


def check_range(argument: str, value: float, lo: float, hi: float, unit: str = "") -> None:
    """Exit 2 unless ``lo ≤ value ≤ hi`` (for inputs only the command line has)."""
    if not lo <= value <= hi:
        suffix = f" {unit}" if unit else ""
        fail(
            argument,
            f"must be within {format_number(lo)}–{format_number(hi)}{suffix}, got {value}",
        )


def parse_date(value: str, argument: str = "--date") -> date:
    """``YYYY-MM-DD`` → :class:`~datetime.date`."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(argument, f"must be YYYY-MM-DD, got {value!r}")


def parse_window(
    value: str, day: date, tz: str, argument: str = "--window"
) -> tuple[datetime, datetime]:
    """``HH:MM-HH:MM`` on ``day`` in ``tz`` → aware ``(start, end)``; ``24:00`` ends at the next
    midnight; both times on 30-minute boundaries (the slot grid)."""
    try:
        a, b = value.split("-")
        ta = time.fromisoformat(a)
        end_next = b == "24:00"
        tb = time(0, 0) if end_next else time.fromisoformat(b)
    except ValueError:
        fail(argument, f"must be HH:MM-HH:MM (e.g. 10:00-15:00), got {value!r}")
    start = datetime.combine(day, ta, tzinfo=zone(tz))
    end = datetime.combine(day + timedelta(days=1 if end_next else 0), tb, tzinfo=zone(tz))
    if end <= start:
        fail(argument, f"end must be after start, got {value!r}")
    if ta.minute % 30 or tb.minute % 30:
        fail(argument, f"times must be on 30-minute boundaries, got {value!r}")
    return start, end


def parse_ipv4(value: str, argument: str) -> str:
    """An IPv4 address, unchanged."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        fail(argument, f"must be an IPv4 address, got {value!r}")
    return value


def require_http_url(value: str, argument: str = "--vtn") -> str:
    """An ``https://`` (or, for local experiments, ``http://``) URL, unchanged."""
    if not value.startswith(("https://", "http://")):
        fail(argument, f"must be an https:// URL, got {value!r}")
    return value


def client_secret(whose: str) -> str:
    """The OAuth2 client secret from ``$DRREADY_CLIENT_SECRET`` (never an option: it would show
    in the process list); ``whose`` completes "set it to …"."""
    secret = os.environ.get("DRREADY_CLIENT_SECRET")
    if not secret:
        fail("DRREADY_CLIENT_SECRET", f"set it to {whose}")
    return secret


def output_file(path: Path | None, argument: str) -> Path | None:
    """A file to write: its folder must exist."""
    if path is not None and not path.parent.is_dir():
        fail(argument, f"directory {path.parent} does not exist")
    return path


PersonsOpt = Annotated[int, typer.Option(help="Household size, 1–4 persons.")]
TankOpt = Annotated[float, typer.Option("--tank-l", help="Tank volume [L], 100–1000 (370, 460).")]
DateOpt = Annotated[
    str,
    typer.Option(
        "--date", help="Day the DR is for (YYYY-MM-DD); planning starts 23:00 the evening before."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ConfOpt = Annotated[float, typer.Option(help="Confidence of the potential, 0.5–0.999.")]
HeatOpt = Annotated[
    float | None,
    typer.Option(
        "--initial-heat-kwh",
        help="Stored heat at 23:00 the evening before [kWh]; default a quarter-full tank.",
    ),
]
SerialOpt = Annotated[str, typer.Option(help="Unit serial (F6), 1–13 of [A-Za-z0-9._-].")]
MakerOpt = Annotated[str, typer.Option(help="ECHONET Lite maker code, 6 hex digits.")]
VtnOpt = Annotated[str, typer.Option(help="Base URL of the servicer's VTN (https://…).")]
CaOpt = Annotated[
    Path | None,
    typer.Option(
        help="CA certificate the VTN's certificate chains to (PEM); default the system store."
    ),
]
IntervalOpt = Annotated[float, typer.Option(help="Seconds between polls of the VTN, 1–3600.")]
InsecureHttpOpt = Annotated[
    bool, typer.Option(help="Allow an http:// VTN (local experiments only).")
]
