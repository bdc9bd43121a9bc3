"""Settlement of a DR event: delivered energy per resource and portfolio, per slot (U2, D2, D6).

For every 30-minute slot of the event window and every resource:

* ``baseline_kwh`` — what the resource would have used without the event
  (:mod:`drready.servicer.core.baseline`, "High 4 of 5" with same-day adjustment);
* ``actual_kwh`` — what it used (meter data);
* ``delivered_kwh`` — ``baseline − actual`` for down-DR (energy not consumed), ``actual −
  baseline`` for up-DR (extra energy consumed); negative when the resource moved the wrong way;
* ``requested_kwh`` — what was asked of it: given per resource for the whole window it is spread
  evenly over the window's slots; it may also be given per slot;
* ``accepted_kwh`` — what it accepted of that (F3), in the same form; optional (unknown when a
  settlement is made from requests alone);
* ``delivered_ratio`` — ``delivered / requested`` (none where nothing was requested).

The **portfolio** is the sum of its resources, slot by slot (the ratio is the ratio of the sums).

:func:`settle_event` is the servicer's daily settlement of one event from 30-minute meter
history: the baseline of every resource that took part
(:func:`~drready.servicer.core.baseline.compute_baseline`; the same-day adjustment left out when
its hours overlap another DR window of the day, which would carry that event's deviation into
this one's baseline), then the settlement of those that have one, and the reason for each that
has none. Only the resources that *took part* are passed to it: the servicer settles the
resources that accepted the event (a resource that refused delivers nothing it was paid for,
and crediting it with its own load shifts for other events would pay it for them).
Nothing is floored or capped here: a programme that pays nothing for negative delivery (as many
household programmes do, see [1]_ of :mod:`~drready.servicer.core.baseline`) applies that rule
on top.

CSV export (:meth:`Settlement.to_csv`, read back by :func:`read_settlement_csv`) — one row per
resource per slot, then one portfolio row per slot, with this header::

    event_id,direction,level,resource_id,slot_start,slot_end,baseline_kwh,actual_kwh,
    delivered_kwh,requested_kwh,accepted_kwh,delivered_ratio

``level`` is ``resource`` or ``portfolio`` (whose ``resource_id`` is empty); ``direction`` is
``up`` or ``down``; slot times are ISO 8601 with the UTC offset (``2026-06-10T14:00:00+09:00``);
energies are kWh written with the shortest repr that round-trips exactly; ``accepted_kwh`` is
empty where it is not known; ``delivered_ratio`` is empty where ``requested_kwh`` is 0. The
reader also takes files written before the ``accepted_kwh`` column existed. It checks the
header, that each resource covers the window's consecutive slots, that ``delivered`` matches the
direction and that the portfolio rows are the sums, and returns a :class:`Settlement` equal to
the one written.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from drready.domain import DEFAULT_TZ, SLOT, Direction, SlotGrid
from drready.domain.base import (
    DomainModel,
    FiniteFloat,
    NonNegativeFloat,
    RequestId,
    ShortText,
)
from drready.domain.time import zone
from drready.domain.tolerances import ROUNDOFF

from .baseline import BaselineConfig, BaselineResult, DrDays, EventWindow, compute_baseline

__all__ = [
    "CSV_COLUMNS",
    "EventSettlement",
    "ResourceSettlement",
    "Settlement",
    "delivered_kwh",
    "event_baseline_config",
    "read_settlement_csv",
    "settle",
    "settle_baseline",
    "settle_event",
]

FloatArray = npt.NDArray[np.float64]

#: Columns of the settlement CSV, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "event_id",
    "direction",
    "level",
    "resource_id",
    "slot_start",
    "slot_end",
    "baseline_kwh",
    "actual_kwh",
    "delivered_kwh",
    "requested_kwh",
    "accepted_kwh",
    "delivered_ratio",
)
#: The columns of files written before ``accepted_kwh`` existed (read, never written).
_CSV_COLUMNS_V1: tuple[str, ...] = tuple(c for c in CSV_COLUMNS if c != "accepted_kwh")
_PORTFOLIO_ID = "portfolio"
_MAX_ERRORS_LISTED = 5

Level = Literal["resource", "portfolio"]


def delivered_kwh(
    direction: Direction, baseline_kwh: npt.ArrayLike, actual_kwh: npt.ArrayLike
) -> FloatArray:
    """Delivered energy: ``baseline − actual`` (down-DR) or ``actual − baseline`` (up-DR) [kWh].

    Examples
    --------
    >>> float(delivered_kwh(Direction.DOWN, 1.0, 0.25))
    0.75
    >>> float(delivered_kwh(Direction.UP, 1.0, 1.5))
    0.5
    """
    b = np.asarray(baseline_kwh, dtype=np.float64)
    a = np.asarray(actual_kwh, dtype=np.float64)
    return b - a if direction is Direction.DOWN else a - b


def _ratio(delivered: float, requested: float) -> float | None:
    return delivered / requested if requested > 0 else None


class ResourceSettlement(DomainModel):
    """One resource's (or the portfolio's) settlement, per slot of the window [kWh]."""

    resource_id: ShortText = Field(description="Resource name; 'portfolio' for the sum.")
    baseline_kwh: tuple[FiniteFloat, ...] = Field(description="Baseline per slot [kWh].")
    actual_kwh: tuple[FiniteFloat, ...] = Field(description="Metered use per slot [kWh].")
    delivered_kwh: tuple[FiniteFloat, ...] = Field(description="Delivered per slot [kWh].")
    requested_kwh: tuple[NonNegativeFloat, ...] = Field(description="Requested per slot [kWh].")
    accepted_kwh: tuple[NonNegativeFloat, ...] | None = Field(
        default=None, description="Accepted per slot [kWh]; None when not known."
    )

    @model_validator(mode="after")
    def _check(self) -> ResourceSettlement:
        n = len(self.baseline_kwh)
        if n == 0:
            raise ValueError(f"resource {self.resource_id!r}: at least one slot is needed")
        names = ["actual_kwh", "delivered_kwh", "requested_kwh"]
        if self.accepted_kwh is not None:
            names.append("accepted_kwh")
        for name in names:
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"resource {self.resource_id!r}: {name} must have one value per slot ({n}), "
                    f"got {len(getattr(self, name))}"
                )
        return self

    @property
    def delivered_ratio(self) -> tuple[float | None, ...]:
        """``delivered / requested`` per slot; None where nothing was requested."""
        return tuple(
            _ratio(d, r) for d, r in zip(self.delivered_kwh, self.requested_kwh, strict=True)
        )

    @property
    def total_baseline_kwh(self) -> float:
        """Baseline over the window [kWh]."""
        return math.fsum(self.baseline_kwh)

    @property
    def total_actual_kwh(self) -> float:
        """Metered use over the window [kWh]."""
        return math.fsum(self.actual_kwh)

    @property
    def total_delivered_kwh(self) -> float:
        """Delivered over the window [kWh]."""
        return math.fsum(self.delivered_kwh)

    @property
    def total_requested_kwh(self) -> float:
        """Requested over the window [kWh]."""
        return math.fsum(self.requested_kwh)

    @property
    def total_accepted_kwh(self) -> float | None:
        """Accepted over the window [kWh]; None when not known."""
        return None if self.accepted_kwh is None else math.fsum(self.accepted_kwh)

    @property
    def total_delivered_ratio(self) -> float | None:
        """Delivered / requested over the window; None when nothing was requested."""
        return _ratio(self.total_delivered_kwh, self.total_requested_kwh)


class Settlement(DomainModel):
    """Settlement of one DR event (one direction, one window) for a set of resources."""

    event_id: RequestId = Field(description="Id of the DR event or request settled.")
    direction: Direction = Field(description="'up' or 'down'.")
    window: SlotGrid = Field(description="The event window (its slots are settled).")
    resources: tuple[ResourceSettlement, ...] = Field(description="One entry per resource.")

    @model_validator(mode="after")
    def _check(self) -> Settlement:
        if not self.resources:
            raise ValueError("resources must hold at least one resource")
        n = self.window.n_slots
        seen: set[str] = set()
        for res in self.resources:
            if res.resource_id in seen:
                raise ValueError(f"resource_id {res.resource_id!r} appears more than once")
            seen.add(res.resource_id)
            if len(res.baseline_kwh) != n:
                raise ValueError(
                    f"resource {res.resource_id!r} must have one value per slot of the window "
                    f"({n}), got {len(res.baseline_kwh)}"
                )
            expected = delivered_kwh(self.direction, res.baseline_kwh, res.actual_kwh)
            got = np.asarray(res.delivered_kwh)
            # round-off of the difference, relative to the energies (+1 kWh: zeros compare
            # absolutely)
            bad = np.abs(got - expected) > ROUNDOFF * (
                1 + np.abs(np.asarray(res.baseline_kwh)) + np.abs(np.asarray(res.actual_kwh))
            )
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                down = self.direction is Direction.DOWN
                rule = "baseline − actual" if down else "actual − baseline"
                raise ValueError(
                    f"resource {res.resource_id!r} slot {self.slot_starts()[k].isoformat()}: "
                    f"delivered_kwh must be {rule} for {self.direction.value}-DR = "
                    f"{float(expected[k])!r}, got {float(got[k])!r}"
                )
        return self

    # -- views --------------------------------------------------------------------------------
    def slot_starts(self) -> list[datetime]:
        """Start of each slot of the window, in the window's zone."""
        return self.window.starts()

    @property
    def resource_ids(self) -> tuple[str, ...]:
        """The resources, in order."""
        return tuple(r.resource_id for r in self.resources)

    def array(
        self, field: Literal["baseline_kwh", "actual_kwh", "delivered_kwh", "requested_kwh"]
    ) -> FloatArray:
        """(R, n_slots) array of one per-slot field [kWh]."""
        return np.array([getattr(r, field) for r in self.resources], dtype=np.float64)

    @property
    def portfolio(self) -> ResourceSettlement:
        """The sum of all resources, slot by slot (resource_id ``'portfolio'``)."""
        sums = {
            name: tuple(float(v) for v in self.array(name).sum(axis=0))
            for name in ("baseline_kwh", "actual_kwh", "delivered_kwh", "requested_kwh")
        }
        accepted = None
        if all(r.accepted_kwh is not None for r in self.resources):
            accepted = tuple(
                float(v)
                for v in np.array([r.accepted_kwh for r in self.resources], dtype=np.float64).sum(
                    axis=0
                )
            )
        return ResourceSettlement(resource_id=_PORTFOLIO_ID, accepted_kwh=accepted, **sums)

    def rows(self) -> Iterator[dict[str, str]]:
        """The CSV rows (as written by :meth:`to_csv`), resources first, then the portfolio."""
        starts = self.slot_starts()
        ends = [*starts[1:], self.window.end]
        groups: list[tuple[Level, ResourceSettlement]] = [("resource", r) for r in self.resources]
        groups.append(("portfolio", self.portfolio))
        for level, res in groups:
            ratios = res.delivered_ratio
            accepted = res.accepted_kwh
            for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
                ratio = ratios[k]
                yield {
                    "event_id": self.event_id,
                    "direction": self.direction.value,
                    "level": level,
                    "resource_id": res.resource_id if level == "resource" else "",
                    "slot_start": start.isoformat(),
                    "slot_end": end.isoformat(),
                    "baseline_kwh": repr(res.baseline_kwh[k]),
                    "actual_kwh": repr(res.actual_kwh[k]),
                    "delivered_kwh": repr(res.delivered_kwh[k]),
                    "requested_kwh": repr(res.requested_kwh[k]),
                    "accepted_kwh": "" if accepted is None else repr(accepted[k]),
                    "delivered_ratio": "" if ratio is None else repr(ratio),
                }

    def to_csv(self, dest: str | PathLike[str] | IO[str]) -> None:
        """Write the CSV (format in the module docstring) to a path or an open text stream."""
        if isinstance(dest, str | PathLike):
            with Path(dest).open("w", newline="", encoding="utf-8") as f:
                self._write(f)
        else:
            self._write(dest)

    def _write(self, f: IO[str]) -> None:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())

    def to_csv_text(self) -> str:
        """The CSV as a string."""
        buf = io.StringIO()
        self._write(buf)
        return buf.getvalue()


