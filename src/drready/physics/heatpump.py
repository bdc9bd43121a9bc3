"""CO2 (transcritical) heat pump of an EcoCute: heating capacity, COP and electric input (F1, F3).

The model is a product of four factors, each traceable to a published point or a labelled
assumption::

    COP = COP_jis(T_air) · f_inlet(T_in − T_in,jis(T_air)) · f_boil(T_boil) · f_defrost(T_air)

* ``COP_jis`` interpolates the three rated test points of a *rated efficiency 3.3 class* unit
  in the Japanese national energy calculation method [1]_ [2]_: 4.5 kW of heat for 1.077 kW
  (winter, 7 °C air), 1.002 kW (intermediate season, 16 °C) and 0.879 kW (summer, 25 °C) of
  electricity, all at 65 °C boil-up with the JIS inlet water temperatures 9 °C, 17 °C and 24 °C.
  Between the points it is piecewise linear; outside them it extrapolates with the end slopes
  (air clipped to −15…35 °C, the range of the published performance maps).
* ``f_inlet``: a CO2 gas cooler's COP falls as the returning water gets warmer. Assumption:
  −1.5 % per K of inlet water above the JIS inlet temperature at the same air temperature (the
  order of the inlet sensitivity of CO2 water heaters reported by Nekså et al. [3]_), floored at
  0.3 so that warm water returning from a nearly full tank makes heating very inefficient.
* ``f_boil``: −1 % of COP per K of boil-up temperature above 65 °C (the issue's figure from
  the national calculation method's boil-up correction [1]_), valid for 65–90 °C.
* ``f_defrost``: no penalty at or above 5 °C; below, a linear penalty reaching 10 % at −5 °C and
  held there (assumption, typical of the 5–15 % defrost losses reported for air-source units in
  humid cold weather [4]_).

The heat pump delivers its rated heat output (inverter-controlled, ≈ 4.5 kW) whenever it runs;
a 30-minute slot's average may be any fraction of it.

References
----------
.. [1] 国立研究開発法人 建築研究所, 「平成28年省エネルギー基準に準拠した
   エネルギー消費性能の評価に関する技術情報（住宅）」 第七章 給湯設備, 第一節 ヒートポンプ給湯機
   (national energy calculation method; implemented in pyhees, ``section7_1_c.py``).
.. [2] JIS C 9220:2018 家庭用ヒートポンプ給湯機 — test conditions of the annual hot-water
   efficiency: summer 25 °C air / 24 °C water, intermediate 16 °C / 17 °C, winter 7 °C / 9 °C.
.. [3] Nekså, P., Rekstad, H., Zakeri, G. R., Schiefloe, P. A. (1998). CO2-heat pump water heater:
   characteristics, system design and experimental results. Int. J. Refrigeration 21(3), 172–179.
.. [4] Zhang, L. et al. (2019). A review of frosting and defrosting of air-source heat pumps;
   defrost losses of a few to ≈ 15 % of seasonal energy (assumption chosen within that range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

JIS_AIR_C = (7.0, 16.0, 25.0)
"""Air temperatures of the winter, intermediate and summer test points [°C] [2]_."""
JIS_INLET_C = (9.0, 17.0, 24.0)
"""Inlet (mains) water temperatures of the same test points [°C] [2]_."""
JIS_BOIL_C = 65.0
"""Boil-up temperature of the test points [°C] [2]_."""


@dataclass(frozen=True)
class HeatPumpSpec:
    """A CO2 heat pump unit.

    Parameters
    ----------
    heat_output_kw : float
        Rated heating capacity [kW] (4.5 kW for the common EcoCute class [1]_).
    rated_input_kw : tuple of float
        Electric input at the three JIS points (winter, intermediate, summer) at 65 °C [kW].
    inlet_sensitivity_per_k : float
        Relative COP loss per K of inlet water above the JIS inlet temperature [1/K].
    boil_sensitivity_per_k : float
        Relative COP loss per K of boil-up temperature above 65 °C [1/K].
    defrost_max_penalty : float
        Largest relative COP loss from defrosting [-].
    """

    heat_output_kw: float = 4.5
    rated_input_kw: tuple[float, float, float] = (1.077, 1.002, 0.879)
    inlet_sensitivity_per_k: float = 0.015
    boil_sensitivity_per_k: float = 0.01
    defrost_max_penalty: float = 0.10

    def __post_init__(self) -> None:
        if not 0.5 <= self.heat_output_kw <= 20.0:
            raise ValueError(f"heat_output_kw must be in [0.5, 20] kW, got {self.heat_output_kw}")
        if len(self.rated_input_kw) != 3 or min(self.rated_input_kw) <= 0:
            raise ValueError("rated_input_kw must be three positive inputs [kW]")


RATED_33_CLASS = HeatPumpSpec()
"""The rated-efficiency 3.3 class unit of the national calculation method's test points."""


