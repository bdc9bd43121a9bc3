"""The home gateway as one OpenADR 3.1 VEN towards the DR servicer (route i; F1–F6, C1, S1).

:class:`GatewayVen` joins the water heaters a :class:`~drready.gateway.home.HomeGateway` found
on the home LAN (one :class:`~drready.gateway.home.WaterHeaterLink` each, ECHONET Lite) and a
:class:`~drready.openadr.ven.VenClient` (HTTPS), so that an ECHONET Lite home reaches the
servicer's VTN exactly as a maker cloud does: both are thin shells
(:class:`~drready.openadr.ven.PollingVen`) around the same VEN core
(:class:`~drready.openadr.ven_core.VenCore`, where every decision is made — which events to
answer, once, in which rounds, "not yet" while no unit answered a potential request whose
window is open, when power is due, what survives a VTN outage or a restart; see
:mod:`drready.openadr.ven_core`; :class:`drready.cloud.service.MakerCloud` is the twin for
route ii). What is the gateway's own:

* :meth:`GatewayVen.register` — F6: each unit's :class:`~drready.domain.DeviceId` is read over
  ECHONET Lite (0x83, maker code + serial) together with its plan (F4, kept as the last plan
  known) and its rating (0xDB–0xDD); then the ven object (``venName`` = the client's VEN name)
  and one resource per unit named by its DeviceId string. A unit that does not answer is left
  out and asked again on the next poll. The device id is read once: a request reuses it.
* The work the core asks for, done over ECHONET Lite (:meth:`GatewayVen._work`):

  - potential (F1): :meth:`WaterHeaterLink.flexibility_envelope` of each targeted unit. One
    0xF3 EDT carries at most 12 h, so a longer window is asked in ≤ 12 h parts and the parts
    are joined by :func:`join_envelopes`;
  - a round of DR events (F2): :meth:`WaterHeaterLink.request` → the unit's response (F3) and
    :meth:`WaterHeaterLink.heating_plan` (F4), for every (event, unit) of the round at once
    (the round's events share no unit, so each unit gets one request);
  - power (F5): :meth:`WaterHeaterLink.power_sample` of the units asked.

  The ECHONET Lite calls for several units run concurrently (:func:`asyncio.gather`), each
  bounded by ``unit_timeout_s``: a unit that does not answer never blocks the others. In a DR
  answer it is reported **rejected with the reason** (and its last plan known); in a potential
  report it is left out (logged), a timeout or a LAN error being a failure that may pass. A
  unit that answers but refuses (SNA, a window outside its horizon) is a final answer.
* Standard-only units (the installed base: no 0xF0–0xF4) are served through the same profile
  (:mod:`drready.gateway.standard`): their resources carry the attribute
  ``DRREADY_ENERGY_SHIFT_ONLY`` (the shift hours they offer), their F1 holds at confidence 0.5
  (0xCB is an expected value). One potential report carries one confidence
  (``profile.potential_report``), so a report that holds both kinds states the lowest: a
  figure that holds at 95 % also holds at 50 %.
* :meth:`GatewayVen.run` — the polling loop; a VTN outage (network, 5xx) doubles the wait up to
  ``max_backoff_s``.
* :func:`serve_gateway` / :func:`run_gateway` — what ``drready gateway serve --vtn URL --host
  ADDRESS …`` runs: discover the water heaters, then poll.

Time. Every decision that depends on the events' times (power reports inside a window, the
pacing of power reports, retrying a potential request) uses the ``now`` handed to
:meth:`~GatewayVen.poll_once` (from the ``now`` callable of :meth:`~GatewayVen.run`: simulated
time in the demo), never wall time; power samples are stamped with it by the core.

Privacy (S1): only potential, plan and power at slot resolution leave the home; ECHONET Lite
frames never do (they stay between the links and the LAN).

References
----------
OpenADR Alliance, "OpenADR 3.1.0 Specification" (``openadr3.yaml``; ``Definition.md``
"Targeting"); the drready profile, ``docs/profile-openadr3.md``; the proposed
ECHONET Lite EPCs 0xF0–0xF4, ``docs/profile-echonet-lite.md`` (0xF2: window ≤ 720 min).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from drready.device.energy_shift import REPORT_HOURS
from drready.domain import (
    DeviceId,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PowerSample,
)
from drready.domain.clock import ScaledClock, WallClock, clock_from_env
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController
from drready.echonet.errors import EchonetError, EchonetRefusedError
from drready.gateway.capability import DEFAULT_EXTENSION_MAKERS, Level
from drready.gateway.home import HomeGateway, WaterHeaterLink, unique_links
from drready.openadr import profile
from drready.openadr import ven_core as vc
from drready.openadr.push import PushOptions, start_push_or_poll
from drready.openadr.ven import PollingVen, VenClient

__all__ = [
    "MAX_LINK_WINDOW",
    "GatewayVen",
    "NoWaterHeaterError",
    "discover_links",
    "join_envelopes",
    "run_gateway",
    "serve_gateway",
]

_log = logging.getLogger("drready.gateway")

T = TypeVar("T")

MAX_LINK_WINDOW = timedelta(minutes=30 * ext.MAX_POTENTIAL_SLOTS)
"""Longest window one F1 call over ECHONET Lite covers (0xF3 carries 24 slots: 12 h)."""


REDISCOVER_S = 60.0
"""Time between two discoveries of a running gateway [s] (new units, units that came back)."""
LAN_RETRIES = 4
"""Sends of one request before a unit counts as silent: with doubling waits from 0.5 s the
controller waits up to 15.5 s, more for a unit known to be slow (up to 20 s a send)."""


class NoWaterHeaterError(LookupError):
    """Discovery found no electric water heater (class 0x026B) on the hosts asked."""


@dataclass
class _Unit:
    """One water heater behind the gateway and what the gateway knows of it."""

    link: WaterHeaterLink
    device_id: DeviceId | None = None
    plan: HeatingPlan | None = None  # the last plan read (F4)
    rated_power_kw: float | None = None  # F6 rating (0xDB–0xDD)
    level: Level | None = None  # dr-ready or standard, once identified

    @property
    def label(self) -> str:
        return f"{self.link.address} {self.link.eoj}"

    @property
    def name(self) -> str:
        if self.device_id is None:
            raise RuntimeError(f"unit {self.label} not identified yet")
        return str(self.device_id)


def join_envelopes(parts: Sequence[FlexibilityEnvelope]) -> FlexibilityEnvelope:
    """One envelope for consecutive windows, each asked of the unit separately (F1).

    A window longer than :data:`MAX_LINK_WINDOW` is asked in parts; the unit computes each part
    from its current state, so the parts do not know of each other, and the whole window's
    figures can only be bounded from them:

    * per slot, ``baseline_kw``, ``min_kw``, ``max_kw`` are the parts' (each a figure of its own
      slot);
    * the cumulative bounds run on from the previous parts' ends,
      ``cum_min = Σ_{j<k} least_j + cum_min_k`` and ``cum_max = Σ_{j<k} most_j + cum_max_k``:
      every plan of the unit stays inside them (**outer** bounds: the energy of a plan in part
      ``j`` lies in ``[least_j, most_j]``);
    * the totals are **inner** bounds, energies the unit can surely deliver:
      ``up = max_k(up_k − Σ_{j≠k} down_j)`` and ``down = max_k(down_k − Σ_{j≠k} up_j)``, at
      least 0. The plan that takes part ``k``'s most energy uses at least ``least_j = base_j −
      down_j`` in every other part ``j``, so its extra energy over the whole window is at least
      ``up_k − Σ_{j≠k} down_j``; the baseline itself gives 0. (The whole window's up-DR is at
      most ``Σ up_k``.)

    A single part is returned unchanged (exact).

    Raises
    ------
    ValueError
        No parts, parts of different units, or parts that are not consecutive.
    """
    if not parts:
        raise ValueError("parts: at least one envelope is needed")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for k in range(1, len(parts)):
        if parts[k].device_id != first.device_id:
            raise ValueError(
                f"parts[{k}].device_id must be {first.device_id}, got {parts[k].device_id}"
            )
        if parts[k].window_start != parts[k - 1].window_end:
            raise ValueError(
                f"parts[{k}].window_start must be parts[{k - 1}].window_end "
                f"({parts[k - 1].window_end.isoformat()}), got "
                f"{parts[k].window_start.isoformat()}"
            )
    slots: list[EnvelopeSlot] = []
    least_before = most_before = 0.0
    for part in parts:
        slots += [
            EnvelopeSlot(
                start=s.start,
                baseline_kw=s.baseline_kw,
                min_kw=s.min_kw,
                max_kw=s.max_kw,
                cum_min_kwh=least_before + s.cum_min_kwh,
                cum_max_kwh=most_before + s.cum_max_kwh,
            )
            for s in part.slots
        ]
        least_before += part.slots[-1].cum_min_kwh
        most_before += part.slots[-1].cum_max_kwh
    ups = [p.up_kwh for p in parts]
    downs = [p.down_kwh for p in parts]
    up = max(u - (sum(downs) - d) for u, d in zip(ups, downs, strict=True))
    down = max(d - (sum(ups) - u) for u, d in zip(ups, downs, strict=True))
    return FlexibilityEnvelope(
        device_id=first.device_id,
        computed_at=max(p.computed_at for p in parts),
        window_start=first.window_start,
        window_end=parts[-1].window_end,
        confidence=min(p.confidence for p in parts),
        # clip: an inner bound below 0 means nothing can be promised (the baseline gives 0)
        up_kwh=max(up, 0.0),
        down_kwh=max(down, 0.0),
        slots=tuple(slots),
    )


class GatewayVen(PollingVen):
    """A home gateway acting as one VEN for the water heaters of its home.

    Parameters
    ----------
    links : sequence of WaterHeaterLink
        The home's water heaters (:meth:`HomeGateway.discover`); at least one, no object twice.
    ven : VenClient
        The OpenADR client towards the servicer's VTN (its ``ven_name`` names the ven object).
    program_name : str
        The servicer's DR-ready program (``profile.PROGRAM_NAME``).
    client_name : str, optional
        ``clientName`` of the reports; the VEN name by default.
    power_interval_s : float
        Least time between two power reports of one DR event [s], > 0.
    unit_timeout_s : float
        Longest wait for one unit's F1/F2+F4/F5/F6 exchange over ECHONET Lite [s], > 0 (the
        controller's own timeout and retries apply inside it).
    """

    def __init__(
        self,
        links: Sequence[WaterHeaterLink],
        ven: VenClient,
        *,
        program_name: str = profile.PROGRAM_NAME,
        client_name: str | None = None,
        power_interval_s: float = 60.0,
        unit_timeout_s: float = 60.0,
    ) -> None:
        if not links:
            raise ValueError("links: at least one water heater is needed")
        seen = [(li.address, str(li.eoj)) for li in links]
        if len(set(seen)) != len(seen):
            raise ValueError(f"links: an object appears twice in {seen}")
        if not power_interval_s > 0:
            raise ValueError(f"power_interval_s must be > 0, got {power_interval_s}")
        if not unit_timeout_s > 0:
            raise ValueError(f"unit_timeout_s must be > 0, got {unit_timeout_s}")
        core = vc.VenCore(
            client_name or ven.ven_name, power_interval=timedelta(seconds=power_interval_s)
        )
        super().__init__(ven, core, program_name=program_name, log=_log)
        self.units = [_Unit(li) for li in links]
        self.power_interval = core.power_interval
        self.unit_timeout_s = unit_timeout_s
        self._offered: set[str] = set()  # resource names ensured on the VTN

    @property
    def resource_names(self) -> list[str]:
        """The resources this gateway offers: its identified units' DeviceId strings."""
        return [u.name for u in self.units if u.device_id is not None]

    def _by_name(self) -> dict[str, _Unit]:
        return {u.name: u for u in self.units if u.device_id is not None}

    def _needs_register(self) -> bool:
        return not self.registered or any(u.device_id is None for u in self.units)

    # ------------------------------------------------------------------ ECHONET Lite calls
    async def _call(self, unit: _Unit, work: Awaitable[T]) -> T | vc.UnitFailure:
        """``work`` on one unit, bounded by ``unit_timeout_s``; a failure becomes a value."""
        try:
            return await asyncio.wait_for(work, self.unit_timeout_s)
        except TimeoutError as err:  # EchonetTimeoutError included
            detail = str(err) or f"no answer within {self.unit_timeout_s} s"
            return vc.UnitFailure(f"{unit.label} did not answer over ECHONET Lite ({detail})", True)
        except OSError as err:  # the LAN itself (unreachable, interface gone)
            return vc.UnitFailure(f"{unit.label} unreachable over ECHONET Lite ({err})", True)
        except (EchonetError, EchonetRefusedError, ValueError) as err:
            return vc.UnitFailure(f"{unit.label}: {err}", False)

    async def _identify(self, unit: _Unit) -> tuple[DeviceId, HeatingPlan, float | None, Level]:
        device = await unit.link.device_id()
        capability = await unit.link.capability()
        return (
            device,
            await unit.link.heating_plan(),
            await unit.link.rated_power_kw(),
            capability.level,
        )

    def add_links(self, links: Iterable[WaterHeaterLink]) -> list[str]:
        """Take in water heaters found after the start (identified on the next poll); a link
        for an object already served is ignored. Returns their labels."""
        have = {(u.link.address, str(u.link.eoj)) for u in self.units}
        added = []
        for link in unique_links(links):
            if (link.address, str(link.eoj)) not in have:
                self.units.append(_Unit(link))
                added.append(f"{link.address} {link.eoj}")
        return added

    # ------------------------------------------------------------------ F6
    async def register(self) -> list[str]:
        """Identify the units not yet known, then ensure the ven object and their resources.

        Idempotent; a unit that does not answer is logged and asked again on the next call.
        """
        log: list[str] = []
        todo = [u for u in self.units if u.device_id is None]
        results = await asyncio.gather(*(self._call(u, self._identify(u)) for u in todo))
        names = set(self._by_name())
        for unit, got in zip(todo, results, strict=True):
            if isinstance(got, vc.UnitFailure):
                log.append(f"unit {unit.label} not identified: {got.reason}")
            elif str(got[0]) in names:
                log.append(f"unit {unit.label}: device id {got[0]} already used by another unit")
            else:
                unit.device_id, unit.plan, unit.rated_power_kw, unit.level = got
                names.add(str(got[0]))
        if not self.registered:
            ven = await self.ven.ensure_ven()
            log.append(f"registered ven {ven.ven_name!r} ({ven.id})")
            self.registered = True
        new = [n for n in self.resource_names if n not in self._offered]
        if new:
            by_name = self._by_name()
            attrs = {
                n: profile.resource_attributes(rated, energy_shift_hours=_shift_hours(by_name[n]))
                for n in new
                if (rated := by_name[n].rated_power_kw) is not None
            }
            await self.ven.ensure_resources(new, attrs)
            self._offered.update(new)
            log.append(f"offered {len(new)} resource(s): {', '.join(new)}")
        return log

    # ------------------------------------------------------------------ the core's work
    def _targets(self, names: Sequence[str]) -> list[_Unit]:
        units = self._by_name()
        return [units[n] for n in names if n in units]

    async def _work(self, action: vc.UnitWork) -> vc.Input:
        if isinstance(action, vc.AskPotential):
            return await self._potential(action)
        if isinstance(action, vc.ApplyRequests):
            return await self._apply(action)
        return await self._power(action)

    async def _envelope(self, unit: _Unit, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1 of one unit; windows over :data:`MAX_LINK_WINDOW` in parts, one after the other
        (the unit holds one 0xF2 window at a time)."""
        if unit.level is Level.STANDARD:  # any window at once (no 0xF3 size limit)
            return await unit.link.flexibility_envelope(start, end)
        parts = []
        t = start
        while t < end:
            t_next = min(t + MAX_LINK_WINDOW, end)
            parts.append(await unit.link.flexibility_envelope(t, t_next))
            t = t_next
        return join_envelopes(parts)

    async def _potential(self, action: vc.AskPotential) -> vc.PotentialGiven:
        units = self._targets(action.targets)
        results = await asyncio.gather(
            *(self._call(u, self._envelope(u, action.start, action.end)) for u in units)
        )
        envelopes = [r for r in results if isinstance(r, FlexibilityEnvelope)]
        least = min((e.confidence for e in envelopes), default=None)
        return vc.PotentialGiven(
            action.event_id,
            tuple(  # one report, one confidence: the lowest (a 95 % figure holds at 50 %)
                e if e.confidence == least else e.model_copy(update={"confidence": least})
                for e in envelopes
            ),
            tuple(r for r in results if isinstance(r, vc.UnitFailure)),
        )

    async def _respond(self, unit: _Unit, request: DrRequest) -> vc.UnitAnswer:
        """F2 → F3 + F4 for one unit; never raises for the unit's failures (see the module)."""
        device, last_plan = unit.device_id, unit.plan
        if device is None or last_plan is None:  # only identified units are targeted
            raise RuntimeError(f"unit {unit.label} answered before it was identified")
        got = await self._call(unit, unit.link.request(request))
        note = None
        if isinstance(got, vc.UnitFailure):
            response = DrResponse.from_amounts(request, device, 0.0, got.reason[:256])
            note = got.reason
        else:
            response = got
            plan = await self._call(unit, unit.link.heating_plan())
            if isinstance(plan, vc.UnitFailure):
                note = f"{plan.reason}; its last plan known is reported"
            else:
                unit.plan = last_plan = plan
        return vc.UnitAnswer(profile.PlanAnswer(response, last_plan), note)

    async def _apply(self, action: vc.ApplyRequests) -> vc.RequestsAnswered:
        pairs = [(ask, unit) for ask in action.asks for unit in self._targets(ask.targets)]
        answers = await asyncio.gather(*(self._respond(u, ask.request) for ask, u in pairs))
        by_event: dict[str, list[vc.UnitAnswer]] = {ask.event_id: [] for ask in action.asks}
        for (ask, _), answer in zip(pairs, answers, strict=True):
            by_event[ask.event_id].append(answer)
        return vc.RequestsAnswered({e: tuple(a) for e, a in by_event.items()})

    async def _power(self, action: vc.SamplePower) -> vc.PowerSampled:
        units = self._targets(action.targets)
        got = await asyncio.gather(*(self._call(u, u.link.power_sample()) for u in units))
        samples: dict[str, PowerSample] = {}
        failures: dict[str, str] = {}
        for unit, s in zip(units, got, strict=True):
            if isinstance(s, vc.UnitFailure):
                failures[unit.name] = s.reason
            else:
                samples[unit.name] = s
        return vc.PowerSampled(samples, failures)


def _shift_hours(unit: _Unit) -> tuple[int, ...] | None:
    """The shift hours of a standard-only unit's resource attribute (None: DR-ready)."""
    if unit.level is not Level.STANDARD:
        return None
    cap = unit.link.known_capability
    shifts = 1 if cap is None else cap.energy_shifts
    return tuple(sorted({h for n in (1, 2)[:shifts] for h in REPORT_HOURS[n]}))


async def discover_links(
    controller: EchonetController,
    hosts: Iterable[str] = (),
    window_s: float = 1.0,
    clock: Callable[[], datetime] | None = None,
    *,
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS,
) -> list[WaterHeaterLink]:
    """The water heaters answering at ``hosts`` (unicast probing, done as soon as all
    answered), or to multicast discovery when none is given; ``clock`` stamps what the links
    read (wall time when None)."""
    hosts = list(hosts)
    gateway = HomeGateway(
        controller, clock=clock, extension_makers=extension_makers, known=set(hosts)
    )
    return unique_links(await gateway.discover(window_s=window_s, multicast=not hosts))


async def serve_gateway(
    vtn_url: str,
    hosts: Sequence[str] = (),
    *,
    client_id: str,
    client_secret: str,
    ca_file: str | None,
    interface: str = "127.0.0.1",
    ven_name: str | None = None,
    interval_s: float = 10.0,
    power_interval_s: float = 60.0,
    discovery_window_s: float = 1.0,
    allow_insecure_http: bool = False,
    max_polls: int | None = None,
    now: Callable[[], datetime] | None = None,
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS,
    rediscover_s: float = REDISCOVER_S,
    push: PushOptions | None = None,
) -> GatewayVen:
    """Discover the home's water heaters from ``interface`` and run the gateway's VEN.

    ``hosts``: the nodes' addresses (unicast discovery), or none for multicast discovery.
    The controller listens to the multicast group: INF announcements reach the links
    (:meth:`HomeGateway.watch`), and every ``rediscover_s`` the LAN is asked again — multicast
    plus unicast to every address seen — so units that join later, or announce themselves
    (0xD5), are served too. ``extension_makers``: maker codes trusted with 0xF0–0xF4.
    ``ca_file`` is the PEM CA the VTN's certificate must chain to (None: the system store);
    ``ven_name`` defaults to ``client_id``; ``now`` is the events' clock (wall time by
    default). Returns the VEN after ``max_polls`` polls (or :meth:`GatewayVen.stop`). With
    ``push`` (webhook or MQTT, :mod:`drready.openadr.push`) events are pushed and read from
    the VTN only every ``push.safety_poll_s``.

    Raises
    ------
    ValueError
        Bad arguments (a plain-HTTP URL without ``allow_insecure_http``, …).
    NoWaterHeaterError
        No water heater answered discovery.
    OSError
        ``interface`` cannot be bound.
    """
    verify: str | bool = ca_file if ca_file is not None else True
    ven = VenClient(
        vtn_url,
        client_id,
        client_secret,
        verify=verify,
        ven_name=ven_name or client_id,
        allow_insecure_http=allow_insecure_http,
    )
    controller = EchonetController(interface=interface, listen_multicast=True, retries=LAN_RETRIES)
    async with ven, controller:
        home = HomeGateway(
            controller, clock=now, extension_makers=extension_makers, known=set(hosts)
        )
        home.watch()
        links = unique_links(await home.discover(discovery_window_s, multicast=not hosts))
        if not links:
            where = ", ".join(hosts) if hosts else f"multicast from {interface}"
            raise NoWaterHeaterError(f"no water heater (class 0x026B) answered at {where}")
        _log.info("found %d water heater(s): %s", len(links), [li.address for li in links])
        gateway = GatewayVen(links, ven, power_interval_s=power_interval_s)

        async def rediscover() -> None:
            while True:
                await asyncio.sleep(rediscover_s)
                try:
                    found = await home.discover(discovery_window_s, multicast=True)
                except OSError as err:
                    _log.warning("rediscovery failed: %s", err)
                    continue
                added = gateway.add_links(found)
                if added:
                    _log.info("new water heater(s): %s", added)

        task = asyncio.create_task(rediscover())
        stop_push = None
        try:
            if push is not None:
                stop_push = await start_push_or_poll(gateway, ven, push)
            await gateway.run(interval_s, now=now, max_polls=max_polls)
        finally:
            task.cancel()
            if stop_push is not None:
                await stop_push.stop()
        return gateway


MIN_POLL_WALL_S = 0.1
"""Shortest wait between two polls on a scaled clock [wall s] (as the maker cloud's)."""


def run_gateway(
    vtn_url: str,
    hosts: Sequence[str] = (),
    *,
    client_id: str,
    client_secret: str,
    ca_file: str | None,
    interface: str = "127.0.0.1",
    ven_name: str | None = None,
    interval_s: float = 10.0,
    power_interval_s: float = 60.0,
    discovery_window_s: float = 1.0,
    allow_insecure_http: bool = False,
    max_polls: int | None = None,
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS,
    push: PushOptions | None = None,
) -> None:
    """What ``drready gateway serve --vtn URL --host ADDRESS …`` runs: blocks, polling every
    ``interval_s`` seconds of the process clock (at a stack's ``--time-scale N``,
    ``interval_s / N`` wall seconds, at least :data:`MIN_POLL_WALL_S`), until SIGINT/SIGTERM
    (a clean stop: the poll in progress is cancelled, the connections closed, and the function
    returns) or after ``max_polls`` polls.
    The events' clock is the process clock (:func:`~drready.domain.clock.clock_from_env`: the
    wall clock, or the simulated clock every drready process of a stack shares).
    Arguments and errors as :func:`serve_gateway`."""
    clock = clock_from_env()
    wait_s = interval_s
    if isinstance(clock, WallClock | ScaledClock):
        wait_s = max(clock.wall_seconds(interval_s), min(MIN_POLL_WALL_S, interval_s))

    async def main() -> None:
        task = asyncio.create_task(
            serve_gateway(
                vtn_url,
                hosts,
                client_id=client_id,
                client_secret=client_secret,
                ca_file=ca_file,
                interface=interface,
                ven_name=ven_name,
                interval_s=wait_s,
                power_interval_s=power_interval_s,
                discovery_window_s=discovery_window_s,
                allow_insecure_http=allow_insecure_http,
                max_polls=max_polls,
                now=clock.now,
                extension_makers=extension_makers,
                push=push,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            _log.info("home gateway stopped")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    asyncio.run(main())
