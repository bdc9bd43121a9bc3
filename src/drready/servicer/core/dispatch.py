"""Dispatch: split a DR target across resources within their declared potential (U2, D5, D3).

The servicer has a target — "absorb 3 MWh of solar surplus 10:00–14:00" (:class:`EnergyTarget`),
"shed 1 MW 17:00–20:00" (:class:`PowerTarget`) or a price curve (:class:`PriceTarget`) — and a
portfolio of resources (water heaters, or a maker cloud's whole fleet as one group resource, D6)
that each declared their DR potential for the window as a
:class:`~drready.domain.FlexibilityEnvelope` (F1). This module decides how much to ask of each
(F2: a :class:`~drready.domain.DrRequest` is an amount in kWh over the window, a deviation from
the resource's baseline; the unit chooses the shape inside the window) and, after the answers
came back, how to cover a shortfall from the others (D3). It is pure: arrays and pydantic models
in, a :class:`DispatchPlan` out; no I/O, no database, no clock.

The linear programme
--------------------
Per resource ``r`` and 30-minute slot ``s`` (``h = 0.5`` h) the decision is the deviation
``x[r,s] ≥ 0`` [kW] from the baseline in the target's direction (up: consume more; down: consume
less). The envelope bounds it:

* per slot: ``x[r,s] ≤ max_kw − baseline_kw`` (up) or ``≤ baseline_kw − min_kw`` (down);
* cumulative coupling, to the end of every slot ``s``:
  up ``Σ_{k≤s} (baseline_k + x_k)·h ≤ cum_max_s``, down ``Σ_{k≤s} (baseline_k − x_k)·h ≥ cum_min_s``
  — both read ``Σ_{k≤s} x_k·h ≤ room_s`` (a heater that heats now cannot heat the same water
  again later);
* declared energy: ``Σ_s x[r,s]·h ≤ declared_r − committed_r``, where ``declared_r`` is the
  envelope's ``up_kwh`` / ``down_kwh`` — the amount that holds at the declared confidence; the
  servicer never asks above it — and ``committed_r`` what the resource already accepted
  (re-dispatch).

The other sides (``min_kw`` for up, ``cum_min`` for up, ``cum_max`` for down) hold for every
``x ≥ 0`` because the baseline satisfies them. A cumulative limit also binds every earlier slot
(the running sum never decreases), so the limits are first made non-decreasing (suffix minimum,
capped by the declared energy), and a row is only written where it can bind: where the limit is
below what the per-slot maxima let the prefix reach and below the next slot's limit. The
resource's largest cumulative deviation per slot comes from a forward greedy fill — exact, since
the per-slot and prefix constraints form a laminar family, whose polymatroid the greedy fill
maximises (Edmonds 1970) — and gives each resource's largest possible request before any solve.
Matrices are built with numpy index arithmetic (no loop over resources) and solved by HiGHS
(``scipy.optimize.linprog``): interior point with crossover to a vertex for up to 20 000 slot
variables, the interior solution beyond (crossover is the slow part there), dual simplex as a
fallback. Variables are kW, rows kWh; results are clipped into the bounds to undo the solver's
1e-7 feasibility tolerance, so a request never exceeds the declared amount.

An **energy target** constrains nothing but each resource's total, and the totals one resource can
take are exactly ``[0, largest_r]`` (its room is convex and contains ``x = 0``). So by default
(``method="auto"``) it is solved on the totals alone — ``R`` variables instead of ``R·S``, the
same answer (the tests compare both) — and the per-slot shape is the greedy fill scaled to the
amount. Power and price targets couple the slots across resources and use the slot-level LP.

Targets (shortfall slacks ``σ ≥ 0``):

* :class:`EnergyTarget` ``T`` [kWh]: ``Σ_{r,s} x[r,s]·h + σ = T``.
* :class:`PowerTarget` ``P_s`` [kW]: per slot ``Σ_r x[r,s] + σ_s = P_s``.
  Equality: never more than asked (over-delivery is paid for and not needed).
* :class:`PriceTarget`: no amount; each kWh of deviation in slot ``s`` is worth
  ``v_s = (p_s − p_ref) − κ`` for down-DR and ``v_s = (p_ref − p_s) − κ`` for up-DR [yen/kWh],
  with ``p_s`` the slot's price, ``p_ref`` the reference price (default 0: what the shifted energy
  is otherwise worth, e.g. the night tariff a heater would heat at) and ``κ`` the compensation paid
  to the resource per kWh. Down-DR avoids buying at ``p_s`` and pays ``κ``; up-DR buys at ``p_s``
  (income when the price is negative) and pays ``κ``. Slots with ``v_s ≤ 0`` get no deviation at
  all; the rest maximise ``Σ_{r,s} v_s·x[r,s]·h`` [yen], optionally with
  ``Σ_{r,s} x[r,s]·h ≤ max_energy_kwh``.

Two stages, solved in turn (lexicographic):

1. **Deliver as much as possible**: minimise the shortfall ``σ`` [kWh] (energy target),
   ``Σ_s σ_s·h`` (power target) or maximise the value (price target). The slack is the only term
   of this stage's objective, i.e. an infinitely large penalty: a target above the portfolio's
   potential gives the best partial answer and reports the rest as the shortfall.
2. **Fairness rule — minimise the largest utilisation**, keeping stage 1's shortfall (or value)
   to a relative 1e-9 (exactly, for an energy target): ``min u`` with
   ``committed_r + Σ_s x[r,s]·h ≤ u·declared_r`` for every resource used. Utilisation = (committed +
   requested) ÷ declared. The load is spread in proportion to the declared potential instead of
   piling onto whichever resource the solver picks first. Consequence for an energy target below
   the total potential: every resource whose envelope allows it gets the same utilisation
   ``u* = T / Σ declared`` (declared 2, 4, 6 kWh and 6 kWh to place → 1, 2, 3 kWh); in general
   the amounts are ``min(largest_r, u*·declared_r − committed_r)`` with ``Σ = T`` — unique. For
   power and price targets only the largest utilisation is minimised: resources below it may take
   any amount that keeps stage 1's optimum (a minimax, not a lexicographic max-min, rule).

Minimum request size: a DR request must carry a positive amount, and tiny ones cost a message and
a settlement line for nothing. Resources whose largest possible request is below
``min_request_kwh`` (default 0.01 kWh) are left out before the LP; after it, the resources
assigned a positive amount below the minimum (by more than 1e-6 kWh) are left out — the smallest
amounts first, at most half of the resources in play per round — and the LP is solved again
without them, so their share is re-spread over the others by the same two stages (repeated until
no such amount is left; each round removes at least one resource, so it ends; the "half" keeps a
round from dropping a share the remaining resources could have carried at the minimum size).
Amounts below 1e-6 kWh (solver noise) are set to zero without a new solve.

Standard-only units (issue 15 item 1): a water heater with only the standard energy shift of
ECHONET Lite class 0x026B (its resource carries ``DRREADY_ENERGY_SHIFT_ONLY`` with the shift
hours it offers) can do one thing: move its daytime heating to start at one of those hours and
run for :data:`ENERGY_SHIFT_HOURS` hours, shifting all its expected energy. So a pure pre-step
decides these units before the LP, which sees only the others: a standard unit is *eligible* when
the direction is up, the window contains a whole ``[h:00, h+4:00)`` (local time,
``DEFAULT_TZ``) for one of its hours (:func:`contains_energy_shift`), it is neither excluded nor
already committed, its whole declared ``up_kwh`` fits its envelope (the greedy fill reaches it
within ``ENERGY_TOL_KWH``) and is at least ``min_request_kwh``. An eligible unit is either *fixed*
at its whole declared amount (shaped as its greedy fill) or gets 0 — never a part. Rule: the
eligible units are taken largest amount first (ties by name order) while the fixed total stays
within the target — energy: ``Σ fixed ≤ T``; power: the fixed profile ≤ ``P_s`` in every slot;
price: the unit's whole shift has a positive value and ``Σ fixed ≤ max_energy_kwh`` — so a target
is never exceeded; the LP then spreads what is left of the target over the DR-ready resources.
Largest-first is a greedy answer to a subset-sum problem: with DR-ready resources beside them
(which take any amount up to their room) it reaches the target whenever the portfolio can;
with standard units alone it may stop short of the best subset (it fills at least half of the
target that the eligible units could reach together). A non-eligible standard unit gets 0.

Re-dispatch (D3): :func:`redispatch` is the same LP with updated bounds — a resource's declared
energy less what it already accepted, its per-slot and cumulative room less the committed
deviation profile when known (an F4 plan that came back, or the indicative profile of the plan it
accepted), excluded resources (rejected, partial, silent, offline) left out — and the target
replaced by what is still missing (:meth:`Commitments.remaining`).
:func:`commitments_from_responses` turns the :class:`~drready.domain.DrResponse` answers to a
plan into those inputs, so a shortfall is re-dispatched automatically, without an operator.

References
----------
Huangfu, Q. and Hall, J. A. J. (2018). Parallelizing the dual revised simplex method.
Mathematical Programming Computation 10(1), 119–142 (HiGHS, the solver behind
``scipy.optimize.linprog``).
Edmonds, J. (1970). Submodular functions, matroids, and certain polyhedra. In Combinatorial
Structures and their Applications, 69–87 (greedy optimality on polymatroids; the prefix and
per-slot constraints of one resource form a laminar family, hence a polymatroid).
Bertsimas, D., Farias, V. F. and Trichakis, N. (2011). The price of fairness. Operations
Research 59(1), 17–31 (min-max / max-min fairness in resource allocation).
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field, field_validator
from scipy.optimize import OptimizeWarning, linprog

from drready.domain import (
    MAX_AMOUNT_KWH,
    MAX_SLOTS,
    SLOT_HOURS,
    Direction,
    DomainModel,
    DrRequest,
    DrResponse,
    FlexibilityEnvelope,
    ResponseStatus,
)
from drready.domain.base import ENERGY_TOL_KWH, POWER_TOL_KW, bounded_float
from drready.domain.time import DEFAULT_TZ, zone

__all__ = [
    "DEFAULT_MIN_REQUEST_KWH",
    "ENERGY_SHIFT_HOURS",
    "Commitments",
    "DispatchError",
    "DispatchPlan",
    "EnergyTarget",
    "PowerTarget",
    "PriceTarget",
    "ResourcePotentials",
    "ResourceRequest",
    "Target",
    "commitments_from_responses",
    "contains_energy_shift",
    "cumulative_limit_kwh",
    "dispatch",
    "largest_cumulative_kwh",
    "redispatch",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Smallest amount sent as a DR request [kWh]; smaller assignments are re-spread.
DEFAULT_MIN_REQUEST_KWH = 0.01
#: Assignments below this are solver noise and set to zero without a new solve [kWh].
_NOISE_KWH = 1e-6
#: Stage 2 keeps stage 1's optimum within ``_KEEP_REL ×`` its scale (target or value).
_KEEP_REL = 1e-9
#: Crossover to a vertex solution up to this many slot variables (beyond: the interior one).
_CROSSOVER_MAX_X = 20_000
_H = SLOT_HOURS
#: How long a standard unit's shifted daytime heating lasts from its shift hour [h] (0x026B).
ENERGY_SHIFT_HOURS = 4

_Energy = Annotated[float, bounded_float(0.0, MAX_AMOUNT_KWH)]
_Finite = Annotated[float, bounded_float()]
_NonNegative = Annotated[float, bounded_float(0.0)]
_Power = Annotated[float, bounded_float(0.0, MAX_AMOUNT_KWH)]


class DispatchError(RuntimeError):
    """HiGHS did not reach an optimum (never expected: every stage is feasible at ``x = 0``)."""


# --- targets ---------------------------------------------------------------------------------


class _TargetBase(DomainModel):
    direction: Direction = Field(description="'up' (consume more) or 'down' (consume less).")


class EnergyTarget(_TargetBase):
    """Place ``energy_kwh`` of DR in ``direction`` over the window ("absorb 3 MWh 10:00–14:00")."""

    kind: Literal["energy"] = "energy"
    energy_kwh: _Energy = Field(description="Energy to shift over the window [kWh], 0–1e6.")


class PowerTarget(_TargetBase):
    """Reach a deviation of ``power_kw`` in every slot ("shed 1 MW 17:00–20:00").

    ``power_kw`` is one value for all slots or one per slot of the window (0 for a slot that
    needs nothing); each value finite and in [0, 1e6] kW.
    """

    kind: Literal["power"] = "power"
    power_kw: _Power | tuple[_Power, ...] = Field(
        description="Summed deviation per slot [kW]: a constant or one value per slot."
    )

    @field_validator("power_kw")
    @classmethod
    def _not_empty(cls, v: float | tuple[float, ...]) -> float | tuple[float, ...]:
        if isinstance(v, tuple) and not 1 <= len(v) <= MAX_SLOTS:
            raise ValueError(f"power_kw must have 1–{MAX_SLOTS} values, got {len(v)}")
        return v

    def per_slot_kw(self, n_slots: int) -> FloatArray:
        """``power_kw`` as ``n_slots`` values [kW]; ``ValueError`` on a length mismatch."""
        if isinstance(self.power_kw, tuple):
            if len(self.power_kw) != n_slots:
                raise ValueError(
                    f"power_kw must have one value per slot of the window ({n_slots}), "
                    f"got {len(self.power_kw)}"
                )
            return np.asarray(self.power_kw, dtype=np.float64)
        return np.full(n_slots, float(self.power_kw))


class PriceTarget(_TargetBase):
    """Take every deviation that is worth it at the slot prices (see the module docstring).

    Value per kWh in slot ``s``: down ``(p_s − reference) − compensation``, up
    ``(reference − p_s) − compensation`` [yen/kWh]; slots where it is ≤ 0 get nothing.
    """

    kind: Literal["price"] = "price"
    price_yen_per_kwh: tuple[_Finite, ...] = Field(
        description="Market price per slot [yen/kWh] (may be negative)."
    )
    compensation_yen_per_kwh: _NonNegative = Field(
        description="Paid to the resource per kWh of DR [yen/kWh], ≥ 0."
    )
    reference_price_yen_per_kwh: _Finite = Field(
        default=0.0,
        description="What the shifted energy is worth otherwise [yen/kWh]; 0: price only.",
    )
    max_energy_kwh: _Energy | None = Field(
        default=None, description="Cap on the total energy over the window [kWh], 0–1e6."
    )

    @field_validator("price_yen_per_kwh")
    @classmethod
    def _length(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not 1 <= len(v) <= MAX_SLOTS:
            raise ValueError(f"price_yen_per_kwh must have 1–{MAX_SLOTS} values, got {len(v)}")
        return v

    def value_yen_per_kwh(self, n_slots: int) -> FloatArray:
        """Value of one kWh of deviation per slot [yen/kWh] (length-checked against the window)."""
        if len(self.price_yen_per_kwh) != n_slots:
            raise ValueError(
                f"price_yen_per_kwh must have one value per slot of the window ({n_slots}), "
                f"got {len(self.price_yen_per_kwh)}"
            )
        p = np.asarray(self.price_yen_per_kwh, dtype=np.float64)
        gain = p - self.reference_price_yen_per_kwh
        if self.direction is Direction.UP:
            gain = -gain
        out: FloatArray = gain - self.compensation_yen_per_kwh
        return out


#: Any target; ``kind`` tells them apart in JSON.
Target = Annotated[EnergyTarget | PowerTarget | PriceTarget, Field(discriminator="kind")]


# --- inputs ----------------------------------------------------------------------------------


def _float_array(value: Any, name: str, shape: tuple[int, ...]) -> FloatArray:
    """``value`` as a read-only, finite float64 array of ``shape``; errors name ``name``."""
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: the caller's array may change later
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(value).__name__}") from err
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite, got {float(arr[where])!r} at index {where}")
    arr.setflags(write=False)
    return arr


def _require(ok: BoolArray, message: str, values: FloatArray) -> None:
    """Raise ``ValueError(message)`` with the first offending index and value when ``ok`` fails."""
    if not ok.all():
        where = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise ValueError(f"{message}, got {float(values[where])!r} at index {where}")


@dataclass(frozen=True, eq=False)
class ResourcePotentials:
    """The declared DR potential of ``R`` resources over one window of ``S`` slots, as arrays.

    Per resource and slot (``(R, S)`` arrays): ``baseline_kw``, ``min_kw``, ``max_kw`` [kW] and the
    cumulative bounds ``cum_min_kwh`` / ``cum_max_kwh`` [kWh] from the window start to the end of
    the slot; per resource (``(R,)``): ``up_kwh`` / ``down_kwh`` [kWh], the declared amounts. The
    same rules as :class:`~drready.domain.FlexibilityEnvelope` are checked (finite, powers ≥ 0,
    ``min ≤ baseline ≤ max`` and ``cum_min ≤ cum_max`` within 1e-6, cumulative bounds never
    decreasing); arrays are copied and made read-only. Build it from envelopes with
    :meth:`from_envelopes`, or directly from arrays (fleet scale).
    """

    names: tuple[str, ...]
    baseline_kw: FloatArray
    min_kw: FloatArray
    max_kw: FloatArray
    cum_min_kwh: FloatArray
    cum_max_kwh: FloatArray
    up_kwh: FloatArray
    down_kwh: FloatArray
    window_start: datetime | None = None
    window_end: datetime | None = None

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names:
            raise ValueError("names must list at least one resource, got none")
        if any(not isinstance(n, str) or not n for n in names):
            raise ValueError("names must be non-empty strings")
        if len(set(names)) != len(names):
            dup = next(n for n, k in Counter(names).items() if k > 1)
            raise ValueError(f"names must be unique, got {dup!r} more than once")
        object.__setattr__(self, "names", names)
        r = len(names)
        s = np.shape(self.baseline_kw)[-1] if np.ndim(self.baseline_kw) == 2 else -1
        if not 1 <= s <= MAX_SLOTS:
            raise ValueError(
                f"baseline_kw must have shape (resources, slots) with 1–{MAX_SLOTS} slots, "
                f"got shape {np.shape(self.baseline_kw)}"
            )
        for name in ("baseline_kw", "min_kw", "max_kw", "cum_min_kwh", "cum_max_kwh"):
            object.__setattr__(self, name, _float_array(getattr(self, name), name, (r, s)))
        for name in ("up_kwh", "down_kwh"):
            object.__setattr__(self, name, _float_array(getattr(self, name), name, (r,)))
        for name in ("baseline_kw", "min_kw", "up_kwh", "down_kwh"):
            arr = getattr(self, name)
            _require(arr >= 0, f"{name} must be >= 0", arr)
        _require(
            self.min_kw <= self.baseline_kw + POWER_TOL_KW,
            f"min_kw must be <= baseline_kw (tolerance {POWER_TOL_KW} kW)",
            self.min_kw,
        )
        _require(
            self.baseline_kw <= self.max_kw + POWER_TOL_KW,
            f"max_kw must be >= baseline_kw (tolerance {POWER_TOL_KW} kW)",
            self.max_kw,
        )
        _require(
            self.cum_min_kwh <= self.cum_max_kwh + ENERGY_TOL_KWH,
            f"cum_min_kwh must be <= cum_max_kwh (tolerance {ENERGY_TOL_KWH} kWh)",
            self.cum_min_kwh,
        )
        for name in ("cum_min_kwh", "cum_max_kwh"):
            arr = getattr(self, name)
            step = np.diff(arr, axis=1)
            _require(
                step >= -ENERGY_TOL_KWH,
                f"{name} must never decrease along the window "
                f"(tolerance {ENERGY_TOL_KWH} kWh); step",
                step,
            )
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("window_start and window_end must be given together or not at all")

    @classmethod
    def from_envelopes(
        cls, envelopes: Sequence[FlexibilityEnvelope], names: Sequence[str] | None = None
    ) -> ResourcePotentials:
        """Stack envelopes of one window; ``names`` default to the device ids' string form.

        Raises ``ValueError`` naming the envelope whose window differs from the first one's.
        """
        if not envelopes:
            raise ValueError("envelopes must hold at least one envelope, got none")
        first = envelopes[0]
        for i, env in enumerate(envelopes):
            for field in ("window_start", "window_end"):
                if getattr(env, field) != getattr(first, field):
                    raise ValueError(
                        f"envelopes[{i}].{field} must equal envelopes[0].{field} "
                        f"({getattr(first, field).isoformat()}): one window per dispatch, "
                        f"got {getattr(env, field).isoformat()}"
                    )
        if names is None:
            names = [str(env.device_id) for env in envelopes]
        elif len(names) != len(envelopes):
            raise ValueError(
                f"names must have one entry per envelope ({len(envelopes)}), got {len(names)}"
            )
        fields = ("baseline_kw", "min_kw", "max_kw", "cum_min_kwh", "cum_max_kwh")
        # one row per envelope: reading pydantic objects is a loop by nature (not in the LP)
        table = np.array(
            [[[getattr(s, f) for f in fields] for s in env.slots] for env in envelopes],
            dtype=np.float64,
        )  # (R, S, 5)
        return cls(
            names=tuple(names),
            baseline_kw=table[:, :, 0],
            min_kw=table[:, :, 1],
            max_kw=table[:, :, 2],
            cum_min_kwh=table[:, :, 3],
            cum_max_kwh=table[:, :, 4],
            up_kwh=np.array([env.up_kwh for env in envelopes]),
            down_kwh=np.array([env.down_kwh for env in envelopes]),
            window_start=first.window_start,
            window_end=first.window_end,
        )

    @property
    def n_resources(self) -> int:
        """Number of resources ``R``."""
        return len(self.names)

    @property
    def n_slots(self) -> int:
        """Number of 30-minute slots ``S`` of the window."""
        return int(self.baseline_kw.shape[1])

    def declared_kwh(self, direction: Direction) -> FloatArray:
        """The declared amount per resource in ``direction`` [kWh] (``up_kwh`` or ``down_kwh``)."""
        return self.up_kwh if direction is Direction.UP else self.down_kwh

    def room(self, direction: Direction) -> tuple[FloatArray, FloatArray]:
        """Per-slot deviation limit [kW] and cumulative deviation limit [kWh], both ``(R, S)``.

        Up: ``max − baseline`` and ``cum_max − Σ baseline·h``; down: ``baseline − min`` and
        ``Σ baseline·h − cum_min``.
        """
        base_cum_kwh = np.cumsum(self.baseline_kw, axis=1) * _H
        if direction is Direction.UP:
            slot_kw = self.max_kw - self.baseline_kw
            cum_kwh = self.cum_max_kwh - base_cum_kwh
        else:
            slot_kw = self.baseline_kw - self.min_kw
            cum_kwh = base_cum_kwh - self.cum_min_kwh
        # a baseline up to the 1e-6 tolerance outside its own envelope leaves no room, never a
        # negative one (which would make x = 0 infeasible)
        return np.maximum(slot_kw, 0.0), np.maximum(cum_kwh, 0.0)

    def index(self, names: Iterable[str], field: str) -> npt.NDArray[np.int64]:
        """Indices of ``names``; ``ValueError`` naming ``field`` and the unknown names."""
        pos = {n: i for i, n in enumerate(self.names)}
        wanted = list(names)
        unknown = [n for n in wanted if n not in pos]
        if unknown:
            shown = ", ".join(repr(n) for n in unknown[:5])
            raise ValueError(f"{field} must name known resources, got unknown {shown}")
        return np.array([pos[n] for n in wanted], dtype=np.int64)


# --- outputs ---------------------------------------------------------------------------------


class ResourceRequest(DomainModel):
    """What to ask of one resource: ``requested_kwh`` over the window (F2) and the LP's shape."""

    name: str
    direction: Direction
    requested_kwh: float = Field(description="Amount to request over the window [kWh], > 0.")
    deviation_kw: tuple[float, ...] = Field(
        description="Indicative deviation per slot the LP found [kW]; the unit picks its own."
    )
    utilisation: float = Field(description="(committed + requested) ÷ declared [-].")


