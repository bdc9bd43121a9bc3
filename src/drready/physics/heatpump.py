"""CO2 heat pump of an EcoCute: COP, defrost, auxiliaries and electric input (F1, F3, E1).

Calibrated to the national calculation method's model of an electric heat pump water heater
(付録 E 電気ヒートポンプ給湯機 [1]_; equation and table numbers below are those of [1]_ as
numbered in the docstrings of its reference implementation, pyhees ``section7_1_e.py``). The
unit's COP *while it heats*, the conversion between the heat it adds to the tank and the
electricity it draws that the planner and the executions use, is a product of factors::

    COP_hp = max(r_e · e(T_air, T_boil) · f_inlet, 1) · C_def(T_air, T_boil)
    COP    = 1 / (1 / COP_hp + ΔP_aux / q)

* ``e(T_air, T_boil)``: the efficiency at the method's test conditions, piecewise linear in the
  air temperature through six points (eq. (7), table 4 外気温度条件): −7 °C (cold winter,
  0.82 × the frosting point, eq. (10f)), 2 °C (frosting: the frosting high-temperature test
  point without defrost, eq. (10e)), 5 °C (upper end of the frosting region, on the line of the
  winter and intermediate points, eq. (10d)), 7, 16 and 25 °C (winter, intermediate, summer:
  heating capacity over electric input, eq. (11a)–(11c)); beyond the ends the end segments'
  slopes continue. Each point is corrected to the boil-up temperature by −1 % per K from its own
  reference, 65 °C for the standard points and 90 °C for the frosting and cold points
  (eq. (8a)–(8f), table 2). Air is clipped to −15…35 °C.
* ``r_e``: the real-operation ratio (実働効率比) of eq. (9-1)/(9-2): 0.94 in the first control
  mode, 0.90 − 0.005 K⁻¹ · (θ_win,cm2 − 75 °C) in the second; the method runs the two modes 60 %
  / 40 % of the time (r_usg), and drready's one-mode unit uses their usage-weighted harmonic
  mean (the share of electricity each mode takes), 0.9215 for the default specification.
* ``C_def``: the defrost efficiency coefficient of eq. (14)–(16): 1 above 5 °C; linear down to
  the frosting value at 2 °C, ``C_frst = 0.0024 K⁻¹ · (T_boil − 90 °C) + e_def/e_frst`` (eq. (15a),
  (16): 2.78 / 3.00 at the test for the 3.3 class, i.e. a 7 % loss at 90 °C and 13 % at 65 °C);
  constant to −2 °C; below, 0.01 per K higher (drier air, eq. (15b)), at most 1. The method
  evaluates COP and defrost at the day's night mean air temperature; drready at each slot's own
  air temperature.
* ``f_inlet``: drready's own assumption, not the method's: −1.5 % of COP per K of water entering
  the gas cooler above the JIS inlet temperature for that air temperature [2]_ (the order of the
  inlet sensitivity of CO2 water heaters reported by Nekså et al. [3]_), clipped to 0.3–1.3.
* ``ΔP_aux / q``: the auxiliaries (controller, pumps) draw 21 W while the heat pump runs and 6 W
  otherwise (table 4(b), eq. (26)); the 15 W difference runs with the heat pump, so it is
  electricity per kWh of heat at the rated heating capacity ``q`` and belongs to the COP while
  heating; the 6 W standby is drawn all day (:func:`standby_power_kw`) and belongs to no slot's
  heating.

The heat pump delivers its rated heating capacity (4.5 kW, table 4(b)) whenever it runs; a
30-minute slot's average may be any fraction of it. The method's capacity regression (eq. (12),
(13)) is not used: the capacity only limits how fast a tank can be heated, never how much
electricity a kWh of heat takes.

Specifications: table 4(b) gives one row per rated efficiency e_rtd (JIS C 9220's annual
hot-water supply efficiency class, 2.7–3.6), packaged as
``drready/data/heat_pump/co2_spec_by_rated_efficiency.csv``;
:meth:`HeatPumpSpec.for_rated_efficiency` reads it. :data:`RATED_33_CLASS` is the 3.3 row.

References
----------
.. [1] 国立研究開発法人 建築研究所, 「平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に
   関する技術情報（住宅）」 第七章 給湯設備 第一節 給湯設備, 付録 E 電気ヒートポンプ給湯機.
   Reference implementation BRI-EES-House/pyhees Ver. 3.7 (commit f9ce1ec),
   ``src/pyhees/section7_1_e.py``, MIT licence.
.. [2] JIS C 9220:2018 家庭用ヒートポンプ給湯機 — test conditions: summer 25 °C air / 24 °C water,
   intermediate 16 °C / 17 °C, winter 7 °C / 9 °C.
.. [3] Nekså, P., Rekstad, H., Zakeri, G. R., Schiefloe, P. A. (1998). CO2-heat pump water heater:
   characteristics, system design and experimental results. Int. J. Refrigeration 21(3), 172–179.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import numpy.typing as npt

from drready.domain.tolerances import ROUNDOFF

__all__ = [
    "JIS_AIR_C",
    "JIS_BOIL_C",
    "JIS_INLET_C",
    "RATED_33_CLASS",
    "USAGE_SHARES",
    "HeatPumpSpec",
    "cop",
    "defrost_factor",
    "electric_input_kw",
    "heat_pump_cop",
    "jis_inlet_temp_c",
    "national_boil_temp_c",
    "rated_cop",
    "real_operation_ratio",
    "standby_power_kw",
]

FloatArray = npt.NDArray[np.float64]

JIS_AIR_C = (7.0, 16.0, 25.0)
"""Air temperatures of the winter, intermediate and summer test points [°C] [2]_."""
JIS_INLET_C = (9.0, 17.0, 24.0)
"""Inlet (mains) water temperatures of the same test points [°C] [2]_."""
JIS_BOIL_C = 65.0
"""Boil-up temperature of the standard test points [°C] (table 2 of [1]_: 標準条件)."""
HIGH_BOIL_C = 90.0
"""Boil-up temperature of the frosting and cold test points [°C] (table 2 of [1]_: 高温条件)."""

COLD_AIR_C = -7.0
"""Cold-winter condition (寒冷地冬期条件) [°C], table 4 (外気温度) of [1]_."""
FROST_AIR_C = 2.0
"""Frosting condition (着霜期条件) [°C], table 4 of [1]_."""
FROST_UPPER_AIR_C = 5.0
"""Upper end of the frosting region (着霜領域(上限)) [°C], table 4 of [1]_."""
FROST_MIDDLE_AIR_C = -2.0
"""Middle of the frosting region (着霜領域(中間)) [°C], table 4 of [1]_."""
AIR_RANGE_C = (-15.0, 35.0)
"""Air temperatures outside which nothing is extrapolated further [°C] (assumption)."""

COLD_TO_FROST_RATIO = 0.82
"""COP at the cold-winter point over the frosting point, both at 90 °C, eq. (10f) of [1]_."""
DEFROST_BOIL_SLOPE_PER_K = 0.0024
"""Change of the frosting defrost coefficient per K of boil-up temperature, eq. (15a) of [1]_."""
DEFROST_COLD_SLOPE_PER_K = 0.01
"""Rise of the defrost coefficient per K below the frosting region's middle, eq. (15b) of [1]_."""
FIRST_MODE_REAL_RATIO = 0.94
"""Real-operation ratio of the first control mode, eq. (9-1) of [1]_."""
SECOND_MODE_REAL_RATIO = 0.90
"""Real-operation ratio of the second control mode up to 75 °C winter boil-up, eq. (9-2)."""
SECOND_MODE_REAL_SLOPE_PER_K = 0.005
"""Its fall per K of winter boil-up above 75 °C, eq. (9-2) of [1]_."""
SECOND_MODE_MIN_BOIL_STEP_K = 5.0
"""Least winter boil-up step from the first to the second mode, eq. (28c-2) of [1]_."""
USAGE_SHARES = (0.6, 0.4)
"""Shares of the first and second control modes (制御モードの利用率 r_usg), eq. (1) of [1]_."""

