"""The planning problem of a fleet of water heaters over a slot grid, in physical terms (F1, F3).

:func:`build_problem` turns households, tanks, climate, tariff and a draw forecast into arrays
over ``(units, slots)``: expected draw heat, the stored-heat bounds that make a plan safe at the
stated confidence, heat-pump limits, retention and COP per slot, and prices. The fast path
(:mod:`drready.planning.fast`) and the LP reference (:mod:`drready.planning.reference`) both
solve exactly this problem, so they can be compared.

Safety at a confidence level (the E1 definition, see ``docs/dr-potential-method.md``): the
cumulative hot-water use from the planning time ``t0`` to ``t`` has a mean ``μ(t)`` and a standard
deviation ``σ(t)`` (day-to-day factor plus independent event noise, from
:func:`drready.physics.draws.slot_use_moments_l`). With ``z`` the one-sided normal quantile of
the confidence, a plan's expected stored heat must stay

* at least ``reserve + z·σ(t)`` (converted to heat): if the household uses more than expected,
  the tank still does not run dry — the guard against DR-caused shortage (湯切れ);
* at most ``Q_max − z·σ(t)``: if it uses less, the tank still has the headroom the plan counts
  on — the guard that declared up-DR can really be absorbed.

At the horizon end the tank must hold the expected use until the next night heating starts
(23:00) plus the reserve, so that no plan "borrows" from the day after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from drready.domain import SlotGrid
from drready.physics.climate import TOKYO, Climate, air_temp_c, hour_of_year, mains_temp_c
from drready.physics.draws import DayType, DrawVariability, day_type_for, slot_use_moments_l
from drready.physics.heatpump import RATED_33_CLASS, HeatPumpSpec, cop
from drready.physics.tank import loss_rate_per_h, max_stored_heat_kwh, tank_for_volume
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.fast import StaircaseBounds, prefix, prefix_product, relax_to_feasible
from drready.planning.tariff import NIGHT_TOU, Tariff

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NIGHT_START_HOUR = 23
"""Local hour at which the night heating window (and a new heating cycle) begins."""

MAX_PERSONS = 8
"""Largest household: beyond the national schedule's 4 persons, the cold-start forecast scales the
4-person schedule by ``persons / 4`` (mean and spread), as real homes of five or more exist."""


def seasonal_boil_temp_c(mains_c: npt.ArrayLike) -> FloatArray:
    """Default boil-up temperature: 65 °C with mains ≥ 20 °C rising to 80 °C at mains ≤ 8 °C.

    Assumption modelled on the automatic seasonal modes of EcoCutes, which boil hotter in winter
    so that the same tank holds the larger winter heat demand.
    """
    m = np.asarray(mains_c, dtype=float)
    # clip: the automatic mode stays within 65–80 °C.
    return np.clip(65.0 + (20.0 - m) * 1.25, 65.0, 80.0)


@dataclass(frozen=True)
class Fleet:
    """Households and their water heaters, one entry per unit (arrays of shape (N,)).

    Parameters
    ----------
    persons : int array
        Household size, 1–8 (the national schedule's 1–4; beyond, see :data:`MAX_PERSONS`).
    tank_volume_l : float array
        Tank volume [L].
    bathtub : bool array
        Whether the home has a bathtub (selects the schedule columns).
    reserve_l : float
        Hot water at 40 °C always kept in the tank [L] (a floor below any safety margin).
    heat_pump : HeatPumpSpec
        Heat pump of every unit.
    boil_temp_c : float array or None
        Boil-up temperature [°C]; the seasonal default when None.
    """

    persons: IntArray
    tank_volume_l: FloatArray
    bathtub: BoolArray
    reserve_l: float = 40.0
    heat_pump: HeatPumpSpec = RATED_33_CLASS
    boil_temp_c: FloatArray | None = None

    def __post_init__(self) -> None:
        n = self.persons.shape[0]
        if self.persons.ndim != 1 or n < 1:
            raise ValueError("persons must be a non-empty 1-D array")
        if np.any((self.persons < 1) | (self.persons > MAX_PERSONS)):
            raise ValueError(f"persons must be within 1–{MAX_PERSONS}")
        if self.tank_volume_l.shape != (n,) or self.bathtub.shape != (n,):
            raise ValueError("tank_volume_l and bathtub must have the shape of persons")
        if np.any((self.tank_volume_l < 100) | (self.tank_volume_l > 1000)):
            raise ValueError("tank_volume_l must be within 100–1000 L")
        if not 0.0 <= self.reserve_l <= 200.0:
            raise ValueError(f"reserve_l must be within 0–200 L, got {self.reserve_l}")

    @property
    def size(self) -> int:
        return int(self.persons.shape[0])

    @classmethod
    def single(cls, persons: int, tank_l: float, bathtub: bool = True) -> Fleet:
        """One household."""
        return cls(np.array([persons]), np.array([float(tank_l)]), np.array([bathtub]))

    @classmethod
    def random(cls, rng: np.random.Generator, n: int) -> Fleet:
        """``n`` households: 1–4 persons (1:2:3:4 shares 0.2/0.3/0.25/0.25), 370 L for
        1–2 persons mostly and 460 L for larger homes mostly (assumption mirroring how the
        two classes are sold), all with a bathtub (the national schedule's no-bathtub columns
        hold no shower or bath use, so they would model a home without bathing)."""
        persons = rng.choice(np.arange(1, 5), size=n, p=[0.2, 0.3, 0.25, 0.25])
        big = rng.random(n) < np.where(persons >= 3, 0.7, 0.2)
        tank = np.where(big, 460.0, 370.0)
        return cls(persons.astype(np.int64), tank, np.ones(n, dtype=bool))

    def subset(self, idx: IntArray | slice) -> Fleet:
        """The units at ``idx``."""
        return replace(
            self,
            persons=self.persons[idx],
            tank_volume_l=self.tank_volume_l[idx],
            bathtub=self.bathtub[idx],
            boil_temp_c=None if self.boil_temp_c is None else self.boil_temp_c[idx],
        )


@dataclass(frozen=True)
class DrawForecast:
    """What units expect of their households over a grid: litres at 40 °C, time-major.

    ``mean_l`` (T, N) per slot; ``cum_sigma_l`` (T+1, N) standard deviation of the cumulative
    use from the grid start to each slot boundary; ``after_end_l`` (N,) expected use from the
    grid end to the next 23:00 (what the tank must still hold at the end).

    ``early_l`` (T+1, N), optional: the use that may come *before* its expected time — the
    cumulative use of the schedule's blocks that land by one hour after the boundary, less the
    expected cumulative use (:func:`draw_forecast`); the safety bound adds it to ``z·σ``.

    ``over_l``/``under_l`` (T+1, N), optional: a forecast that knows its own error (a unit that
    learns, :mod:`drready.planning.forecast`) gives the one-sided bounds of the cumulative use
    above and below ``mean_l`` directly, at ``confidence``; :func:`build_problem` then uses
    them instead of ``z·σ + early`` and requires the same confidence.
    """

    mean_l: FloatArray
    cum_sigma_l: FloatArray
    after_end_l: FloatArray
    early_l: FloatArray | None = None
    over_l: FloatArray | None = None
    under_l: FloatArray | None = None
    confidence: float | None = None

    def take(self, idx: IntArray | slice) -> DrawForecast:
        """The forecast of the units at ``idx``."""

        def cut(x: FloatArray | None) -> FloatArray | None:
            return None if x is None else np.ascontiguousarray(x[:, idx])

        return replace(
            self,
            mean_l=np.ascontiguousarray(self.mean_l[:, idx]),
            cum_sigma_l=np.ascontiguousarray(self.cum_sigma_l[:, idx]),
            after_end_l=self.after_end_l[idx],
            early_l=cut(self.early_l),
            over_l=cut(self.over_l),
            under_l=cut(self.under_l),
        )

    def margins_l(self, confidence: float) -> tuple[FloatArray, FloatArray]:
        """One-sided bounds (T+1, N) [L] of cumulative use above and below the mean at
        ``confidence``: the forecast's own (``over_l``, ``under_l``) or ``z·σ`` (+ ``early_l``
        above)."""
        if self.over_l is not None and self.under_l is not None:
            if self.confidence is None or abs(self.confidence - confidence) > 1e-9:
                raise ValueError(
                    f"confidence: the forecast's bounds are at {self.confidence}, "
                    f"the problem asks {confidence}"
                )
            return self.over_l, self.under_l
        z = NormalDist().inv_cdf(confidence)
        spread = z * self.cum_sigma_l
        over = spread if self.early_l is None else spread + self.early_l
        return over, spread


def days_covering(grid: SlotGrid) -> tuple[list[date], int]:
    """Calendar days (local) from the grid start's day through the next 23:00 after its end,
    and the slot offset of the grid start within the first day."""
    starts = grid.starts()
    first = starts[0]
    end_local = first + timedelta(minutes=30 * grid.n_slots)
    last = (
        end_local.date()
        if end_local.hour < NIGHT_START_HOUR
        else end_local.date() + timedelta(days=1)
    )
    days = [first.date() + timedelta(days=i) for i in range((last - first.date()).days + 1)]
    return days, first.hour * 2 + first.minute // 30


DayTypeOf = Callable[[date], DayType]


def draw_forecast(
    fleet: Fleet,
    grid: SlotGrid,
    variability: DrawVariability | None = None,
    *,
    day_type: DayTypeOf = day_type_for,
) -> DrawForecast:
    """Expected use and its uncertainty from the standard schedule of each calendar day.

    The variance of cumulative use combines, per calendar day, the fully correlated day factor
    ``(cv_day · cumulative mean within that day)²`` and the independent slot variances.
    ``early_l`` is the schedule's use that may come up to an hour before its expected time (the
    schedule's blocks land within ±1 h): a bath expected at 19:00 can be drawn at 18:00, and
    a plan that heats just in time for 19:00 must already hold it at 18:00. ``day_type`` maps a
    date to its day type: the national calendar (default) or the real one
    (:func:`~drready.physics.draws.day_type_on`). Households of 5–8 persons take the 4-person
    schedule scaled by ``persons / 4`` (:data:`MAX_PERSONS`).
    """
    # households differ here only by (persons, bathtub): compute each kind once, then expand
    key = fleet.persons * 2 + fleet.bathtub.astype(np.int64)
    kinds, inverse = np.unique(key, return_inverse=True)
    if kinds.size < fleet.size:
        first = np.array([int(np.flatnonzero(key == k)[0]) for k in kinds])
        return _draw_forecast_each(fleet.subset(first), grid, variability, day_type).take(inverse)
    return _draw_forecast_each(fleet, grid, variability, day_type)


def _draw_forecast_each(
    fleet: Fleet, grid: SlotGrid, variability: DrawVariability | None, day_type: DayTypeOf
) -> DrawForecast:
    var = DrawVariability() if variability is None else variability
    days, offset = days_covering(grid)
    types = [day_type(d) for d in days]
    persons = np.minimum(fleet.persons, 4)
    scale = np.maximum(fleet.persons / 4.0, 1.0)[:, None]
    mean, indep = slot_use_moments_l(persons, types, 30, var, fleet.bathtub)
    mean0, _ = slot_use_moments_l(persons, types, 30, replace(var, jitter_prob=0.0), fleet.bathtub)
    mean, indep, mean0 = mean * scale, indep * scale**2, mean0 * scale
    t = grid.n_slots
    sl = slice(offset, offset + t)
    cv_day = float(np.sqrt(np.expm1(var.day_factor_sigma**2)))
    day_of_slot = np.repeat(np.arange(len(days)), 48)[sl]
    mean_g = mean[:, sl]
    cum_var = np.zeros((fleet.size, t + 1))
    # The independent increments may be negative (the jitter moves use between neighbouring
    # slots, a negative covariance); summed from the middle of a day they can dip below zero.
    # The running maximum of the clipped sum keeps the variance non-negative and never
    # shrinking with the horizon (conservative).
    cum_var[:, 1:] = np.maximum.accumulate(np.cumsum(indep[:, sl], axis=1).clip(min=0.0), axis=1)
    for d in np.unique(day_of_slot):
        in_day = np.zeros((fleet.size, t))
        in_day[:, day_of_slot == d] = mean_g[:, day_of_slot == d]
        cum_d = np.zeros((fleet.size, t + 1))
        np.cumsum(in_day, axis=1, out=cum_d[:, 1:])
        cum_var += (cv_day * cum_d) ** 2
    # use that may come an hour early: the unjittered schedule's cumulative use one hour (two
    # slots) past each boundary, less the expected cumulative use (clip: never negative)
    cum_mean = np.zeros((fleet.size, t + 1))
    np.cumsum(mean_g, axis=1, out=cum_mean[:, 1:])
    cum0 = np.concatenate([np.zeros((fleet.size, 1)), np.cumsum(mean0[:, offset:], axis=1)], 1)
    ahead = np.minimum(np.arange(t + 1) + 2, cum0.shape[1] - 1)
    early = np.clip(cum0[:, ahead] - cum_mean, 0.0, None)
    # what remains of the last covered day after the grid end, up to 23:00
    end_idx = offset + t
    stop = (len(days) - 1) * 48 + NIGHT_START_HOUR * 2
    after = mean[:, end_idx:stop].sum(axis=1) if stop > end_idx else np.zeros(fleet.size)
    return DrawForecast(
        _time_major(mean_g), _time_major(np.sqrt(cum_var)), after, early_l=_time_major(early)
    )


def perfect_forecast(use_l: FloatArray, after_end_l: FloatArray) -> DrawForecast:
    """The forecast of an oracle that knows the realised use per slot, (N, T) [L]: no
    uncertainty."""
    n, t = use_l.shape
    return DrawForecast(_time_major(use_l), np.zeros((t + 1, n)), after_end_l)


@dataclass(frozen=True)
class PlanningProblem:
    """A fleet's planning problem over a grid, in physical units, stored **time-major**.

    Per-slot arrays are (T, N), per-boundary arrays (T+1, N), per-unit arrays (N,): each slot is
    one contiguous row of N units, which is what the vectorised planner walks through.
    Stored heat ``Q`` is above mains temperature [kWh] at slot boundaries ``0…T``; heat ``x``
    [kWh per slot] is what the heat pump adds; electricity is ``x / cop``. Plans handed to the
    methods below are time-major too; :class:`~drready.planning.engine.FleetPlan` results are
    unit-major, (N, T).
    """

    grid: SlotGrid
    q0_kwh: FloatArray
    draw_kwh: FloatArray
    lower_kwh: FloatArray
    upper_kwh: FloatArray
    retention: FloatArray
    cop: FloatArray
    heat_cap_kwh: FloatArray
    heat_min_kwh: FloatArray
    price_yen_per_kwh: FloatArray
    q_max_kwh: FloatArray
    mains_temp_c: FloatArray
    air_temp_c: FloatArray
    unavoidable_shortfall_kwh: FloatArray
    confidence: float
    over_kwh: FloatArray | None = None
    """The lower bounds' margin for use above the forecast (T+1, N) [kWh]: ``L − reserve``
    before the horizon end's need; the up-DR floor widens it (``engine.DEFER_MARGIN``). None:
    not known (a hand-made problem), the floor is then the baseline itself."""
    staircase_cache: tuple[StaircaseBounds, FloatArray] | None = field(
        default=None, repr=False, compare=False
    )
    """The y-space bounds, kept by :func:`relax_problem` so that planners do not rebuild them."""

    @property
    def n_units(self) -> int:
        return int(self.q0_kwh.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.draw_kwh.shape[0])

    @property
    def slot_h(self) -> float:
        return self.grid.slot_hours

    def unit(self, i: int) -> dict[str, FloatArray]:
        """Unit ``i``'s per-slot arrays, 1-D, as the per-unit LP reads them."""
        return {
            "retention": self.retention[:, i],
            "cop": self.cop[:, i],
            "draw_kwh": self.draw_kwh[:, i],
            "heat_min_kwh": self.heat_min_kwh[:, i],
            "heat_cap_kwh": self.heat_cap_kwh[:, i],
            "lower_kwh": self.lower_kwh[:, i],
            "upper_kwh": self.upper_kwh[:, i],
        }

    def cumulative_retention(self) -> FloatArray:
        """``A[t]`` (T+1, N), the share of heat stored at 0 left at ``t``."""
        return prefix_product(self.retention)

    def _scaled_draws(self, a: FloatArray) -> FloatArray:
        """Prefix sums of the draws divided by ``A`` (T+1, N)."""
        return prefix(self.draw_kwh / a[1:])

    def staircase(self) -> tuple[StaircaseBounds, FloatArray]:
        """The problem in y-space (see :mod:`drready.planning.fast`) and ``A`` (T+1, N)."""
        if self.staircase_cache is not None:
            return self.staircase_cache
        a = self.cumulative_retention()
        shift = self._scaled_draws(a)
        shift -= self.q0_kwh
        lower = self.lower_kwh / a
        lower += shift
        upper = self.upper_kwh / a
        upper += shift
        lower[0] = 0.0  # Y[0] = 0 by definition
        upper[0] = 0.0
        lo = self.heat_min_kwh / a[1:] if self.heat_min_kwh.any() else np.zeros_like(lower[1:])
        return StaircaseBounds(lower, upper, lo, self.heat_cap_kwh / a[1:]), a

    def electric_kwh(self, heat_kwh: FloatArray) -> FloatArray:
        """Electricity per slot (T, N) [kWh] for heat per slot (T, N) [kWh]."""
        return heat_kwh / self.cop

    def stored_heat_kwh(self, heat_kwh: FloatArray) -> FloatArray:
        """Expected stored heat at slot boundaries (T+1, N) [kWh] for heat per slot (T, N)."""
        net = heat_kwh - self.draw_kwh
        q = np.empty((self.n_slots + 1, self.n_units))
        q[0] = self.q0_kwh
        for t in range(self.n_slots):  # one contiguous row per step
            np.multiply(self.retention[t], q[t], out=q[t + 1])
            q[t + 1] += net[t]
        return q

    def cost_yen(self, heat_kwh: FloatArray) -> FloatArray:
        """Electricity cost per unit (N,) [yen] of heat per slot (T, N)."""
        return np.asarray((self.electric_kwh(heat_kwh) * self.price_yen_per_kwh[:, None]).sum(0))

    def subset(self, idx: IntArray | slice) -> PlanningProblem:
        """The problem of the units at ``idx``."""
        return replace(
            self,
            q0_kwh=self.q0_kwh[idx],
            draw_kwh=self.draw_kwh[:, idx],
            lower_kwh=self.lower_kwh[:, idx],
            upper_kwh=self.upper_kwh[:, idx],
            retention=self.retention[:, idx],
            cop=self.cop[:, idx],
            heat_cap_kwh=self.heat_cap_kwh[:, idx],
            heat_min_kwh=self.heat_min_kwh[:, idx],
            q_max_kwh=self.q_max_kwh[idx],
            mains_temp_c=self.mains_temp_c[idx],
            unavoidable_shortfall_kwh=self.unavoidable_shortfall_kwh[idx],
            over_kwh=None if self.over_kwh is None else self.over_kwh[:, idx],
            staircase_cache=None,
        )