@dataclass(frozen=True, eq=False)
class DispatchPlan:
    """The result of :func:`dispatch` / :func:`redispatch` (arrays indexed like ``names``).

    ``requested_kwh`` (R,) — the new amount to request of each resource (0: none);
    ``deviation_kw`` (R, S) — the LP's indicative deviation per slot in ``direction`` [kW]
    (``Σ_s deviation_kw·0.5 h = requested_kwh``); ``committed_kwh`` (R,) — what the resources had
    accepted before (0 for a first dispatch); ``utilisation`` (R,) — (committed + requested) ÷
    declared, 0 where nothing was declared. ``shortfall_kwh`` is the part of the target not placed
    (``target_kwh − total``; per slot ``shortfall_kw`` for a power target, else zeros). For a price
    target ``target_kwh`` is the energy placed and ``value_yen`` the value of the plan.
    ``dropped`` names resources left out by the minimum request size, ``n_solves`` counts LP
    solves (two stages per round), ``solve_time_s`` is the wall time of building and solving.
    """

    names: tuple[str, ...]
    direction: Direction
    target_kind: str
    requested_kwh: FloatArray
    deviation_kw: FloatArray
    committed_kwh: FloatArray
    declared_kwh: FloatArray
    utilisation: FloatArray
    target_kwh: float
    shortfall_kwh: float
    shortfall_kw: FloatArray
    value_yen: float
    dropped: tuple[str, ...]
    solver_message: str
    n_solves: int
    solve_time_s: float
    window_start: datetime | None = None
    window_end: datetime | None = None

    @property
    def total_requested_kwh(self) -> float:
        """Sum of the new requests [kWh]."""
        return float(self.requested_kwh.sum())

    @property
    def max_utilisation(self) -> float:
        """The largest utilisation over all resources [-]."""
        return float(self.utilisation.max()) if self.utilisation.size else 0.0

    @property
    def delivered_kw(self) -> FloatArray:
        """Summed indicative deviation per slot [kW]."""
        out: FloatArray = self.deviation_kw.sum(axis=0)
        return out

    def requests(self) -> list[ResourceRequest]:
        """One :class:`ResourceRequest` per resource with a positive amount, in ``names`` order."""
        used = np.flatnonzero(self.requested_kwh > 0)
        return [
            ResourceRequest(
                name=self.names[i],
                direction=self.direction,
                requested_kwh=float(self.requested_kwh[i]),
                deviation_kw=tuple(float(v) for v in self.deviation_kw[i]),
                utilisation=float(self.utilisation[i]),
            )
            for i in used
        ]

    def dr_requests(
        self,
        *,
        issued_at: datetime,
        request_id_prefix: str,
        issuer: str = "drready-servicer",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[str, DrRequest]:
        """The F2 requests to send, by resource name: ids ``<prefix>.<index>``, the window of the
        potentials unless ``start``/``end`` are given. The servicer maps each onto an OpenADR
        event (``drready.openadr.profile``)."""
        start = start if start is not None else self.window_start
        end = end if end is not None else self.window_end
        if start is None or end is None:
            raise ValueError("start and end are required when the potentials carry no window")
        return {
            self.names[i]: DrRequest(
                request_id=f"{request_id_prefix}.{i}",
                direction=self.direction,
                start=start,
                end=end,
                amount_kwh=float(self.requested_kwh[i]),
                issuer=issuer,
                issued_at=issued_at,
            )
            for i in np.flatnonzero(self.requested_kwh > 0)
        }

    def summary(self) -> dict[str, Any]:
        """A compact JSON-ready view (floats rounded to 4 decimals)."""
        return {
            "direction": self.direction.value,
            "target": self.target_kind,
            "target_kwh": round(self.target_kwh, 4),
            "total_requested_kwh": round(self.total_requested_kwh, 4),
            "shortfall_kwh": round(self.shortfall_kwh, 4),
            "value_yen": round(self.value_yen, 4),
            "resources_used": int((self.requested_kwh > 0).sum()),
            "max_utilisation": round(self.max_utilisation, 4),
            "dropped": list(self.dropped),
            "n_solves": self.n_solves,
            "solve_time_s": round(self.solve_time_s, 4),
            "solver_message": self.solver_message,
        }


# --- the LP ----------------------------------------------------------------------------------


def largest_cumulative_kwh(slot_kwh: FloatArray, limit_kwh: FloatArray) -> FloatArray:
    """Largest cumulative deviation reachable by the end of each slot [kWh], ``(R, S)``.

    ``slot_kwh`` (R, S): per-slot limit (kW × h); ``limit_kwh`` (R, S): cumulative limit, already
    non-decreasing (:func:`cumulative_limit_kwh`). Forward greedy fill
    ``y_s = min(y_{s−1} + slot_s, limit_s)`` — the largest value of every prefix at once
    (laminar constraints, Edmonds 1970). Loops over slots only.
    """
    y = np.empty_like(slot_kwh)
    prev = np.zeros(slot_kwh.shape[0])
    for s in range(slot_kwh.shape[1]):
        prev = np.minimum(prev + slot_kwh[:, s], limit_kwh[:, s])
        y[:, s] = prev
    return y


def cumulative_limit_kwh(cum_kwh: FloatArray, energy_kwh: FloatArray) -> FloatArray:
    """Cumulative limit to the end of each slot [kWh]: ``min(min_{t≥s} cum_t, energy)``.

    The cumulative deviation never decreases (``x ≥ 0``), so a later limit binds every earlier
    slot too, and the window's energy limit binds them all.
    """
    suffix = np.minimum.accumulate(cum_kwh[:, ::-1], axis=1)[:, ::-1]
    out: FloatArray = np.minimum(suffix, energy_kwh[:, None])
    return out


@dataclass(frozen=True)
class _Room:
    """The bounds of the ``A`` resources in play."""

    slot_kw: FloatArray  # (A, S) per-slot deviation limit
    limit_kwh: FloatArray  # (A, S) cumulative limit (non-decreasing, ≤ declared − committed)
    y_max_kwh: FloatArray  # (A, S) largest cumulative deviation (greedy)
    declared_kwh: FloatArray  # (A,)
    committed_kwh: FloatArray  # (A,)

    def take(self, idx: npt.NDArray[np.int64]) -> _Room:
        return _Room(
            self.slot_kw[idx],
            self.limit_kwh[idx],
            self.y_max_kwh[idx],
            self.declared_kwh[idx],
            self.committed_kwh[idx],
        )


@dataclass(frozen=True)
class _Goal:
    """The target in array form."""

    kind: str
    target_kwh: float  # energy target (and Σ P·h for a power target)
    power_kw: FloatArray  # (S,) power target
    value_yen_per_kwh: FloatArray  # (S,) price target, 0 where not worth it
    max_energy_kwh: float  # price target cap (inf: none)


@dataclass(frozen=True)
class _Solved:
    x_kw: FloatArray  # (A, S)
    message: str
    n_solves: int


def _linprog(
    c: FloatArray,
    a_ub: sp.csr_array | None,
    b_ub: FloatArray | None,
    a_eq: sp.csr_array | None,
    b_eq: FloatArray | None,
    lb: FloatArray,
    ub: FloatArray,
    crossover: bool,
) -> tuple[FloatArray, float, str]:
    """One LP by HiGHS: interior point (with crossover to a vertex when asked), dual simplex as
    the fallback should the interior point method stop short of an optimum."""
    bounds = np.column_stack([lb, ub])
    with warnings.catch_warnings():
        # run_crossover is a HiGHS option scipy passes on verbatim, with a warning saying so
        warnings.filterwarnings("ignore", message="Unrecognized options", category=OptimizeWarning)
        res = linprog(
            c,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=bounds,
            method="highs-ipm",
            options={"run_crossover": "on" if crossover else "off"},
        )
    if res.status != 0:
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:
        raise DispatchError(f"HiGHS did not reach an optimum: {res.message}")
    return np.asarray(res.x, dtype=np.float64), float(res.fun), str(res.message)


def _coo(
    rows: list[npt.NDArray[Any]],
    cols: list[npt.NDArray[Any]],
    vals: list[FloatArray],
    shape: tuple[int, int],
) -> sp.csr_array:
    return sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )


