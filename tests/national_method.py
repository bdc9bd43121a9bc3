"""The national calculation method's electricity of a CO2 heat pump water heater, re-implemented
from its published formulas for the tests (E1) — independently of ``drready.physics``.

drready's physics is checked against this module (``tests/test_national_method.py``); nothing
here imports drready's models, so an error in them cannot hide by being copied. The only shared
inputs are data: the national hot-water schedule (table M.1 of 付録 M, packaged as
``drready/data/hot_water/reference_hot_water_use_by_hour.csv``) read directly as a CSV, and the
temperatures and day types a caller passes in.

Source: 国立研究開発法人建築研究所, 「平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に
関する技術情報（住宅）」 第七章 給湯設備 第一節 給湯設備 (§ numbers below), 付録 E 電気ヒートポンプ
給湯機 (eq./table numbers below); as implemented in BRI-EES-House/pyhees Ver. 3.7 (commit
f9ce1ec, ``src/pyhees/section7_1.py`` and ``section7_1_e.py``, MIT licence). Equation numbers are
those of pyhees' function docstrings. Only what the standard case needs is re-implemented: no
solar heat, no water-saving fixtures (all 節湯 coefficients of table J.1 are 1), no daytime
heating (R_day = 0), a default specification from the rated efficiency (table 4(b)).

Units: the method works in MJ; this module returns kWh (÷ 3.6).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MJ_PER_KWH = 3.6
CP_MJ_PER_L_K = 4.186e-3
"""Heat capacity of water the method uses in eq. (5): 4.186 kJ/(L·K)."""

# ---------------------------------------------------------------------------------------------
# §7-1: hot-water loads
# ---------------------------------------------------------------------------------------------

TAP_TEMP_C = 40.0
"""Table 5 (基準給湯温度): kitchen, shower, wash basin, bath fill at 40 °C."""
TOP_UP_TEMP_C = 60.0
"""Table 5: bath top-up water (浴槽水栓さし湯) at 60 °C."""

TABLE_6 = (
    (-0.12, 6.00, -0.10, 4.91, -0.06, 3.02, 0.00, 0.00),
    (-0.07, 3.98, -0.06, 3.22, -0.04, 2.01, 0.00, 0.00),
    (-0.13, 6.04, -0.10, 4.93, -0.06, 3.04, 0.00, 0.00),
    (-0.08, 4.02, -0.06, 3.25, -0.04, 2.03, 0.00, 0.00),
    (-0.14, 6.21, -0.11, 5.07, -0.07, 3.13, 0.00, 0.00),
    (-0.09, 4.19, -0.07, 3.39, -0.04, 2.12, 0.00, 0.00),
    (-0.12, 5.81, -0.10, 4.77, -0.06, 2.92, 0.00, 0.00),
    (-0.07, 3.80, -0.06, 3.09, -0.04, 1.92, 0.00, 0.00),
)
"""Table 6: coefficients (a_ba, b_ba) of eq. (11), the daily reheat load of the bath
(浴槽沸かし直し) ``a_ba·θ_ex,d,Ave + b_ba`` [MJ/d]; rows: (normal, insulated bath) × air bands
< 7, 7–16, 16–25, ≥ 25 °C; column pairs: 4, 3, 2, 1 persons."""

FULL_AUTO_REHEAT_FACTOR = 1.25
"""Eq. (5-3g): L'_ba2 = 1.25 · L_ba for a unit with automatic reheat (ふろ給湯機(追焚あり))."""

MAINS_A_B_REGION_6 = (0.8516, 2.473)
"""Table 7: regression coefficients (a_wtr, b_wtr) of eq. (12), region 6."""


def _schedule() -> dict[tuple[int, str], FloatArray]:
    """(persons, day type) → (24, 3): tap litres (k + s + w), bath-fill litres, bathers."""
    path = files("drready.data.hot_water").joinpath("reference_hot_water_use_by_hour.csv")
    out: dict[tuple[int, str], FloatArray] = {}
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    for key in {(int(r["persons"]), r["day_type"]) for r in rows}:
        sel = sorted(
            (r for r in rows if (int(r["persons"]), r["day_type"]) == key),
            key=lambda r: int(r["hour"]),
        )
        out[key] = np.array(
            [
                [
                    float(r["kitchen_L"]) + float(r["shower_L"]) + float(r["washbasin_L"]),
                    float(r["bath_fill_L"]),
                    float(r["bathers"]),
                ]
                for r in sel
            ]
        )
    return out


