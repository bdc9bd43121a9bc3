"""Assemble and run a DR-ready water heater as an ECHONET Lite device node (C1, F1–F6).

:func:`water_heater_node` puts a :class:`~drready.device.heater.SimulatedWaterHeater` behind a
node profile and a 0x026B object and wires the heater's change notifications to INF
announcements; :func:`serve_forever` is what ``drready echonet serve`` runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from drready.echonet.frame import NODE_PROFILE
from drready.echonet.node import EchonetNode
from drready.echonet.objects import node_profile, water_heater_object

#: heater change names → the EPCs they announce
CHANGE_EPCS: dict[str, tuple[int, ...]] = {
    "heating": (0xB2,),
    "supplying_hot_water": (0xC3,),
    "energy_shift_participation": (0xC7,),
    "shift_time_1": (0xCA,),
    "shift_time_2": (0xCD,),
}


def water_heater_node(
    address: str,
    heater: Any,
    *,
    allow_any_address: bool = False,
    multicast: bool = True,
    rate_per_s: float = 20_000.0,
) -> EchonetNode:
    """A node on ``address`` serving ``heater`` as instance 0x026B01."""
    maker = bytes.fromhex(heater.device_id.maker_code)
    heater_obj = water_heater_object(heater, maker)
    profile = node_profile(maker, heater.device_id.to_echonet_id(), [heater_obj.eoj])
    assert profile.eoj == NODE_PROFILE
    node = EchonetNode(
        address,
        [profile, heater_obj],
        allow_any_address=allow_any_address,
        multicast=multicast,
        rate_per_s=rate_per_s,
    )

    def changed(names: set[str]) -> None:
        epcs = [e for n in names for e in CHANGE_EPCS.get(n, ())]
        if epcs:
            node.announce(heater_obj, epcs)

    heater.on_change = changed
    return node


async def serve_forever(node: EchonetNode, heater: Any, tick_s: float = 5.0) -> None:
    """Start ``node`` and keep the simulated heater advancing (and announcing) until cancelled."""
    await node.start()
    try:
        while True:
            heater.advance()
            await asyncio.sleep(tick_s)
    finally:
        await node.close()
