"""``drready certs``: a local CA and server/client certificates for development and tests (S1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drready.cli.common import console, fail, option_for
from drready.security.certs import CertsArgumentError, certs_command

app = typer.Typer(rich_markup_mode=None)


@app.command()
def certs(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for the CA, server and client certificates "
            "and keys; must be outside any git work tree."
        ),
    ],
    client: Annotated[
        list[str] | None,
        typer.Option(help="Client certificate name (repeat); default ven-1."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """S1: make a local CA and server/client certificates for development and tests."""
    try:
        bundle = certs_command(out, overwrite, client_names=tuple(client or ("ven-1",)))
    except CertsArgumentError as err:
        fail(option_for(err.argument), err.reason)
    for path in (bundle.ca_cert, bundle.server_cert, bundle.server_key, *bundle.private_keys):
        console.print(str(path))
