"""Methods that compute a declared DR potential, compared by the E1 scorecard (E1, F1).

A *method* answers, the evening before (at the planning time of the day-ahead grid), "how many
kWh can each unit shift in this window?" — one figure per household. The scorecard
(:mod:`drready.evaluation.scorecard`) then asks every unit for exactly that amount and checks
what it delivers. A method is any callable ``(MethodContext) -> declared kWh (N,)``; the
built-in ones are:

* ``ours`` — the DR engine's potential (:meth:`FleetPlanner.potential`) at the planner's
  confidence: ``up = most − baseline`` or ``down = baseline − least`` over all safe plans
  (``docs/dr-potential-method.md`` §4).
* ``naive`` — what a maker without a safety model would declare. With ``P`` the heat pump's
  rated electric input (the intermediate-season JIS value, ``rated_input_kw[1]``, ≈ 1.0 kW),
  ``L`` the window length [h], ``E_base`` the baseline plan's electricity in the window,
  ``Q_base`` the baseline plan's *expected* stored heat at the window start, ``Q_max`` the tank's
  capacity and ``COP̄`` the mean COP of the window's slots:

  - up:   ``min(max(P·L − E_base, 0), max(Q_max − Q_base, 0) / COP̄)`` — run at rated power for
    the whole window, as far as the tank has room at the start (draws, losses, uncertainty and
    the rest of the day are ignored);
  - down: ``min(P·L, E_base)`` — stop whatever the baseline would run in the window (that the
    heat must then be made up later, inside the tank's and the heat pump's limits, is ignored).
* ``fixed-margin`` — ``ours × (1 − margin)``, a flat safety margin (default 30 %).
* ``csv`` — declared values read from a file (:func:`csv_method`).
* ``module:function`` — a user callable imported by name (:func:`import_method`).
"""

from __future__ import annotations

import csv as csv_module
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drready.domain import Direction
from drready.planning.engine import FleetPlan, FleetPlanner, WindowPotential
from drready.planning.problem import Fleet, PlanningProblem

FloatArray = npt.NDArray[np.float64]

DEFAULT_FIXED_MARGIN = 0.30
BUILTIN_METHODS = ("ours", "naive", "fixed-margin")


@dataclass(frozen=True)
class MethodContext:
    """What a method may look at for one day and one window (all units at once).

    ``start``/``end`` are slot indices of the window on the problem's grid; ``potential`` is
    the engine's :class:`WindowPotential` of that window and ``baseline`` the no-DR plan, both
    already computed (methods may use or ignore them). ``day_index`` counts the evaluated days
    from 0; ``household`` indices are positions in ``fleet``.
    """

    problem: PlanningProblem
    planner: FleetPlanner
    fleet: Fleet
    direction: Direction
    start: int
    end: int
    day: date
    day_index: int
    baseline: FleetPlan
    potential: WindowPotential


MethodFn = Callable[[MethodContext], npt.ArrayLike]


@dataclass(frozen=True)
class Method:
    """A named potential-calculation method."""

    name: str
    declare: MethodFn

    def __call__(self, ctx: MethodContext) -> FloatArray:
        """Declared kWh per household, checked: shape (N,), finite, ≥ 0."""
        out = np.asarray(self.declare(ctx), dtype=np.float64)
        n = ctx.fleet.size
        if out.shape != (n,):
            raise ValueError(f"method {self.name!r} must return shape ({n},), got {out.shape}")
        if not np.all(np.isfinite(out)) or np.any(out < 0):
            raise ValueError(f"method {self.name!r} must return finite values ≥ 0")
        return out


def ours(ctx: MethodContext) -> FloatArray:
    """The engine's potential at its confidence."""
    up = ctx.direction is Direction.UP
    return ctx.potential.up_kwh if up else ctx.potential.down_kwh


def naive(ctx: MethodContext) -> FloatArray:
    """Rated power × window length, capped by the tank's capacity (up) or baseline use (down).

    The cheapest calculation a maker could publish: the heat pump's rated input over the
    window, no more than the whole usable tank (``Q_max``, in electricity at the window's COP)
    could take — it ignores how full the tank is and what the household will draw, which is
    exactly what the scorecard is meant to expose. Down-DR: rated × window, no more than the
    baseline's use in the window.
    """
    p = ctx.problem
    length_h = (ctx.end - ctx.start) * p.slot_h
    rated_kwh = ctx.fleet.heat_pump.rated_input_kw[1] * length_h
    e_base = ctx.potential.baseline_kwh
    if ctx.direction is Direction.DOWN:
        return np.asarray(np.minimum(rated_kwh, e_base))
    cop_mean = p.cop[ctx.start : ctx.end].mean(axis=0)
    return np.asarray(np.minimum(np.maximum(rated_kwh - e_base, 0.0), p.q_max_kwh / cop_mean))


