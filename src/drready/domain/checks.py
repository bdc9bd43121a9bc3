"""Argument checks shared by the pure cores (D1): one wording for "finite", "shape" and "> 0".

Every error names the argument, as everywhere in drready; the functions return the checked value
so a caller writes ``x = finite_array("power_kw", power_kw, ndim=1)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["finite_array", "positive"]


def finite_array(
    name: str, value: npt.ArrayLike, ndim: int | None = None
) -> npt.NDArray[np.float64]:
    """``value`` as a float64 array, every element finite, of ``ndim`` dimensions if given.

    Raises
    ------
    ValueError
        Naming ``name``: wrong number of dimensions, or a NaN/infinite element.

    >>> finite_array("x", [1, 2]).tolist()
    [1.0, 2.0]
    """
    arr = np.asarray(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite everywhere")
    return arr


def positive(name: str, value: float) -> float:
    """``value`` as a float, finite and > 0; otherwise a ``ValueError`` naming ``name``."""
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v
