"""``drready cloud serve``: a maker cloud, a fleet of simulated water heaters behind one OpenADR
VEN (route ii; F1–F6, D6)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from drready.cli.common import (
    CaOpt,
    InsecureHttpOpt,
    IntervalOpt,
    MakerOpt,
    VtnOpt,
    check_range,
    client_secret,
    fail,
    first_line,
    require_http_url,
    sub_app,
)
from drready.cloud.service import run_cloud

app = sub_app("Maker cloud: a fleet of simulated water heaters behind one OpenADR VEN (route ii).")

_MODES: tuple[Literal["units", "group"], ...] = ("units", "group")


@app.command("serve")
def cloud_serve(
    vtn: VtnOpt,
    units: Annotated[int, typer.Option(help="Number of simulated units, 1–1000000.")] = 1000,
    client_id: Annotated[str, typer.Option(help="OAuth2 client id of this cloud's VEN.")] = (
        "maker-cloud"
    ),
    ca: CaOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            help="'units' (one resource per unit) or 'group' (the fleet as one resource, D6)."
        ),
    ] = "units",
    maker_code: MakerOpt = "000005",
    seed: Annotated[int, typer.Option(help="Seed of the fleet's households.")] = 0,
    interval: IntervalOpt = 10.0,
    insecure_http: InsecureHttpOpt = False,
) -> None:
    """Run a maker cloud; its client secret comes from $DRREADY_CLIENT_SECRET."""
    check_range("--units", units, 1, 1_000_000)
    modes = [m for m in _MODES if m == mode]
    if not modes:
        fail("--mode", f"must be 'units' or 'group', got {mode!r}")
    check_range("--interval", interval, 1, 3600, "s")
    require_http_url(vtn)
    secret = client_secret("this cloud's OAuth2 client secret")
    try:
        run_cloud(
            units,
            vtn,
            client_id=client_id,
            client_secret=secret,
            ca_file=None if ca is None else str(ca),
            maker_code=maker_code,
            mode=modes[0],
            seed=seed,
            interval_s=interval,
            allow_insecure_http=insecure_http,
        )
    except KeyboardInterrupt:
        pass
    except ValueError as err:
        fail("--vtn", first_line(err))
