"""The home gateway as one OpenADR 3.1 VEN towards the DR servicer (route i; F1–F6, C1, S1).

:class:`GatewayVen` joins the water heaters a :class:`~drready.gateway.home.HomeGateway` found
on the home LAN (one :class:`~drready.gateway.home.WaterHeaterLink` each, ECHONET Lite) and a
:class:`~drready.openadr.ven.VenClient` (HTTPS) through the drready profile
(:mod:`drready.openadr.profile`), so that an ECHONET Lite home reaches the servicer's VTN
exactly as a maker cloud does (:class:`drready.cloud.service.MakerCloud` is its twin for
route ii: same structure, same semantics):

* :meth:`GatewayVen.register` — F6: each unit's :class:`~drready.domain.DeviceId` is read over
  ECHONET Lite (0x83, maker code + serial) together with its plan (F4, kept as the last plan
  known); then the ven object (``venName`` = the client's VEN name) and one resource per unit
  named by its DeviceId string. A unit that does not answer is left out and asked again on the
  next poll.
* :meth:`GatewayVen.poll_once` — reads the program's events (with its resource names as
  ``targets``, Definition.md "Targeting") and answers each once:

  - a potential-request event (F1): :meth:`WaterHeaterLink.flexibility_envelope` for each
    targeted unit (all units when untargeted) → ``profile.potential_report``. One 0xF3 EDT
    carries at most 12 h, so a longer window is asked in ≤ 12 h parts and the parts are joined
    by :func:`join_envelopes`;
  - a DR event (F2) targeting its units: :meth:`WaterHeaterLink.request` → the unit's response
    (F3) and :meth:`WaterHeaterLink.heating_plan` (F4) → ``profile.plan_report``;
  - during an answered DR event's window, :meth:`WaterHeaterLink.power_sample` (F5) of the
    units that accepted something → ``profile.power_report``, at most every
    ``power_interval_s``.

  The ECHONET Lite calls for several units run concurrently (:func:`asyncio.gather`), each
  bounded by ``unit_timeout_s``: a unit that does not answer never blocks the others. In a DR
  answer it is reported **rejected with the reason** (and its last plan known); in a potential
  report it is left out (logged) — if no targeted unit answered, the event is asked again on
  the next poll while its window has not ended. A unit that answers but refuses (SNA, a window
  outside its horizon) is a final answer, not retried. Events that do not follow the profile
  are logged and skipped, never retried.
* Once only: a unit is sent a DR request once per event — when the plan report cannot be
  posted (VTN outage), the same answers are posted on the next poll, the unit is not asked
  again (0xF0 carries no request id: a second Set would be a second request).
* Restart safety: on the first poll the VEN reads its own reports on the VTN; every event it
  already answered (potential or plan report) is not answered again, and the DR windows still
  running (units with an accepted amount > 0 in a plan report) keep their power reports,
  paced from the last power report found.
* :meth:`GatewayVen.run` — the polling loop; a VTN outage (network, 5xx) doubles the wait up to
  ``max_backoff_s``.
* :func:`serve_gateway` / :func:`run_gateway` — what ``drready gateway serve --vtn URL --host
  ADDRESS …`` runs: discover the water heaters, then poll.

Time. Every decision that depends on the events' times (power reports inside a window, the
pacing of power reports, retrying a potential request) uses the ``now`` handed to
:meth:`~GatewayVen.poll_once` (from the ``now`` callable of :meth:`~GatewayVen.run`: simulated
time in the demo), never wall time. Power samples are stamped with that ``now``: the instant
the gateway sampled the unit on the clock the servicer's events are on (the link itself stamps
wall time).

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
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from drready.domain import (
    DeviceId,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PowerSample,
)
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController
from drready.echonet.errors import EchonetError, EchonetRefusedError
from drready.gateway.home import HomeGateway, WaterHeaterLink
from drready.openadr import profile
from drready.openadr.models import Event, Report, parse_duration
from drready.openadr.ven import VenClient, VtnError, VtnUnavailableError, poll_loop

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


class NoWaterHeaterError(LookupError):
    """Discovery found no electric water heater (class 0x026B) on the hosts asked."""


class _NotYetError(Exception):
    """The event could not be answered now (no unit answered); ask again on the next poll."""


@dataclass
class _Unit:
    """One water heater behind the gateway and what the gateway knows of it."""

    link: WaterHeaterLink
    device_id: DeviceId | None = None
    plan: HeatingPlan | None = None  # the last plan read (F4)
    rated_power_kw: float | None = None  # F6 rating (0xDB–0xDD)

    @property
    def label(self) -> str:
        return f"{self.link.address} {self.link.eoj}"

    @property
    def name(self) -> str:
        if self.device_id is None:
            raise RuntimeError(f"unit {self.label} not identified yet")
        return str(self.device_id)


@dataclass(frozen=True)
class _Failure:
    """A unit's F1–F5 call that gave no answer: why, and whether trying again may help."""

    reason: str
    transient: bool


