"""The home gateway's view of each water heater on the home LAN, in domain terms (F1–F6, C1).

:class:`HomeGateway` discovers ECHONET Lite nodes with an electric water heater object (class
0x026B) and returns one :class:`WaterHeaterLink` per object. A link performs the device functions
over ECHONET Lite and answers with the unified data model, so that whatever sits upstream (the
OpenADR VEN, :mod:`drready.gateway.ven`) never sees frames:

Each link first learns what its unit can do (:meth:`WaterHeaterLink.capability`, from the
property maps and the maker code, :mod:`drready.gateway.capability`): a **DR-ready** unit is
served through drready's proposed maker-specific EPCs, a **standard-only** unit through the
standard energy shift (:mod:`drready.gateway.standard`), with the same domain answers:

* F6 :meth:`WaterHeaterLink.device_id` ← 0x83 identification number, read when the unit is
  identified and kept: the other calls name the unit without reading 0x83 again;
* F5 :meth:`WaterHeaterLink.power_sample` ← 0x84/0x85 (measured); where a unit lacks them, an
  estimate from 0xB2 (heating or not) × the seasonal rated power (0xDB Dec–Mar, 0xDC Apr, May,
  Oct, Nov, 0xDD Jun–Sep) integrated over time, flagged ``ESTIMATED``; INF of 0xB2
  (:meth:`WaterHeaterLink.announced`) makes the integration follow each on/off;
* F1 :meth:`WaterHeaterLink.flexibility_envelope` ← DR-ready: one SetGet of the maker-specific
  0xF2 (the window) and 0xF3 (its potential), so that the answer is for this window whatever
  another controller sets (EL-F3-1); a node answering SetGet_SNA without taking 0xF2 (one that
  does not implement SetGet) is asked by SetC 0xF2 and one Get of 0xF2 and 0xF3, the window
  read back checked; standard: 0xCB/0xCC/0xCE/0xCF for the shift windows inside the window;
* F2/F3 :meth:`WaterHeaterLink.request` ← DR-ready: 0xF0 (set the request, with the servicer's
  request id) + 0xF1 (the answer, naming that id); standard: 0xC7 = 1 and a shift time (0xCA,
  or 0xCD), the amount rounded to whole shifts, the difference in the response's reason;
* F4 :meth:`WaterHeaterLink.heating_plan` ← DR-ready: 0xF4, ``honours`` naming the requests this
  link sent that the unit accepted and that are not over (0xF4 has no room for ids: an EDT is
  at most 255 bytes and 60 slots take 248); standard: the plan inferred from the shift times
  set (:func:`~drready.gateway.standard.inferred_plan`).

:class:`HomeGateway` discovers the units (multicast with retries plus unicast probing of the
addresses it knows), hands out links and, with :meth:`HomeGateway.watch`, passes INF
announcements to them: 0x80 (operating or not), 0xB2 (heating, for F5), 0xC7/0xCA/0xCD (the
energy shift, e.g. a user withdrawing), and a node profile's instance list 0xD5 (a node that
joins or comes back: its capability is read again, a new node is remembered for the next
discovery).

Amounts are converted once at this boundary: kWh → whole Wh going down, Wh → kWh coming back
(:mod:`drready.echonet.extension`). The mapping is specified in ``docs/profile-echonet-lite.md``.
ECHONET Lite has no transport security: the gateway keeps it on the home LAN and relays only
these domain objects (S1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from drready.device.energy_shift import target_day
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
from drready.echonet.controller import EchonetController, EchonetTimeoutError, NodeInfo
from drready.echonet.errors import EchonetError, EchonetRefusedError, ForeignAnswerError
from drready.echonet.frame import EOJ, ESV, MULTICAST_GROUP, NODE_PROFILE, Frame
from drready.echonet.propmap import decode_property_map
from drready.gateway import standard as std
from drready.gateway.capability import (
    CAPABILITY_TTL,
    DEFAULT_EXTENSION_MAKERS,
    Capability,
    Level,
    classify,
    map_retry_delay_s,
)

__all__ = [
    "ANSWER_ATTEMPTS",
    "WATER_HEATER_CLASS",
    "CapabilityUnknownError",
    "HomeGateway",
    "WaterHeaterLink",
]

_log = logging.getLogger(__name__)

WATER_HEATER_CLASS = 0x026B
ANSWER_ATTEMPTS = 3
"""Times :meth:`WaterHeaterLink.request` sets 0xF0 and reads 0xF1 while 0xF1 names another
request (another controller's Set in between); the unit answers a request it already holds from
memory, so setting it again plans nothing twice."""


class CapabilityUnknownError(EchonetTimeoutError):
    """The unit's property maps could not be read (yet): a failure that may pass; the message
    says when they are asked again."""


@dataclass(frozen=True)
class _ShiftSet:
    """A shift time this link set for a request (standard-only units), and the answer."""

    option: std.ShiftOption
    day: date
    response: DrResponse


@dataclass
class WaterHeaterLink:
    """One electric water heater object reached through ``controller``."""

    controller: EchonetController
    address: str
    eoj: EOJ
    tz: ZoneInfo = field(default_factory=lambda: zone(DEFAULT_TZ))
    clock: Callable[[], datetime] | None = None
    """The gateway's time (simulated in a simulation); wall time in ``tz`` when None."""
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS
    """Maker codes trusted to implement drready's maker EPCs 0xF0–0xF4."""
    _device: DeviceId | None = field(default=None, init=False, repr=False, compare=False)
    _honoured: dict[str, datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Request id → window end of the requests the unit accepted through this link."""
    _capability: Capability | None = field(default=None, init=False, repr=False, compare=False)
    _capability_at: datetime | None = field(default=None, init=False, repr=False, compare=False)
    _map_failures: int = field(default=0, init=False, repr=False, compare=False)
    _map_retry_at: datetime | None = field(default=None, init=False, repr=False, compare=False)
    _shifts: dict[str, _ShiftSet] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _ratings_w: tuple[int | None, int | None, int | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _estimate: std.EnergyEstimator = field(
        default_factory=std.EnergyEstimator, init=False, repr=False, compare=False
    )
    operating: bool | None = field(default=None, init=False, compare=False)
    """Operation status 0x80 as last announced (None: not heard)."""

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(self.tz)

    async def _get(self, epc: int) -> bytes | None:
        return (await self.controller.get(self.address, self.eoj, [epc]))[epc]

    async def _set(self, epc: int, edt: bytes) -> None:
        ok = await self.controller.set(self.address, self.eoj, {epc: edt})
        if not ok.get(epc, False):
            raise EchonetRefusedError(f"{self.address} {self.eoj} refused EPC 0x{epc:02X}")

    # ------------------------------------------------------------------ capability
    @property
    def level(self) -> Level | None:
        """The unit's level as last detected (None before :meth:`capability`)."""
        return None if self._capability is None else self._capability.level

    @property
    def known_capability(self) -> Capability | None:
        """The capability as last detected, without asking the unit (None before)."""
        return self._capability

    def forget_capability(self) -> None:
        """Read the maps again on the next call (the unit came back, or refused an EPC)."""
        self._capability_at = None
        self._map_retry_at = None

    async def capability(self, refresh: bool = False) -> Capability:
        """What the unit can do, from its maps 0x9D/0x9E/0x9F, maker code 0x8A and 0xC9 —
        kept for :data:`~drready.gateway.capability.CAPABILITY_TTL`.

        Raises
        ------
        CapabilityUnknownError
            The maps could not be read; asked again after 15 s, then 60 s.
        """
        now = self._now()
        fresh = self._capability_at is not None and now - self._capability_at < CAPABILITY_TTL
        if self._capability is not None and fresh and not refresh:
            return self._capability
        if not refresh and self._map_retry_at is not None and now < self._map_retry_at:
            raise CapabilityUnknownError(
                f"{self.address} {self.eoj}: property maps not read yet; next try at "
                f"{self._map_retry_at.isoformat(timespec='seconds')}"
            )
        try:
            got = await self.controller.get(self.address, self.eoj, [0x9D, 0x9E, 0x9F, 0x8A])
            shifts = await self._get(0xC9)
            maps = [frozenset(decode_property_map(got[e] or b"", epc=e)) for e in (0x9F, 0x9E)]
            announce = frozenset(decode_property_map(got[0x9D] or b"\x00", epc=0x9D))
        except (EchonetTimeoutError, ValueError) as err:
            self._map_failures += 1
            delay = map_retry_delay_s(self._map_failures)
            self._map_retry_at = now + timedelta(seconds=delay)
            raise CapabilityUnknownError(
                f"{self.address} {self.eoj}: property maps not read ({err}); asked again in "
                f"{delay:g} s"
            ) from err
        self._map_failures = 0
        self._map_retry_at = None
        self._capability = classify(
            (got[0x8A] or b"").hex().upper(),
            maps[0],
            maps[1],
            announce,
            shifts[0] if shifts else None,
            self.extension_makers,
        )
        self._capability_at = now
        return self._capability

    async def _usable(self) -> Capability:
        cap = await self.capability()
        if cap.level is Level.UNUSABLE:
            raise EchonetRefusedError(f"{self.address} {self.eoj}: {cap.reason}")
        return cap

    async def _offer(self, cap: Capability) -> std.ShiftOffer:
        first = await self.controller.get(self.address, self.eoj, [0xC7, 0xC8, 0xC9, 0xCA, 0xCD])
        tables = await self.controller.get(self.address, self.eoj, [0xCB, 0xCC, 0xCE, 0xCF])
        return std.decode_offer({**first, **tables}, cap.energy_shifts)

    def _target_day(self, offer: std.ShiftOffer) -> date:
        return target_day(self._now().astimezone(self.tz), offer.standard_start_hour)

    def _slot_now(self) -> datetime:
        now = self._now().astimezone(self.tz)
        return now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)

    async def shift_options(self, start: datetime, end: datetime) -> list[std.ShiftOption]:
        """The shifts a standard-only unit can still be given inside ``[start, end)``."""
        offer = await self._offer(await self._usable())
        day = self._target_day(offer)
        return std.shift_options(offer, day, self.tz, start, end, self._slot_now())

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

    async def _ratings(self) -> tuple[int | None, int | None, int | None]:
        if self._ratings_w is None:
            got = await self.controller.get(self.address, self.eoj, [0xDB, 0xDC, 0xDD])
            w = [int.from_bytes(v, "big") if (v := got[e]) else None for e in (0xDB, 0xDC, 0xDD)]
            self._ratings_w = (w[0], w[1], w[2])
        return self._ratings_w

    async def rated_power_kw(self) -> float | None:
        """F6 rating: the heat pump's rated power consumption, the largest of its winter,
        in-between and summer values (0xDB–0xDD) [kW]; None if the unit gives none."""
        watts = [w for w in await self._ratings() if w]
        return max(watts) / 1000.0 if watts else None

    def _estimated_w(self, heating: bool, now: datetime) -> int:
        winter, mid, summer = self._ratings_w or (None, None, None)
        rated = std.seasonal_rating_w(now.astimezone(self.tz).month, winter, mid, summer)
        return (rated or 0) if heating else 0

    async def power_sample(self) -> PowerSample:
        """F5: instantaneous power and cumulative energy (measured), or an estimate: 0xB2 ×
        the seasonal rating, integrated since the first sample (flagged ``ESTIMATED``)."""
        measured = self._capability is None or self._capability.measured_power
        epcs = [0x84, 0x85, 0xB2] if measured else [0xB2]
        got = await self.controller.get(self.address, self.eoj, epcs)
        now = self._now()
        device = await self._identity()
        if got.get(0x84) is not None and got.get(0x85) is not None:
            return PowerSample(
                device_id=device,
                timestamp=now,
                power_w=int.from_bytes(got[0x84] or b"", "big"),
                cumulative_energy_kwh=int.from_bytes(got[0x85] or b"", "big") / 1000.0,
                source=PowerSource.MEASURED,
            )
        await self._ratings()
        power_w = self._estimated_w(got[0xB2] == b"\x41", now)
        return PowerSample(
            device_id=device,
            timestamp=now,
            power_w=power_w,
            cumulative_energy_kwh=self._estimate.update(now, power_w),
            source=PowerSource.ESTIMATED,
        )

    def announced(self, epc: int, edt: bytes, now: datetime | None = None) -> None:
        """An INF of this unit: 0x80 operation status, 0xB2 heating (F5 estimate follows it),
        0xC7 participation or 0xCA/0xCD shift time cleared before a shift set through this link
        began (the user withdrew it: the shift is gone, its request no longer honoured)."""
        at = self._now() if now is None else now
        if epc == 0x80:
            self.operating = edt == b"\x30"
        elif epc == 0xB2 and self._ratings_w is not None and self._estimate.last is not None:
            self._estimate.update(at, self._estimated_w(edt == b"\x41", at))
        elif epc in (0xC7, 0xCA, 0xCD) and edt == b"\x00":
            shift = {0xCA: 1, 0xCD: 2}.get(epc)  # 0xC7 off clears both
            gone = [
                r
                for r, s in self._shifts.items()
                if s.option.start > at and shift in (None, s.option.shift)
            ]
            for rid in gone:
                _log.info("%s %s: participation withdrawn before %s", self.address, self.eoj, rid)
                del self._shifts[rid]
                self._honoured.pop(rid, None)

    async def flexibility_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1: DR-ready, a window of at most 12 h (what one 0xF3 EDT carries); standard-only,
        any window (the shift windows inside it)."""
        cap = await self._usable()
        if cap.level is Level.STANDARD:
            options = await self.shift_options(start, end)
            return std.standard_envelope(
                await self._identity(), options, start, end, computed_at=self._now()
            )
        p = ext.decode_potential(await self._potential_edt(start, end))
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

    async def _potential_edt(self, start: datetime, end: datetime) -> bytes:
        """0xF3 of ``[start, end)``: SetGet 0xF2 = the window, Get 0xF3 (EL-F3-1). Only when
        the node answers SetGet_SNA *without taking 0xF2* (a node that does not implement
        SetGet; a window it refuses is refused again by the SetC), SetC 0xF2 and one Get of
        0xF2 and 0xF3, whose 0xF2 must still be this window (else set again, at most
        :data:`ANSWER_ATTEMPTS` times)."""
        f2, f3 = ext.EPC_POTENTIAL_WINDOW, ext.EPC_POTENTIAL
        window = ext.encode_window(start, end, self.tz)
        answer = await self.controller.set_get(self.address, self.eoj, {f2: window}, [f3])
        edt = answer.got.get(f3)
        if not answer.accepted.get(f2, False):
            for _ in range(ANSWER_ATTEMPTS):
                await self._set(f2, window)
                got = await self.controller.get(self.address, self.eoj, [f2, f3])
                if got[f2] == window:
                    edt = got[f3]
                    break
            else:
                raise ForeignAnswerError(
                    f"{self.address} {self.eoj}: 0xF2 kept reading another window than "
                    f"{start.isoformat()}–{end.isoformat()}, {ANSWER_ATTEMPTS} times"
                )
        if edt is None:
            raise EchonetRefusedError(f"{self.address} {self.eoj} gave no potential")
        return edt

    async def request(self, request: DrRequest) -> DrResponse:
        """F2 → F3: send the request under its own id; the unit re-plans and answers (0xF1).

        Raises
        ------
        ForeignAnswerError
            0xF1 kept naming another request (see :data:`ANSWER_ATTEMPTS`).
        """
        device = await self._identity()
        cap = await self._usable()
        if cap.level is Level.STANDARD:
            return await self._shift_request(request, device, cap)
        edt = ext.DrRequestEdt.from_request(request)
        for _ in range(ANSWER_ATTEMPTS):
            try:
                await self._set(ext.EPC_DR_REQUEST, edt.encode(self.tz))
            except EchonetRefusedError as err:
                self.forget_capability()  # the maps promised 0xF0: read them again
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
            reason = (
                f"the unit heats {answer.accepted_wh} Wh from the start time"
                if request.open_amount  # by start time alone: 0xF0 carried the largest amount
                else f"the unit accepted {answer.accepted_wh} Wh of {edt.amount_wh} Wh"
            )
            response = DrResponse.from_amounts(request, device, accepted_kwh, reason)
        if response.accepted_kwh > ZERO_KWH:
            self._honoured[request.request_id] = request.end
        return response

    async def heating_plan(self) -> HeatingPlan:
        """F4: the unit's current plan from now on (energy and stored heat per slot), honouring
        the requests the unit accepted through :meth:`request` whose window is not over.
        Standard-only: the plan inferred from the shift times this link set."""
        cap = await self._usable()
        if cap.level is Level.STANDARD:
            return await self._inferred_plan()
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

    async def _shift_request(
        self, request: DrRequest, device: DeviceId, cap: Capability
    ) -> DrResponse:
        """F2 → F3 of a standard-only unit: a shift time for the request (see the module)."""
        done = self._shifts.get(request.request_id)
        if done is not None:  # sent again (a retry): answered from memory, not set twice
            return done.response
        offer = await self._offer(cap)
        day = self._target_day(offer)
        options = std.shift_options(
            offer, day, self.tz, request.start, request.end, self._slot_now()
        )
        decision = std.decide_shift(request, options, day)
        if decision.option is None:
            return DrResponse.from_amounts(request, device, 0.0, decision.reason)
        opt = decision.option
        epc = offer.shift_epc(opt.shift)
        try:
            if not offer.participation:
                await self._set(0xC7, b"\x01")
            await self._set(epc, bytes([opt.hour]))
        except EchonetRefusedError as err:
            return DrResponse.from_amounts(request, device, 0.0, f"refused by the unit: {err}")
        kept = await self._get(epc)
        if kept != bytes([opt.hour]):
            shown = "nothing" if kept is None else f"0x{kept.hex().upper()}"
            return DrResponse.from_amounts(
                request,
                device,
                0.0,
                f"the unit did not keep shift time {opt.shift} at {opt.hour:02d}:00 "
                f"(0x{epc:02X} reads {shown})",
            )
        response = DrResponse.from_amounts(request, device, decision.accepted_kwh, decision.reason)
        if response.accepted_kwh > ZERO_KWH:
            self._shifts[request.request_id] = _ShiftSet(opt, day, response)
            self._honoured[request.request_id] = request.end
        return response

    async def _inferred_plan(self) -> HeatingPlan:
        now = self._now()
        active = {r: s for r, s in self._shifts.items() if s.option.end > now}
        if active:
            day = min(s.day for s in active.values())
        else:
            cap = await self._usable()
            day = self._target_day(await self._offer(cap))
        return std.inferred_plan(
            await self._identity(),
            now,
            day,
            self.tz,
            [s.option for s in active.values() if s.day == day],
            [r for r, s in active.items() if s.day == day],
        )


@dataclass
class HomeGateway:
    """Discovers the water heaters of a home and hands out :class:`WaterHeaterLink` objects.

    ``known`` addresses are probed by unicast at every discovery (beside multicast), and
    addresses of nodes that announced themselves (0xD5) since are added; :meth:`watch` routes
    INF announcements to the links it handed out.
    """

    controller: EchonetController
    clock: Callable[[], datetime] | None = None
    """Handed to every link (simulated time in a simulation; wall time when None)."""
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS
    known: set[str] = field(default_factory=set)
    links: dict[tuple[str, EOJ], WaterHeaterLink] = field(default_factory=dict)
    _watching: bool = False

    async def discover(
        self,
        window_s: float = 0.5,
        host: str | None = None,
        *,
        multicast: bool | None = None,
    ) -> list[WaterHeaterLink]:
        """The water heaters answering within ``window_s``: multicast (unless ``host`` is
        given, or ``multicast`` is False) plus unicast to ``host`` and the known addresses.
        A link already handed out for an object is handed out again (same state)."""
        group = host is None if multicast is None else multicast
        known = sorted(self.known | ({host} if host is not None else set()))
        nodes: list[NodeInfo] = await self.controller.discover(
            MULTICAST_GROUP if group else None, window_s=window_s, known=known
        )
        found = []
        for n in nodes:
            self.known.add(n.address)
            for eoj in n.instances:
                if eoj.class_id != WATER_HEATER_CLASS:
                    continue
                link = self.links.get((n.address, eoj))
                if link is None:
                    link = WaterHeaterLink(
                        self.controller,
                        n.address,
                        eoj,
                        clock=self.clock,
                        extension_makers=self.extension_makers,
                    )
                    self.links[(n.address, eoj)] = link
                found.append(link)
        return found

    def watch(self) -> None:
        """Pass the controller's INF/INFC to the links (idempotent)."""
        if not self._watching:
            self.controller.subscribe(self._announcement)
            self._watching = True

    def _announcement(self, host: str, frame: Frame) -> None:
        if frame.esv not in (ESV.INF, ESV.INFC):
            return
        if frame.seoj == NODE_PROFILE:
            if any(p.epc == 0xD5 for p in frame.properties):
                self.known.add(host)  # probed at the next discovery
                for (address, _), known in self.links.items():
                    if address == host:
                        known.forget_capability()  # it came back: read its maps again
            return
        link = self.links.get((host, frame.seoj))
        if link is None:
            return
        for p in frame.properties:
            if p.edt:
                link.announced(p.epc, p.edt)


def describe_failure(err: BaseException) -> str:
    """A one-line reason for a unit the gateway cannot use."""
    if isinstance(err, EchonetError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def unique_links(links: Iterable[WaterHeaterLink]) -> list[WaterHeaterLink]:
    """``links`` without repeats of one object (first kept)."""
    seen: dict[tuple[str, str], WaterHeaterLink] = {}
    for link in links:
        seen.setdefault((link.address, str(link.eoj)), link)
    return list(seen.values())
