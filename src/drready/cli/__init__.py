"""The ``drready`` command: the root, its sub-commands and the console entry point :func:`main`.

Other tools script against this contract: ``--json`` output is stable, and a bad argument exits
with status 2 and one line on stderr that names the argument (:mod:`drready.cli.common`). Each
sub-command lives in its own module of this package and serves the requirements named in it:
``potential``/``plan``/``schema``/``engine-demo`` (:mod:`~drready.cli.engine`: F1–F4, D1),
``demo`` (:mod:`~drready.cli.demo`), ``certs`` (:mod:`~drready.cli.certs`: S1), ``vtn``,
``cloud``, ``gateway``, ``servicer`` and ``echonet`` (the parties and route i, C1, F1–F6),
``evaluate`` and ``conformance`` (E1).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["SUBCOMMANDS", "app", "main"]

#: Sub-command → (module of this package, the first sentence of its help). ``drready --help``
#: lists these texts instead of importing every module (tests/test_cli_package.py checks they
#: match the modules' own help).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "potential": ("engine", "F1: the DR potential (DR可能量) of one unit for a window."),
    "plan": (
        "engine",
        "F2→F3/F4: the heating plan (沸き上げ計画) of one unit honouring DR requests.",
    ),
    "schema": ("engine", "Write the JSON Schema of every unified data model type (D1)."),
    "engine-demo": (
        "engine",
        "The DR engine alone, in one process: a fleet's up-DR (10–14 h) and down-DR (17–20 h).",
    ),
    "demo": (
        "demo",
        "One simulated day of the whole ecosystem over its real protocols (VTN, maker cloud, "
        "home gateway with ECHONET Lite nodes, battery, servicer): noon up-DR, evening down-DR, "
        "an hour of command following; prints the summary and writes an HTML report.",
    ),
    "certs": (
        "certs",
        "S1: make a local CA and server/client certificates for development and tests.",
    ),
    "vtn": ("vtn", "OpenADR 3.1 VTN (the DR servicer's server, route ii)."),
    "cloud": (
        "cloud",
        "Maker cloud: a fleet of simulated water heaters behind one OpenADR VEN (route ii).",
    ),
    "evaluate": ("evaluate", "E1: evaluate DR-potential methods (scorecard)."),
    "simulate": ("simulate", "E1: simulate a household's water heater for a year, month by month."),
    "conformance": (
        "conformance",
        "E1: black-box conformance checks of any DR-ready ECHONET Lite node or OpenADR VTN.",
    ),
    "servicer": (
        "servicer",
        "DR servicer: run it as a service, its database, the key that seals market "
        "registration data.",
    ),
    "gateway": (
        "gateway",
        "Home gateway: the water heaters of an ECHONET Lite home behind one OpenADR VEN (route i).",
    ),
    "echonet": (
        "echonet",
        "ECHONET Lite (route i): run a device node, scan a LAN, get and set properties.",
    ),
    "profile": (
        "profile",
        "D1/E1: the profiles' published test vectors (ECHONET Lite, OpenADR, method).",
    ),
    "stack": (
        "stack",
        "The whole ecosystem as separate processes: VTN, servicer, maker cloud, home gateway.",
    ),
}


def load_subcommand(name: str) -> Any:
    """Import the module of sub-command ``name`` and return its click command (a group for
    ``vtn``, ``echonet`` …; one command of the module's app for ``potential``, ``demo`` …)."""
    module = importlib.import_module(f"drready.cli.{SUBCOMMANDS[name][0]}")
    group = typer.main.get_group(module.app)
    if name in group.commands:
        return group.commands[name]
    group.name = name
    return group


class _LazyCommands(MutableMapping[str, Any]):
    """The root's sub-commands, each module imported when its command is first looked up.

    Why lazily: every sub-command module imports its library at the top (numpy and the planner,
    FastAPI and SQLAlchemy, matplotlib …, 1–3 s), which ``drready --help`` and every other
    sub-command would otherwise pay for.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in SUBCOMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_subcommand(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(SUBCOMMANDS), **self._loaded})

    def __len__(self) -> int:
        return len({**dict.fromkeys(SUBCOMMANDS), **self._loaded})


class _LazyGroup(TyperGroup):
    """The root group: sub-commands from :data:`SUBCOMMANDS`, imported on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands()

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The "Commands" section of ``drready --help`` from :data:`SUBCOMMANDS`, shortened as
        click shortens a command's own help, without importing any sub-command module."""
        limit = formatter.width - 6 - max(len(name) for name in SUBCOMMANDS)
        rows = [
            (name, TyperCommand(name, help=text).get_short_help_str(limit))
            for name, (_, text) in SUBCOMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_LazyGroup,
    help="drready: DR-ready heat pump water heaters — device, maker cloud and DR servicer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    # the sub-commands come from SUBCOMMANDS; a callback makes the root a group without any
    pass


def main() -> None:
    """Console entry point: usage errors become one line and exit status 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(standalone_mode=False)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        print("drready: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.exceptions.TyperException as err:  # typer's (vendored click) usage errors
        param = getattr(err, "param", None)
        opts = getattr(param, "opts", None) or []
        name = f"{opts[0]}: " if opts else ""
        fmt = getattr(err, "format_message", None)
        msg = (fmt() if callable(fmt) else str(err)).replace("\n", " ")
        print(f"drready: error: {name}{msg}", file=sys.stderr)
        sys.exit(int(getattr(err, "exit_code", 2)))
    if isinstance(rv, int) and rv:
        sys.exit(rv)
