"""The dashboard page: HTML and its script. Chart.js comes from /static/chart.umd.js (served by the dashboard
from the checkout's node_modules); the script fetches every panel's /api endpoint every `refresh_s` seconds and
updates the charts in place. `window.junoCharts` holds the Chart instances (the browser test reads them)."""

from __future__ import annotations

import html as _html

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>JUNO grid dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1d3557;color:#fff;padding:.6em 1em;display:flex;justify-content:space-between}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px;padding:12px}
section{background:#fff;border-radius:6px;padding:8px 12px;box-shadow:0 1px 3px #0002;min-width:0}
h2{font-size:1em;margin:.2em 0 .5em}
.chart{position:relative;height:240px}
.err{color:#b00020;font-size:.85em}
table{border-collapse:collapse;font-size:.78em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:2px 5px;text-align:center}
.ok{background:#c8e6c9}.bad{background:#ffcdd2}.part{background:#fff3c4}.none{background:#eee}.extra{background:#d6e4ff}
.scroll{max-height:230px;overflow:auto}
.wide{grid-column:1/-1}
</style></head><body>
<header><b>JUNO grid dashboard</b><span>refresh every @REFRESH@ s &middot; <span id="updated">loading</span></span>
</header>
<main>
<section class="wide"><h2>Alarms: the newest run of every probe</h2><div class="err" id="err-probes"></div>
<div id="probes-table"></div></section>
<section><h2>Throughput per channel (MB/s)</h2><div class="err" id="err-throughput"></div>
<div class="chart"><canvas id="chart-throughput"></canvas></div></section>
<section><h2>Running jobs per site</h2><div class="err" id="err-jobs"></div>
<div class="chart"><canvas id="chart-jobs"></canvas></div></section>
<section><h2>HTTP-TPC: successful attempts per mode (%)</h2><div class="err" id="err-tpc"></div>
<div class="chart"><canvas id="chart-tpc"></canvas></div><div id="tpc-matrix"></div></section>
<section><h2>Raw blocks: files held against the share policy</h2><div class="err" id="err-blocks"></div>
<div class="chart"><canvas id="chart-blocks"></canvas></div><div class="scroll" id="blocks-table"></div></section>
<section><h2>Productions by step (jobs by state)</h2><div class="err" id="err-productions"></div>
<div class="chart"><canvas id="chart-productions"></canvas></div></section>
<section><h2>Ingest lag (messages not yet consumed)</h2><div class="err" id="err-ingest"></div>
<div class="chart"><canvas id="chart-ingest"></canvas></div><div id="ingest-now"></div></section>
<section class="wide"><h2>Stuck rules</h2><div class="err" id="err-stuck-rules"></div>
<div class="scroll" id="stuck-table"></div></section>
</main>
<script>window.JUNO_REFRESH_S = @REFRESH@;</script>
<script src="/static/chart.umd.js"></script>
<script src="/static/dashboard.js"></script>
</body></html>
"""

SCRIPT = r"""
"use strict";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"];
const STATE_COLOURS = {defined: "#bbb", assigned: "#999", activated: "#9ecae1", sent: "#6baed6",
  starting: "#4292c6", running: "#2171b5", holding: "#08519c", finished: "#41ab5d", failed: "#d62728",
  cancelled: "#636363"};
const charts = {};
window.junoCharts = charts;
window.junoRefreshes = 0;

function esc(s) {
  return String(s ?? "").replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
}
function hhmm(ms) { return new Date(ms).toISOString().substring(11, 16); }

function timeChart(id, unit) {
  return new Chart(document.getElementById(id), {
    type: "line", data: {datasets: []},
    options: {animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
      elements: {point: {radius: 1.5}, line: {tension: 0, borderWidth: 1.5}},
      scales: {x: {type: "linear", ticks: {callback: v => hhmm(v), maxTicksLimit: 9, includeBounds: false},
                   title: {display: true, text: "UTC"}}, y: {beginAtZero: true, title: {display: true, text: unit}}},
      plugins: {legend: {position: "right", labels: {boxWidth: 10, font: {size: 10}}},
                tooltip: {callbacks: {title: items => items.length ? hhmm(items[0].parsed.x) : ""}}}}});
}
function barChart(id, stacked, unit) {
  return new Chart(document.getElementById(id), {
    type: "bar", data: {labels: [], datasets: []},
    options: {animation: false, maintainAspectRatio: false,
      scales: {x: {stacked: stacked}, y: {stacked: stacked, beginAtZero: true, title: {display: true, text: unit}}},
      plugins: {legend: {position: "right", labels: {boxWidth: 10, font: {size: 10}}}}}});
}
const MIN_SPAN_MS = 10 * 60 * 1000;
const TICK_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
function setSeries(chart, series) {
  chart.data.datasets = series.map((s, i) => ({label: s.key, data: s.points,
    borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length]}));
  // The time axis runs from the first point to now, at least MIN_SPAN_MS wide (Chart.js would otherwise pad a
  // single point by a fraction of its epoch milliseconds: years).
  let first = Infinity, last = Date.now();
  for (const s of series) for (const p of s.points) { first = Math.min(first, p.x); last = Math.max(last, p.x); }
  const hi = last, lo = Math.min(first, hi - MIN_SPAN_MS);
  chart.options.scales.x.min = lo;
  chart.options.scales.x.max = hi;
  // ticks on whole minutes (1, 2, 5, ... minutes apart), at most 8 of them
  const minutes = TICK_MINUTES.find(m => (hi - lo) / (m * 60000) <= 8) ?? TICK_MINUTES.at(-1);
  const step = minutes * 60000;
  chart.options.scales.x.ticks.stepSize = step;
  chart.update("none");
}

async function panel(name, render) {
  const err = document.getElementById("err-" + name);
  try {
    const reply = await fetch("/api/" + name);
    const body = await reply.json();
    if (!reply.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    render(body);
    err.textContent = "";
  } catch (e) {
    err.textContent = "not updated: " + e.message;
  }
}

function renderTpc(body) {
  setSeries(charts.tpc, body.series);
  let out = "";
  for (const mode of body.modes) {
    const m = body.matrix[mode];
    out += "<table><tr><th>" + esc(mode) + ": from \\ to</th>" + body.rses.map(r => "<th>" + esc(r) + "</th>").join("")
         + "</tr>";
    for (const src of body.rses) {
      out += "<tr><th>" + esc(src) + "</th>";
      for (const dst of body.rses) {
        const c = (m[src] || {})[dst];
        if (!c) { out += '<td class="none"></td>'; continue; }
        const tip = c.ok ? (c.throughput_mb_s ?? 0).toFixed(1) + " MB/s, " + c.duration_s.toFixed(1) + " s at " + c.at
                         : (c.error || "failed") + " at " + c.at;
        out += '<td class="' + (c.ok ? "ok" : "bad") + '" title="' + esc(tip) + '">' + (c.ok ? "OK" : "FAIL")
             + "</td>";
      }
      out += "</tr>";
    }
    out += "</table>";
  }
  document.getElementById("tpc-matrix").innerHTML = out || "<i>the HTTP-TPC probe has not run yet</i>";
}

function renderBlocks(body) {
  const c = charts.blocks;
  c.data.labels = body.sites.map(s => s.site);
  c.data.datasets = [
    {label: "files the policy places", data: body.sites.map(s => s.expected_files), backgroundColor: "#9ecae1"},
    {label: "files held", data: body.sites.map(s => s.held_files), backgroundColor: "#2171b5"}];
  c.update("none");
  const rses = [...new Set(body.blocks.flatMap(b => b.rses.map(r => r.rse)))].sort();
  const cls = {complete: "ok", replicating: "part", waiting: "none", stuck: "bad", missing: "bad", extra: "extra"};
  let out = "<table><tr><th>block</th><th>files</th>" + rses.map(r => "<th>" + esc(r) + "</th>").join("") + "</tr>";
  for (const b of body.blocks) {
    out += "<tr><th>" + esc(b.name) + " (" + esc(b.state) + ")</th><td>" + b.files + "</td>";
    for (const rse of rses) {
      const r = b.rses.find(x => x.rse === rse);
      if (!r) { out += '<td class="none"></td>'; continue; }
      out += '<td class="' + cls[r.state] + '" title="' + esc(r.state + (r.policy_rule ? " (rule " + r.policy_rule + ")"
           : " (not in the policy)") + " " + r.rule_states.join(",")) + '">' + r.files + "/" + b.files + "</td>";
    }
    out += "</tr>";
  }
  document.getElementById("blocks-table").innerHTML = body.blocks.length ? out + "</table>" : "<i>no raw blocks</i>";
}

function renderProductions(body) {
  const c = charts.productions;
  const steps = body.productions.flatMap(p => p.steps.map(s => ({label: p.name + " " + s.step, s: s})));
  c.data.labels = steps.map(x => x.label);
  c.data.datasets = body.states.filter(st => steps.some(x => x.s.jobs_by_state[st]))
    .map(st => ({label: st, backgroundColor: STATE_COLOURS[st] || "#888",
                 data: steps.map(x => x.s.jobs_by_state[st] || 0)}));
  c.update("none");
}

function renderStuck(body) {
  const el = document.getElementById("stuck-table");
  if (body.probe_status === null) { el.innerHTML = "<i>the stuck-rules probe has not run yet</i>"; return; }
  let out = "<p>" + esc(body.probe_status) + ": " + esc(body.message) + " (checked " + esc(body.checked_at) + ")</p>";
  if (body.rules.length) {
    out += "<table><tr><th>rule</th><th>DID</th><th>RSE expression</th><th>state</th><th>reason</th></tr>"
         + body.rules.map(r => "<tr><td>" + esc(r.rule_id) + "</td><td>" + esc(r.did) + "</td><td>"
         + esc(r.rse_expression) + "</td><td>" + esc(r.state) + '</td><td style="text-align:left">' + esc(r.reason)
         + "</td></tr>").join("") + "</table>";
  }
  el.innerHTML = out;
}

function renderProbes(body) {
  const cls = {OK: "ok", WARNING: "part", CRITICAL: "bad", UNKNOWN: "none"};
  const el = document.getElementById("probes-table");
  if (!body.probes.length) { el.innerHTML = "<i>no probe has run yet</i>"; return; }
  el.innerHTML = "<table><tr><th>probe</th><th>status</th><th>checked</th><th>message</th></tr>"
    + body.probes.map(p => '<tr data-probe="' + esc(p.probe) + '" data-status="' + esc(p.status) + '" class="'
      + (cls[p.status] || "none") + '"><td>' + esc(p.probe) + "</td><td>" + esc(p.status) + "</td><td>"
      + esc(p.checked_at) + '</td><td style="text-align:left">' + esc(p.message) + "</td></tr>").join("")
    + "</table>";
}

function renderIngest(body) {
  setSeries(charts.ingest, body.series);
  document.getElementById("ingest-now").innerHTML = body.instances.map(i => "<div>" + esc(i.instance) + ": "
    + esc(i.state) + ", lag " + i.lag_total + ", " + i.registered + " registered"
    + (i.last_error ? ", " + esc(i.last_error) : "") + "</div>").join("") || "<i>no ingestor metrics</i>";
}

async function refresh() {
  await Promise.all([
    panel("throughput", b => setSeries(charts.throughput, b.series)),
    panel("jobs", b => setSeries(charts.jobs, b.series)),
    panel("tpc", renderTpc),
    panel("blocks", renderBlocks),
    panel("productions", renderProductions),
    panel("stuck-rules", renderStuck),
    panel("probes", renderProbes),
    panel("ingest", renderIngest)]);
  window.junoRefreshes += 1;
  document.getElementById("updated").textContent = "updated " + new Date().toISOString().substring(11, 19) + " UTC";
}

charts.throughput = timeChart("chart-throughput", "MB/s");
charts.jobs = timeChart("chart-jobs", "jobs");
charts.tpc = timeChart("chart-tpc", "% ok");
charts.ingest = timeChart("chart-ingest", "messages");
charts.blocks = barChart("chart-blocks", false, "files");
charts.productions = barChart("chart-productions", true, "jobs");
async function loop() {
  await refresh();
  setTimeout(loop, Math.max(2, Number(window.JUNO_REFRESH_S) || 15) * 1000);  // one refresh at a time
}
loop();
"""


def html(refresh_s: int) -> str:
    return _PAGE.replace("@REFRESH@", _html.escape(str(int(refresh_s))))