def jis_cop(spec: HeatPumpSpec, air_temp_c: npt.ArrayLike) -> FloatArray:
    """COP at 65 °C boil-up and the JIS inlet temperature for the given air temperature.

    Piecewise-linear through the three rated points, extrapolated with the end slopes.

    Parameters
    ----------
    spec : HeatPumpSpec
    air_temp_c : numeric
        Outdoor air temperature [°C].

    Returns
    -------
    numeric
        Coefficient of performance [-].
    """
    # clip: the rated maps of [1]_ span −15…35 °C; beyond that we do not extrapolate.
    t = np.clip(np.asarray(air_temp_c, dtype=float), -15.0, 35.0)
    x = np.asarray(JIS_AIR_C)
    y = spec.heat_output_kw / np.asarray(spec.rated_input_kw)
    lo_slope = (y[1] - y[0]) / (x[1] - x[0])
    hi_slope = (y[2] - y[1]) / (x[2] - x[1])
    inside = np.interp(t, x, y)
    below = y[0] + lo_slope * (t - x[0])
    above = y[2] + hi_slope * (t - x[2])
    out: FloatArray = np.where(t < x[0], below, np.where(t > x[2], above, inside))
    return out


def jis_inlet_temp_c(air_temp_c: npt.ArrayLike) -> FloatArray:
    """Inlet water temperature that JIS pairs with an air temperature [°C] (interpolated)."""
    t = np.asarray(air_temp_c, dtype=float)
    x = np.asarray(JIS_AIR_C)
    y = np.asarray(JIS_INLET_C)
    slope = (y[2] - y[0]) / (x[2] - x[0])
    out = np.where((t < x[0]) | (t > x[2]), y[1] + slope * (t - x[1]), np.interp(t, x, y))
    return np.asarray(out, dtype=np.float64)


def defrost_factor(spec: HeatPumpSpec, air_temp_c: npt.ArrayLike) -> FloatArray:
    """Multiplicative COP factor for defrosting (1 at or above 5 °C) [-]."""
    t = np.asarray(air_temp_c, dtype=float)
    # clip: the penalty ramps over 5 → −5 °C and is held at its maximum below −5 °C.
    ramp = np.clip((5.0 - t) / 10.0, 0.0, 1.0)
    return 1.0 - spec.defrost_max_penalty * ramp


def cop(
    spec: HeatPumpSpec,
    air_temp_c: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike = JIS_BOIL_C,
    inlet_temp_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """Coefficient of performance of the heat pump.

    Parameters
    ----------
    spec : HeatPumpSpec
    air_temp_c : numeric
        Outdoor air temperature [°C].
    boil_temp_c : numeric
        Boil-up (outlet) temperature [°C], 65–90.
    inlet_temp_c : numeric, optional
        Water temperature entering the heat pump [°C]; the JIS inlet temperature for the air
        temperature when omitted.

    Returns
    -------
    numeric
        COP [-], broadcast over the inputs.

    Examples
    --------
    >>> round(float(4.5 / cop(RATED_33_CLASS, 16.0)), 3)
    1.002
    """
    air = np.asarray(air_temp_c, dtype=float)
    boil = np.asarray(boil_temp_c, dtype=float)
    if np.any((boil < 60.0) | (boil > 90.0)):
        raise ValueError("boil_temp_c must be within 60–90 °C")
    inlet = jis_inlet_temp_c(air) if inlet_temp_c is None else np.asarray(inlet_temp_c, float)
    # clip: below 0.3 the cycle is treated as barely useful rather than negative (see module doc).
    f_inlet = np.clip(
        1.0 - spec.inlet_sensitivity_per_k * (inlet - jis_inlet_temp_c(air)), 0.3, 1.3
    )
    f_boil = 1.0 - spec.boil_sensitivity_per_k * (boil - JIS_BOIL_C)
    return jis_cop(spec, air) * f_inlet * f_boil * defrost_factor(spec, air)


def electric_input_kw(
    spec: HeatPumpSpec,
    air_temp_c: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike = JIS_BOIL_C,
    inlet_temp_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """Electric input when delivering the rated heat output [kW]."""
    return spec.heat_output_kw / cop(spec, air_temp_c, boil_temp_c, inlet_temp_c)
