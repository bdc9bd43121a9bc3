"""The servicer's repository: every record it keeps, one transaction per operation (U1, U2, D3,
F1, F2, F5; reliability: nothing lost across a restart, duplicate reports change nothing).

:class:`ServicerStore` is the one object the servicer, the demo and the dashboard hold. It
composes one store per record group over a shared engine and hands each call to it:

===============================  ==========================================================
record group (tables)            module
===============================  ==========================================================
potentials (``potential_request``, ``potential``)
                                 :mod:`drready.servicer.storage.potentials`
dispatches (``dispatch``, ``assignment``) and answers
                                 :mod:`drready.servicer.storage.dispatches`, their life in
                                 :mod:`drready.servicer.storage.lifecycle`
readings (``power_reading``, ``meter_slot``)
                                 :mod:`drready.servicer.storage.readings`
tracking (``tracking_run``, ``tracking_point``)
                                 :mod:`drready.servicer.storage.tracking`
processed reports (``processed_report``)
                                 :mod:`drready.servicer.storage.reports`
orders of the north-bound API (``dr_order``)
                                 :mod:`drready.servicer.storage.orders`, their life in
                                 :mod:`drready.servicer.storage.lifecycle`
the schedule's jobs (``scheduler_job``)
                                 :mod:`drready.servicer.storage.jobs`
settled dispatches (``settlement``)
                                 :mod:`drready.servicer.storage.settlements`
VENs, resources, market registrations
                                 :mod:`drready.servicer.storage.registry` (:meth:`registry`)
===============================  ==========================================================

Each method commits before it returns, so a servicer killed at any instant loses at most the
operation it was in; :meth:`ServicerStore.open_dispatches` and
:meth:`ServicerStore.awaiting_response` are what a restarted servicer resumes from.

Idempotency (a report may be polled, delivered or processed more than once):

* :meth:`~ServicerStore.mark_processed` records a VTN report id once and answers ``False``
  the second time. Process a report *first*, then mark it: a crash in between re-processes it
  after the restart, and the writes below make that harmless.
* :meth:`~ServicerStore.record_potentials`, :meth:`~ServicerStore.record_response`: the same
  report id again changes nothing.
* :meth:`~ServicerStore.record_power_readings`, :meth:`~ServicerStore.add_tracking_points`: a
  row already there (same key) is left as it is.
* :meth:`~ServicerStore.upsert_meter_slots`: a slot is replaced only if its value changed.
* :meth:`~ServicerStore.add_assignments`: the same (resource, round) of a dispatch again
  returns the existing assignment.
* :meth:`~ServicerStore.create_order`: the same idempotency key and body again returns the
  stored order; :meth:`~ServicerStore.save_settlement`: a dispatch is settled once.

Assignment statuses change only along the transition table of
:mod:`drready.servicer.storage.lifecycle` (late, revised and ignored answers:
:mod:`drready.servicer.storage.dispatches`).

Arrays: readings, meter slots and tracking points go in and come out as numpy arrays (one row
per element); datetimes come back timezone-aware in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy.typing as npt
from sqlalchemy import Engine, func, select

from drready.domain import DEFAULT_TZ, Direction, PowerSample, ResponseStatus
from drready.servicer.storage.crypto import KeyRing
from drready.servicer.storage.db import Base, HeaterSource, TargetKind, make_engine
from drready.servicer.storage.dispatches import (
    AssignmentRecord,
    DispatchRecord,
    DispatchStore,
    ResponseOutcome,
)
from drready.servicer.storage.jobs import JobRecord, JobStore
from drready.servicer.storage.lifecycle import OrderEvent, OrderStatus
from drready.servicer.storage.migrations import ensure_schema
from drready.servicer.storage.orders import OrderRecord, OrderStore
from drready.servicer.storage.potentials import (
    PotentialInput,
    PotentialRequestRecord,
    PotentialStore,
    PotentialTable,
)
from drready.servicer.storage.quarantine import QuarantineStore
from drready.servicer.storage.readings import MeterSlotMatrix, PowerSeries, ReadingStore
from drready.servicer.storage.registry import Registry
from drready.servicer.storage.reports import ProcessedReports
from drready.servicer.storage.settlements import SettlementRecord, SettlementStore
from drready.servicer.storage.tracking import TrackingRunRecord, TrackingSeries, TrackingStore

__all__ = ["ServicerStore"]


class ServicerStore:
    """Repository of the servicer's records over one SQLAlchemy engine (see module docstring).

    The schema must exist: :meth:`open` migrates it, or call
    ``drready.servicer.storage.migrations.ensure_schema(engine)`` first.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._potentials = PotentialStore(engine)
        self._dispatches = DispatchStore(engine)
        self._readings = ReadingStore(engine)
        self._tracking = TrackingStore(engine)
        self._reports = ProcessedReports(engine)
        self._orders = OrderStore(engine)
        self._jobs = JobStore(engine)
        self._settlements = SettlementStore(engine)
        self._quarantine = QuarantineStore(engine)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> ServicerStore:
        """A store on ``url`` (default: ``$DRREADY_SERVICER_DATABASE_URL`` or a SQLite file),
        migrated to the newest schema unless ``migrate`` is false."""
        engine = make_engine(url)
        if migrate:
            ensure_schema(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The engine (shared with :meth:`registry`)."""
        return self._engine

    def registry(self, keys: KeyRing | None = None) -> Registry:
        """The registry on the same database."""
        return Registry(self._engine, keys)

    @property
    def quarantine(self) -> QuarantineStore:
        """The reports and resources set aside, with their reasons (S1)."""
        return self._quarantine

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self._engine.dispose()

    # ------------------------------------------------------------------ F1 potential
    def record_potential_request(
        self,
        *,
        request_id: str,
        window_start: datetime,
        window_end: datetime,
        requested_at: datetime | None = None,
    ) -> bool:
        """Record a potential request event; False if it was already recorded
        (:meth:`PotentialStore.record_request
        <drready.servicer.storage.potentials.PotentialStore.record_request>`)."""
        return self._potentials.record_request(
            request_id=request_id,
            window_start=window_start,
            window_end=window_end,
            requested_at=requested_at,
        )

    def potential_request(self, request_id: str) -> PotentialRequestRecord | None:
        """The potential request with this event id, or ``None`` (:meth:`PotentialStore.request
        <drready.servicer.storage.potentials.PotentialStore.request>`)."""
        return self._potentials.request(request_id)

    def record_potentials(
        self,
        *,
        request_id: str,
        potentials: Sequence[PotentialInput],
        report_id: str,
        received_at: datetime | None = None,
    ) -> int:
        """Record answers to a potential request from one report; rows written
        (:meth:`PotentialStore.record
        <drready.servicer.storage.potentials.PotentialStore.record>`)."""
        return self._potentials.record(
            request_id=request_id,
            potentials=potentials,
            report_id=report_id,
            received_at=received_at,
        )

    def latest_potential_request(
        self, *, window_start: datetime, window_end: datetime
    ) -> PotentialRequestRecord | None:
        """The most recent potential request for exactly this window, or ``None``
        (:meth:`PotentialStore.latest_request
        <drready.servicer.storage.potentials.PotentialStore.latest_request>`)."""
        return self._potentials.latest_request(window_start=window_start, window_end=window_end)

    def open_potential_requests(
        self, *, window_end_after: datetime, requested_after: datetime
    ) -> list[PotentialRequestRecord]:
        """Potential requests whose answers may still come, oldest first
        (:meth:`PotentialStore.open_requests
        <drready.servicer.storage.potentials.PotentialStore.open_requests>`)."""
        return self._potentials.open_requests(
            window_end_after=window_end_after, requested_after=requested_after
        )

    def potentials(self, request_id: str) -> PotentialTable:
        """The answers to a potential request, by resource id (:meth:`PotentialStore.table
        <drready.servicer.storage.potentials.PotentialStore.table>`)."""
        return self._potentials.table(request_id)

    # ------------------------------------------------------------------ F2 dispatch
    def create_dispatch(
        self,
        *,
        label: str,
        direction: Direction | str,
        window_start: datetime,
        window_end: datetime,
        target_kind: TargetKind | str,
        target: Any,
        assignments: Sequence[tuple[str, float]] = (),
        created_at: datetime | None = None,
    ) -> int:
        """Create an open dispatch and its round-1 assignments; its id (:meth:`DispatchStore.create
        <drready.servicer.storage.dispatches.DispatchStore.create>`)."""
        return self._dispatches.create(
            label=label,
            direction=direction,
            window_start=window_start,
            window_end=window_end,
            target_kind=target_kind,
            target=target,
            assignments=assignments,
            created_at=created_at,
        )

    def add_assignments(
        self, *, dispatch_id: int, round: int, assignments: Sequence[tuple[str, float]]
    ) -> list[int]:
        """Add a round of assignments to an open dispatch; their ids
        (:meth:`DispatchStore.add_assignments
        <drready.servicer.storage.dispatches.DispatchStore.add_assignments>`)."""
        return self._dispatches.add_assignments(
            dispatch_id=dispatch_id, round=round, assignments=assignments
        )

    def mark_assignment_sent(
        self, *, assignment_id: int, event_id: str, sent_at: datetime | None = None
    ) -> bool:
        """Record that a pending assignment's DR event was created (:meth:`DispatchStore.mark_sent
        <drready.servicer.storage.dispatches.DispatchStore.mark_sent>`)."""
        return self._dispatches.mark_sent(
            assignment_id=assignment_id, event_id=event_id, sent_at=sent_at
        )

    def record_response(
        self,
        *,
        event_id: str,
        status: ResponseStatus | str,
        accepted_kwh: float,
        report_id: str,
        responded_at: datetime | None = None,
        reason: str | None = None,
    ) -> ResponseOutcome:
        """Record a resource's answer to a DR event; what was done with it
        (:meth:`DispatchStore.record_response
        <drready.servicer.storage.dispatches.DispatchStore.record_response>`)."""
        return self._dispatches.record_response(
            event_id=event_id,
            status=status,
            accepted_kwh=accepted_kwh,
            report_id=report_id,
            responded_at=responded_at,
            reason=reason,
        )

    def mark_silent(self, *, assignment_ids: Sequence[int]) -> int:
        """Declare sent assignments silent; rows changed (:meth:`DispatchStore.mark_silent
        <drready.servicer.storage.dispatches.DispatchStore.mark_silent>`)."""
        return self._dispatches.mark_silent(assignment_ids=assignment_ids)

    def cancel_assignments(self, *, assignment_ids: Sequence[int]) -> int:
        """Cancel assignments (pending, sent, accepted or partial); rows changed
        (:meth:`DispatchStore.cancel
        <drready.servicer.storage.dispatches.DispatchStore.cancel>`)."""
        return self._dispatches.cancel(assignment_ids=assignment_ids)

    def close_dispatch(self, *, dispatch_id: int) -> bool:
        """Close an open dispatch; whether it changed (:meth:`DispatchStore.close
        <drready.servicer.storage.dispatches.DispatchStore.close>`)."""
        return self._dispatches.close(dispatch_id=dispatch_id)

    def get_dispatch(self, dispatch_id: int) -> DispatchRecord | None:
        """A dispatch with all its assignments, or ``None`` (:meth:`DispatchStore.dispatch
        <drready.servicer.storage.dispatches.DispatchStore.dispatch>`)."""
        return self._dispatches.dispatch(dispatch_id)

    def dispatches(self) -> list[DispatchRecord]:
        """Every dispatch with all its assignments, oldest first (:meth:`DispatchStore.dispatches
        <drready.servicer.storage.dispatches.DispatchStore.dispatches>`)."""
        return self._dispatches.dispatches()

    def dispatch_ids_by_label(self, label: str) -> list[int]:
        """The ids of the dispatches with this label, oldest first
        (:meth:`DispatchStore.ids_by_label
        <drready.servicer.storage.dispatches.DispatchStore.ids_by_label>`)."""
        return self._dispatches.ids_by_label(label)

    def open_dispatches(self) -> list[DispatchRecord]:
        """Every open dispatch with all its assignments, oldest first
        (:meth:`DispatchStore.open_dispatches
        <drready.servicer.storage.dispatches.DispatchStore.open_dispatches>`)."""
        return self._dispatches.open_dispatches()

    def get_assignment(self, assignment_id: int) -> AssignmentRecord | None:
        """The assignment with this id, or ``None`` (:meth:`DispatchStore.assignment
        <drready.servicer.storage.dispatches.DispatchStore.assignment>`)."""
        return self._dispatches.assignment(assignment_id)

    def assignment_by_event(self, event_id: str) -> AssignmentRecord | None:
        """The assignment sent as VTN event ``event_id``, or ``None``
        (:meth:`DispatchStore.assignment_by_event
        <drready.servicer.storage.dispatches.DispatchStore.assignment_by_event>`)."""
        return self._dispatches.assignment_by_event(event_id)

    def awaiting_response(self, *, sent_before: datetime) -> list[AssignmentRecord]:
        """Sent, unanswered assignments sent before ``sent_before``
        (:meth:`DispatchStore.awaiting_response
        <drready.servicer.storage.dispatches.DispatchStore.awaiting_response>`)."""
        return self._dispatches.awaiting_response(sent_before=sent_before)

    # ------------------------------------------------------------------ reports
    def mark_processed(
        self, *, report_id: str, kind: str, processed_at: datetime | None = None
    ) -> bool:
        """Record that a VTN report was processed; False if it already was
        (:meth:`ProcessedReports.mark <drready.servicer.storage.reports.ProcessedReports.mark>`)."""
        return self._reports.mark(report_id=report_id, kind=kind, processed_at=processed_at)

    def is_processed(self, report_id: str) -> bool:
        """Whether the report was marked processed (:meth:`ProcessedReports.is_processed
        <drready.servicer.storage.reports.ProcessedReports.is_processed>`)."""
        return self._reports.is_processed(report_id)

    # ------------------------------------------------------------------ F5 power, meter slots
    def record_power_readings(
        self,
        *,
        resource_ids: str | Sequence[str],
        timestamps: Sequence[datetime],
        power_w: npt.ArrayLike,
        source: str | Sequence[str],
        cumulative_kwh: npt.ArrayLike | None = None,
        report_id: str | None = None,
    ) -> int:
        """Store power readings (a stored one is left unchanged); new rows
        (:meth:`ReadingStore.record_power
        <drready.servicer.storage.readings.ReadingStore.record_power>`)."""
        return self._readings.record_power(
            resource_ids=resource_ids,
            timestamps=timestamps,
            power_w=power_w,
            source=source,
            cumulative_kwh=cumulative_kwh,
            report_id=report_id,
        )

    def record_power_samples(
        self, *, resource_id: str, samples: Sequence[PowerSample], report_id: str | None = None
    ) -> int:
        """Store one resource's F5 samples; new rows (:meth:`ReadingStore.record_samples
        <drready.servicer.storage.readings.ReadingStore.record_samples>`)."""
        return self._readings.record_samples(
            resource_id=resource_id, samples=samples, report_id=report_id
        )

    def power_readings(self, *, resource_id: str, start: datetime, end: datetime) -> PowerSeries:
        """The readings of a resource in ``[start, end)``, by time (:meth:`ReadingStore.power
        <drready.servicer.storage.readings.ReadingStore.power>`)."""
        return self._readings.power(resource_id=resource_id, start=start, end=end)

    def upsert_meter_slots(
        self,
        *,
        resource_ids: str | Sequence[str],
        slot_starts: Sequence[datetime],
        energy_kwh: npt.ArrayLike,
        source: str,
        updated_at: datetime | None = None,
    ) -> int:
        """Store metered energy per (resource, slot); rows inserted or changed
        (:meth:`ReadingStore.upsert_meter_slots
        <drready.servicer.storage.readings.ReadingStore.upsert_meter_slots>`)."""
        return self._readings.upsert_meter_slots(
            resource_ids=resource_ids,
            slot_starts=slot_starts,
            energy_kwh=energy_kwh,
            source=source,
            updated_at=updated_at,
        )

    def meter_slots(
        self, *, resource_ids: Sequence[str], start: datetime, end: datetime
    ) -> MeterSlotMatrix:
        """Metered energy of resources × slots, NaN where none is stored
        (:meth:`ReadingStore.meter_slots
        <drready.servicer.storage.readings.ReadingStore.meter_slots>`)."""
        return self._readings.meter_slots(resource_ids=resource_ids, start=start, end=end)

    def prune_readings(self, *, meter_before: datetime, power_before: datetime) -> tuple[int, int]:
        """Delete meter slots and power readings older than the instants given; how many of
        each (:meth:`ReadingStore.prune
        <drready.servicer.storage.readings.ReadingStore.prune>`)."""
        return self._readings.prune(meter_before=meter_before, power_before=power_before)

    # ------------------------------------------------------------------ orders (U2)
    def create_order(
        self,
        *,
        order_id: str,
        client_id: str,
        idempotency_key: str | None,
        request_hash: str,
        direction: Direction | str,
        window_start: datetime,
        window_end: datetime,
        energy_kwh: float | None,
        power_kw: Sequence[float] | None,
        target_kwh: float,
        deadline: datetime | None,
        created_at: datetime | None = None,
        start_time: bool = False,
    ) -> tuple[OrderRecord, bool]:
        """Store a new order, or return the one stored under the same idempotency key and body;
        whether it is new (:meth:`OrderStore.create
        <drready.servicer.storage.orders.OrderStore.create>`)."""
        return self._orders.create(
            order_id=order_id,
            client_id=client_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            direction=direction,
            window_start=window_start,
            window_end=window_end,
            energy_kwh=energy_kwh,
            power_kw=power_kw,
            target_kwh=target_kwh,
            deadline=deadline,
            created_at=created_at,
            start_time=start_time,
        )

    def order(self, order_id: str) -> OrderRecord | None:
        """The order with this id, or ``None`` (:meth:`OrderStore.get
        <drready.servicer.storage.orders.OrderStore.get>`)."""
        return self._orders.get(order_id)

    def order_by_dispatch(self, dispatch_id: int) -> OrderRecord | None:
        """The order that became this dispatch, or ``None`` (:meth:`OrderStore.by_dispatch
        <drready.servicer.storage.orders.OrderStore.by_dispatch>`)."""
        return self._orders.by_dispatch(dispatch_id)

    def list_orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        day: date | None = None,
        tz: str = DEFAULT_TZ,
        limit: int = 50,
        offset: int = 0,
    ) -> list[OrderRecord]:
        """Orders, newest window first, filtered by status and local day
        (:meth:`OrderStore.find <drready.servicer.storage.orders.OrderStore.find>`)."""
        return self._orders.find(status=status, day=day, tz=tz, limit=limit, offset=offset)

    def orders_in_progress(self, *, now: datetime) -> list[OrderRecord]:
        """The orders the service still works on (:meth:`OrderStore.in_progress
        <drready.servicer.storage.orders.OrderStore.in_progress>`)."""
        return self._orders.in_progress(now=now)

    def apply_order_event(
        self,
        *,
        order_id: str,
        event: OrderEvent,
        at: datetime | None = None,
        reason: str | None = None,
        potential_request_id: str | None = None,
        dispatch_id: int | None = None,
    ) -> OrderRecord:
        """Move an order along the order transition table (:meth:`OrderStore.apply
        <drready.servicer.storage.orders.OrderStore.apply>`)."""
        return self._orders.apply(
            order_id=order_id,
            event=event,
            at=at,
            reason=reason,
            potential_request_id=potential_request_id,
            dispatch_id=dispatch_id,
        )

    def set_order_figures(self, *, order_id: str, figures: Any, at: datetime | None = None) -> bool:
        """Store the figures last computed for an order (:meth:`OrderStore.set_figures
        <drready.servicer.storage.orders.OrderStore.set_figures>`)."""
        return self._orders.set_figures(order_id=order_id, figures=figures, at=at)

    def delivered_by_route(self) -> dict[str, float]:
        """Delivered so far over every order's stored figures, by route
        (:meth:`OrderStore.delivered_by_route
        <drready.servicer.storage.orders.OrderStore.delivered_by_route>`)."""
        return self._orders.delivered_by_route()

    def order_counts(self) -> dict[OrderStatus, int]:
        """Orders per status (:meth:`OrderStore.counts
        <drready.servicer.storage.orders.OrderStore.counts>`)."""
        return self._orders.counts()

    # ------------------------------------------------------------------ schedule, settlements
    def record_job_run(
        self,
        *,
        name: str,
        due_at: datetime,
        attempted_at: datetime,
        ok: bool,
        error: str | None = None,
    ) -> JobRecord:
        """Record a run of a scheduled job (:meth:`JobStore.record
        <drready.servicer.storage.jobs.JobStore.record>`)."""
        return self._jobs.record(
            name=name, due_at=due_at, attempted_at=attempted_at, ok=ok, error=error
        )

    def job_records(self) -> Mapping[str, JobRecord]:
        """Every scheduled job's record, by name (:meth:`JobStore.all
        <drready.servicer.storage.jobs.JobStore.all>`)."""
        return self._jobs.all()

    def save_settlement(
        self,
        *,
        dispatch_id: int,
        event_day: date,
        result: Any,
        csv: str,
        settled_at: datetime | None = None,
    ) -> bool:
        """Store a dispatch's settlement once (:meth:`SettlementStore.save
        <drready.servicer.storage.settlements.SettlementStore.save>`)."""
        return self._settlements.save(
            dispatch_id=dispatch_id,
            event_day=event_day,
            result=result,
            csv=csv,
            settled_at=settled_at,
        )

    def settlement(self, dispatch_id: int) -> SettlementRecord | None:
        """A dispatch's settlement, or ``None`` (:meth:`SettlementStore.get
        <drready.servicer.storage.settlements.SettlementStore.get>`)."""
        return self._settlements.get(dispatch_id)

    def settlements_of_day(self, day: date) -> list[SettlementRecord]:
        """The settlements of a local day's dispatches (:meth:`SettlementStore.of_day
        <drready.servicer.storage.settlements.SettlementStore.of_day>`)."""
        return self._settlements.of_day(day)

    def settled_dispatch_ids(self) -> frozenset[int]:
        """The dispatches settled so far (:meth:`SettlementStore.settled_ids
        <drready.servicer.storage.settlements.SettlementStore.settled_ids>`)."""
        return self._settlements.settled_ids()

    # ------------------------------------------------------------------ U1 tracking
    def create_tracking_run(
        self,
        *,
        started_at: datetime,
        offered_kw: float,
        tolerance_share: float,
        step_s: float,
        label: str,
    ) -> int:
        """Create a command-following run; its id (:meth:`TrackingStore.create_run
        <drready.servicer.storage.tracking.TrackingStore.create_run>`)."""
        return self._tracking.create_run(
            started_at=started_at,
            offered_kw=offered_kw,
            tolerance_share=tolerance_share,
            step_s=step_s,
            label=label,
        )

    def tracking_run(self, run_id: int) -> TrackingRunRecord | None:
        """The run with this id, or ``None`` (:meth:`TrackingStore.run
        <drready.servicer.storage.tracking.TrackingStore.run>`)."""
        return self._tracking.run(run_id)

    def add_tracking_points(
        self,
        *,
        run_id: int,
        t_s: npt.ArrayLike,
        command_kw: npt.ArrayLike,
        heater_kw: npt.ArrayLike,
        battery_kw: npt.ArrayLike,
        output_kw: npt.ArrayLike,
        soc_kwh: npt.ArrayLike,
        heater_source: HeaterSource | str | Sequence[str],
    ) -> int:
        """Store points of a run (a stored one is left unchanged); new points
        (:meth:`TrackingStore.add_points
        <drready.servicer.storage.tracking.TrackingStore.add_points>`)."""
        return self._tracking.add_points(
            run_id=run_id,
            t_s=t_s,
            command_kw=command_kw,
            heater_kw=heater_kw,
            battery_kw=battery_kw,
            output_kw=output_kw,
            soc_kwh=soc_kwh,
            heater_source=heater_source,
        )

    def tracking_points(self, run_id: int) -> TrackingSeries:
        """All points of a run, by time (:meth:`TrackingStore.points
        <drready.servicer.storage.tracking.TrackingStore.points>`)."""
        return self._tracking.points(run_id)

    # ------------------------------------------------------------------ housekeeping
    def counts(self) -> dict[str, int]:
        """Rows per servicer table (for status pages and tests)."""
        with self._engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in sorted(Base.metadata.tables.items())
            }
