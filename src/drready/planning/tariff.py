"""Time-of-use electricity tariffs: the price signal a plan minimises (D5).

A tariff is a list of daily periods, each a half-open local-time range with a price in yen/kWh.
Periods may wrap midnight (23:00–07:00). Every 30-minute slot of the day must be covered
exactly once; otherwise the tariff is refused with the uncovered or doubly covered time named.

The default is an illustrative night-time tariff of the kind EcoCutes are sold with (cheap
23:00–07:00, dearer by day). Its prices are round figures, not any retailer's price list:
real tariffs are inputs (``Tariff.model_validate_json``).
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

SLOTS_PER_DAY = 48


class TariffPeriod(BaseModel):
    """One price period of a day, ``start`` inclusive to ``end`` exclusive (local time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    price_yen_per_kwh: float = Field(ge=0.0, le=1000.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _aligned(self) -> TariffPeriod:
        for name, t in (("start", self.start), ("end", self.end)):
            if t.minute not in (0, 30) or t.second or t.microsecond:
                raise ValueError(f"{name} must be on a 30-minute boundary (hh:00 or hh:30)")
        if self.start == self.end:
            raise ValueError("start and end must differ (a period covers at least one slot)")
        return self

    def slot_indices(self) -> list[int]:
        """Slot indices (0 = 00:00–00:30) covered by this period."""
        a = self.start.hour * 2 + self.start.minute // 30
        b = self.end.hour * 2 + self.end.minute // 30
        if b <= a:  # wraps midnight (end 00:00 is midnight of the next day)
            b += SLOTS_PER_DAY
        return [i % SLOTS_PER_DAY for i in range(a, b)]


class Tariff(BaseModel):
    """A daily time-of-use tariff."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    periods: tuple[TariffPeriod, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _covers_day_once(self) -> Tariff:
        count = np.zeros(SLOTS_PER_DAY, dtype=int)
        for p in self.periods:
            count[p.slot_indices()] += 1
        bad = np.flatnonzero(count != 1)
        if bad.size:
            i = int(bad[0])
            what = "uncovered" if count[i] == 0 else "covered more than once"
            raise ValueError(f"periods: {i // 2:02d}:{30 * (i % 2):02d} is {what}")
        return self

    def slot_prices(self) -> npt.NDArray[np.float64]:
        """Price of each of the 48 slots of a day [yen/kWh]."""
        out = np.empty(SLOTS_PER_DAY)
        for p in self.periods:
            out[p.slot_indices()] = p.price_yen_per_kwh
        return out

    def prices_for(self, slot_starts: list[datetime]) -> npt.NDArray[np.float64]:
        """Price for each slot start (aware datetimes, read in their own local time)."""
        day = self.slot_prices()
        return np.array([day[s.hour * 2 + s.minute // 30] for s in slot_starts])


NIGHT_TOU = Tariff(
    name="illustrative night-time TOU (23–07 h cheap)",
    periods=(
        TariffPeriod(start=time(23, 0), end=time(7, 0), price_yen_per_kwh=27.0),
        TariffPeriod(start=time(7, 0), end=time(23, 0), price_yen_per_kwh=38.0),
    ),
)
"""Default tariff: illustrative round prices, shaped like the night plans EcoCutes use."""

SOLAR_DAYTIME_TOU = Tariff(
    name="illustrative daytime-solar TOU (10–15 h cheapest)",
    periods=(
        TariffPeriod(start=time(23, 0), end=time(7, 0), price_yen_per_kwh=30.0),
        TariffPeriod(start=time(7, 0), end=time(10, 0), price_yen_per_kwh=38.0),
        TariffPeriod(start=time(10, 0), end=time(15, 0), price_yen_per_kwh=22.0),
        TariffPeriod(start=time(15, 0), end=time(23, 0), price_yen_per_kwh=40.0),
    ),
)
"""A tariff that rewards daytime heating (solar-surplus hours), for up-DR studies."""

FLAT_RATE = Tariff(
    name="illustrative flat rate (31 yen/kWh all day)",
    periods=(
        TariffPeriod(start=time(0, 0), end=time(12, 0), price_yen_per_kwh=31.0),
        TariffPeriod(start=time(12, 0), end=time(0, 0), price_yen_per_kwh=31.0),
    ),
)
"""A flat-rate household (the demo's): it heats before it uses hot water, evenings included,
so it has heating to shed in an evening down-DR window (a night-rate household has none)."""

TARIFFS: dict[str, Tariff] = {"night": NIGHT_TOU, "flat": FLAT_RATE, "solar": SOLAR_DAYTIME_TOU}
"""The named tariffs a simulated party can be given (``--tariff`` of ``drready cloud serve``
and ``drready echonet serve``)."""
