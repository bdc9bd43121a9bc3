"""The servicer's dashboard: a live web page and the same view as one self-contained HTML report.

Serves U1 (command-value following with a battery: command vs output, battery power, state of
charge, error statistics with and without F5 current-power reports), U2 (up-DR and down-DR
windows: portfolio potential vs requested vs delivered per slot), D3 (one servicer view over both
routes: home gateways and maker clouds), D5 (the run's events and their answers, including
re-dispatch rounds), D6 (resources per unit or as a group, with their state) and S1 (the VEN
reports the servicer set aside — quarantined — counted by reason, and the latest few; their texts
come from untrusted peers and are only ever shown as text).

Three parts, one job each:

- :class:`DashboardSnapshot` — what the page shows, as a frozen pydantic model (JSON on the wire,
  snake_case, units in field names). The servicer builds one from its registry, dispatch log,
  settlement and command-following run; the page never computes a business figure itself except
  the displayed ratio delivered ÷ requested. Parallel series (per-slot, per-sample) are checked
  for equal length with an error naming the field.
- :func:`dashboard_router` — a FastAPI ``APIRouter``: ``GET /`` (the page), ``GET /static/{name}``
  (the page's assets, read from the package with :mod:`importlib.resources`; names are one plain
  file name from a fixed set of suffixes, so no path can leave ``drready/data/web``) and
  ``GET /api/dashboard`` (the snapshot JSON). The page polls the API every ``poll_interval_s``
  seconds and re-renders, so it is live while a run is going on.
- :func:`render_report_html` / :func:`write_report` — one HTML file with the stylesheet, the
  script and the snapshot JSON inlined: the same markup and the same rendering code as the live
  page, opened from disk (``file://``) with no network at all. A Content-Security-Policy with the
  hashes of the inlined script and style makes that a guarantee, not a habit.

Charts are hand-written SVG in ``dashboard.js`` (about 150 lines: axes, "nice" ticks, step and
line series, a shaded tolerance band, a legend) rather than a vendored library such as uPlot
(MIT, canvas): no third-party code or licence to ship and audit, no build step, and SVG is part
of the DOM, so each series is an element that tests (and screen readers, via ``<title>`` and
``<desc>``) can see; every number a chart shows is also printed as text in a table next to it.
No CDN, no web font, no request to any host but the one serving the page.

References
----------
W3C, "Content Security Policy Level 3", §2.3.1 (hash-source for inline ``<script>`` and
``<style>`` elements) — https://www.w3.org/TR/CSP3/.
WHATWG HTML, §4.12.1.3 "Restrictions for contents of script elements" (why ``<`` is escaped
in the inlined JSON) — https://html.spec.whatwg.org/multipage/scripting.html.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field, StringConstraints, model_validator

from drready.domain import DEFAULT_TZ, Direction, DomainModel, Instant
from drready.domain.base import FiniteFloat, Fraction, NonNegativeFloat, ShortText

__all__ = [
    "ASSET_MEDIA_TYPES",
    "DashboardSnapshot",
    "EventRow",
    "QuarantineCount",
    "QuarantineRow",
    "ResourceRow",
    "SnapshotProvider",
    "SummaryRow",
    "TrackingPanel",
    "TrackingStats",
    "WindowRow",
    "asset_bytes",
    "dashboard_router",
    "render_report_html",
    "write_report",
]

#: Where the page's assets live inside the package.
_WEB = ("data", "web")
#: Media type of each asset suffix the static route will serve; anything else is a 404.
ASSET_MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
#: One plain file name: no separator, no leading dot, no "..".
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9]+)+")
#: Allowed page polling interval [s].
_POLL_RANGE_S = (0.2, 3600.0)

# The markers dashboard.html carries; render_report_html and the router substitute them.
_CSS_LINK = '<link rel="stylesheet" href="static/dashboard.css">'
_JS_TAG = '<script src="static/dashboard.js" defer></script>'
_POLL_MARK = "{{POLL_S}}"
_CSP_MARK = "<!--{{CSP}}-->"

#: Content-Security-Policy of the live page: everything from this origin only.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE_CSP_WITH_FORMS = _PAGE_CSP.replace("form-action 'none'", "form-action 'self'")
_BODY_OPEN = re.compile(r"<body[^>]*>")

_Route = Literal["gateway", "cloud"]
"""How a resource reaches the servicer: a home gateway (route i) or a maker cloud (route ii)."""
_SummaryRoute = Literal["gateway", "cloud", "all"]
"""A route, or both together."""
_EventStatus = Literal["pending", "sent", "accepted", "partial", "rejected", "silent", "cancelled"]
"""Where a DR event stands: not sent yet (pending), sent and not answered yet (sent), answered
(accepted in full, in part, or rejected), never answered before its window (silent), or
withdrawn by the servicer (cancelled)."""
_ResourceKind = Literal["unit", "group"]
"""A resource is one water heater or a group of them managed together (D6)."""
_ResourceState = Literal["active", "offline", "retired"]
"""Registry state of a resource."""

_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_Count = Annotated[int, Field(ge=0)]
_Series = tuple[FiniteFloat, ...]


def _check_parallel(axis: str, n: int, series: dict[str, Sequence[object]]) -> None:
    """``ValueError`` naming the first series whose length differs from the axis'."""
    for name, values in series.items():
        if len(values) != n:
            raise ValueError(
                f"{name} has {len(values)} values but {axis} has {n}; "
                f"parallel series must have one value per {axis} entry"
            )


