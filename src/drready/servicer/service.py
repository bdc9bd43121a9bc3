"""The DR servicer's business loop over OpenADR 3.1: potential, dispatch, follow-up (U2, D3, D5).

:class:`Servicer` is the aggregator's BL. Every step goes through its VTN with the
:class:`~drready.servicer.bl.BlClient` and the drready profile (:mod:`drready.openadr.profile`),
so the resources of both routes — home gateways (route i) and maker clouds (route ii) — are
reached the same way; every decision and every answer is written to the servicer's store
(:class:`~drready.servicer.storage.store.ServicerStore`) before the next step, so a servicer
killed at any point resumes from its database and the VTN:

1. :meth:`Servicer.sync_resources` — reads the VENs and resources from the VTN into the
   registry (route from the VEN's client id; unknown clients count as route ii), grants every
   resource its own name as a target (so DR events targeted at it reach its VEN), marks the
   resources that left the VTN offline.
2. :meth:`Servicer.ask_potential` — one potential-request event for a window (no targets: every
   VEN answers for all its resources); :meth:`Servicer.collect_potential` stores the envelopes
   of each new report once and adds them up (:func:`drready.servicer.core.portfolio.aggregate`),
   naming the resources that did not answer.
3. :meth:`Servicer.dispatch` — a target is split over the resources that answered, within
   their declared potential (:mod:`drready.servicer.core.dispatch`: HiGHS, equal utilisation as
   the fairness rule); one DR event per resource (F2; the amounts differ, so the events do).
   The assignments are stored *before* their events are created and each event is named after
   its assignment, so a crash in between finds the event instead of sending a second one.
   :meth:`Servicer.dispatch_start_time` — F2 by heating start time alone (profile OA-F2-2,
   issue 17): one up-DR event per resource that declared up potential in the window, with
   ``CONTROL_LEVEL_OFFSET`` and no amount; each unit heats from the start what its plan allows
   and answers with that amount. The assignment records the resource's declared up potential
   as what is expected of it (an answer above it is counted up to it); there is no target, so
   nothing is re-dispatched.
4. :meth:`Servicer.follow_up` — reads the plan reports (F3/F4) of the events sent and records
   each answer once; declares an event *silent* when no answer came within
   ``response_timeout`` (and deletes it, so that a late VEN does not act on it; a late answer is
   still stored, flagged, and not counted); marks the resources whose VEN went silent offline;
   and when every assignment of the last round is answered, re-dispatches what is missing —
   rejected, partial and silent amounts — to the other resources within what they have left, as
   the next round, until it is covered, nobody has anything left or ``max_rounds`` is reached
   (D3: no operator action).
5. :meth:`Servicer.collect_power` — F5 power reports of the events, stored per resource
   (a reading stored twice is stored once).

Trust no peer (S1; issue 12 item 2): every report read is attributed to the VEN that posted
it — its ``clientID`` (stamped by the VTN from the token) must own, in the registry, the
resource it speaks for; a plan or power report must answer an event the servicer created for
that resource; its values must be finite and within what the resource's rating can do. Anything
else is set aside in the quarantine (:mod:`drready.servicer.storage.quarantine`) with its
reason and never raised: one VEN's malformed or hostile report, or a resource the registry
refuses or named like another VEN's (the name registered first keeps it), never stops a step
for the others. None of this relies on the VTN's own checks.

Time is whatever ``clock`` says (simulated in the demo), never wall time.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from drready.domain import (
    DEFAULT_TZ,
    SLOT,
    SLOT_HOURS,
    Direction,
    DrRequest,
    DrResponse,
    FlexibilityEnvelope,
    HeatingPlan,
    PowerSample,
    ResponseStatus,
)
from drready.domain.requests import START_TIME_WINDOW
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import Event, Report, Resource, ValuesMap
from drready.openadr.ven import VtnError
from drready.servicer.bl import BlClient
from drready.servicer.core.dispatch import (
    EnergyTarget,
    PowerTarget,
    PriceTarget,
    ResourcePotentials,
    dispatch,
    redispatch,
)
from drready.servicer.core.portfolio import AskedResource, PortfolioPotential, aggregate
from drready.servicer.storage.db import QuarantineReason, ResourceKind, ResourceState, VenRoute
from drready.servicer.storage.dispatches import AssignmentRecord, DispatchRecord, ResponseOutcome
from drready.servicer.storage.lifecycle import AssignmentStatus, DispatchStatus
from drready.servicer.storage.potentials import PotentialInput, PotentialRequestRecord
from drready.servicer.storage.registry import ResourceRecord
from drready.servicer.storage.store import ServicerStore

__all__ = ["ISSUER", "START_TIME_KIND", "Servicer", "TargetShare", "is_start_time"]

_log = logging.getLogger("drready.servicer")

ISSUER = "dr-servicer"
DispatchTarget = EnergyTarget | PowerTarget | PriceTarget
ASSUMED_RATED_KW = 1.5
"""Rating assumed per unit for a resource that declares none (a CO2 heat pump's electric
input at rated output is about 1–1.5 kW)."""
#: Requested amounts are kept to 1e-6 kWh (``ENERGY_TOL_KWH``): finer digits are solver noise.
_AMOUNT_DECIMALS = 6
#: Statuses of an assignment that leave part of its amount to re-dispatch.
_SHORT = (AssignmentStatus.PARTIAL, AssignmentStatus.REJECTED, AssignmentStatus.SILENT)
#: Statuses still waiting for an event to go out or be answered.
_AWAITING = (AssignmentStatus.PENDING, AssignmentStatus.SENT)
#: Statuses whose event is out and may be answered (late, for a silent one).
_ASKED = (AssignmentStatus.SENT, AssignmentStatus.SILENT)
#: Statuses of an answer that commits an amount.
_COMMITTED = (AssignmentStatus.ACCEPTED, AssignmentStatus.PARTIAL)
#: Outcomes of :meth:`ServicerStore.record_response` that changed the assignment.
_CHANGED = (ResponseOutcome.RECORDED, ResponseOutcome.LATE, ResponseOutcome.REVISED)
#: What decoding a peer's report or resource may raise: the profile's and pydantic's
#: ``ValueError`` and what a payload of the wrong shape raises (a missing type, a bad value).
_DECODE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, ArithmeticError)
PLAUSIBLE_RATING_FACTOR = 2.0
"""How far beyond its rating a resource's declared energy or reported power may go before it is
set aside as implausible: margin for a rating that is assumed (:data:`ASSUMED_RATED_KW`) or
declared low; a value above it is a fault or a lie, not a heat pump."""


@dataclass(frozen=True)
class _Owner:
    """Who owns a resource in the registry: its id, its VEN's client id, its rating [kW]."""

    resource_id: str
    client_id: str | None
    rated_power_kw: float


