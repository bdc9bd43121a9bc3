"""Pictures: a unit's heating plan and a fleet's power against its baseline (F4, U2).

matplotlib with the non-interactive Agg backend, so it works on servers and in CI.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

from drready.domain import HeatingPlan


def plot_unit_plan(plan: HeatingPlan, baseline: HeatingPlan, path: Path) -> Path:
    """Planned power (bars) and stored heat (line) of a DR plan against the baseline."""
    starts = mdates.date2num([s.start for s in plan.slots])
    tz = plan.slots[0].start.tzinfo
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.5 / 24 * 0.9
    ax.bar(
        starts,
        [s.power_kw for s in baseline.slots],
        width=width,
        align="edge",
        color="#bbbbbb",
        label="baseline power",
    )
    ax.step(
        starts,
        [s.power_kw for s in plan.slots],
        where="post",
        color="#d62728",
        label="DR plan power",
    )
    ax.set_ylabel("electric power [kW]")
    ax2 = ax.twinx()
    ax2.plot(
        starts,
        [s.stored_heat_kwh for s in plan.slots],
        color="#1f77b4",
        label="DR plan stored heat",
    )
    ax2.plot(
        starts,
        [s.stored_heat_kwh for s in baseline.slots],
        color="#1f77b4",
        ls=":",
        label="baseline stored heat",
    )
    ax2.set_ylabel("stored heat above mains [kWh]")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.set_title(f"Heating plan of {plan.device_id} (honours {', '.join(plan.honours) or '—'})")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_fleet_power(
    starts: list[datetime],
    series_kw: dict[str, npt.NDArray[np.float64]],
    windows: list[tuple[str, datetime, datetime]],
    path: Path,
    title: str,
) -> Path:
    """Fleet power per slot for several named series, with DR windows shaded."""
    fig, ax = plt.subplots(figsize=(11, 4.8))
    tz = starts[0].tzinfo
    x = mdates.date2num(starts)
    styles = ["-", "--", "-", ":"]
    colors = ["#7f7f7f", "#7f7f7f", "#d62728", "#d62728"]
    for k, (name, kw) in enumerate(series_kw.items()):
        ax.step(x, kw, where="post", ls=styles[k % 4], color=colors[k % 4], label=name)
    for label, a, b in windows:
        xa, xb = mdates.date2num([a, b])
        ax.axvspan(xa, xb, alpha=0.12, color="#2ca02c" if label.startswith("up") else "#1f77b4")
        ax.text(xa, ax.get_ylim()[1] * 0.95, label, fontsize=8, va="top")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.set_ylabel("fleet electric power [kW]")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