def mains_temp_c(daily_mean_air_c: FloatArray) -> FloatArray:
    """Eq. (12)–(13): max(a_wtr · mean of the 10 preceding daily means + b_wtr, 0.5) [°C]
    (the 10 days wrap around the year, as the method's year does)."""
    a, b = MAINS_A_B_REGION_6
    n = daily_mean_air_c.size
    prev = (np.arange(n)[:, None] - np.arange(1, 11)) % n
    return np.maximum(a * daily_mean_air_c[prev].mean(axis=1) + b, 0.5)


@dataclass(frozen=True)
class Loads:
    """Hourly loads (D·24,) [kWh/h]: at the taps incl. the bath fill, and the bath's reheat."""

    tap_kwh: FloatArray
    bath_kwh: FloatArray


def hourly_loads(
    persons: int,
    day_types: Sequence[str],
    daily_mean_air_c: FloatArray,
    mains_c: FloatArray,
    bath_function: str,
) -> Loads:
    """§7-1 eq. (5)–(11) for an integer household size with a (non-insulated) bath.

    ``bath_function``: "full_auto" (ふろ給湯機(追焚あり): reheat load 1.25·L_ba, eq. (5-3g)),
    "auto" (追焚なし) or "plain" (給湯単機能): top-up water at 60 °C whose heat is L_ba (eq. (9),
    (5-2f)), or "none" (no reheat load, the old drready model).
    """
    table = _schedule()
    n = len(day_types)
    tap = np.empty((n, 24))
    bath = np.empty((n, 24))
    for d, t in enumerate(day_types):
        hours = table[(persons, t)]
        dt = TAP_TEMP_C - mains_c[d]
        tap[d] = (hours[:, 0] + hours[:, 1]) * dt * CP_MJ_PER_L_K  # (5a)–(5c), (5-2d)/(5-3e)
        theta = daily_mean_air_c[d]
        band = 0 if theta < 7 else 2 if theta < 16 else 4 if theta < 25 else 6
        a_ba, b_ba = TABLE_6[band][(4 - persons) * 2 : (4 - persons) * 2 + 2]
        bathers = hours[:, 2]
        l_ba = (a_ba * theta + b_ba) * bathers / bathers.sum() if bathers.sum() > 0 else 0 * bathers
        factor = {"full_auto": FULL_AUTO_REHEAT_FACTOR, "auto": 1.0, "plain": 1.0, "none": 0.0}
        bath[d] = factor[bath_function] * l_ba  # (10)–(11), (5-3g) or (9) + (5-2f)
    return Loads(tap.ravel() / MJ_PER_KWH, bath.ravel() / MJ_PER_KWH)


# ---------------------------------------------------------------------------------------------
# 付録 E: the heat pump water heater
# ---------------------------------------------------------------------------------------------

AIR_SUM, AIR_IMD, AIR_WIN, AIR_FRST, AIR_WIN_CD, AIR_FRST_UPPER, AIR_FRST_IMD = (
    25.0,
    16.0,
    7.0,
    2.0,
    -7.0,
    5.0,
    -2.0,
)  # table 4 (外気温度条件)
BOIL_STD, BOIL_HIGH = 65.0, 90.0  # table 2 (沸き上げ温度条件)
R_USG = (0.6, 0.4)  # usage shares of the first and second control modes (制御モードの利用率)


