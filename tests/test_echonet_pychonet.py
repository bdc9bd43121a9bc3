"""Interoperability with an independent ECHONET Lite controller: pychonet (C1, F1–F6).

pychonet always sends to port 3610 and listens on 3610 itself, so our node gets its own
loopback address (127.0.0.2) and pychonet's UDP server binds 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.echonet_helpers import TZ, make_node

pychonet = pytest.importorskip("pychonet", reason="pychonet is in the test extras")

from pychonet.echonetapiclient import ECHONETAPIClient  # noqa: E402
from pychonet.ElectricWaterHeater import ElectricWaterHeater  # noqa: E402
from pychonet.lib.udpserver import UDPServer  # noqa: E402

HOST = "127.0.0.2"


def test_pychonet_discovers_reads_and_sets_our_node():
    async def run() -> None:
        node, heater = make_node(HOST)
        await node.start()
        udp = UDPServer(local_ip="127.0.0.1")
        udp.run("127.0.0.1", 3610, loop=asyncio.get_running_loop())
        api = ECHONETAPIClient(udp)
        api._logger = lambda *a, **k: None
        try:
            await api.discover(HOST)
            for _ in range(100):
                if api._state.get(HOST, {}).get("discovered"):
                    break
                await asyncio.sleep(0.05)
            state = api._state[HOST]
            assert state.get("discovered"), state
            assert 0x6B in state["instances"][0x02]
            # the identification number pychonet decoded is our F6 id
            assert str(state["uid"]) == heater.device_id.to_echonet_id()[1:].hex()  # 0xFE dropped
            assert await api.getAllPropertyMaps(HOST, 0x02, 0x6B, 0x01)
            wh = ElectricWaterHeater(HOST, api)
            assert {0xC7, 0xCA, 0xB0} <= set(wh.getSetProperties())
            assert {0xE1, 0xE2, 0xCB, 0x84, 0x85} <= set(wh.getGetProperties())

            values = await wh.update([0xE1, 0xE2, 0xB2, 0xCB, 0x84, 0x85, 0xDC])
            assert values[0xE2] == 460
            assert values[0xE1] == heater.hot_water_in_tank_l
            assert values[0xDC] == heater.rated_power_w[1]
            assert values[0x84] == heater.instantaneous_power_w
            expected_before = values[0xCB]
            assert expected_before["13:00"] == heater.expected_energy_at_shift_wh(1)[13] > 0

            # a DR request through the standard EPCs: participate, shift to 13:00
            plan_before = heater.heating_plan()
            f4_before = await wh.getMessage(0xF4)  # raw EDT: pychonet has no table for it
            assert await wh.setMessage(0xC7, 0x01, 1)
            assert await wh.setMessage(0xCA, 0x0D, 1)
            assert heater.shift_time(1) == 13
            day = heater.target_day()
            w0 = datetime(day.year, day.month, day.day, 13, tzinfo=TZ)
            w1 = datetime(day.year, day.month, day.day, 17, tzinfo=TZ)
            plan_after = heater.heating_plan()
            gained = plan_after.window_energy_kwh(w0, w1) - plan_before.window_energy_kwh(w0, w1)
            assert gained == pytest.approx(expected_before["13:00"] / 1000, rel=0.02, abs=0.01)
            # read back through pychonet: the shift time, and the plan the unit now reports
            # (F4, maker-specific 0xF4) has the expected energy moved into 13:00–17:00
            after = await wh.update([0xCB, 0xCA])
            assert "13" in str(after[0xCA])
            # 0xCB keeps the expected energy of each candidate time (fixed until the shift time)
            assert after[0xCB]["13:00"] == expected_before["13:00"]
            f4_after = await wh.getMessage(0xF4)
            moved = _plan_window_wh(f4_after, w0, w1) - _plan_window_wh(f4_before, w0, w1)
            assert moved == pytest.approx(expected_before["13:00"], rel=0.02, abs=10)
            # out of range values are refused (SetC_SNA), the node keeps its state
            assert not await wh.setMessage(0xCA, 0x20, 1)
            assert heater.shift_time(1) == 13
        finally:
            udp.close()
            await node.close()

    asyncio.run(run())


def _plan_window_wh(raw: object, start: datetime, end: datetime) -> int:
    """Energy in ``[start, end)`` of a 0xF4 value as pychonet returns an EPC it does not know."""
    from datetime import timedelta

    from drready.echonet import extension as ext

    edt = raw if isinstance(raw, bytes) else bytes.fromhex(str(raw))
    plan_start, _, wh, _ = ext.decode_plan(edt, TZ)
    return sum(w for i, w in enumerate(wh) if start <= plan_start + timedelta(minutes=30 * i) < end)
