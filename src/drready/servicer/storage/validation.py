"""Input checks shared by the servicer's record stores (F1, F2, F5, U1, D6; reliability: a bad
value is refused, naming its field, before anything is written).

Every store module of :mod:`drready.servicer.storage` validates its arguments with these
helpers and so refuses the same things with the same words: ids (:func:`check_id`), enum values
(:func:`enum_value`), numbers and arrays in a range (:func:`check_number`, :func:`check_array`),
JSON (:func:`check_json`), windows (:func:`check_window`), instants (:func:`instant`) and
resource ids that must be registered (:func:`require_resources`). :func:`chunks` keeps
``IN (…)`` lists and multi-row inserts at a size every backend takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from drready.domain import ensure_aware
from drready.servicer.storage.db import ID_LENGTH, Resource, utc_now

__all__ = [
    "CHUNK",
    "MAX_ENERGY_KWH",
    "FloatArray",
    "check_array",
    "check_id",
    "check_ids",
    "check_json",
    "check_number",
    "check_window",
    "chunks",
    "enum_value",
    "instant",
    "require_resources",
]

FloatArray = npt.NDArray[np.float64]

#: Largest energy stored in any record (a potential, an assignment, a meter slot, a state of
#: charge) [kWh]: 10 GWh, above any portfolio, so a value beyond it is a mistake (a unit mix-up,
#: an overflow) and is refused.
MAX_ENERGY_KWH = 1e7
#: Ids per ``IN (…)`` list and rows per batch of inserts, well below the 32 766 parameters a
#: SQLite statement binds at most.
CHUNK = 5000

_RESOURCE = cast(Table, Resource.__table__)
_E = TypeVar("_E", bound=StrEnum)


def check_id(value: str, field: str) -> str:
    """``value`` if it is a usable id (1–128 printable characters), else ``ValueError``."""
    if not isinstance(value, str) or not 1 <= len(value) <= ID_LENGTH or not value.isprintable():
        raise ValueError(f"{field} must be 1–{ID_LENGTH} printable characters, got {value!r:.80}")
    return value


def enum_value(cls: type[_E], value: _E | str, field: str) -> _E:
    """``cls(value)``, or ``ValueError`` naming ``field`` and the allowed values."""
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in cls)
        raise ValueError(f"{field} must be one of {allowed}, got {value!r}") from None


def instant(value: datetime | None, field: str) -> datetime:
    """``value`` if it is timezone-aware (``ValueError`` naming ``field`` if naive); now (UTC)
    when it is ``None``."""
    return utc_now() if value is None else ensure_aware(value, field)


def check_number(
    value: float,
    field: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
) -> float:
    """``float(value)`` if it is finite and in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``),
    else ``ValueError`` naming ``field`` and the range."""
    x = float(value)
    ok = math.isfinite(x)
    if ok and lo is not None:
        ok = x > lo if lo_open else x >= lo
    if ok and hi is not None:
        ok = x <= hi
    if not ok:
        left = "(" if lo_open else "["
        lo_text = "-inf" if lo is None else f"{lo:g}"
        hi_text = "inf" if hi is None else f"{hi:g}"
        raise ValueError(
            f"{field} must be finite and in {left}{lo_text}, {hi_text}], got {value!r}"
        )
    return x


def check_array(
    values: npt.ArrayLike,
    field: str,
    n: int,
    lo: float | None = None,
    hi: float | None = None,
    *,
    allow_nan: bool = False,
) -> FloatArray:
    """``values`` as ``n`` floats (a scalar is repeated), each finite and in ``[lo, hi]`` (NaN
    also allowed with ``allow_nan``), else ``ValueError`` naming the first bad element."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{field} must have {n} elements (one per row), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if allow_nan:
        bad &= ~np.isnan(arr)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= arr < lo
        if hi is not None:
            bad |= arr > hi
    if bad.any():
        i = int(np.argmax(bad))
        lo_text = "-inf" if lo is None else f"{lo:g}"
        hi_text = "inf" if hi is None else f"{hi:g}"
        raise ValueError(
            f"{field}[{i}] must be finite and in [{lo_text}, {hi_text}], got {arr[i]!r}"
        )
    return arr


def check_ids(values: str | Sequence[str], field: str, n: int) -> list[str]:
    """``n`` ids: one id repeated, or a sequence of ``n`` ids, each checked by :func:`check_id`."""
    if isinstance(values, str):
        return [check_id(values, field)] * n
    out = list(values)
    if len(out) != n:
        raise ValueError(f"{field} must have {n} elements (one per row), got {len(out)}")
    for i, v in enumerate(out):
        check_id(v, f"{field}[{i}]")
    return out


def check_json(value: Any, field: str) -> Any:
    """``value`` as plain JSON (a deep copy), else ``ValueError``: NaN, infinities and non-str
    keys are refused so that SQLite and PostgreSQL store the same thing."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{field} must be JSON (finite numbers, str keys): {err}") from None


def check_window(start: datetime, end: datetime) -> None:
    """``ValueError`` unless ``start`` and ``end`` are aware and ``start < end``."""
    ensure_aware(start, "window_start")
    ensure_aware(end, "window_end")
    if not start < end:
        raise ValueError(
            f"window_end must be after window_start, got window_start={start.isoformat()}, "
            f"window_end={end.isoformat()}"
        )


def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    """``items`` in slices of at most :data:`CHUNK`."""
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def require_resources(conn: Connection, resource_ids: Sequence[str], field: str) -> None:
    """``ValueError`` naming ``field`` and (up to three of) the ids that are not registered."""
    wanted = list(dict.fromkeys(resource_ids))
    found: set[str] = set()
    for chunk in chunks(wanted):
        found.update(conn.scalars(select(_RESOURCE.c.id).where(_RESOURCE.c.id.in_(chunk))))
    missing = [r for r in wanted if r not in found]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(
            f"{field}: unknown resource id(s) {missing[:3]!r}{more} (register them first)"
        )