def _check_increasing(name: str, instants: Sequence[datetime]) -> None:
    """``ValueError`` naming ``name`` unless the instants strictly increase."""
    for i in range(1, len(instants)):
        if instants[i] <= instants[i - 1]:
            raise ValueError(
                f"{name} must strictly increase, got {instants[i - 1].isoformat()} then "
                f"{instants[i].isoformat()} at index {i}"
            )


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValueError(
            f"window_end must be after window_start, got window_start={start.isoformat()}, "
            f"window_end={end.isoformat()}"
        )


class WindowRow(DomainModel):
    """One DR window of the run (U2): portfolio potential vs requested vs accepted vs delivered.

    The window totals are energies over the window [kWh], deviations from the baseline in the
    window's direction (extra consumption for up-DR, avoided consumption for down-DR). The
    per-slot series are the same quantities as mean power per slot [kW], one value per entry of
    ``slot_starts``, for the chart.
    """

    label: ShortText = Field(description="Display name, e.g. 'up-DR 10:00–14:00'.")
    direction: Direction
    window_start: Instant
    window_end: Instant = Field(description="End of the window, exclusive.")
    route: _SummaryRoute = Field(default="all", description="Which resources the row covers.")
    potential_kwh: NonNegativeFloat = Field(description="Declared portfolio potential (F1).")
    requested_kwh: NonNegativeFloat = Field(description="Sum of the amounts requested (F2).")
    accepted_kwh: NonNegativeFloat = Field(description="Sum of the amounts accepted.")
    delivered_kwh: FiniteFloat = Field(description="Measured deviation from the baseline.")
    shortages: _Count = Field(default=0, description="Resources that delivered less than accepted.")
    slot_starts: tuple[Instant, ...] = Field(default=(), description="Start of each slot.")
    potential_kw: _Series = ()
    requested_kw: _Series = ()
    delivered_kw: _Series = ()

    @model_validator(mode="after")
    def _check(self) -> WindowRow:
        _check_window(self.window_start, self.window_end)
        _check_increasing("slot_starts", self.slot_starts)
        _check_parallel(
            "slot_starts",
            len(self.slot_starts),
            {
                "potential_kw": self.potential_kw,
                "requested_kw": self.requested_kw,
                "delivered_kw": self.delivered_kw,
            },
        )
        return self