@dataclass(frozen=True)
class TargetShare:
    """A dispatch's figures: what was set out, accepted, awaited and still missing [kWh]."""

    target_kwh: float
    accepted_kwh: float
    awaiting_kwh: float
    rounds: int

    @property
    def shortfall_kwh(self) -> float:
        return max(self.target_kwh - self.accepted_kwh - self.awaiting_kwh, 0.0)


def _target_energy_kwh(target: DispatchTarget, start: datetime, end: datetime) -> float:
    """The energy a target asks for over the window [kWh] (0 for a price target: the plan
    decides how much is worth it)."""
    if isinstance(target, EnergyTarget):
        return float(target.energy_kwh)
    if isinstance(target, PowerTarget):
        n = round((end - start) / SLOT)
        return float(target.per_slot_kw(n).sum() * SLOT_HOURS)
    return 0.0


START_TIME_KIND = "start_time"
"""``target["spec"]["kind"]`` of a dispatch by heating start time alone (its ``target_kind``
column stays ``energy`` with ``energy_kwh`` 0: no energy is asked)."""


def is_start_time(record: DispatchRecord) -> bool:
    """Whether ``record`` is a dispatch by heating start time alone (events without amount)."""
    target = record.target if isinstance(record.target, dict) else {}
    spec = target.get("spec")
    return isinstance(spec, dict) and spec.get("kind") == START_TIME_KIND


def _plan_answers(
    report: Report, a: AssignmentRecord, record: DispatchRecord
) -> list[profile.PlanAnswer]:
    """The answers a plan report (F3/F4) gives to assignment ``a``'s event (a ``ProfileError``
    or ``ValueError`` if it does not follow the profile).

    Decoding needs two things of the event: its name (``a.event_name``: the request id an
    accepting plan honours) and the amount it carried (``a.requested_kwh`` as kW rounded on the
    wire over the dispatch's window, which caps what an answer may accept; none for an event by
    start time alone, which carried no amount).
    """
    start, end = record.window_start, record.window_end
    return profile.plan_answers(
        report,
        request_id=a.event_name,
        requested_kwh=None
        if is_start_time(record)
        else profile.event_amount_kwh(a.requested_kwh, start, end),
    )


