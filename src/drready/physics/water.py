"""Properties of water and conversions between litres, temperatures and heat (F1, F3).

The tank model keeps its state as *stored heat above mains temperature* [kWh]; these helpers
convert it to litres of water at a use temperature (the ≈ 40 °C of the tap) and back.

References
----------
.. [1] IAPWS-95 via the NIST Chemistry WebBook: liquid water at 40 °C has a density of
   992.2 kg/m³ and an isobaric heat capacity of 4.179 kJ/(kg·K).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

WATER_DENSITY_KG_PER_L = 0.9922
"""Density of water at 40 °C [kg/L] [1]_ (the tap temperature that volumes are counted at)."""

WATER_CP_KJ_PER_KG_K = 4.179
"""Isobaric specific heat of water at 40 °C [kJ/(kg·K)] [1]_."""

HEAT_KWH_PER_L_K = WATER_DENSITY_KG_PER_L * WATER_CP_KJ_PER_KG_K / 3600.0
"""Heat to warm one litre by one kelvin [kWh/(L·K)] (≈ 0.001152)."""

USE_TEMP_C = 40.0
"""Temperature at which hot-water use is counted (the national schedule's litres are at ≈ 40 °C)."""

FloatArray = npt.NDArray[np.float64]


def heat_for_volume_kwh(
    volume_l: npt.ArrayLike, temp_hot_c: npt.ArrayLike, temp_cold_c: npt.ArrayLike
) -> FloatArray:
    """Heat needed to warm ``volume_l`` from ``temp_cold_c`` to ``temp_hot_c``.

    Parameters
    ----------
    volume_l : numeric
        Volume [L].
    temp_hot_c, temp_cold_c : numeric
        Final and initial temperature [°C].

    Returns
    -------
    numeric
        Heat [kWh].

    Examples
    --------
    >>> round(float(heat_for_volume_kwh(450.0, 40.0, 15.0)), 2)
    12.96
    """
    return np.asarray(
        np.asarray(volume_l, dtype=float)
        * HEAT_KWH_PER_L_K
        * (np.asarray(temp_hot_c, dtype=float) - np.asarray(temp_cold_c, dtype=float))
    )


def volume_at_use_temp_l(
    heat_kwh: npt.ArrayLike, mains_temp_c: npt.ArrayLike, use_temp_c: float = USE_TEMP_C
) -> FloatArray:
    """Litres of water at ``use_temp_c`` that ``heat_kwh`` (above mains) can deliver.

    Mixing stored hot water with mains water conserves heat above mains temperature, so the
    deliverable volume at the tap is the stored heat over the heat of one litre at the use
    temperature, whatever the storage temperature.

    Parameters
    ----------
    heat_kwh : numeric
        Stored heat above mains temperature [kWh].
    mains_temp_c : numeric
        Mains (cold) water temperature [°C]; must be below ``use_temp_c``.
    use_temp_c : float
        Temperature at the tap [°C].

    Returns
    -------
    numeric
        Volume [L].
    """
    return np.asarray(heat_kwh, dtype=float) / (
        HEAT_KWH_PER_L_K * (use_temp_c - np.asarray(mains_temp_c, dtype=float))
    )
