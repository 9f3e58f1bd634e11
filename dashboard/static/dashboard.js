// gridpilot dashboard: polls api/data and redraws. Read-only; the token (when the site
// has tokens) lives in sessionStorage for this tab, and goes only in a header.
"use strict";

const REFRESH_MS = 5000;
const TOKEN_KEY = "gridpilot.token";
const $ = (id) => document.getElementById(id);

// Hook for tests and curious operators: refresh count, last error, points per trace.
window.gridpilot = {
  refreshes: 0,
  lastError: null,
  pointCounts() {
    const out = {};
    for (const el of document.querySelectorAll(".plot")) {
      out[el.id] = (el.data || []).map((t) => (t.y || []).filter((v) => v !== null).length);
    }
    return out;
  },
};

const layoutBase = {
  margin: { l: 50, r: 50, t: 10, b: 40 },
  legend: { orientation: "h", y: -0.2 },
  hovermode: "x unified",
};
const config = { displaylogo: false, responsive: true };

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tableId, rows, render) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const r of rows) render(body.insertRow(), r);
}

function card(parent, label, value, cls) {
  const div = document.createElement("div");
  div.className = "card" + (cls ? " " + cls : "");
  const b = document.createElement("b");
  b.textContent = value;
  div.append(b, label);
  parent.append(div);
}

const kw = (v) => (v === null || v === undefined ? "-" : v.toFixed(1) + " kW");
const pct = (v) => (v === null || v === undefined ? "-" : Math.round(v * 100) + " %");
const hhmm = (t) => new Date(t).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });

function sumSeries(history, prefix) {
  const totals = new Map();
  for (const [key, s] of Object.entries(history)) {
    if (!key.startsWith(prefix)) continue;
    s.times.forEach((t, i) => totals.set(t, (totals.get(t) || 0) + s.values[i]));
  }
  const times = [...totals.keys()].sort();
  return { x: times, y: times.map((t) => totals.get(t)) };
}

function hline(times, value) {
  return times.length ? { x: [times[0], times[times.length - 1]], y: [value, value] } : { x: [], y: [] };
}

function drawLive(d) {
  const s = d.state;
  $("site").textContent = s.site;
  const live = $("live");
  live.replaceChildren();
  card(live, "grid import", kw(s.grid_import_kw), s.grid_import_kw > d.limits.threshold_kw ? "bad" : "");
  card(live, "load", kw(s.load_kw));
  card(live, "PV", kw(s.pv_kw));
  for (const [id, v] of Object.entries(s.battery_kw)) card(live, id + " (+ discharge)", kw(v));
  for (const [id, v] of Object.entries(s.soc_fraction)) card(live, id + " SoC", pct(v));
  for (const [id, v] of Object.entries(s.peaker_kw)) card(live, id, kw(v));
  card(live, "frequency", s.frequency_hz === null ? "-" : s.frequency_hz.toFixed(2) + " Hz");
  card(live, "voltage", s.voltage_v === null ? "-" : s.voltage_v.toFixed(0) + " V");
  card(live, "price", s.import_price_eur_per_kwh === null ? "-" : s.import_price_eur_per_kwh.toFixed(2) + " €/kWh");
  fill("relays", s.relays, (row, r) => {
    cell(row, r.load);
    cell(row, r.on === null ? "unknown" : r.on ? "on" : "OFF", r.on === false ? "bad" : "good");
    cell(row, r.power_kw === null ? "-" : r.power_kw.toFixed(1));
    cell(row, r.critical ? "critical" : "sheddable");
  });
  const offline = Object.entries(s.devices_online).filter(([, on]) => !on).map(([id]) => id);
  $("devices").textContent =
    `devices: ${Object.keys(s.devices_online).length}, offline: ${offline.join(", ") || "none"}` +
    ` · stalest reading ${s.oldest_telemetry_s ?? "-"} s · leases: ${s.leases.join(", ") || "none"}`;
  const halted = s.halted ? ` · HALTED: ${s.halt_reason}` : "";
  $("status").textContent = `${hhmm(s.time)} (site clock) · viewer ${d.viewer}${halted}`;
  $("status").className = s.halted ? "bad" : "";
}