# -- building a settlement --------------------------------------------------------------------


def _as_2d(value: npt.ArrayLike, name: str, n_res: int, n_slots: int) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n_res, n_slots):
        raise ValueError(
            f"{name} must have shape (resources, slots) = ({n_res}, {n_slots}), got {arr.shape}"
        )
    return arr


def _requested(
    value: npt.ArrayLike, n_res: int, n_slots: int, name: str = "requested_kwh"
) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (n_res,):
        per_slot = np.repeat(arr[:, None] / n_slots, n_slots, axis=1)
    elif arr.shape == (n_res, n_slots):
        per_slot = arr
    else:
        raise ValueError(
            f"{name} must have shape ({n_res},) (per resource for the window, spread "
            f"evenly over its {n_slots} slots) or ({n_res}, {n_slots}) (per slot), got {arr.shape}"
        )
    if not np.isfinite(per_slot).all() or (per_slot < 0).any():
        raise ValueError(f"{name} must be finite and >= 0")
    return per_slot


def _check_finite(arr: FloatArray, name: str, ids: Sequence[str], starts: list[datetime]) -> None:
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    listed = [
        f"{ids[r]!r} at {starts[c].strftime('%H:%M')}"
        for r, c in zip(rows[:_MAX_ERRORS_LISTED], cols[:_MAX_ERRORS_LISTED], strict=True)
    ]
    more = f" and {rows.size - len(listed)} more" if rows.size > len(listed) else ""
    raise ValueError(f"{name} must be finite; missing or invalid for " + ", ".join(listed) + more)