def fixed_margin(margin: float = DEFAULT_FIXED_MARGIN) -> MethodFn:
    """``ours × (1 − margin)``."""
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"fixed_margin must be within [0, 1), got {margin}")

    def declare(ctx: MethodContext) -> FloatArray:
        return ours(ctx) * (1.0 - margin)

    return declare


def import_method(spec: str) -> MethodFn:
    """The callable named ``"package.module:function"``."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"methods: a user method must be 'module:function', got {spec!r}")
    try:
        obj: object = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"methods: cannot import {spec!r}: {err}") from err
    if not callable(obj):
        raise ValueError(f"methods: {spec!r} is not callable")
    fn: MethodFn = obj
    return fn


def csv_method(path: Path, days: Sequence[date], n_households: int) -> MethodFn:
    """Declared values from a CSV with columns ``household, day, direction, declared_kwh``.

    ``household`` is the 0-based index in the evaluated fleet; ``day`` an ISO date among the
    evaluated days or a 0-based index into them; ``direction`` ``up`` or ``down`` (a value applies
    to every window of that direction). Households and days without a row declare 0 kWh.
    Errors name the argument ``csv``.
    """
    table: dict[tuple[int, Direction], FloatArray] = {}
    day_pos = {d.isoformat(): i for i, d in enumerate(days)}
    where = "header"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv_module.DictReader(fh)
            need = {"household", "day", "direction", "declared_kwh"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise ValueError(f"csv: {path} needs columns {sorted(need)}")
            for line, row in enumerate(reader, start=2):
                where = f"line {line}"
                hh = int(row["household"])
                raw_day = row["day"].strip()
                di = int(raw_day) if raw_day.isdigit() else day_pos.get(raw_day, -1)
                direction = Direction(row["direction"].strip().lower())
                value = float(row["declared_kwh"])
                if not 0 <= hh < n_households:
                    raise ValueError(f"household {hh} outside 0–{n_households - 1}")
                if not 0 <= di < len(days):
                    raise ValueError(f"day {raw_day!r} is not an evaluated day")
                if not np.isfinite(value) or value < 0:
                    raise ValueError(f"declared_kwh must be finite and ≥ 0, got {value}")
                table.setdefault((di, direction), np.zeros(n_households))[hh] = value
    except OSError as err:
        raise ValueError(f"csv: cannot read {path}: {err}") from err
    except (KeyError, TypeError, ValueError) as err:
        msg = str(err)
        if msg.startswith("csv:"):
            raise
        raise ValueError(f"csv: {path} {where}: {msg}") from err

    def declare(ctx: MethodContext) -> FloatArray:
        return table.get((ctx.day_index, ctx.direction), np.zeros(n_households))

    return declare


def resolve_methods(
    names: Sequence[str | Method],
    *,
    fixed_margin_share: float = DEFAULT_FIXED_MARGIN,
    csv: Path | None = None,
    days: Sequence[date] = (),
    n_households: int = 0,
) -> list[Method]:
    """Methods by name (built-in, ``csv``, ``module:function``) or given as :class:`Method`.

    ``csv`` given adds the ``csv`` method when it is not named.
    """
    out: list[Method] = []
    wanted: list[str | Method] = list(names)
    if csv is not None and "csv" not in wanted:
        wanted.append("csv")
    for item in wanted:
        if isinstance(item, Method):
            out.append(item)
        elif item == "ours":
            out.append(Method("ours", ours))
        elif item == "naive":
            out.append(Method("naive", naive))
        elif item == "fixed-margin":
            out.append(Method("fixed-margin", fixed_margin(fixed_margin_share)))
        elif item == "csv":
            if csv is None:
                raise ValueError("csv: the 'csv' method needs a CSV file of declared values")
            out.append(Method("csv", csv_method(csv, days, n_households)))
        elif ":" in item:
            out.append(Method(item, import_method(item)))
        else:
            raise ValueError(
                f"methods: unknown method {item!r}; use {', '.join(BUILTIN_METHODS)}, csv "
                "or 'module:function'"
            )
    if not out:
        raise ValueError("methods: at least one method is needed")
    names_seen = [m.name for m in out]
    if len(set(names_seen)) != len(names_seen):
        raise ValueError(f"methods: names must be unique, got {names_seen}")
    return out