@dataclass
class _Dispatch:
    """An answered DR event whose window gets power reports."""

    event_id: str
    start: datetime
    end: datetime
    names: list[str]
    last_power: datetime | None = None


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
        up_kwh=max(up, 0.0),
        down_kwh=max(down, 0.0),
        slots=tuple(slots),
    )


def _power_stamped(sample: PowerSample, now: datetime) -> PowerSample:
    return PowerSample(
        device_id=sample.device_id,
        timestamp=now,
        power_w=sample.power_w,
        cumulative_energy_kwh=sample.cumulative_energy_kwh,
        source=sample.source,
    )


class GatewayVen:
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
        unit_timeout_s: float = 10.0,
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
        self.units = [_Unit(li) for li in links]
        self.ven = ven
        self.program_name = program_name
        self.client_name = client_name or ven.ven_name
        self.power_interval = timedelta(seconds=power_interval_s)
        self.unit_timeout_s = unit_timeout_s
        self.program_id: str | None = None
        self.registered = False
        self._offered: set[str] = set()  # resource names ensured on the VTN
        self._handled: set[str] = set()
        self._recovered = False
        self._dispatches: dict[str, _Dispatch] = {}
        # DR answers the units gave whose plan report has not reached the VTN yet: ECHONET
        # Lite 0xF0 carries no request id, so asking a unit again would be a second request
        self._unposted: dict[str, list[tuple[profile.PlanAnswer, str | None]]] = {}
        self._stop = asyncio.Event()

    @property
    def resource_names(self) -> list[str]:
        """The resources this gateway offers: its identified units' DeviceId strings."""
        return [u.name for u in self.units if u.device_id is not None]

    def _by_name(self) -> dict[str, _Unit]:
        return {u.name: u for u in self.units if u.device_id is not None}

    # ------------------------------------------------------------------ ECHONET Lite calls
    async def _call(self, unit: _Unit, work: Awaitable[T]) -> T | _Failure:
        """``work`` on one unit, bounded by ``unit_timeout_s``; a failure becomes a value."""
        try:
            return await asyncio.wait_for(work, self.unit_timeout_s)
        except TimeoutError as err:  # EchonetTimeoutError included
            detail = str(err) or f"no answer within {self.unit_timeout_s} s"
            return _Failure(f"{unit.label} did not answer over ECHONET Lite ({detail})", True)
        except OSError as err:  # the LAN itself (unreachable, interface gone)
            return _Failure(f"{unit.label} unreachable over ECHONET Lite ({err})", True)
        except (EchonetError, EchonetRefusedError, ValueError) as err:
            return _Failure(f"{unit.label}: {err}", False)

    async def _identify(self, unit: _Unit) -> tuple[DeviceId, HeatingPlan, float | None]:
        return (
            await unit.link.device_id(),
            await unit.link.heating_plan(),
            await unit.link.rated_power_kw(),
        )

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
            if isinstance(got, _Failure):
                log.append(f"unit {unit.label} not identified: {got.reason}")
            elif str(got[0]) in names:
                log.append(f"unit {unit.label}: device id {got[0]} already used by another unit")
            else:
                unit.device_id, unit.plan, unit.rated_power_kw = got
                names.add(str(got[0]))
        if not self.registered:
            ven = await self.ven.ensure_ven()
            log.append(f"registered ven {ven.ven_name!r} ({ven.id})")
            self.registered = True
        new = [n for n in self.resource_names if n not in self._offered]
        if new:
            by_name = self._by_name()
            attrs = {
                n: profile.resource_attributes(rated)
                for n in new
                if (rated := by_name[n].rated_power_kw) is not None
            }
            await self.ven.ensure_resources(new, attrs)
            self._offered.update(new)
            log.append(f"offered {len(new)} resource(s): {', '.join(new)}")
        return log

    # ------------------------------------------------------------------ polling
    async def _program_id(self) -> str | None:
        if self.program_id is None:
            program = await self.ven.program_by_name(self.program_name)
            self.program_id = None if program is None else program.id
        return self.program_id

    async def _recover(self, program_id: str, now: datetime) -> list[str]:
        """Mark the events this client already answered and resume the DR windows running."""
        reports = await self.ven.reports(program_id=program_id, client_name=self.client_name)
        answered = {r.event_id for r in reports if r.report_name in ("potential", "plan")}
        self._handled |= answered
        last_power: dict[str, datetime] = {}
        for r in reports:
            if r.report_name == "power":
                for s in profile.samples_from_report(r):
                    seen = last_power.get(r.event_id)
                    last_power[r.event_id] = s.timestamp if seen is None else max(seen, s.timestamp)
        resumed = 0
        for r in reports:
            if r.report_name == "plan" and r.event_id not in self._dispatches:
                d = _dispatch_of(r, last_power.get(r.event_id))
                if d is not None and now < d.end:
                    self._dispatches[d.event_id] = d
                    resumed += 1
        self._recovered = True
        if not answered:
            return []
        return [f"recovered {len(answered)} answered event(s), {resumed} DR window(s) running"]

    async def poll_once(self, now: datetime) -> list[str]:
        """Read the program's events, answer the new ones, send due power reports.

        ``now`` is the current instant on the events' clock. Returns a log of what was done
        (one line per action or skipped event).

        Raises
        ------
        VtnUnavailableError
            The VTN could not be reached (nothing is lost: unanswered events are answered on
            the next poll).
        """
        log: list[str] = []
        if not self.registered or any(u.device_id is None for u in self.units):
            log += await self.register()
        program_id = await self._program_id()
        if program_id is None:
            return [*log, f"program {self.program_name!r} not found on the VTN"]
        if not self._recovered:
            log += await self._recover(program_id, now)
        for event in await self._events(program_id):
            if event.id in self._handled:
                continue
            if profile.is_potential_request(event):
                log.append(await self._guard(event, self._answer_potential(event, now)))
            elif profile.is_dr_event(event):
                log.append(await self._guard(event, self._answer_dr(event)))
            else:
                self._handled.add(event.id)
                log.append(
                    f"event {event.id}: not a drready potential request or DR event, skipped"
                )
        log += await self._power_reports(now)
        return log

    async def _events(self, program_id: str) -> list[Event]:
        found = await self.ven.events(program_id, targets=self.resource_names or None)
        return sorted(found, key=lambda e: (e.created_date_time, e.id))

    async def _guard(self, event: Event, answer: Coroutine[Any, Any, str]) -> str:
        """Await ``answer``; a profile violation or a VTN refusal is logged and the event
        skipped for good; a VTN outage propagates and :class:`_NotYetError` leaves the event for the
        next poll."""
        try:
            line: str = await answer
        except VtnUnavailableError:
            raise
        except _NotYetError as err:
            return f"event {event.id}: not answered yet: {err}"
        except (ValueError, VtnError) as err:  # ProfileError and ValidationError included
            line = f"event {event.id}: skipped: {err}"
        self._handled.add(event.id)
        return line

    def _targeted(self, event: Event, *, all_if_untargeted: bool) -> list[_Unit]:
        units = self._by_name()
        if not event.targets:
            return list(units.values()) if all_if_untargeted else []
        return [units[t] for t in dict.fromkeys(event.targets) if t in units]

    # ------------------------------------------------------------------ F1
    async def _envelope(self, unit: _Unit, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1 of one unit; windows over :data:`MAX_LINK_WINDOW` in parts, one after the other
        (the unit holds one 0xF2 window at a time)."""
        parts = []
        t = start
        while t < end:
            t_next = min(t + MAX_LINK_WINDOW, end)
            parts.append(await unit.link.flexibility_envelope(t, t_next))
            t = t_next
        return join_envelopes(parts)

    async def _answer_potential(self, event: Event, now: datetime) -> str:
        window = profile.event_window(event)
        if window is None:
            raise profile.ProfileError("intervalPeriod must give the window's start and duration")
        units = self._targeted(event, all_if_untargeted=True)
        if not units:
            return f"event {event.id}: potential request targets none of our units"
        results = await asyncio.gather(*(self._call(u, self._envelope(u, *window)) for u in units))
        envelopes = [r for r in results if isinstance(r, FlexibilityEnvelope)]
        failures = [r for r in results if isinstance(r, _Failure)]
        why = "; ".join(f.reason for f in failures)
        if not envelopes:
            if any(f.transient for f in failures) and now < window[1]:
                raise _NotYetError(why)
            return f"event {event.id}: no unit gave its potential: {why}"
        report = await self.ven.post_report(
            profile.potential_report(event, envelopes, self.client_name)
        )
        line = f"event {event.id}: potential report {report.id} for {len(envelopes)} resource(s)"
        return line + (f"; left out: {why}" if failures else "")

    # ------------------------------------------------------------------ F2–F4
    async def _respond(
        self, unit: _Unit, request: DrRequest
    ) -> tuple[profile.PlanAnswer, str | None]:
        """F2 → F3 + F4 for one unit; never raises for the unit's failures (see the class)."""
        device, last_plan = unit.device_id, unit.plan
        if device is None or last_plan is None:  # only identified units are targeted
            raise RuntimeError(f"unit {unit.label} answered before it was identified")
        got = await self._call(unit, unit.link.request(request))
        note = None
        if isinstance(got, _Failure):
            response = DrResponse.from_amounts(request, device, 0.0, got.reason[:256])
            note = got.reason
        else:
            response = got
            plan = await self._call(unit, unit.link.heating_plan())
            if isinstance(plan, _Failure):
                note = f"{plan.reason}; its last plan known is reported"
            else:
                unit.plan = last_plan = plan
        return profile.PlanAnswer(response, last_plan), note

    async def _answer_dr(self, event: Event) -> str:
        request = profile.request_from_event(event, issued_at=event.created_date_time)
        units = self._targeted(event, all_if_untargeted=False)
        if not units:
            return f"event {event.id}: DR event without a target among our units, skipped"
        results = self._unposted.get(event.id)
        if results is None:  # ask the units once; a failed post re-sends the same answers
            results = await asyncio.gather(*(self._respond(u, request) for u in units))
            self._unposted[event.id] = results
        answers = [a for a, _ in results]
        report = await self.ven.post_report(profile.plan_report(event, answers, self.client_name))
        del self._unposted[event.id]
        accepted = [a for a in answers if a.response.accepted_kwh > 0]
        if accepted:
            self._dispatches[event.id] = _Dispatch(
                event.id, request.start, request.end, [str(a.response.device_id) for a in accepted]
            )
        total = sum(a.response.accepted_kwh for a in answers)
        notes = "; ".join(n for _, n in results if n)
        return (
            f"event {event.id}: plan report {report.id} for {len(answers)} resource(s), "
            f"{total:.3f} of {request.amount_kwh * len(answers):.3f} kWh accepted"
            + (f"; {notes}" if notes else "")
        )

    # ------------------------------------------------------------------ F5
    async def _power_reports(self, now: datetime) -> list[str]:
        log: list[str] = []
        due: list[_Dispatch] = []
        for d in list(self._dispatches.values()):
            if now >= d.end:
                del self._dispatches[d.event_id]
            elif now >= d.start and (
                d.last_power is None or now - d.last_power >= self.power_interval
            ):
                due.append(d)
        if not due:
            return log
        units = self._by_name()
        wanted = [units[n] for n in dict.fromkeys(n for d in due for n in d.names) if n in units]
        got = await asyncio.gather(*(self._call(u, u.link.power_sample()) for u in wanted))
        samples: dict[str, PowerSample] = {}
        for unit, s in zip(wanted, got, strict=True):
            if isinstance(s, _Failure):
                log.append(f"unit {unit.name}: no power sample: {s.reason}")
            else:
                samples[unit.name] = _power_stamped(s, now)
        for d in due:
            mine = [samples[n] for n in d.names if n in samples]
            if not mine:
                continue  # nobody answered: try again on the next poll
            try:
                report = await self.ven.post_report(
                    profile.power_report(d.event_id, mine, self.client_name)
                )
            except VtnUnavailableError:
                raise
            except (ValueError, VtnError) as err:
                log.append(f"event {d.event_id}: power report failed: {err}")
                del self._dispatches[d.event_id]
                continue
            d.last_power = now
            log.append(
                f"event {d.event_id}: power report {report.id} at {now.isoformat()} "
                f"for {len(mine)} resource(s)"
            )
        return log

    # ------------------------------------------------------------------ loop
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current poll."""
        self._stop.set()

    async def run(
        self,
        interval_s: float = 10.0,
        *,
        now: Callable[[], datetime] | None = None,
        max_backoff_s: float = 300.0,
        max_polls: int | None = None,
    ) -> None:
        """Poll every ``interval_s`` until :meth:`stop` (or ``max_polls`` polls).

        ``now`` gives the current instant on the events' clock (wall time in ``Asia/Tokyo`` by
        default; a simulated clock in the demo). A VTN outage doubles the wait, up to
        ``max_backoff_s``; the first successful poll resets it. Other VEN errors (e.g. refused
        credentials) are logged and retried at the same backed-off pace; nothing here ends the
        loop but :meth:`stop`.
        """
        await poll_loop(
            self.poll_once,
            self._stop,
            _log,
            interval_s,
            now=now,
            max_backoff_s=max_backoff_s,
            max_polls=max_polls,
        )


def _dispatch_of(report: Report, last_power: datetime | None) -> _Dispatch | None:
    """The DR window of one of our plan reports and the units that accepted something."""
    window: tuple[datetime, datetime] | None = None
    names = []
    for res in report.resources:
        for iv in res.intervals:
            status = [p for p in iv.payloads if p.type == profile.RESPONSE]
            period = iv.interval_period
            if not status or period is None or period.start is None or period.duration is None:
                continue
            window = (period.start, period.start + parse_duration(period.duration))
            values = status[0].values
            accepted = values[1] if len(values) == 3 else 0
            if isinstance(accepted, int | float) and not isinstance(accepted, bool) and accepted:
                names.append(res.resource_name)
    if window is None or not names:
        return None
    return _Dispatch(report.event_id, window[0], window[1], names, last_power)


async def discover_links(
    controller: EchonetController,
    hosts: Iterable[str] = (),
    window_s: float = 1.0,
    clock: Callable[[], datetime] | None = None,
) -> list[WaterHeaterLink]:
    """The water heaters answering at ``hosts`` (multicast discovery when none is given);
    ``clock`` stamps what the links read (wall time when None)."""
    gateway = HomeGateway(controller, clock=clock)
    hosts = list(hosts)
    if not hosts:
        return await gateway.discover(window_s=window_s)
    found: dict[tuple[str, str], WaterHeaterLink] = {}
    for host in hosts:
        for link in await gateway.discover(window_s=window_s, host=host):
            found.setdefault((link.address, str(link.eoj)), link)
    return list(found.values())


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
) -> GatewayVen:
    """Discover the home's water heaters from ``interface`` and run the gateway's VEN.

    ``hosts``: the nodes' addresses (unicast discovery), or none for multicast discovery.
    ``ca_file`` is the PEM CA the VTN's certificate must chain to (None: the system store);
    ``ven_name`` defaults to ``client_id``; ``now`` is the events' clock (wall time by
    default). Returns the VEN after ``max_polls`` polls (or :meth:`GatewayVen.stop`).

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
    async with ven, EchonetController(interface=interface) as controller:
        links = await discover_links(controller, hosts, discovery_window_s, clock=now)
        if not links:
            where = ", ".join(hosts) if hosts else f"multicast from {interface}"
            raise NoWaterHeaterError(f"no water heater (class 0x026B) answered at {where}")
        _log.info("found %d water heater(s): %s", len(links), [li.address for li in links])
        gateway = GatewayVen(links, ven, power_interval_s=power_interval_s)
        await gateway.run(interval_s, now=now, max_polls=max_polls)
        return gateway


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
) -> None:
    """What ``drready gateway serve --vtn URL --host ADDRESS …`` runs: blocks, polling every
    ``interval_s`` on wall time, until interrupted (Ctrl-C) or after ``max_polls`` polls.
    Arguments and errors as :func:`serve_gateway`."""
    try:
        asyncio.run(
            serve_gateway(
                vtn_url,
                hosts,
                client_id=client_id,
                client_secret=client_secret,
                ca_file=ca_file,
                interface=interface,
                ven_name=ven_name,
                interval_s=interval_s,
                power_interval_s=power_interval_s,
                discovery_window_s=discovery_window_s,
                allow_insecure_http=allow_insecure_http,
                max_polls=max_polls,
            )
        )
    except KeyboardInterrupt:
        _log.info("home gateway stopped")
