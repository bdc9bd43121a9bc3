"""``drready echonet serve|serve-battery|scan|get|set``: ECHONET Lite on a LAN (route i; C1,
F1–F6, U1): run a simulated water heater (DR-ready or standard-only) or a storage battery as a
node, discover nodes, read and write one property."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from drready.cli.common import (
    JsonOpt,
    MakerOpt,
    PersonsOpt,
    SerialOpt,
    TankOpt,
    check_range,
    console,
    fail,
    output_file,
    parse_ipv4,
    sub_app,
    validated,
)
from drready.device.battery import MAX_BATTERY_KW, MAX_BATTERY_KWH, BatterySpec, SimulatedBattery
from drready.device.clock import Clock, SimClock, clock_from_env
from drready.device.heater import SimulatedWaterHeater
from drready.device.status import heater_status, write_status
from drready.domain import DeviceId
from drready.domain.clock import ENV_CLOCK
from drready.domain.time import DEFAULT_TZ, zone
from drready.echonet.battery import battery_node
from drready.echonet.controller import EchonetController, EchonetTimeoutError
from drready.echonet.frame import EOJ
from drready.echonet.mra import class_spec
from drready.echonet.node import MAX_ANSWER_DELAY_S
from drready.echonet.serve import (
    PROFILES,
    serve_battery_forever,
    serve_forever,
    water_heater_node,
)
from drready.echonet.values import decode_value
from drready.planning.tariff import TARIFFS
from drready.planning.unit import UnitConfig

app = sub_app("ECHONET Lite (route i): run a device node, scan a LAN, get and set properties.")

InterfaceOpt = Annotated[str, typer.Option(help="Local IPv4 address.")]
EojOpt = Annotated[str, typer.Option(help="Object, 6 hex digits.")]


def parse_epc(value: str) -> int:
    """A property code ``0x80``–``0xFF`` (``"0xE1"`` or ``"E1"``)."""
    try:
        epc = int(value, 16)
    except ValueError:
        fail("EPC", f"must be a hex byte 0x80–0xFF (e.g. 0xE1), got {value!r}")
    if not 0x80 <= epc <= 0xFF:
        fail("EPC", f"must be within 0x80–0xFF, got {value!r}")
    return epc


def parse_eoj(value: str) -> EOJ:
    """An object as 6 hex digits (``"026B01"`` or ``"0x026B01"``)."""
    try:
        return EOJ.parse(value if value.startswith("0x") else "0x" + value)
    except ValueError:
        fail("--eoj", f"must be 6 hex digits like 026B01, got {value!r}")


def jsonable(value: object) -> object:
    """A decoded property value as JSON: bytes as hex, containers element by element."""
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _node_error(message: str) -> typer.Exit:
    """Print a node's refusal or silence (not an argument error) and give exit status 1."""
    print(f"drready: error: {message}", file=sys.stderr)
    return typer.Exit(1)