def settle(
    *,
    event_id: str,
    direction: Direction,
    window: SlotGrid,
    resource_ids: Sequence[str],
    baseline_kwh: npt.ArrayLike,
    actual_kwh: npt.ArrayLike,
    requested_kwh: npt.ArrayLike,
    accepted_kwh: npt.ArrayLike | None = None,
) -> Settlement:
    """Settle an event from per-slot baseline and actual energy of R resources.

    Parameters
    ----------
    event_id : str
        Id of the event (1–64 characters from ``[A-Za-z0-9._:-]``).
    direction : Direction
        UP (delivered = actual − baseline) or DOWN (delivered = baseline − actual).
    window : SlotGrid
        The event window; ``n_slots`` columns below.
    resource_ids : sequence of str
        R unique resource names.
    baseline_kwh, actual_kwh : array_like, shape (R, n_slots)
        Baseline and metered energy per slot [kWh]; must be finite.
    requested_kwh : array_like, shape (R,) or (R, n_slots)
        Requested energy per resource for the window (spread evenly over the slots) or per slot
        [kWh]; finite and ≥ 0.
    accepted_kwh : array_like, shape (R,) or (R, n_slots), optional
        What each resource accepted of its request, in the same form [kWh]; not known when
        omitted (an empty CSV column).

    Returns
    -------
    Settlement

    Raises
    ------
    ValueError
        Shapes, non-finite values (naming the resources and slots), negative requests, duplicate
        ids.
    """
    ids = tuple(resource_ids)
    n_res, n_slots = len(ids), window.n_slots
    if n_res == 0:
        raise ValueError("resource_ids must name at least one resource")
    starts = window.starts()
    base = _as_2d(baseline_kwh, "baseline_kwh", n_res, n_slots)
    act = _as_2d(actual_kwh, "actual_kwh", n_res, n_slots)
    _check_finite(base, "baseline_kwh", ids, starts)
    _check_finite(act, "actual_kwh", ids, starts)
    req = _requested(requested_kwh, n_res, n_slots)
    acc = None if accepted_kwh is None else _requested(accepted_kwh, n_res, n_slots, "accepted_kwh")
    dlv = delivered_kwh(direction, base, act)
    resources = tuple(
        ResourceSettlement(
            resource_id=ids[r],
            baseline_kwh=tuple(base[r].tolist()),
            actual_kwh=tuple(act[r].tolist()),
            delivered_kwh=tuple(dlv[r].tolist()),
            requested_kwh=tuple(req[r].tolist()),
            accepted_kwh=None if acc is None else tuple(acc[r].tolist()),
        )
        for r in range(n_res)
    )
    return Settlement(event_id=event_id, direction=direction, window=window, resources=resources)


