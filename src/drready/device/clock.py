"""Clocks for a live device: the process clock of :mod:`drready.domain.clock` (F5, F1–F4).

A device's live values (current power F5, remaining hot water, the plan in force F4) are values
*at a time*; :class:`SimulatedWaterHeater <drready.device.heater.SimulatedWaterHeater>` reads
that time from a :class:`Clock`. The clocks themselves live in the lowest layer
(:mod:`drready.domain.clock`) so that every party — the servicer and the VTN included, which
import nothing from ``device`` — runs on the same one; this module names them for device code.
"""

from __future__ import annotations

from drready.domain.clock import Clock, ScaledClock, SimClock, WallClock, clock_from_env

__all__ = ["Clock", "ScaledClock", "SimClock", "WallClock", "clock_from_env"]
