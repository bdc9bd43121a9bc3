"""``drready vtn serve``: the DR servicer's OpenADR 3.1 VTN over HTTPS (route ii; F1–F6, S1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drready.cli.common import check_range, fail, first_line, last_line, sub_app
from drready.openadr.vtn import VtnSettings
from drready.openadr.vtn.server import run
from drready.security.settings import SecuritySettings
from drready.security.tokens import load_registry

app = sub_app("OpenADR 3.1 VTN (the DR servicer's server, route ii).")


@app.command("serve")
def vtn_serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port, 1–65535.")] = 8443,
    cert: Annotated[
        Path | None, typer.Option(help="Server certificate (PEM), e.g. from `drready certs`.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    database: Annotated[
        str, typer.Option(help="SQLAlchemy URL: sqlite:///FILE (default) or postgresql+psycopg://…")
    ] = "sqlite:///drready-vtn.db",
    base_url: Annotated[
        str | None,
        typer.Option(help="Public base URL (for /auth/server); default https://HOST:PORT."),
    ] = None,
    clients_file: Annotated[
        Path | None,
        typer.Option(
            help="OAuth2 client registry (JSON/TOML, "
            "outside the repo); default "
            "$DRREADY_CLIENTS_FILE."
        ),
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option(help="Serve plain HTTP (prints a warning; local experiments only).")
    ] = False,
    allow_any_address: Annotated[
        bool,
        typer.Option(
            help="Allow listening on every interface (0.0.0.0, ::, any spelling); logs a warning."
        ),
    ] = False,
    strict_input: Annotated[
        bool,
        typer.Option(
            help="Refuse bodies with properties the OpenADR 3.1 schema does not define (400); by "
            "default they are ignored and logged, never stored, as the specification allows."
        ),
    ] = False,
    mqtt_broker: Annotated[
        str | None,
        typer.Option(
            help="Offer the MQTT notifier binding via this broker (mqtts://… in production)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes, 1–64, each dealt new connections in turn; as many as CPU "
            "cores on SQLite, about cores + 1 on PostgreSQL (keeps the CPUs busy while a worker "
            "waits on the database)."
        ),
    ] = 1,
) -> None:
    """Run the VTN over HTTPS. The token signing key comes from $DRREADY_TOKEN_KEY."""
    check_range("--port", port, 1, 65535)
    check_range("--workers", workers, 1, 64)
    if not insecure_http and (cert is None or key is None):
        fail(
            "--cert/--key",
            "HTTPS needs a certificate and key (make them with `drready certs "
            "--out DIR`), or pass --insecure-http for a local experiment",
        )
    try:
        registry = load_registry(clients_file)
    except (ValueError, OSError) as err:
        fail("--clients-file", first_line(err))
    scheme = "http" if insecure_http else "https"
    try:
        settings = VtnSettings(
            database_url=database,
            base_url=base_url or f"{scheme}://{host}:{port}",
            mqtt_broker_url=mqtt_broker,
            strict_input=strict_input,
        )
    except ValueError as err:
        fail("--mqtt-broker", last_line(err))
    tls = None if insecure_http else SecuritySettings(cert_file=cert, key_file=key)
    try:
        run(
            settings,
            registry,
            host=host,
            port=port,
            tls=tls,
            insecure_http=insecure_http,
            allow_any_address=allow_any_address,
            workers=workers,
        )
    except ValueError as err:
        fail("--host", first_line(err))
