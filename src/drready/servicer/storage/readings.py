"""What the resources consumed: F5 power readings and 30-minute meter slots, the
``power_reading`` and ``meter_slot`` tables (F5, U2 settlement; reliability: a reading stored
twice is stored once).

:class:`ReadingStore` keeps the power samples the VENs report (instantaneous W and the
cumulative kWh counter, measured or estimated) and the metered energy per (resource, slot) that
settlement reads. Arrays go in and come out as numpy arrays, one element per row; instants come
back timezone-aware in UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, Table, delete, select

from drready.domain import (
    DEFAULT_TZ,
    MAX_POWER_W,
    SLOT,
    PowerSample,
    ensure_aware,
    require_slot_aligned,
)
from drready.servicer.storage.db import WRITE_OPTION, MeterSlot, PowerReading, dialect_insert
from drready.servicer.storage.validation import (
    MAX_ENERGY_KWH,
    FloatArray,
    check_array,
    check_id,
    check_ids,
    chunks,
    instant,
    require_resources,
)

__all__ = ["MeterSlotMatrix", "PowerSeries", "ReadingStore"]

_POWER = cast(Table, PowerReading.__table__)
_METER = cast(Table, MeterSlot.__table__)


@dataclass(frozen=True)
class PowerSeries:
    """Power readings of one resource, by time."""

    resource_id: str
    timestamps: tuple[datetime, ...]
    power_w: FloatArray
    cumulative_kwh: FloatArray
    """NaN where the reading had no counter."""
    sources: tuple[str, ...]
    report_ids: tuple[str | None, ...]


@dataclass(frozen=True)
class MeterSlotMatrix:
    """Metered energy of resources × 30-minute slots; NaN where no value is stored."""

    resource_ids: tuple[str, ...]
    slot_starts: tuple[datetime, ...]
    energy_kwh: FloatArray
    """Shape (len(resource_ids), len(slot_starts)) [kWh]."""

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        """Where a value is stored."""
        return ~np.isnan(self.energy_kwh)


class ReadingStore:
    """Power readings and meter slots over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    # ------------------------------------------------------------------ F5 power
    def record_power(
        self,
        *,
        resource_ids: str | Sequence[str],
        timestamps: Sequence[datetime],
        power_w: npt.ArrayLike,
        source: str | Sequence[str],
        cumulative_kwh: npt.ArrayLike | None = None,
        report_id: str | None = None,
    ) -> int:
        """Store power readings (one per element; a single resource id or source applies to
        all); a reading already stored for (resource, timestamp) is left unchanged. Returns the
        number of new rows. ``cumulative_kwh`` may hold NaN where a reading has no counter."""
        n = len(timestamps)
        ids = check_ids(resource_ids, "resource_ids", n)
        stamps = [ensure_aware(t, f"timestamps[{i}]") for i, t in enumerate(timestamps)]
        power = check_array(power_w, "power_w", n, 0.0, MAX_POWER_W)
        counter = (
            np.full(n, np.nan)
            if cumulative_kwh is None
            else check_array(cumulative_kwh, "cumulative_kwh", n, 0.0, None, allow_nan=True)
        )
        sources = [source] * n if isinstance(source, str) else list(source)
        if len(sources) != n:
            raise ValueError(f"source must have {n} elements (one per row), got {len(sources)}")
        for i, s in enumerate(sources):
            if s not in ("measured", "estimated"):
                raise ValueError(f"source[{i}] must be 'measured' or 'estimated', got {s!r}")
        if report_id is not None:
            check_id(report_id, "report_id")
        if n == 0:
            return 0
        rows = [
            {
                "resource_id": ids[i],
                "timestamp": stamps[i],
                "power_w": float(power[i]),
                "cumulative_kwh": None if math.isnan(counter[i]) else float(counter[i]),
                "source": sources[i],
                "report_id": report_id,
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            require_resources(conn, ids, "resource_ids")
            stmt = (
                dialect_insert(conn, _POWER)
                .on_conflict_do_nothing(index_elements=[_POWER.c.resource_id, _POWER.c.timestamp])
                .returning(_POWER.c.resource_id)
            )
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in chunks(rows))

    def record_samples(
        self, *, resource_id: str, samples: Sequence[PowerSample], report_id: str | None = None
    ) -> int:
        """:meth:`record_power` from domain :class:`~drready.domain.PowerSample`\\ s of one
        resource (their ``device_id`` is not checked: a group reports as one resource)."""
        return self.record_power(
            resource_ids=resource_id,
            timestamps=[s.timestamp for s in samples],
            power_w=[s.power_w for s in samples],
            cumulative_kwh=[s.cumulative_energy_kwh for s in samples],
            source=[s.source.value for s in samples],
            report_id=report_id,
        )

    def power(self, *, resource_id: str, start: datetime, end: datetime) -> PowerSeries:
        """The readings of a resource in ``[start, end)``, by time."""
        ensure_aware(start, "start")
        ensure_aware(end, "end")
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_POWER)
                .where(_POWER.c.resource_id == resource_id)
                .where(_POWER.c.timestamp >= start)
                .where(_POWER.c.timestamp < end)
                .order_by(_POWER.c.timestamp)
            ).all()
        return PowerSeries(
            resource_id=resource_id,
            timestamps=tuple(r.timestamp for r in rows),
            power_w=np.array([r.power_w for r in rows], dtype=np.float64),
            cumulative_kwh=np.array(
                [np.nan if r.cumulative_kwh is None else r.cumulative_kwh for r in rows],
                dtype=np.float64,
            ),
            sources=tuple(r.source for r in rows),
            report_ids=tuple(r.report_id for r in rows),
        )

    # ------------------------------------------------------------------ meter slots
    def upsert_meter_slots(
        self,
        *,
        resource_ids: str | Sequence[str],
        slot_starts: Sequence[datetime],
        energy_kwh: npt.ArrayLike,
        source: str,
        updated_at: datetime | None = None,
    ) -> int:
        """Store metered energy per (resource, 30-minute slot); a slot is replaced only if its
        energy or source differs. Returns the rows inserted or changed.

        ``slot_starts`` must be aware and on 30-minute boundaries; ``energy_kwh`` finite, ≥ 0.
        """
        n = len(slot_starts)
        ids = check_ids(resource_ids, "resource_ids", n)
        starts = [
            require_slot_aligned(s, f"slot_starts[{i}]", DEFAULT_TZ)
            for i, s in enumerate(slot_starts)
        ]
        energy = check_array(energy_kwh, "energy_kwh", n, 0.0, MAX_ENERGY_KWH)
        if not isinstance(source, str) or not 1 <= len(source) <= 32:
            raise ValueError(f"source must be 1–32 characters, got {source!r}")
        at = instant(updated_at, "updated_at")
        if n == 0:
            return 0
        keys = set(zip(ids, (s.timestamp() for s in starts), strict=True))
        if len(keys) != n:
            raise ValueError("(resource_ids, slot_starts) pairs must be unique within one call")
        rows = [
            {
                "resource_id": ids[i],
                "slot_start": starts[i],
                "energy_kwh": float(energy[i]),
                "source": source,
                "updated_at": at,
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            require_resources(conn, ids, "resource_ids")
            stmt = dialect_insert(conn, _METER)
            ex = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=[_METER.c.resource_id, _METER.c.slot_start],
                set_={
                    "energy_kwh": ex.energy_kwh,
                    "source": ex.source,
                    "updated_at": ex.updated_at,
                },
                where=(_METER.c.energy_kwh != ex.energy_kwh) | (_METER.c.source != ex.source),
            ).returning(_METER.c.resource_id)
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in chunks(rows))

    def meter_slots(
        self, *, resource_ids: Sequence[str], start: datetime, end: datetime
    ) -> MeterSlotMatrix:
        """Metered energy of ``resource_ids`` × the slots of ``[start, end)`` (aligned ends).

        ``energy_kwh[i, k]`` is resource ``i``'s energy in slot ``k``, NaN where none is stored.
        """
        require_slot_aligned(start, "start", DEFAULT_TZ)
        require_slot_aligned(end, "end", DEFAULT_TZ)
        if not start < end:
            raise ValueError(
                f"end must be after start, got start={start.isoformat()}, end={end.isoformat()}"
            )
        if isinstance(resource_ids, str):
            raise TypeError("resource_ids must be a sequence of ids, not one string")
        ids = list(resource_ids)
        index = {rid: i for i, rid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("resource_ids must be unique")
        n_slots = (end - start) // SLOT
        start_s = start.timestamp()
        slot_starts = tuple((start + k * SLOT).astimezone(start.tzinfo) for k in range(n_slots))
        energy = np.full((len(ids), n_slots), np.nan)
        with self._engine.connect() as conn:
            for chunk in chunks(ids):
                rows = conn.execute(
                    select(_METER.c.resource_id, _METER.c.slot_start, _METER.c.energy_kwh)
                    .where(_METER.c.resource_id.in_(chunk))
                    .where(_METER.c.slot_start >= start)
                    .where(_METER.c.slot_start < end)
                ).all()
                if not rows:
                    continue
                r_idx = np.fromiter((index[r[0]] for r in rows), dtype=np.int64, count=len(rows))
                t_s = np.fromiter(
                    (r[1].timestamp() for r in rows), dtype=np.float64, count=len(rows)
                )
                k_idx = np.rint((t_s - start_s) / SLOT.total_seconds()).astype(np.int64)
                energy[r_idx, k_idx] = np.fromiter(
                    (r[2] for r in rows), dtype=np.float64, count=len(rows)
                )
        return MeterSlotMatrix(resource_ids=tuple(ids), slot_starts=slot_starts, energy_kwh=energy)

    # ------------------------------------------------------------------ housekeeping
    def prune(self, *, meter_before: datetime, power_before: datetime) -> tuple[int, int]:
        """Delete the meter slots starting before ``meter_before`` and the power readings taken
        before ``power_before``; returns how many of each."""
        ensure_aware(meter_before, "meter_before")
        ensure_aware(power_before, "power_before")
        with self._writer.begin() as conn:
            meter = conn.execute(delete(_METER).where(_METER.c.slot_start < meter_before))
            power = conn.execute(delete(_POWER).where(_POWER.c.timestamp < power_before))
        return int(meter.rowcount), int(power.rowcount)