def _cumulative_rows(room: _Room) -> tuple[sp.csr_array, FloatArray]:
    """The binding candidates of ``Σ_{k≤s} x[a,k]·h ≤ limit[a,s]`` as a sparse block ``(K, A·S)``.

    Row ``(a, s)`` is left out when it cannot bind: when ``limit[a,s]`` is at least what the
    per-slot limits let the prefix reach, or equals ``limit[a,s+1]`` (then row ``s+1`` implies
    it, or is itself left out because it cannot bind, and then neither can row ``s``). The last
    row also caps the window's energy at declared − committed.
    """
    n_a, n_s = room.slot_kw.shape
    reach = np.cumsum(room.slot_kw, axis=1) * _H
    lim = room.limit_kwh
    rises = np.ones_like(lim, dtype=bool)
    rises[:, :-1] = lim[:, :-1] < lim[:, 1:]
    keep_a, keep_s = np.nonzero(rises & (lim < reach))
    length = keep_s + 1  # row (a, s) holds x[a, 0..s]
    row = np.repeat(np.arange(keep_a.size), length)
    start = np.repeat(np.cumsum(length) - length, length)
    k = np.arange(row.size) - start  # 0..s within each row
    col = np.repeat(keep_a * n_s, length) + k
    mat = sp.csr_array((np.full(row.size, _H), (row, col)), shape=(keep_a.size, n_a * n_s))
    return mat, lim[keep_a, keep_s]


