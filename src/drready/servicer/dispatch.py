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
``x ≥ 0`` because the baseline satisfies them. The LP is written in the cumulative variables
``y[r,s] = Σ_{k≤s} x[r,k]·h`` [kWh]: the coupling becomes a bound on ``y`` and the per-slot limit
a two-sided row ``0 ≤ y[r,s] − y[r,s−1] ≤ (x_max)·h``, so the model has ``R·S`` variables and
``O(R·S)`` non-zeros whatever the window length (the triangular form ``Σ_{k≤s} x_k`` would need
``R·S(S+1)/2``). The bound of ``y[r,s]`` is the largest cumulative energy the resource can reach
by the end of slot ``s`` (a forward pass, exact because the per-slot and the prefix constraints
form a laminar family, for which the greedy fill is optimal — Edmonds 1970), which also gives each
resource's largest possible request up front. Matrices are built with numpy index arithmetic and
solved by HiGHS through :func:`scipy.optimize.milp` (all variables continuous: an LP).

Targets (shortfall slacks ``σ ≥ 0``):

* :class:`EnergyTarget` ``T`` [kWh]: ``Σ_r y[r,S−1] + σ = T``.
* :class:`PowerTarget` ``P_s`` [kW]: per slot ``Σ_r x[r,s] + σ_s = P_s``.
  Equality: never more than asked (over-delivery is paid for and not needed).
* :class:`PriceTarget`: no amount; each kWh of deviation in slot ``s`` is worth
  ``v_s = (p_s − p_ref) − κ`` for down-DR and ``v_s = (p_ref − p_s) − κ`` for up-DR [yen/kWh],
  with ``p_s`` the slot's price, ``p_ref`` the reference price (default 0: what the shifted energy
  is otherwise worth, e.g. the night tariff a heater would heat at) and ``κ`` the compensation paid
  to the resource per kWh. Down-DR avoids buying at ``p_s`` and pays ``κ``; up-DR buys at ``p_s``
  (income when the price is negative) and pays ``κ``. Slots with ``v_s ≤ 0`` get no deviation at
  all; the rest maximise ``Σ_{r,s} v_s·x[r,s]·h`` [yen], optionally with
  ``Σ_r y[r,S−1] ≤ max_energy_kwh``.

Two stages, solved in turn (lexicographic):

1. **Deliver as much as possible**: minimise the shortfall ``σ`` [kWh] (energy target),
   ``Σ_s σ_s·h`` (power target) or maximise the value (price target). The slack is the only term
   of this stage's objective, i.e. an infinitely large penalty: a target above the portfolio's
   potential gives the best partial answer and reports the rest as the shortfall.
2. **Fairness rule — minimise the largest utilisation**, keeping stage 1's shortfall (or value)
   within ``1e-6 kWh + 1e-7 ×`` its scale: ``min u`` with
   ``committed_r + y[r,S−1] ≤ u·declared_r`` for every resource used. Utilisation = (committed +
   requested) ÷ declared. The load is spread in proportion to the declared potential instead of
   piling onto whichever resource the solver picks first. Consequence for an energy target below
   the total potential: every resource whose envelope allows it gets the same utilisation
   ``u* = T / Σ declared`` (declared 2, 4, 6 kWh and 6 kWh to place → 1, 2, 3 kWh); in general
   the amounts are ``min(largest_r, u*·declared_r − committed_r)`` with ``Σ = T`` — unique. For
   power and price targets only the largest utilisation is minimised: resources below it may take
   any amount that keeps stage 1's optimum (a minimax, not a lexicographic max-min, rule).

Minimum request size: a DR request must carry a positive amount, and tiny ones cost a message and
a settlement line for nothing. Resources whose largest possible request is below
``min_request_kwh`` (default 0.01 kWh) are left out before the LP; after it, any resource assigned
a positive amount below the minimum is left out and the LP is solved again without it, so its
share is re-spread over the others by the same two stages (repeated until no such amount is left;
each round removes at least one resource, so it ends). Amounts below 1e-9 kWh (solver noise) are
set to zero without a new solve.

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
``scipy.optimize.milp``).
Edmonds, J. (1970). Submodular functions, matroids, and certain polyhedra. In Combinatorial
Structures and their Applications, 69–87 (greedy optimality on polymatroids; the prefix and
per-slot constraints of one resource form a laminar family, hence a polymatroid).
Bertsimas, D., Farias, V. F. and Trichakis, N. (2011). The price of fairness. Operations
Research 59(1), 17–31 (min-max / max-min fairness in resource allocation).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field, field_validator
from scipy.optimize import Bounds, LinearConstraint, milp

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
from drready.domain._base import ENERGY_TOL_KWH, POWER_TOL_KW, bounded_float

