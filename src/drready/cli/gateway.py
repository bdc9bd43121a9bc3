"""``drready gateway serve|inspect``: a home gateway, the water heaters of an ECHONET Lite home
behind one OpenADR VEN, and the installer's view of what it would send upstream (route i; C1,
F1–F6)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, time
from typing import Annotated

import typer
from rich.table import Table

from drready.cli.common import (
    CaOpt,
    InsecureHttpOpt,
    IntervalOpt,
    JsonOpt,
    VtnOpt,
    check_range,
    client_secret,
    console,
    fail,
    first_line,
    parse_date,
    parse_ipv4,
    require_http_url,
    sub_app,
)
from drready.cli.push_opts import (
    CallbackCertOpt,
    CallbackHostOpt,
    CallbackKeyOpt,
    CallbackPortOpt,
    CallbackUrlOpt,
    MqttCaOpt,
    PushOpt,
    SafetyPollOpt,
    push_options,
)
from drready.domain.time import DEFAULT_TZ, zone
from drready.echonet.controller import EchonetController
from drready.gateway.capability import DEFAULT_EXTENSION_MAKERS
from drready.gateway.inspect import inspect_home, window_on
from drready.gateway.ven import LAN_RETRIES, NoWaterHeaterError, run_gateway

app = sub_app(
    "Home gateway: the water heaters of an ECHONET Lite home behind one OpenADR VEN (route i)."
)

ExtensionMakerOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Maker code (6 hex digits) trusted to implement drready's maker EPCs 0xF0–0xF4 "
        f"(repeatable; added to {', '.join(sorted(DEFAULT_EXTENSION_MAKERS))}).",
    ),
]
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _makers(values: list[str] | None) -> frozenset[str]:
    out = set(DEFAULT_EXTENSION_MAKERS)
    for v in values or []:
        if not re.fullmatch(r"[0-9A-Fa-f]{6}", v):
            fail("--extension-maker", f"must be 6 hex digits, got {v!r}")
        out.add(v.upper())
    return frozenset(out)


def parse_window(value: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` on the 30-minute grid."""
    m = _WINDOW.match(value)
    if m is None:
        fail("--window", f"must be HH:MM-HH:MM (e.g. 10:00-14:00), got {value!r}")
    h0, m0, h1, m1 = (int(g) for g in m.groups())
    if h0 > 23 or h1 > 24 or m0 not in (0, 30) or m1 not in (0, 30) or (h1 == 24 and m1):
        fail("--window", f"times must be on the 30-minute grid within 00:00–24:00, got {value!r}")
    return time(h0, m0), time(h1 % 24, m1)


@app.command("serve")
def gateway_serve(
    vtn: VtnOpt,
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="IPv4 address of a water heater node (repeatable); default: multicast "
            "discovery on the LAN."
        ),
    ] = None,
    interface: Annotated[
        str, typer.Option(help="Local IPv4 address on the home LAN to send from.")
    ] = "127.0.0.1",
    client_id: Annotated[str, typer.Option(help="OAuth2 client id of this gateway's VEN.")] = (
        "home-gateway"
    ),
    ca: CaOpt = None,
    interval: IntervalOpt = 10.0,
    power_interval: Annotated[
        float,
        typer.Option(help="Least seconds between two power reports of one DR event, 1–3600."),
    ] = 60.0,
    discovery_window: Annotated[
        float, typer.Option(help="Seconds to collect discovery answers, 0.1–10.")
    ] = 1.0,
    insecure_http: InsecureHttpOpt = False,
    extension_maker: ExtensionMakerOpt = None,
    push: PushOpt = "poll",
    safety_poll: SafetyPollOpt = 300.0,
    callback_host: CallbackHostOpt = "127.0.0.1",
    callback_port: CallbackPortOpt = 0,
    callback_cert: CallbackCertOpt = None,
    callback_key: CallbackKeyOpt = None,
    callback_url: CallbackUrlOpt = None,
    mqtt_ca: MqttCaOpt = None,
) -> None:
    """Run a home gateway's VEN; its client secret comes from $DRREADY_CLIENT_SECRET."""
    makers = _makers(extension_maker)
    parse_ipv4(interface, "--interface")
    hosts = [parse_ipv4(h, "--host") for h in host or []]
    check_range("--interval", interval, 1, 3600, "s")
    check_range("--power-interval", power_interval, 1, 3600, "s")
    check_range("--discovery-window", discovery_window, 0.1, 10, "s")
    require_http_url(vtn)
    pushed = push_options(
        push=push,
        safety_poll=safety_poll,
        callback_host=callback_host,
        callback_port=callback_port,
        callback_cert=callback_cert,
        callback_key=callback_key,
        callback_url=callback_url,
        mqtt_ca=mqtt_ca,
    )
    secret = client_secret("this gateway's OAuth2 client secret")
    try:
        run_gateway(
            vtn,
            hosts,
            client_id=client_id,
            client_secret=secret,
            ca_file=None if ca is None else str(ca),
            interface=interface,
            interval_s=interval,
            power_interval_s=power_interval,
            discovery_window_s=discovery_window,
            allow_insecure_http=insecure_http,
            extension_makers=makers,
            push=pushed,
        )
    except KeyboardInterrupt:
        pass
    except NoWaterHeaterError as err:
        fail("--host", str(err))
    except OSError as err:
        fail("--interface", str(err))
    except ValueError as err:
        fail("--vtn", first_line(err))