def _solve_full(room: _Room, goal: _Goal) -> _Solved:
    """Stage 1 (deliver) and stage 2 (fairness) on the slot-level LP of the module docstring."""
    n_a, n_s = room.slot_kw.shape
    n_x = n_a * n_s
    xid = np.arange(n_x).reshape(n_a, n_s)
    n_sig = {"energy": 1, "power": n_s}.get(goal.kind, 0)
    u_col = n_x + n_sig
    n_var = u_col + 1
    crossover = n_x <= _CROSSOVER_MAX_X

    cum, cum_rhs = _cumulative_rows(room)
    ub_rows = [sp.hstack([cum, sp.csr_array((cum.shape[0], n_sig + 1))], format="csr")]
    ub_rhs = [cum_rhs]
    eq_rows: list[sp.csr_array] = []
    eq_rhs: list[FloatArray] = []
    c1 = np.zeros(n_var)
    if goal.kind == "energy":  # Σ x·h + σ = T
        eq_rows.append(
            _coo(
                [np.zeros(n_x + 1, dtype=np.int64)],
                [np.arange(n_x + 1)],
                [np.append(np.full(n_x, _H), 1.0)],
                (1, n_var),
            )
        )
        eq_rhs.append(np.array([goal.target_kwh]))
        c1[n_x] = 1.0
    elif goal.kind == "power":  # Σ_a x[a,s] + σ_s = P_s
        slot_of = np.broadcast_to(np.arange(n_s), (n_a, n_s)).ravel()
        eq_rows.append(
            _coo(
                [slot_of, np.arange(n_s)],
                [xid.ravel(), n_x + np.arange(n_s)],
                [np.ones(n_x), np.ones(n_s)],
                (n_s, n_var),
            )
        )
        eq_rhs.append(goal.power_kw)
        c1[n_x : n_x + n_s] = _H
    else:  # maximise Σ v_s·x·h, optionally Σ x·h ≤ max energy
        c1[:n_x] = -np.broadcast_to(goal.value_yen_per_kwh * _H, (n_a, n_s)).ravel()
        if math.isfinite(goal.max_energy_kwh):
            ub_rows.append(
                _coo(
                    [np.zeros(n_x, dtype=np.int64)],
                    [np.arange(n_x)],
                    [np.full(n_x, _H)],
                    (1, n_var),
                )
            )
            ub_rhs.append(np.array([goal.max_energy_kwh]))

    lb = np.zeros(n_var)
    ub = np.concatenate(
        [
            np.minimum(room.slot_kw, room.limit_kwh / _H).ravel(),
            np.full(n_sig, np.inf),
            [0.0],  # u is not in stage 1
        ]
    )
    a_eq = sp.vstack(eq_rows, format="csr") if eq_rows else None
    b_eq = np.concatenate(eq_rhs) if eq_rhs else None
    z1, best, message = _linprog(
        c1, sp.vstack(ub_rows, format="csr"), np.concatenate(ub_rhs), a_eq, b_eq, lb, ub, crossover
    )
    delivered_kwh = float(z1[:n_x].sum()) * _H
    if delivered_kwh <= _NOISE_KWH:  # nothing to spread: all zero is the only answer
        return _Solved(np.zeros((n_a, n_s)), message, 1)

    # stage 2: min u  s.t.  Σ_s x[a,s]·h − declared_a·u ≤ −committed_a, stage 1 kept
    scale = abs(best) if goal.kind == "price" else goal.target_kwh
    fair = _coo(
        [np.repeat(np.arange(n_a), n_s), np.arange(n_a)],
        [xid.ravel(), np.full(n_a, u_col)],
        [np.full(n_x, _H), -room.declared_kwh],
        (n_a, n_var),
    )
    nz = np.flatnonzero(c1)
    keep = _coo([np.zeros(nz.size, dtype=np.int64)], [nz], [c1[nz]], (1, n_var))
    ub_rows += [fair, keep]
    ub_rhs += [-room.committed_kwh, np.array([best + _KEEP_REL * scale])]
    ub[u_col] = np.inf
    c2 = np.zeros(n_var)
    c2[u_col] = 1.0
    z2, _, message = _linprog(
        c2, sp.vstack(ub_rows, format="csr"), np.concatenate(ub_rhs), a_eq, b_eq, lb, ub, crossover
    )
    return _Solved(z2[:n_x].reshape(n_a, n_s), message, 2)


