"""Portfolio potential: sums, the conservative confidence, per-route subtotals, who is missing."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from drready.cloud.fleet import MakerFleet
from drready.domain import FlexibilityEnvelope
from drready.servicer.core.portfolio import AskedResource, aggregate

TOKYO = ZoneInfo("Asia/Tokyo")
START = datetime(2025, 5, 14, 10, 0, tzinfo=TOKYO)
END = datetime(2025, 5, 14, 14, 0, tzinfo=TOKYO)


def _envelopes(n: int) -> list[FlexibilityEnvelope]:
    return MakerFleet.random(n, date(2025, 5, 14), seed=4).envelopes(START, END)


def test_sums_match_a_loop_and_missing_resources_are_named() -> None:
    envs = _envelopes(12)
    names = [str(e.device_id) for e in envs]
    asked = [
        AskedResource(
            resource_name=n,
            ven_name="gw" if k < 4 else "cloud",
            route="gateway" if k < 4 else "cloud",
        )
        for k, n in enumerate(names)
    ]
    answered = {n: e for n, e in zip(names, envs, strict=True) if n not in (names[1], names[7])}
    got = aggregate(START, END, asked, answered)
    used = [e for n, e in zip(names, envs, strict=True) if n in answered]
    assert got.up_kwh == pytest.approx(sum(e.up_kwh for e in used))
    assert got.down_kwh == pytest.approx(sum(e.down_kwh for e in used))
    for k in range(len(got.slot_starts)):
        assert got.max_kw[k] == pytest.approx(sum(e.slots[k].max_kw for e in used))
        assert got.cum_max_kwh[k] == pytest.approx(sum(e.slots[k].cum_max_kwh for e in used))
    assert got.slot_starts[0] == START and len(got.slot_starts) == 8
    assert {m.resource_name for m in got.missing} == {names[1], names[7]}
    assert (got.n_asked, got.n_answered) == (12, 10)
    routes = {r.route: r for r in got.routes}
    assert routes["gateway"].n_answered == 3 and routes["cloud"].n_answered == 7
    assert routes["gateway"].up_kwh + routes["cloud"].up_kwh == pytest.approx(got.up_kwh)
    assert got.confidence == min(e.confidence for e in used)
    # the portfolio's per-slot bounds are consistent: cum bounds never decrease
    assert np.all(np.diff(got.cum_max_kwh) >= -1e-9)


def test_nobody_answered_and_wrong_window() -> None:
    envs = _envelopes(2)
    asked = [
        AskedResource(resource_name=str(e.device_id), ven_name="c", route="cloud") for e in envs
    ]
    empty = aggregate(START, END, asked, {})
    assert empty.up_kwh == 0.0 and empty.confidence is None and len(empty.missing) == 2
    with pytest.raises(ValueError, match="differs from the request"):
        aggregate(START, datetime(2025, 5, 14, 13, 0, tzinfo=TOKYO), asked, envs)
