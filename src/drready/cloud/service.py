"""The maker cloud as one OpenADR 3.1 VEN towards the DR servicer (route ii; F1–F6, C1, D6).

:class:`MakerCloud` joins a :class:`~drready.cloud.fleet.MakerFleet` and a
:class:`~drready.openadr.ven.VenClient` through the drready profile
(:mod:`drready.openadr.profile`):

* :meth:`MakerCloud.register` — F6: the ven object (``venName`` = the client's VEN name), and
  one resource per unit named by its DeviceId string (``mode="units"``), or one resource named
  ``profile.GROUP_RESOURCE`` for the whole fleet (``mode="group"``, D6).
* :meth:`MakerCloud.poll_once` — reads the program's events (asking with its resource names as
  ``targets``, so that the VTN returns the events BL targeted at them and granted to this VEN,
  Definition.md "Targeting") and answers each once:

  - a potential-request event (F1) with ``profile.potential_report`` (the units it targets, all
    units when it has no targets; the group envelope in group mode);
  - a DR event (F2) targeting its resources with ``profile.plan_report`` (F3/F4): in units mode
    all new DR events of a poll are planned together (one
    :meth:`MakerFleet.apply_requests` call per set of events that share no unit), in group mode
    each is split over the units by :meth:`MakerFleet.group_request`;
  - during an answered DR event's window, ``profile.power_report`` (F5) at most every
    ``power_interval_s``.

  Events that do not follow the profile are logged and skipped, never retried. The events
  answered are remembered (and, on the first poll, recovered from the VEN's own reports on the
  VTN), so nothing is posted twice.
* :meth:`MakerCloud.run` — the polling loop; a VTN outage (network, 5xx) backs off
  exponentially up to ``max_backoff_s``.
* :func:`run_cloud` — what ``drready cloud serve --units N --vtn URL`` runs.

In group mode the fleet's power is summed into one resource (the same shape as
``profile.power_report``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from drready.cloud.fleet import DEFAULT_MAKER_CODE, GROUP_DEVICE_ID, MakerFleet
from drready.domain import DEFAULT_TZ, DrRequest
from drready.openadr import profile
from drready.openadr.models import (
    Event,
    Interval,
    IntervalPeriod,
    ReportCreate,
    ReportResource,
    ValuesMap,
)
from drready.openadr.ven import VenClient, VtnError, VtnUnavailableError, poll_loop

__all__ = ["TARGET_CHUNK", "MakerCloud", "Mode", "run_cloud"]

_log = logging.getLogger("drready.cloud")

Mode = Literal["units", "group"]
TARGET_CHUNK = 50
"""Resource names per events query (keeps the query string short for large fleets)."""


@dataclass
class _Dispatch:
    """An answered DR event whose window gets power reports."""

    event_id: str
    start: datetime
    end: datetime
    units: list[int]
    last_power: datetime | None = None


class MakerCloud:
    """A maker's cloud server acting as one VEN for its fleet.

    Parameters
    ----------
    fleet : MakerFleet
    ven : VenClient
    program_name : str
        The servicer's DR-ready program (``profile.PROGRAM_NAME``).
    mode : {"units", "group"}
        One resource per unit, or the fleet as one resource (D6).
    client_name : str, optional
        ``clientName`` of the reports; the VEN name by default.
    power_interval_s : float
        Least time between two power reports of one DR event [s].
    """

    def __init__(
        self,
        fleet: MakerFleet,
        ven: VenClient,
        *,
        program_name: str = profile.PROGRAM_NAME,
        mode: Mode = "units",
        client_name: str | None = None,
        power_interval_s: float = 60.0,
    ) -> None:
        if mode not in ("units", "group"):
            raise ValueError(f"mode must be 'units' or 'group', got {mode!r}")
        if power_interval_s <= 0:
            raise ValueError(f"power_interval_s must be > 0, got {power_interval_s}")
        self.fleet = fleet
        self.ven = ven
        self.program_name = program_name
        self.mode: Mode = mode
        self.client_name = client_name or ven.ven_name
        self.power_interval = timedelta(seconds=power_interval_s)
        self.program_id: str | None = None
        self.registered = False
        self._handled: set[str] = set()
        self._recovered = False
        self._dispatches: dict[str, _Dispatch] = {}
        self._stop = asyncio.Event()

    @property
    def resource_names(self) -> list[str]:
        """The resources this cloud offers."""
        return [profile.GROUP_RESOURCE] if self.mode == "group" else self.fleet.names

    # ------------------------------------------------------------------ F6
    async def register(self) -> list[str]:
        """Ensure the ven object and the resources (idempotent)."""
        ven = await self.ven.ensure_ven()
        rated = self.fleet.rated_inputs_kw()
        if self.mode == "group":
            attrs = {
                profile.GROUP_RESOURCE: profile.resource_attributes(
                    float(rated.sum()), self.fleet.size
                )
            }
        else:
            attrs = {
                name: profile.resource_attributes(float(rated[i]))
                for i, name in enumerate(self.fleet.names)
            }
        resources = await self.ven.ensure_resources(self.resource_names, attrs)
        self.registered = True
        return [f"registered ven {ven.ven_name!r} ({ven.id}) with {len(resources)} resource(s)"]

    # ------------------------------------------------------------------ polling
    async def _program_id(self) -> str | None:
        if self.program_id is None:
            program = await self.ven.program_by_name(self.program_name)
            self.program_id = None if program is None else program.id
        return self.program_id

    async def _events(self, program_id: str) -> list[Event]:
        names = self.resource_names
        found: dict[str, Event] = {}
        for i in range(0, len(names), TARGET_CHUNK):
            for ev in await self.ven.events(program_id, targets=names[i : i + TARGET_CHUNK]):
                found.setdefault(ev.id, ev)
        return sorted(found.values(), key=lambda e: (e.created_date_time, e.id))

    async def _recover(self, program_id: str) -> list[str]:
        """Mark the events this client already answered (a restart must not post twice)."""
        reports = await self.ven.reports(program_id=program_id, client_name=self.client_name)
        answered = {r.event_id for r in reports if r.report_name in ("potential", "plan")}
        self._handled |= answered
        self._recovered = True
        return [f"recovered {len(answered)} answered event(s)"] if answered else []

    async def poll_once(self, now: datetime) -> list[str]:
        """Read the program's events, answer the new ones, send due power reports.

        Returns a log of what was done (one line per action or skipped event).

        Raises
        ------
        VtnUnavailableError
            The VTN could not be reached (nothing was lost: unanswered events are answered on
            the next poll).
        """
        log: list[str] = []
        if not self.registered:
            log += await self.register()
        program_id = await self._program_id()
        if program_id is None:
            return [*log, f"program {self.program_name!r} not found on the VTN"]
        if not self._recovered:
            log += await self._recover(program_id)
        dr_events: list[Event] = []
        for event in await self._events(program_id):
            if event.id in self._handled:
                continue
            if profile.is_potential_request(event):
                log.append(await self._guard(event, self._answer_potential(event)))
            elif profile.is_dr_event(event):
                dr_events.append(event)
            else:
                self._handled.add(event.id)
                log.append(
                    f"event {event.id}: not a drready potential request or DR event, skipped"
                )
        if dr_events:
            log += await self._answer_dr(dr_events, now)
        log += await self._power_reports(now)
        return log

    async def _guard(self, event: Event, answer: Coroutine[Any, Any, str]) -> str:
        """Await ``answer``; a profile violation or a VTN refusal is logged and the event
        skipped for good; a VTN outage propagates (the event is answered on a later poll)."""
        try:
            line: str = await answer
        except VtnUnavailableError:
            raise
        except (ValueError, VtnError) as err:  # ProfileError and ValidationError included
            line = f"event {event.id}: skipped: {err}"
        self._handled.add(event.id)
        return line

    def _targeted_units(self, event: Event) -> list[int] | None:
        """Units mode: the targeted units (all when untargeted); None if none is ours."""
        if not event.targets:
            return list(range(self.fleet.size))
        units = [u for t in event.targets if (u := self.fleet.index_of(t)) is not None]
        return units or None

    def _targets_group(self, event: Event) -> bool:
        return not event.targets or profile.GROUP_RESOURCE in event.targets

    async def _answer_potential(self, event: Event) -> str:
        window = profile.event_window(event)
        if window is None:
            raise profile.ProfileError("intervalPeriod must give the window's start and duration")
        if self.mode == "group":
            if not self._targets_group(event):
                return f"event {event.id}: potential request not for {profile.GROUP_RESOURCE}"
            envelopes = [self.fleet.group_envelope(*window)]
        else:
            units = self._targeted_units(event)
            if units is None:
                return f"event {event.id}: potential request targets none of our units"
            envelopes = self.fleet.envelopes(*window, units)
        report = await self.ven.post_report(
            self._named(profile.potential_report(event, envelopes, self.client_name))
        )
        return f"event {event.id}: potential report {report.id} for {len(envelopes)} resource(s)"

    async def _answer_dr(self, events: list[Event], now: datetime) -> list[str]:
        log = []
        parsed: list[tuple[Event, DrRequest, list[int]]] = []
        for event in events:
            try:
                request = profile.request_from_event(event, issued_at=event.created_date_time)
            except ValueError as err:
                self._handled.add(event.id)
                log.append(f"event {event.id}: skipped: {err}")
                continue
            if self.mode == "group":
                if not event.targets or profile.GROUP_RESOURCE not in event.targets:
                    self._handled.add(event.id)
                    log.append(f"event {event.id}: DR event not for {profile.GROUP_RESOURCE}")
                    continue
                log.append(await self._guard(event, self._answer_group(event, request, now)))
                continue
            units = self._targeted_units(event) if event.targets else None
            if units is None:
                self._handled.add(event.id)
                log.append(f"event {event.id}: DR event without a target among our units, skipped")
                continue
            parsed.append((event, request, units))
        while parsed:  # rounds of events that share no unit, each planned at once
            batch, rest = [], []
            busy: set[int] = set()
            for item in parsed:
                if busy.isdisjoint(item[2]):
                    batch.append(item)
                    busy.update(item[2])
                else:
                    rest.append(item)
            requests = {u: req for _, req, units in batch for u in units}
            try:
                answers = self.fleet.apply_requests(requests, now)
            except ValueError as err:
                for event, _, _ in batch:
                    self._handled.add(event.id)
                    log.append(f"event {event.id}: skipped: {err}")
                parsed = rest
                continue
            for event, request, units in batch:
                plan_answers = [profile.PlanAnswer(*answers[u]) for u in units]
                log.append(
                    await self._guard(event, self._post_plan(event, request, plan_answers, units))
                )
            parsed = rest
        return log

    async def _post_plan(
        self,
        event: Event,
        request: DrRequest,
        answers: list[profile.PlanAnswer],
        units: list[int],
    ) -> str:
        report = await self.ven.post_report(
            self._named(profile.plan_report(event, answers, self.client_name))
        )
        accepted = sum(a.response.accepted_kwh for a in answers)
        if accepted > 0:
            self._dispatches[event.id] = _Dispatch(event.id, request.start, request.end, units)
        return (
            f"event {event.id}: plan report {report.id} for {len(answers)} resource(s), "
            f"{accepted:.3f} of {request.amount_kwh * len(answers):.3f} kWh accepted"
        )

    async def _answer_group(self, event: Event, request: DrRequest, now: datetime) -> str:
        outcome = self.fleet.group_request(request, now)
        answers = [profile.PlanAnswer(outcome.response, outcome.plan)]
        return await self._post_plan(event, request, answers, sorted(outcome.units))

    async def _power_reports(self, now: datetime) -> list[str]:
        log = []
        for d in list(self._dispatches.values()):
            if now >= d.end:
                del self._dispatches[d.event_id]
                continue
            if now < d.start or (
                d.last_power is not None and now - d.last_power < self.power_interval
            ):
                continue
            try:
                if self.mode == "group":
                    power_w, energy_kwh = self.fleet.group_power(now)
                    body = self._group_power_report(d.event_id, now, power_w, energy_kwh)
                else:
                    samples = self.fleet.power_samples(now, d.units)
                    body = profile.power_report(d.event_id, samples, self.client_name)
                report = await self.ven.post_report(body)
            except VtnUnavailableError:
                raise
            except (ValueError, VtnError) as err:
                log.append(f"event {d.event_id}: power report failed: {err}")
                del self._dispatches[d.event_id]
                continue
            d.last_power = now
            log.append(f"event {d.event_id}: power report {report.id} at {now.isoformat()}")
        return log

    def _group_power_report(
        self, event_id: str, at: datetime, power_w: float, energy_kwh: float
    ) -> ReportCreate:
        """``profile.power_report`` for the fleet resource (see the module docstring)."""
        shell = profile.power_report(event_id, [], self.client_name)  # descriptors: DIRECT_READ
        resource = ReportResource(
            resource_name=profile.GROUP_RESOURCE,
            intervals=(
                Interval(
                    id=0,
                    interval_period=IntervalPeriod(start=at, duration="PT0S"),
                    payloads=(
                        ValuesMap(type=profile.DEMAND, values=(round(power_w / 1000, 6),)),
                        ValuesMap(type=profile.READING, values=(round(energy_kwh, 6),)),
                    ),
                ),
            ),
        )
        return shell.model_copy(update={"resources": (resource,)})

    @staticmethod
    def _named(report: ReportCreate) -> ReportCreate:
        """The fleet group's resource under its profile name (``profile.GROUP_RESOURCE``)."""
        group = str(GROUP_DEVICE_ID)
        if not any(r.resource_name == group for r in report.resources):
            return report
        resources = tuple(
            r.model_copy(update={"resource_name": profile.GROUP_RESOURCE})
            if r.resource_name == group
            else r
            for r in report.resources
        )
        return report.model_copy(update={"resources": resources})

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

        A VTN outage doubles the wait, up to ``max_backoff_s``; the first successful poll
        resets it. Other VEN errors (e.g. refused credentials) are logged and retried at the
        same backed-off pace; nothing here ends the loop but :meth:`stop`.
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


