"""Command-following runs and their points: the ``tracking_run`` and ``tracking_point`` tables
(U1; reliability: a point stored twice is stored once).

:class:`TrackingStore` keeps each run of the command-value following (the offered power, the
allowed deviation, the step) and, per instant, the command, the heaters' power (measured by F5
or planned), the battery's, their sum and the battery's state of charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, Table, select

from drready.domain import MAX_POWER_W, ensure_aware
from drready.servicer.storage.db import (
    WRITE_OPTION,
    HeaterSource,
    TrackingPoint,
    TrackingRun,
    dialect_insert,
)
from drready.servicer.storage.validation import (
    MAX_ENERGY_KWH,
    FloatArray,
    check_array,
    check_id,
    check_number,
    chunks,
    enum_value,
)

__all__ = ["TrackingRunRecord", "TrackingSeries", "TrackingStore"]

_RUN = cast(Table, TrackingRun.__table__)
_POINT = cast(Table, TrackingPoint.__table__)

#: Largest offered power of a tracking run [kW] (as the rated power of a resource).
_MAX_POWER_KW = MAX_POWER_W / 1000.0
#: Longest step of a run [s]: a day.
_MAX_STEP_S = 86400.0


@dataclass(frozen=True, slots=True)
class TrackingRunRecord:
    """A command-following run."""

    id: int
    started_at: datetime
    offered_kw: float
    tolerance_share: float
    step_s: float
    label: str


@dataclass(frozen=True)
class TrackingSeries:
    """The points of a command-following run, by time."""

    run: TrackingRunRecord
    t: tuple[datetime, ...]
    t_s: FloatArray
    """Seconds since the run's ``started_at``."""
    command_kw: FloatArray
    heater_kw: FloatArray
    battery_kw: FloatArray
    output_kw: FloatArray
    soc_kwh: FloatArray
    heater_measured: npt.NDArray[np.bool_]
    """True where the heater power was measured (F5), False where it was planned."""


class TrackingStore:
    """Command-following runs and points over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def create_run(
        self,
        *,
        started_at: datetime,
        offered_kw: float,
        tolerance_share: float,
        step_s: float,
        label: str,
    ) -> int:
        """Create a command-following run; returns its id.

        ``offered_kw`` ≥ 0, ``tolerance_share`` in [0, 1] (the allowed deviation as a share of
        the offered power), ``step_s`` > 0.
        """
        ensure_aware(started_at, "started_at")
        values = {
            "started_at": started_at,
            "offered_kw": check_number(offered_kw, "offered_kw", 0.0, _MAX_POWER_KW),
            "tolerance_share": check_number(tolerance_share, "tolerance_share", 0.0, 1.0),
            "step_s": check_number(step_s, "step_s", 0.0, _MAX_STEP_S, lo_open=True),
            "label": check_id(label, "label"),
        }
        with self._writer.begin() as conn:
            run_id = conn.execute(_RUN.insert().values(values).returning(_RUN.c.id)).scalar_one()
        return int(run_id)

    def run(self, run_id: int) -> TrackingRunRecord | None:
        """The run with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_RUN).where(_RUN.c.id == run_id)).first()
        if row is None:
            return None
        return TrackingRunRecord(
            row.id, row.started_at, row.offered_kw, row.tolerance_share, row.step_s, row.label
        )

    def add_points(
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
        """Store points of a run at ``t_s`` seconds after its start (arrays of equal length;
        ``battery_kw`` signed, + charging: consumption positive like the heaters); a point
        already stored is left unchanged. Returns the number of new points."""
        t = np.asarray(t_s, dtype=np.float64)
        if t.ndim != 1:
            raise ValueError(f"t_s must be a 1-D array, got shape {t.shape}")
        n = t.size
        t = check_array(t, "t_s", n, 0.0, None)
        if np.unique(t).size != n:
            raise ValueError("t_s must not repeat a time")
        command = check_array(command_kw, "command_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        heater = check_array(heater_kw, "heater_kw", n, 0.0, _MAX_POWER_KW)
        battery = check_array(battery_kw, "battery_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        output = check_array(output_kw, "output_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        soc = check_array(soc_kwh, "soc_kwh", n, 0.0, MAX_ENERGY_KWH)
        if isinstance(heater_source, str):
            sources = [enum_value(HeaterSource, heater_source, "heater_source").value] * n
        else:
            sources = [
                enum_value(HeaterSource, s, f"heater_source[{i}]").value
                for i, s in enumerate(heater_source)
            ]
            if len(sources) != n:
                raise ValueError(
                    f"heater_source must have {n} elements (one per row), got {len(sources)}"
                )
        run = self.run(run_id)
        if run is None:
            raise ValueError(f"run_id {run_id!r} does not exist")
        if n == 0:
            return 0
        micros = np.rint(t * 1e6).astype(np.int64)
        rows = [
            {
                "run_id": run_id,
                "t": run.started_at + timedelta(microseconds=int(micros[i])),
                "command_kw": float(command[i]),
                "heater_kw": float(heater[i]),
                "battery_kw": float(battery[i]),
                "output_kw": float(output[i]),
                "soc_kwh": float(soc[i]),
                "heater_source": sources[i],
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _POINT)
                .on_conflict_do_nothing(index_elements=[_POINT.c.run_id, _POINT.c.t])
                .returning(_POINT.c.run_id)
            )
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in chunks(rows))

    def points(self, run_id: int) -> TrackingSeries:
        """All points of a run, by time. ``ValueError`` if the run does not exist."""
        run = self.run(run_id)
        if run is None:
            raise ValueError(f"run_id {run_id!r} does not exist")
        with self._engine.connect() as conn:
            # mappings: a Row's attribute ``t`` is its tuple form, not the column
            rows = (
                conn.execute(select(_POINT).where(_POINT.c.run_id == run_id).order_by(_POINT.c.t))
                .mappings()
                .all()
            )
        t: tuple[datetime, ...] = tuple(r["t"] for r in rows)

        def column(name: str) -> FloatArray:
            return np.array([r[name] for r in rows], dtype=np.float64)

        return TrackingSeries(
            run=run,
            t=t,
            t_s=np.array([(x - run.started_at).total_seconds() for x in t], dtype=np.float64),
            command_kw=column("command_kw"),
            heater_kw=column("heater_kw"),
            battery_kw=column("battery_kw"),
            output_kw=column("output_kw"),
            soc_kwh=column("soc_kwh"),
            heater_measured=np.array(
                [r["heater_source"] == HeaterSource.MEASURED.value for r in rows], dtype=np.bool_
            ),
        )