class Servicer:
    """The DR servicer's BL (see the module docstring).

    Parameters
    ----------
    bl : BlClient
        The BL client of the servicer's VTN.
    store : ServicerStore
        The servicer's database (registry, dispatches, answers, readings).
    clock : callable
        The current instant (timezone-aware).
    routes : mapping
        VEN client id → ``"gateway"`` (route i) or ``"cloud"`` (route ii).
    response_timeout : timedelta
        How long a DR event may go unanswered before it is declared silent and re-dispatched.
    max_rounds : int
        Dispatch rounds per dispatch, the first included.
    min_request_kwh : float
        Smallest amount worth a DR request [kWh].
    """

    def __init__(
        self,
        bl: BlClient,
        store: ServicerStore,
        *,
        clock: Callable[[], datetime],
        routes: Mapping[str, str] | None = None,
        response_timeout: timedelta = timedelta(minutes=5),
        max_rounds: int = 3,
        min_request_kwh: float = 0.01,
    ) -> None:
        if response_timeout <= timedelta(0):
            raise ValueError(f"response_timeout must be > 0, got {response_timeout}")
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be ≥ 1, got {max_rounds}")
        if not min_request_kwh > 0:
            raise ValueError(f"min_request_kwh must be > 0, got {min_request_kwh}")
        self.bl = bl
        self.store = store
        self.registry = store.registry()
        self.clock = clock
        self.routes = dict(routes or {})
        self.response_timeout = response_timeout
        self.max_rounds = max_rounds
        self.min_request_kwh = min_request_kwh
        self.program_id: str | None = None
        #: Standard-only units (``DRREADY_ENERGY_SHIFT_ONLY``) by resource name → shift hours,
        #: as the last :meth:`sync_resources` read them from the VTN's resources.
        self.energy_shift_hours: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ registry
    async def start(self) -> str:
        """Ensure the program exists; returns its id."""
        program = await self.bl.ensure_program()
        self.program_id = program.id
        return program.id

    def _program(self) -> str:
        if self.program_id is None:
            raise RuntimeError("call start() first")
        return self.program_id

    async def sync_resources(self) -> list[AskedResource]:
        """Every resource on the VTN into the registry, granted its own name as a target.

        A VEN or resource the registry refuses (a bad name, rating or id), or a resource named
        like another VEN's (the one registered first keeps the name), is quarantined and left
        out; two VENs listing one name in the same listing are the same case (the first listed
        keeps it, as the VTN's own uniqueness rule has it). A VEN listing a name more than once
        keeps it for the resource the registry holds under it, else the first listed; its twins
        are quarantined. The others are synced; nothing here raises."""
        now = self.clock()
        vens = {}
        for ven in await self.bl.vens():
            route = VenRoute(self.routes.get(ven.client_id, "cloud"))
            try:
                self.registry.upsert_ven(
                    ven_id=ven.id,
                    ven_name=ven.ven_name,
                    route=route,
                    client_id=ven.client_id,
                    at=now,
                )
            except _DECODE_ERRORS as err:
                self._set_aside(f"ven:{ven.id}", "ven", ven.client_id, None, "refused", err)
                continue
            vens[ven.id] = ven
        registered = self.registry.list_resources()
        owner_ven = {r.resource_name: r.ven_id for r in registered}
        holder_id = {r.resource_name: r.id for r in registered}
        listed = [res for res in await self.bl.all_resources() if res.ven_id in vens]
        claims = Counter((res.ven_id, res.resource_name) for res in listed)
        seen = []
        for res in listed:
            ven_ = vens[res.ven_id]
            key, client = f"resource:{res.id}", ven_.client_id
            name = res.resource_name
            if claims[(res.ven_id, name)] > 1:
                # one VEN lists the name more than once: the resource the registry holds under
                # it keeps it, else the first listed (the VTN lists by creation); the twins are
                # set aside before they touch anything (their shift hours included)
                keeper = holder_id.get(name)
                if keeper is None or keeper not in {r.id for r in listed}:
                    keeper = next(
                        r.id for r in listed if (r.ven_id, r.resource_name) == (res.ven_id, name)
                    )
                if res.id != keeper and owner_ven.get(name, res.ven_id) == res.ven_id:
                    self._set_aside(
                        key, "resource", client, name, "refused",
                        f"the VEN lists the name {claims[(res.ven_id, name)]} times; resource "
                        f"{keeper} keeps it",
                    )  # fmt: skip
                    continue
            holder = owner_ven.setdefault(res.resource_name, res.ven_id)
            if holder != res.ven_id:
                self._set_aside(
                    key, "resource", client, res.resource_name, "not_owner",
                    f"the name is another VEN's resource (ven {holder})",
                )  # fmt: skip
                continue
            try:
                self._register(res)
            except _DECODE_ERRORS as err:
                self._set_aside(key, "resource", client, res.resource_name, "refused", err)
                continue
            try:
                await self.bl.grant_own_name(res)
            except VtnError as err:
                _log.warning("could not grant %r its own name: %s", res.resource_name, err)
            seen.append(res.id)
        gone = [r.id for r in self.registry.list_resources() if r.id not in set(seen)]
        if gone:
            self.registry.mark_offline(gone)
        return self.asked()

    def _register(self, res: Resource) -> None:
        """Upsert one VTN resource into the registry (``ValueError`` if refused)."""
        group = profile.is_group_resource(res.resource_name)
        rated, n_units = profile.rating_of(res.attributes)
        if rated is None:
            _log.warning(
                "resource %s declares no %s; %.1f kW per unit assumed",
                res.resource_name,
                profile.MAX_POWER,
                ASSUMED_RATED_KW,
            )
        n = n_units or 1
        hours = _energy_shift_hours(res.attributes)
        self.registry.upsert_resource(
            resource_id=res.id,
            ven_id=res.ven_id,
            resource_name=res.resource_name,
            kind=ResourceKind.GROUP if group else ResourceKind.UNIT,
            rated_power_kw=rated if rated is not None else ASSUMED_RATED_KW * n,
            n_units=n,
        )
        # only once the registry took it: a refused twin must not change the name's hours
        if hours is None:
            self.energy_shift_hours.pop(res.resource_name, None)
        else:
            self.energy_shift_hours[res.resource_name] = hours

    # ------------------------------------------------------------------ trust no peer
    def _set_aside(
        self,
        report_id: str,
        kind: str,
        client_id: str | None,
        resource_name: str | None,
        reason: str,
        detail: object,
    ) -> None:
        """Quarantine a report (or one resource of it) with its reason; log it once."""
        new = self.store.quarantine.record(
            report_id=report_id,
            kind=kind,
            client_id=client_id,
            resource_name=resource_name,
            reason=QuarantineReason(reason),
            detail=str(detail),
            at=self.clock(),
        )
        if new:
            _log.warning(
                "%s %s of client %r quarantined (%s): %s",
                kind,
                report_id,
                client_id,
                reason,
                str(detail)[:200],
            )

    def _owners(self, resources: Sequence[ResourceRecord]) -> dict[str, _Owner]:
        """Every registered resource's owner, by resource name."""
        clients = {v.id: v.client_id for v in self.registry.list_vens()}
        return {
            r.resource_name: _Owner(r.id, clients.get(r.ven_id), r.rated_power_kw)
            for r in resources
        }

    def _attributed(
        self, report: Report, name: str, owners: Mapping[str, _Owner], kind: str
    ) -> _Owner | None:
        """The owner of resource ``name`` if ``report``'s client owns it; else quarantined."""
        owner = owners.get(name)
        if owner is None:
            self._set_aside(report.id, kind, report.client_id, name, "unknown_resource", name)
        elif owner.client_id is None or owner.client_id != report.client_id:
            self._set_aside(
                report.id, kind, report.client_id, name, "not_owner",
                f"resource {name!r} is not the client's",
            )  # fmt: skip
        else:
            return owner
        return None

    def _answers_assignment(
        self, report: Report, a: AssignmentRecord, owners: Mapping[str, _Owner], kind: str
    ) -> bool:
        """Whether a plan or power report read for ``a``'s event speaks for ``a``'s resource
        only, from the client that owns it, on that event; else it is quarantined."""
        if report.event_id != a.event_id:
            self._set_aside(
                report.id, kind, report.client_id, None, "not_our_event",
                f"read for event {a.event_id}, posted on {report.event_id}",
            )  # fmt: skip
            return False
        if not report.resources:
            self._set_aside(report.id, kind, report.client_id, None, "unreadable", "no resources")
            return False
        for res in report.resources:
            owner = self._attributed(report, res.resource_name, owners, kind)
            if owner is None:
                return False
            if owner.resource_id != a.resource_id:
                self._set_aside(
                    report.id, kind, report.client_id, res.resource_name, "not_our_event",
                    f"event {a.event_id} was not sent to {res.resource_name!r}",
                )  # fmt: skip
                return False
        return True

    def asked(self) -> list[AskedResource]:
        """The resources a request goes to: every resource not retired."""
        return _asked(self.registry.list_resources())

    # ------------------------------------------------------------------ F1
    async def ask_potential(self, start: datetime, end: datetime) -> str:
        """Ask every resource for its potential in ``[start, end)``; returns the event id."""
        event = await self.bl.create_event(profile.potential_request(self._program(), start, end))
        self.store.record_potential_request(
            request_id=event.id, window_start=start, window_end=end, requested_at=self.clock()
        )
        return event.id

    async def collect_potential(self, request_id: str) -> PortfolioPotential:
        """Store the new answers once and add every answer up (missing resources named)."""
        record = self.store.potential_request(request_id)
        if record is None:
            raise ValueError(f"request_id {request_id!r} is not a potential request of ours")
        resources = self.registry.list_resources()
        owners = self._owners(resources)
        for report in await self.bl.reports(request_id):
            if report.report_name != profile.POTENTIAL_REPORT or self.store.is_processed(report.id):
                continue
            inputs = self._potential_inputs(report, request_id, owners, record)
            if inputs:
                try:
                    self.store.record_potentials(
                        request_id=request_id,
                        potentials=inputs,
                        report_id=report.id,
                        received_at=self.clock(),
                    )
                except _DECODE_ERRORS as err:
                    self._set_aside(report.id, "potential", report.client_id, None, "refused", err)
            self.store.mark_processed(report_id=report.id, kind="potential")
        return aggregate(
            record.window_start,
            record.window_end,
            _asked(resources),
            self._envelopes(request_id, resources),
        )

    def _potential_inputs(
        self,
        report: Report,
        request_id: str,
        owners: Mapping[str, _Owner],
        record: PotentialRequestRecord,
    ) -> list[PotentialInput]:
        """The envelopes of one potential report that are the client's own, readable and
        plausible (one per resource; the rest quarantined)."""
        kind = "potential"
        if report.event_id != request_id:
            self._set_aside(
                report.id, kind, report.client_id, None, "not_our_event",
                f"read for request {request_id}, posted on {report.event_id}",
            )  # fmt: skip
            return []
        window_h = (record.window_end - record.window_start).total_seconds() / 3600
        out: dict[str, PotentialInput] = {}
        for res in report.resources:
            name = res.resource_name
            owner = self._attributed(report, name, owners, kind)
            if owner is None:
                continue
            if owner.resource_id in out:
                self._set_aside(report.id, kind, report.client_id, name, "unreadable", "twice")
                continue
            try:
                one = report.model_copy(update={"resources": (res,)})
                (env,) = profile.envelopes_from_report(one, computed_at=self.clock())
                slots = env.model_dump(mode="json")
            except _DECODE_ERRORS as err:
                self._set_aside(report.id, kind, report.client_id, name, "unreadable", err)
                continue
            limit_kwh = PLAUSIBLE_RATING_FACTOR * owner.rated_power_kw * window_h
            if not all(0.0 <= x <= limit_kwh for x in (env.up_kwh, env.down_kwh)):
                self._set_aside(
                    report.id, kind, report.client_id, name, "implausible",
                    f"up {env.up_kwh!r} / down {env.down_kwh!r} kWh beyond "
                    f"{limit_kwh:g} kWh ({PLAUSIBLE_RATING_FACTOR:g} × rating × window)",
                )  # fmt: skip
                continue
            out[owner.resource_id] = PotentialInput(
                resource_id=owner.resource_id,
                up_kwh=env.up_kwh,
                down_kwh=env.down_kwh,
                confidence=env.confidence,
                slots=slots,
            )
        return list(out.values())

    def stored_potential(self, request_id: str) -> PortfolioPotential:
        """The answers to a potential request stored so far, added up (no VTN request: what
        :meth:`collect_potential` last stored); ``ValueError`` for an unknown request."""
        record = self.store.potential_request(request_id)
        if record is None:
            raise ValueError(f"request_id {request_id!r} is not a potential request of ours")
        resources = self.registry.list_resources()
        return aggregate(
            record.window_start,
            record.window_end,
            _asked(resources),
            self._envelopes(request_id, resources),
        )

    def envelopes(self, request_id: str) -> dict[str, FlexibilityEnvelope]:
        """The stored answers to a potential request, by resource name."""
        return self._envelopes(request_id, self.registry.list_resources())

    def _envelopes(
        self, request_id: str, resources: Sequence[ResourceRecord]
    ) -> dict[str, FlexibilityEnvelope]:
        names = _names_by_id(resources)
        table = self.store.potentials(request_id)
        return {
            names[rid]: FlexibilityEnvelope.model_validate(slots)
            for rid, slots in zip(table.resource_ids, table.slots, strict=True)
            if rid in names and slots is not None
        }

    # ------------------------------------------------------------------ F2
    def _resource_potentials(
        self, request_id: str, resources: Sequence[ResourceRecord]
    ) -> tuple[list[str], ResourcePotentials]:
        envs = self._envelopes(request_id, resources)
        names = sorted(envs)
        return names, ResourcePotentials.from_envelopes([envs[n] for n in names], names=names)

    def _shift_hours(self, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """The standard-only units among ``names`` with their shift hours (dispatch input)."""
        return {n: self.energy_shift_hours[n] for n in names if n in self.energy_shift_hours}

    async def dispatch(self, label: str, target: DispatchTarget, potential_request_id: str) -> int:
        """Split ``target`` over the resources that declared potential; send the events.

        Returns the dispatch id. Nothing is sent when nobody declared potential (the dispatch
        then shows its whole target as shortfall)."""
        record = self.store.potential_request(potential_request_id)
        if record is None:
            raise ValueError(f"potential_request_id {potential_request_id!r} is unknown")
        resources = self.registry.list_resources()
        names, pots = self._resource_potentials(potential_request_id, resources)
        ids = {r.resource_name: r.id for r in resources}
        amounts: list[tuple[str, float]] = []
        if names:
            plan = dispatch(
                pots,
                target,
                min_request_kwh=self.min_request_kwh,
                energy_shift_hours=self._shift_hours(names),
            )
            amounts = [
                (ids[n], round(float(kwh), _AMOUNT_DECIMALS))
                for n, kwh in zip(names, plan.requested_kwh, strict=True)
                if kwh > 0
            ]
        dispatch_id = self.store.create_dispatch(
            label=label,
            direction=target.direction,
            window_start=record.window_start,
            window_end=record.window_end,
            target_kind=_target_kind(target),
            target={
                "potential_request_id": potential_request_id,
                "energy_kwh": _target_energy_kwh(target, record.window_start, record.window_end),
                "spec": target.model_dump(mode="json"),
            },
            assignments=amounts,
            created_at=self.clock(),
        )
        await self.send_pending(self._dispatch(dispatch_id), names=_names_by_id(resources))
        return dispatch_id

    async def dispatch_start_time(self, label: str, potential_request_id: str) -> int:
        """F2 by heating start time alone over the potential request's window (OA-F2-2).

        One event per resource that declared at least ``min_request_kwh`` of up potential in the
        window — a standard-only unit (``DRREADY_ENERGY_SHIFT_ONLY``) only when the window is a
        whole 4-hour shift from one of its hours — each carrying the direction and no amount.
        The assignment's amount is the resource's declared up potential: what it is expected
        to answer. Returns the dispatch id; nothing is sent when no resource qualifies."""
        record = self.store.potential_request(potential_request_id)
        if record is None:
            raise ValueError(f"potential_request_id {potential_request_id!r} is unknown")
        start, end = record.window_start, record.window_end
        resources = self.registry.list_resources()
        envs = self._envelopes(potential_request_id, resources)
        ids = {r.resource_name: r.id for r in resources}
        shift_hour = start.astimezone(zone(DEFAULT_TZ)).hour if start.minute == 0 else -1
        whole_shift = end - start == START_TIME_WINDOW
        amounts = [
            (ids[name], round(envs[name].up_kwh, _AMOUNT_DECIMALS))
            for name in sorted(envs)
            if envs[name].up_kwh >= self.min_request_kwh
            and (
                name not in self.energy_shift_hours
                or (whole_shift and shift_hour in self.energy_shift_hours[name])
            )
        ]
        dispatch_id = self.store.create_dispatch(
            label=label,
            direction=Direction.UP,
            window_start=start,
            window_end=end,
            target_kind="energy",
            target={
                "potential_request_id": potential_request_id,
                "energy_kwh": 0.0,
                "spec": {"kind": START_TIME_KIND, "start": start.isoformat()},
            },
            assignments=amounts,
            created_at=self.clock(),
        )
        await self.send_pending(self._dispatch(dispatch_id), names=_names_by_id(resources))
        return dispatch_id

    async def resume(self) -> list[int]:
        """After a restart: send what was decided but not sent, for every open dispatch;
        returns their ids (each then goes on with :meth:`follow_up`)."""
        await self.start()
        records = self.store.open_dispatches()
        if records:  # what the resources can do (shift hours) is known from the VTN only:
            await self.sync_resources()  # learn it again before any round is re-dispatched
        names = _names_by_id(self.registry.list_resources())
        for record in records:
            await self.send_pending(record, names=names, recover=True)
        return [record.id for record in records]

    async def send_pending(
        self,
        record: DispatchRecord,
        *,
        names: Mapping[str, str] | None = None,
        recover: bool = False,
    ) -> int:
        """Create the VTN events of the pending assignments of ``record`` (as read from the
        store); returns how many. ``names``: resource name by id (read from the registry when
        not given). With ``recover`` (after a crash), an event already on the VTN under the
        assignment's name is taken instead of sending a second one."""
        pending = [a for a in record.assignments if a.status is AssignmentStatus.PENDING]
        if not pending:
            return 0
        if names is None:
            names = _names_by_id(self.registry.list_resources())
        existing: dict[str, Event] = {}
        if recover:
            existing = {
                e.event_name: e
                for e in await self.bl.events(program_id=self._program())
                if e.event_name
            }
        for a in pending:
            event = existing.get(a.event_name)
            if event is None:
                request = self._request(record, a)
                create = profile.dr_event(self._program(), request, [names[a.resource_id]])
                event = await self.bl.create_event(create)
            self.store.mark_assignment_sent(
                assignment_id=a.id, event_id=event.id, sent_at=self.clock()
            )
        return len(pending)

    def _request(self, record: DispatchRecord, a: AssignmentRecord) -> DrRequest:
        """The F2 request of a pending assignment, named after it (the event's name); by start
        time alone (no amount) for a dispatch of :meth:`dispatch_start_time`."""
        if is_start_time(record):
            return DrRequest.at_start_time(
                a.event_name,
                record.window_start,
                a.sent_at or self.clock(),
                end=record.window_end,
                issuer=ISSUER,
            )
        return DrRequest(
            request_id=a.event_name,
            direction=record.direction,
            start=record.window_start,
            end=record.window_end,
            amount_kwh=a.requested_kwh,
            issuer=ISSUER,
            issued_at=a.sent_at or self.clock(),
        )

    def _dispatch(self, dispatch_id: int) -> DispatchRecord:
        record = self.store.get_dispatch(dispatch_id)
        if record is None:
            raise ValueError(f"dispatch_id {dispatch_id!r} does not exist")
        return record

    # ------------------------------------------------------------------ F3/F4, D3
    async def follow_up(self, dispatch_id: int) -> DispatchRecord:
        """Record the answers that came; declare the silent; re-dispatch what is missing.

        Returns the dispatch as it is afterwards. The dispatch is read once, and again only
        after a step that changed it."""
        record = self._dispatch(dispatch_id)
        now = self.clock()
        if await self._record_answers(record):
            record = self._dispatch(dispatch_id)
        if await self._declare_silent(record, now):
            record = self._dispatch(dispatch_id)
        if await self._next_round(record):
            record = self._dispatch(dispatch_id)
        awaiting = any(a.status in _AWAITING for a in record.assignments)
        if (
            now >= record.window_end
            and not awaiting
            and self.store.close_dispatch(dispatch_id=dispatch_id)
        ):
            record = replace(record, status=DispatchStatus.CLOSED)
        return record

    async def _record_answers(self, record: DispatchRecord) -> bool:
        """Record the new plan reports of the events out; whether an assignment changed."""
        changed = False
        owners: dict[str, _Owner] | None = None
        for a in record.assignments:
            if a.event_id is None or a.status not in _ASKED:
                continue
            for report in await self.bl.reports(a.event_id):
                if report.report_name == "plan" and not self.store.is_processed(report.id):
                    if owners is None:
                        owners = self._owners(self.registry.list_resources())
                    if self._answers_assignment(report, a, owners, "plan"):
                        changed |= self._record_answer(record, a, report)
                    self.store.mark_processed(report_id=report.id, kind="plan")
        return changed

    def _record_answer(self, record: DispatchRecord, a: AssignmentRecord, report: Report) -> bool:
        """Record the answer of one plan report to ``a``; whether ``a`` changed (an unreadable
        or refused answer is quarantined)."""
        try:
            answers = _plan_answers(report, a, record)
            if len(answers) != 1:
                raise profile.ProfileError(f"{len(answers)} answers to one event")
        except _DECODE_ERRORS as err:
            self._set_aside(report.id, "plan", report.client_id, None, "unreadable", err)
            return False
        changed = False
        for answer in answers:
            r = answer.response
            try:
                outcome = self._record_response(a, report, r)
            except _DECODE_ERRORS as err:
                self._set_aside(report.id, "plan", report.client_id, None, "refused", err)
                return False
            changed = outcome in _CHANGED
            if r.status is not ResponseStatus.REJECTED:
                self.registry.mark_active([a.resource_id], at=self.clock())
        return changed

    def _record_response(
        self, a: AssignmentRecord, report: Report, r: DrResponse
    ) -> ResponseOutcome:
        """Store one decoded answer to ``a``."""
        return self.store.record_response(
            event_id=a.event_id or "",
            status=r.status,
            # clip: the event carries kW rounded to 1e-6, so the decoded answer may exceed
            # the stored amount by that rounding; never count more than was meant
            accepted_kwh=min(r.accepted_kwh, a.requested_kwh)
            if r.status is not ResponseStatus.REJECTED
            else 0.0,
            report_id=report.id,
            responded_at=self.clock(),
            reason=r.reason,
        )

    async def _declare_silent(self, record: DispatchRecord, now: datetime) -> bool:
        """Declare silent the events unanswered for ``response_timeout``, mark their resources
        offline and delete the events; whether there were any."""
        silent = [
            a
            for a in record.assignments
            if a.status is AssignmentStatus.SENT
            and a.sent_at is not None
            and now - a.sent_at >= self.response_timeout
        ]
        if not silent:
            return False
        self.store.mark_silent(assignment_ids=[a.id for a in silent])
        self.registry.mark_offline([a.resource_id for a in silent])
        for a in silent:
            try:
                await self.bl.delete_event(a.event_id or "")
            except VtnError as err:
                _log.warning("could not delete silent event %s: %s", a.event_id, err)
        return True

    def share(self, dispatch_id: int) -> TargetShare:
        """The dispatch's target, accepted, awaited amounts and rounds so far."""
        record = self._dispatch(dispatch_id)
        return _share(record)

    async def _next_round(self, record: DispatchRecord) -> bool:
        """When every assignment is answered or silent and part of the target is missing,
        re-dispatch it to the others as the next round and send it (D3); whether it did."""
        if not record.assignments:
            return False
        last = max(a.round for a in record.assignments)
        if any(a.status in _AWAITING for a in record.assignments):
            return False
        share = _share(record)
        if share.shortfall_kwh < self.min_request_kwh or last >= self.max_rounds:
            return False
        request_id = str(record.target["potential_request_id"])
        resources = self.registry.list_resources()
        names, pots = self._resource_potentials(request_id, resources)
        ids = {r.resource_name: r.id for r in resources}
        committed = {n: 0.0 for n in names}
        excluded = {n: False for n in names}
        by_id = _names_by_id(resources)
        for a in record.assignments:
            name = by_id.get(a.resource_id)
            if name not in committed:
                continue
            if not a.late:
                committed[name] += a.accepted_kwh or 0.0
            if a.status in _SHORT:
                excluded[name] = True
        offline = {r.resource_name for r in resources if r.state is not ResourceState.ACTIVE}
        plan = redispatch(
            pots,
            EnergyTarget(direction=record.direction, energy_kwh=share.shortfall_kwh),
            committed_kwh=[committed[n] for n in names],
            excluded=np.array([excluded[n] or n in offline for n in names], dtype=bool),
            min_request_kwh=self.min_request_kwh,
            energy_shift_hours=self._shift_hours(names),
        )
        amounts = [
            (ids[n], round(float(kwh), _AMOUNT_DECIMALS))
            for n, kwh in zip(names, plan.requested_kwh, strict=True)
            if kwh > 0
        ]
        if not amounts:
            return False
        self.store.add_assignments(dispatch_id=record.id, round=last + 1, assignments=amounts)
        await self.send_pending(self._dispatch(record.id), names=by_id)
        return True

    async def accepted_plans(self, dispatch_id: int) -> dict[str, HeatingPlan]:
        """The DR-aware plans (F4) of the resources that accepted a share, by name (read back
        from their plan reports on the VTN: the servicer keeps answers, not whole plans)."""
        record = self._dispatch(dispatch_id)
        resources = self.registry.list_resources()
        names = _names_by_id(resources)
        owners = self._owners(resources)
        out: dict[str, HeatingPlan] = {}
        for a in record.assignments:
            if a.event_id is None or a.late or a.status not in _COMMITTED:
                continue
            for report in await self.bl.reports(a.event_id):
                if report.report_name != "plan" or not self._answers_assignment(
                    report, a, owners, "plan"
                ):
                    continue
                try:
                    answers = _plan_answers(report, a, record)
                except _DECODE_ERRORS:
                    continue
                for answer in answers[:1]:
                    out[names[a.resource_id]] = answer.plan
        return out

    # ------------------------------------------------------------------ F5
    async def collect_power(self, dispatch_id: int) -> dict[str, list[PowerSample]]:
        """Store the new power reports of a dispatch's answered events (a reading stored twice
        is stored once); returns the new samples by resource name."""
        record = self._dispatch(dispatch_id)
        resources = self.registry.list_resources()
        names = _names_by_id(resources)
        owners = self._owners(resources)
        rated_kw = {r.id: r.rated_power_kw for r in resources}
        out: dict[str, list[PowerSample]] = {}
        for a in record.assignments:
            if a.event_id is None or a.status not in _COMMITTED:
                continue
            for report in await self.bl.reports(a.event_id):
                if report.report_name != "power" or self.store.is_processed(report.id):
                    continue
                if self._answers_assignment(report, a, owners, "power"):
                    samples = self._samples(report, rated_kw.get(a.resource_id, 0.0))
                    if samples:
                        try:
                            self.store.record_power_samples(
                                resource_id=a.resource_id, samples=samples, report_id=report.id
                            )
                        except _DECODE_ERRORS as err:
                            self._set_aside(
                                report.id, "power", report.client_id, None, "refused", err
                            )
                        else:
                            self.registry.mark_active([a.resource_id], at=self.clock())
                            out.setdefault(names[a.resource_id], []).extend(samples)
                self.store.mark_processed(report_id=report.id, kind="power")
        return out

    def _samples(self, report: Report, rated_kw: float) -> list[PowerSample]:
        """A power report's samples if readable and plausible (else quarantined, none)."""
        try:
            samples = profile.samples_from_report(report)
        except _DECODE_ERRORS as err:
            self._set_aside(report.id, "power", report.client_id, None, "unreadable", err)
            return []
        limit_w = PLAUSIBLE_RATING_FACTOR * rated_kw * 1000
        bad = [
            s
            for s in samples
            if not (0.0 <= s.power_w <= limit_w and math.isfinite(s.cumulative_energy_kwh))
        ]
        if bad:
            self._set_aside(
                report.id, "power", report.client_id, None, "implausible",
                f"{len(bad)} samples beyond 0…{limit_w:g} W or not finite "
                f"(first {bad[0].power_w!r} W)",
            )  # fmt: skip
            return []
        return samples


def _energy_shift_hours(attributes: Iterable[ValuesMap] | None) -> tuple[int, ...] | None:
    """The shift hours of a standard-only unit (``DRREADY_ENERGY_SHIFT_ONLY``), or None when the
    attribute is absent; values that are not whole hours 0–23 are left out (a peer's input)."""
    for a in attributes or ():
        if a.type == profile.ENERGY_SHIFT_ONLY:
            return tuple(
                sorted(
                    {
                        int(v)
                        for v in a.values
                        if not isinstance(v, bool)
                        and isinstance(v, int | float)
                        and float(v).is_integer()
                        and 0 <= v <= 23
                    }
                )
            )
    return None


def _asked(resources: Sequence[ResourceRecord]) -> list[AskedResource]:
    """The resources a request goes to: every resource not retired."""
    return [
        AskedResource(resource_name=r.resource_name, ven_name=r.ven_name, route=r.route.value)
        for r in resources
        if r.state is not ResourceState.RETIRED
    ]


def _names_by_id(resources: Sequence[ResourceRecord]) -> dict[str, str]:
    return {r.id: r.resource_name for r in resources}


def _share(record: DispatchRecord) -> TargetShare:
    target = float(record.target.get("energy_kwh", 0.0)) if isinstance(record.target, dict) else 0.0
    accepted = sum(
        (a.accepted_kwh or 0.0) for a in record.assignments if not a.late and a.status in _COMMITTED
    )
    awaiting = sum(a.requested_kwh for a in record.assignments if a.status in _AWAITING)
    rounds = max((a.round for a in record.assignments), default=0)
    return TargetShare(target, accepted, awaiting, rounds)


def _target_kind(target: DispatchTarget) -> str:
    return target.kind
