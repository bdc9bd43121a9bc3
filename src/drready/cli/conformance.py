"""``drready conformance echonet|openadr``: black-box conformance checks of any DR-ready ECHONET
Lite node or OpenADR VTN, printed as a table or JSON (E1; C1, S1, F1–F6).

The checks are :func:`~drready.evaluation.conformance_echonet.check_echonet` and
:func:`~drready.evaluation.conformance_openadr.check_openadr`; their
:class:`~drready.evaluation.conformance.Report` is rendered here (:func:`render_report`). Exit
status 0 when no check failed, 1 otherwise.

``conformance openadr`` takes the BL's secret from ``$DRREADY_CLIENT_SECRET`` and, for the
checks across VENs (object privacy and the hostile-input probes of issue 12), two VENs'
credentials from ``--ven-credentials FILE``: ``client_id=secret`` lines, a file only its owner
may read (0600; others' read or write bits are refused, as secrets must not be on the command
line nor in a world-readable file).
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from drready.cli.common import (
    JsonOpt,
    client_secret,
    console,
    fail,
    parse_ipv4,
    require_http_url,
    sub_app,
)
from drready.evaluation.conformance import Report, Verdict
from drready.evaluation.conformance_echonet import check_echonet, level_of
from drready.evaluation.conformance_openadr import check_openadr

app = sub_app("E1: black-box conformance checks of any DR-ready ECHONET Lite node or OpenADR VTN.")

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.NOT_OBSERVABLE: "yellow"}


@app.command("echonet")
def conformance_echonet(
    address: Annotated[str, typer.Option(help="IPv4 address of the node to probe.")],
    interface: Annotated[str, typer.Option(help="Local IPv4 address to send from.")] = (
        "127.0.0.1"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Probe a node over ECHONET Lite for F1–F6 (pass / fail / not observable, with evidence).

    It sets and restores 0xC7/0xCA/0xF2 on the node. Exit status 1 when a check fails."""
    parse_ipv4(address, "--address")
    parse_ipv4(interface, "--interface")
    try:
        code = echonet_conformance_command(address, interface, as_json, console)
    except OSError as err:
        fail("--interface", str(err))
    raise typer.Exit(code)


@app.command("openadr")
def conformance_openadr(
    vtn: Annotated[str, typer.Option(help="Base URL of the VTN (https://…).")],
    client_id: Annotated[str, typer.Option(help="The checker acts as this BL client.")],
    ca: Annotated[
        Path | None, typer.Option(help="CA certificate of the VTN (PEM); default the system store.")
    ] = None,
    ven_credentials: Annotated[
        Path | None,
        typer.Option(
            help="File of two VENs' client_id=secret lines (mode 0600): the checks across VENs."
        ),
    ] = None,
    probes_only: Annotated[
        bool,
        typer.Option(help="Only TLS and the hostile-input probes (S1), not F1–F6."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a VTN and the VENs behind it for S1 and F1–F6 as the BL (secret from
    $DRREADY_CLIENT_SECRET); with --ven-credentials also privacy between two VENs and the
    hostile-input probes (report on an invisible event, name squatting, strict JSON, deep JSON,
    existence oracle). Exit status 1 when a check fails."""
    secret = client_secret("the BL client's secret")
    require_http_url(vtn)
    vens = read_ven_credentials(ven_credentials) if ven_credentials is not None else []
    raise typer.Exit(
        openadr_conformance_command(
            vtn, client_id, secret, ca, as_json, console, vens=vens, probes_only=probes_only
        )
    )


def read_ven_credentials(path: Path, argument: str = "--ven-credentials") -> list[tuple[str, str]]:
    """``client_id=secret`` lines of ``path`` (blank lines and ``#`` comments skipped); exit 2
    naming ``argument`` when the file is missing, readable or writable by others, or malformed."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        fail(argument, f"cannot read {path}: {err.strerror}")
    if mode & 0o077:
        fail(argument, f"{path} has mode {mode:04o}: others may read it (chmod 600 {path})")
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        client, sep, secret = line.partition("=")
        if not sep or not client.strip() or not secret.strip():
            fail(argument, f"{path} line {number}: expected client_id=secret")
        out.append((client.strip(), secret.strip()))
    if not 1 <= len(out) <= 2:
        fail(argument, f"{path}: one or two client_id=secret lines, got {len(out)}")
    return out


def echonet_conformance_command(
    address: str, interface: str, json_out: bool, console: Console
) -> int:
    """Run :func:`~drready.evaluation.conformance_echonet.check_echonet` and print the report
    with the level the node reaches (``dr-ready``, ``standard`` or ``none``); return the exit
    status (0 all pass, 1 some fail)."""
    report = asyncio.run(check_echonet(address, interface=interface))
    level = level_of(report)
    if json_out:
        print(json.dumps({**report.as_dict(), "level": level}, ensure_ascii=False))
    else:
        render_report(report, console)
        console.print(f"level reached: {level}")
    return report.exit_code


def openadr_conformance_command(
    vtn: str,
    client_id: str,
    client_secret: str,
    ca_file: Path | None,
    json_out: bool,
    console: Console,
    *,
    vens: list[tuple[str, str]] | None = None,
    probes_only: bool = False,
) -> int:
    """Run :func:`~drready.evaluation.conformance_openadr.check_openadr` (with ``vens``: up to
    two VENs' client id and secret) and print the report; return the exit status (0 all pass,
    1 some fail)."""
    report = asyncio.run(
        check_openadr(
            vtn,
            client_id=client_id,
            client_secret=client_secret,
            ca_file=ca_file,
            ven_credentials=vens,
            probes_only=probes_only,
        )
    )
    if json_out:
        console.print_json(report.to_json())
    else:
        render_report(report, console)
    return int(report.exit_code)


def render_report(report: Report, console: Console, evidence_lines: int = 2) -> None:
    """A table (requirement, check, verdict, first evidence lines) and a summary line."""
    table = Table(title=f"Conformance — {report.target}", show_lines=False)
    table.add_column("req", no_wrap=True)
    table.add_column("check")
    table.add_column("verdict", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    for c in report.checks:
        shown = c.evidence[:evidence_lines]
        more = len(c.evidence) - len(shown)
        ev = "\n".join(shown) + (f"\n… {more} more" if more > 0 else "")
        table.add_row(
            c.requirement, c.name, Text(str(c.verdict), style=_STYLE[c.verdict]), Text(ev)
        )
    console.print(table)
    n = report.counts()
    summary = ", ".join(f"{k}: {v}" for k, v in n.items())
    style = "bold red" if report.exit_code else "bold green"
    console.print(Text(f"{'FAIL' if report.exit_code else 'PASS'} ({summary})", style=style))