def slot_mid_hours(grid: SlotGrid) -> FloatArray:
    """Hour of year at the middle of each slot (local wall time)."""
    return hour_of_year(grid.starts()) + 0.25


def unit_temperatures(
    fleet: Fleet, grid: SlotGrid, climate: Climate
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Air per slot (T,), mains per unit (N,) and boil-up per unit (N,) temperatures [°C].

    Mains is taken on the local day of the grid's middle (it changes by < 0.2 K per day).
    """
    air = air_temp_c(climate, slot_mid_hours(grid))
    mid: datetime = grid.starts()[grid.n_slots // 2]
    mains_day = float(mains_temp_c(climate, np.array([mid.timetuple().tm_yday - 1]))[0])
    mains = np.full(fleet.size, mains_day)
    boil = seasonal_boil_temp_c(mains) if fleet.boil_temp_c is None else fleet.boil_temp_c
    return air, mains, boil


def build_problem(
    fleet: Fleet,
    grid: SlotGrid,
    q0_kwh: FloatArray,
    forecast: DrawForecast,
    *,
    climate: Climate = TOKYO,
    tariff: Tariff = NIGHT_TOU,
    confidence: float = 0.95,
) -> PlanningProblem:
    """Assemble the planning problem (see the module docstring for the safety bounds).

    Parameters
    ----------
    fleet : Fleet
    grid : SlotGrid
    q0_kwh : float array (N,)
        Stored heat above mains at the grid start [kWh].
    forecast : DrawForecast
        Expected use and its uncertainty (or a perfect forecast for the oracle).
    climate, tariff : Climate, Tariff
    confidence : float
        One-sided probability that the bounds hold against draw uncertainty, 0.5–0.999.
    """
    if not 0.5 <= confidence <= 0.999:
        raise ValueError(f"confidence must be within 0.5–0.999, got {confidence}")
    n, t = fleet.size, grid.n_slots
    if q0_kwh.shape != (n,) or np.any(~np.isfinite(q0_kwh)) or np.any(q0_kwh < 0):
        raise ValueError("q0_kwh must be (N,) finite and ≥ 0")
    if forecast.mean_l.shape != (t, n):
        raise ValueError(f"forecast.mean_l must be ({t}, {n}), got {forecast.mean_l.shape}")
    air, mains, boil = unit_temperatures(fleet, grid, climate)
    per_l = HEAT_KWH_PER_L_K * (USE_TEMP_C - mains)  # heat of one litre at 40 °C [kWh/L]
    q_max = max_stored_heat_kwh(fleet.tank_volume_l, 0.9, boil, mains)
    tanks = [tank_for_volume(float(v)) for v in np.unique(fleet.tank_volume_l)]
    r_of = {tk.volume_l: tk.resistance_k_per_w for tk in tanks}
    resistance = np.array([r_of[float(v)] for v in fleet.tank_volume_l])
    # time-major (T, N): slots down, units across
    lam = loss_rate_per_h(
        fleet.tank_volume_l[None, :],
        resistance[None, :],
        boil[None, :],
        mains[None, :],
        air[:, None],
    )
    retention = np.exp(-lam * grid.slot_hours)
    c = cop(fleet.heat_pump, air[:, None], boil[None, :], mains[None, :])
    over_l, under_l = forecast.margins_l(confidence)
    reserve = fleet.reserve_l * per_l
    lower = reserve + over_l * per_l
    end_need = np.minimum(forecast.after_end_l * per_l + reserve, 0.95 * q_max)
    lower[-1] = np.maximum(lower[-1], end_need)
    upper = np.maximum(q_max - under_l * per_l, lower)
    cap = np.full((t, n), fleet.heat_pump.heat_output_kw * grid.slot_hours)
    prob = PlanningProblem(
        grid=grid,
        q0_kwh=np.minimum(q0_kwh, q_max),
        draw_kwh=forecast.mean_l * per_l,
        lower_kwh=lower,
        upper_kwh=upper,
        retention=retention,
        cop=c,
        heat_cap_kwh=cap,
        heat_min_kwh=np.zeros((t, n)),
        price_yen_per_kwh=tariff.prices_for(grid.starts()),
        q_max_kwh=q_max,
        mains_temp_c=mains,
        air_temp_c=air,
        unavoidable_shortfall_kwh=np.zeros(n),
        confidence=confidence,
        over_kwh=over_l * per_l,
    )
    return relax_problem(prob)


def relax_problem(prob: PlanningProblem) -> PlanningProblem:
    """Loosen bounds no plan can meet (:func:`fast.relax_to_feasible`), back in physical terms."""
    b, a = prob.staircase()
    relaxed, shortfall = relax_to_feasible(b)
    changed = np.flatnonzero(
        (relaxed.lower != b.lower).any(axis=0) | (relaxed.upper != b.upper).any(axis=0)
    )
    lower_kwh = prob.lower_kwh
    upper_kwh = prob.upper_kwh
    if changed.size:  # back to stored-heat bounds, only for the units that were loosened
        sub = prob.subset(changed)
        a_sub = a[:, changed]
        d_scaled = sub._scaled_draws(a_sub)
        lower = (relaxed.lower[:, changed] + sub.q0_kwh - d_scaled) * a_sub
        upper = (relaxed.upper[:, changed] + sub.q0_kwh - d_scaled) * a_sub
        lower[0] = sub.lower_kwh[0]
        upper[0] = sub.upper_kwh[0]
        lower_kwh = lower_kwh.copy()
        upper_kwh = upper_kwh.copy()
        lower_kwh[:, changed] = np.minimum(lower, sub.lower_kwh)
        upper_kwh[:, changed] = np.maximum(upper, sub.upper_kwh)
    return replace(
        prob,
        lower_kwh=lower_kwh,
        upper_kwh=upper_kwh,
        unavoidable_shortfall_kwh=shortfall * a[-1],
        staircase_cache=(relaxed, a),
    )


def _time_major(x: FloatArray) -> FloatArray:
    """(N, T) → C-ordered (T, N)."""
    return np.ascontiguousarray(x.T)


def default_initial_heat_kwh(
    prob_fleet: Fleet, grid: SlotGrid, climate: Climate = TOKYO, fill: float = 0.25
) -> FloatArray:
    """A typical tank state at the start of the night heating: ``fill`` of ``Q_max``.

    Assumption for single-shot planning (CLI); simulations carry the real state over instead.
    """
    if not 0.0 <= fill <= 1.0:
        raise ValueError(f"fill must be within 0–1, got {fill}")
    _, mains, boil = unit_temperatures(prob_fleet, grid, climate)
    return fill * max_stored_heat_kwh(prob_fleet.tank_volume_l, 0.9, boil, mains)