@dataclass(frozen=True)
class Spec:
    """Table 4(b) row of a rated efficiency (e_rtd = 3.3 by default)."""

    p_imd_kw: float = 1.002
    p_sum_kw: float = 0.879
    p_win_kw: float = 1.077
    q_kw: float = 4.5
    e_def_high_test: float = 2.78
    e_frst_high_test: float = 3.00
    boil_frst_high_test_c: float = 90.0
    boil_std_test_c: float = 65.0
    a_p: float = 0.0115
    b_p_kw: float = 0.4228
    p_aux_on_w: float = 21.0
    p_aux_off_w: float = 6.0
    q_loss_test_mj: float = 11.5
    r_tnk_k_per_w: float = 0.3
    boil_win_cm1_test_c: float = 69.0
    boil_win_cm2_test_c: float = 76.0


def _boil_temps(s: Spec) -> list[dict[str, float]]:
    """Eq. (28a-1)–(28e-2): M1 standard-mode boil-up temperatures per condition and mode."""
    win1 = max(BOIL_STD, s.boil_win_cm1_test_c)
    cm1 = {
        "sum": BOIL_STD,
        "imd": BOIL_STD,
        "win": win1,
        "frst": min(BOIL_HIGH, win1 + 6.0),
        "win_cd": min(BOIL_HIGH, win1 + 8.0),
    }
    win2 = win1 + max(5.0, s.boil_win_cm2_test_c - s.boil_win_cm1_test_c)
    d = win2 - win1
    cm2 = {
        "sum": cm1["sum"] + d,
        "imd": cm1["imd"] + d,
        "win": win2,
        "frst": min(BOIL_HIGH, cm1["frst"] + d),
        "win_cd": min(BOIL_HIGH, cm1["win_cd"] + d),
    }
    return [cm1, cm2]


def _boil_of_day(bw: dict[str, float], t_nave: FloatArray) -> FloatArray:
    """Eq. (27): a mode's boil-up temperature of the day by the night mean air temperature."""
    conditions = [t_nave > t for t in (AIR_IMD, AIR_WIN, AIR_FRST_UPPER, AIR_FRST, AIR_WIN_CD)]
    frst_slope_upper = (bw["win"] - bw["frst"]) / (AIR_FRST_UPPER - AIR_FRST)
    frst_slope_cold = (bw["frst"] - bw["win_cd"]) / (AIR_FRST - AIR_WIN_CD)
    choices = [
        np.full_like(t_nave, bw["sum"]),
        bw["sum"] + (t_nave - AIR_IMD) / (AIR_IMD - AIR_WIN) * (bw["imd"] - bw["win"]),
        np.full_like(t_nave, bw["win"]),
        bw["frst"] + (t_nave - AIR_FRST) * frst_slope_upper,
        bw["frst"] + (t_nave - AIR_FRST) * frst_slope_cold,
    ]
    return np.select(conditions, choices, np.full_like(t_nave, bw["win_cd"]))


