"""``drready cloud serve``: a maker cloud, a fleet of simulated water heaters behind one OpenADR
VEN (route ii; F1–F6, D6), on the process clock (issue 11 items 3–4)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import typer

from drready.cli.common import (
    CaOpt,
    ConfOpt,
    InsecureHttpOpt,
    IntervalOpt,
    MakerOpt,
    VtnOpt,
    check_range,
    client_secret,
    fail,
    first_line,
    output_file,
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
from drready.cloud.service import run_cloud
from drready.domain import DEFAULT_TZ
from drready.domain.clock import ENV_CLOCK, MAX_TIME_SCALE, ClockSpec, ScaledClock, clock_from_env
from drready.planning.tariff import TARIFFS

app = sub_app("Maker cloud: a fleet of simulated water heaters behind one OpenADR VEN (route ii).")

_MODES: tuple[Literal["units", "group"], ...] = ("units", "group")
_FORECASTS = ("national", "learning")


def _clock(time_scale: float | None) -> ScaledClock | None:
    """The clock ``--time-scale`` asks for: $DRREADY_CLOCK when set (it must agree), else a
    scaled clock starting now; None (the process clock from the environment) without it."""
    try:
        env_clock = clock_from_env()
    except ValueError as err:
        fail(ENV_CLOCK, first_line(err))
    if time_scale is None:
        return None
    check_range("--time-scale", time_scale, 1, MAX_TIME_SCALE)
    if isinstance(env_clock, ScaledClock):
        if env_clock.scale != time_scale:
            fail(
                "--time-scale",
                f"{ENV_CLOCK} already runs the shared clock at {env_clock.scale:g}×; "
                f"leave --time-scale out or give {env_clock.scale:g}",
            )
        return env_clock
    spec = ClockSpec.starting_now(datetime.now(ZoneInfo(DEFAULT_TZ)), time_scale)
    os.environ[ENV_CLOCK] = spec.to_env()  # children of this process share it
    return ScaledClock(spec)


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
    time_scale: Annotated[
        float | None,
        typer.Option(
            help=f"Run N× faster than the wall clock, 1–{MAX_TIME_SCALE:g}, on a shared clock "
            f"starting now (${ENV_CLOCK} when set: every process of a stack shares it). Polls, "
            "power reports and re-plans follow it."
        ),
    ] = None,
    tariff: Annotated[
        str,
        typer.Option(help=f"The households' tariff the units plan on: {', '.join(TARIFFS)}."),
    ] = "night",
    confidence: ConfOpt = 0.95,
    push: PushOpt = "poll",
    safety_poll: SafetyPollOpt = 300.0,
    callback_host: CallbackHostOpt = "127.0.0.1",
    callback_port: CallbackPortOpt = 0,
    callback_cert: CallbackCertOpt = None,
    callback_key: CallbackKeyOpt = None,
    callback_url: CallbackUrlOpt = None,
    mqtt_ca: MqttCaOpt = None,
    status_file: Annotated[
        Path | None,
        typer.Option(
            help="Keep a JSON status here (mode 0600; after every poll and at the stop): the "
            "fleet's hot-water shortages and the DR-caused ones, counted against a no-DR twin "
            "fleet this process simulates beside it (twice the planning work)."
        ),
    ] = None,
    forecast: Annotated[
        str,
        typer.Option(
            help="What the units plan against: 'national' (the national schedule) or "
            "'learning' (each unit's own use of the last 28 days, per day class, with "
            "split-conformal bounds of its own errors; the fleet starts with its households' "
            "past 28 days). Learning costs ≈ 0.3 s of CPU per 10 000 units at every roll and "
            "potential answer, so it is opt-in: see docs/dr-potential-method.md §11."
        ),
    ] = "national",
) -> None:
    """Run a maker cloud; its client secret comes from $DRREADY_CLIENT_SECRET.

    The fleet plans on a rolling 48 h horizon: at any time it answers potential requests and
    DR events for windows starting within the next 36 h. SIGTERM or SIGINT stops it after the
    poll under way (exit 0).
    """
    check_range("--units", units, 1, 1_000_000)
    modes = [m for m in _MODES if m == mode]
    if not modes:
        fail("--mode", f"must be 'units' or 'group', got {mode!r}")
    check_range("--interval", interval, 1, 3600, "s")
    require_http_url(vtn)
    plan_tariff = TARIFFS.get(tariff)
    if plan_tariff is None:
        fail("--tariff", f"must be one of {', '.join(TARIFFS)}, got {tariff!r}")
    output_file(status_file, "--status-file")
    if forecast not in _FORECASTS:
        fail("--forecast", f"must be 'national' or 'learning', got {forecast!r}")
    check_range("--confidence", confidence, 0.5, 0.999)
    clock = _clock(time_scale)
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
    secret = client_secret("this cloud's OAuth2 client secret")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log = logging.getLogger("drready")  # the cloud's own lines; libraries stay at WARNING
    log.addHandler(handler)
    log.setLevel(logging.INFO)
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
            clock=clock,
            tariff=plan_tariff,
            status_file=status_file,
            confidence=confidence,
            push=pushed,
            learning=forecast == "learning",
        )
    except KeyboardInterrupt:
        pass
    except ValueError as err:
        fail("--vtn", first_line(err))
