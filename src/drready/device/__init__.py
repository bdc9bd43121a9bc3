"""One DR-ready unit in domain terms: clock, live state and F1–F6 (F1–F6, D1).

:class:`SimulatedWaterHeater` is a simulated heat pump water heater that follows its own
DR-aware heating plan against stochastic hot-water use; an ECHONET Lite device node and a maker
cloud wrap it. :class:`Clock` tells it the time (:class:`WallClock`, or :class:`SimClock` for
simulations and tests).
"""

from drready.device.clock import Clock, SimClock, WallClock
from drready.device.heater import EnergyBalance, SimulatedWaterHeater, SlotRecord

__all__ = ["Clock", "EnergyBalance", "SimClock", "SimulatedWaterHeater", "SlotRecord", "WallClock"]
