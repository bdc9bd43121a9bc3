"""Settlement of a DR event: delivered energy per resource and portfolio, per slot (U2, D2, D6).

For every 30-minute slot of the event window and every resource:

* ``baseline_kwh`` — what the resource would have used without the event
  (:mod:`drready.servicer.core.baseline`, "High 4 of 5" with same-day adjustment);
* ``actual_kwh`` — what it used (meter data);
* ``delivered_kwh`` — ``baseline − actual`` for down-DR (energy not consumed), ``actual −
  baseline`` for up-DR (extra energy consumed); negative when the resource moved the wrong way;
* ``requested_kwh`` — what was asked of it: given per resource for the whole window it is spread
  evenly over the window's slots; it may also be given per slot;
* ``delivered_ratio`` — ``delivered / requested`` (none where nothing was requested).

The **portfolio** is the sum of its resources, slot by slot (the ratio is the ratio of the sums).
Nothing is floored or capped here: a programme that pays nothing for negative delivery (as many
household programmes do, see [1]_ of :mod:`~drready.servicer.core.baseline`) applies that rule
on top.

CSV export (:meth:`Settlement.to_csv`, read back by :func:`read_settlement_csv`) — one row per
resource per slot, then one portfolio row per slot, with this header::

    event_id,direction,level,resource_id,slot_start,slot_end,baseline_kwh,actual_kwh,
    delivered_kwh,requested_kwh,delivered_ratio

``level`` is ``resource`` or ``portfolio`` (whose ``resource_id`` is empty); ``direction`` is
``up`` or ``down``; slot times are ISO 8601 with the UTC offset (``2026-06-10T14:00:00+09:00``);
energies are kWh written with the shortest repr that round-trips exactly; ``delivered_ratio`` is
empty where ``requested_kwh`` is 0. The reader checks the header, that each resource covers the
window's consecutive slots, that ``delivered`` matches the direction and that the portfolio rows
are the sums, and returns a :class:`Settlement` equal to the one written.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
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

from .baseline import BaselineResult

__all__ = [
    "CSV_COLUMNS",
    "ResourceSettlement",
    "Settlement",
    "delivered_kwh",
    "read_settlement_csv",
    "settle",
    "settle_baseline",
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
    "delivered_ratio",
)
_PORTFOLIO_ID = "portfolio"
#: Tolerance of the consistency checks on read (delivered vs direction, portfolio sums) [kWh].
_TOL_KWH = 1e-9
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

    @model_validator(mode="after")
    def _check(self) -> ResourceSettlement:
        n = len(self.baseline_kwh)
        if n == 0:
            raise ValueError(f"resource {self.resource_id!r}: at least one slot is needed")
        for name in ("actual_kwh", "delivered_kwh", "requested_kwh"):
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
            bad = np.abs(got - expected) > _TOL_KWH * (
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
        return ResourceSettlement(resource_id=_PORTFOLIO_ID, **sums)

    def rows(self) -> Iterator[dict[str, str]]:
        """The CSV rows (as written by :meth:`to_csv`), resources first, then the portfolio."""
        starts = self.slot_starts()
        ends = [*starts[1:], self.window.end]
        groups: list[tuple[Level, ResourceSettlement]] = [("resource", r) for r in self.resources]
        groups.append(("portfolio", self.portfolio))
        for level, res in groups:
            ratios = res.delivered_ratio
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


def _requested(value: npt.ArrayLike, n_res: int, n_slots: int) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (n_res,):
        per_slot = np.repeat(arr[:, None] / n_slots, n_slots, axis=1)
    elif arr.shape == (n_res, n_slots):
        per_slot = arr
    else:
        raise ValueError(
            f"requested_kwh must have shape ({n_res},) (per resource for the window, spread "
            f"evenly over its {n_slots} slots) or ({n_res}, {n_slots}) (per slot), got {arr.shape}"
        )
    if not np.isfinite(per_slot).all() or (per_slot < 0).any():
        raise ValueError("requested_kwh must be finite and >= 0")
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
    dlv = delivered_kwh(direction, base, act)
    resources = tuple(
        ResourceSettlement(
            resource_id=ids[r],
            baseline_kwh=tuple(base[r].tolist()),
            actual_kwh=tuple(act[r].tolist()),
            delivered_kwh=tuple(dlv[r].tolist()),
            requested_kwh=tuple(req[r].tolist()),
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
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(
            f"the settlement CSV header must be {','.join(CSV_COLUMNS)}, "
            f"got {','.join(reader.fieldnames or ())}"
        )
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
        ratio_text = row["delivered_ratio"]
        if ratio_text:
            _float(ratio_text, "delivered_ratio", line)
        level = row["level"]
        if level == "resource":
            rid = row["resource_id"]
            store = series.setdefault(rid, {k: [] for k in _NUMBERS})
            slot_lists.setdefault(rid, []).append(start)
            for k, v in values.items():
                store[k].append(v)
        elif level == "portfolio":
            if row["resource_id"]:
                raise ValueError(f"line {line}: portfolio rows have an empty resource_id")
            portfolio_starts.append(start)
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
            ResourceSettlement(resource_id=rid, **{k: tuple(v) for k, v in s.items()})
            for rid, s in series.items()
        ),
    )
    if portfolio_starts != expected:
        raise ValueError(
            f"the portfolio rows must cover the window's {len(expected)} slots in order"
        )
    sums = settlement.portfolio
    for k in _NUMBERS:
        want = np.asarray(getattr(sums, k))
        got_p = np.asarray(portfolio[k])
        scale = 1 + np.abs(settlement.array(k)).sum(axis=0)
        bad = np.abs(got_p - want) > _TOL_KWH * scale
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"portfolio {k} at {expected[i].isoformat()} must be the sum of the resources "
                f"({float(want[i])!r}), got {float(got_p[i])!r}"
            )
    return settlement


_NUMBERS: tuple[Literal["baseline_kwh", "actual_kwh", "delivered_kwh", "requested_kwh"], ...] = (
    "baseline_kwh",
    "actual_kwh",
    "delivered_kwh",
    "requested_kwh",
)