def _solve_totals(room: _Room, goal: _Goal) -> _Solved:
    """The energy target on the resources' totals only — exact, and much smaller.

    An energy target constrains nothing but each resource's total, and the totals a resource can
    take form the interval ``[0, largest_a]`` (its room is convex and contains ``x = 0``; the
    largest total is the greedy fill's). So stage 1 is closed-form — deliver
    ``min(T, Σ largest)`` — and stage 2 is an LP in ``A`` totals: ``min u`` s.t.
    ``Σ e + σ = T``, ``σ ≤ σ*``, ``e_a ≤ u·declared_a − committed_a``, ``0 ≤ e_a ≤ largest_a``.
    The shape per slot is the greedy fill scaled by ``e_a / largest_a`` (inside the room by
    convexity).
    """
    n_a, n_s = room.slot_kw.shape
    largest = room.y_max_kwh[:, -1]
    short = max(goal.target_kwh - float(largest.sum()), 0.0)
    if goal.target_kwh - short <= _NOISE_KWH:
        return _Solved(np.zeros((n_a, n_s)), "nothing to deliver", 0)
    u_col = n_a + 1  # variables: e (A), σ, u
    a_eq = _coo(
        [np.zeros(n_a + 1, dtype=np.int64)], [np.arange(n_a + 1)], [np.ones(n_a + 1)], (1, n_a + 2)
    )
    a_ub = _coo(
        [np.arange(n_a), np.arange(n_a)],
        [np.arange(n_a), np.full(n_a, u_col)],
        [np.ones(n_a), -room.declared_kwh],
        (n_a, n_a + 2),
    )
    c = np.zeros(n_a + 2)
    c[u_col] = 1.0
    lb = np.zeros(n_a + 2)
    ub = np.concatenate([largest, [short, np.inf]])  # stage 1 kept exactly (closed form)
    z, _, message = _linprog(
        c, a_ub, -room.committed_kwh, a_eq, np.array([goal.target_kwh]), lb, ub, True
    )
    share = np.divide(z[:n_a], largest, out=np.zeros(n_a), where=largest > 0)
    # clip: the LP meets its bounds to HiGHS's feasibility tolerance; a share is a fraction
    x_kwh = np.diff(room.y_max_kwh, axis=1, prepend=0.0) * np.clip(share, 0.0, 1.0)[:, None]
    return _Solved(x_kwh / _H, message, 1)


