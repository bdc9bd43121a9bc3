"""What the servicer's dashboard shows, built from its store and registry (U1, U2, D3, D6).

:func:`build_snapshot` turns the servicer's records — the dispatches and every assignment
(events), the registry's resources with their state and last F5 reading — plus the figures of
the DR windows and of command following that the caller computed (potential, requested,
accepted, delivered; the tracking series), and the quarantine of untrusted VEN reports (counts by
reason, the latest :data:`QUARANTINE_SHOWN`; S1) into a
:class:`~drready.servicer.web.dashboard.DashboardSnapshot`. It only reads.
:func:`order_window_rows` makes those window figures from the orders of the running service
(their stored figures: requested, accepted and delivered so far per route).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from drready.servicer.service import Servicer
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.orders import OrderRecord
from drready.servicer.web.dashboard import (
    DashboardSnapshot,
    EventRow,
    QuarantineCount,
    QuarantineRow,
    ResourceRow,
    SummaryRow,
    TrackingPanel,
    WindowRow,
)

__all__ = ["QUARANTINE_SHOWN", "build_snapshot", "order_window_rows", "summary_rows"]

#: How many of the latest quarantined reports the dashboard lists.
QUARANTINE_SHOWN = 5

_ANSWERED = (AssignmentStatus.ACCEPTED, AssignmentStatus.PARTIAL)


def summary_rows(windows: Sequence[WindowRow]) -> tuple[SummaryRow, ...]:
    """Totals over the windows per route (rows for ``gateway``, ``cloud`` and ``all``)."""
    out = []
    for route in ("gateway", "cloud", "all"):
        rows = [w for w in windows if w.route == route]
        if not rows:
            continue
        out.append(
            SummaryRow(
                route=route,
                requested_kwh=sum(w.requested_kwh for w in rows),
                accepted_kwh=sum(w.accepted_kwh for w in rows),
                delivered_kwh=sum(w.delivered_kwh for w in rows),
                shortages=sum(w.shortages for w in rows),
            )
        )
    return tuple(out)


def order_window_rows(orders: Sequence[OrderRecord], tz: tzinfo) -> tuple[WindowRow, ...]:
    """Window rows (per route and ``all``) of orders that have figures, oldest window first."""
    rows = []
    for order in sorted(orders, key=lambda o: (o.window_start, o.id)):
        figures = order.figures or {}
        if not figures.get("routes"):
            continue
        start, end = order.window_start.astimezone(tz), order.window_end.astimezone(tz)
        label = f"{order.direction.value}-DR {start:%m-%d %H:%M}–{end:%H:%M} {order.id[:8]}"
        potential = max(float(figures.get("potential_kwh") or 0.0), 0.0)
        for route in figures["routes"]:
            rows.append(
                WindowRow(
                    label=label,
                    direction=order.direction,
                    window_start=start,
                    window_end=end,
                    route=route["route"],
                    potential_kwh=0.0,
                    requested_kwh=float(route["requested_kwh"]),
                    accepted_kwh=float(route["accepted_kwh"]),
                    delivered_kwh=float(route["delivered_kwh"]),
                )
            )
        rows.append(
            WindowRow(
                label=label,
                direction=order.direction,
                window_start=start,
                window_end=end,
                route="all",
                potential_kwh=potential,
                requested_kwh=float(figures.get("requested_kwh") or 0.0),
                accepted_kwh=float(figures.get("accepted_kwh") or 0.0),
                delivered_kwh=float(figures.get("delivered_kwh") or 0.0),
            )
        )
    return tuple(rows)


def build_snapshot(
    servicer: Servicer,
    windows: Sequence[WindowRow],
    tracking: TrackingPanel | None,
    *,
    run_state: str,
    now: datetime,
) -> DashboardSnapshot:
    """The dashboard's view of ``servicer`` at ``now`` (see the module docstring)."""
    store = servicer.store
    tz = now.tzinfo  # the store keeps UTC; the page shows the servicer's local time
    resources = servicer.registry.list_resources()
    names = {r.id: r.resource_name for r in resources}
    events = []
    for record in store.dispatches():
        for a in record.assignments:
            if a.event_id is None:
                continue
            answered = a.status in _ANSWERED and not a.late
            events.append(
                EventRow(
                    event_id=a.event_id,
                    label=record.label[:80],
                    direction=record.direction,
                    window_start=record.window_start.astimezone(tz),
                    window_end=record.window_end.astimezone(tz),
                    resource_name=names.get(a.resource_id, a.resource_id),
                    round=a.round,
                    requested_kwh=a.requested_kwh,
                    status=a.status.value,
                    accepted_kwh=(a.accepted_kwh or 0.0) if answered else None,
                )
            )
    rows = []
    for r in resources:
        series = store.power_readings(
            resource_id=r.id, start=now - timedelta(days=2), end=now + timedelta(seconds=1)
        )
        last_kw = float(series.power_w[-1]) / 1000.0 if len(series.timestamps) else None
        rows.append(
            ResourceRow(
                resource_name=r.resource_name,
                ven_name=r.ven_name,
                route=r.route.value,
                kind=r.kind.value,
                n_units=max(r.n_units, 1),
                state=r.state.value,
                last_seen_at=None if r.last_seen_at is None else r.last_seen_at.astimezone(tz),
                last_power_kw=None if last_kw is None else max(last_kw, 0.0),
            )
        )
    quarantine = store.quarantine
    counts = tuple(
        QuarantineCount(reason=reason.value, count=n) for reason, n in quarantine.counts().items()
    )
    latest = tuple(
        QuarantineRow(
            quarantined_at=q.quarantined_at.astimezone(tz),
            kind=q.kind[:128] or "?",
            client_id=None if q.client_id is None else q.client_id[:128],
            resource_name=q.resource_name[:128],
            reason=q.reason.value,
        )
        for q in quarantine.latest(QUARANTINE_SHOWN)
    )
    return DashboardSnapshot(
        generated_at=now,
        run_state="finished" if run_state == "finished" else "running",
        summary=summary_rows(windows),
        windows=tuple(windows),
        events=tuple(sorted(events, key=lambda e: (e.window_start, e.round, e.resource_name))),
        resources=tuple(rows),
        tracking=tracking,
        quarantine_counts=counts,
        quarantine_latest=latest,
    )