@app.command("inspect")
def gateway_inspect(
    window: Annotated[
        str, typer.Option(help="DR window HH:MM-HH:MM (the next one to come, or on --date).")
    ],
    interface: Annotated[
        str, typer.Option(help="Local IPv4 address on the home LAN (receives on port 3610).")
    ] = "127.0.0.1",
    host: Annotated[
        list[str] | None,
        typer.Option(help="IPv4 address of a node to probe by unicast too (repeatable)."),
    ] = None,
    date_: Annotated[
        str | None, typer.Option("--date", help="Day of the window, YYYY-MM-DD.")
    ] = None,
    discovery_window: Annotated[
        float, typer.Option(help="Seconds to collect discovery answers, 0.1–10.")
    ] = 2.0,
    extension_maker: ExtensionMakerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Discover the water heaters and print, per unit, what the gateway would send upstream for
    the window: level (dr-ready / standard), up- and down-DR kWh, power now and whether it is
    measured or estimated; a unit it cannot use is listed with the reason."""
    parse_ipv4(interface, "--interface")
    hosts = [parse_ipv4(h, "--host") for h in host or []]
    start_t, end_t = parse_window(window)
    day = None if date_ is None else parse_date(date_)
    check_range("--discovery-window", discovery_window, 0.1, 10, "s")
    makers = _makers(extension_maker)
    start, end = window_on(start_t, end_t, datetime.now(zone(DEFAULT_TZ)), day)

    async def run() -> list[dict[str, object]]:
        ctl = EchonetController(interface=interface, retries=LAN_RETRIES)
        async with ctl:
            units = await inspect_home(
                ctl,
                start,
                end,
                hosts=hosts,
                discovery_window_s=discovery_window,
                extension_makers=makers,
            )
        return [u.as_json() for u in units]

    try:
        units = asyncio.run(run())
    except OSError as err:
        fail("--interface", str(err))
    if as_json:
        doc = {"window": {"start": start.isoformat(), "end": end.isoformat()}, "units": units}
        print(json.dumps(doc, ensure_ascii=False))
        return
    table = Table(title=f"Water heaters seen from {interface}, {start:%Y-%m-%d %H:%M}–{end:%H:%M}")
    for col in ("address", "device id", "level", "up kWh", "down kWh", "power kW", "source"):
        table.add_column(col)
    for u in units:
        cells = [u["address"], u["device_id"], u["level"]]
        cells += [u["up_kwh"], u["down_kwh"], u["power_kw"], u["power_source"]]
        table.add_row(*("–" if c is None else str(c) for c in cells))
        if "reason" in u:
            table.add_row("", f"[yellow]{u['reason']}[/yellow]", "", "", "", "", "")
    console.print(table)
