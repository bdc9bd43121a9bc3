"""The maker cloud as one OpenADR 3.1 VEN towards the DR servicer (route ii; F1–F6, C1, D6).

:class:`MakerCloud` joins a :class:`~drready.cloud.fleet.MakerFleet` and a
:class:`~drready.openadr.ven.VenClient` through the drready profile: it is a thin shell
(:class:`~drready.openadr.ven.PollingVen`) around the VEN core both routes share
(:class:`~drready.openadr.ven_core.VenCore`, where every decision is made — which events to
answer, once, in which rounds, when power is due, what survives a VTN outage or a restart; see
:mod:`drready.openadr.ven_core`). What is the cloud's own:

* :meth:`MakerCloud.register` — F6: the ven object (``venName`` = the client's VEN name), and
  one resource per unit named by its DeviceId string (``mode="units"``), or one resource named
  ``profile.GROUP_RESOURCE`` for the whole fleet (``mode="group"``, D6), rated with
  ``profile.resource_attributes``.
* The work the core asks for, done on the fleet's arrays (:meth:`MakerCloud._work`):

  - potential (F1): :meth:`MakerFleet.envelopes` of the targeted units, or the group envelope
    (:meth:`MakerFleet.group_envelope`) in group mode;
  - a round of DR events that share no unit (F2–F4): one :meth:`MakerFleet.apply_requests`
    call for the whole round, or :meth:`MakerFleet.group_request` in group mode, which splits
    the group's request over the units;
  - power (F5): :meth:`MakerFleet.power_samples` of the units asked, or the fleet's summed
    power (:meth:`MakerFleet.group_power`) as the group resource's sample.

  A window or request the fleet cannot plan (``ValueError``) skips the events concerned with
  the reason.
* :meth:`MakerCloud.run` — the polling loop (:func:`~drready.openadr.ven.poll_loop`); a VTN
  outage (network, 5xx) backs off exponentially up to ``max_backoff_s``.
* :func:`run_cloud` — what ``drready cloud serve --units N --vtn URL`` runs.

Amounts: a DR event's kW becomes the request's kWh once, in ``profile.request_from_event``; the
fleet plans in kWh and the plan report carries kWh per slot — no other conversion on this path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from drready.cloud.fleet import DEFAULT_MAKER_CODE, GROUP_DEVICE_ID, MakerFleet
from drready.domain import DEFAULT_TZ, PowerSample, PowerSource
from drready.openadr import profile
from drready.openadr import ven_core as vc
from drready.openadr.ven import PollingVen, VenClient

__all__ = ["MakerCloud", "Mode", "run_cloud"]

_log = logging.getLogger("drready.cloud")

Mode = Literal["units", "group"]


class MakerCloud(PollingVen):
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
        core = vc.VenCore(
            client_name or ven.ven_name,
            power_interval=timedelta(seconds=power_interval_s),
            group=mode == "group",
        )
        super().__init__(ven, core, program_name=program_name, log=_log)
        self.fleet = fleet
        self.mode: Mode = mode
        self.power_interval = core.power_interval

    @property
    def resource_names(self) -> list[str]:
        """The resources this cloud offers."""
        return [profile.GROUP_RESOURCE] if self.mode == "group" else self.fleet.names

    @property
    def windows_answered(self) -> Mapping[str, vc.PowerWindow]:
        """The DR windows this cloud answered since it started and still reports power in, by
        event id (windows resumed from its own reports after a restart are left out)."""
        return {k: w for k, w in self.core.windows.items() if not w.resumed}

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

    # ------------------------------------------------------------------ the core's work
    def _units(self, names: tuple[str, ...]) -> list[int]:
        """Unit indices of resource names (the core asks only for the names it was given)."""
        return [u for n in names if (u := self.fleet.index_of(n)) is not None]

    async def _work(self, action: vc.UnitWork) -> vc.Input:
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
            power_w, energy_kwh = self.fleet.group_power(action.now)
            sample = PowerSample(
                device_id=GROUP_DEVICE_ID,
                timestamp=action.now,
                power_w=power_w,
                cumulative_energy_kwh=energy_kwh,
                source=PowerSource.MEASURED,
            )
            return vc.PowerSampled({profile.GROUP_RESOURCE: sample})
        try:
            samples = self.fleet.power_samples(action.now, self._units(action.targets))
        except ValueError as err:  # outside the fleet's grid: no sample this time
            return vc.PowerSampled({}, {name: str(err) for name in action.targets})
        return vc.PowerSampled({str(s.device_id): s for s in samples})


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