@app.command("serve")
def echonet_serve(
    address: Annotated[
        str,
        typer.Option(
            help="IPv4 address to bind (port 3610); loopback "
            "addresses 127.0.0.2… let several nodes share a host."
        ),
    ],
    persons: PersonsOpt = 4,
    tank_l: TankOpt = 460.0,
    maker_code: MakerOpt = "000000",
    serial: SerialOpt = "SIM0000001",
    speed: Annotated[float, typer.Option(help="Simulated time per wall time, 0.1–3600.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the household's hot-water use.")] = 0,
    allow_any_address: Annotated[
        bool, typer.Option(help="Allow binding 0.0.0.0 (every interface).")
    ] = False,
    profile: Annotated[
        str,
        typer.Option(
            help="Kind of unit: dr-ready (standard energy shift + maker EPCs 0xF0–0xF4 + "
            "0x84/0x85), standard (the installed base: energy shift 0xC7–0xCF only, two shift "
            "times, no 0x84/0x85) or standard-single (one shift time 09–17 h, slow answers)."
        ),
    ] = "dr-ready",
    power_meter: Annotated[
        bool | None,
        typer.Option(
            "--power-meter/--no-power-meter",
            help="Offer 0x84/0x85 (default: yes for dr-ready, no for the standard profiles).",
        ),
    ] = None,
    answer_delay_s: Annotated[
        float,
        typer.Option(
            help=f"Answer each request after a random delay of up to this many seconds, "
            f"0–{MAX_ANSWER_DELAY_S:g} (installed units' adapters may take 20 s)."
        ),
    ] = 0.0,
    tariff: Annotated[
        str,
        typer.Option(help=f"The household's tariff the unit plans on: {', '.join(TARIFFS)}."),
    ] = "night",
    status_file: Annotated[
        Path | None,
        typer.Option(
            help="Keep a JSON status here (mode 0600; every few seconds and at the stop): the "
            "unit's hot-water shortages and the DR-caused ones, counted against a no-DR twin "
            "of the same household that this process simulates beside it."
        ),
    ] = None,
) -> None:
    """Run a simulated water heater (DR-ready or standard-only) as an ECHONET Lite node until
    interrupted."""
    if address != "0.0.0.0" or not allow_any_address:
        parse_ipv4(address, "--address")
    kind = PROFILES.get(profile)
    if kind is None:
        fail("--profile", f"must be one of {', '.join(PROFILES)}, got {profile!r}")
    check_range("--answer-delay-s", answer_delay_s, 0, MAX_ANSWER_DELAY_S, "s")
    device_id = {"maker_code": maker_code, "serial": serial}
    config = validated(UnitConfig, device_id=device_id, persons=persons, tank_l=tank_l)
    clock = _node_clock(speed)
    plan_tariff = TARIFFS.get(tariff)
    if plan_tariff is None:
        fail("--tariff", f"must be one of {', '.join(TARIFFS)}, got {tariff!r}")
    if status_file is not None:
        output_file(status_file, "--status-file")

    def unit() -> SimulatedWaterHeater:
        return SimulatedWaterHeater(
            config, clock, seed=seed, energy_shifts=kind.energy_shifts, tariff=plan_tariff
        )

    heater = unit()
    twin = unit() if status_file is not None else None  # the same household, never asked
    try:
        node = water_heater_node(
            address,
            heater,
            allow_any_address=allow_any_address,
            extension=kind.extension,
            power_meter=kind.power_meter if power_meter is None else power_meter,
            answer_delay_s=answer_delay_s,
        )
    except ValueError as err:
        fail("--address", str(err))
    console.print(
        f"ECHONET Lite node on {address}:3610: {config.device_id} (0x026B01, {kind.name}) — "
        "Ctrl-C to stop"
    )

    def keep_status(final: bool = False) -> None:
        if status_file is not None:
            write_status(status_file, heater_status(heater, twin, final=final))

    try:
        asyncio.run(
            _serve_until_signal(serve_forever(node, heater, twin=twin, on_tick=keep_status))
        )
    except OSError as err:
        fail("--address", f"cannot bind {address}:3610: {err}")
    keep_status(final=True)


def _node_clock(speed: float) -> Clock:
    """The process clock when a stack shares one (DRREADY_CLOCK), else wall time × ``speed``."""
    check_range("--speed", speed, 0.1, 3600)
    if os.environ.get(ENV_CLOCK):
        try:
            return clock_from_env()
        except ValueError as err:
            fail(ENV_CLOCK, str(err).splitlines()[0])
    return SimClock(datetime.now(zone(DEFAULT_TZ)), speed=speed)


@app.command("serve-battery")
def echonet_serve_battery(
    address: Annotated[
        str,
        typer.Option(help="IPv4 address to bind (port 3610); e.g. 127.0.0.20 beside the homes."),
    ],
    capacity_kwh: Annotated[
        float, typer.Option(help=f"Rated capacity (0xD0), 0–{MAX_BATTERY_KWH:g} kWh.")
    ] = 500.0,
    power_kw: Annotated[
        float,
        typer.Option(help=f"Rated charging and discharging power, 0–{MAX_BATTERY_KW:g} kW."),
    ] = 250.0,
    maker_code: MakerOpt = "000000",
    serial: SerialOpt = "BT0000001",
    speed: Annotated[float, typer.Option(help="Simulated time per wall time, 0.1–3600.")] = 1.0,
    allow_any_address: Annotated[
        bool, typer.Option(help="Allow binding 0.0.0.0 (every interface).")
    ] = False,
) -> None:
    """Run a simulated stationary storage battery as an ECHONET Lite node (class 0x027D01:
    capacity, state of charge, measured AC power 0xD3, operation mode 0xDA and charging /
    discharging power 0xEB/0xEC) until interrupted (SIGTERM/SIGINT: exit 0)."""
    if address != "0.0.0.0" or not allow_any_address:
        parse_ipv4(address, "--address")
    check_range("--capacity-kwh", capacity_kwh, 0.001, MAX_BATTERY_KWH, "kWh")
    check_range("--power-kw", power_kw, 0.001, MAX_BATTERY_KW, "kW")
    spec = BatterySpec(capacity_kwh=capacity_kwh, max_charge_kw=power_kw, max_discharge_kw=power_kw)
    device_id = validated(DeviceId, maker_code=maker_code, serial=serial)
    battery = SimulatedBattery(spec, _node_clock(speed), device_id=device_id)
    try:
        node = battery_node(address, battery, allow_any_address=allow_any_address)
    except ValueError as err:
        fail("--address", str(err))
    console.print(
        f"ECHONET Lite storage battery on {address}:3610: {device_id} (0x027D01, "
        f"{capacity_kwh:g} kWh, {power_kw:g} kW) — Ctrl-C to stop"
    )
    try:
        asyncio.run(_serve_until_signal(serve_battery_forever(node, battery)))
    except OSError as err:
        fail("--address", f"cannot bind {address}:3610: {err}")


