"""Simulated 30-minute meter data of the demo's resources, for the baseline and settlement (D5).

A DR servicer settles with 30-minute meter data from the meter of each resource — in Japan
the transmission operator's smart-meter data of the supply point, or, for resources metered at
the device (機器個別計測, device-point metering, admitted for low-voltage resources), the
device's own meter — not with the devices' OpenADR reports. This module stands in for that
meter-data service in simulations: it reads the *simulated* meters, never the devices' reports.

* a maker fleet (:class:`~drready.cloud.fleet.MakerFleet`): the same households on earlier days,
  each running its baseline plan (no DR in the history), executed against that day's sampled
  use; on the event day, the fleet's current (DR) plan executed against the same day's use;
* a simulated unit (:class:`~drready.device.heater.SimulatedWaterHeater`): its executed slots
  (``slot_history``), which cover every day it has been simulated.

Everything is returned as an array (resources × days × 48 slots) [kWh] with NaN where a
slot was not metered, the layout :func:`drready.servicer.core.baseline.compute_baseline` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from drready.cloud.fleet import MakerFleet
from drready.device.heater import SimulatedWaterHeater
from drready.planning.problem import Fleet
from drready.planning.tariff import Tariff

__all__ = ["fleet_history_kwh", "history_days", "unit_history_kwh"]

SLOTS_PER_DAY = 48
_DAY_OFFSET = 2  # the day-ahead grid starts at 23:00 the evening before: slot 2 is 00:00


def fleet_history_kwh(
    fleet: Fleet,
    days: Sequence[date],
    *,
    seed: int,
    tariff: Tariff,
    maker_code: str,
    event_day_fleet: MakerFleet | None = None,
) -> npt.NDArray[np.float64]:
    """Group meter of ``fleet`` per day (D, 48) [kWh]: the sum over its units.

    Days before the event day run the baseline plan; the event day (``event_day_fleet.day``,
    if given and in ``days``) is read from ``event_day_fleet``'s current plan.
    """
    out = np.full((len(days), SLOTS_PER_DAY), np.nan)
    for i, d in enumerate(days):
        if event_day_fleet is not None and d == event_day_fleet.day:
            elec = event_day_fleet.simulated_meter().electric_kwh
        else:
            past = MakerFleet(fleet, d, seed=seed, tariff=tariff, maker_code=maker_code)
            elec = past.simulated_meter().baseline_electric_kwh
        out[i] = elec[:, _DAY_OFFSET : _DAY_OFFSET + SLOTS_PER_DAY].sum(axis=0)
    return out


def unit_history_kwh(
    units: Sequence[SimulatedWaterHeater], days: Sequence[date]
) -> npt.NDArray[np.float64]:
    """Meter of each unit per day (U, D, 48) [kWh] from its executed slots; NaN where the unit
    was not simulated (a slot still running counts as not metered)."""
    out = np.full((len(units), len(days), SLOTS_PER_DAY), np.nan)
    index = {d: i for i, d in enumerate(days)}
    for u, unit in enumerate(units):
        for rec in unit.slot_history():
            local = rec.start.astimezone(unit.clock.now().tzinfo)
            i = index.get(local.date())
            if i is None:
                continue
            k = (local.hour * 60 + local.minute) // 30
            out[u, i, k] = rec.electric_kwh
    return out


def history_days(event_day: date, n_days: int) -> list[date]:
    """The ``n_days`` consecutive dates ending with ``event_day``."""
    if n_days < 1:
        raise ValueError(f"n_days must be ≥ 1, got {n_days}")
    return [event_day - timedelta(days=k) for k in range(n_days - 1, -1, -1)]