def settle_baseline(
    baseline: BaselineResult,
    actual_kwh: npt.ArrayLike,
    *,
    event_id: str,
    direction: Direction,
    requested_kwh: npt.ArrayLike,
) -> Settlement:
    """Settle the event whose baseline was computed by
    :func:`~drready.servicer.core.baseline.compute_baseline`.

    ``actual_kwh`` is the event day's meter data, shape (R, 48) (the window's slots are taken)
    or (R, n_window). Resources without a baseline (not ``ok``) are an error naming them.
    """
    w = baseline.window
    act = np.asarray(actual_kwh, dtype=np.float64)
    n_res = baseline.n_resources
    if act.shape == (n_res, 48):
        act = act[:, w.start_slot : w.end_slot]
    elif act.shape != (n_res, w.n_slots):
        raise ValueError(
            f"actual_kwh must have shape ({n_res}, 48) (the event day) or ({n_res}, "
            f"{w.n_slots}) (the window), got {act.shape}"
        )
    if not baseline.ok.all():
        missing = [baseline.resource_ids[r] for r in np.flatnonzero(~baseline.ok)]
        more = (
            f" and {len(missing) - _MAX_ERRORS_LISTED} more"
            if len(missing) > _MAX_ERRORS_LISTED
            else ""
        )
        raise ValueError(
            "cannot settle resources without a baseline: "
            + ", ".join(repr(m) for m in missing[:_MAX_ERRORS_LISTED])
            + more
        )
    return settle(
        event_id=event_id,
        direction=direction,
        window=w.slot_grid(),
        resource_ids=baseline.resource_ids,
        baseline_kwh=baseline.window_baseline_kwh,
        actual_kwh=act,
        requested_kwh=requested_kwh,
    )


