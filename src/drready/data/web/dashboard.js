/* drready DR servicer dashboard: renders a DashboardSnapshot (drready.servicer.web.dashboard).
 *
 * Live page: fetches api/dashboard every <body data-poll-s> seconds and re-renders.
 * Report: reads the snapshot from <script type="application/json" id="dashboard-data">.
 * Charts are plain SVG drawn here (no library, no network). Every value is inserted with
 * textContent, never as HTML. Times are shown in the offset the snapshot was written in
 * (the wall-clock part of the ISO string), whatever the browser's own time zone.
 */
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";
  var ROUTE_NAMES = { gateway: "Gateways (route i)", cloud: "Maker clouds (route ii)", all: "All" };
  var chartSeq = 0;

  function h(tag, attrs, text) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function s(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    });
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return Number(x).toFixed(digits);
  }

  /* A number as text, with its exact value kept in data-value for machines. */
  function num(tag, x, digits, testid, unit) {
    var e = h(tag, { "data-testid": testid, "data-value": x === null ? "" : String(x) });
    e.textContent = fmt(x, digits) + (unit && fmt(x, digits) !== "–" ? unit : "");
    return e;
  }

  function clock(iso) { return iso.slice(11, 16); }
  function clockSec(iso) { return iso.slice(11, 19); }
  function day(iso) { return iso.slice(0, 10); }
  function offset(iso) { var m = /([+-]\d\d:\d\d|Z)$/.exec(iso); return m ? m[1] : ""; }
  function ms(iso) { return Date.parse(iso); }

  function span(startIso, endIso) {
    var end = day(endIso) === day(startIso) ? clock(endIso) : day(endIso) + " " + clock(endIso);
    return day(startIso) + " " + clock(startIso) + "–" + end;
  }

  function ratio(delivered, requested) {
    return requested > 0 ? (100 * delivered) / requested : null;
  }

  /* ---------- charts ---------- */

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    var raw = (hi - lo) / n;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (f) { return f * mag; })
      .filter(function (v) { return v >= raw; })[0];
    var first = Math.floor(lo / step) * step;
    var ticks = [];
    for (var v = first; v <= hi + step * 1e-9; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  /* opts: {testid, title, desc, yLabel, labels: [iso], xEnd: ms | null, step: bool,
   *        series: [{key, name, values, cls}], band: {lo: [], hi: [], name} | null} */
  function lineChart(opts) {
    var W = 640, H = 250, m = { l: 56, r: 14, t: 40, b: 32 };
    var id = "chart-" + (++chartSeq);
    var xs = opts.labels.map(ms);
    var n = xs.length;
    var xEnd = opts.xEnd !== null && opts.xEnd !== undefined ? opts.xEnd
      : (n > 1 ? xs[n - 1] + (xs[n - 1] - xs[n - 2]) : xs[0] + 1800000);
    var x0 = xs[0], x1 = opts.step ? xEnd : xs[n - 1];
    if (!(x1 > x0)) x1 = x0 + 1;
    var lo = 0, hi = 0;  /* the zero line is always shown */
    var lists = opts.series.map(function (sr) { return sr.values; });
    if (opts.band) lists.push(opts.band.lo, opts.band.hi);
    lists.forEach(function (vs) {
      for (var j = 0; j < vs.length; j++) { lo = Math.min(lo, vs[j]); hi = Math.max(hi, vs[j]); }
    });
    var ticks = niceTicks(lo, hi, 5);
    var y0 = ticks[0], y1 = ticks[ticks.length - 1];
    function X(t) { return m.l + ((t - x0) / (x1 - x0)) * (W - m.l - m.r); }
    function Y(v) { return H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b); }

    var svg = s("svg", {
      viewBox: "0 0 " + W + " " + H, class: "chart", role: "img",
      "data-testid": opts.testid, "aria-labelledby": id + "-t " + id + "-d",
    });
    svg.appendChild(s("title", { id: id + "-t" }, opts.title));
    svg.appendChild(s("desc", { id: id + "-d" }, opts.desc));

    var grid = s("g", { class: "grid" });
    ticks.forEach(function (v) {
      grid.appendChild(s("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
      grid.appendChild(s("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" },
        Math.abs(v) < 1e-9 ? "0" : String(+v.toFixed(6))));
    });
    var every = Math.max(1, Math.ceil(n / 8));
    for (var i = 0; i < n; i += every) {
      grid.appendChild(s("text", { x: X(xs[i]), y: H - m.b + 16, "text-anchor": "middle" },
        clock(opts.labels[i])));
    }
    grid.appendChild(s("text", {
      x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
      transform: "rotate(-90 14 " + (m.t + H - m.b) / 2 + ")",
    }, opts.yLabel));
    svg.appendChild(grid);
    svg.appendChild(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: Y(0), y2: Y(0) }));

    if (opts.band) {
      var up = xs.map(function (t, k) { return X(t) + "," + Y(opts.band.hi[k]); });
      var down = xs.map(function (t, k) { return X(t) + "," + Y(opts.band.lo[k]); }).reverse();
      svg.appendChild(s("polygon", {
        class: "band", points: up.concat(down).join(" "), "data-band": opts.band.name,
      }));
    }

    opts.series.forEach(function (sr) {
      var d = "";
      sr.values.forEach(function (v, k) {
        if (opts.step) {
          var right = k + 1 < n ? xs[k + 1] : xEnd;
          d += (k === 0 ? "M" : "V") + " " + (k === 0 ? X(xs[k]) + " " : "") + Y(v).toFixed(2) +
            " H " + X(right).toFixed(2) + " ";
        } else {
          d += (k === 0 ? "M " : "L ") + X(xs[k]).toFixed(2) + " " + Y(v).toFixed(2) + " ";
        }
      });
      svg.appendChild(s("path", { class: "series " + sr.cls, d: d.trim(), "data-series": sr.key },
        null)).appendChild(s("title", null, sr.name));
    });

    var legend = s("g", { class: "legend" });
    var lx = m.l;
    opts.series.concat(opts.band ? [{ name: opts.band.name, cls: "band", key: "band" }] : [])
      .forEach(function (sr) {
        legend.appendChild(sr.key === "band"
          ? s("rect", { class: "band", x: lx, y: 12, width: 18, height: 10 })
          : s("line", { class: "series " + sr.cls, x1: lx, x2: lx + 18, y1: 17, y2: 17 }));
        legend.appendChild(s("text", { x: lx + 22, y: 21 }, sr.name));
        lx += 40 + 7 * sr.name.length;
      });
    svg.appendChild(legend);
    return svg;
  }

  function dataTable(caption, headers, rows) {
    var d = h("details", { class: "data" });
    d.appendChild(h("summary", null, "Data: " + caption));
    var t = h("table", { class: "num-table" });
    t.appendChild(h("caption", null, caption));
    var tr = h("tr");
    headers.forEach(function (x) { tr.appendChild(h("th", { scope: "col" }, x)); });
    t.appendChild(h("thead")).appendChild(tr);
    var body = t.appendChild(h("tbody"));
    rows.forEach(function (r) {
      var row = h("tr");
      r.forEach(function (c) { row.appendChild(h("td", null, c)); });
      body.appendChild(row);
    });
    d.appendChild(t);
    return d;
  }

  /* ---------- sections ---------- */

  function card(label, x, digits, testid, unit, note) {
    var c = h("div", { class: "card" });
    c.appendChild(h("div", { class: "card-label" }, label));
    c.appendChild(num("div", x, digits, testid, unit)).classList.add("card-value");
    if (note) c.appendChild(h("div", { class: "card-note" }, note));
    return c;
  }

  function renderSummary(snap) {
    var body = clear(document.getElementById("summary-body"));
    var total = snap.summary.filter(function (r) { return r.route === "all"; })[0];
    if (!total && snap.summary.length) {
      total = { requested_kwh: 0, accepted_kwh: 0, delivered_kwh: 0, shortages: 0 };
      snap.summary.forEach(function (r) {
        ["requested_kwh", "accepted_kwh", "delivered_kwh", "shortages"].forEach(function (k) {
          total[k] += r[k];
        });
      });
    }
    snap.summary.forEach(function (r) {
      var tr = h("tr", { "data-testid": "summary-row", "data-route": r.route });
      tr.appendChild(h("th", { scope: "row" }, ROUTE_NAMES[r.route] || r.route));
      var p = "summary-" + r.route + "-";
      tr.appendChild(num("td", r.requested_kwh, 1, p + "requested_kwh"));
      tr.appendChild(num("td", r.accepted_kwh, 1, p + "accepted_kwh"));
      tr.appendChild(num("td", r.delivered_kwh, 1, p + "delivered_kwh"));
      tr.appendChild(num("td", ratio(r.delivered_kwh, r.requested_kwh), 1, p + "delivered_pct", " %"));
      tr.appendChild(num("td", r.shortages, 0, p + "shortages"));
      body.appendChild(tr);
    });
    var cards = clear(document.getElementById("cards"));
    if (total) {
      cards.appendChild(card("Requested 要請量", total.requested_kwh, 1, "total-requested_kwh", " kWh"));
      cards.appendChild(card("Accepted 受諾量", total.accepted_kwh, 1, "total-accepted_kwh", " kWh"));
      cards.appendChild(card("Delivered 実績", total.delivered_kwh, 1, "total-delivered_kwh", " kWh"));
      cards.appendChild(card("Delivered ÷ requested", ratio(total.delivered_kwh, total.requested_kwh),
        1, "total-delivered_pct", " %"));
      cards.appendChild(card("Shortages 不足", total.shortages, 0, "total-shortages", ""));
    }
    if (snap.tracking) {
      cards.appendChild(card("Tracking within tolerance 追従率",
        100 * snap.tracking.stats.share_within_tolerance, 1, "total-tracking_pct", " %",
        snap.tracking.stats_without_f5
          ? "without F5: " + fmt(100 * snap.tracking.stats_without_f5.share_within_tolerance, 1) + " %"
          : null));
    }
  }

  function renderWindows(snap) {
    var box = clear(document.getElementById("windows"));
    if (!snap.windows.length) box.appendChild(h("p", { class: "empty" }, "No DR window yet."));
    snap.windows.forEach(function (w, i) {
      var fig = h("figure", { class: "window-card", "data-testid": "window", "data-index": i });
      var p = "window-" + i + "-";
      fig.appendChild(h("figcaption", { "data-testid": p + "label" }, w.label));
      var dl = h("dl", { class: "figures" });
      [["Potential", "potential_kwh", 1, " kWh"], ["Requested", "requested_kwh", 1, " kWh"],
       ["Accepted", "accepted_kwh", 1, " kWh"], ["Delivered", "delivered_kwh", 1, " kWh"],
       ["Shortages", "shortages", 0, ""]].forEach(function (f) {
        var div = h("div");
        div.appendChild(h("dt", null, f[0]));
        div.appendChild(num("dd", w[f[1]], f[2], p + f[1], f[3]));
        dl.appendChild(div);
      });
      var meta = h("div");
      meta.appendChild(h("dt", null, "Window"));
      meta.appendChild(h("dd", null, span(w.window_start, w.window_end) + " · " + w.direction +
        "-DR · " + (ROUTE_NAMES[w.route] || w.route)));
      dl.appendChild(meta);
      fig.appendChild(dl);
      if (w.slot_starts.length) {
        fig.appendChild(lineChart({
          testid: p + "chart", step: true, labels: w.slot_starts, xEnd: ms(w.window_end) >
            ms(w.slot_starts[w.slot_starts.length - 1]) ? ms(w.window_end) : null,
          title: w.label + ": potential vs requested vs delivered per slot [kW]",
          desc: "Step lines per 30-minute slot: potential " + fmt(w.potential_kwh, 1) +
            " kWh, requested " + fmt(w.requested_kwh, 1) + " kWh, delivered " +
            fmt(w.delivered_kwh, 1) + " kWh over the window.",
          yLabel: (w.direction === "down" ? "avoided" : "extra") + " power [kW]",
          series: [
            { key: "potential_kw", name: "potential", values: w.potential_kw, cls: "s-potential" },
            { key: "requested_kw", name: "requested", values: w.requested_kw, cls: "s-requested" },
            { key: "delivered_kw", name: "delivered", values: w.delivered_kw, cls: "s-delivered" },
          ],
          band: null,
        }));
        fig.appendChild(dataTable(w.label + " per slot",
          ["Slot", "Potential [kW]", "Requested [kW]", "Delivered [kW]"],
          w.slot_starts.map(function (t, k) {
            return [clock(t), fmt(w.potential_kw[k], 2), fmt(w.requested_kw[k], 2),
              fmt(w.delivered_kw[k], 2)];
          })));
      }
      box.appendChild(fig);
    });
  }

  function renderTracking(snap) {
    var tr = snap.tracking;
    document.getElementById("tracking-empty").hidden = !!tr;
    document.getElementById("tracking-body").hidden = !tr;
    var cards = clear(document.getElementById("tracking-cards"));
    var charts = clear(document.getElementById("tracking-charts"));
    if (!tr) return;
    cards.appendChild(card("Offered", tr.offered_kw, 2, "tracking-offered_kw", " kW"));
    cards.appendChild(card("Tolerance", tr.tolerance_kw, 2, "tracking-tolerance_kw", " kW"));
    cards.appendChild(card("Within tolerance (with F5)", 100 * tr.stats.share_within_tolerance, 1,
      "tracking-share_pct", " %"));
    cards.appendChild(card("Mean |error|", tr.stats.mean_abs_error_kw, 2, "tracking-mean_abs_error_kw", " kW"));
    cards.appendChild(card("Max |error|", tr.stats.max_abs_error_kw, 2, "tracking-max_abs_error_kw", " kW"));
    if (tr.stats_without_f5) {
      var w = tr.stats_without_f5;
      cards.appendChild(card("Within tolerance without F5", 100 * w.share_within_tolerance, 1,
        "tracking-nof5-share_pct", " %", "mean |error| " + fmt(w.mean_abs_error_kw, 2) +
        " kW, max " + fmt(w.max_abs_error_kw, 2) + " kW"));
    }
    var first = tr.times[0], last = tr.times[tr.times.length - 1];
    var when = span(first, last);
    charts.appendChild(lineChart({
      testid: "tracking-power-chart", step: false, labels: tr.times, xEnd: null,
      title: "Command vs output [kW], " + when,
      desc: "Command, group output (water heaters + battery) and the water heaters alone; " +
        "shaded: command ± " + fmt(tr.tolerance_kw, 2) + " kW.",
      yLabel: "power [kW]",
      series: [
        { key: "command_kw", name: "command", values: tr.command_kw, cls: "s-command" },
        { key: "output_kw", name: "output", values: tr.output_kw, cls: "s-output" },
        { key: "heater_kw", name: "water heaters", values: tr.heater_kw, cls: "s-heater" },
      ],
      band: {
        name: "tolerance",
        lo: tr.command_kw.map(function (v) { return v - tr.tolerance_kw; }),
        hi: tr.command_kw.map(function (v) { return v + tr.tolerance_kw; }),
      },
    }));
    charts.appendChild(lineChart({
      testid: "tracking-battery-chart", step: false, labels: tr.times, xEnd: null,
      title: "Battery power [kW] (> 0 charging), " + when,
      desc: "Battery power filling the gap between command and water heaters.",
      yLabel: "power [kW]",
      series: [{ key: "battery_kw", name: "battery", values: tr.battery_kw, cls: "s-battery" }],
      band: null,
    }));
    charts.appendChild(lineChart({
      testid: "tracking-soc-chart", step: false, labels: tr.times, xEnd: null,
      title: "Battery state of charge [kWh], " + when,
      desc: "From " + fmt(tr.soc_kwh[0], 2) + " kWh to " + fmt(tr.soc_kwh[tr.soc_kwh.length - 1], 2) + " kWh.",
      yLabel: "SoC [kWh]",
      series: [{ key: "soc_kwh", name: "state of charge", values: tr.soc_kwh, cls: "s-soc" }],
      band: null,
    }));
    charts.appendChild(dataTable("command tracking samples",
      ["Time", "Command [kW]", "Output [kW]", "Heaters [kW]", "Battery [kW]", "SoC [kWh]"],
      tr.times.map(function (t, k) {
        return [clockSec(t), fmt(tr.command_kw[k], 2), fmt(tr.output_kw[k], 2),
          fmt(tr.heater_kw[k], 2), fmt(tr.battery_kw[k], 2), fmt(tr.soc_kwh[k], 2)];
      })));
  }

  function renderEvents(snap) {
    var body = clear(document.getElementById("events-body"));
    snap.events.forEach(function (e) {
      var tr = h("tr", { "data-testid": "event-row", "data-status": e.status, "data-round": e.round });
      tr.appendChild(h("td", { class: "mono" }, e.event_id));
      tr.appendChild(h("td", null, e.label));
      tr.appendChild(h("td", null, e.direction));
      tr.appendChild(h("td", { class: "nowrap" }, span(e.window_start, e.window_end)));
      tr.appendChild(h("td", null, e.resource_name));
      tr.appendChild(h("td", { class: "n" }, e.round));
      tr.appendChild(num("td", e.requested_kwh, 2, "event-requested_kwh"));
      tr.appendChild(h("td", null)).appendChild(
        h("span", { class: "badge status-" + e.status, "data-testid": "event-status" }, e.status));
      tr.appendChild(num("td", e.accepted_kwh, 2, "event-accepted_kwh"));
      body.appendChild(tr);
    });
    if (!snap.events.length) {
      body.appendChild(h("tr")).appendChild(h("td", { colspan: 9, class: "empty" }, "No event yet."));
    }
  }

  function renderResources(snap) {
    var body = clear(document.getElementById("resources-body"));
    snap.resources.forEach(function (r) {
      var tr = h("tr", { "data-testid": "resource-row", "data-state": r.state, "data-route": r.route });
      tr.appendChild(h("td", { "data-testid": "resource-name" }, r.resource_name));
      tr.appendChild(h("td", null, r.ven_name));
      tr.appendChild(h("td", null, ROUTE_NAMES[r.route] || r.route));
      tr.appendChild(h("td", null, r.kind));
      tr.appendChild(h("td", { class: "n" }, r.n_units));
      tr.appendChild(h("td", null)).appendChild(
        h("span", { class: "badge state-" + r.state, "data-testid": "resource-state" }, r.state));
      tr.appendChild(h("td", null, r.last_seen_at ? day(r.last_seen_at) + " " + clockSec(r.last_seen_at) : "–"));
      tr.appendChild(num("td", r.last_power_kw, 2, "resource-last_power_kw"));
      body.appendChild(tr);
    });
    if (!snap.resources.length) {
      body.appendChild(h("tr")).appendChild(h("td", { colspan: 8, class: "empty" }, "No resource registered."));
    }
  }

  /* quarantine: every string comes from an untrusted VEN, so textContent only (h()) */
  function renderQuarantine(snap) {
    var counts = clear(document.getElementById("quarantine-counts"));
    (snap.quarantine_counts || []).forEach(function (c) {
      var li = h("li", { "data-testid": "quarantine-count", "data-reason": c.reason });
      li.appendChild(h("span", { class: "badge" }, c.reason));
      li.appendChild(h("span", { class: "n", "data-testid": "quarantine-count-n" }, " " + c.count));
      counts.appendChild(li);
    });
    var body = clear(document.getElementById("quarantine-body"));
    var rows = snap.quarantine_latest || [];
    rows.forEach(function (q) {
      var tr = h("tr", { "data-testid": "quarantine-row", "data-reason": q.reason });
      tr.appendChild(h("td", null, day(q.quarantined_at) + " " + clockSec(q.quarantined_at)));
      tr.appendChild(h("td", { "data-testid": "quarantine-client" }, q.client_id === null ? "–" : q.client_id));
      tr.appendChild(h("td", { "data-testid": "quarantine-resource" }, q.resource_name || "–"));
      tr.appendChild(h("td", null, q.kind));
      tr.appendChild(h("td", null, q.reason));
      body.appendChild(tr);
    });
    if (!rows.length) {
      body.appendChild(h("tr")).appendChild(h("td", { colspan: 5, class: "empty" }, "Nothing quarantined."));
    }
  }

  function render(snap) {
    chartSeq = 0;
    document.getElementById("title").textContent = snap.title;
    document.title = snap.title + " — dashboard";
    var rs = document.getElementById("run-state");
    rs.textContent = snap.run_state;
    rs.className = "badge run-" + snap.run_state;
    var g = document.getElementById("generated-at");
    g.textContent = day(snap.generated_at) + " " + clockSec(snap.generated_at) + " (UTC" +
      offset(snap.generated_at) + ")";
    g.setAttribute("datetime", snap.generated_at);
    document.getElementById("timezone").textContent = snap.timezone;
    renderSummary(snap);
    renderWindows(snap);
    renderTracking(snap);
    renderEvents(snap);
    renderResources(snap);
    renderQuarantine(snap);
    document.body.setAttribute("data-rendered", snap.generated_at);
    var count = Number(document.body.getAttribute("data-render-count") || "0") + 1;
    document.body.setAttribute("data-render-count", String(count));
  }

  /* ---------- live page / report ---------- */

  var lastText = null;

  function poll() {
    var status = document.getElementById("live-status");
    return fetch("api/dashboard", { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        if (text !== lastText) {
          lastText = text;
          render(JSON.parse(text));
        }
        status.textContent = "· live, checked " + new Date().toLocaleTimeString();
        status.className = "live-ok";
      })
      .catch(function (err) {
        status.textContent = "· server unreachable (" + err.message + "), retrying";
        status.className = "live-lost";
      });
  }

  function start() {
    var inline = document.getElementById("dashboard-data");
    if (inline) {
      render(JSON.parse(inline.textContent));
      document.getElementById("live-status").textContent = "· report (not live)";
      return;
    }
    var every = Number(document.body.getAttribute("data-poll-s"));
    poll().then(function () {
      if (every > 0) {
        (function loop() {
          setTimeout(function () { poll().then(loop); }, every * 1000);
        })();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