_SPEC_FILE = "co2_spec_by_rated_efficiency.csv"


def real_operation_ratio(boil_win_test_c: tuple[float, float] = (69.0, 76.0)) -> float:
    """Usage-weighted real-operation ratio of a one-mode unit [-].

    Eq. (9-1), (9-2) and (28c-1), (28c-2) of [1]_ give each control mode its ratio; the modes
    run :data:`USAGE_SHARES` of the time, and a mode's electricity is proportional to
    ``1 / r_e``, so the one ratio that draws the same electricity is their weighted harmonic
    mean.

    Parameters
    ----------
    boil_win_test_c : (float, float)
        Winter M1 standard-mode boil-up temperatures of the first and second mode at the test
        (θ_hat_bw_win_cm1_test, θ_hat_bw_win_cm2_test, table 4(b)) [°C].

    Examples
    --------
    >>> round(real_operation_ratio(), 4)
    0.9215
    """
    win1 = max(JIS_BOIL_C, boil_win_test_c[0])
    win2 = win1 + max(SECOND_MODE_MIN_BOIL_STEP_K, boil_win_test_c[1] - boil_win_test_c[0])
    r2 = SECOND_MODE_REAL_RATIO - SECOND_MODE_REAL_SLOPE_PER_K * max(win2 - 75.0, 0.0)
    share1, share2 = USAGE_SHARES
    return 1.0 / (share1 / FIRST_MODE_REAL_RATIO + share2 / r2)