# -- the daily settlement of one event from meter history ------------------------------------


def event_baseline_config(
    window: EventWindow, config: BaselineConfig, other_windows: Iterable[EventWindow] = ()
) -> BaselineConfig:
    """The baseline rules for the event ``window``: ``config``, with the same-day adjustment left
    out when its hours overlap another DR window of the day (any of ``other_windows`` other than
    ``window``) — that window's deviation would otherwise enter this event's baseline (a noon
    up-DR into an evening down-DR's).

    Examples
    --------
    >>> from datetime import date
    >>> evening = EventWindow(day=date(2025, 5, 14), start_slot=34, end_slot=40)  # 17:00–20:00
    >>> noon = EventWindow(day=date(2025, 5, 14), start_slot=20, end_slot=28)  # 10:00–14:00
    >>> event_baseline_config(evening, BaselineConfig(), [noon]).same_day_adjustment
    False
    >>> event_baseline_config(noon, BaselineConfig(), [evening]).same_day_adjustment
    True
    """
    if not config.same_day_adjustment:
        return config
    adj_start = window.start - timedelta(hours=config.adjustment_from_h_before)
    adj_end = window.start - timedelta(hours=config.adjustment_to_h_before)
    if any(o != window and o.start < adj_end and adj_start < o.end for o in other_windows):
        return config.model_copy(update={"same_day_adjustment": False})
    return config


