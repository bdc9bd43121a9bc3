"""Shared builders for the ECHONET Lite tests: a simulated heater and its node."""

from __future__ import annotations

from datetime import datetime

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DEFAULT_TZ, DeviceId
from drready.domain.time import zone
from drready.echonet.frame import CONTROLLER, EOJ, Frame, Property, encode_frame
from drready.echonet.node import EchonetNode
from drready.echonet.serve import water_heater_node
from drready.planning.unit import UnitConfig

TZ = zone(DEFAULT_TZ)
HEATER = EOJ(0x02, 0x6B, 0x01)
START = datetime(2026, 5, 11, 20, 0, tzinfo=TZ)


def make_heater(
    serial: str = "HW0000001",
    persons: int = 4,
    tank_l: float = 460.0,
    start: datetime = START,
    seed: int = 3,
) -> SimulatedWaterHeater:
    cfg = UnitConfig(
        device_id=DeviceId(maker_code="000005", serial=serial), persons=persons, tank_l=tank_l
    )
    # two energy shifts: the MRA makes 0xCD–0xCF required, a unit offering both is the full case
    return SimulatedWaterHeater(cfg, SimClock(start, speed=0.0), seed=seed, energy_shifts=2)


def make_node(address: str = "127.0.0.2", **kw: object) -> tuple[EchonetNode, SimulatedWaterHeater]:
    heater = make_heater(**kw)  # type: ignore[arg-type]
    return water_heater_node(address, heater), heater


def request(
    esv: int,
    props: list[tuple[int, bytes]],
    deoj: EOJ = HEATER,
    tid: int = 7,
    get_props: list[tuple[int, bytes]] | None = None,
) -> bytes:
    return encode_frame(
        Frame(
            tid=tid,
            seoj=CONTROLLER,
            deoj=deoj,
            esv=esv,
            properties=tuple(Property(e, d) for e, d in props),
            get_properties=tuple(Property(e, d) for e, d in (get_props or [])),
        )
    )
