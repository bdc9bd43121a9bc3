"""Bath keep-warm and reheat (ふろ保温・追焚き): heat drawn from the tank for the bath (F1, F3, E1).

A filled bathtub cools while the household takes turns bathing; the unit keeps it warm. The
national calculation method ([1]_ §7-1 "11. 浴槽沸かし直しによる給湯熱負荷") gives the heat the
bath water needs in a day as a linear function of the day's mean outdoor temperature,

    ``L_ba = a_ba · θ_ex,d,Ave + b_ba``   [MJ/d]      (eq. (11), coefficients of table 6)

by household size (1–4 persons), bath (normal or insulated) and band of the daily mean air
temperature (< 7, 7–16, 16–25, ≥ 25 °C), spread over the hours of the day in proportion to the
people bathing in each (入浴人数 of table M.1, :func:`drready.physics.draws.bathers_by_hour`).
How the unit supplies it depends on its bath function (ふろ機能の種類):

* :attr:`BathFunction.FULL_AUTO` (ふろ給湯機(追焚あり), "full auto"): the unit reheats the bath
  water through its own heat exchanger from the tank; the tank gives ``1.25 · L_ba``
  (eq. (5-3g)) — the 25 % being what the reheat circuit loses on the way;
* :attr:`BathFunction.AUTO` (ふろ給湯機(追焚なし)) and :attr:`BathFunction.PLAIN` (給湯単機能): the
  bath is topped up with 60 °C water (さし湯); the tank gives the top-up's heat, ``L_ba``
  (eq. (9) with (5-2f): the litres of eq. (9) times their 60 °C rise is L_ba again).

The heat the bath water receives (what JIS C 9220 counts as keep-warm heat, 保温熱量, of a
full-auto unit) is ``L_ba`` in every case. A home without a bathtub has no bath load
(eq. (5-1f), (5-1g)).

Default: :attr:`BathFunction.FULL_AUTO`. The method assumes it wherever the water heater is not
specified ([1]_ 付録 B: 「ふろ機能の種類は「ふろ給湯機（追焚あり）」とする」), and full-auto is the
most common EcoCute (the reference figures of issue 13 were computed with it).

Pure numpy, vectorised over units; the draw model's litres (:mod:`drready.physics.draws`) do not
include it, so callers add :func:`bath_heat_kwh` to the draws (as heat, or as litres at 40 °C
with :func:`drready.physics.water.volume_at_use_temp_l`).

References
----------
.. [1] 国立研究開発法人 建築研究所, 「平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に
   関する技術情報（住宅）」 第七章 給湯設備 第一節 給湯設備, §8 (eq. (5)), §10 (eq. (9)), §11
   (eq. (10), (11), table 6), 付録 B. Reference implementation BRI-EES-House/pyhees Ver. 3.7,
   ``src/pyhees/section7_1.py`` (``get_table_6``, ``calc_L_ba_p_d_t``, ``get_L_dash_bax_d_t``),
   ``section7_1_b.py``; MIT licence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from drready.physics.draws import DayType, bathers_by_hour

__all__ = [
    "TABLE_6",
    "BathFunction",
    "BathHeat",
    "bath_heat_kwh",
    "daily_bath_heat_kwh",
]

FloatArray = npt.NDArray[np.float64]

MJ_PER_KWH = 3.6


class BathFunction(StrEnum):
    """How the unit keeps the bath warm (ふろ機能の種類 of [1]_)."""

    FULL_AUTO = "full-auto"
    """ふろ給湯機(追焚あり): reheat through the unit's heat exchanger."""
    AUTO = "auto"
    """ふろ給湯機(追焚なし): automatic fill, top-up with hot water."""
    PLAIN = "plain"
    """給湯単機能: hot water only, the bath filled and topped up at the tap."""


TANK_HEAT_FACTOR: dict[BathFunction, float] = {
    BathFunction.FULL_AUTO: 1.25,  # eq. (5-3g): L'_ba2 = 1.25 · L_ba
    BathFunction.AUTO: 1.0,  # eq. (9), (5-2f): top-up water carries L_ba
    BathFunction.PLAIN: 1.0,
}
"""Heat drawn from the tank per unit of heat the bath water receives [-]."""

TABLE_6: tuple[tuple[float, ...], ...] = (
    (-0.12, 6.00, -0.10, 4.91, -0.06, 3.02, 0.00, 0.00),
    (-0.07, 3.98, -0.06, 3.22, -0.04, 2.01, 0.00, 0.00),
    (-0.13, 6.04, -0.10, 4.93, -0.06, 3.04, 0.00, 0.00),
    (-0.08, 4.02, -0.06, 3.25, -0.04, 2.03, 0.00, 0.00),
    (-0.14, 6.21, -0.11, 5.07, -0.07, 3.13, 0.00, 0.00),
    (-0.09, 4.19, -0.07, 3.39, -0.04, 2.12, 0.00, 0.00),
    (-0.12, 5.81, -0.10, 4.77, -0.06, 2.92, 0.00, 0.00),
    (-0.07, 3.80, -0.06, 3.09, -0.04, 1.92, 0.00, 0.00),
)
"""Table 6 of [1]_: (a_ba [MJ/(d·K)], b_ba [MJ/d]) of eq. (11). Rows: daily mean air
temperature < 7, 7–16, 16–25, ≥ 25 °C, each a normal then an insulated bath; column pairs: 4, 3,
2, 1 persons (a one-person household has none)."""

