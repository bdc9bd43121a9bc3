"""Outdoor air and mains (supply) water temperature for a typical year.

What the heat pump and the tank see of the weather: hourly outdoor air temperature [°C], which
sets the CO2 heat pump's COP and defrost, and the daily mains water temperature [°C], which sets
how much heat a litre of hot water takes. Both are smooth "typical year" curves built from
climate normals, not weather records: good enough to size DR potential (F1), to plan heating
around a DR event (F3) and to evaluate both with one common method (E1).

Model
-----
* Seasonal air temperature: a periodic cubic spline anchored at mid-month whose anchor values are
  solved so that the curve's average over each calendar month equals that month's normal
  (a mean-preserving spline; the averages match to < 1e-6 K, far inside the ~0.3 K by which a
  spline through the normals themselves would miss them).
* Diurnal cycle: a cosine of amplitude ``diurnal_amplitude_k`` with its minimum at
  ``coldest_hour`` local time. It averages to zero over each day, so the daily mean is the
  seasonal curve's.
* Mains water: the daily mean supply water temperature of the Japanese national energy
  calculation method for houses (eq. (12)-(13) of section 7-1), a linear regression on the mean
  outdoor temperature of the preceding 10 days with regional coefficients, bounded below at
  0.5 °C.

Time is "hour of year": fractional hours since Jan 1 00:00 local wall time of a 365-day year
(0 <= h < 8760, values outside wrap). There is no Feb 29: :func:`hour_of_year` maps it onto
Feb 28.

References
----------
.. [1] Japan Meteorological Agency, climatological normals 1991-2020, station Tokyo (47662):
   monthly mean, mean daily maximum and mean daily minimum air temperature.
.. [2] Building Research Institute / National Institute for Land and Infrastructure Management,
   "平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に関する技術情報（住宅）",
   第七章 給湯設備 第一節 給湯設備, 12. 日平均給水温度, eq. (12) and table 7; 13. eq. (13)-(14).
   Reference implementation: BRI-EES-House/pyhees, ``src/pyhees/section7_1.py``
   (``get_Theta_wtr_d``, ``get_table_7``, ``get_Theta_ex_prd_Ave_d``), MIT licence.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from scipy.interpolate import CubicSpline

__all__ = [
    "DAYS_IN_MONTH",
    "HOURS_PER_YEAR",
    "MAINS_MIN_C",
    "MAINS_PERIOD_DAYS",
    "MAINS_REGRESSION_BY_REGION",
    "TOKYO",
    "TOKYO_MONTHLY_MEAN_AIR_C",
    "Climate",
    "air_temp_c",
    "daily_mean_air_c",
    "hour_of_year",
    "mains_temp_c",
]

FloatArray = npt.NDArray[np.float64]

DAYS_IN_MONTH: tuple[int, ...] = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
"""Days per month of the 365-day model year."""

DAYS_PER_YEAR = 365
HOURS_PER_YEAR = 24 * DAYS_PER_YEAR

_MONTH_START_DAY: tuple[int, ...] = tuple(int(x) for x in np.cumsum((0, *DAYS_IN_MONTH[:-1])))

TOKYO_MONTHLY_MEAN_AIR_C: tuple[float, ...] = (
    5.4,
    6.1,
    9.4,
    14.3,
    18.8,
    21.9,
    25.7,
    26.9,
    23.3,
    18.0,
    12.5,
    7.7,
)
"""Monthly mean air temperature, Tokyo, normals 1991-2020 [°C] (JMA [1]_)."""

MAINS_REGRESSION_BY_REGION: Mapping[int, tuple[float, float]] = {
    1: (0.6639, 3.466),
    2: (0.6639, 3.466),
    3: (0.6054, 4.515),
    4: (0.6054, 4.515),
    5: (0.8660, 1.665),
    6: (0.8516, 2.473),
    7: (0.9223, 2.097),
    8: (0.6921, 7.167),
}
"""Regression coefficients (a_wtr [-], b_wtr [°C]) of the daily mains water temperature by
energy-efficiency region 1-8 (省エネルギー地域区分); table 7 of [2]_. Tokyo's 23 wards are region 6.
"""

MAINS_MIN_C = 0.5
"""Lower bound of the daily mains water temperature [°C], eq. (12) of [2]_."""

MAINS_PERIOD_DAYS = 10
"""Days averaged into the period-average outdoor temperature (期間平均外気温度), eq. (13) [2]_."""


@dataclass(frozen=True)
class Climate:
    """A typical-year climate: outdoor air and mains water temperature.

    Parameters
    ----------
    name : str
        Label, e.g. ``"Tokyo"``.
    monthly_mean_air_c : tuple of float
        The 12 monthly mean outdoor air temperatures, January first [°C].
    diurnal_amplitude_k : float
        Amplitude of the diurnal cosine, half the mean daily range [K]. ``>= 0``.
    mains_a_wtr : float
        Slope of the mains water regression on the 10-day mean outdoor temperature [-]
        (a_wtr, table 7 of [2]_). ``> 0``.
    mains_b_wtr : float
        Intercept of that regression [°C] (b_wtr, table 7 of [2]_).
    coldest_hour : float, default 5.0
        Local hour of the diurnal minimum [h], ``0 <= coldest_hour < 24``.

    Raises
    ------
    ValueError
        If a field is out of range; the message names the field.
    """

    name: str
    monthly_mean_air_c: tuple[float, ...]
    diurnal_amplitude_k: float
    mains_a_wtr: float
    mains_b_wtr: float
    coldest_hour: float = 5.0

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.monthly_mean_air_c)
        if len(values) != 12 or not all(math.isfinite(v) for v in values):
            raise ValueError(
                "monthly_mean_air_c must hold 12 finite values [°C], "
                f"got {self.monthly_mean_air_c!r}"
            )
        object.__setattr__(self, "monthly_mean_air_c", values)
        if not (math.isfinite(self.diurnal_amplitude_k) and self.diurnal_amplitude_k >= 0.0):
            raise ValueError(
                f"diurnal_amplitude_k must be finite and >= 0 [K], got {self.diurnal_amplitude_k!r}"
            )
        if not (math.isfinite(self.mains_a_wtr) and self.mains_a_wtr > 0.0):
            raise ValueError(f"mains_a_wtr must be finite and > 0, got {self.mains_a_wtr!r}")
        if not math.isfinite(self.mains_b_wtr):
            raise ValueError(f"mains_b_wtr must be finite [°C], got {self.mains_b_wtr!r}")
        if not (math.isfinite(self.coldest_hour) and 0.0 <= self.coldest_hour < 24.0):
            raise ValueError(f"coldest_hour must be in [0, 24) [h], got {self.coldest_hour!r}")


TOKYO = Climate(
    name="Tokyo",
    monthly_mean_air_c=TOKYO_MONTHLY_MEAN_AIR_C,
    # JMA normals 1991-2020 for Tokyo [1]_: the mean daily range (max - min) runs from 7.2 K
    # (Sep/Oct) to 9.7 K (Apr), 8.2 K averaged over the year, i.e. a half-range of 4.1 K.
    # Assumption: the cosine amplitude is taken 0.3 K smaller (3.8 K), because the mean diurnal
    # cycle of hourly temperatures has a smaller range than the mean of daily extremes (which
    # also contain day-to-day weather changes and maxima/minima at varying hours).
    diurnal_amplitude_k=3.8,
    mains_a_wtr=MAINS_REGRESSION_BY_REGION[6][0],
    mains_b_wtr=MAINS_REGRESSION_BY_REGION[6][1],
    coldest_hour=5.0,
)
"""Tokyo (energy-efficiency region 6)."""


@dataclass(frozen=True)
class _Tables:
    seasonal: CubicSpline
    daily_mean_air_c: FloatArray  # (365,)
    mains_c: FloatArray  # (365,)


def _periodic_spline(x_h: FloatArray, y: FloatArray) -> CubicSpline:
    """Periodic cubic spline through (x_h, y) with period one model year."""
    return CubicSpline(
        np.append(x_h, x_h[0] + HOURS_PER_YEAR),
        np.append(y, y[0]),
        bc_type="periodic",
        extrapolate="periodic",
    )


def _monthly_means(spline: CubicSpline) -> FloatArray:
    out = np.empty(12)
    for m in range(12):
        start_h = 24.0 * _MONTH_START_DAY[m]
        end_h = start_h + 24.0 * DAYS_IN_MONTH[m]
        out[m] = float(spline.integrate(start_h, end_h)) / (end_h - start_h)
    return out


@functools.cache
def _tables(climate: Climate) -> _Tables:
    mid_month_h = 24.0 * (np.asarray(_MONTH_START_DAY) + 0.5 * np.asarray(DAYS_IN_MONTH))
    # Monthly averages are linear in the anchor values: build the 12 x 12 map and solve it so
    # that the spline's monthly averages equal the normals exactly (mean-preserving spline).
    averaging = np.column_stack(
        [_monthly_means(_periodic_spline(mid_month_h, e)) for e in np.eye(12)]
    )
    anchors_c = np.linalg.solve(averaging, np.asarray(climate.monthly_mean_air_c))
    seasonal = _periodic_spline(mid_month_h, anchors_c)
    daily = np.array(
        [float(seasonal.integrate(24.0 * d, 24.0 * (d + 1))) / 24.0 for d in range(DAYS_PER_YEAR)]
    )
    # Eq. (13) of [2]: mean of the daily means of the 10 preceding days (not the day itself),
    # wrapping around the year as pyhees' get_Theta_ex_prd_Ave_d does.
    preceding = (np.arange(DAYS_PER_YEAR)[:, None] - np.arange(1, MAINS_PERIOD_DAYS + 1)) % 365
    period_mean_c = daily[preceding].mean(axis=1)
    # Eq. (12) of [2]: the regression is bounded below at 0.5 °C.
    mains = np.maximum(climate.mains_a_wtr * period_mean_c + climate.mains_b_wtr, MAINS_MIN_C)
    return _Tables(seasonal=seasonal, daily_mean_air_c=daily, mains_c=mains)


def _day_index(day_of_year: npt.ArrayLike) -> npt.NDArray[np.intp]:
    days = np.asarray(day_of_year)
    if not np.all(np.isfinite(days)):
        raise ValueError("day_of_year must be finite")
    index: npt.NDArray[np.intp] = np.floor(days).astype(np.intp) % DAYS_PER_YEAR
    return index


def air_temp_c(climate: Climate, hour_of_year: npt.ArrayLike) -> FloatArray:
    """Outdoor air temperature of a typical year.

    Parameters
    ----------
    climate : Climate
        The climate.
    hour_of_year : array_like of float
        Hours since Jan 1 00:00 local wall time [h]; any shape; wraps with period 8760 h.

    Returns
    -------
    numpy.ndarray of float64
        Air temperature [°C], same shape as ``hour_of_year``.

    Notes
    -----
    ``T(h) = S(h) - A cos(2π (h mod 24 - h_min) / 24)``, ``S`` the mean-preserving periodic
    spline through the monthly normals (module docstring), ``A`` = ``diurnal_amplitude_k``,
    ``h_min`` = ``coldest_hour``.

    Examples
    --------
    >>> import numpy as np
    >>> t = air_temp_c(TOKYO, np.array([24.0 * 200 + 5.0, 24.0 * 200 + 17.0]))
    >>> bool(t[1] - t[0] > 7.0)
    True
    """
    h = np.asarray(hour_of_year, dtype=np.float64)
    if not np.all(np.isfinite(h)):
        raise ValueError("hour_of_year must be finite")
    h = np.mod(h, HOURS_PER_YEAR)
    seasonal = np.asarray(_tables(climate).seasonal(h), dtype=np.float64)
    phase = 2.0 * np.pi * (np.mod(h, 24.0) - climate.coldest_hour) / 24.0
    result: FloatArray = seasonal - climate.diurnal_amplitude_k * np.cos(phase)
    return result


def daily_mean_air_c(climate: Climate, day_of_year: npt.ArrayLike) -> FloatArray:
    """Daily mean outdoor air temperature.

    Parameters
    ----------
    climate : Climate
        The climate.
    day_of_year : array_like of int
        Day of the 365-day year, 0 = Jan 1 (fractions are floored; wraps with period 365).

    Returns
    -------
    numpy.ndarray of float64
        Mean of :func:`air_temp_c` over the day [°C] (the diurnal cosine averages to zero).
    """
    result: FloatArray = _tables(climate).daily_mean_air_c[_day_index(day_of_year)]
    return result


def mains_temp_c(climate: Climate, day_of_year: npt.ArrayLike) -> FloatArray:
    """Daily mean mains (supply) water temperature.

    Parameters
    ----------
    climate : Climate
        The climate; its ``mains_a_wtr``, ``mains_b_wtr`` are the regional coefficients.
    day_of_year : array_like of int
        Day of the 365-day year, 0 = Jan 1 (fractions are floored; wraps with period 365).

    Returns
    -------
    numpy.ndarray of float64
        Mains water temperature [°C].

    Notes
    -----
    Eq. (12)-(13) of [2]_::

        Θ_ex,prd,Ave,d = (1/10) Σ_{i=1..10} Θ_ex,d,Ave,d-i          (13)
        Θ_wtr,d = max(a_wtr · Θ_ex,prd,Ave,d + b_wtr, 0.5)           (12)

    where ``Θ_ex,d,Ave`` is :func:`daily_mean_air_c` (the 10 days before day ``d``, wrapping
    from Jan 1 back into December) and, for region 6 (Tokyo), ``a_wtr = 0.8516``,
    ``b_wtr = 2.473 °C`` (table 7).

    References
    ----------
    .. [2] See the module docstring.
    """
    result: FloatArray = _tables(climate).mains_c[_day_index(day_of_year)]
    return result


def hour_of_year(times: Sequence[datetime]) -> FloatArray:
    """Hour of the 365-day model year of timezone-aware datetimes, from their local wall time.

    Parameters
    ----------
    times : sequence of datetime
        Timezone-aware datetimes; each is read in its own timezone (its wall-clock month, day,
        hour, minute, second).

    Returns
    -------
    numpy.ndarray of float64
        Fractional hours since Jan 1 00:00 [h], shape ``(len(times),)``.

    Raises
    ------
    ValueError
        If a datetime is naive.

    Notes
    -----
    Feb 29 maps onto Feb 28's hours, so a leap year repeats Feb 28's weather and its later
    days map onto the same calendar day as in a common year. Wall time is used as is: in a
    zone with daylight saving time one hour repeats and one is skipped (Japan has none).

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> jst = timezone(timedelta(hours=9))
    >>> hour_of_year([datetime(2026, 1, 2, 6, 30, tzinfo=jst)]).tolist()
    [30.5]
    """
    out = np.empty(len(times), dtype=np.float64)
    for i, t in enumerate(times):
        if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
            raise ValueError(f"times must be timezone-aware, got naive {t!r} at index {i}")
        day = min(t.day, 28) if t.month == 2 else t.day
        day_of_year = _MONTH_START_DAY[t.month - 1] + day - 1
        out[i] = (
            24.0 * day_of_year
            + t.hour
            + t.minute / 60.0
            + (t.second + t.microsecond / 1e6) / 3600.0
        )
    return out
