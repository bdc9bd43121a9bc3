"""``drready gateway serve``: a home gateway, the water heaters of an ECHONET Lite home behind one
OpenADR VEN (route i; C1, F1–F6)."""

from __future__ import annotations

from typing import Annotated

import typer

from drready.cli.common import (
    CaOpt,
    InsecureHttpOpt,
    IntervalOpt,
    VtnOpt,
    check_range,
    client_secret,
    fail,
    first_line,
    parse_ipv4,
    require_http_url,
    sub_app,
)
from drready.gateway.ven import NoWaterHeaterError, run_gateway

app = sub_app(
    "Home gateway: the water heaters of an ECHONET Lite home behind one OpenADR VEN (route i)."
)


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
) -> None:
    """Run a home gateway's VEN; its client secret comes from $DRREADY_CLIENT_SECRET."""
    parse_ipv4(interface, "--interface")
    hosts = [parse_ipv4(h, "--host") for h in host or []]
    check_range("--interval", interval, 1, 3600, "s")
    check_range("--power-interval", power_interval, 1, 3600, "s")
    check_range("--discovery-window", discovery_window, 0.1, 10, "s")
    require_http_url(vtn)
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
        )
    except KeyboardInterrupt:
        pass
    except NoWaterHeaterError as err:
        fail("--host", str(err))
    except OSError as err:
        fail("--interface", str(err))
    except ValueError as err:
        fail("--vtn", first_line(err))