class EventRow(DomainModel):
    """One DR event sent to one resource (F2) and its answer.

    ``round`` counts dispatch rounds: a shortfall left by a rejection or a partial answer is
    re-dispatched to other resources in round 2, 3, …. ``accepted_kwh`` is ``None`` while no
    answer exists (``pending``, ``sent``, ``silent``) and required once the event was accepted
    or partial.
    """

    event_id: _Name
    label: ShortText
    direction: Direction
    window_start: Instant
    window_end: Instant
    resource_name: _Name
    round: int = Field(default=1, ge=1, le=100, description="Dispatch round, 1 = first.")
    requested_kwh: NonNegativeFloat
    status: _EventStatus
    accepted_kwh: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> EventRow:
        _check_window(self.window_start, self.window_end)
        if self.status in ("pending", "sent", "silent") and self.accepted_kwh is not None:
            raise ValueError(
                f"accepted_kwh must be None while status is {self.status!r} (no answer yet), "
                f"got {self.accepted_kwh!r}"
            )
        if self.status in ("accepted", "partial") and self.accepted_kwh is None:
            raise ValueError(f"accepted_kwh is required when status is {self.status!r}")
        return self


class ResourceRow(DomainModel):
    """One registered resource (D6): a unit or a group, behind a gateway or a maker cloud."""

    resource_name: _Name
    ven_name: _Name
    route: _Route
    kind: _ResourceKind
    n_units: int = Field(default=1, ge=1, le=10_000_000, description="Water heaters behind it.")
    state: _ResourceState
    last_seen_at: Instant | None = Field(default=None, description="Last report received.")
    last_power_kw: NonNegativeFloat | None = Field(default=None, description="Last F5 power.")

    @model_validator(mode="after")
    def _check(self) -> ResourceRow:
        if self.kind == "unit" and self.n_units != 1:
            raise ValueError(f"n_units must be 1 for kind 'unit', got {self.n_units}")
        return self


class TrackingStats(DomainModel):
    """How well the portfolio output followed the command (U1)."""

    mean_abs_error_kw: NonNegativeFloat
    max_abs_error_kw: NonNegativeFloat
    share_within_tolerance: Fraction = Field(
        description="Share of samples with |output − command| ≤ tolerance, in [0, 1]."
    )

    @model_validator(mode="after")
    def _check(self) -> TrackingStats:
        if self.mean_abs_error_kw > self.max_abs_error_kw * (1 + 1e-9) + 1e-12:
            raise ValueError(
                f"mean_abs_error_kw ({self.mean_abs_error_kw!r}) must not exceed "
                f"max_abs_error_kw ({self.max_abs_error_kw!r})"
            )
        return self

    @classmethod
    def from_series(
        cls, command_kw: Sequence[float], output_kw: Sequence[float], tolerance_kw: float
    ) -> TrackingStats:
        """Statistics of ``|output_kw − command_kw|`` against ``tolerance_kw`` (≥ 0) [kW]."""
        command = np.asarray(command_kw, dtype=float)
        output = np.asarray(output_kw, dtype=float)
        if command.ndim != 1 or command.size == 0:
            raise ValueError(
                f"command_kw must be a non-empty 1-D series, got shape {command.shape}"
            )
        if output.shape != command.shape:
            raise ValueError(
                f"output_kw has {output.size} values but command_kw has {command.size}"
            )
        if not (math.isfinite(tolerance_kw) and tolerance_kw >= 0):
            raise ValueError(f"tolerance_kw must be finite and >= 0, got {tolerance_kw!r}")
        err = np.abs(output - command)
        if not np.all(np.isfinite(err)):
            raise ValueError("command_kw and output_kw must be finite")
        return cls(
            mean_abs_error_kw=float(err.mean()),
            max_abs_error_kw=float(err.max()),
            share_within_tolerance=float(np.mean(err <= tolerance_kw)),
        )


class TrackingPanel(DomainModel):
    """Command-value following of the resource group (U1): one value per entry of ``times``.

    ``output_kw`` is the group's power as the servicer measures it (water heaters +
    battery); ``heater_kw`` the water heaters' part (F5), ``battery_kw`` the battery's (> 0
    charging), ``soc_kwh`` the battery's state of charge. ``stats_without_f5`` optionally holds
    the same statistics for a run in which the servicer had no current-power reports.
    """

    offered_kw: NonNegativeFloat = Field(description="Capacity offered for command following.")
    tolerance_kw: NonNegativeFloat = Field(description="Allowed |output − command|.")
    times: tuple[Instant, ...] = Field(min_length=1)
    command_kw: _Series
    output_kw: _Series
    heater_kw: _Series
    battery_kw: _Series
    soc_kwh: tuple[NonNegativeFloat, ...]
    stats: TrackingStats
    stats_without_f5: TrackingStats | None = None

    @model_validator(mode="after")
    def _check(self) -> TrackingPanel:
        _check_increasing("times", self.times)
        _check_parallel(
            "times",
            len(self.times),
            {
                "command_kw": self.command_kw,
                "output_kw": self.output_kw,
                "heater_kw": self.heater_kw,
                "battery_kw": self.battery_kw,
                "soc_kwh": self.soc_kwh,
            },
        )
        return self


