"""A servicer process that dies (SIGKILL) in the middle of a dispatch, for the restart test.

Run as ``python -m tests.servicer_crash_child CONFIG.json``: it opens the servicer's store, and
dispatches the target over the potential request named in the config, but kills itself with
SIGKILL right after the VTN created its ``kill_after``-th DR event — after the decision was
stored and some events exist, before the rest were sent or marked sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import datetime
from typing import Any

from drready.domain import Direction
from drready.openadr.models import Event, EventCreate
from drready.servicer.bl import BlClient
from drready.servicer.core.dispatch import EnergyTarget
from drready.servicer.service import Servicer
from drready.servicer.storage.store import ServicerStore


class DyingBl(BlClient):
    def __init__(self, *args: Any, kill_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kill_after = kill_after
        self.created = 0

    async def create_event(self, event: EventCreate) -> Event:
        created = await super().create_event(event)
        if event.event_name and event.event_name.startswith("drready-assignment-"):
            self.created += 1
            if self.created >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return created


async def main(cfg: dict[str, Any]) -> None:
    store = ServicerStore.open(cfg["store"])
    now = datetime.fromisoformat(cfg["now"])
    async with DyingBl(
        cfg["url"], "dr-servicer", cfg["secret"], verify=cfg["ca"], kill_after=cfg["kill_after"]
    ) as bl:
        servicer = Servicer(bl, store, clock=lambda: now, routes=cfg["routes"])
        await servicer.start()
        await servicer.dispatch(
            "crash",
            EnergyTarget(direction=Direction.UP, energy_kwh=cfg["target_kwh"]),
            cfg["request_id"],
        )


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        asyncio.run(main(json.load(f)))
    sys.exit(3)  # reaching here means the kill did not happen