function drawHistory(d) {
  const grid = d.history.grid_import_kw;
  const load = sumSeries(d.history, "load_kw:");
  const pv = sumSeries(d.history, "pv_kw:");
  const traces = [
    { name: "grid import kW", x: grid.times, y: grid.values, type: "scatter", line: { color: "#1f6feb" } },
    { name: "load kW", ...load, type: "scatter", line: { color: "#d1242f" } },
    { name: "PV kW", ...pv, type: "scatter", line: { color: "#e3b341" } },
  ];
  for (const [key, s] of Object.entries(d.history)) {
    if (!key.startsWith("soc_fraction:")) continue;
    traces.push({ name: key.split(":")[1] + " SoC", x: s.times, y: s.values, yaxis: "y2", type: "scatter", line: { dash: "dot", color: "#2da44e" } });
  }
  traces.push({ name: "import limit", ...hline(grid.times, d.limits.import_limit_kw), mode: "lines", line: { color: "#000", dash: "dash" } });
  Plotly.react("plot-history", traces, {
    ...layoutBase,
    yaxis: { title: { text: "kW" } },
    yaxis2: { title: { text: "SoC" }, overlaying: "y", side: "right", range: [0, 1], tickformat: ".0%" },
  }, config);
}

function drawForecast(d) {
  const f = d.load_forecast;
  const load = sumSeries(d.history, "load_kw:");
  const traces = [{ name: "load (metered)", ...load, type: "scatter", line: { color: "#d1242f" } }];
  let times = load.x;
  if (f) {
    times = load.x.concat(f.times);
    traces.push(
      { name: "P10", x: f.times, y: f.p10, mode: "lines", line: { width: 0 }, showlegend: false },
      { name: "P10–P90", x: f.times, y: f.p90, mode: "lines", fill: "tonexty", fillcolor: "rgba(209,36,47,0.15)", line: { width: 0 } },
      { name: "forecast P50", x: f.times, y: f.p50, mode: "lines", line: { color: "#d1242f", dash: "dash" } },
    );
    $("forecast-note").textContent = `${f.method}: ${f.note}`;
  } else {
    $("forecast-note").textContent = "no forecast: " + (d.forecast_error || "unknown");
  }
  traces.push(
    { name: "import limit", ...hline(times, d.limits.import_limit_kw), mode: "lines", line: { color: "#000", dash: "dash" } },
    { name: "critical threshold", ...hline(times, d.limits.threshold_kw), mode: "lines", line: { color: "#b42318", dash: "dot" } },
  );
  Plotly.react("plot-forecast", traces, { ...layoutBase, yaxis: { title: { text: "kW" } } }, config);
}