@dataclass(frozen=True)
class HeatPumpSpec:
    """A CO2 heat pump water heater unit (one row of table 4(b) of [1]_ and drready's options).

    Parameters
    ----------
    heat_output_kw : float
        Rated heating capacity [kW] (q_HP_std_test: 4.5 kW in every row of table 4(b)).
    rated_input_kw : tuple of float
        Electric input at the winter (7 °C), intermediate (16 °C) and summer (25 °C) standard
        heating test conditions at 65 °C boil-up [kW] (P_HP_win/imd/sum_std_test).
    frost_cop : float
        COP at the frosting high-temperature test condition (2 °C air, 90 °C) without defrost
        (e_HP_frst_high_test) [-].
    frost_cop_with_defrost : float
        The same with defrost (e_HP_def_high_test) [-].
    real_ratio : float
        Real-operation ratio (実働効率比) [-], :func:`real_operation_ratio` of the row.
    aux_on_w, aux_off_w : float
        Auxiliary power with the heat pump running and stopped [W] (P_aux_HP_on/off_test).
    boil_win_test_c : (float, float)
        Winter boil-up temperatures of the first and second control mode at the test [°C]
        (θ_hat_bw_win_cm1/cm2_test), for :func:`national_boil_temp_c`.
    inlet_sensitivity_per_k : float
        Relative COP loss per K of inlet water above the JIS inlet temperature [1/K]
        (drready's assumption, see the module).
    boil_sensitivity_per_k : float
        Relative COP loss per K of boil-up above a test point's reference [1/K] (eq. (8a)–(8f)).
    """

    heat_output_kw: float = 4.5
    rated_input_kw: tuple[float, float, float] = (1.077, 1.002, 0.879)
    frost_cop: float = 3.00
    frost_cop_with_defrost: float = 2.78
    real_ratio: float = real_operation_ratio((69.0, 76.0))
    aux_on_w: float = 21.0
    aux_off_w: float = 6.0
    boil_win_test_c: tuple[float, float] = (69.0, 76.0)
    inlet_sensitivity_per_k: float = 0.015
    boil_sensitivity_per_k: float = 0.01

    def __post_init__(self) -> None:
        if not 0.5 <= self.heat_output_kw <= 20.0:
            raise ValueError(f"heat_output_kw must be in [0.5, 20] kW, got {self.heat_output_kw}")
        if len(self.rated_input_kw) != 3 or min(self.rated_input_kw) <= 0:
            raise ValueError("rated_input_kw must be three positive inputs [kW]")
        if not 1.0 <= self.frost_cop_with_defrost <= self.frost_cop <= 10.0:
            raise ValueError(
                "frost_cop_with_defrost and frost_cop must satisfy 1 ≤ with ≤ without ≤ 10, got "
                f"{self.frost_cop_with_defrost} and {self.frost_cop}"
            )
        if not 0.5 <= self.real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0.5, 1], got {self.real_ratio}")
        if not 0.0 <= self.aux_off_w <= self.aux_on_w <= 200.0:
            raise ValueError(
                f"aux powers must satisfy 0 ≤ aux_off_w ≤ aux_on_w ≤ 200 W, got "
                f"{self.aux_off_w} and {self.aux_on_w}"
            )

    @classmethod
    def for_rated_efficiency(cls, rated_efficiency: float) -> HeatPumpSpec:
        """The default specification of table 4(b) of [1]_ for a rated efficiency e_rtd.

        As in the method, e_rtd ≤ 2.7 takes the 2.7 row and ≥ 3.6 the 3.6 row; in between,
        e_rtd must be one of the table's steps of 0.1.

        >>> HeatPumpSpec.for_rated_efficiency(3.3) == RATED_33_CLASS
        True
        """
        rows = _spec_rows()
        key = min(max(round(float(rated_efficiency), 1), rows[0][0]), rows[-1][0])
        if abs(key - rated_efficiency) > ROUNDOFF and rows[0][0] < rated_efficiency < rows[-1][0]:
            raise ValueError(
                f"rated_efficiency must be a step of 0.1 in 2.7–3.6, got {rated_efficiency}"
            )
        row = next(r for e, r in rows if e == key)
        winter_boil = (row["boil_win_first_mode_test_c"], row["boil_win_second_mode_test_c"])
        if row["boil_imd_test_c"] != JIS_BOIL_C or row["boil_frost_test_c"] != HIGH_BOIL_C:
            raise ValueError("table 4(b) rows are expected at the standard boil-up conditions")
        return cls(
            heat_output_kw=row["output_win_kw"],
            rated_input_kw=(row["input_win_kw"], row["input_imd_kw"], row["input_sum_kw"]),
            frost_cop=row["cop_frost_without_defrost"],
            frost_cop_with_defrost=row["cop_frost_with_defrost"],
            real_ratio=real_operation_ratio(winter_boil),
            aux_on_w=row["aux_on_w"],
            aux_off_w=row["aux_off_w"],
            boil_win_test_c=winter_boil,
        )