__all__ = [
    "DEFAULT_MIN_REQUEST_KWH",
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
    "dispatch",
    "redispatch",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Smallest amount sent as a DR request [kWh]; smaller assignments are re-spread.
DEFAULT_MIN_REQUEST_KWH = 0.01
#: Assignments below this are solver noise and set to zero without a new solve [kWh].
_NOISE_KWH = 1e-9
#: Stage 2 keeps stage 1's optimum within ``_KEEP_ABS + _KEEP_REL × scale``.
_KEEP_ABS = 1e-6
#: After the clean-up, amounts below this are zero [kWh] (far below any minimum request).
_CLEAN_KWH = 1e-6
_KEEP_REL = 1e-7
_H = SLOT_HOURS

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
        raise ValueError(f"{name} must be finite, got {arr[where]!r} at index {where}")
    arr.setflags(write=False)
    return arr


def _require(ok: BoolArray, message: str, values: FloatArray) -> None:
    """Raise ``ValueError(message)`` with the first offending index and value when ``ok`` fails."""
    if not ok.all():
        where = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise ValueError(f"{message}, got {values[where]!r} at index {where}")


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


def largest_cumulative_kwh(
    slot_kwh: FloatArray, cum_kwh: FloatArray, energy_kwh: FloatArray
) -> FloatArray:
    """Largest cumulative deviation reachable by the end of each slot [kWh], ``(R, S)``.

    ``slot_kwh`` (R, S): per-slot limit (kW × h); ``cum_kwh`` (R, S): cumulative limit;
    ``energy_kwh`` (R,): limit on the window's total. Forward greedy fill
    ``y_s = min(y_{s−1} + slot_s, min_{t≥s} cum_t, energy)`` — optimal for every ``s`` at once
    (laminar constraints, Edmonds 1970). Loops over slots only.
    """
    # a later cumulative limit binds earlier slots too (y never decreases)
    suffix = np.minimum.accumulate(cum_kwh[:, ::-1], axis=1)[:, ::-1]
    limit = np.minimum(suffix, energy_kwh[:, None])
    y = np.empty_like(slot_kwh)
    prev = np.zeros(slot_kwh.shape[0])
    for s in range(slot_kwh.shape[1]):
        prev = np.minimum(prev + slot_kwh[:, s], limit[:, s])
        y[:, s] = prev
    return y


@dataclass(frozen=True)
class _Problem:
    """One direction's bounds for the resources in play (``A`` of them) and the target."""

    slot_kwh: FloatArray  # (A, S) per-slot limit × h
    y_max_kwh: FloatArray  # (A, S) largest cumulative deviation
    declared_kwh: FloatArray  # (A,)
    committed_kwh: FloatArray  # (A,)
    kind: str
    target_kwh: float  # energy target
    power_kw: FloatArray  # (S,) power target
    value_yen_per_kwh: FloatArray  # (S,) price target (0 where not worth it)
    max_energy_kwh: float  # price target cap (inf: none)


@dataclass(frozen=True)
class _Solution:
    y_kwh: FloatArray  # (A, S)
    message: str
    n_solves: int


def _solve_lp(
    c: FloatArray, a: sp.csr_array, lo: FloatArray, hi: FloatArray, lb: FloatArray, ub: FloatArray
) -> tuple[FloatArray, float, str]:
    res = milp(
        c,
        bounds=Bounds(lb, ub),
        constraints=LinearConstraint(a, lo, hi),
    )
    if res.status != 0 or res.x is None:
        raise DispatchError(f"HiGHS did not reach an optimum: {res.message}")
    return np.asarray(res.x, dtype=np.float64), float(res.fun), str(res.message)


def _solve(p: _Problem) -> _Solution:
    """Stage 1 (deliver) and stage 2 (fairness) for the resources of ``p``."""
    n_a, n_s = p.slot_kwh.shape
    n_y = n_a * n_s
    yid = np.arange(n_y).reshape(n_a, n_s)

    # per-slot rows, s ≥ 1: 0 ≤ y[a,s] − y[a,s−1] ≤ slot_kwh[a,s]
    n_inc = n_a * (n_s - 1)
    inc_rows = np.arange(n_inc)
    rows = [inc_rows, inc_rows]
    cols = [yid[:, 1:].ravel(), yid[:, :-1].ravel()]
    vals = [np.ones(n_inc), -np.ones(n_inc)]
    lo = [np.zeros(n_inc)]
    hi = [p.slot_kwh[:, 1:].ravel()]
    n_rows = n_inc

    if p.kind == "energy":
        n_sig, sig_weight = 1, np.ones(1)  # σ [kWh]
        rows += [np.full(n_a, n_rows), np.array([n_rows])]
        cols += [yid[:, -1], np.array([n_y])]
        vals += [np.ones(n_a), np.ones(1)]
        lo.append(np.array([p.target_kwh]))
        hi.append(np.array([p.target_kwh]))
        n_rows += 1
    elif p.kind == "power":
        n_sig, sig_weight = n_s, np.full(n_s, _H)  # σ_s [kW], weighted to kWh
        # Σ_a (y[a,s] − y[a,s−1]) + h·σ_s = h·P_s
        slot_of = np.broadcast_to(np.arange(n_s), (n_a, n_s))
        rows += [n_rows + slot_of.ravel(), n_rows + slot_of[:, 1:].ravel(), n_rows + np.arange(n_s)]
        cols += [yid.ravel(), yid[:, :-1].ravel(), n_y + np.arange(n_s)]
        vals += [np.ones(n_y), -np.ones(n_inc), np.full(n_s, _H)]
        lo.append(p.power_kw * _H)
        hi.append(p.power_kw * _H)
        n_rows += n_s
    else:
        n_sig, sig_weight = 0, np.zeros(0)
        if math.isfinite(p.max_energy_kwh):
            rows.append(np.full(n_a, n_rows))
            cols.append(yid[:, -1])
            vals.append(np.ones(n_a))
            lo.append(np.array([0.0]))
            hi.append(np.array([p.max_energy_kwh]))
            n_rows += 1

    n_var = n_y + n_sig + 1  # + u (stage 2)
    u_col = n_var - 1
    lb = np.zeros(n_var)
    ub = np.concatenate([p.y_max_kwh.ravel(), np.full(n_sig, np.inf), [np.inf]])

    # stage 1 objective: shortfall [kWh], or −value [yen]
    c1 = np.zeros(n_var)
    if p.kind == "price":
        v = p.value_yen_per_kwh
        # Σ_s v_s (y_s − y_{s−1}) = Σ_s (v_s − v_{s+1}) y_s with v_S = 0
        c1[:n_y] = -np.broadcast_to(v - np.append(v[1:], 0.0), (n_a, n_s)).ravel()
    else:
        c1[n_y : n_y + n_sig] = sig_weight

    def matrix(extra_rows: int) -> sp.csr_array:
        return sp.csr_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_rows + extra_rows, n_var),
        )

    # u is not in stage 1: fix it at 0 there
    ub1 = ub.copy()
    ub1[u_col] = 0.0
    x1, best, message = _solve_lp(c1, matrix(0), np.concatenate(lo), np.concatenate(hi), lb, ub1)
    solves = 1
    if p.kind == "price":
        delivered_any = -best > _KEEP_ABS
    else:
        delivered_any = float(x1[:n_y].reshape(n_a, n_s)[:, -1].sum()) > _KEEP_ABS
    if not delivered_any:
        return _Solution(y_kwh=np.zeros((n_a, n_s)), message=message, n_solves=solves)

    # stage 2: min u s.t. y[a,S−1] − declared_a·u ≤ −committed_a, and stage 1 kept
    scale = abs(best) if p.kind == "price" else p.target_kwh
    keep = _KEEP_ABS + _KEEP_REL * scale
    fair_rows = n_rows + np.arange(n_a)
    rows += [fair_rows, fair_rows]
    cols += [yid[:, -1], np.full(n_a, u_col)]
    vals += [np.ones(n_a), -p.declared_kwh]
    lo.append(np.full(n_a, -np.inf))
    hi.append(-p.committed_kwh)
    keep_row = n_rows + n_a
    nz = np.flatnonzero(c1)
    rows.append(np.full(nz.size, keep_row))
    cols.append(nz)
    vals.append(c1[nz])
    lo.append(np.array([-np.inf]))
    hi.append(np.array([best + keep]))
    c2 = np.zeros(n_var)
    c2[u_col] = 1.0
    x2, _, message = _solve_lp(c2, matrix(n_a + 1), np.concatenate(lo), np.concatenate(hi), lb, ub)
    solves += 1
    return _Solution(y_kwh=x2[:n_y].reshape(n_a, n_s), message=message, n_solves=solves)