function drawPlan(d) {
  const p = d.plan;
  if (!p) {
    $("plan-summary").textContent = "no plan yet (an agent or operator calls optimize)";
    Plotly.react("plot-plan", [], layoutBase, config);
    Plotly.react("plot-costs", [], layoutBase, config);
    return;
  }
  const x = p.steps.map((s) => s.time);
  const done = p.steps.filter((s) => s.executed);
  $("plan-summary").textContent =
    `${p.plan_id} · ${p.status}${p.expired ? " · expired" : ""} · saves ${p.saving_eur.toFixed(2)} € against no control · ` +
    `${done.length} step(s) dispatched · ${p.explanation}` + (p.diagnosis ? ` · ${p.diagnosis}` : "");
  Plotly.react("plot-plan", [
    { name: "planned grid import kW", x, y: p.steps.map((s) => s.grid_import_kw), line: { shape: "hv", color: "#1f6feb" } },
    { name: "no control kW", x, y: p.steps.map((s) => s.no_control_import_kw), line: { shape: "hv", color: "#888", dash: "dot" } },
    { name: "battery kW", x, y: p.steps.map((s) => s.battery_kw), line: { shape: "hv", color: "#2da44e" } },
    { name: "peaker kW", x, y: p.steps.map((s) => s.peaker_kw), line: { shape: "hv", color: "#8250df" } },
    { name: "dispatched", x: done.map((s) => s.time), y: done.map((s) => s.grid_import_kw), mode: "markers", marker: { size: 9, color: done.map((s) => (s.executed === "executed" ? "#067647" : "#b42318")) } },
    { name: "import limit", ...hline(x, d.limits.import_limit_kw), mode: "lines", line: { color: "#000", dash: "dash" } },
  ], { ...layoutBase, yaxis: { title: { text: "kW" } } }, config);
  fill("plan-steps", p.steps.slice(0, 8), (row, s) => {
    cell(row, hhmm(s.time));
    cell(row, s.grid_import_kw.toFixed(1));
    cell(row, s.battery_kw.toFixed(1));
    cell(row, pct(s.soc_fraction));
    cell(row, s.peaker_kw.toFixed(1));
    cell(row, s.relays_off.join(", ") || "-");
    cell(row, s.executed || "", s.executed && s.executed !== "executed" ? "bad" : "good");
  });
  const terms = ["energy", "demand_charge", "degradation", "shed_load", "fuel", "switching", "total"];
  Plotly.react("plot-costs", [
    { name: "no control €", type: "bar", x: terms, y: terms.map((k) => p.baseline[`${k}_eur`]), marker: { color: "#98a2b3" } },
    { name: "plan €", type: "bar", x: terms, y: terms.map((k) => p.costs[`${k}_eur`]), marker: { color: "#1f6feb" } },
  ], { ...layoutBase, barmode: "group", hovermode: "closest", yaxis: { title: { text: "€ over the horizon" } } }, config);
}

function drawActions(d) {
  $("chain").textContent = d.audit_chain_ok ? "audit chain verified" : "AUDIT CHAIN BROKEN";
  $("chain").className = d.audit_chain_ok ? "muted" : "bad";
  fill("actions", d.actions, (row, a) => {
    cell(row, a.seq);
    cell(row, hhmm(a.time));
    cell(row, `${a.principal} (${a.role})`);
    cell(row, a.action);
    cell(row, a.outcome, a.outcome === "executed" ? "good" : a.outcome === "refused" || a.outcome === "failed" ? "bad" : "");
    cell(row, a.refused_by.length ? a.refused_by.join("; ") : a.detail);
  });
}

function drawAnomalies(d) {
  const trust = $("trust");
  trust.replaceChildren();
  for (const t of d.trust) card(trust, t.reason, t.asset, t.trustworthy ? "good" : "bad");
  fill("anomalies", d.anomalies, (row, e) => {
    cell(row, hhmm(e.time));
    cell(row, e.kind);
    cell(row, e.asset);
    cell(row, e.severity, e.severity === "info" ? "" : "bad");
    cell(row, e.message);
  });
}

function showLogin(message) {
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  try {
    const response = await fetch("api/data", {
      headers: token ? { Authorization: "Bearer " + token } : {},
      cache: "no-store",
    });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(token ? "that token was not accepted" : "");
      return; // the login form restarts the loop
    }
    if (!response.ok) throw new Error(`api/data: HTTP ${response.status}`);
    const d = await response.json();
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = !token;
    for (const draw of [drawLive, drawHistory, drawForecast, drawPlan, drawActions, drawAnomalies]) draw(d);
    window.gridpilot.refreshes += 1;
    window.gridpilot.lastError = null;
  } catch (err) {
    window.gridpilot.lastError = String(err);
    $("status").textContent = "refresh failed: " + err + " (retrying)";
    $("status").className = "bad";
  }
  setTimeout(refresh, REFRESH_MS);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  refresh();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});
refresh();
