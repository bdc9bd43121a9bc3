"""The home gateway's view of each water heater on the home LAN, in domain terms (F1–F6, C1).

:class:`HomeGateway` discovers ECHONET Lite nodes with an electric water heater object (class
0x026B) and returns one :class:`WaterHeaterLink` per object. A link performs the device functions
over ECHONET Lite and answers with the unified data model, so that whatever sits upstream (the
OpenADR VEN, :mod:`drready.gateway.ven`) never sees frames:

* F6 :meth:`WaterHeaterLink.device_id` ← 0x83 identification number, read when the unit is
  identified and kept: the other calls name the unit without reading 0x83 again;
* F5 :meth:`WaterHeaterLink.power_sample` ← 0x84/0x85 (measured); where a unit lacks them, an
  estimate from 0xB2 (heating or not) × rated power 0xDC, flagged ``ESTIMATED``;
* F1 :meth:`WaterHeaterLink.flexibility_envelope` ← maker-specific 0xF2 (set the window) + 0xF3;
* F2/F3 :meth:`WaterHeaterLink.request` ← 0xF0 (set the request, with the servicer's request id)
  + 0xF1 (the answer, naming that id);
* F4 :meth:`WaterHeaterLink.heating_plan` ← 0xF4, ``honours`` naming the requests this link sent
  that the unit accepted and that are not over (0xF4 has no room for ids: an EDT is at most 255
  bytes and 60 slots take 248);
* the standard energy shift (0xC7 participation + 0xCA shift time, 0xCB expected energy) for
  units that only speak the standard: :meth:`WaterHeaterLink.standard_energy_shift`.

Amounts are converted once at this boundary: kWh → whole Wh going down, Wh → kWh coming back
(:mod:`drready.echonet.extension`). The mapping is specified in ``docs/profile-echonet-lite.md``.
ECHONET Lite has no transport security: the gateway keeps it on the home LAN and relays only
these domain objects (S1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from drready.domain import (
    DEFAULT_TZ,
    SLOT_HOURS,
    DeviceId,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    PowerSample,
    PowerSource,
    SlotGrid,
)
from drready.domain.time import zone
from drready.domain.tolerances import ZERO_KWH
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController, NodeInfo
from drready.echonet.errors import EchonetRefusedError, ForeignAnswerError
from drready.echonet.frame import EOJ

__all__ = ["ANSWER_ATTEMPTS", "WATER_HEATER_CLASS", "HomeGateway", "WaterHeaterLink"]

WATER_HEATER_CLASS = 0x026B
ANSWER_ATTEMPTS = 3
"""Times :meth:`WaterHeaterLink.request` sets 0xF0 and reads 0xF1 while 0xF1 names another
request (another controller's Set in between); the unit answers a request it already holds from
memory, so setting it again plans nothing twice."""


@dataclass
class WaterHeaterLink:
    """One electric water heater object reached through ``controller``."""

    controller: EchonetController
    address: str
    eoj: EOJ
    tz: ZoneInfo = field(default_factory=lambda: zone(DEFAULT_TZ))
    clock: Callable[[], datetime] | None = None
    """The gateway's time (simulated in a simulation); wall time in ``tz`` when None."""
    _device: DeviceId | None = field(default=None, init=False, repr=False, compare=False)
    _honoured: dict[str, datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Request id → window end of the requests the unit accepted through this link."""

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(self.tz)

    async def _get(self, epc: int) -> bytes | None:
        return (await self.controller.get(self.address, self.eoj, [epc]))[epc]

    async def _set(self, epc: int, edt: bytes) -> None:
        ok = await self.controller.set(self.address, self.eoj, {epc: edt})
        if not ok.get(epc, False):
            raise EchonetRefusedError(f"{self.address} {self.eoj} refused EPC 0x{epc:02X}")

    async def device_id(self) -> DeviceId:
        """F6: the unit's identity, read from 0x83 (and kept for the other calls)."""
        edt = await self._get(0x83)
        if edt is None:
            raise EchonetRefusedError(f"{self.address} {self.eoj} has no identification number")
        self._device = DeviceId.from_echonet_id(edt)
        return self._device

    async def _identity(self) -> DeviceId:
        """The identity read at identification; read now if the unit was not identified yet."""
        return self._device if self._device is not None else await self.device_id()

    async def rated_power_kw(self) -> float | None:
        """F6 rating: the heat pump's rated power consumption, the largest of its winter,
        in-between and summer values (0xDB–0xDD) [kW]; None if the unit gives none."""
        got = await self.controller.get(self.address, self.eoj, [0xDB, 0xDC, 0xDD])
        watts = [int.from_bytes(v, "big") for v in got.values() if v]
        return max(watts) / 1000.0 if watts and max(watts) > 0 else None

    async def power_sample(self) -> PowerSample:
        """F5: instantaneous power and cumulative energy (measured), or an estimate."""
        got = await self.controller.get(self.address, self.eoj, [0x84, 0x85, 0xB2, 0xDC])
        now = self._now()
        device = await self._identity()
        if got[0x84] is not None and got[0x85] is not None:
            return PowerSample(
                device_id=device,
                timestamp=now,
                power_w=int.from_bytes(got[0x84], "big"),
                cumulative_energy_kwh=int.from_bytes(got[0x85], "big") / 1000.0,
                source=PowerSource.MEASURED,
            )
        heating = got[0xB2] == b"\x41"
        rated = int.from_bytes(got[0xDC] or b"\x00\x00", "big")
        return PowerSample(
            device_id=device,
            timestamp=now,
            power_w=rated if heating else 0,
            cumulative_energy_kwh=0.0,
            source=PowerSource.ESTIMATED,
        )

    async def flexibility_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1 for a window of at most 12 h (what one 0xF3 EDT carries)."""
        await self._set(ext.EPC_POTENTIAL_WINDOW, ext.encode_window(start, end, self.tz))
        edt = await self._get(ext.EPC_POTENTIAL)
        if edt is None:
            raise EchonetRefusedError(f"{self.address} {self.eoj} gave no potential")
        p = ext.decode_potential(edt)
        starts = [start + timedelta(minutes=30 * i) for i in range(len(p.baseline_w))]
        slots = tuple(
            EnvelopeSlot(
                start=starts[i],
                baseline_kw=p.baseline_w[i] / 1000.0,
                min_kw=min(p.min_w[i], p.baseline_w[i]) / 1000.0,
                max_kw=max(p.max_w[i], p.baseline_w[i]) / 1000.0,
                cum_min_kwh=ext.kwh_from_wh(p.cum_min_wh[i]),
                cum_max_kwh=ext.kwh_from_wh(max(p.cum_max_wh[i], p.cum_min_wh[i])),
            )
            for i in range(len(starts))
        )
        return FlexibilityEnvelope(
            device_id=await self._identity(),
            computed_at=self._now(),
            window_start=start,
            window_end=end,
            confidence=p.confidence,
            up_kwh=ext.kwh_from_wh(p.up_wh),
            down_kwh=ext.kwh_from_wh(p.down_wh),
            slots=slots,
        )

    async def request(self, request: DrRequest) -> DrResponse:
        """F2 → F3: send the request under its own id; the unit re-plans and answers (0xF1).

        Raises
        ------
        ForeignAnswerError
            0xF1 kept naming another request (see :data:`ANSWER_ATTEMPTS`).
        """
        device = await self._identity()
        edt = ext.DrRequestEdt.from_request(request)
        for _ in range(ANSWER_ATTEMPTS):
            try:
                await self._set(ext.EPC_DR_REQUEST, edt.encode(self.tz))
            except EchonetRefusedError as err:
                return DrResponse.from_amounts(request, device, 0.0, f"refused by the unit: {err}")
            got = await self._get(ext.EPC_DR_RESPONSE)
            answer = ext.decode_dr_response(got) if got is not None else ext.NO_RESPONSE
            if answer.request_id in (None, request.request_id):  # None: a unit without echo
                break
        else:
            raise ForeignAnswerError(
                f"{self.address} {self.eoj}: 0xF1 answered request {answer.request_id!r}, "
                f"not {request.request_id!r}, {ANSWER_ATTEMPTS} times"
            )
        if answer.status is None:
            return DrResponse.from_amounts(request, device, 0.0, "the unit gave no response")
        if answer.accepted_wh >= edt.amount_wh:  # 0xF1 counts whole Wh: all of the amount
            response = DrResponse.from_amounts(request, device, request.amount_kwh, None)
        else:
            accepted_kwh = min(ext.kwh_from_wh(answer.accepted_wh), request.amount_kwh)
            reason = f"the unit accepted {answer.accepted_wh} Wh of {edt.amount_wh} Wh"
            response = DrResponse.from_amounts(request, device, accepted_kwh, reason)
        if response.accepted_kwh > ZERO_KWH:
            self._honoured[request.request_id] = request.end
        return response

    async def heating_plan(self) -> HeatingPlan:
        """F4: the unit's current plan from now on (energy and stored heat per slot), honouring
        the requests the unit accepted through :meth:`request` whose window is not over."""
        edt = await self._get(ext.EPC_PLAN)
        if edt is None:
            raise EchonetRefusedError(f"{self.address} {self.eoj} gave no plan")
        start, minutes, energy_wh, stored_wh = ext.decode_plan(edt, self.tz)
        if minutes != 30 or not energy_wh:
            raise EchonetRefusedError(
                f"unexpected plan layout: {minutes}-minute slots, {len(energy_wh)}"
            )
        grid = SlotGrid(start=start, n_slots=len(energy_wh))
        slots = []
        for i, s in enumerate(grid.starts()):
            energy_kwh = ext.kwh_from_wh(energy_wh[i])
            slots.append(
                PlanSlot(
                    start=s,
                    power_kw=energy_kwh / SLOT_HOURS,
                    energy_kwh=energy_kwh,
                    stored_heat_kwh=ext.kwh_from_wh(stored_wh[i]),
                )
            )
        self._honoured = {r: end for r, end in self._honoured.items() if end > grid.start}
        return HeatingPlan(
            device_id=await self._identity(),
            created_at=self._now(),
            grid=grid,
            slots=tuple(slots),
            honours=tuple(self._honoured),
        )

    async def standard_energy_shift(self, hour: int) -> dict[int, int]:
        """The standard route of U2 up-DR: participate (0xC7) and shift heating to ``hour``
        (0xCA). Returns the expected energy per candidate hour (0xCB, Wh) read before."""
        expected = await self._get(0xCB)
        table = {}
        if expected is not None and len(expected) == 16:
            for i, h in enumerate((10, 13, 15, 17)):
                table[h] = int.from_bytes(expected[4 * i : 4 * i + 4], "big")
        await self._set(0xC7, b"\x01")
        await self._set(0xCA, bytes([hour]))
        return table


@dataclass
class HomeGateway:
    """Discovers the water heaters of a home and hands out :class:`WaterHeaterLink` objects."""

    controller: EchonetController
    clock: Callable[[], datetime] | None = None
    """Handed to every link (simulated time in a simulation; wall time when None)."""

    async def discover(
        self, window_s: float = 0.5, host: str | None = None
    ) -> list[WaterHeaterLink]:
        nodes: list[NodeInfo] = (
            await self.controller.discover(window_s=window_s)
            if host is None
            else await self.controller.discover(host=host, window_s=window_s)
        )
        return [
            WaterHeaterLink(self.controller, n.address, eoj, clock=self.clock)
            for n in nodes
            for eoj in n.instances
            if eoj.class_id == WATER_HEATER_CLASS
        ]