def _clean(y_kwh: FloatArray, slot_kwh: FloatArray, energy_kwh: FloatArray) -> FloatArray:
    """Per-slot deviation [kW] from the LP's cumulative solution, inside the bounds exactly."""
    x_kwh = np.diff(y_kwh, axis=1, prepend=0.0)
    # HiGHS meets bounds to its feasibility tolerance (1e-7): clip that noise back inside
    x_kwh = np.clip(x_kwh, 0.0, slot_kwh)
    total = x_kwh.sum(axis=1)
    over = total > energy_kwh
    if over.any():  # same noise on the declared energy: scale down, never ask above it
        x_kwh[over] *= (energy_kwh[over] / total[over])[:, None]
    out: FloatArray = x_kwh / _H
    return out


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


def redispatch(
    potentials: ResourcePotentials,
    target: EnergyTarget | PowerTarget | PriceTarget,
    *,
    committed_kwh: FloatArray | Mapping[str, float] | Sequence[float] | None = None,
    excluded: Iterable[str] | BoolArray | None = None,
    committed_kw: FloatArray | None = None,
    min_request_kwh: float = DEFAULT_MIN_REQUEST_KWH,
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
        Smallest request [kWh], > 0 (module docstring: smaller ones are re-spread).

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
    n_r, n_s = potentials.n_resources, potentials.n_slots
    direction = target.direction
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
    declared = potentials.declared_kwh(direction)
    energy_kwh = np.maximum(declared - committed, 0.0)

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
        value = target.value_yen_per_kwh(n_s)
        worthless = value <= 0
        slot_kw = np.where(worthless[None, :], 0.0, slot_kw)  # never deviate for nothing
        value = np.where(worthless, 0.0, value)
        if target.max_energy_kwh is not None:
            max_energy = target.max_energy_kwh

    slot_kwh = slot_kw * _H
    y_max = largest_cumulative_kwh(slot_kwh, cum_kwh, energy_kwh)
    can_take = (~out_mask) & (declared > 0)
    active = can_take & (y_max[:, -1] >= min_request_kwh)

    y = np.zeros((n_r, n_s))
    message = "no resource can take a request"
    n_solves = 0
    while active.any():
        idx = np.flatnonzero(active)
        sol = _solve(
            _Problem(
                slot_kwh=slot_kwh[idx],
                y_max_kwh=y_max[idx],
                declared_kwh=declared[idx],
                committed_kwh=committed[idx],
                kind=target.kind,
                target_kwh=target_kwh,
                power_kw=power_kw,
                value_yen_per_kwh=value,
                max_energy_kwh=max_energy,
            )
        )
        message, n_solves = sol.message, n_solves + sol.n_solves
        y[:] = 0.0
        y[idx] = sol.y_kwh
        amount = y[:, -1]
        small = active & (amount > _NOISE_KWH) & (amount < min_request_kwh)
        if not small.any():
            break
        active &= ~small  # leave them out and spread their share over the others

    x_kw = _clean(y, slot_kwh, energy_kwh)
    x_kw[~active] = 0.0
    requested = x_kw.sum(axis=1) * _H
    # the loop left every amount ≥ the minimum or ≤ 1e-9 kWh; clipping moved them by ≤ ~1e-7
    noise = requested < _CLEAN_KWH
    x_kw[noise] = 0.0
    requested[noise] = 0.0

    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(declared > 0, (committed + requested) / declared, 0.0)
    delivered_kw = x_kw.sum(axis=0)
    total = float(requested.sum())
    if isinstance(target, PowerTarget):
        short_kw = np.maximum(power_kw - delivered_kw, 0.0)
        shortfall = float(short_kw.sum()) * _H
    else:
        short_kw = np.zeros(n_s)
        shortfall = max(target_kwh - total, 0.0) if isinstance(target, EnergyTarget) else 0.0
    if isinstance(target, PriceTarget):
        target_kwh = total
    value_yen = float((delivered_kw * _H * value).sum())
    dropped = can_take & ~active & (y_max[:, -1] > _NOISE_KWH)
    return DispatchPlan(
        names=potentials.names,
        direction=direction,
        target_kind=target.kind,
        requested_kwh=_frozen(requested),
        deviation_kw=_frozen(x_kw),
        committed_kwh=_frozen(committed),
        declared_kwh=_frozen(declared.copy()),
        utilisation=_frozen(util),
        target_kwh=float(target_kwh),
        shortfall_kwh=shortfall,
        shortfall_kw=_frozen(short_kw),
        value_yen=value_yen,
        dropped=tuple(potentials.names[i] for i in np.flatnonzero(dropped)),
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
) -> DispatchPlan:
    """Split ``target`` across ``potentials`` (U2, D5): stage 1 delivers as much as possible,
    stage 2 minimises the largest utilisation (module docstring). Nothing committed yet."""
    return redispatch(potentials, target, min_request_kwh=min_request_kwh)


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