async def _serve_until_signal(serving: Coroutine[Any, Any, None]) -> None:
    """``serving`` (:func:`serve_forever`, :func:`serve_battery_forever`) until SIGINT/SIGTERM,
    then a clean stop (the node's socket closed, exit 0): a supervisor's SIGTERM is the
    ordinary way to stop a node."""
    task = asyncio.create_task(serving)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command("scan")
def echonet_scan(
    interface: Annotated[str, typer.Option(help="Local IPv4 address to send from.")] = "127.0.0.1",
    window: Annotated[float, typer.Option(help="Seconds to collect answers, 0.1–10.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Discover nodes by multicast and list their identification numbers and properties."""
    parse_ipv4(interface, "--interface")
    check_range("--window", window, 0.1, 10, "s")

    async def run() -> list[dict[str, object]]:
        async with EchonetController(interface=interface) as ctl:
            nodes = await ctl.discover(window_s=window)
            out = []
            for n in nodes:
                entry = n.as_json()
                objs = {}
                for eoj in n.instances:
                    values = await ctl.read_all(n.address, eoj)
                    objs[str(eoj)] = {f"0x{k:02X}": jsonable(v) for k, v in values.items()}
                entry["objects"] = objs
                out.append(entry)
            return out

    try:
        found = asyncio.run(run())
    except OSError as err:
        fail("--interface", str(err))
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
        return
    table = Table(title=f"ECHONET Lite nodes seen from {interface}")
    for col in ("address", "identification (0x83)", "maker", "instances"):
        table.add_column(col)
    for n in found:
        table.add_row(
            str(n["address"]),
            str(n["identification"]),
            str(n["maker_code"]),
            ", ".join(str(i) for i in _as_list(n["instances"])),
        )
    console.print(table)


@app.command("get")
def echonet_get(
    address: Annotated[str, typer.Argument(help="IPv4 address of the node.")],
    epc: Annotated[str, typer.Argument(help="Property code, e.g. 0xE1.")],
    eoj: EojOpt = "026B01",
    interface: InterfaceOpt = "127.0.0.1",
) -> None:
    """Read one property and print its EDT (hex) and decoded value."""
    parse_ipv4(address, "ADDRESS")
    code = parse_epc(epc)
    target = parse_eoj(eoj)

    async def run() -> bytes | None:
        async with EchonetController(interface=interface) as ctl:
            return (await ctl.get(address, target, [code]))[code]

    try:
        edt = asyncio.run(run())
    except EchonetTimeoutError as err:
        raise _node_error(str(err)) from err
    if edt is None:
        raise _node_error(f"the node refused EPC 0x{code:02X} (Get_SNA)")
    spec = class_spec(target.class_id).properties.get(code)
    decoded: object = edt.hex()
    if spec is not None:
        with contextlib.suppress(ValueError):
            decoded = jsonable(decode_value(spec, edt))
    print(
        json.dumps({"epc": f"0x{code:02X}", "edt": edt.hex(), "value": decoded}, ensure_ascii=False)
    )


@app.command("set")
def echonet_set(
    address: Annotated[str, typer.Argument(help="IPv4 address of the node.")],
    epc: Annotated[str, typer.Argument(help="Property code, e.g. 0xCA.")],
    value: Annotated[str, typer.Argument(help="EDT as hex bytes, e.g. 0D or 0x0D.")],
    eoj: EojOpt = "026B01",
    interface: InterfaceOpt = "127.0.0.1",
) -> None:
    """Write one property (SetC); exit 1 when the node refuses it."""
    parse_ipv4(address, "ADDRESS")
    code = parse_epc(epc)
    target = parse_eoj(eoj)
    try:
        edt = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        fail("VALUE", f"must be hex bytes, got {value!r}")
    if not 1 <= len(edt) <= 255:
        fail("VALUE", "must be 1–255 bytes")

    async def run() -> bool:
        async with EchonetController(interface=interface) as ctl:
            res = await ctl.set(address, target, {code: edt})
            return res.get(code, False)

    try:
        ok = asyncio.run(run())
    except EchonetTimeoutError as err:
        raise _node_error(str(err)) from err
    if not ok:
        raise _node_error(f"the node refused EPC 0x{code:02X} = {edt.hex()} (SetC_SNA)")
    print(json.dumps({"epc": f"0x{code:02X}", "edt": edt.hex(), "accepted": True}))
