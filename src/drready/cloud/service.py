"""The maker cloud as one OpenADR 3.1 VEN towards the DR servicer (route ii; F1–F6, C1, D6).

:class:`MakerCloud` joins a fleet — the live fleet of ``drready cloud serve``
(:class:`~drready.cloud.live.LiveFleet`, on the process clock with a rolling horizon) or the
day-ahead study fleet of the in-process demo (:class:`~drready.cloud.fleet.MakerFleet`), both
:class:`CloudFleet` — and a :class:`~drready.openadr.ven.VenClient` through the drready profile:
it is a thin shell (:class:`~drready.openadr.ven.PollingVen`) around the VEN core both routes
share (:class:`~drready.openadr.ven_core.VenCore`, where every decision is made — which events to
answer, once, in which rounds, when power is due, what survives a VTN outage or a restart; see
:mod:`drready.openadr.ven_core`). What is the cloud's own:

* :meth:`MakerCloud.register` — F6: the ven object (``venName`` = the client's VEN name), and
  one resource per unit named by its DeviceId string (``mode="units"``), or one resource named
  after its maker, ``profile.group_resource`` (``FLEET-<maker code>``), for the whole fleet
  (``mode="group"``, D6), rated with ``profile.resource_attributes``. Units are registered in
  batches of :data:`REGISTER_BATCH` (:data:`REGISTER_CONCURRENCY` requests in flight), as many
  batches per poll as fit in :data:`REGISTER_BUDGET_S`: a large fleet answers events for the
  units already registered while the rest follow.
* The work the core asks for, done on the fleet's arrays (:meth:`MakerCloud._work`), in a worker
  thread so that the event loop stays free (signals, connections) while a large fleet plans:

  - potential (F1): :meth:`CloudFleet.envelopes` of the targeted units, or the group envelope
    (:meth:`CloudFleet.group_envelope`) in group mode;
  - a round of DR events that share no unit (F2–F4): one :meth:`CloudFleet.apply_requests`
    call for the whole round, or :meth:`CloudFleet.group_request` in group mode, which splits
    the group's request over the units;
  - power (F5): :meth:`CloudFleet.power_samples` of the units asked, or the fleet's summed
    power (:meth:`CloudFleet.group_power`) as the group resource's sample.

  A window or request the fleet cannot plan (``ValueError``) skips the events concerned with
  the reason.
* Every poll first lets the fleet roll (:meth:`CloudFleet.advance`): at each 30-minute slot
  boundary the live fleet settles the slot that ended and re-plans on its rolling horizon.
* :meth:`MakerCloud.run` — the polling loop (:func:`~drready.openadr.ven.poll_loop`) on the
  cloud's clock: the poll interval and the back-off are simulated seconds, waited as
  ``clock.wall_seconds(…)`` wall seconds (a :class:`~drready.domain.clock.ScaledClock` runs them
  N× faster), the F5 cadence is compared on the same clock; a VTN outage (network, 5xx) backs
  off exponentially up to ``max_backoff_s``.
* :func:`run_cloud` — what ``drready cloud serve --units N --vtn URL`` runs: the live fleet on
  the process clock; SIGTERM or SIGINT lets the current poll finish (at most
  :data:`STOP_GRACE_S`; a poll cut short is one the VEN core already survives, as a VTN
  outage), then it returns.

Amounts: a DR event's kW becomes the request's kWh once, in ``profile.request_from_event``; the
fleet plans in kWh and the plan report carries kWh per slot — no other conversion on this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from drready.cloud.fleet import DEFAULT_MAKER_CODE, GROUP_DEVICE_ID, GroupOutcome, UnitAnswer
from drready.cloud.live import LiveFleet
from drready.device.status import PartyStatus, write_status
from drready.domain import DeviceId, DrRequest, FlexibilityEnvelope, PowerSample, PowerSource
from drready.domain.clock import Clock, ScaledClock, WallClock, clock_from_env
from drready.openadr import profile
from drready.openadr import ven_core as vc
from drready.openadr.push import PushOptions, start_push_or_poll
from drready.openadr.ven import PollingVen, VenClient
from drready.planning.tariff import NIGHT_TOU, Tariff

__all__ = [
    "MIN_POLL_WALL_S",
    "REGISTER_BATCH",
    "REGISTER_BUDGET_S",
    "REGISTER_CONCURRENCY",
    "SLOW_POLL_S",
    "STOP_GRACE_S",
    "CloudFleet",
    "MakerCloud",
    "Mode",
    "run_cloud",
    "wall_seconds",
]

_log = logging.getLogger("drready.cloud")

Mode = Literal["units", "group"]

REGISTER_BATCH: Final = 2000
"""Resources registered in one go (units mode); a poll registers batch after batch until
:data:`REGISTER_BUDGET_S` has passed, then the poll goes on."""
REGISTER_BUDGET_S: Final = 20.0
"""Wall seconds a poll spends registering (units mode) before it reads the events of the units
registered so far. A poll reads the events of every registered unit (2 000 queries at 100 000
units): polling after every batch of 2 000 made registering a fleet quadratic in its size (at
100 000 units it had not finished after 8 minutes); with the budget a 100 000-unit fleet polls
about a dozen times while it registers, and units registered early still answer events within
the budget plus one poll."""
REGISTER_CONCURRENCY: Final = 8
"""Registration requests in flight at once, on httpx's pooled keep-alive connections: enough
for the VTN's workers to commit them in groups; more cost the cloud more CPU per request than
they gain (httpcore's pool scans its connections for every request queued: ~2.3 ms of the
cloud's CPU per resource at 16, ~1.6 ms at 8, measured with benchmarks/register_rate.py)."""
SLOW_POLL_S: Final = 1.0
"""A poll taking this long [wall s] or longer is logged with its duration (a large fleet's
registration, roll or potential shows in the log)."""
STOP_GRACE_S: Final = 7.0
"""How long SIGTERM/SIGINT waits for the poll under way to finish [wall s] before cutting it
short (a large fleet in units mode polls for longer): the cloud exits within 10 s."""
MIN_POLL_WALL_S: Final = 0.1
"""Shortest wait between two polls on a scaled clock [wall s]: at 720× a 10 s interval would
be 14 ms, and the cloud would become a load test of its VTN; a poll every 0.1 s is every 72
simulated seconds there, still more often than the F5 cadence of a minute needs."""


class CloudFleet(Protocol):
    """What :class:`MakerCloud` asks of a fleet (:class:`~drready.cloud.live.LiveFleet`,
    :class:`~drready.cloud.fleet.MakerFleet`)."""

    @property
    def size(self) -> int: ...

    @property
    def names(self) -> list[str]: ...

    def index_of(self, name: str) -> int | None: ...

    def rated_inputs_kw(self) -> npt.NDArray[np.float64]: ...

    def advance(self, now: datetime | None = None) -> str | None:
        """Move the fleet's state to ``now`` (a log line if it rolled)."""
        ...

    def envelopes(
        self, start: datetime, end: datetime, units: list[int] | None = None
    ) -> list[FlexibilityEnvelope]: ...

    def group_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope: ...

    def apply_requests(
        self, requests: dict[int, DrRequest], now: datetime | None = None
    ) -> dict[int, UnitAnswer]: ...

    def group_request(self, request: DrRequest, now: datetime | None = None) -> GroupOutcome: ...

    def power_samples(self, at: datetime, units: list[int] | None = None) -> list[PowerSample]: ...

    def group_power(self, at: datetime) -> tuple[float, float]: ...


def wall_seconds(clock: Clock | None, sim_seconds: float) -> float:
    """Wall seconds to wait for ``sim_seconds`` of ``clock``'s time: ``clock.wall_seconds`` for
    the process clocks (:class:`WallClock`, :class:`ScaledClock`), the same otherwise (a stepped
    :class:`~drready.domain.clock.SimClock` moves only when told)."""
    if isinstance(clock, WallClock | ScaledClock):
        return clock.wall_seconds(sim_seconds)
    return sim_seconds


def _maker_code(fleet: CloudFleet) -> str:
    """The maker code of ``fleet``'s units (every unit of a cloud is its maker's), the default
    maker's for an empty fleet."""
    names = fleet.names
    return DeviceId.parse(names[0]).maker_code if names else DEFAULT_MAKER_CODE


class MakerCloud(PollingVen):
    """A maker's cloud server acting as one VEN for its fleet.

    Parameters
    ----------
    fleet : CloudFleet
        :class:`~drready.cloud.live.LiveFleet` (``drready cloud serve``) or
        :class:`~drready.cloud.fleet.MakerFleet` (the in-process demo).
    ven : VenClient
    program_name : str
        The servicer's DR-ready program (``profile.PROGRAM_NAME``).
    mode : {"units", "group"}
        One resource per unit, or the fleet as one resource (D6).
    client_name : str, optional
        ``clientName`` of the reports; the VEN name by default.
    power_interval_s : float
        Least time between two power reports of one DR event [s of the events' clock].
    clock : Clock, optional
        The cloud's clock: :meth:`run` polls on it (``now``) and paces its waits by it
        (:func:`wall_seconds`). The wall clock in :data:`~drready.domain.DEFAULT_TZ` if None.
    """

    def __init__(
        self,
        fleet: CloudFleet,
        ven: VenClient,
        *,
        program_name: str = profile.PROGRAM_NAME,
        mode: Mode = "units",
        client_name: str | None = None,
        power_interval_s: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if mode not in ("units", "group"):
            raise ValueError(f"mode must be 'units' or 'group', got {mode!r}")
        if power_interval_s <= 0:
            raise ValueError(f"power_interval_s must be > 0, got {power_interval_s}")
        self.group_name = profile.group_resource(_maker_code(fleet))
        """The group resource's name in group mode (``FLEET-<maker code>``, D6)."""
        core = vc.VenCore(
            client_name or ven.ven_name,
            power_interval=timedelta(seconds=power_interval_s),
            group=self.group_name if mode == "group" else None,
        )
        super().__init__(ven, core, program_name=program_name, log=_log)
        self.fleet = fleet
        self.mode: Mode = mode
        self.power_interval = core.power_interval
        self.clock = clock
        self._registered_names: list[str] = []
        self._to_register: deque[str] | None = None
        self.after_poll: Callable[[], None] | None = None
        """Called after every poll (``drready cloud serve --status-file``)."""

    @property
    def resource_names(self) -> list[str]:
        """The resources this cloud offers (in units mode: those registered so far)."""
        if self.mode == "group":
            return [self.group_name]
        return self._registered_names if self._to_register is not None else self.fleet.names

    @property
    def windows_answered(self) -> Mapping[str, vc.PowerWindow]:
        """The DR windows this cloud answered since it started and still reports power in, by
        event id (windows resumed from its own reports after a restart are left out)."""
        return {k: w for k, w in self.core.windows.items() if not w.resumed}

    # ------------------------------------------------------------------ F6
    async def register(self) -> list[str]:
        """Ensure the ven object and the resources (idempotent).

        Group mode: the one group resource. Units mode: the first call lists the resources the
        VTN already has for this VEN; each call (one per poll, while :meth:`_needs_register`)
        registers the missing ones in batches of :data:`REGISTER_BATCH`,
        :data:`REGISTER_CONCURRENCY` requests at a time, until they are all registered or the
        call has taken :data:`REGISTER_BUDGET_S` (a batch begun is finished).
        """
        ven = await self.ven.ensure_ven()
        rated = self.fleet.rated_inputs_kw()
        if self.mode == "group":
            attrs = {
                self.group_name: profile.resource_attributes(float(rated.sum()), self.fleet.size)
            }
            resources = await self.ven.ensure_resources(self.resource_names, attrs)
            self.registered = True
            return [f"registered ven {ven.ven_name!r} ({ven.id}) with {len(resources)} resource(s)"]
        names = self.fleet.names
        if self._to_register is None:
            existing = {r.resource_name for r in await self.ven.resources()}
            self._registered_names = [n for n in names if n in existing]
            self._to_register = deque(n for n in names if n not in existing)
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

        async def one(name: str) -> None:
            u = self.fleet.index_of(name)
            attributes = profile.resource_attributes(float(rated[u])) if u is not None else None
            async with gate:  # missing when listed: POST at once (409: found, not an error)
                await self.ven.create_resource(name, attributes)

        started = time.perf_counter()
        added = 0
        while self._to_register:
            batch = [
                self._to_register.popleft()
                for _ in range(min(REGISTER_BATCH, len(self._to_register)))
            ]
            try:
                await asyncio.gather(*(one(n) for n in batch))
            except BaseException:
                self._to_register.extendleft(reversed(batch))  # create_resource is idempotent
                raise
            self._registered_names += batch
            added += len(batch)
            if time.perf_counter() - started >= REGISTER_BUDGET_S:
                break
        done = not self._to_register
        self.registered = done
        return [
            f"registered ven {ven.ven_name!r} ({ven.id}): {len(self._registered_names)} of "
            f"{len(names)} resource(s)"
            + ("" if done else f", {len(self._to_register)} to go")
            + f" ({added} in {time.perf_counter() - started:.2f} s)"
        ]

    # ------------------------------------------------------------------ the core's work
    def _units(self, names: tuple[str, ...]) -> list[int]:
        """Unit indices of resource names (the core asks only for the names it was given)."""
        return [u for n in names if (u := self.fleet.index_of(n)) is not None]

    async def poll_once(self, now: datetime) -> list[str]:
        """Let the fleet roll to ``now`` (a re-plan at each slot boundary), then poll
        (:meth:`PollingVen.poll_once`). A poll that takes :data:`SLOW_POLL_S` or more says so."""
        started = time.perf_counter()
        rolled = await asyncio.to_thread(self.fleet.advance, now)
        log = ([rolled] if rolled else []) + await super().poll_once(now)
        if self.after_poll is not None:
            self.after_poll()
        took = time.perf_counter() - started
        if took >= SLOW_POLL_S:
            log.append(f"poll of {len(self.resource_names)} resource(s) took {took:.2f} s")
        return log

    async def _work(self, action: vc.UnitWork) -> vc.Input:
        return await asyncio.to_thread(self._work_now, action)

    def _work_now(self, action: vc.UnitWork) -> vc.Input:
        try:
            if isinstance(action, vc.AskPotential):
                return self._potential(action)
            if isinstance(action, vc.ApplyRequests):
                return self._apply(action)
        except ValueError as err:  # a window or request the fleet cannot plan
            return vc.WorkFailed(str(err))
        return self._power(action)

    def _potential(self, action: vc.AskPotential) -> vc.PotentialGiven:
        if self.mode == "group":
            envelopes = [self.fleet.group_envelope(action.start, action.end)]
        else:
            envelopes = self.fleet.envelopes(action.start, action.end, self._units(action.targets))
        return vc.PotentialGiven(action.event_id, tuple(envelopes))

    def _apply(self, action: vc.ApplyRequests) -> vc.RequestsAnswered:
        if self.mode == "group":  # one resource: every round is one event
            answers = {}
            for ask in action.asks:
                outcome = self.fleet.group_request(ask.request, action.now)
                plan = profile.PlanAnswer(outcome.response, outcome.plan)
                answers[ask.event_id] = (vc.UnitAnswer(plan),)
            return vc.RequestsAnswered(answers)
        units = {ask.event_id: self._units(ask.targets) for ask in action.asks}
        requests = {u: ask.request for ask in action.asks for u in units[ask.event_id]}
        planned = self.fleet.apply_requests(requests, action.now)
        return vc.RequestsAnswered(
            {
                event_id: tuple(vc.UnitAnswer(profile.PlanAnswer(*planned[u])) for u in idx)
                for event_id, idx in units.items()
            }
        )

    def _power(self, action: vc.SamplePower) -> vc.PowerSampled:
        if self.mode == "group":
            try:
                power_w, energy_kwh = self.fleet.group_power(action.now)
            except ValueError as err:  # the fleet rolled past ``now`` meanwhile: next time
                return vc.PowerSampled({}, {name: str(err) for name in action.targets})
            sample = PowerSample(
                device_id=GROUP_DEVICE_ID,
                timestamp=action.now,
                power_w=power_w,
                cumulative_energy_kwh=energy_kwh,
                source=PowerSource.MEASURED,
            )
            return vc.PowerSampled({self.group_name: sample})
        try:
            samples = self.fleet.power_samples(action.now, self._units(action.targets))
        except ValueError as err:  # outside the fleet's grid: no sample this time
            return vc.PowerSampled({}, {name: str(err) for name in action.targets})
        return vc.PowerSampled({str(s.device_id): s for s in samples})

    # ------------------------------------------------------------------ loop
    async def run(
        self,
        interval_s: float = 10.0,
        *,
        now: Callable[[], datetime] | None = None,
        max_backoff_s: float = 300.0,
        max_polls: int | None = None,
    ) -> None:
        """Poll every ``interval_s`` of the cloud's clock until :meth:`stop` (or ``max_polls``
        polls); see :meth:`PollingVen.run`. ``now`` defaults to the cloud's clock; the waits
        are its wall seconds (:func:`wall_seconds`), on a scaled clock at least
        :data:`MIN_POLL_WALL_S`."""
        clock = self.clock
        wait_s = wall_seconds(clock, interval_s)
        if isinstance(clock, ScaledClock):
            wait_s = max(wait_s, MIN_POLL_WALL_S)
        await super().run(
            wait_s,
            now=now or (clock.now if clock is not None else None),
            max_backoff_s=wall_seconds(clock, max_backoff_s),
            max_polls=max_polls,
        )


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as SIGINT does) while the block runs in the main
    thread: a stop before the event loop takes over the signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cloud(
    units: int,
    vtn_url: str,
    *,
    client_id: str,
    client_secret: str,
    ca_file: str | None,
    maker_code: str = DEFAULT_MAKER_CODE,
    mode: Mode = "units",
    seed: int = 0,
    interval_s: float = 10.0,
    ven_name: str | None = None,
    power_interval_s: float = 60.0,
    allow_insecure_http: bool = False,
    max_polls: int | None = None,
    clock: Clock | None = None,
    tariff: Tariff = NIGHT_TOU,
    status_file: Path | None = None,
    confidence: float = 0.95,
    push: PushOptions | None = None,
    learning: bool = False,
) -> None:
    """Run a maker cloud of ``units`` simulated units against the VTN at ``vtn_url``.

    For ``drready cloud serve --units N --vtn URL``: a :class:`~drready.cloud.live.LiveFleet`
    on ``clock`` (the process clock, :func:`~drready.domain.clock.clock_from_env`, if None),
    polling every ``interval_s`` of that clock, until SIGTERM or SIGINT (the poll under way
    finishes first, cut short after :data:`STOP_GRACE_S`; during the fleet's start-up it stops
    at once) or after ``max_polls`` polls. ``ca_file`` is the PEM CA the VTN's
    certificate must chain to (None: the system store); ``ven_name`` defaults to
    ``client_id``. ``tariff`` is the households' (what the units plan on), ``confidence`` the
    level of the potential they declare and keep a reserve for (E1). With
    ``status_file`` the fleet carries a no-DR twin and the file keeps its shortage counters
    (:class:`~drready.device.status.PartyStatus`: after every poll from the fleet's arrays, and
    once more at the stop). With ``push`` (webhook or MQTT, :mod:`drready.openadr.push`) the
    events are pushed and read from the VTN only every ``push.safety_poll_s``; the loop still
    ticks every ``interval_s`` for the power reports. With ``learning`` the units forecast
    from their households' own past use (:class:`~drready.cloud.live.LiveFleet`'s).

    Raises
    ------
    ValueError
        Bad arguments (``units`` < 1, a plain-HTTP URL without ``allow_insecure_http``, a bad
        ``DRREADY_CLOCK``, …).
    """
    if units < 1:
        raise ValueError(f"units must be ≥ 1, got {units}")
    clock = clock_from_env() if clock is None else clock
    verify: str | bool = ca_file if ca_file is not None else True
    ven = VenClient(  # checks the URL and the credentials before the fleet is built
        vtn_url,
        client_id,
        client_secret,
        verify=verify,
        ven_name=ven_name or client_id,
        allow_insecure_http=allow_insecure_http,
    )
    try:
        with _stop_on_sigterm():  # the start-up of a large fleet takes a while
            fleet = LiveFleet.random(
                units,
                clock,
                seed=seed,
                maker_code=maker_code,
                tariff=tariff,
                no_dr_twin=status_file is not None,
                confidence=confidence,
                learning=learning,
            )
    except KeyboardInterrupt:
        _log.info("maker cloud stopped during its start-up")
        return
    _log.info(
        "maker cloud: %d unit(s) ready in %.1f s, state at %s",
        units,
        fleet.timing.start_up_s,
        fleet.at.isoformat(),
    )

    def keep_status(final: bool = False) -> None:
        if status_file is not None:
            count = fleet.shortage_count(advance=False)  # the arrays as they are: no roll
            write_status(
                status_file,
                PartyStatus(
                    party="cloud",
                    at=count.at,
                    units=count.units,
                    shortage_steps=count.shortage_steps,
                    twin_shortage_steps=count.twin_shortage_steps,
                    dr_caused_shortages=count.dr_caused,
                    final=final,
                ),
            )

    async def main() -> None:
        cloud = MakerCloud(fleet, ven, mode=mode, power_interval_s=power_interval_s, clock=clock)
        cloud.after_poll = keep_status
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        stops = 0

        def cut_short() -> None:
            if task is not None and not task.done():
                _log.info("maker cloud stopping without waiting for the poll")
                fleet.interrupt()  # a large fleet's computation ends at its next chunk
                task.cancel()

        def on_signal() -> None:
            nonlocal stops
            stops += 1
            if stops == 1:
                _log.info("maker cloud stopping after the current poll")
                cloud.stop()
                loop.call_later(STOP_GRACE_S, cut_short)
            else:  # a second signal: do not wait for the poll
                cut_short()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        stop_push = None
        try:
            if push is not None:
                stop_push = await start_push_or_poll(cloud, ven, push)
            await cloud.run(interval_s, max_polls=max_polls)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if stop_push is not None:
                await stop_push.stop()
            await ven.close()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(main())
    keep_status(final=True)
    _log.info("maker cloud stopped")