class SummaryRow(DomainModel):
    """Totals of the run for one route (or ``all``)."""

    route: _SummaryRoute
    requested_kwh: NonNegativeFloat
    accepted_kwh: NonNegativeFloat
    delivered_kwh: FiniteFloat
    shortages: _Count = 0


class QuarantineCount(DomainModel):
    """How many VEN reports or resources the servicer set aside for one reason (S1)."""

    reason: _Name = Field(description="Why they were set aside, e.g. 'not_owner'.")
    count: _Count


class QuarantineRow(DomainModel):
    """One report or resource set aside (S1). The texts come from untrusted peers: the page
    shows them as text only (``textContent``), never as HTML."""

    quarantined_at: Instant
    kind: _Name = Field(description="What was set aside: 'potential', 'plan', 'power', …")
    client_id: str | None = Field(default=None, max_length=128, description="The VEN's client.")
    resource_name: str = Field(default="", max_length=128, description="Its resource, if any.")
    reason: _Name


class DashboardSnapshot(DomainModel):
    """Everything the dashboard shows at one instant; the body of ``GET /api/dashboard``."""

    title: ShortText = "drready DR servicer"
    generated_at: Instant
    run_state: Literal["running", "finished"] = "finished"
    timezone: ShortText = Field(default=DEFAULT_TZ, description="Zone of the displayed times.")
    summary: tuple[SummaryRow, ...] = ()
    windows: tuple[WindowRow, ...] = ()
    events: tuple[EventRow, ...] = ()
    resources: tuple[ResourceRow, ...] = ()
    tracking: TrackingPanel | None = None
    quarantine_counts: tuple[QuarantineCount, ...] = Field(
        default=(), description="VEN reports set aside, by reason (S1)."
    )
    quarantine_latest: tuple[QuarantineRow, ...] = Field(
        default=(), description="The latest reports set aside, newest first (S1)."
    )

    @model_validator(mode="after")
    def _check(self) -> DashboardSnapshot:
        routes = [row.route for row in self.summary]
        if len(set(routes)) != len(routes):
            raise ValueError(f"summary must have at most one row per route, got routes {routes}")
        return self


SnapshotProvider = Callable[[], DashboardSnapshot | Awaitable[DashboardSnapshot]]
"""Returns the current snapshot, synchronously or as an awaitable. A synchronous provider runs
on the event loop, so it must be cheap (read state, do not compute a run)."""


@cache
def asset_bytes(name: str) -> bytes:
    """The bytes of one dashboard asset shipped in ``drready/data/web``.

    ``name`` is one plain file name (``dashboard.js``) with a suffix from
    :data:`ASSET_MEDIA_TYPES`; anything else — a path, ``..``, an unknown suffix, a missing
    file — raises ``FileNotFoundError``.
    """
    if not _ASSET_NAME.fullmatch(name) or Path(name).suffix not in ASSET_MEDIA_TYPES:
        raise FileNotFoundError(f"no dashboard asset named {name!r}")
    resource = files("drready").joinpath(*_WEB, name)
    if not resource.is_file():
        raise FileNotFoundError(f"no dashboard asset named {name!r}")
    return resource.read_bytes()


def _template() -> str:
    page = asset_bytes("dashboard.html").decode("utf-8")
    for mark in (_CSS_LINK, _JS_TAG, _POLL_MARK, _CSP_MARK):
        if page.count(mark) != 1:
            raise RuntimeError(f"dashboard.html must contain {mark!r} exactly once")
    return page


