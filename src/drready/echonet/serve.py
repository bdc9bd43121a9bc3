"""Assemble and run a DR-ready water heater as an ECHONET Lite device node (C1, F1–F6).

:func:`water_heater_node` puts a :class:`~drready.device.heater.SimulatedWaterHeater` behind a
node profile and a 0x026B object and wires the heater's change notifications to INF
announcements; :func:`serve_forever` is what ``drready echonet serve`` runs, and
:func:`serve_battery_forever` what ``drready echonet serve-battery`` runs for a storage battery
node (class 0x027D, :func:`drready.echonet.battery.battery_node`).

:data:`PROFILES` are the kinds of unit a node can play (``drready echonet serve --profile``):

* ``dr-ready`` — drready's proposal: the standard energy shift with two shift times, the
  maker-specific EPCs 0xF0–0xF4 and a power meter (0x84/0x85);
* ``standard`` — the installed base: the standard energy shift only (0xC7–0xCF, two shift
  times), no 0xF0–0xF4, no 0x84/0x85;
* ``standard-single`` — one maker's published adapter sheet: a single shift time (0xC9 = 1,
  0xCA settable 09–17 h), 0xCB as four 4-byte Wh values, no 0xF0–0xF4, no 0x84/0x85, and
  answers that may take up to 20 s (``answer_delay_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from drready.echonet.frame import NODE_PROFILE
from drready.echonet.node import EchonetNode
from drready.echonet.objects import node_profile, water_heater_object


@dataclass(frozen=True)
class UnitProfile:
    """What kind of unit a node plays: shift times (0xC9), maker EPCs, power meter."""

    name: str
    energy_shifts: int
    extension: bool
    power_meter: bool


PROFILES: Final = {
    p.name: p
    for p in (
        UnitProfile("dr-ready", energy_shifts=2, extension=True, power_meter=True),
        UnitProfile("standard", energy_shifts=2, extension=False, power_meter=False),
        UnitProfile("standard-single", energy_shifts=1, extension=False, power_meter=False),
    )
}
"""The unit profiles by name (``drready echonet serve --profile NAME``)."""


def water_heater_node(
    address: str,
    heater: Any,
    *,
    allow_any_address: bool = False,
    multicast: bool = True,
    rate_per_s: float = 20_000.0,
    extension: bool = True,
    power_meter: bool = True,
    answer_delay_s: float = 0.0,
) -> EchonetNode:
    """A node on ``address`` serving ``heater`` as instance 0x026B01 (``extension``: the
    maker-specific EPCs 0xF0–0xF4; ``power_meter``: 0x84/0x85; ``answer_delay_s``: answers
    after up to that many seconds, see :class:`~drready.echonet.node.EchonetNode`)."""
    maker = bytes.fromhex(heater.device_id.maker_code)
    heater_obj = water_heater_object(heater, maker, extension=extension, power_meter=power_meter)
    profile = node_profile(maker, heater.device_id.to_echonet_id(), [heater_obj.eoj])
    assert profile.eoj == NODE_PROFILE
    node = EchonetNode(
        address,
        [profile, heater_obj],
        allow_any_address=allow_any_address,
        multicast=multicast,
        rate_per_s=rate_per_s,
        answer_delay_s=answer_delay_s,
        delay_seed=int.from_bytes(heater.device_id.to_echonet_id()[-4:], "big"),
    )

    def changed(names: set[str]) -> None:
        # whatever changed, announce every EPC of 0x9D whose value did (EL-M3)
        node.announce_changes(heater_obj)

    heater.on_change = changed
    return node


async def serve_forever(
    node: EchonetNode,
    heater: Any,
    tick_s: float = 5.0,
    *,
    twin: Any = None,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Start ``node`` and keep the simulated heater advancing (and announcing) until cancelled;
    ``twin`` (the same household never asked anything: :mod:`drready.device.status`) advances
    with it, and ``on_tick`` is called after every step (the node's status file)."""
    await node.start()
    try:
        while True:
            heater.advance()
            if twin is not None:
                twin.advance()
            if on_tick is not None:
                on_tick()
            await asyncio.sleep(tick_s)
    finally:
        await node.close()


async def serve_battery_forever(node: EchonetNode, battery: Any, tick_s: float = 5.0) -> None:
    """Start ``node`` and keep the simulated battery integrating (and announcing a change of
    its working state, 0xCF) until cancelled: what ``drready echonet serve-battery`` runs."""
    await node.start()
    try:
        while True:
            battery.advance()
            await asyncio.sleep(tick_s)
    finally:
        await node.close()
