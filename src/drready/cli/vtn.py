"""``drready vtn serve``: the DR servicer's OpenADR 3.1 VTN over HTTPS (route ii; F1–F6, S1)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from drready.cli.common import check_range, fail, first_line, sub_app
from drready.openadr.vtn import VtnSettings
from drready.openadr.vtn.mqtt_access import write_broker_config
from drready.openadr.vtn.server import ENV_WEBHOOK_KEY, WEBHOOK_KEY_MIN_BYTES, run
from drready.openadr.vtn.webhooks import webhook_key_for
from drready.security.settings import SecuritySettings
from drready.security.tokens import ENV_TOKEN_KEY, ENV_TOKEN_KEY_FILE, load_registry

app = sub_app("OpenADR 3.1 VTN (the DR servicer's server, route ii).")

_MQTT_FIELDS = (
    ("mqtt_username", "--mqtt-username"),
    ("mqtt_ca_file", "--mqtt-ca"),
    ("mqtt_ca_key_file", "--mqtt-ca-key"),
)


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
    mqtt_username: Annotated[
        str | None,
        typer.Option(
            help="The VTN's user name at the broker, its certificate's CN (default drready-vtn)."
        ),
    ] = None,
    mqtt_ca: Annotated[
        Path | None,
        typer.Option(
            help="CA of an mqtts:// broker (default: system CAs); the ca.pem of `drready vtn "
            "mqtt-config`."
        ),
    ] = None,
    mqtt_ca_key: Annotated[
        Path | None,
        typer.Option(
            help="The broker CA's key (ca-key.pem of `drready vtn mqtt-config`, 0600): GET "
            "/notifiers gives each client its certificate (OpenADR 3.1 CERTIFICATE "
            "authentication) and the VTN publishes with its own."
        ),
    ] = None,
    mqtt_cert_dir: Annotated[
        Path | None,
        typer.Option(help="Where issued client keys are kept (0700); default issued/ by the key."),
    ] = None,
    allow_private_callbacks: Annotated[
        bool,
        typer.Option(
            help="Accept webhook callbackUrls on loopback/private/link-local addresses (local "
            "tests only; logs a warning). Refused by default (SSRF guard)."
        ),
    ] = False,
    callback_ca: Annotated[
        Path | None,
        typer.Option(help="CA bundle to verify webhook callback servers (default: system CAs)."),
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
    """Run the VTN over HTTPS. The token signing key comes from $DRREADY_TOKEN_KEY, the webhook
    signing key from $DRREADY_WEBHOOK_KEY (see `drready vtn webhook-key`)."""
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
            mqtt_username=mqtt_username,
            mqtt_ca_file=None if mqtt_ca is None else str(mqtt_ca),
            mqtt_ca_key_file=None if mqtt_ca_key is None else str(mqtt_ca_key),
            mqtt_cert_dir=None if mqtt_cert_dir is None else str(mqtt_cert_dir),
            allow_private_callbacks=allow_private_callbacks,
            callback_ca_file=None if callback_ca is None else str(callback_ca),
            strict_input=strict_input,
        )
    except ValidationError as err:
        first = err.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in first["loc"]) or message.split(":", 1)[0]
        option = next((opt for field, opt in _MQTT_FIELDS if field == where), "--mqtt-broker")
        fail(option, message)
    for option, path in (
        ("--mqtt-ca", mqtt_ca),
        ("--mqtt-ca-key", mqtt_ca_key),
        ("--callback-ca", callback_ca),
    ):
        if path is not None and not path.is_file():
            fail(option, f"no such file: {path}")
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
        message = first_line(err)
        field = message.split(":", 1)[0]
        named = {"ca_key_file": "--mqtt-ca-key", "directory": "--mqtt-cert-dir"}.get(field)
        fail(named or (f"${ENV_WEBHOOK_KEY}" if ENV_WEBHOOK_KEY in message else "--host"), message)


@app.command("webhook-key")
def vtn_webhook_key(
    client_id: Annotated[str, typer.Argument(help="The OAuth2 client id of the subscriber.")],
) -> None:
    """Print (hex) the key a subscriber checks its webhook signatures with: derived from
    $DRREADY_WEBHOOK_KEY and its client id, so no VEN can sign for another."""
    key = os.environ.get(ENV_WEBHOOK_KEY, "")
    if len(key.encode()) < WEBHOOK_KEY_MIN_BYTES:
        fail(f"${ENV_WEBHOOK_KEY}", f"must be set, at least {WEBHOOK_KEY_MIN_BYTES} bytes")
    if not client_id:
        fail("CLIENT_ID", "must not be empty")
    typer.echo(webhook_key_for(key.encode(), client_id).hex())


@app.command("mqtt-config")
def vtn_mqtt_config(
    out: Annotated[
        Path, typer.Option(help="Directory to write into (0700, outside the repository).")
    ],
    clients_file: Annotated[
        Path | None,
        typer.Option(help="OAuth2 client registry (default $DRREADY_CLIENTS_FILE)."),
    ] = None,
    port: Annotated[int, typer.Option(help="The broker's listener port, 1–65535.")] = 8883,
    host: Annotated[str, typer.Option(help="The broker's listen address.")] = "127.0.0.1",
    vtn_user: Annotated[str, typer.Option(help="The VTN's own user name at the broker.")] = (
        "drready-vtn"
    ),
    run_as: Annotated[
        str | None,
        typer.Option(help="System user the broker runs as (owns the 0600 files); default you."),
    ] = None,
    server_name: Annotated[
        list[str] | None,
        typer.Option(help="Another name (DNS or IP) the broker is reached by (repeatable)."),
    ] = None,
) -> None:
    """Write a Mosquitto broker's access control for the VTN's MQTT binding (OpenADR 3.1
    CERTIFICATE authentication): the broker CA (ca.pem, ca-key.pem; kept when re-run), the
    broker's TLS certificate, acl (each client reads only clients/<its id>/#; BL the general
    topics its scopes allow) and mosquitto.conf (mutual TLS, the certificate's CN as user
    name, no anonymous clients), all 0600. `vtn serve --mqtt-ca-key` then issues each
    client its certificate through GET /notifiers."""
    check_range("--port", port, 1, 65535)
    try:
        # the registry's records only: no token is signed here, so any key parses it
        env = {**os.environ}
        if not env.get(ENV_TOKEN_KEY) and not env.get(ENV_TOKEN_KEY_FILE):
            env[ENV_TOKEN_KEY] = secrets.token_urlsafe(48)
        registry = load_registry(clients_file, env)
    except (ValueError, OSError) as err:
        fail("--clients-file", first_line(err))
    try:
        files = write_broker_config(
            out,
            registry.clients,
            port=port,
            host=host,
            vtn_user=vtn_user,
            run_as=run_as,
            server_names=server_name or (),
        )
    except ValueError as err:
        message = first_line(err)
        option = {"out": "--out", "vtn_user": "--vtn-user", "ip_addresses": "--server-name"}
        fail(option.get(message.split(":", 1)[0], "--clients-file"), message)
    typer.echo(f"wrote {files.conf}, {files.acl}, {files.ca_cert}, {files.server_cert}")
    typer.echo(
        f"VTN: --mqtt-broker mqtts://{host}:{port} --mqtt-ca {files.ca_cert} "
        f"--mqtt-ca-key {files.ca_key} --mqtt-username {vtn_user}"
    )