@dataclass(frozen=True)
class EventSettlement:
    """One DR event settled from meter history (:func:`settle_event`).

    ``baseline`` holds every resource's baseline, with the audit of how it was made (rows of
    resources without one are NaN); ``settlement`` settles those that have one (None when none
    has).
    """

    baseline: BaselineResult
    settlement: Settlement | None

    @property
    def unsettled(self) -> dict[str, str]:
        """Resources that could not be settled, each with the reason it has no baseline."""
        return {
            rid: self.baseline.reason(r) or ""
            for r, rid in enumerate(self.baseline.resource_ids)
            if not self.baseline.ok[r]
        }

    def total_delivered_kwh(self, resource_ids: Iterable[str]) -> float | None:
        """Settled delivery over the window, summed over ``resource_ids`` [kWh]; None when none
        of them was settled (those without a baseline add nothing)."""
        if self.settlement is None:
            return None
        settled = {r.resource_id: r.total_delivered_kwh for r in self.settlement.resources}
        found = [settled[rid] for rid in resource_ids if rid in settled]
        return sum(found) if found else None


def settle_event(
    meter_kwh: npt.ArrayLike,
    days: Sequence[date],
    window: EventWindow,
    *,
    event_id: str,
    direction: Direction,
    resource_ids: Sequence[str],
    requested_kwh: npt.ArrayLike,
    accepted_kwh: npt.ArrayLike | None = None,
    config: BaselineConfig | None = None,
    other_windows: Iterable[EventWindow] = (),
    dr_days: DrDays = (),
) -> EventSettlement:
    """Settle a DR event's window for the resources that took part, from 30-minute meter history.

    Each resource's baseline is computed by the rules of ``config`` (adjusted by
    :func:`event_baseline_config` for the day's ``other_windows``); the resources that have one
    are settled against their metered use on the event day; the others are listed with the
    reason (:attr:`EventSettlement.unsettled`), never silently dropped.

    Parameters
    ----------
    meter_kwh : array_like, shape (R, D, 48)
        Metered energy per resource, day and 30-minute slot [kWh]; NaN = missing. Must hold
        the event day (its actual use is settled and feeds the same-day adjustment) and the days
        before it.
    days : sequence of datetime.date, length D
        Consecutive local dates of ``meter_kwh``'s day axis.
    window : EventWindow
        The event window (a day in ``days``).
    event_id : str
        Id of the event (1–64 characters from ``[A-Za-z0-9._:-]``).
    direction : Direction
        UP (delivered = actual − baseline) or DOWN (delivered = baseline − actual).
    resource_ids : sequence of str
        The R resources that took part (those that accepted the event), unique.
    requested_kwh : array_like, shape (R,) or (R, n_slots)
        What each resource was asked for the window (spread evenly over its slots) or per slot
        [kWh]; finite and ≥ 0.
    accepted_kwh : array_like, shape (R,) or (R, n_slots), optional
        What each resource accepted of that, in the same form [kWh].
    config : BaselineConfig, optional
        The baseline rules (holidays included); default: the guideline's standard baseline.
    other_windows : iterable of EventWindow
        The other DR windows of the event day (``window`` itself may be among them).
    dr_days : collection of dates, sequence of collections, or bool array
        Earlier DR days of the resources, excluded from the baseline's candidates
        (:func:`~drready.servicer.core.baseline.compute_baseline`).

    Returns
    -------
    EventSettlement

    Raises
    ------
    ValueError
        Bad shapes, calendar, ids, window or requests (as :func:`compute_baseline` and
        :func:`settle` raise them).
    """
    cfg = event_baseline_config(
        window, config if config is not None else BaselineConfig(), other_windows
    )
    meter = np.asarray(meter_kwh, dtype=np.float64)
    baseline = compute_baseline(
        meter,
        days,
        window,
        dr_days=dr_days,
        config=cfg,
        resource_ids=resource_ids,
        strict=False,
    )
    ok = np.flatnonzero(baseline.ok)
    requested = _requested(requested_kwh, baseline.n_resources, window.n_slots)
    accepted = (
        None
        if accepted_kwh is None
        else _requested(accepted_kwh, baseline.n_resources, window.n_slots, "accepted_kwh")
    )
    if ok.size == 0:
        return EventSettlement(baseline=baseline, settlement=None)
    event_day = list(baseline.days).index(window.day)
    settlement = settle(
        event_id=event_id,
        direction=direction,
        window=window.slot_grid(),
        resource_ids=[baseline.resource_ids[r] for r in ok],
        baseline_kwh=baseline.window_baseline_kwh[ok],
        actual_kwh=meter[ok, event_day, window.start_slot : window.end_slot],
        requested_kwh=requested[ok],
        accepted_kwh=None if accepted is None else accepted[ok],
    )
    return EventSettlement(baseline=baseline, settlement=settlement)


