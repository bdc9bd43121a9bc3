"""Hot-water storage tank with a thermocline, as stored heat above mains temperature (F1, F3).

State is the heat stored above the mains temperature, ``Q`` [kWh]. The tank holds a hot layer at
the boil-up temperature over mains-temperature water (a thermocline); heating moves the
thermocline down, a draw moves it up. Because mixing at the tap conserves heat above mains, the
usable hot water at 40 °C is ``Q / (c·(40 − T_mains))`` litres whatever the boil-up temperature
(:func:`drready.physics.water.volume_at_use_temp_l`).

* Capacity: the hot layer can fill the tank down to the mixing zone at its bottom;
  ``Q_max = usable_fraction · V · c · (T_boil − T_mains)``. Assumption: 90 % usable (the
  remaining 10 % is the thermocline/mixing layer and the cold inlet zone).
* Standby loss: through a thermal resistance ``R`` [K/W] from the hot layer to the outdoor air
  (EcoCute tanks stand outdoors). With a hot-layer fraction ``Q / (V·c·(T_boil − T_mains))`` the
  loss is ``(T_boil − T_amb)/R`` times that fraction: *linear in Q*, so the tank stays a linear
  system for planning: ``dQ/dt = −λ·Q + heat − draw`` with
  ``λ = (T_boil − T_amb) / (R · V · c · (T_boil − T_mains))``. The loss of the cold layer is
  neglected (it sits near mains temperature).
* ``R`` = 0.3 K/W for a 370 L tank: the tank's overall thermal resistance R_tnk_test of the
  national calculation method's default specification (table 4(b) of [2]_, the same in every
  rated-efficiency row): a hot layer 40 K above its surroundings loses 40 K / 0.3 K/W = 133 W
  ≈ 11.5 MJ/day, the method's standby loss at the JIS winter test, Q_loss_test (table 4(b),
  eq. (25)). Other volumes scale with their surface (``V^(2/3)``): 0.2595 K/W at 460 L.
  Assumption: the method's figures are one specification for every tank class; taking them
  for the 370 L class and scaling puts the 460 L tank's annual loss in the standard 4-person
  household within a few per cent of the method's (``docs/dr-potential-method.md`` §9).
* The method itself does not model the tank's state: it takes a day's loss as
  ``(θ_tnk,eq − θ_ex)/R_tnk`` with an *equivalent storage temperature* regressed on the day's
  mean air temperature and the boil-up mode (eq. (22)–(25) of [2]_). drready's equivalent
  temperature is the stored heat's own, ``θ_ex + Q/(V·c·(T_boil − T_mains))·(T_boil − θ_ex)``,
  so its loss follows what the plan keeps in the tank; ``docs/dr-potential-method.md`` compares
  the two month by month.

References
----------
.. [1] JIS C 9220:2018 家庭用ヒートポンプ給湯機, standby (保温) heat loss test.
.. [2] 国立研究開発法人 建築研究所, 「平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に
   関する技術情報（住宅）」 第七章 第一節 付録 E 電気ヒートポンプ給湯機, table 4(b) and E.6
   貯湯タンク; pyhees Ver. 3.7 ``section7_1_e.py`` (``get_table_4_b``, ``get_Q_dot_loss_cm_d``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drready.physics.water import HEAT_KWH_PER_L_K

FloatArray = npt.NDArray[np.float64]

REFERENCE_VOLUME_L = 370.0
"""Tank volume the method's resistance is taken for [L] (assumption, see the module)."""
REFERENCE_RESISTANCE_K_PER_W = 0.3
"""R_tnk_test of table 4(b) of [2]_ [K/W]."""
STANDBY_LOSS_TEST_MJ_PER_DAY = 11.5
"""Q_loss_test of table 4(b) of [2]_: standby loss at the JIS winter test [MJ/d]."""


