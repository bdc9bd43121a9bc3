"""What a simulated party says about its own units when asked by the operator, not the protocol:
its hot-water shortages (湯切れ) and those DR caused, in a small JSON status file (issue 11
items 5 and 7: ``drready stack up`` reports ``dr_caused_shortages`` from what the parties
themselves measured).

A shortage is DR-caused when a unit had more shortage steps than its **no-DR twin**: the same
household — same draws, same clock, same tariff — never asked anything (the demo's rule,
:mod:`drready.sim.day_demo`). The ECHONET Lite node (``drready echonet serve``) runs its heater
beside such a twin (:func:`heater_status`); the maker cloud's live fleet carries a twin fleet
(:class:`drready.cloud.live.LiveFleet`, ``no_dr_twin``). Neither is anything a real device can
know — a real unit has no twin — which is why it is a status file of the simulation and not a
property on the wire.

:func:`write_status` replaces the file atomically (a reader sees the old or the new status,
never half of one) with mode 0600; :func:`read_status` returns None for a missing or unreadable
file so that a reader can say what it lacks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # the maker cloud imports this module and needs no heater
    from drready.device.heater import SimulatedWaterHeater

__all__ = ["PartyStatus", "heater_status", "read_status", "write_status"]


class PartyStatus(BaseModel):
    """A party's shortage counters (see the module)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    party: Literal["water-heater", "cloud"]
    at: AwareDatetime = Field(description="The party's simulated time of the counts.")
    units: int = Field(ge=0)
    shortage_steps: int = Field(ge=0, description="Simulated steps with a shortage, all units.")
    twin_shortage_steps: int | None = Field(
        default=None, ge=0, description="The same for the no-DR twins (None: no twin)."
    )
    dr_caused_shortages: int | None = Field(
        default=None,
        ge=0,
        description="Units with more shortage steps than their no-DR twin (None: no twin).",
    )
    final: bool = Field(default=False, description="Written as the process stopped.")


def heater_status(
    unit: SimulatedWaterHeater, twin: SimulatedWaterHeater | None, *, final: bool = False
) -> PartyStatus:
    """The counters of one node's heater against its no-DR ``twin`` (both advanced to now)."""
    mine = unit.shortage_count
    theirs = None if twin is None else twin.shortage_count
    return PartyStatus(
        party="water-heater",
        at=unit.now,
        units=1,
        shortage_steps=mine,
        twin_shortage_steps=theirs,
        dr_caused_shortages=None if theirs is None else int(mine > theirs),
        final=final,
    )


def write_status(path: Path, status: PartyStatus) -> None:
    """Replace ``path`` with ``status`` as JSON, atomically, mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(status.model_dump_json() + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_status(path: Path) -> PartyStatus | None:
    """The status in ``path``; None if it is missing or not a valid status."""
    try:
        return PartyStatus.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None
