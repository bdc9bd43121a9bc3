"""The ``--push`` options shared by ``drready cloud serve`` and ``drready gateway serve``
(issue 16 item 1): subscribe to the VTN's event notifications instead of polling."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from drready.cli.common import check_range, fail
from drready.openadr.push import PUSH_MODES, PushMode, PushOptions

ENV_WEBHOOK_CLIENT_KEY = "DRREADY_WEBHOOK_CLIENT_KEY"
"""This VEN's webhook key (hex, from ``drready vtn webhook-key CLIENT_ID``)."""

PushOpt = Annotated[
    str,
    typer.Option(
        help="How events reach this VEN: 'poll' (every --interval), 'webhook' (an HTTPS "
        "callback the VTN calls) or 'mqtt' (the VTN's broker); pushed, it still reads its "
        "events every --safety-poll seconds."
    ),
]
SafetyPollOpt = Annotated[
    float, typer.Option(help="With --push: seconds between two reads of the events, 10–86400.")
]
CallbackHostOpt = Annotated[
    str, typer.Option(help="With --push webhook: the callback server's listen address.")
]
CallbackPortOpt = Annotated[
    int, typer.Option(help="With --push webhook: its port, 0 (any free) or 1–65535.")
]
CallbackCertOpt = Annotated[
    Path | None, typer.Option(help="With --push webhook: the callback's certificate (PEM).")
]
CallbackKeyOpt = Annotated[
    Path | None, typer.Option(help="With --push webhook: the callback's private key (PEM).")
]
CallbackUrlOpt = Annotated[
    str | None,
    typer.Option(help="With --push webhook: the URL the VTN calls (default from host/port)."),
]
MqttCaOpt = Annotated[
    Path | None,
    typer.Option(
        help="With --push mqtt: CA bundle of an mqtts:// broker announced ANONYMOUS (with "
        "CERTIFICATE, GET /notifiers gives the CA and this VEN's certificate)."
    ),
]


def push_options(
    *,
    push: str,
    safety_poll: float,
    callback_host: str,
    callback_port: int,
    callback_cert: Path | None,
    callback_key: Path | None,
    callback_url: str | None,
    mqtt_ca: Path | None,
) -> PushOptions | None:
    """The validated :class:`PushOptions` (None for ``poll``); exits 2 naming the option."""
    modes: list[PushMode] = [m for m in PUSH_MODES if m == push]
    if not modes:
        fail("--push", f"must be one of {', '.join(PUSH_MODES)}, got {push!r}")
    if modes[0] == "poll":
        return None
    check_range("--safety-poll", safety_poll, 10, 86_400, "s")
    check_range("--callback-port", callback_port, 0, 65535)
    if modes[0] == "webhook":
        for option, path in (("--callback-cert", callback_cert), ("--callback-key", callback_key)):
            if path is None or not path.is_file():
                fail(option, "--push webhook needs the HTTPS callback's certificate and key")
    if callback_url is not None and not callback_url.startswith("https://"):
        fail("--callback-url", f"must be an https:// URL, got {callback_url!r}")
    key_hex = os.environ.get(ENV_WEBHOOK_CLIENT_KEY) or None
    if key_hex is not None:
        try:
            bytes.fromhex(key_hex)
        except ValueError:
            fail(f"${ENV_WEBHOOK_CLIENT_KEY}", "must be hex (from `drready vtn webhook-key`)")
    return PushOptions(
        mode=modes[0],
        safety_poll_s=safety_poll,
        callback_host=callback_host,
        callback_port=callback_port,
        callback_cert=None if callback_cert is None else str(callback_cert),
        callback_key=None if callback_key is None else str(callback_key),
        callback_url=callback_url,
        webhook_key_hex=key_hex,
        mqtt_ca_file=None if mqtt_ca is None else str(mqtt_ca),
    )
