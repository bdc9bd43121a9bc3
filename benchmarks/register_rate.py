"""How fast the maker cloud registers its units at a VTN (issue 11 item 3, ``--mode units``):
:meth:`drready.cloud.service.MakerCloud.register` — the same code ``drready cloud serve --mode
units`` runs, batch after batch — against a real ``drready vtn serve`` child process on
loopback (:class:`drready.sim.processes.VtnProcess`: TLS, SQLite, ``--vtn-workers`` uvicorn
workers), for a fleet of ``--units`` names only (no planning: registration alone is timed).

Prints one table row per run: units, VTN workers, seconds, units per second, and the CPU time
per registered unit of the cloud's process and of the VTN's workers (from ``/proc``: on a
machine other work loads, the CPU per request is the steadier figure). Everything lives
in a temporary directory outside the repository, removed afterwards. Run it from the
repository root::

    .venv/bin/python benchmarks/register_rate.py --units 5000 --vtn-workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from drready.cloud.service import MakerCloud
from drready.domain.ids import DeviceId
from drready.openadr import profile
from drready.openadr.models import to_wire
from drready.openadr.ven import VenClient
from drready.security.tls import client_ssl_context
from drready.sim.processes import VtnProcess


class _NamesOnly:
    """The part of a fleet that registration reads: its units' names and rated inputs."""

    def __init__(self, units: int) -> None:
        self.names = [
            str(DeviceId(maker_code="000005", serial=f"C{i + 1:07d}")) for i in range(units)
        ]
        self._index = {n: i for i, n in enumerate(self.names)}
        self.size = units

    def rated_inputs_kw(self) -> Any:
        return np.full(self.size, 1.5)

    def index_of(self, name: str) -> int | None:
        return self._index.get(name)


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children (the VTN's supervisor
    and workers), from ``/proc`` (Linux)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for child in [str(pid), *Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


async def _register(vtn: VtnProcess, units: int) -> tuple[float, int]:
    ven = VenClient(
        vtn.base_url,
        "maker-cloud",
        vtn.secrets["maker-cloud"],
        verify=client_ssl_context(str(vtn.ca_file)),
        ven_name="maker-cloud",
        timeout_s=60.0,
    )
    cloud = MakerCloud(_NamesOnly(units), ven, mode="units")  # type: ignore[arg-type]
    started = time.perf_counter()
    batches = 0
    while not cloud.registered:
        print(" ", *await cloud.register(), file=sys.stderr)
        batches += 1
    took = time.perf_counter() - started
    assert len(await ven.resources()) == units
    await ven.close()
    return took, batches


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=5000)
    p.add_argument("--vtn-workers", type=int, default=2)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="drready-register-") as tmp:
        clients = {"dr-servicer": "bl", "maker-cloud": "ven"}
        with VtnProcess(Path(tmp) / "vtn", clients, workers=args.vtn_workers) as vtn:
            with vtn.http_client("dr-servicer") as http:
                http.post("/programs", json=to_wire(profile.program())).raise_for_status()
            vtn_pid = vtn._proc.pid if vtn._proc is not None else os.getpid()
            vtn_cpu, own_cpu = _tree_cpu_s(vtn_pid), time.process_time()
            took, batches = asyncio.run(_register(vtn, args.units))
            vtn_cpu, own_cpu = _tree_cpu_s(vtn_pid) - vtn_cpu, time.process_time() - own_cpu
    print("| units | VTN workers | batches | register s | units/s | CPU ms/unit: cloud | VTN |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rate = args.units / took
    cpu = f"{own_cpu / args.units * 1e3:.2f} | {vtn_cpu / args.units * 1e3:.2f}"
    print(f"| {args.units} | {args.vtn_workers} | {batches} | {took:.1f} | {rate:.0f} | {cpu} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
