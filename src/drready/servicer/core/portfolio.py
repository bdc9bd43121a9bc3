"""Portfolio potential: the DR potential of every resource asked, added up (F1, U2, D6, E1).

The servicer asks every resource for its potential for a window (an OpenADR potential-request
event; :mod:`drready.openadr.profile`), and each VEN answers with one
:class:`~drready.domain.FlexibilityEnvelope` per resource. :func:`aggregate` adds them up:

* ``up_kwh`` / ``down_kwh`` — the sums of the declared amounts;
* per slot, the sums of baseline, minimum and maximum power and of the cumulative energy
  bounds (sums of bounds are bounds of the sum, so the portfolio envelope is as valid as the
  units' envelopes are);
* ``confidence`` — the lowest confidence any answering resource declared. This is
  conservative: each amount holds with probability at least its confidence, and the sum of
  the resources' lower quantiles is the quantile of the sum only when the resources fail
  together (comonotonic); households' hot-water use is largely independent, so the sum holds
  more often than that (E1: ``drready.evaluation`` measures how often);
* ``missing`` — the resources asked that did not answer (offline VEN, unit that did not
  answer over ECHONET Lite), by name and VEN, so the operator sees what the figure leaves out.

Per-route subtotals (route i: home gateways; route ii: maker clouds) come from the resources'
route, which the registry knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
from pydantic import Field

from drready.domain import FlexibilityEnvelope, SlotGrid
from drready.domain.base import DomainModel
from drready.domain.time import Instant, count_window_slots

__all__ = ["AskedResource", "PortfolioPotential", "RouteSubtotal", "aggregate"]


class AskedResource(DomainModel):
    """A resource the servicer asked: its name (DeviceId string or group name), VEN, route."""

    resource_name: str = Field(min_length=1)
    ven_name: str = Field(min_length=1)
    route: str = Field(description="'gateway' (route i) or 'cloud' (route ii).")


class RouteSubtotal(DomainModel):
    """Potential of the resources of one route."""

    route: str
    n_asked: int = Field(ge=0)
    n_answered: int = Field(ge=0)
    up_kwh: float = Field(ge=0.0)
    down_kwh: float = Field(ge=0.0)


class PortfolioPotential(DomainModel):
    """The added-up potential of a window and who did not answer."""

    window_start: Instant
    window_end: Instant
    slot_starts: tuple[Instant, ...]
    baseline_kw: tuple[float, ...]
    min_kw: tuple[float, ...]
    max_kw: tuple[float, ...]
    cum_min_kwh: tuple[float, ...]
    cum_max_kwh: tuple[float, ...]
    up_kwh: float = Field(ge=0.0)
    down_kwh: float = Field(ge=0.0)
    confidence: float | None = Field(
        description="Lowest declared confidence of the answers; None when nobody answered."
    )
    n_asked: int = Field(ge=0)
    n_answered: int = Field(ge=0)
    missing: tuple[AskedResource, ...]
    routes: tuple[RouteSubtotal, ...]


def aggregate(
    window_start: datetime,
    window_end: datetime,
    asked: Sequence[AskedResource],
    answers: Mapping[str, FlexibilityEnvelope] | Iterable[FlexibilityEnvelope],
) -> PortfolioPotential:
    """Add up the answers (by resource name) of the resources ``asked`` for one window.

    Answers for resources not asked are ignored (a VEN may answer for more than it was asked);
    an answer whose window differs from the request's is refused.

    Raises
    ------
    ValueError
        An answer for another window, or a window that is not slot-aligned.
    """
    n = count_window_slots(
        window_start, window_end, start_field="window_start", end_field="window_end"
    )
    by_name = (
        dict(answers) if isinstance(answers, Mapping) else {str(e.device_id): e for e in answers}
    )
    used = [by_name[a.resource_name] for a in asked if a.resource_name in by_name]
    for env in used:
        if env.window_start != window_start or env.window_end != window_end:
            raise ValueError(
                f"answers[{env.device_id}]: window {env.window_start.isoformat()}–"
                f"{env.window_end.isoformat()} differs from the request's "
                f"{window_start.isoformat()}–{window_end.isoformat()}"
            )
    fields = ("baseline_kw", "min_kw", "max_kw", "cum_min_kwh", "cum_max_kwh")
    arrays = {f: np.zeros(n) for f in fields}
    if used:
        stack = np.array(
            [[[getattr(s, f) for f in fields] for s in env.slots] for env in used]
        )  # (R, n, 5)
        sums = stack.sum(axis=0)
        for i, f in enumerate(fields):
            arrays[f] = sums[:, i]
    grid_starts = tuple(SlotGrid(start=window_start, n_slots=n).starts())
    routes: dict[str, list[FlexibilityEnvelope | None]] = {}
    for a in asked:
        routes.setdefault(a.route, []).append(by_name.get(a.resource_name))
    subtotals = tuple(
        RouteSubtotal(
            route=route,
            n_asked=len(members),
            n_answered=sum(m is not None for m in members),
            up_kwh=float(sum(m.up_kwh for m in members if m is not None)),
            down_kwh=float(sum(m.down_kwh for m in members if m is not None)),
        )
        for route, members in sorted(routes.items())
    )
    return PortfolioPotential(
        window_start=window_start,
        window_end=window_end,
        slot_starts=grid_starts,
        baseline_kw=tuple(float(x) for x in arrays["baseline_kw"]),
        min_kw=tuple(float(x) for x in arrays["min_kw"]),
        max_kw=tuple(float(x) for x in arrays["max_kw"]),
        cum_min_kwh=tuple(float(x) for x in arrays["cum_min_kwh"]),
        cum_max_kwh=tuple(float(x) for x in arrays["cum_max_kwh"]),
        up_kwh=float(sum(e.up_kwh for e in used)),
        down_kwh=float(sum(e.down_kwh for e in used)),
        confidence=min((e.confidence for e in used), default=None),
        n_asked=len(asked),
        n_answered=len(used),
        missing=tuple(a for a in asked if a.resource_name not in by_name),
        routes=subtotals,
    )
