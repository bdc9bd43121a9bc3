"""The home gateway's view of a storage battery on the home LAN, in domain terms (U1, C1).

:class:`BatteryLink` is to an ECHONET Lite storage battery object (class 0x027D) what
:class:`~drready.gateway.home.WaterHeaterLink` is to a water heater: it speaks frames downstream
and answers in domain types upstream, so the command-value following controller
(:mod:`drready.servicer.core.following`) only sees kW, kWh and the battery's ratings (a
:class:`BatterySpec`, which has the shape of its
:class:`~drready.servicer.core.following.BatteryRatings`).

Mapping
-------
* :meth:`BatteryLink.set_power_kw` ``p`` [kW, + charge, − discharge] → one SetC (applied in
  this order):
  ``p > 0``: charging method 0xC1 = designatedPower, 0xEB = ``p`` W, 0xDA = charging;
  ``p < 0``: 0xC2 = designatedPower, 0xEC = ``|p|`` W, 0xDA = discharging;
  ``|p|`` below 0.5 W: 0xDA = standby. Powers are rounded to whole W (the EPCs' unit).
* :meth:`BatteryLink.power_sample` ← 0xD3 (signed AC W), 0xD8 / 0xD6 (cumulative charged /
  discharged, 0.001 kWh), 0xE2 (stored Wh).
* :meth:`BatteryLink.soc_kwh` ← 0xE2; where a unit only has 0xE4 (%), ``0xE4 × 0xD0``.
* :meth:`BatteryLink.spec` ← 0xD0 (capacity, DC), 0xC8 / 0xC9 (max AC charging / discharging
  power), 0xA0 / 0xA1 (AC effective capacity charging / discharging), 0xA5 and 0xE2 (AC
  dischargeable energy now and stored energy). The standard carries the round-trip efficiency
  ``0xA1 / 0xA0 = η_c · η_d`` but not its split into charge and discharge: the link assumes a
  symmetric split ``η_c = η_d = √(0xA1 / 0xA0)`` and then finds the operating window from
  ``E_min = E − 0xA5 / η_d`` and ``E_max − E_min = 0xA0 · η_c``. Standby loss is not carried
  and is reported as 0. Values are whole Wh, so the shares are good to about 1 Wh / capacity.

References
----------
ECHONET Consortium, "Machine Readable Appendix" Release R, class 0x027D (storage battery).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from drready.device.battery import BatterySample, BatterySpec
from drready.domain import DeviceId, PowerSource
from drready.domain.time import DEFAULT_TZ
from drready.echonet.controller import EchonetController
from drready.echonet.errors import EchonetRefusedError
from drready.echonet.frame import EOJ
from drready.echonet.mra import class_spec
from drready.echonet.values import decode_value

__all__ = ["BATTERY_CLASS", "BatteryLink", "discover_batteries"]

BATTERY_CLASS = 0x027D
_CHARGING, _DISCHARGING, _STANDBY = b"\x42", b"\x43", b"\x44"
_DESIGNATED_POWER = b"\x03"


@dataclass
class BatteryLink:
    """One storage battery object reached through ``controller``."""

    controller: EchonetController
    address: str
    eoj: EOJ
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TZ))
    clock: Callable[[], datetime] | None = None
    """The gateway's time (simulated in a simulation); wall time in ``tz`` when None."""

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(self.tz)

    async def _get(self, epcs: list[int]) -> dict[int, object]:
        """Decoded values (MRA codec); a missing EPC raises :class:`EchonetRefusedError`."""
        got = await self.controller.get(self.address, self.eoj, epcs)
        props = class_spec(BATTERY_CLASS).properties
        out: dict[int, object] = {}
        for epc in epcs:
            edt = got[epc]
            if edt is None:
                raise EchonetRefusedError(
                    f"{self.address} {self.eoj} gave no value for 0x{epc:02X}"
                )
            out[epc] = decode_value(props[epc], edt)
        return out

    async def _set(self, values: dict[int, bytes]) -> None:
        ok = await self.controller.set(self.address, self.eoj, values)
        refused = [epc for epc in values if not ok.get(epc, False)]
        if refused:
            epcs = ", ".join(f"0x{e:02X}" for e in refused)
            raise EchonetRefusedError(f"{self.address} {self.eoj} refused EPC {epcs}")

    async def device_id(self) -> DeviceId:
        """The battery's identity, from 0x83."""
        edt = (await self.controller.get(self.address, self.eoj, [0x83]))[0x83]
        if edt is None:
            raise EchonetRefusedError(f"{self.address} {self.eoj} has no identification number")
        return DeviceId.from_echonet_id(edt)

    async def set_power_kw(self, power_kw: float) -> None:
        """Command AC power ``power_kw`` [kW] (+ charge, − discharge, 0 standby).

        Raises
        ------
        ValueError
            If ``power_kw`` is not finite.
        EchonetRefusedError
            If the battery refused a value (e.g. beyond its rated power, 0xC8 / 0xC9).
        """
        p = float(power_kw)
        if not math.isfinite(p):
            raise ValueError(f"power_kw must be finite, got {power_kw!r}")
        watts = round(abs(p) * 1000.0)
        if watts == 0:
            await self._set({0xDA: _STANDBY})
        elif p > 0.0:
            edt = watts.to_bytes(4, "big")
            await self._set({0xC1: _DESIGNATED_POWER, 0xEB: edt, 0xDA: _CHARGING})
        else:
            edt = watts.to_bytes(4, "big")
            await self._set({0xC2: _DESIGNATED_POWER, 0xEC: edt, 0xDA: _DISCHARGING})

    async def power_sample(self) -> BatterySample:
        """Signed AC power, AC counters and stored energy (measured, 0xD3/0xD8/0xD6/0xE2)."""
        got = await self._get([0xD3, 0xD8, 0xD6, 0xE2])
        return BatterySample(
            device_id=await self.device_id(),
            timestamp=self._now(),
            power_w=float(_num(got[0xD3])),
            cumulative_charged_kwh=float(_num(got[0xD8])),
            cumulative_discharged_kwh=float(_num(got[0xD6])),
            soc_kwh=_num(got[0xE2]) / 1000.0,
            source=PowerSource.MEASURED,
        )

    async def soc_kwh(self) -> float:
        """Stored (DC) energy [kWh] from 0xE2, or 0xE4 % × 0xD0 where 0xE2 is missing."""
        raw = await self.controller.get(self.address, self.eoj, [0xE2])
        if raw[0xE2] is not None:
            return _num(decode_value(class_spec(BATTERY_CLASS).properties[0xE2], raw[0xE2])) / 1e3
        got = await self._get([0xE4, 0xD0])
        return _num(got[0xE4]) / 100.0 * _num(got[0xD0]) / 1000.0

    async def spec(self) -> BatterySpec:
        """The battery's ratings as far as the standard carries them (see the module docstring)."""
        got = await self._get([0xD0, 0xC8, 0xC9, 0xA0, 0xA1, 0xA5, 0xE2])
        capacity_kwh = _num(got[0xD0]) / 1000.0
        charge_in_kwh = _num(got[0xA0]) / 1000.0
        discharge_out_kwh = _num(got[0xA1]) / 1000.0
        if capacity_kwh <= 0 or charge_in_kwh <= 0 or discharge_out_kwh <= 0:
            raise EchonetRefusedError(
                f"{self.address} {self.eoj} reports no capacity (0xD0, 0xA0, 0xA1 must be > 0)"
            )
        eta = min(math.sqrt(discharge_out_kwh / charge_in_kwh), 1.0)
        usable_kwh = charge_in_kwh * eta
        e_min = _num(got[0xE2]) / 1000.0 - _num(got[0xA5]) / 1000.0 / eta
        lo = min(max(e_min / capacity_kwh, 0.0), 1.0)
        hi = min(lo + usable_kwh / capacity_kwh, 1.0)
        return BatterySpec(
            capacity_kwh=capacity_kwh,
            max_charge_kw=_dict_num(got[0xC8], "maxValue") / 1000.0,
            max_discharge_kw=_dict_num(got[0xC9], "maxValue") / 1000.0,
            charge_efficiency=eta,
            discharge_efficiency=eta,
            soc_min_share=lo,
            soc_max_share=hi,
            standby_loss_kw=0.0,
        )


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EchonetRefusedError(f"expected a number, got {value!r}")
    return float(value)


def _dict_num(value: object, key: str) -> float:
    if not isinstance(value, dict) or key not in value:
        raise EchonetRefusedError(f"expected an object with {key!r}, got {value!r}")
    return _num(value[key])


async def discover_batteries(
    controller: EchonetController,
    window_s: float = 0.5,
    host: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[BatteryLink]:
    """One :class:`BatteryLink` per storage battery object found (multicast, or ``host``);
    ``clock`` is handed to every link."""
    nodes = (
        await controller.discover(window_s=window_s)
        if host is None
        else await controller.discover(host=host, window_s=window_s)
    )
    return [
        BatteryLink(controller, n.address, eoj, clock=clock)
        for n in nodes
        for eoj in n.instances
        if eoj.class_id == BATTERY_CLASS
    ]