def _default_day() -> date:
    """The day whose day-ahead grid contains now (from 23:00 it is tomorrow's)."""
    now = datetime.now(ZoneInfo(DEFAULT_TZ))
    return now.date() + timedelta(days=1 if now.hour >= 23 else 0)


def run_cloud(
    units: int,
    vtn_url: str,
    *,
    client_id: str,
    client_secret: str,
    ca_file: str | None,
    maker_code: str = DEFAULT_MAKER_CODE,
    mode: Mode = "units",
    day: date | None = None,
    seed: int = 0,
    interval_s: float = 10.0,
    ven_name: str | None = None,
    power_interval_s: float = 60.0,
    allow_insecure_http: bool = False,
    max_polls: int | None = None,
) -> None:
    """Run a maker cloud of ``units`` simulated units against the VTN at ``vtn_url``.

    For ``drready cloud serve --units N --vtn URL``: blocks, polling every ``interval_s``,
    until interrupted (Ctrl-C) or after ``max_polls`` polls. ``ca_file`` is the PEM CA the VTN's
    certificate must chain to (None: the system store); ``day`` defaults to the day whose
    day-ahead grid contains now; ``ven_name`` defaults to ``client_id``.

    Raises
    ------
    ValueError
        Bad arguments (``units`` < 1, a plain-HTTP URL without ``allow_insecure_http``, …).
    """
    if units < 1:
        raise ValueError(f"units must be ≥ 1, got {units}")
    fleet = MakerFleet.random(units, day or _default_day(), seed=seed, maker_code=maker_code)
    verify: str | bool = ca_file if ca_file is not None else True

    async def main() -> None:
        ven = VenClient(
            vtn_url,
            client_id,
            client_secret,
            verify=verify,
            ven_name=ven_name or client_id,
            allow_insecure_http=allow_insecure_http,
        )
        cloud = MakerCloud(fleet, ven, mode=mode, power_interval_s=power_interval_s)
        try:
            await cloud.run(interval_s, max_polls=max_polls)
        finally:
            await ven.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        _log.info("maker cloud stopped")
