"""Shared base class and reusable validated field types of the unified data model (D1).

Every domain model derives from :class:`DomainModel`: immutable (``frozen=True``), strict about
unknown keys (``extra="forbid"``) and JSON round-trippable. The annotated float and string types
below produce error messages that name the field and the allowed range, e.g.
``amount_kwh must be finite and > 0, got -1.0``. They serve every requirement that carries numbers
or identifiers (F1–F6, D1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

__all__ = [
    "ENERGY_TOL_KWH",
    "POWER_TOL_KW",
    "DomainModel",
    "FiniteFloat",
    "Fraction",
    "NonNegativeFloat",
    "PositiveFloat",
    "RequestId",
    "ShortText",
    "bounded_float",
    "float_fields_validated",
    "format_number",
]

from .tolerances import ENERGY_TOL_KWH, POWER_TOL_KW  # re-exported: older imports


class DomainModel(BaseModel):
    """Base of all domain models: immutable, no unknown keys, JSON round-trippable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def format_number(x: float) -> str:
    """Format a bound for an error message: ``100000`` rather than ``100000.0``."""
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _field_name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def bounded_float(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> AfterValidator:
    """Return an ``AfterValidator`` refusing non-finite values and values outside a range.

    Parameters
    ----------
    lo, hi : float or None
        Lower and upper bound; ``None`` means unbounded on that side.
    lo_open, hi_open : bool
        Whether the bound itself is excluded (``>`` / ``<``) rather than included.

    The message names the field, the violated condition and, for two-sided ranges, the whole
    allowed interval: ``confidence must be < 1, got 1.0 (allowed range: [0.5, 1))``.
    """
    lo_cond = "" if lo is None else f"{'>' if lo_open else '>='} {format_number(lo)}"
    hi_cond = "" if hi is None else f"{'<' if hi_open else '<='} {format_number(hi)}"
    suffix = ""
    if lo is not None and hi is not None:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        suffix = f" (allowed range: {left}{format_number(lo)}, {format_number(hi)}{right})"

    def check(value: float, info: ValidationInfo) -> float:
        name = _field_name(info)
        low_ok = lo is None or (value > lo if lo_open else value >= lo)
        if not math.isfinite(value) or not low_ok:
            cond = f"finite and {lo_cond}" if lo_cond else "finite"
            raise ValueError(f"{name} must be {cond}, got {value!r}{suffix}")
        if hi is not None and not (value < hi if hi_open else value <= hi):
            raise ValueError(f"{name} must be {hi_cond}, got {value!r}{suffix}")
        return value

    return AfterValidator(check)


#: Any finite float.
FiniteFloat = Annotated[float, bounded_float()]
#: A finite float ≥ 0 (powers, energies, costs).
NonNegativeFloat = Annotated[float, bounded_float(0.0)]
#: A finite float > 0.
PositiveFloat = Annotated[float, bounded_float(0.0, lo_open=True)]
#: A finite float in [0, 1].
Fraction = Annotated[float, bounded_float(0.0, 1.0)]


def _pattern_str(
    pattern: str, description: str, max_len: int
) -> Callable[[str, ValidationInfo], str]:
    regex = re.compile(pattern)

    def check(value: str, info: ValidationInfo) -> str:
        if not regex.fullmatch(value):
            raise ValueError(
                f"{_field_name(info)} must be 1–{max_len} characters {description}, got {value!r}"
            )
        return value

    return check


#: A request identifier: 1–64 characters from ``[A-Za-z0-9._:-]`` (safe in URLs, CSV, logs).
RequestId = Annotated[
    str,
    AfterValidator(_pattern_str(r"[A-Za-z0-9._:\-]{1,64}", "from [A-Za-z0-9._:-]", 64)),
]


def _short_text(value: str, info: ValidationInfo) -> str:
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise ValueError(f"{_field_name(info)} must be 1–64 printable characters, got {value!r}")
    return value


#: A short printable label, 1–64 characters (e.g. the issuer of a DR request).
ShortText = Annotated[str, AfterValidator(_short_text)]


def float_fields_validated(model: type[BaseModel]) -> dict[str, bool]:
    """For tests: map each ``float`` field of ``model`` to whether it carries a validator."""
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        if info.annotation is float:
            out[name] = any(isinstance(m, AfterValidator) for m in info.metadata)
    return out
