"""Soak: ``drready stack up`` over two simulated days at the fastest shared clock, bounded to
about three minutes of wall time (issue 11 item 7).

Every party its own process, as a user runs it (``--time-scale 1000``: a day in 86 s). The
stack comes up at 19:00 the evening before day 1 (40 s), runs day 1 and day 2 to 21:00, and
stops (``--duration 185``). Checked from what the parties themselves report:

* every order of both days was placed through the servicer's API and answered (a status past
  ``requested``/``collecting``/``dispatched``);
* no report lost: every DR event and potential request on the VTN was answered by each
  resource it targets (the stack's read-only observer), and every resource that accepted an
  order has a power (F5) or meter reading for every slot of its window (the servicer's
  ``measured_slots``);
* memory: each process's resident set (``VmRSS`` of its process tree, sampled at 21:00 of each
  simulated day, after the day's last window) grows by less than 20 % from day 1 to day 2;
* zero DR-caused hot-water shortages;
* a clean exit: every child exits 0 on SIGTERM, none is killed, no process, listening port or
  ECHONET Lite socket is left.

ECHONET Lite addresses 127.0.11.x and ports of its own, so a demo running alongside on
127.0.0.x does not answer for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drready.domain import SLOT
from drready.sim.stack_orders import ANSWERED_STATUSES

#: Largest growth of a process's RSS from the first simulated day to the second.
RSS_GROWTH_MAX = 0.20
DURATION_S = 185


# Out of the default suite (pyproject: -m 'not acceptance'; run it with `pytest -m acceptance`)
# until it passes. It waits for: DR-caused shortages exposed by the cloud and the nodes (the run
# reports null), the maker cloud's down-DR on the stack's tariff (10 % of accepted delivered), and
# a battery node command; the home nodes and the gateway now follow DRREADY_CLOCK and exit 0.
@pytest.mark.acceptance
def test_two_simulated_days_without_loss_leak_or_leftovers(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "drready.cli", "stack", "up", "--time-scale", "1000"]
    command += ["--duration", str(DURATION_S), "--json", "--vtn-port", "0", "--api-port", "0"]
    command += ["--echonet-base", "127.0.11.2"]
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=DURATION_S + 60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    wall_s = time.monotonic() - started
    print(f"soak: {wall_s:.0f} s wall; stderr:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    print(json.dumps({k: v for k, v in report.items() if k != "orders"}, indent=1)[:8000])
    for order in report["orders"]:
        print({k: v for k, v in order.items() if k != "figures"})
    assert report["error"] is None, report["error"]
    assert report["stopped_by"] == "duration"
    start = datetime.fromisoformat(report["simulated_start"])
    day1, day2 = start.date().isoformat(), (start + timedelta(days=1)).date().isoformat()
    assert report["simulated_hours"] >= 39.0  # day 1 06:00 → day 2 21:00

    # every order of both days answered: placed and answered, or — only when the portfolio
    # declared nothing to sell in the window — not placed; never lost for want of a potential
    # or refused
    orders = report["orders"]
    assert [(o["window_start"][:10], o["direction"]) for o in orders] == [
        (day1, "up"),
        (day1, "down"),
        (day2, "up"),
        (day2, "down"),
    ]
    for order in orders:
        if order["id"] is None:
            assert order["given_up_because"] == "nothing_to_sell", order
        else:
            assert order["status"] in ANSWERED_STATUSES, order
    for day in (day1, day2):
        assert any(o["id"] for o in orders if o["window_start"].startswith(day)), day

    # no report lost: on the VTN, and F5 for every slot of every accepted window
    assert report["unanswered_events"] == []
    for order in orders:
        window = datetime.fromisoformat(order["window_end"]) - datetime.fromisoformat(
            order["window_start"]
        )
        for resource in order["figures"].get("resources", []):
            if resource["accepted_kwh"] > 0:
                assert resource["measured_slots"] == window // SLOT, (order["key"], resource)

    # memory of every process, day 1 → day 2
    growth = {}
    for proc in report["processes"]:
        rss = proc["rss_kb"]
        assert day1 in rss and day2 in rss, (proc["name"], rss)
        growth[proc["name"]] = rss[day2] / rss[day1] - 1.0
    print("RSS growth day 1 → day 2:", {k: f"{v:+.1%}" for k, v in growth.items()})
    assert all(g < RSS_GROWTH_MAX for g in growth.values()), growth

    assert report["dr_caused_shortages"] == 0

    # clean exit
    bad = [p for p in report["processes"] if p["exit_code"] != 0 or p["killed"] or p["early"]]
    assert bad == []
    assert report["left_behind"] == {"processes": [], "tcp_listening": [], "udp_bound": []}
    assert done.returncode == 0