# -- reading the CSV --------------------------------------------------------------------------


def _float(text: str, name: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise ValueError(f"line {line}: {name} must be a number, got {text!r}") from err
    if not math.isfinite(value):
        raise ValueError(f"line {line}: {name} must be finite, got {text!r}")
    return value


def _instant(text: str, name: str, line: int) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"line {line}: {name} must be an ISO 8601 time, got {text!r}") from err
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"line {line}: {name} must carry a UTC offset, got {text!r}")
    return dt


def read_settlement_csv(src: str | PathLike[str] | IO[str], tz: str = DEFAULT_TZ) -> Settlement:
    """Read a settlement CSV written by :meth:`Settlement.to_csv`.

    ``tz`` is the IANA zone of the window (the CSV carries offsets only); every slot time's
    offset must agree with it.

    Raises
    ------
    ValueError
        Naming the line and the problem: wrong header, mixed events or directions, a resource
        missing slots or out of order, delivered not matching the direction, portfolio rows that
        are not the sums of the resource rows, offsets that disagree with ``tz``.
    """
    if isinstance(src, str | PathLike):
        with Path(src).open(newline="", encoding="utf-8") as f:
            return _read(f, tz)
    return _read(src, tz)


def _read(f: IO[str], tz: str) -> Settlement:
    zi = zone(tz)
    reader = csv.DictReader(f)
    header = tuple(reader.fieldnames or ())
    if header not in (CSV_COLUMNS, _CSV_COLUMNS_V1):
        raise ValueError(
            f"the settlement CSV header must be {','.join(CSV_COLUMNS)}, got {','.join(header)}"
        )
    accepted_rows: dict[str, list[float | None]] = {}
    accepted_portfolio: list[float | None] = []
    event_id: str | None = None
    direction: Direction | None = None
    series: dict[str, dict[str, list[float]]] = {}
    slot_lists: dict[str, list[datetime]] = {}
    portfolio: dict[str, list[float]] = {k: [] for k in _NUMBERS}
    portfolio_starts: list[datetime] = []
    for row in reader:
        line = reader.line_num
        if event_id is None:
            event_id = row["event_id"]
            try:
                direction = Direction(row["direction"])
            except ValueError as err:
                raise ValueError(
                    f"line {line}: direction must be 'up' or 'down', got {row['direction']!r}"
                ) from err
        elif row["event_id"] != event_id or row["direction"] != direction:
            raise ValueError(
                f"line {line}: one event per file: expected event_id {event_id!r} and direction "
                f"{direction!r}, got {row['event_id']!r} and {row['direction']!r}"
            )
        start = _instant(row["slot_start"], "slot_start", line)
        end = _instant(row["slot_end"], "slot_end", line)
        if end - start != SLOT:
            raise ValueError(f"line {line}: slot_end must be slot_start + 30 min")
        if start.utcoffset() != start.astimezone(zi).utcoffset():
            raise ValueError(
                f"line {line}: slot_start {row['slot_start']} does not have the UTC offset of "
                f"{tz} at that time; pass the zone the file was written in as tz"
            )
        values = {k: _float(row[k], k, line) for k in _NUMBERS}
        accepted_text = row.get("accepted_kwh") or ""
        accepted_value = _float(accepted_text, "accepted_kwh", line) if accepted_text else None
        ratio_text = row["delivered_ratio"]
        if ratio_text:
            _float(ratio_text, "delivered_ratio", line)
        level = row["level"]
        if level == "resource":
            rid = row["resource_id"]
            store = series.setdefault(rid, {k: [] for k in _NUMBERS})
            slot_lists.setdefault(rid, []).append(start)
            accepted_rows.setdefault(rid, []).append(accepted_value)
            for k, v in values.items():
                store[k].append(v)
        elif level == "portfolio":
            if row["resource_id"]:
                raise ValueError(f"line {line}: portfolio rows have an empty resource_id")
            portfolio_starts.append(start)
            accepted_portfolio.append(accepted_value)
            for k, v in values.items():
                portfolio[k].append(v)
        else:
            raise ValueError(f"line {line}: level must be 'resource' or 'portfolio', got {level!r}")
    if event_id is None or direction is None or not series:
        raise ValueError("the settlement CSV holds no resource rows")
    first_id = next(iter(series))
    starts = slot_lists[first_id]
    window = SlotGrid(start=starts[0], n_slots=len(starts), tz=tz)
    expected = window.starts()
    for rid, got in slot_lists.items():
        if got != expected:
            raise ValueError(
                f"resource {rid!r} must cover the window's {len(expected)} consecutive slots "
                f"from {expected[0].isoformat()} in order, like {first_id!r}"
            )
    settlement = Settlement(
        event_id=event_id,
        direction=direction,
        window=window,
        resources=tuple(
            ResourceSettlement(
                resource_id=rid,
                accepted_kwh=_all_or_none(accepted_rows[rid], f"resource {rid!r}"),
                **{k: tuple(v) for k, v in s.items()},
            )
            for rid, s in series.items()
        ),
    )
    if portfolio_starts != expected:
        raise ValueError(
            f"the portfolio rows must cover the window's {len(expected)} slots in order"
        )
    sums = settlement.portfolio
    _all_or_none(accepted_portfolio, "the portfolio")
    for k in _NUMBERS:
        want = np.asarray(getattr(sums, k))
        got_p = np.asarray(portfolio[k])
        # round-off of a sum, relative to the sizes summed (+1 kWh: zeros compare absolutely)
        scale = 1 + np.abs(settlement.array(k)).sum(axis=0)
        bad = np.abs(got_p - want) > ROUNDOFF * scale
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"portfolio {k} at {expected[i].isoformat()} must be the sum of the resources "
                f"({float(want[i])!r}), got {float(got_p[i])!r}"
            )
    return settlement


def _all_or_none(values: Sequence[float | None], whose: str) -> tuple[float, ...] | None:
    """A column of one resource's rows: every value, or none (empty everywhere)."""
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"accepted_kwh of {whose} must be given in every slot or in none")
    return tuple(v for v in values if v is not None)


_NUMBERS: tuple[Literal["baseline_kwh", "actual_kwh", "delivered_kwh", "requested_kwh"], ...] = (
    "baseline_kwh",
    "actual_kwh",
    "delivered_kwh",
    "requested_kwh",
)
