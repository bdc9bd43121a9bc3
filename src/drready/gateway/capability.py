"""What a water heater on the home LAN can do, from its property maps and maker code (C1, F1–F6).

The gateway serves two levels of unit through the same upstream profile:

* ``dr-ready`` — the unit speaks drready's proposed maker-specific EPCs 0xF0–0xF4 (amount, any
  window, down-DR, the plan). 0xF0–0xFF is each maker's own range, so the gateway uses them only
  when **both** are confirmed: the maker code (0x8A) is one of the makers known to implement the
  proposal (:data:`DEFAULT_EXTENSION_MAKERS`, extended per installation), **and** the property
  maps list them with the proposal's access rules (0xF0 and 0xF2 settable and readable, 0xF1,
  0xF3, 0xF4 readable). A unit of another maker that happens to have 0xF0–0xF4 is not touched
  there.
* ``standard`` — the installed base: the standard energy shift of class 0x026B (participation
  0xC7 and shift time 1 0xCA settable, expected energy 0xCB readable; 0xC9 shift times, 0xCD,
  0xCE/0xCF where offered). See :mod:`drready.gateway.standard`.
* ``unusable`` — neither (with the reason), e.g. a unit whose 0x9E does not list 0xC7/0xCA.

:func:`classify` is pure; the link reads the maps (0x9D/0x9E/0x9F, plus 0x8A and 0xC9) and keeps
the result for :data:`CAPABILITY_TTL`, reading again sooner when the unit announces its instance
list again (it came back) or refuses an EPC the maps promised. Maps that cannot be read are
asked again after :data:`MAP_RETRY_DELAYS_S` (15 s, then 60 s, then every 60 s: open-source
controllers report that property maps need retries — echonetlite2mqtt rescans at 15 s and 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

__all__ = [
    "CAPABILITY_TTL",
    "DEFAULT_EXTENSION_MAKERS",
    "EXTENSION_GET",
    "EXTENSION_SET",
    "MAP_RETRY_DELAYS_S",
    "STANDARD_GET",
    "STANDARD_SET",
    "Capability",
    "Level",
    "classify",
    "map_retry_delay_s",
]

DEFAULT_EXTENSION_MAKERS: Final = frozenset({"000000", "000005"})
"""Maker codes (6 hex digits) whose units implement drready's proposed 0xF0–0xF4: the codes
drready's simulated units use (the reference implementation of the proposal). A maker adopting
the proposal is added per installation (``drready gateway serve --extension-maker CODE``)."""
EXTENSION_GET: Final = frozenset({0xF0, 0xF1, 0xF2, 0xF3, 0xF4})
EXTENSION_SET: Final = frozenset({0xF0, 0xF2})
STANDARD_GET: Final = frozenset({0xCB})
STANDARD_SET: Final = frozenset({0xC7, 0xCA})
CAPABILITY_TTL: Final = timedelta(hours=1)
"""How long a unit's capability is kept before its maps are read again."""
MAP_RETRY_DELAYS_S: Final = (15.0, 60.0)
"""Waits before reading property maps again after the 1st, 2nd (and later) failure [s]."""


class Level(StrEnum):
    """What the gateway can do with a unit."""

    DR_READY = "dr-ready"
    STANDARD = "standard"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class Capability:
    """A unit's level, the maps it was judged from and, when unusable, why."""

    level: Level
    maker_code: str
    get_map: frozenset[int]
    set_map: frozenset[int]
    announce_map: frozenset[int]
    energy_shifts: int
    reason: str | None = None

    @property
    def measured_power(self) -> bool:
        """Whether F5 can be measured (0x84 and 0x85 readable)."""
        return {0x84, 0x85} <= self.get_map


def _epcs(epcs: frozenset[int]) -> str:
    return ", ".join(f"0x{e:02X}" for e in sorted(epcs))


def classify(
    maker_code: str,
    get_map: frozenset[int],
    set_map: frozenset[int],
    announce_map: frozenset[int] = frozenset(),
    energy_shifts: int | None = None,
    extension_makers: frozenset[str] = DEFAULT_EXTENSION_MAKERS,
) -> Capability:
    """The level a unit reaches (see the module).

    >>> classify("000005", frozenset({0xCB, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4}),
    ...          frozenset({0xC7, 0xCA, 0xF0, 0xF2})).level
    <Level.DR_READY: 'dr-ready'>
    >>> classify("0000AA", frozenset({0xCB, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4}),
    ...          frozenset({0xC7, 0xCA, 0xF0, 0xF2})).level
    <Level.STANDARD: 'standard'>
    """
    maker = maker_code.upper()
    shifts = energy_shifts if energy_shifts in (1, 2) else (2 if 0xCD in set_map else 1)
    extension = get_map >= EXTENSION_GET and set_map >= EXTENSION_SET
    standard = set_map >= STANDARD_SET and get_map >= STANDARD_GET
    level, reason = Level.UNUSABLE, None
    if extension and maker in {m.upper() for m in extension_makers}:
        level = Level.DR_READY
    elif standard:
        level = Level.STANDARD
    else:
        missing = (STANDARD_SET - set_map, STANDARD_GET - get_map)
        reason = (
            "no standard energy shift: "
            + "; ".join(
                part
                for part in (
                    f"0x9E lacks {_epcs(missing[0])}" if missing[0] else "",
                    f"0x9F lacks {_epcs(missing[1])}" if missing[1] else "",
                )
                if part
            )
            + (
                f" (0xF0–0xF4 present, but maker {maker} is not known to implement drready's "
                "proposal)"
                if extension
                else ""
            )
        )
    return Capability(level, maker, get_map, set_map, announce_map, shifts, reason)


def map_retry_delay_s(failures: int) -> float:
    """Wait before the next try after ``failures`` (≥ 1) failed reads of the maps [s].

    >>> [map_retry_delay_s(k) for k in (1, 2, 3)]
    [15.0, 60.0, 60.0]
    """
    if failures < 1:
        raise ValueError(f"failures must be ≥ 1, got {failures}")
    return MAP_RETRY_DELAYS_S[min(failures, len(MAP_RETRY_DELAYS_S)) - 1]
