"""Named numeric tolerances shared by every layer (D1).

A literal ``1e-6`` says nothing about what it protects; these names do. Each constant states the
quantity it compares, its unit, and why its size is what it is. Import them from here (or from
``drready.domain``) instead of writing the number; a module may define a *local* named tolerance
when only it has a reason for it, with that reason next to it.
"""

from __future__ import annotations

__all__ = [
    "ENERGY_TOL_KWH",
    "POWER_TOL_KW",
    "REL_TOL",
    "ROUNDOFF",
    "SHORTAGE_TOL_KWH",
    "ZERO_KWH",
]

#: Absolute tolerance for power comparisons (min ≤ baseline ≤ max, energy = power × 0.5 h) [kW].
#: 1 mW: far below any meter's resolution, far above float round-off on kW-sized sums.
POWER_TOL_KW = 1e-6

#: Absolute tolerance for energy comparisons (cumulative bounds, accepted ≤ requested) [kWh].
#: 1 mWh: the same reasoning as :data:`POWER_TOL_KW`.
ENERGY_TOL_KWH = 1e-6

#: An amount of energy at or below this counts as nothing (a rejected request, an empty
#: assignment, solver noise) [kWh]. Equal to :data:`ENERGY_TOL_KWH` on purpose: what cannot be
#: told apart from zero in a comparison is zero.
ZERO_KWH = ENERGY_TOL_KWH

#: Relative tolerance for "all of it" (accepted ≥ requested × (1 − REL_TOL) is fully accepted).
#: Amounts cross the wire as kW rounded to 1e-6 and back; this absorbs that round trip.
REL_TOL = 1e-6

#: A shortage (湯切れ) is counted only when usable hot water misses a draw by more than this
#: [kWh of heat]: 1 Wh ≈ 0.03 L at 40 °C, below any tap's resolution, so float round-off in the
#: tank step never counts as a shortage and a real one always does.
SHORTAGE_TOL_KWH = 1e-3

#: Pure floating-point round-off guard for dimensionless comparisons (a phase, a fraction, a
#: step ratio): numbers that are equal in exact arithmetic compare equal with it.
ROUNDOFF = 1e-9
