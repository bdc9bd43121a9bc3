"""Self-contained HTML report of the E1 DR-potential scorecard (E1, F1).

One file, no external assets: the plots are matplotlib PNGs embedded as base64 ``<img>`` tags —
declared vs oracle potential per method (one point per household and day, both directions), and
deliverability by season per method and window — followed by the scorecard's tables (overall,
by season, by household size, the shiftable share of the daily boil-up) and the PASS/FAIL
targets. matplotlib runs with the non-interactive Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from drready.evaluation.scorecard import SEASONS, Scorecard, window_label

_MAX_POINTS = 4000
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def scatter_png(sc: Scorecard) -> str:
    """Declared vs oracle per method (base64 PNG)."""
    n = len(sc.methods)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, m in zip(axes[0], sc.methods, strict=True):
        top = 0.0
        for j, w in enumerate(sc.windows):
            o = sc.outcomes[(m, j)]
            idx = np.arange(o.declared_kwh.size)
            if idx.size > _MAX_POINTS:
                idx = rng.choice(idx, _MAX_POINTS, replace=False)
            ax.scatter(
                o.oracle_kwh[idx],
                o.declared_kwh[idx],
                s=4,
                alpha=0.35,
                color=_COLORS[j % len(_COLORS)],
                label=window_label(w),
            )
            top = max(top, float(o.oracle_kwh.max(initial=0)), float(o.declared_kwh.max(initial=0)))
        ax.plot([0, top], [0, top], color="k", lw=0.8, label="declared = oracle")
        ax.set_title(m)
        ax.set_xlabel("oracle potential [kWh]")
        ax.set_ylabel("declared [kWh]")
        ax.legend(fontsize=7, markerscale=3)
    return _png(fig)


def deliverability_png(sc: Scorecard) -> str:
    """Deliverability by season, one bar per method, one panel per window (base64 PNG)."""
    seasons = [s for s in SEASONS if s in sc.seasons]
    season = sc.case_season
    nw = len(sc.windows)
    fig, axes = plt.subplots(1, nw, figsize=(5.5 * nw, 3.8), squeeze=False)
    width = 0.8 / max(len(sc.methods), 1)
    x = np.arange(len(seasons))
    for ax, (j, w) in zip(axes[0], enumerate(sc.windows), strict=True):
        for i, m in enumerate(sc.methods):
            o = sc.outcomes[(m, j)]
            vals = []
            for s in seasons:
                mask = season == s
                asked = o.asked(0.1) & mask
                ok = o.delivered_kwh[asked] >= 0.95 * o.declared_kwh[asked]
                vals.append(100 * float(ok.mean()) if asked.any() else 0.0)
            ax.bar(x + i * width, vals, width, label=m, color=_COLORS[i % len(_COLORS)])
        ax.axhline(95, color="k", ls="--", lw=0.8)
        ax.set_xticks(x + width * (len(sc.methods) - 1) / 2, seasons)
        ax.set_ylim(0, 105)
        ax.set_ylabel("deliverability [%]")
        ax.set_title(window_label(w))
        ax.legend(fontsize=7)
    return _png(fig)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _kwh(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_html(sc: Scorecard, data: dict[str, Any]) -> str:
    """The report as one HTML string."""
    cfg = data["config"]
    overall = []
    for m, per in data["results"].items():
        for label, entry in per.items():
            s = entry["overall"]
            overall.append(
                [
                    m,
                    label,
                    str(s["asked"]),
                    _kwh(s["declared_kwh"]),
                    _kwh(s["delivered_kwh"]),
                    _kwh(s["oracle_kwh"]),
                    _pct(s["deliverability"]),
                    _pct(s["declared_over_oracle"]),
                    str(s["dr_caused_shortages"]),
                ]
            )
    parts = [
        "<h2>Overall</h2>",
        _table(
            [
                "method",
                "window",
                "asked",
                "declared kWh",
                "delivered kWh",
                "oracle kWh",
                "deliverable",
                "declared/oracle",
                "DR-caused shortages",
            ],
            overall,
        ),
        "<p>kWh are means per household and day; deliverable = share of requests (declared ≥ "
        "0.1 kWh) delivering ≥ 95 % of the declared amount.</p>",
        "<h2>Declared vs oracle</h2>",
        f'<img alt="declared vs oracle" src="data:image/png;base64,{scatter_png(sc)}">',
        "<h2>Deliverability by season</h2>",
        f'<img alt="deliverability by season" src="data:image/png;base64,'
        f'{deliverability_png(sc)}">',
    ]
    for group, title in (("by_season", "season"), ("by_persons", "household size")):
        rows = []
        for m, per in data["results"].items():
            for label, entry in per.items():
                for key, v in entry[group].items():
                    rows.append(
                        [
                            m,
                            label,
                            key,
                            _kwh(v["declared_kwh"]),
                            _kwh(v["oracle_kwh"]),
                            _pct(v["deliverability"]),
                            _pct(v["declared_over_oracle"]),
                            str(v["dr_caused_shortages"]),
                        ]
                    )
        parts.append(f"<h2>By {title}</h2>")
        parts.append(
            _table(
                [
                    "method",
                    "window",
                    title,
                    "declared kWh",
                    "oracle kWh",
                    "deliverable",
                    "declared/oracle",
                    "DR-caused shortages",
                ],
                rows,
            )
        )
    for label, per_method in data["shiftable_share"].items():
        rows = []
        for name, per_season in per_method.items():
            for s, per_p in per_season.items():
                rows.append([name, s, *(_pct(per_p[p]) for p in ("1", "2", "3", "4", "all"))])
        parts.append(f"<h2>Shiftable share of the daily boil-up into {html.escape(label)}</h2>")
        parts.append(_table(["method", "season", "1 p", "2 p", "3 p", "4 p", "all"], rows))
    trows = [
        [
            "PASS" if t["passed"] else "FAIL",
            t["method"],
            t["window"],
            t["name"],
            "nan" if t["value"] is None else f"{t['value']:.3f}",
            f"{t['comparison']} {t['threshold']:.3f}",
        ]
        for t in data["targets"]
    ]
    parts.append("<h2>Targets</h2>")
    parts.append(_table(["verdict", "method", "window", "target", "value", "threshold"], trows))
    title = (
        f"E1 DR-potential scorecard — {cfg['households']} households × {len(cfg['days'])} days, "
        f"seed {cfg['seed']}"
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Methods: {html.escape(', '.join(sc.methods))}. Runtime {data['runtime_s']:.1f} s. "
        f"Overall: {'PASS' if data['passed'] else 'FAIL'}.</p>"
        + "\n".join(parts)
        + "</body></html>"
    )


def write_html(sc: Scorecard, data: dict[str, Any], path: Path) -> Path:
    """Write :func:`render_html` to ``path``."""
    path.write_text(render_html(sc, data), encoding="utf-8")
    return path