def _clean(x_kw: FloatArray, slot_kw: FloatArray, limit_kwh: FloatArray) -> FloatArray:
    """The LP's deviation inside the per-slot and energy bounds exactly [kW]."""
    # HiGHS meets bounds to its feasibility tolerance (1e-7): clip that noise back inside
    x = np.clip(x_kw, 0.0, slot_kw)
    total = x.sum(axis=1) * _H
    cap = limit_kwh[:, -1]
    over = total > cap
    if over.any():  # the same noise on the energy: scale down, never ask above it
        x[over] *= (cap[over] / total[over])[:, None]
    return x


def _as_vector(value: Any, pot: ResourcePotentials, name: str) -> FloatArray:
    if isinstance(value, Mapping):
        arr = np.zeros(pot.n_resources)
        idx = pot.index(value.keys(), name)
        arr[idx] = np.array(list(value.values()), dtype=np.float64)
        value = arr
    out = _float_array(value, name, (pot.n_resources,))
    _require(out >= 0, f"{name} must be >= 0", out)
    return out


def _excluded_mask(value: Iterable[str] | BoolArray | None, pot: ResourcePotentials) -> BoolArray:
    mask = np.zeros(pot.n_resources, dtype=bool)
    if value is None:
        return mask
    if isinstance(value, np.ndarray) and value.dtype == np.bool_:
        if value.shape != (pot.n_resources,):
            raise ValueError(f"excluded must have shape ({pot.n_resources},), got {value.shape}")
        return value.copy()
    if isinstance(value, str):
        raise ValueError("excluded must be a collection of names, not a single string")
    mask[pot.index(value, "excluded")] = True
    return mask


def _goal(target: EnergyTarget | PowerTarget | PriceTarget, n_s: int) -> _Goal:
    power_kw = np.zeros(n_s)
    value = np.zeros(n_s)
    target_kwh = 0.0
    max_energy = math.inf
    if isinstance(target, EnergyTarget):
        target_kwh = target.energy_kwh
    elif isinstance(target, PowerTarget):
        power_kw = target.per_slot_kw(n_s)
        target_kwh = float(power_kw.sum()) * _H
    else:
        value = np.maximum(target.value_yen_per_kwh(n_s), 0.0)  # worthless slots: value 0
        if target.max_energy_kwh is not None:
            max_energy = target.max_energy_kwh
    return _Goal(target.kind, target_kwh, power_kw, value, max_energy)


# --- standard-only units (issue 15 item 1) ---------------------------------------------------