def _piecewise(x: FloatArray, pts: Sequence[tuple[float, float]]) -> FloatArray:
    """Linear through the points (sorted by x), extended with the end segments' slopes."""
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    out = np.interp(x, xs, ys)
    lo = x < xs[0]
    hi = x > xs[-1]
    out[lo] = ys[0] + (x[lo] - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    out[hi] = ys[-1] + (x[hi] - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return out


def _mode_daily(
    s: Spec, cm: int, load_mj: FloatArray, t_ave: FloatArray, t_nave: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One control mode: (HP electricity incl. defrost [kWh/d], run hours [h/d], loss [MJ/d])."""
    bw = _boil_temps(s)[cm]
    bw1 = _boil_temps(s)[0]
    # (27): boil-up temperature of the day from the night mean air temperature
    theta_bw = _boil_of_day(bw, t_nave)
    # (25), (24a)–(24c): equivalent storage temperatures
    eq_test = s.q_loss_test_mj * 1e6 / 86400 * s.r_tnk_k_per_w + AIR_WIN
    eq_win, eq_frst, eq_upper = eq_test, eq_test + 23.0, eq_test + 6.5
    # (23-1): first mode, from the daily mean air temperature; clipped at the air temperature
    eq1 = np.select(
        [t_ave > AIR_FRST_UPPER, t_ave > AIR_FRST],
        [
            eq_win + (-0.4 * t_ave + 8.5),
            eq_frst + (t_ave - AIR_FRST) / (AIR_FRST_UPPER - AIR_FRST) * (eq_upper - eq_frst),
        ],
        -0.4 * (t_ave - AIR_FRST) + eq_frst,
    )
    eq1 = np.maximum(eq1, t_ave)
    if cm == 0:
        eq = eq1
    else:  # (23-2): second mode, scaled by its hotter boil-up
        bw1_d = _boil_of_day(bw1, t_nave)
        ratio = (theta_bw - t_ave) / (bw1_d - t_ave)
        eq = np.maximum((eq1 - t_ave) * (2.1 * ratio - 1.2) + t_ave, t_ave)
    # (22): daily storage loss [MJ/d]; (21): daily boil-up heat
    loss = (eq - t_ave) / s.r_tnk_k_per_w * 86400e-6
    q_hp = load_mj + loss
    # (11a)–(11c), (10a)–(10f): efficiencies at the standard / high boil-up temperature
    e_sum = s.q_kw / s.p_sum_kw / (1 - 0.01 * (s.boil_std_test_c - BOIL_STD))
    e_imd = s.q_kw / s.p_imd_kw / (1 - 0.01 * (s.boil_std_test_c - BOIL_STD))
    e_win = s.q_kw / s.p_win_kw / (1 - 0.01 * (s.boil_std_test_c - BOIL_STD))
    e_upper = e_win + (AIR_FRST_UPPER - AIR_WIN) / (AIR_IMD - AIR_WIN) * (e_imd - e_win)
    e_frst_high = s.e_frst_high_test / (1 - 0.01 * (s.boil_frst_high_test_c - BOIL_HIGH))
    e_win_cd_high = 0.82 * e_frst_high
    # (9-1), (9-2): real-operation ratio
    r_e = 0.94 if cm == 0 else (0.90 if bw["win"] <= 75 else 0.90 - 0.005 * (bw["win"] - 75))

    # (8a)–(8f)
    def corr(theta: float, ref: float) -> float:
        return 1 - 0.01 * (theta - ref)

    points = [
        (AIR_WIN_CD, r_e * e_win_cd_high * corr(bw["win_cd"], BOIL_HIGH)),
        (AIR_FRST, r_e * e_frst_high * corr(bw["frst"], BOIL_HIGH)),
        (AIR_FRST_UPPER, r_e * e_upper * corr(bw["win"], BOIL_STD)),
        (AIR_WIN, r_e * e_win * corr(bw["win"], BOIL_STD)),
        (AIR_IMD, r_e * e_imd * corr(bw["imd"], BOIL_STD)),
        (AIR_SUM, r_e * e_sum * corr(bw["sum"], BOIL_STD)),
    ]
    # (7): piecewise linear in the night mean air temperature, at least 1
    e_hat = np.maximum(_piecewise(t_nave, points), 1.0)
    # (16), (15a), (15b), (14): defrost efficiency coefficient
    c_test = s.e_def_high_test / s.e_frst_high_test
    c_frst = 0.0024 * (bw["frst"] - s.boil_frst_high_test_c) + c_test
    c_cd = 0.0024 * (bw["win_cd"] - s.boil_frst_high_test_c) + (
        -0.01 * (AIR_WIN_CD - AIR_FRST_IMD) + c_test
    )
    c_def = np.select(
        [t_nave > AIR_FRST_UPPER, t_nave > AIR_FRST, t_nave > AIR_FRST_IMD],
        [
            np.ones_like(t_nave),
            np.minimum(
                1.0, c_frst + (t_nave - AIR_FRST) / (AIR_FRST_UPPER - AIR_FRST) * (1 - c_frst)
            ),
            np.full_like(t_nave, min(1.0, c_frst)),
        ],
        np.minimum(
            1.0, c_cd + (t_nave - AIR_WIN_CD) / (AIR_FRST_IMD - AIR_WIN_CD) * (c_frst - c_cd)
        ),
    )
    # (5), (6), (4): boil-up electricity, defrost electricity, their sum [kWh/d]
    e_bw = q_hp / e_hat / MJ_PER_KWH
    e_hp = e_bw + e_bw * (1 / c_def - 1)
    # (13-1): electric input; (12): heating capacity; (20): daily run hours
    p_hp = np.maximum(s.a_p * (theta_bw - t_nave) + s.b_p_kw, 0.1)
    q_cap = e_hat * p_hp
    tau = np.minimum(24.0, q_hp * 1000 / (q_cap * 3600))
    return e_hp, tau, loss


@dataclass(frozen=True)
class Result:
    """Hourly figures of the D days (D·24,) [kWh/h] and daily ones (D,)."""

    electricity_kwh: FloatArray
    hp_kwh: FloatArray
    aux_kwh: FloatArray
    tap_kwh: FloatArray
    bath_kwh: FloatArray
    loss_kwh_d: FloatArray
    hp_heat_kwh_d: FloatArray


def _run_hours(tau: FloatArray, stop_h: float = 7.0) -> FloatArray:
    """Eq. (17-1)–(19): hourly run time (D·24,) of night heating that ends at 07:00 of its day
    and starts ``floor(τ) + 1`` hours earlier (the first hour partly), reaching into the day
    before; the first day's run reaches back into the last day (the method's year wraps)."""
    n = tau.size
    out = np.zeros(n * 24)
    for d in range(n):
        whole = int(np.floor(tau[d]))
        start = stop_h - (whole + 1)
        for k in range(whole + 1):
            hour = int(start) + k
            share = tau[d] - whole if k == 0 else 1.0
            out[(d * 24 + hour) % (n * 24)] += share
    return out


def electricity(
    loads: Loads, daily_mean_air_c: FloatArray, night_mean_air_c: FloatArray, spec: Spec = Spec()
) -> Result:
    """Eq. (1)–(4), (26): the unit's hourly electricity, both control modes weighted 0.6/0.4."""
    n = daily_mean_air_c.size
    load_mj = (loads.tap_kwh + loads.bath_kwh).reshape(n, 24).sum(axis=1) * MJ_PER_KWH
    elec = np.zeros(n * 24)
    hp = np.zeros(n * 24)
    aux = np.zeros(n * 24)
    loss_d = np.zeros(n)
    heat_d = np.zeros(n)
    for cm, share in enumerate(R_USG):
        e_hp_d, tau_d, loss = _mode_daily(spec, cm, load_mj, daily_mean_air_c, night_mean_air_c)
        hours = _run_hours(tau_d)
        # (3-1), (3-2): the day's HP electricity spread over its run hours
        owner = (np.arange(n * 24) // 24 + (np.arange(n * 24) % 24 >= 7)) % n
        with np.errstate(invalid="ignore", divide="ignore"):
            hp_t = np.where(tau_d[owner] > 0, e_hp_d[owner] * hours / tau_d[owner], 0.0)
        # (26): auxiliaries, on while the HP runs, standby otherwise
        aux_t = (spec.p_aux_on_w * hours + spec.p_aux_off_w * (1 - hours)) / 1000
        hp += share * hp_t
        aux += share * aux_t
        elec += share * (hp_t + aux_t)  # (2), (1)
        loss_d += share * loss / MJ_PER_KWH
        heat_d += share * (load_mj + loss) / MJ_PER_KWH
    return Result(elec, hp, aux, loads.tap_kwh, loads.bath_kwh, loss_d, heat_d)


def daily_and_night_means(hourly_air_c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eq. (14) daily mean and eq. (15) night mean (23:00 of the day before to 07:00) [°C] of
    hourly temperatures (D·24,), hour 0 = 00:00–01:00 of the first day (wrapping)."""
    n = hourly_air_c.size // 24
    ave = hourly_air_c.reshape(n, 24).mean(axis=1)
    night = np.roll(hourly_air_c, 1).reshape(n, 24)[:, :8].mean(axis=1)
    return ave, night


def monthly(values_h: FloatArray, days_in_month: Sequence[int]) -> FloatArray:
    """Sums of hourly values over each month [same unit]."""
    edges = np.cumsum([0, *days_in_month]) * 24
    return np.array([values_h[a:b].sum() for a, b in itertools.pairwise(edges)])
