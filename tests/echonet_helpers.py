"""Shared builders for the ECHONET Lite tests: a simulated heater and its node."""

from __future__ import annotations

from datetime import datetime

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DEFAULT_TZ, DeviceId
from drready.domain.time import zone
from drready.echonet.frame import CONTROLLER, EOJ, Frame, Property, encode_frame
from drready.echonet.node import EchonetNode
from drready.echonet.serve import PROFILES, water_heater_node
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
    energy_shifts: int = 2,
    maker_code: str = "000005",
) -> SimulatedWaterHeater:
    cfg = UnitConfig(
        device_id=DeviceId(maker_code=maker_code, serial=serial), persons=persons, tank_l=tank_l
    )
    # two energy shifts by default: the MRA makes 0xCD–0xCF required, a unit offering both is
    # the full case
    return SimulatedWaterHeater(
        cfg, SimClock(start, speed=0.0), seed=seed, energy_shifts=energy_shifts
    )


def make_node(
    address: str = "127.0.0.2",
    *,
    profile: str = "dr-ready",
    answer_delay_s: float = 0.0,
    **kw: object,
) -> tuple[EchonetNode, SimulatedWaterHeater]:
    """A node playing ``profile`` (``drready echonet serve --profile``) on ``address``."""
    kind = PROFILES[profile]
    heater = make_heater(energy_shifts=kind.energy_shifts, **kw)  # type: ignore[arg-type]
    node = water_heater_node(
        address,
        heater,
        extension=kind.extension,
        power_meter=kind.power_meter,
        answer_delay_s=answer_delay_s,
    )
    return node, heater


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
