"""Learned forecasts kept between rolls, two bytes a value (F1; issue 13 item 2).

A unit that learns (:mod:`drready.planning.forecast`) derives its forecast from its history:
the class means, every past day's leave-one-out residual and the split-conformal bounds of
their running sums — ≈ 0.3 s of CPU per 10 000 units. The live fleet asks for the same forecast
twice per 30-minute slot at least: the roll plans every unit at the slot boundary, and every
potential answer (F1) or request (F2–F4) until the next roll re-plans from the same state and
the same history. :class:`ForecastStore` keeps what the roll derived, per chunk of units, and
gives it back while neither the chunk's history nor the grid has changed, so an answer costs
the planning alone (10⁶ units: ≈ 37 s of CPU less per whole-fleet F1).

Kept at 10⁶ units in float64 the forecasts would take 3.1 GB (387 values a unit over the
96-slot horizon), beyond the live fleet's 4 GB. :class:`CompactForecast` keeps each (rows,
units) array as ``uint16`` codes on a per-unit scale — ``value = low + code · step`` with
``step = (max − min) / 65 534`` over the unit's rows — plus two float32 per unit and array:
**≈ 0.8 kB a unit** (0.8 GB at 10⁶). The decoded value is within one step of the exact one,
``(max − min) / 65 534`` ≈ 1.5·10⁻⁵ of the unit's range (0.008 L on a 500 L bound, 2·10⁻⁴
kWh of heat): float rounding at the scale of the litres the bounds are in, far below the
history's own coding (2 % of a slot's use, :func:`~drready.planning.forecast.encode_use_l`).
The one-sided bounds (``over_l``, ``under_l``) are rounded *outward* (up: the decoded bound is
never below the exact one, so a plan never holds less margin than the exact forecast asks);
the means and the spread to the nearest code. Every forecast a keeping forecaster hands out
goes through the codes, cached or not, so a roll's plan and the answers after it are made on
the very same values whether the store held them or not. Zero rows (the first boundary of a
cumulative bound, slots without use) decode to exactly zero.

Arrays with a non-finite value are kept as they are (float64), not coded.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from drready.planning.problem import DrawForecast

__all__ = ["CODE_STEPS", "CodedArray", "CompactForecast", "ForecastStore"]

FloatArray = npt.NDArray[np.float64]
UInt16Array = npt.NDArray[np.uint16]
Float32Array = npt.NDArray[np.float32]

CODE_STEPS: Final = 65_534
"""Steps between a unit's smallest and largest value (one code below uint16's top is spare:
the float32 step, rounded, may fall a little short of the range)."""


@dataclass(frozen=True)
class CodedArray:
    """A (rows, units) float array as uint16 codes on a per-unit linear scale (see the
    module), or the array itself (``exact``) where it is not finite throughout."""

    codes: UInt16Array | None
    low: Float32Array | None
    step: Float32Array | None
    exact: FloatArray | None = None

    @classmethod
    def encode(cls, x: npt.NDArray[np.floating], *, outward: bool = False) -> CodedArray:
        """Code ``x`` (rows, units); ``outward``: round up (the decoded value is ≥ ``x``).

        >>> c = CodedArray.encode(np.array([[0.0, 2.0], [10.0, 2.0], [3.3, 2.0]]))
        >>> c.decode().round(3).tolist()
        [[0.0, 2.0], [10.0, 2.0], [3.3, 2.0]]
        >>> c.nbytes
        28
        """
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"x must be (rows, units), got {a.shape}")
        if a.size == 0 or not np.isfinite(a).all():
            return cls(None, None, None, exact=a.copy())
        low = a.min(axis=0).astype(np.float32)
        high = a.max(axis=0)
        step = ((high - low.astype(np.float64)) / CODE_STEPS).astype(np.float32)
        lo64 = low.astype(np.float64)
        flat = step == 0  # a unit whose rows are all equal (to float32): codes 0, its low
        st64 = np.where(flat, 1.0, step.astype(np.float64))
        q = (a - lo64) / st64
        q = np.ceil(q) if outward else np.rint(q)
        q[:, flat] = 0.0
        # clip: float32's rounding of low/step moves a code at most one below 0 or above the
        # top; 65 535 is still a valid code
        codes = np.clip(q, 0, np.iinfo(np.uint16).max).astype(np.uint16)
        return cls(codes, low, step)

    def decode(self) -> FloatArray:
        """The values, float64 (rows, units)."""
        if self.exact is not None:
            return self.exact.copy()
        assert self.codes is not None and self.low is not None and self.step is not None
        out = np.multiply(self.codes, self.step.astype(np.float64), dtype=np.float64)
        out += self.low.astype(np.float64)
        return out

    @property
    def nbytes(self) -> int:
        if self.exact is not None:
            return int(self.exact.nbytes)
        assert self.codes is not None and self.low is not None and self.step is not None
        return int(self.codes.nbytes + self.low.nbytes + self.step.nbytes)


@dataclass(frozen=True)
class CompactForecast:
    """A :class:`~drready.planning.problem.DrawForecast` with its bounds, ≈ 0.8 kB per unit
    over the 96-slot horizon (see the module); ``after_end_l`` stays float64 (one a unit)."""

    mean_l: CodedArray
    cum_sigma_l: CodedArray
    after_end_l: FloatArray
    early_l: CodedArray | None
    over_l: CodedArray | None
    under_l: CodedArray | None
    confidence: float | None

    @classmethod
    def encode(cls, f: DrawForecast) -> CompactForecast:
        def opt(x: FloatArray | None, outward: bool) -> CodedArray | None:
            return None if x is None else CodedArray.encode(x, outward=outward)

        return cls(
            mean_l=CodedArray.encode(f.mean_l),
            cum_sigma_l=CodedArray.encode(f.cum_sigma_l),
            after_end_l=np.array(f.after_end_l, dtype=np.float64),
            early_l=opt(f.early_l, outward=True),
            over_l=opt(f.over_l, outward=True),
            under_l=opt(f.under_l, outward=True),
            confidence=f.confidence,
        )

    def decode(self) -> DrawForecast:
        def opt(c: CodedArray | None) -> FloatArray | None:
            return None if c is None else c.decode()

        return DrawForecast(
            mean_l=self.mean_l.decode(),
            cum_sigma_l=self.cum_sigma_l.decode(),
            after_end_l=self.after_end_l.copy(),
            early_l=opt(self.early_l),
            over_l=opt(self.over_l),
            under_l=opt(self.under_l),
            confidence=self.confidence,
        )

    @property
    def nbytes(self) -> int:
        parts = [self.mean_l, self.cum_sigma_l, self.early_l, self.over_l, self.under_l]
        return int(self.after_end_l.nbytes) + sum(p.nbytes for p in parts if p is not None)


class ForecastStore:
    """The last forecast of each range of units ``(first, stop)`` (a caller's chunk), valid for
    one ``key`` (what it was derived from: the history's state of those units, the grid).
    :meth:`get` gives it back only for the same range and key; :meth:`put` replaces the range's
    entry and drops those of the ranges it overlaps, so a unit is in one entry at most (the
    store holds at most one forecast per unit)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], tuple[Hashable, CompactForecast]] = {}

    def get(self, units: tuple[int, int], key: Hashable) -> CompactForecast | None:
        held = self._kept.get(units)
        if held is None or held[0] != key:
            return None
        return held[1]

    def put(self, units: tuple[int, int], key: Hashable, value: CompactForecast) -> None:
        first, stop = units
        for r in [r for r in self._kept if r[0] < stop and first < r[1] and r != units]:
            del self._kept[r]
        self._kept[units] = (key, value)

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept forecasts' arrays."""
        return sum(v.nbytes for _, v in self._kept.values())