BAND_EDGES_C = (7.0, 16.0, 25.0)
"""Edges of the air-temperature bands of table 6 [°C] (a band includes its lower edge)."""


def daily_bath_heat_kwh(
    persons: int, daily_mean_air_c: npt.ArrayLike, insulated: bool = False
) -> FloatArray:
    """Heat the bath water needs on a day with bathers, ``L_ba`` of eq. (11) of [1]_ [kWh/d].

    Parameters
    ----------
    persons : int
        Household size, 1–4.
    daily_mean_air_c : numeric
        The day's mean outdoor air temperature [°C].
    insulated : bool
        An insulated bath (高断熱浴槽), the second row of each band.

    Examples
    --------
    Four persons, a normal bath, 5 °C: (−0.12 · 5 + 6.00) MJ = 5.4 MJ = 1.5 kWh.

    >>> float(daily_bath_heat_kwh(4, 5.0))
    1.5
    """
    if isinstance(persons, bool) or int(persons) != persons or not 1 <= persons <= 4:
        raise ValueError(f"persons must be an integer in 1–4, got {persons!r}")
    t = np.asarray(daily_mean_air_c, dtype=float)
    band = np.searchsorted(np.asarray(BAND_EDGES_C), t, side="right")
    table = np.asarray(TABLE_6)[2 * band + int(insulated)]
    col = 2 * (4 - int(persons))
    mj = table[..., col] * t + table[..., col + 1]
    out: FloatArray = mj / MJ_PER_KWH
    return out


@dataclass(frozen=True)
class BathHeat:
    """Bath heat of a fleet over a span of days, per step (N, S) [kWh].

    Attributes
    ----------
    tank_kwh : float array
        Heat drawn from the tank for the bath (a draw on the tank like the taps').
    delivered_kwh : float array
        Heat the bath water receives (keep-warm heat): ``tank_kwh`` / the bath function's factor.
    """

    tank_kwh: FloatArray
    delivered_kwh: FloatArray


def bath_heat_kwh(
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    daily_mean_air_c: npt.ArrayLike,
    step_minutes: int,
    bath_function: BathFunction = BathFunction.FULL_AUTO,
    bathtub: bool | npt.ArrayLike = True,
    insulated: bool = False,
) -> BathHeat:
    """Bath keep-warm heat of a fleet on a step grid (eq. (10), (11), (5-3g)/(9) of [1]_).

    Parameters
    ----------
    persons : array_like of int, shape (N,)
        Household sizes, 1–4.
    day_types : sequence of DayType, length D
        Day type of each day of the span (all units share the calendar).
    daily_mean_air_c : array_like, shape (D,)
        Mean outdoor air temperature of each day [°C].
    step_minutes : int
        Step length [min]; must divide 60.
    bath_function : BathFunction
        How the units keep the bath warm (module docstring).
    bathtub : bool or array_like of bool, shape (N,)
        Homes with a bathtub (none without).
    insulated : bool
        Insulated baths.

    Returns
    -------
    BathHeat
        Arrays (N, D · 1440 / step_minutes); each hour's heat spread evenly over its steps.

    Examples
    --------
    >>> from drready.physics.draws import DayType
    >>> b = bath_heat_kwh([4], [DayType.WEEKDAY_MEDIUM], [5.0], 60)
    >>> round(float(b.tank_kwh.sum()), 4), round(float(b.delivered_kwh.sum()), 4)
    (1.875, 1.5)
    """
    p_arr = np.asarray(persons)
    temps = np.asarray(daily_mean_air_c, dtype=float)
    if temps.shape != (len(day_types),):
        raise ValueError(f"daily_mean_air_c must have one value per day, got {temps.shape}")
    if isinstance(step_minutes, bool) or step_minutes <= 0 or 60 % step_minutes:
        raise ValueError(f"step_minutes must divide 60, got {step_minutes!r}")
    tub = np.broadcast_to(np.asarray(bathtub, dtype=bool), p_arr.shape)
    k = 60 // step_minutes
    factor = TANK_HEAT_FACTOR[BathFunction(bath_function)]
    delivered = np.zeros((p_arr.size, len(day_types) * 24 * k))
    for p in np.unique(p_arr):
        day_kwh = daily_bath_heat_kwh(int(p), temps, insulated)
        hourly = np.empty((len(day_types), 24))
        for d, day_type in enumerate(day_types):
            bathers = bathers_by_hour(int(p), day_type, bathtub=True)
            total = bathers.sum()
            # eq. (11): the day's load in proportion to the bathers of each hour; none without
            hourly[d] = day_kwh[d] * bathers / total if total > 0 else 0.0
        row = np.repeat(hourly.ravel() / k, k)
        delivered[(p_arr == p) & tub] = row
    return BathHeat(tank_kwh=factor * delivered, delivered_kwh=delivered)