@dataclass(frozen=True)
class TankSpec:
    """A storage tank.

    Parameters
    ----------
    volume_l : float
        Nominal volume [L].
    resistance_k_per_w : float
        Thermal resistance hot layer → surroundings [K/W].
    usable_fraction : float
        Share of the volume the hot layer may occupy [-].
    """

    volume_l: float
    resistance_k_per_w: float
    usable_fraction: float = 0.9

    def __post_init__(self) -> None:
        if not 100.0 <= self.volume_l <= 1000.0:
            raise ValueError(f"volume_l must be in [100, 1000] L, got {self.volume_l}")
        if not 0.01 <= self.resistance_k_per_w <= 10.0:
            raise ValueError(
                f"resistance_k_per_w must be in [0.01, 10] K/W, got {self.resistance_k_per_w}"
            )
        if not 0.5 <= self.usable_fraction <= 1.0:
            raise ValueError(f"usable_fraction must be in [0.5, 1], got {self.usable_fraction}")


def tank_for_volume(volume_l: float) -> TankSpec:
    """Tank of ``volume_l`` with ``R`` scaled from the 370 L reference by surface (V^(2/3)).

    >>> round(tank_for_volume(460.0).resistance_k_per_w, 4)
    0.2595
    """
    if not 100.0 <= volume_l <= 1000.0:
        raise ValueError(f"tank volume_l must be in [100, 1000] L, got {volume_l}")
    r = REFERENCE_RESISTANCE_K_PER_W * (REFERENCE_VOLUME_L / volume_l) ** (2.0 / 3.0)
    return TankSpec(volume_l=volume_l, resistance_k_per_w=r)


TANK_370 = tank_for_volume(370.0)
TANK_460 = tank_for_volume(460.0)
TANK_CLASSES_L = (370.0, 460.0)
"""The tank classes drready models out of the box (any 100–1000 L volume is accepted)."""


def max_stored_heat_kwh(
    volume_l: npt.ArrayLike,
    usable_fraction: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike,
    mains_temp_c: npt.ArrayLike,
) -> FloatArray:
    """Largest stored heat above mains, ``Q_max`` [kWh]."""
    return np.asarray(
        np.asarray(usable_fraction, float)
        * np.asarray(volume_l, float)
        * HEAT_KWH_PER_L_K
        * (np.asarray(boil_temp_c, float) - np.asarray(mains_temp_c, float))
    )


def loss_rate_per_h(
    volume_l: npt.ArrayLike,
    resistance_k_per_w: npt.ArrayLike,
    boil_temp_c: npt.ArrayLike,
    mains_temp_c: npt.ArrayLike,
    ambient_temp_c: npt.ArrayLike,
) -> FloatArray:
    """Standby-loss rate constant ``λ`` [1/h] so that loss [kW] = ``λ · Q`` [kWh].

    Parameters
    ----------
    volume_l : numeric
        Tank volume [L].
    resistance_k_per_w : numeric
        Thermal resistance [K/W].
    boil_temp_c, mains_temp_c, ambient_temp_c : numeric
        Hot layer, mains water and surroundings temperatures [°C].
    """
    full_layer_kwh = (
        np.asarray(volume_l, float)
        * HEAT_KWH_PER_L_K
        * (np.asarray(boil_temp_c, float) - np.asarray(mains_temp_c, float))
    )
    full_loss_kw = (
        (np.asarray(boil_temp_c, float) - np.asarray(ambient_temp_c, float))
        / np.asarray(resistance_k_per_w, float)
        / 1000.0
    )
    # clip: surroundings warmer than the hot layer would not heat it via this path.
    return np.asarray(np.clip(full_loss_kw, 0.0, None) / full_layer_kwh, dtype=np.float64)


def retention_factor(loss_rate: npt.ArrayLike, dt_h: float) -> FloatArray:
    """Share of stored heat left after ``dt_h`` hours of standby: ``exp(−λ·dt)`` [-]."""
    return np.exp(-np.asarray(loss_rate, float) * dt_h)