def dashboard_router(
    snapshot_provider: SnapshotProvider,
    *,
    poll_interval_s: float = 3.0,
    operator_bar: Callable[[Request], str] | None = None,
) -> APIRouter:
    """A router serving the dashboard page, its assets and the snapshot API.

    Parameters
    ----------
    snapshot_provider
        Called on every ``GET /api/dashboard``; returns a :class:`DashboardSnapshot` or an
        awaitable of one.
    poll_interval_s
        How often the page re-reads the API [s], in [0.2, 3600].
    operator_bar
        Behind a login (:mod:`drready.servicer.web.login`): the HTML of the "signed in as … /
        log out" form for a request, put at the top of the page's body (the page's CSP then
        allows forms to post to this server).

    Mount it anywhere (``app.include_router(router, prefix="/dashboard")``): the page uses
    relative URLs, so it works under any prefix that ends in ``/``.
    """
    lo, hi = _POLL_RANGE_S
    if not (math.isfinite(poll_interval_s) and lo <= poll_interval_s <= hi):
        raise ValueError(f"poll_interval_s must be in [{lo:g}, {hi:g}] s, got {poll_interval_s!r}")
    page = _template().replace(_POLL_MARK, f"{poll_interval_s:g}").replace(_CSP_MARK, "")
    page_headers = {
        "Content-Security-Policy": _PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    router = APIRouter()

    bar_headers = {**page_headers, "Content-Security-Policy": _PAGE_CSP_WITH_FORMS}

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page(request: Request) -> HTMLResponse:
        if operator_bar is None:
            return HTMLResponse(page, headers=page_headers)
        with_bar = _BODY_OPEN.sub(lambda m: m.group(0) + operator_bar(request), page, count=1)
        return HTMLResponse(with_bar, headers=bar_headers)

    @router.get("/static/{name}", include_in_schema=False)
    async def dashboard_asset(name: str) -> Response:
        try:
            body = asset_bytes(name)
        except FileNotFoundError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        return Response(
            body,
            media_type=ASSET_MEDIA_TYPES[Path(name).suffix],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    @router.get(
        "/api/dashboard",
        response_model=DashboardSnapshot,
        summary="Current dashboard snapshot",
        tags=["dashboard"],
    )
    async def dashboard_snapshot() -> Response:
        result = snapshot_provider()
        snapshot = await result if inspect.isawaitable(result) else result
        if not isinstance(snapshot, DashboardSnapshot):
            raise TypeError(
                f"snapshot_provider must return a DashboardSnapshot, got {type(snapshot).__name__}"
            )
        return Response(
            snapshot.model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    return router


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _inline_safe(text: str, what: str) -> str:
    lowered = text.lower()
    for bad in ("</script", "</style", "<!--"):
        if bad in lowered:
            raise RuntimeError(f"{what} contains {bad!r} and cannot be inlined")
    return text


def render_report_html(snapshot: DashboardSnapshot) -> str:
    """One self-contained HTML file showing ``snapshot`` exactly as the live page does.

    The stylesheet, the script and the snapshot (JSON, with ``<``, ``>`` and ``&`` escaped as
    ``\\u003c``… so no value can close the ``<script>`` element) are inlined; a
    Content-Security-Policy ``<meta>`` allows only these two inlined blocks (by SHA-256) and
    ``data:`` images, so the report cannot load or send anything. The page does not poll.
    """
    css = _inline_safe(asset_bytes("dashboard.css").decode("utf-8"), "dashboard.css")
    js = _inline_safe(asset_bytes("dashboard.js").decode("utf-8"), "dashboard.js")
    data = (
        snapshot.model_dump_json()
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    )
    csp = (
        f"default-src 'none'; script-src {_csp_hash(js)}; style-src {_csp_hash(css)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    page = _template()
    return (
        page.replace(_CSP_MARK, f'<meta http-equiv="Content-Security-Policy" content="{csp}">')
        .replace(_POLL_MARK, "0")
        .replace(_CSS_LINK, f"<style>{css}</style>")
        .replace(
            _JS_TAG,
            f'<script type="application/json" id="dashboard-data">{data}</script>\n'
            f"<script>{js}</script>",
        )
    )


def write_report(snapshot: DashboardSnapshot, path: str | Path) -> Path:
    """Write :func:`render_report_html` of ``snapshot`` to ``path`` (UTF-8); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report_html(snapshot), encoding="utf-8")
    return out