@functools.cache
def _spec_rows() -> list[tuple[float, dict[str, float]]]:
    text = files("drready.data.heat_pump").joinpath(_SPEC_FILE).read_text(encoding="utf-8")
    rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(text.splitlines())]
    return sorted(((r["rated_efficiency"], r) for r in rows), key=lambda x: x[0])


RATED_33_CLASS = HeatPumpSpec()
"""The rated-efficiency 3.3 class unit of table 4(b) (the issue's reference, e_rtd = 3.3)."""


def _points(spec: HeatPumpSpec) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Air temperatures [°C], efficiencies at their reference boil-up [-], and those references
    [°C] of the six points of eq. (7) of [1]_."""
    e_win, e_imd, e_sum = (spec.heat_output_kw / p for p in spec.rated_input_kw)  # (11a)–(11c)
    # (10d): the upper end of the frosting region on the line of the winter and intermediate
    e_upper = e_win + (FROST_UPPER_AIR_C - JIS_AIR_C[0]) / (JIS_AIR_C[1] - JIS_AIR_C[0]) * (
        e_imd - e_win
    )
    e_frost = spec.frost_cop  # (10e) at its own test boil-up, 90 °C
    e_cold = COLD_TO_FROST_RATIO * e_frost  # (10f)
    x = np.array([COLD_AIR_C, FROST_AIR_C, FROST_UPPER_AIR_C, *JIS_AIR_C])
    a = np.array([e_cold, e_frost, e_upper, e_win, e_imd, e_sum])
    ref = np.array([HIGH_BOIL_C, HIGH_BOIL_C, JIS_BOIL_C, JIS_BOIL_C, JIS_BOIL_C, JIS_BOIL_C])
    return x, a, ref


def _hat_weights(x: FloatArray, t: FloatArray) -> FloatArray:
    """Weights (t.shape + (len(x),)) of piecewise-linear interpolation through ``x``, the end
    segments continued beyond the ends (weights outside [0, 1] there)."""
    # clip: beyond the ends the first/last segment is extended, so the index stays on them
    k = np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2)
    lo, hi = x[k], x[k + 1]
    w_hi = (t - lo) / (hi - lo)
    w = np.zeros((*t.shape, x.size))
    np.put_along_axis(w, k[..., None], (1.0 - w_hi)[..., None], axis=-1)
    np.put_along_axis(w, (k + 1)[..., None], w_hi[..., None], axis=-1)
    return w


def _air(air_temp_c: npt.ArrayLike) -> FloatArray:
    # clip: the method's points span −7…25 °C; beyond −15…35 °C nothing is extrapolated further
    out: FloatArray = np.clip(np.asarray(air_temp_c, dtype=float), *AIR_RANGE_C)
    return out


def _boil(boil_temp_c: npt.ArrayLike) -> FloatArray:
    boil = np.asarray(boil_temp_c, dtype=float)
    if np.any((boil < 60.0) | (boil > 90.0)):
        raise ValueError("boil_temp_c must be within 60–90 °C")
    return boil


def rated_cop(
    spec: HeatPumpSpec, air_temp_c: npt.ArrayLike, boil_temp_c: npt.ArrayLike = JIS_BOIL_C
) -> FloatArray:
    """Efficiency at the method's test conditions, boil-up corrected, without the real-operation
    ratio or defrost: ``e(T_air, T_boil)`` of the module docstring, eq. (7), (8a)–(8f), (10a)–(11c)
    of [1]_ (before its real-operation ratio) [-].

    Linear in the boil-up temperature at a given air temperature, so it is computed as
    ``A(T_air) − s · T_boil · B(T_air)`` with ``A``, ``B`` of the air temperatures only.

    Examples
    --------
    The three standard test points of the 3.3 class (4.5 kW for 1.077, 1.002 and 0.879 kW):

    >>> [round(float(4.5 / rated_cop(RATED_33_CLASS, t)), 3) for t in (7.0, 16.0, 25.0)]
    [1.077, 1.002, 0.879]
    """
    x, a, ref = _points(spec)
    s = spec.boil_sensitivity_per_k
    w = _hat_weights(x, _air(air_temp_c))
    big_a = w @ (a * (1.0 + s * ref))
    big_b = w @ a
    out: FloatArray = big_a - s * _boil(boil_temp_c) * big_b
    return out


def defrost_factor(
    spec: HeatPumpSpec, air_temp_c: npt.ArrayLike, boil_temp_c: npt.ArrayLike = JIS_BOIL_C
) -> FloatArray:
    """Defrost efficiency coefficient ``C_def`` (eq. (14), (15a), (15b), (16) of [1]_) [-].

    Electricity is divided by it: the defrost electricity of eq. (6) is ``E_bw · (1/C − 1)``.

    Examples
    --------
    At the frosting point with the test's 90 °C boil-up it is e_def / e_frst = 2.78 / 3.00:

    >>> round(float(defrost_factor(RATED_33_CLASS, 2.0, 90.0)), 4)
    0.9267
    """
    t = _air(air_temp_c)
    c_frost = (
        DEFROST_BOIL_SLOPE_PER_K * (_boil(boil_temp_c) - HIGH_BOIL_C)
        + spec.frost_cop_with_defrost / spec.frost_cop
    )  # (15a), (16)
    span = FROST_UPPER_AIR_C - FROST_AIR_C
    # clip: the ramp runs from the frosting point (0) to the region's upper end (1) only
    ramp = np.clip((t - FROST_AIR_C) / span, 0.0, 1.0)
    # below the region's middle the coefficient rises 0.01 per K (15b); zero above it
    colder = DEFROST_COLD_SLOPE_PER_K * np.maximum(FROST_MIDDLE_AIR_C - t, 0.0)
    # (14): 1 above 5 °C, linear to C_frost at 2 °C, constant to −2 °C, then the (15b) slope
    c = np.where(t > FROST_UPPER_AIR_C, 1.0, ramp + (1.0 - ramp) * c_frost + colder)
    return np.asarray(np.minimum(c, 1.0), dtype=np.float64)


def jis_inlet_temp_c(air_temp_c: npt.ArrayLike) -> FloatArray:
    """Inlet water temperature that JIS pairs with an air temperature [°C] (interpolated)."""
    t = np.asarray(air_temp_c, dtype=float)
    x = np.asarray(JIS_AIR_C)
    y = np.asarray(JIS_INLET_C)
    slope = (y[2] - y[0]) / (x[2] - x[0])
    out = np.where((t < x[0]) | (t > x[2]), y[1] + slope * (t - x[1]), np.interp(t, x, y))
    return np.asarray(out, dtype=np.float64)


def heat_pump_cop(
    spec: HeatPumpSpec,
    air_temp_c: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike = JIS_BOIL_C,
    inlet_temp_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """COP of the heat pump cycle in real operation, with defrost, without auxiliaries [-].

    ``max(r_e · e · f_inlet, 1) · C_def`` of the module docstring (the floor at 1 is eq. (7)'s).

    Parameters
    ----------
    spec : HeatPumpSpec
    air_temp_c : numeric
        Outdoor air temperature [°C].
    boil_temp_c : numeric
        Boil-up (outlet) temperature [°C], 60–90.
    inlet_temp_c : numeric, optional
        Water temperature entering the heat pump [°C]; the JIS inlet temperature for the air
        temperature when omitted.
    """
    air = np.asarray(air_temp_c, dtype=float)
    inlet = jis_inlet_temp_c(air) if inlet_temp_c is None else np.asarray(inlet_temp_c, float)
    # clip: below 0.3 the cycle is treated as barely useful rather than negative (see module doc).
    f_inlet = np.clip(
        1.0 - spec.inlet_sensitivity_per_k * (inlet - jis_inlet_temp_c(air)), 0.3, 1.3
    )
    e = spec.real_ratio * rated_cop(spec, air, boil_temp_c) * f_inlet
    out: FloatArray = np.maximum(e, 1.0) * defrost_factor(spec, air, boil_temp_c)
    return out


def cop(
    spec: HeatPumpSpec,
    air_temp_c: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike = JIS_BOIL_C,
    inlet_temp_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """COP of the unit while it heats: heat into the tank per kWh the unit draws [-].

    :func:`heat_pump_cop` with the auxiliaries that run with the heat pump (21 W − the 6 W
    standby, per kWh of heat at the rated capacity) — what a slot's heat costs in electricity.
    The 6 W standby is separate (:func:`standby_power_kw`). Parameters as
    :func:`heat_pump_cop`; broadcast over the inputs.

    Examples
    --------
    The intermediate test point in real operation (4.491 · 0.9215 = 4.138, then 15 W at
    4.5 kW of heat):

    >>> round(float(cop(RATED_33_CLASS, 16.0, 65.0, 17.0)), 3)
    4.082
    """
    hp = heat_pump_cop(spec, air_temp_c, boil_temp_c, inlet_temp_c)
    aux_kwh_per_kwh = (spec.aux_on_w - spec.aux_off_w) / 1000.0 / spec.heat_output_kw
    out: FloatArray = 1.0 / (1.0 / hp + aux_kwh_per_kwh)
    return out


def electric_input_kw(
    spec: HeatPumpSpec,
    air_temp_c: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike = JIS_BOIL_C,
    inlet_temp_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """Electric input while delivering the rated heating capacity [kW] (incl. the auxiliaries
    that run with the heat pump; without the standby)."""
    return spec.heat_output_kw / cop(spec, air_temp_c, boil_temp_c, inlet_temp_c)


def standby_power_kw(spec: HeatPumpSpec) -> float:
    """Power the unit draws at all times, heating or not [kW] (P_aux_HP_off_test, eq. (26))."""
    return spec.aux_off_w / 1000.0


def national_boil_temp_c(spec: HeatPumpSpec, night_air_c: npt.ArrayLike) -> FloatArray:
    """Usage-weighted M1 standard-mode boil-up temperature of the method [°C].

    Eq. (27) and (28a-1)–(28e-2) of [1]_ give each control mode a boil-up temperature by the
    night mean air temperature (first mode of the 3.3 class: 65 °C from 16 °C up, 69 °C in the
    winter band 5–7 °C, 75 °C at 2 °C, 77 °C at −7 °C; the second mode 7 K hotter, capped at
    90 °C); this is their :data:`USAGE_SHARES`-weighted mean, the boil-up temperature one unit
    standing for both modes runs at. The planner's default boil-up temperature is its own
    (``drready.planning.problem.seasonal_boil_temp_c``); this is the method's, for comparison
    and for callers that want it.

    >>> [round(float(national_boil_temp_c(RATED_33_CLASS, t)), 1) for t in (25.0, 6.0, 2.0)]
    [67.8, 71.8, 77.8]
    """
    t = np.asarray(night_air_c, dtype=float)
    win1 = max(JIS_BOIL_C, spec.boil_win_test_c[0])  # (28c-1)
    step = max(SECOND_MODE_MIN_BOIL_STEP_K, spec.boil_win_test_c[1] - spec.boil_win_test_c[0])
    out = np.zeros_like(t)
    for share, shift in zip(USAGE_SHARES, (0.0, step), strict=True):
        summer = JIS_BOIL_C + shift  # (28a-1), (28b-1), (28a-2), (28b-2)
        winter = win1 + shift  # (28c-1), (28c-2)
        frost = min(HIGH_BOIL_C, win1 + 6.0 + shift)  # (28d-1), (28d-2)
        cold = min(HIGH_BOIL_C, win1 + 8.0 + shift)  # (28e-1), (28e-2)
        x = np.array([COLD_AIR_C, FROST_AIR_C, FROST_UPPER_AIR_C, JIS_AIR_C[0], JIS_AIR_C[1]])
        y = np.array([cold, frost, winter, winter, summer])
        # (27): piecewise linear, constant beyond −7 °C and 16 °C
        out += share * np.interp(t, x, y)
    return out