def contains_energy_shift(
    window_start: datetime, window_end: datetime, shift_hours: Iterable[int]
) -> bool:
    """Whether ``[window_start, window_end)`` holds a whole ``[h:00, h+4:00)`` for one of
    ``shift_hours`` on some day (local time, ``DEFAULT_TZ``; :data:`ENERGY_SHIFT_HOURS`).

    10:00–14:00 with 10 → True; 11:00–14:00 with 10 → False; 09:00–18:00 with 13 → True.
    Hours outside 0–23 never fit. Naive datetimes are refused (``ValueError``).
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must be timezone-aware")
    tz = zone(DEFAULT_TZ)
    first, last = window_start.astimezone(tz).date(), window_end.astimezone(tz).date()
    length = timedelta(hours=ENERGY_SHIFT_HOURS)
    hours = sorted({int(h) for h in shift_hours if 0 <= int(h) <= 23})
    day = first
    while day <= last:  # a window spans a few days at most: a loop over days and ≤ 24 hours
        for h in hours:
            start = datetime(day.year, day.month, day.day, h, tzinfo=tz)
            if window_start <= start and start + length <= window_end:
                return True
        day += timedelta(days=1)
    return False


def _fixed_energy_shift(
    potentials: ResourcePotentials,
    direction: Direction,
    goal: _Goal,
    room: _Room,
    shift_hours: Mapping[str, Sequence[int]],
    blocked: BoolArray,
    min_request_kwh: float,
) -> tuple[BoolArray, BoolArray, FloatArray]:
    """Standard-only units: which are standard, which are fixed, and the fixed deviation [kW].

    Returns ``(standard (R,), fixed (R,), x_kw (R, S))``; rule in the module docstring.
    ``blocked`` marks resources excluded or already committed (never asked again).
    """
    n_r, n_s = potentials.n_resources, potentials.n_slots
    standard = np.zeros(n_r, dtype=bool)
    if shift_hours:
        standard[potentials.index(shift_hours.keys(), "energy_shift_hours")] = True
    fixed = np.zeros(n_r, dtype=bool)
    x_kw = np.zeros((n_r, n_s))
    if direction is not Direction.UP or not standard.any():
        return standard, fixed, x_kw
    if potentials.window_start is None or potentials.window_end is None:
        raise ValueError("energy_shift_hours needs the potentials' window_start and window_end")
    amount = room.declared_kwh
    fits = np.array(
        [
            standard[i]
            and contains_energy_shift(
                potentials.window_start, potentials.window_end, shift_hours[potentials.names[i]]
            )
            for i in range(n_r)
        ],
        dtype=bool,
    )
    eligible = (
        fits
        & ~blocked
        & (amount >= min_request_kwh)
        & (room.y_max_kwh[:, -1] >= amount - ENERGY_TOL_KWH)
    )
    shape_kw = np.diff(room.y_max_kwh, axis=1, prepend=0.0) / _H  # the greedy fill, whole amount
    left_kwh = goal.target_kwh if goal.kind == "energy" else goal.max_energy_kwh
    left_kw = goal.power_kw.copy()
    for i in sorted(np.flatnonzero(eligible), key=lambda i: -amount[i]):  # largest first
        if goal.kind == "power":
            if np.any(shape_kw[i] > left_kw + POWER_TOL_KW):
                continue
            left_kw = np.maximum(left_kw - shape_kw[i], 0.0)
        else:
            if amount[i] > left_kwh + ENERGY_TOL_KWH:
                continue
            if goal.kind == "price" and float((shape_kw[i] * goal.value_yen_per_kwh).sum()) <= 0:
                continue
            left_kwh = max(left_kwh - amount[i], 0.0)
        fixed[i] = True
        x_kw[i] = shape_kw[i]
    return standard, fixed, x_kw


def _less(goal: _Goal, fixed_kw: FloatArray) -> _Goal:
    """``goal`` less what the fixed standard units deliver (never below zero)."""
    fixed_kwh = float(fixed_kw.sum()) * _H
    power = np.maximum(goal.power_kw - fixed_kw.sum(axis=0), 0.0)
    if goal.kind == "energy":
        return replace(goal, target_kwh=max(goal.target_kwh - fixed_kwh, 0.0))
    if goal.kind == "power":
        return replace(goal, power_kw=power, target_kwh=float(power.sum()) * _H)
    return replace(goal, max_energy_kwh=max(goal.max_energy_kwh - fixed_kwh, 0.0))


def redispatch(
    potentials: ResourcePotentials,
    target: EnergyTarget | PowerTarget | PriceTarget,
    *,
    committed_kwh: FloatArray | Mapping[str, float] | Sequence[float] | None = None,
    excluded: Iterable[str] | BoolArray | None = None,
    committed_kw: FloatArray | None = None,
    min_request_kwh: float = DEFAULT_MIN_REQUEST_KWH,
    method: Literal["auto", "full"] = "auto",
    energy_shift_hours: Mapping[str, Sequence[int]] | None = None,
) -> DispatchPlan:
    """Additional requests that cover ``target`` — the shortfall — on top of what is committed (D3).

    Parameters
    ----------
    potentials : ResourcePotentials
        The potentials the original dispatch used (the declarations of the window).
    target : EnergyTarget, PowerTarget or PriceTarget
        What is still missing: :meth:`Commitments.remaining` of the original target.
    committed_kwh : array (R,) or mapping name → kWh, optional
        What each resource has accepted so far [kWh]; its declared energy is reduced by it and it
        counts towards its utilisation. Default none.
    excluded : names or bool array (R,), optional
        Resources not to ask again: rejected, partially accepted (a partial answer is the unit's
        statement of what it can do), silent or offline. Their committed amounts stay counted.
    committed_kw : array (R, S), optional
        The committed deviation per slot [kW] in the target's direction, when known (the F4 plans
        that came back, or :attr:`Commitments.committed_kw`): the per-slot and cumulative room is
        reduced by it. Without it only the declared energy is reduced, and the unit's answer to the
        new request tells whether both fit.
    min_request_kwh : float
        Smallest request [kWh], in (0, 1e6] (module docstring: smaller ones are re-spread).
    method : "auto" or "full"
        ``"auto"`` solves an energy target on the resources' totals (exact, see
        the module docstring) and the others on the slot-level LP; ``"full"`` always uses the
        slot-level LP.
    energy_shift_hours : mapping name → shift hours, optional
        The standard-only units (``DRREADY_ENERGY_SHIFT_ONLY``) and the hours they can shift
        to: each gets its whole declared amount or nothing (module docstring); one already
        committed is not asked again.

    Returns
    -------
    DispatchPlan
        ``requested_kwh`` are the **additional** amounts; ``utilisation`` includes the committed.
    """
    t0 = time.perf_counter()
    if not (math.isfinite(min_request_kwh) and 0 < min_request_kwh <= MAX_AMOUNT_KWH):
        raise ValueError(
            f"min_request_kwh must be finite and in (0, {MAX_AMOUNT_KWH:g}] kWh, "
            f"got {min_request_kwh!r}"
        )
    if method not in ("auto", "full"):
        raise ValueError(f"method must be 'auto' or 'full', got {method!r}")
    n_r, n_s = potentials.n_resources, potentials.n_slots
    direction = target.direction
    goal = _goal(target, n_s)
    committed = (
        np.zeros(n_r)
        if committed_kwh is None
        else _as_vector(committed_kwh, potentials, "committed_kwh")
    )
    out_mask = _excluded_mask(excluded, potentials)
    slot_kw, cum_kwh = potentials.room(direction)
    if committed_kw is not None:
        profile = _float_array(committed_kw, "committed_kw", (n_r, n_s))
        _require(profile >= 0, "committed_kw must be >= 0", profile)
        slot_kw = np.maximum(slot_kw - profile, 0.0)  # the room left next to the commitment
        cum_kwh = np.maximum(cum_kwh - np.cumsum(profile, axis=1) * _H, 0.0)
    if goal.kind == "price":
        slot_kw = np.where(goal.value_yen_per_kwh[None, :] > 0, slot_kw, 0.0)  # never for nothing
    declared = potentials.declared_kwh(direction)
    limit = cumulative_limit_kwh(cum_kwh, np.maximum(declared - committed, 0.0))
    room = _Room(
        slot_kw=slot_kw,
        limit_kwh=limit,
        y_max_kwh=largest_cumulative_kwh(slot_kw * _H, limit),
        declared_kwh=declared,
        committed_kwh=committed,
    )
    largest = room.y_max_kwh[:, -1]
    full_goal = goal
    standard, fixed, fixed_kw = _fixed_energy_shift(
        potentials,
        direction,
        goal,
        room,
        energy_shift_hours or {},
        out_mask | (committed > _NOISE_KWH),
        min_request_kwh,
    )
    goal = _less(goal, fixed_kw)
    can_take = (~out_mask) & (~standard) & (declared > 0) & (largest > _NOISE_KWH)
    active = can_take & (largest >= min_request_kwh)
    solver = _solve_totals if (method == "auto" and goal.kind == "energy") else _solve_full

    x_kw = np.zeros((n_r, n_s))
    message = "no resource can take a request"
    n_solves = 0
    while active.any():
        idx = np.flatnonzero(active)
        sol = solver(room.take(idx), goal)
        message, n_solves = sol.message, n_solves + sol.n_solves
        x_kw[:] = 0.0
        x_kw[idx] = _clean(sol.x_kw, slot_kw[idx], limit[idx])
        amount = x_kw.sum(axis=1) * _H
        noise = amount <= _NOISE_KWH
        x_kw[noise] = 0.0
        small = np.flatnonzero(active & ~noise & (amount < min_request_kwh - _NOISE_KWH))
        if small.size == 0:
            break
        # leave out the smallest, at most half of those in play per round (dropping all at once
        # could drop a share the others then no longer cover, e.g. 3 × 0.2 kWh with a minimum
        # of 0.3 kWh: one is left out and the other two carry 0.3 kWh each)
        n_drop = min(small.size, max(1, int(active.sum()) // 2))
        active[small[np.argsort(amount[small], kind="stable")[:n_drop]]] = False
    else:
        x_kw[:] = 0.0  # every candidate fell below the minimum
    x_kw[fixed] = fixed_kw[fixed]
    goal = full_goal

    requested = x_kw.sum(axis=1) * _H
    util = np.divide(committed + requested, declared, out=np.zeros(n_r), where=declared > 0)
    delivered_kw = x_kw.sum(axis=0)
    total = float(requested.sum())
    if goal.kind == "power":
        short_kw = np.maximum(goal.power_kw - delivered_kw, 0.0)
        shortfall = float(short_kw.sum()) * _H
    else:
        short_kw = np.zeros(n_s)
        shortfall = max(goal.target_kwh - total, 0.0) if goal.kind == "energy" else 0.0
    return DispatchPlan(
        names=potentials.names,
        direction=direction,
        target_kind=goal.kind,
        requested_kwh=_frozen(requested),
        deviation_kw=_frozen(x_kw),
        committed_kwh=_frozen(committed),
        declared_kwh=_frozen(declared),
        utilisation=_frozen(util),
        target_kwh=total if goal.kind == "price" else goal.target_kwh,
        shortfall_kwh=shortfall,
        shortfall_kw=_frozen(short_kw),
        value_yen=float((delivered_kw * _H * goal.value_yen_per_kwh).sum()),
        dropped=tuple(potentials.names[i] for i in np.flatnonzero(can_take & ~active)),
        solver_message=message,
        n_solves=n_solves,
        solve_time_s=time.perf_counter() - t0,
        window_start=potentials.window_start,
        window_end=potentials.window_end,
    )


def _frozen(arr: FloatArray) -> FloatArray:
    out = np.array(arr, dtype=np.float64)
    out.setflags(write=False)
    return out


def dispatch(
    potentials: ResourcePotentials,
    target: EnergyTarget | PowerTarget | PriceTarget,
    *,
    min_request_kwh: float = DEFAULT_MIN_REQUEST_KWH,
    method: Literal["auto", "full"] = "auto",
    energy_shift_hours: Mapping[str, Sequence[int]] | None = None,
) -> DispatchPlan:
    """Split ``target`` across ``potentials`` (U2, D5): stage 1 delivers as much as possible,
    stage 2 minimises the largest utilisation (module docstring); standard-only units
    (``energy_shift_hours``) whole or not at all. Nothing committed yet."""
    return redispatch(
        potentials,
        target,
        min_request_kwh=min_request_kwh,
        method=method,
        energy_shift_hours=energy_shift_hours,
    )


# --- responses → re-dispatch inputs (D3) ------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Commitments:
    """What the resources accepted so far, and who is not to be asked again (D3).

    ``committed_kwh`` (R,) [kWh]; ``committed_kw`` (R, S) — the indicative per-slot profile of the
    accepted amounts (the plan's shape scaled to the accepted amount; replace it by the F4 plans
    when they came back); ``excluded`` (R,) — rejected, partial, silent or offline resources.
    """

    committed_kwh: FloatArray
    committed_kw: FloatArray
    excluded: BoolArray

    @classmethod
    def none(cls, potentials: ResourcePotentials) -> Commitments:
        """Nothing committed, nobody excluded."""
        n_r, n_s = potentials.n_resources, potentials.n_slots
        return cls(np.zeros(n_r), np.zeros((n_r, n_s)), np.zeros(n_r, dtype=bool))

    @property
    def total_kwh(self) -> float:
        """Sum of the committed amounts [kWh]."""
        return float(self.committed_kwh.sum())

    def remaining(
        self, target: EnergyTarget | PowerTarget | PriceTarget
    ) -> EnergyTarget | PowerTarget | PriceTarget:
        """The part of ``target`` the commitments do not cover, as a target for :func:`redispatch`.

        Energy: ``T − Σ committed`` (≥ 0); power: per slot ``P_s − Σ_r committed_kw[r,s]`` (≥ 0);
        price: the same prices, with ``max_energy_kwh`` reduced by the committed total.
        """
        if isinstance(target, EnergyTarget):
            left = max(target.energy_kwh - self.total_kwh, 0.0)
            return target.model_copy(update={"energy_kwh": left})
        if isinstance(target, PowerTarget):
            need = target.per_slot_kw(self.committed_kw.shape[1]) - self.committed_kw.sum(axis=0)
            return target.model_copy(
                update={"power_kw": tuple(float(v) for v in np.maximum(need, 0.0))}
            )
        if target.max_energy_kwh is None:
            return target
        left = max(target.max_energy_kwh - self.total_kwh, 0.0)
        return target.model_copy(update={"max_energy_kwh": left})


def commitments_from_responses(
    plan: DispatchPlan,
    responses: Mapping[str, DrResponse | None],
    previous: Commitments | None = None,
) -> Commitments:
    """Fold the answers to ``plan``'s requests into the commitments (D3).

    ``responses`` maps a resource name to its :class:`~drready.domain.DrResponse`, or to ``None``
    when it stayed silent or is offline; a requested resource missing from the mapping counts as
    silent. Accepted: the amount is committed and the resource may be asked for more. Partial: the
    accepted amount is committed and the resource is excluded (its answer says it cannot do
    more). Rejected, silent, offline: excluded. ``previous`` carries the earlier rounds.
    """
    n_r, n_s = plan.deviation_kw.shape
    committed = np.zeros(n_r) if previous is None else previous.committed_kwh.copy()
    profile = np.zeros((n_r, n_s)) if previous is None else previous.committed_kw.copy()
    excluded = np.zeros(n_r, dtype=bool) if previous is None else previous.excluded.copy()
    if committed.shape != (n_r,) or profile.shape != (n_r, n_s) or excluded.shape != (n_r,):
        raise ValueError("previous must come from the same potentials as plan (shapes differ)")
    pos = {n: i for i, n in enumerate(plan.names)}
    unknown = [n for n in responses if n not in pos]
    if unknown:
        raise ValueError(f"responses must name resources of the plan, got unknown {unknown[:5]!r}")
    for i in np.flatnonzero(plan.requested_kwh > 0):  # one answer per request sent
        resp = responses.get(plan.names[i])
        if resp is None or resp.status is ResponseStatus.REJECTED:
            excluded[i] = True
            continue
        accepted = min(resp.accepted_kwh, float(plan.requested_kwh[i]))
        committed[i] += accepted
        profile[i] += plan.deviation_kw[i] * (accepted / plan.requested_kwh[i])
        if resp.status is ResponseStatus.PARTIAL:
            excluded[i] = True
    return Commitments(committed_kwh=committed, committed_kw=profile, excluded=excluded)
