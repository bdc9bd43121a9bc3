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
* ``R`` ≈ 0.3 K/W for a 370 L tank: a full tank 40 K above its surroundings loses
  40 K / 0.3 K/W = 133 W ≈ 11.5 MJ/day, the order of the JIS C 9220 standby-loss figure of a
  370 L EcoCute [1]_. Larger tanks scale with their surface (``V^(2/3)``).

References
----------
.. [1] JIS C 9220:2018 家庭用ヒートポンプ給湯機, standby (保温) heat loss test; ≈ 11.5 MJ/day for a
   370 L class tank as cited by the DR-ready study issue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drready.physics.water import HEAT_KWH_PER_L_K

FloatArray = npt.NDArray[np.float64]

REFERENCE_VOLUME_L = 370.0
REFERENCE_RESISTANCE_K_PER_W = 0.3


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
    """Tank of ``volume_l`` with ``R`` scaled from the 370 L reference by surface (V^(2/3))."""
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
