// PharmaTwin web view, second script: the group overview (HQ), the line view (operator),
// the equipment detail, work orders on the maintenance board, capability and predicted
// quality on the quality board, and CSV downloads of what tables and charts show.
// Loaded before the page's own script; everything here runs when that script calls it, so
// its helpers ($, esc, fmt, chartIn, AXIS, TEXT, sites, risks, …) are there by then.
"use strict";

/* ---------- CSV: what is shown, as a file ---------- */
function csvCell(v){
  const s = v == null ? "" : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
function csvText(header, rows){
  return [header, ...rows].map(r => r.map(csvCell).join(",")).join("\n") + "\n";
}
function downloadCsv(name, header, rows){
  const blob = new Blob([csvText(header, rows)], {type: "text/csv;charset=utf-8"});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name.replace(/[^\w.-]+/g, "_") + ".csv";
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
// A table as shown: header cells and row cells by their text (a cell may carry the
// machine-readable value in data-csv).
function tableRows(table){
  const cells = tr => [...tr.children].map(td => td.dataset.csv != null ? td.dataset.csv : td.textContent.trim());
  const head = table.querySelector("thead tr");
  const body = [...table.querySelectorAll("tbody tr")].filter(tr => !tr.querySelector(".empty"));
  return {header: head ? cells(head) : [], rows: body.map(cells)};
}
// A chart's series as drawn: one row per point (series, x, y).
function chartRows(chart){
  const o = chart.getOption(), rows = [];
  for (const s of o.series || []) {
    const xs = ((o.xAxis || [])[s.xAxisIndex || 0] || {}).data;
    (s.data || []).forEach((d, i) => {
      const v = d && typeof d === "object" && !Array.isArray(d) ? d.value : d;
      if (Array.isArray(v)) rows.push([s.name, v[0] instanceof Date ? v[0].toISOString() : typeof v[0] === "number" && v[0] > 1e11 ? new Date(v[0]).toISOString() : v[0], v[1]]);
      else rows.push([s.name, xs ? xs[i] : i, v]);
    });
  }
  return {header: ["series", "x", "value"], rows};
}
// Every [data-csv-for] button downloads the table or chart it names.
document.addEventListener("click", ev => {
  const b = ev.target.closest("[data-csv-for]");
  if (!b) return;
  const id = b.dataset.csvFor, el = document.getElementById(id);
  if (!el) return;
  const {header, rows} = el.tagName === "TABLE" ? tableRows(el) : charts[id] ? chartRows(charts[id]) : {header: [], rows: []};
  downloadCsv(b.dataset.csvName || id, header, rows);
});
const csvButton = (id, name) => `<button class="csv" data-csv-for="${esc(id)}" data-csv-name="${esc(name || id)}" title="Download what is shown as CSV">CSV</button>`;
// The page's own tables get their button too.
function addCsvButtons(){
  for (const [id, name] of [["alert-table", "alerts"], ["maint-table", "equipment-at-risk"], ["audit-table", "audit-trail"]]) {
    const t = $(id);
    if (t && !t.dataset.csvButton) { t.dataset.csvButton = "1"; t.closest(".scroll").insertAdjacentHTML("beforebegin", `<div class="tools">${csvButton(id, name)}</div>`); }
  }
  for (const [id, name] of [["chart-sites", "site-comparison"], ["chart-capability", "capability"], ["spc-chart", "spc"]]) {
    const c = $(id);
    if (c && !c.dataset.csvButton) { c.dataset.csvButton = "1"; c.insertAdjacentHTML("beforebegin", `<div class="tools">${csvButton(id, name)}</div>`); }
  }
}

/* ---------- values as a person must read them: Bad as Bad, stale as stale ---------- */
// Values arrive on change and at the plant's sampling rate; older than this is stale.
const STALE_S = 30;
function sigStatus(x){
  if (!x || x.error || x.value == null) return "missing";
  if (x.quality_severity === "bad") return "bad";
  if (x.age_s != null && x.age_s > STALE_S) return "stale";
  if (x.quality_severity === "uncertain") return "uncertain";
  return x.excursion ? "out" : "ok";
}
// A process specification holds while its unit executes (as the alert board has it): out
// of it at an idle unit is shown, not alarmed.
function processStatus(x, executing){
  const st = sigStatus(x);
  return st === "out" && !executing ? "idle" : st;
}
function showValue(x, d){
  const st = sigStatus(x);
  if (st === "bad") return "Bad";
  if (st === "missing") return x && x.error ? "error" : "–";
  return fmt(x.value, d);
}
function valueCell(x, d, status){
  const st = status || sigStatus(x);
  const why = st === "stale" ? `stale: ${fmt(x.age_s, 0)} s old` : st === "bad" ? `quality Bad (0x${(x.quality >>> 0).toString(16)})` : st === "out" ? "outside its specification" :
    st === "idle" ? "outside its specification, which holds while the unit executes" : st;
  return `<td class="v st-${st}" data-path="${esc(x && x.path)}" data-status="${st}" data-csv="${esc(x && x.value)}" title="${esc(why)}">${esc(showValue(x, d))}${st === "stale" ? ' <span class="stale">stale</span>' : ""}</td>`;
}
const specText = s => s ? `${fmt(s.low)} … ${fmt(s.high)}` : "–";
const STATUS_LABEL = {idle: "unit not executing / 未运行", ok: "in spec / 合格", out: "OUT / 超限", bad: "Bad / 坏值", stale: "stale / 过期", uncertain: "uncertain / 不确定", missing: "no value / 无值"};

/* ---------- group overview (HQ): the plants side by side on one template ---------- */
let oee = null, costs = null, batchesAll = [];
async function pollGroup(){
  try {
    const [o, c, b] = await Promise.all([fetch("/api/oee?hours=8", {cache: "no-store"}), fetch("/api/costs?limit=10", {cache: "no-store"}),
      fetch("/api/batches?limit=200", {cache: "no-store"})]);
    if (o.ok) oee = await o.json();
    if (c.ok) costs = await c.json();
    if (b.ok) batchesAll = await b.json();
  } catch (e) { /* the next poll tries again */ }
  if (view.name === "overview") renderGroup();
}
const pct = (x, d = 1) => x == null ? "–" : fmt(100 * x, d) + " %";
// Lab results released: right first time is every CQA in its specification.
function labFigures(site){
  const done = batchesAll.filter(b => b.site === site && b.end != null && Object.keys(b.lab || {}).length);
  const inSpec = v => !v.spec || (v.value >= v.spec.low && v.value <= v.spec.high);
  const rft = done.filter(b => Object.values(b.lab).every(inSpec)).length;
  const yields = done.map(b => b.lab.yield && b.lab.yield.value).filter(v => typeof v === "number");
  return {released: done.length, rft: done.length ? rft / done.length : null,
          yield: yields.length ? yields.reduce((a, v) => a + v, 0) / yields.length : null};
}
function openAlertsBySeverity(site){
  const out = {critical: 0, warning: 0, data: 0};
  for (const a of alertList()) {
    if (a.site !== site || (a.state !== "active" && a.state !== "acknowledged")) continue;
    if (a.kind === "data") out.data++;
    else if (a.severity === "critical" || a.kind === "release_risk") out.critical++;
    else out.warning++;
  }
  return out;
}
function groupFigures(s){
  const o = oee && (oee.sites || []).find(x => x.site === s.id);
  const c = costs && (costs.sites || []).find(x => x.site === s.id);
  const f = o && o.figures;
  const lines = (o && o.lines) || [];
  const rooms = (s.lines || []).flatMap(l => l.rooms || []);
  const envOut = rooms.reduce((n, r) => n + Object.values(r.readings || {}).filter(x => x.in_spec === false).length, 0);
  return {
    site: s, o, f, lines, c, lab: labFigures(s.id),
    capacity: f ? f.capacity_use : null,
    running: batchesAll.filter(b => b.site === s.id && b.end == null).length,
    alerts: openAlertsBySeverity(s.id),
    envOut,
    atRisk: risks.filter(r => r.site === s.id && r.p_fail >= 0.5).length,
  };
}
const GROUP_ROWS = [
  ["oee", "OEE (A × P × Q) / 设备综合效率", g => pct(g.f && g.f.oee), g => g.f && g.f.oee],
  ["availability", "Availability / 可用率", g => pct(g.f && g.f.availability), g => g.f && g.f.availability],
  ["performance", "Performance / 性能", g => pct(g.f && g.f.performance), g => g.f && g.f.performance],
  ["quality", "Quality (good ÷ made) / 质量", g => pct(g.f && g.f.quality, 2), g => g.f && g.f.quality],
  ["output", "Output, tablets (8 h) / 产量", g => g.f ? fmt(g.f.good, 0) : "–", g => g.f && g.f.good],
  ["capacity", "Capacity use (rated press time ÷ time seen) / 产能利用率", g => pct(g.capacity), g => g.capacity],
  ["yield", "Yield, released batches / 收率", g => g.lab.yield == null ? "–" : fmt(g.lab.yield, 1) + " %", g => g.lab.yield],
  ["rft", "Right first time / 一次合格率", g => g.lab.rft == null ? "–" : `${pct(g.lab.rft, 0)} of ${g.lab.released}`, g => g.lab.rft],
  ["kwh", "Energy per batch / 每批能耗", g => g.c && g.c.summary.kwh_per_batch != null ? fmt(g.c.summary.kwh_per_batch, 0) + " kWh" : "–", g => g.c && g.c.summary.kwh_per_batch],
  ["cost", "Cost per batch (energy + material) / 每批成本", g => g.c && g.c.summary.cost_per_batch != null ? `${fmt(g.c.summary.cost_per_batch, 0)} ${g.c.summary.currency}` : "–", g => g.c && g.c.summary.cost_per_batch],
  ["tariff", "Tariff / 电价", g => g.c ? `${fmt(g.c.tariff.energy_per_kwh, 2)} ${g.c.tariff.currency}/kWh` : "–", g => g.c && g.c.tariff.energy_per_kwh],
  ["running", "Batches in progress / 在制批次", g => String(g.running), g => g.running],
  ["alerts", "Open alerts: critical · warning · data / 未关闭警报", g => `<span class="sev c">${g.alerts.critical}</span> · <span class="sev w">${g.alerts.warning}</span> · ${g.alerts.data}`, g => `${g.alerts.critical}/${g.alerts.warning}/${g.alerts.data}`],
  ["env", "Environment out of spec now / 环境超限", g => String(g.envOut), g => g.envOut],
  ["risk", "Equipment at risk (≥ 50 %) / 高风险设备", g => String(g.atRisk), g => g.atRisk],
];
function renderGroup(){
  const box = $("group");
  if (!box || !sites.length) return;
  const gs = sites.map(groupFigures);
  const head = `<tr><th>KPI</th>${gs.map(g => `<th><a href="#/site/${encodeURIComponent(g.site.id)}">${esc(shortSite(g.site))}</a></th>`).join("")}</tr>`;
  const body = GROUP_ROWS.map(([k, label, show, raw]) =>
    `<tr data-kpi="${k}"><td>${label}</td>${gs.map(g => `<td class="n" data-site="${esc(g.site.id)}" data-csv="${esc(raw(g))}">${show(g)}</td>`).join("")}</tr>`).join("");
  const lineRows = gs.flatMap(g => g.site.lines.map(l => {
    const lo = g.lines.find(x => x.line === l.id), f = lo && lo.figures;
    const cost = g.c ? g.c.batches.filter(b => b.line === l.id && b.end) : [];
    const kwh = cost.length ? cost.reduce((a, b) => a + b.kwh, 0) / cost.length : null;
    return `<tr data-line-row="${esc(g.site.id)}/${esc(l.id)}"><td><a href="#/line/${encodeURIComponent(g.site.id)}/${encodeURIComponent(l.id)}">${esc(shortSite(g.site))} · ${esc(l.name)}</a></td>
      <td class="n" data-csv="${esc(f && f.oee)}">${pct(f && f.oee)}</td><td class="n" data-csv="${esc(f && f.availability)}">${pct(f && f.availability)}</td>
      <td class="n" data-csv="${esc(f && f.performance)}">${pct(f && f.performance)}</td><td class="n" data-csv="${esc(f && f.quality)}">${pct(f && f.quality, 2)}</td>
      <td class="n" data-csv="${esc(f && f.good)}">${f ? fmt(f.good, 0) : "–"}</td><td class="n" data-csv="${esc(kwh)}">${kwh == null ? "–" : fmt(kwh, 0)}</td>
      <td>${esc((l.batch && l.batch.batch_id) || "–")} ${l.batch && l.batch.phase ? `<small>${esc(l.batch.phase)}</small>` : ""}</td></tr>`;
  })).join("");
  if (!box.dataset.built) {
    box.dataset.built = "1";
    box.innerHTML = `<section class="panel" aria-label="Group KPIs"><h2>Group overview / 集团总览 <small>last 8 plant hours; energy and cost over each line's last 10 batches</small></h2>
      <div class="tools">${csvButton("group-table", "group-kpis")}</div>
      <div class="scroll"><table class="list kpi" id="group-table"><thead></thead><tbody></tbody></table></div></section>
      <section class="panel" aria-label="Lines"><h2>Lines / 产线 <small>OEE of each line's press; click a line for its view</small></h2>
      <div class="tools">${csvButton("line-table", "lines")}</div>
      <div class="scroll"><table class="list kpi" id="line-table"><thead><tr><th>Line / 产线</th><th>OEE</th><th>A</th><th>P</th><th>Q</th><th>Output / 产量</th><th>kWh / batch</th><th>Batch / 批次</th></tr></thead><tbody></tbody></table></div></section>
      <section class="panel" aria-label="OEE trend"><h2>OEE per line, hourly / 每小时OEE <small>plant hours</small></h2>
      <div class="tools">${csvButton("chart-oee", "oee-trend")}</div><div id="chart-oee" class="chart" data-chart="oee"></div></section>`;
  }
  $("group-table").querySelector("thead").innerHTML = head;
  $("group-table").querySelector("tbody").innerHTML = body;
  $("line-table").querySelector("tbody").innerHTML = lineRows || `<tr><td colspan="8" class="empty">No lines</td></tr>`;
  drawOeeTrend(gs);
}
function drawOeeTrend(gs){
  const c = chartIn("chart-oee");
  if (!c) return;
  const series = gs.flatMap(g => g.lines.map(l => ({
    name: `${shortSite(g.site)} ${l.line}`, type: "line", showSymbol: true, symbolSize: 4, connectNulls: false,
    data: l.trend.map(p => [Date.parse(p.t), +(100 * p.oee).toFixed(1)]),
  })));
  if (!series.some(s => s.data.length)) {
    c.setOption({animation: false, title: {text: "No OEE yet / 暂无OEE", subtext: "needs an hour of press data", left: "center", top: "middle", textStyle: {...TEXT, color: "#8593a3"}}}, true);
    return;
  }
  c.setOption({
    animation: false, tooltip: {trigger: "axis", valueFormatter: v => v + " %"},
    legend: {top: 0, type: "scroll", textStyle: {color: "#8593a3"}},
    grid: {left: 40, right: 14, top: 34, bottom: 28},
    xAxis: {...AXIS, type: "time"}, yAxis: {...AXIS, type: "value", min: 0, max: 100, name: "%"},
    series,
  }, true);
}

/* ---------- line view (operator): #/line/<site>/<line> ---------- */
let lineSignals = [], lineBatch = null, lineTimer = null, lineKey = "", lineCosts = null;
function lineModel(){
  const s = sites.find(x => x.id === view.arg.site);
  return {s, l: s && (s.lines || []).find(x => x.id === view.arg.line)};
}
async function loadLine(){
  if (view.name !== "line") return;
  const {site, line} = view.arg, key = site + "/" + line;
  try {
    const q = new URLSearchParams({site, line});
    const [sg, bt, ct] = await Promise.all([fetch(withAt("/api/signals?" + q), {cache: "no-store"}),
      fetch("/api/batches?" + new URLSearchParams({site, line, limit: 1}), {cache: "no-store"}),
      fetch("/api/costs?" + new URLSearchParams({site, line, limit: 5}), {cache: "no-store"})]);
    if (view.name !== "line" || lineKey !== key) return;
    if (!sg.ok) { $("line-view").innerHTML = `<div class="empty">${esc((await sg.json().catch(() => ({}))).error || "HTTP " + sg.status)}</div>`; return; }
    lineSignals = await sg.json();
    const b = bt.ok ? await bt.json() : [];
    lineBatch = b.find(x => x.end == null) || null;
    if (ct.ok) lineCosts = await ct.json();
    renderLineView();
  } catch (e) { /* the next poll tries again */ }
}
function signalOf(eq, id){ return lineSignals.find(x => x.equipment === eq && x.signal === id); }
const isKey = x => x.spec && typeof x.value !== "string" && !/_sp$/.test(x.signal) && x.category !== "people";
function renderLineView(){
  const {s, l} = lineModel();
  const box = $("line-view");
  if (!s || !l) { box.innerHTML = `<div class="empty">No line “${esc(view.arg.line)}” at “${esc(view.arg.site)}” among yours</div>`; return; }
  const eqs = l.equipment || [];
  const flow = eqs.map((e, i) => {
    const st = (signalOf(e.id, "state") || {});
    const state = sigStatus(st) === "bad" ? "Bad" : (e.state || "");
    const keys = lineSignals.filter(x => x.equipment === e.id && isKey(x)).slice(0, 3);
    const run = e.state === "EXECUTE";
    const op = signalOf(e.id, "operator"), qual = signalOf(e.id, "operator_qualified");
    return (i ? '<span class="arr" aria-hidden="true">➜</span>' : "") +
      `<a class="eq node" href="#/equipment/${[s.id, l.id, e.id].map(encodeURIComponent).join("/")}" data-flow-index="${i}" data-equipment="${esc(e.id)}" data-state="${esc(state)}" title="${esc(e.name)}">
        <div class="k">${esc(prettyName(e.kind, e.id))}</div><div class="nm">${esc(e.name)}</div><div class="s">${esc(state || "—")}</div>
        <div class="pv">${keys.map(x => `<span data-path="${esc(x.path)}" class="st-${processStatus(x, run)}">${esc(x.signal.replace(/_/g, " "))} <b>${esc(showValue(x))}</b> ${esc(x.unit)}</span>`).join("")}</div>
        ${op ? `<div class="op${qual && qual.value === false ? " warn" : ""}">operator ${esc(showValue(op))}${qual && qual.value === false ? " · not qualified" : ""}</div>` : ""}
        ${e.excursions ? `<span class="x">${e.excursions}</span>` : ""}</a>`;
  }).join("");
  // Key process values of every unit against their specification.
  const pvRows = eqs.flatMap(e => lineSignals.filter(x => x.equipment === e.id && isKey(x)).map(x => {
    const st = processStatus(x, e.state === "EXECUTE");
    return `<tr data-signal-row="${esc(x.path)}"><td>${esc(e.name)}</td><td>${esc(x.signal)}</td>${valueCell(x, undefined, st)}<td>${esc(x.unit)}</td>
      <td class="n" data-csv="${esc(x.spec && x.spec.low)}…${esc(x.spec && x.spec.high)}">${specText(x.spec)}</td><td><span class="tag st-${st}">${STATUS_LABEL[st]}</span></td></tr>`;
  })).join("");
  // The rooms against their cleanroom grade's limits.
  const ENV = [["temperature", "T"], ["humidity", "RH"], ["diff_pressure", "ΔP"], ["particles_0_5um", "≥0.5 µm"], ["particles_5um", "≥5 µm"]];
  const envRows = (l.rooms || []).flatMap(r => ENV.map(([k, lab]) => {
    const x = signalOf(r.id, k);
    if (!x) return "";
    return `<tr data-room="${esc(r.id)}" data-env="${k}"><td><span class="grade">${esc(r.grade)}</span>${esc(r.name)}</td><td>${lab}</td>${valueCell(x, k.startsWith("particles") ? 0 : 1)}<td>${esc(x.unit)}</td>
      <td class="n limits" data-csv="${esc(x.spec && x.spec.low)}…${esc(x.spec && x.spec.high)}">${specText(x.spec)}</td><td><span class="tag st-${sigStatus(x)}">${STATUS_LABEL[sigStatus(x)]}</span></td></tr>`;
  })).join("");
  // People: the shift, and who is at each unit with their qualification.
  const ctl = lineSignals.find(x => x.signal === "batch_phase");
  const ctlEq = ctl && ctl.equipment;
  const c = id => ctlEq ? signalOf(ctlEq, id) : null;
  const opRows = eqs.map(e => {
    const op = signalOf(e.id, "operator"), q = signalOf(e.id, "operator_qualified");
    if (!op) return "";
    const qualified = q && sigStatus(q) !== "bad" && sigStatus(q) !== "missing" ? (q.value ? "qualified / 合格" : "NOT qualified / 未合格") : showValue(q);
    return `<tr data-operator="${esc(e.id)}"><td>${esc(e.name)}</td>${valueCell(op)}<td class="${q && q.value === false ? "warn" : ""}">${esc(qualified)}</td></tr>`;
  }).join("");
  // Material lots in use at each unit.
  const lotRows = eqs.flatMap(e => lineSignals.filter(x => x.equipment === e.id && /lot_id$/.test(x.signal)).map(x => {
    const exp = signalOf(e.id, "lot_expiry_days");
    return `<tr data-lot="${esc(x.path)}"><td>${esc(e.name)}</td><td>${esc(x.signal.replace(/_id$/, "").replace(/_/g, " "))}</td>${valueCell(x)}<td class="n">${exp ? esc(showValue(exp, 0)) + " d" : "–"}</td></tr>`;
  })).join("");
  const b = lineBatch;
  const phases = b ? (b.phases || []).map(p => `<span class="ph${p.end ? " done" : " cur"}" data-phase="${esc(p.phase)}" title="${esc(new Date(p.start).toLocaleString("en-GB"))}${p.end ? " – " + esc(new Date(p.end).toLocaleString("en-GB")) : " – now"}">${esc(p.phase)}</span>`).join("") : "";
  const cqaRows = b ? (b.predictions || []).map(p => {
    const risk = p.out_of_spec ? "out" : p.spec && (p.lower < p.spec.low || p.upper > p.spec.high) ? "risk" : "ok";
    return `<tr data-cqa="${esc(p.cqa)}"><td>${esc(p.cqa.replace(/_/g, " "))}</td><td class="n" data-csv="${esc(p.value)}">${fmt(p.value)}</td>
      <td class="n" data-csv="${esc(p.lower)}…${esc(p.upper)}">${fmt(p.lower)} … ${fmt(p.upper)}</td><td class="n">${specText(p.spec)}</td>
      <td><span class="tag rr-${risk}">${risk === "out" ? "predicted OUT / 预测超标" : risk === "risk" ? "interval crosses spec / 有风险" : "in spec / 合格"}</span>${outsideTag(p)}</td><td>${cqaGauge(p)}</td></tr>`;
  }).join("") : "";
  const lc = lineCosts && lineCosts.sites && lineCosts.sites[0];
  const runningCost = lc && b && lc.batches.find(x => x.batch === b.id);
  const shiftBox = `<div class="kv"><span>shift <b>${esc(showValue(c("shift_id")))}</b></span><span>lead <b>${esc(showValue(c("shift_lead")))}</b></span>
    <span>qualified <b>${esc(showValue(c("operators_qualified"), 0))}/${esc(showValue(c("operators_on_shift"), 0))}</b></span></div>`;
  const html = `<div class="crumbs"><a href="#/overview">Overview</a> › <a href="#/site/${encodeURIComponent(s.id)}">${esc(s.name)}</a> › <b>${esc(l.name)}</b></div>
    <section class="panel" aria-label="Line flow"><h2>${esc(l.name)} <small>${esc(s.name)} · process flow, live states / 工艺流程</small></h2>
      <div class="flow big" id="line-flow">${flow}</div></section>
    <div class="cols">
      <section class="panel" aria-label="Batch in progress"><h2>Batch in progress / 在制批次</h2>
        ${b ? `<div class="kv"><span>batch <b data-batch="${esc(b.id)}">${esc(b.id)}</b></span><span>product <b>${esc(b.product)}</b></span><span>recipe <b>${esc(b.recipe)} v${esc(b.recipe_version)}</b></span>
          <span>phase <b data-phase-now>${esc(showValue(c("batch_phase")))}</b></span><span>since <b>${esc(new Date(b.start).toLocaleString("en-GB", {hour12: false}))}</b></span>
          ${runningCost ? `<span>energy so far <b data-batch-kwh>${fmt(runningCost.kwh, 0)} kWh</b></span>` : ""}</div>
          <div class="phases">${phases}</div>
          <div class="tools">${csvButton("cqa-table", "predicted-cqas-" + b.id)}</div>
          <div class="scroll"><table class="list" id="cqa-table"><thead><tr><th>CQA</th><th>Predicted / 预测</th><th>Interval (90 %) / 区间</th><th>Spec / 规格</th><th>Release risk / 放行风险</th><th></th></tr></thead>
          <tbody>${cqaRows || `<tr><td colspan="6" class="empty">No prediction yet (no quality model) / 暂无预测</td></tr>`}</tbody></table></div>`
          : `<div class="empty">No batch in progress / 无在制批次</div>`}
      </section>
      <section class="panel" aria-label="Room environment"><h2>Room environment / 洁净室环境 <small>against the cleanroom grade's limits</small></h2>
        <div class="tools">${csvButton("env-table", `environment-${s.id}-${l.id}`)}</div>
        <div class="scroll"><table class="list" id="env-table"><thead><tr><th>Room / 房间</th><th>Reading</th><th>Value / 值</th><th>Unit</th><th>Limits / 限度</th><th>Status / 状态</th></tr></thead><tbody>${envRows || `<tr><td colspan="6" class="empty">No rooms</td></tr>`}</tbody></table></div>
      </section>
    </div>
    <section class="panel" aria-label="Process values"><h2>Key process values / 关键工艺参数 <small>against their specification; Bad and stale values are shown as such</small></h2>
      <div class="tools">${csvButton("pv-table", `process-values-${s.id}-${l.id}`)}</div>
      <div class="scroll"><table class="list" id="pv-table"><thead><tr><th>Equipment / 设备</th><th>Signal / 信号</th><th>Value / 值</th><th>Unit</th><th>Spec / 规格</th><th>Status / 状态</th></tr></thead><tbody>${pvRows || `<tr><td colspan="6" class="empty">Loading…</td></tr>`}</tbody></table></div>
    </section>
    <div class="cols">
      <section class="panel" aria-label="Operators"><h2>Operators on shift / 当班人员</h2>${shiftBox}
        <div class="tools">${csvButton("op-table", `operators-${s.id}-${l.id}`)}</div>
        <div class="scroll"><table class="list" id="op-table"><thead><tr><th>Unit / 设备</th><th>Operator / 操作员</th><th>Qualification / 资质</th></tr></thead><tbody>${opRows}</tbody></table></div></section>
      <section class="panel" aria-label="Material lots"><h2>Material lots in use / 在用物料批号</h2>
        <div class="tools">${csvButton("lot-table", `lots-${s.id}-${l.id}`)}</div>
        <div class="scroll"><table class="list" id="lot-table"><thead><tr><th>Unit / 设备</th><th>Material / 物料</th><th>Lot / 批号</th><th>Expires in / 有效期</th></tr></thead><tbody>${lotRows}</tbody></table></div></section>
    </div>`;
  const y = window.scrollY;
  box.innerHTML = html;
  window.scrollTo(0, y);
}

/* ---------- equipment detail: #/equipment/<site>/<line>/<equipment> ---------- */
let eqSignals = [], eqChosen = null, eqKey = "", eqWindow = {hours: 1}, eqTimer = null;
// The tag path of the unit's signals without the signal: `site/area/line/equipment/`.
function eqPathBase(){ return eqSignals.length ? eqSignals[0].path.slice(0, -eqSignals[0].signal.length) : ""; }
function eqWindowRange(){
  if (eqWindow.from && eqWindow.to) return {from: new Date(eqWindow.from), to: new Date(eqWindow.to)};
  // Travelling in time, the window ends at the moment looked at.
  const to = asOf ? new Date(asOf) : new Date();
  return {from: new Date(to - eqWindow.hours * 3600e3), to};
}
async function loadEquipment(){
  if (view.name !== "equipment") return;
  const {site, line, eq} = view.arg, key = [site, line, eq].join("/");
  const [sg, lc, mr] = await Promise.all([
    fetch(withAt("/api/signals?" + new URLSearchParams({site, line, equipment: eq})), {cache: "no-store"}),
    fetch("/api/lifecycle?" + new URLSearchParams({site}), {cache: "no-store"}),
    fetch("/api/maintenance?" + new URLSearchParams({site, line}), {cache: "no-store"})]).catch(() => []);
  if (!sg || view.name !== "equipment" || eqKey !== key) return;
  if (!sg.ok) { $("eq-view").innerHTML = `<div class="empty">${esc((await sg.json().catch(() => ({}))).error || "HTTP " + sg.status)}</div>`; return; }
  eqSignals = await sg.json();
  if (!eqSignals.length) { $("eq-view").innerHTML = `<div class="empty">No equipment “${esc(eq)}” on ${esc(site)} / ${esc(line)} among yours</div>`; return; }
  if (!eqChosen) {
    const num = eqSignals.filter(x => typeof x.value === "number" && !/_sp$/.test(x.signal) && x.signal !== "energy_kwh");
    eqChosen = [...num.filter(x => x.spec), ...num.filter(x => !x.spec)].slice(0, 3).map(x => x.signal);
  }
  const unit = lc.ok ? (await lc.json()).find(u => u.line === line && u.equipment === eq) : null;
  const parts = mr.ok ? ((await mr.json()).risks || []).filter(r => r.equipment === eq) : [];
  renderEquipment(unit, parts);
}
function renderEquipment(unit, parts){
  const {site, line, eq} = view.arg;
  const {s, l} = lineModel();
  const e = l && (l.equipment || []).find(x => x.id === eq);
  const box = $("eq-view");
  if (!box.dataset.key || box.dataset.key !== eqKey) {
    box.dataset.key = eqKey;
    box.innerHTML = `<div class="crumbs"><a href="#/overview">Overview</a> › <a href="#/site/${encodeURIComponent(site)}">${esc(s ? s.name : site)}</a> ›
        <a href="#/line/${encodeURIComponent(site)}/${encodeURIComponent(line)}">${esc(l ? l.name : line)}</a> › <b id="eq-name">${esc(eq)}</b></div>
      <section class="panel" aria-label="Trend"><h2>Trend / 趋势 <small id="eq-sub"></small></h2>
        <div class="filters"><span>Window / 时间窗</span>
          ${[1, 8, 24].map(h => `<button class="win" data-hours="${h}">${h} h</button>`).join("")}
          <label>from <input type="datetime-local" id="eq-from"></label><label>to <input type="datetime-local" id="eq-to"></label><button id="eq-custom">custom / 自定义</button>
          <span class="tools">${csvButton("chart-eq", "trend-" + eq)}<a id="eq-csv-server" class="csv">CSV per signal (server)</a></span></div>
        <div id="eq-pick" class="pick"></div>
        <div id="chart-eq" class="chart tall" data-chart="equipment"></div>
        <h3 class="sub">State timeline / 状态时间线</h3><div id="eq-states" class="timeline"></div><div id="eq-state-legend" class="note"></div>
      </section>
      <div class="cols">
        <section class="panel" aria-label="Health"><h2>Health and remaining life / 健康与剩余寿命</h2><div id="eq-health"></div></section>
        <section class="panel" aria-label="Lifecycle"><h2>Lifecycle / 生命周期</h2><div id="eq-life"></div></section>
      </div>
      <section class="panel" aria-label="Work orders"><h2>Work orders / 工单 <button id="eq-new-wo" class="hide-ro">New work order / 新建工单</button></h2>
        <div class="scroll"><table class="list" id="eq-wo-table"><thead><tr><th>#</th><th>Kind</th><th>Part</th><th>Reason</th><th>Due</th><th>State</th><th>Requested by</th><th></th></tr></thead><tbody></tbody></table></div></section>`;
    box.querySelectorAll("button.win").forEach(b => b.onclick = () => { eqWindow = {hours: +b.dataset.hours}; drawEqTrend(); });
    $("eq-custom").onclick = () => {
      const f = $("eq-from").value, t = $("eq-to").value;
      if (f && t && new Date(f) < new Date(t)) { eqWindow = {from: new Date(f).toISOString(), to: new Date(t).toISOString()}; drawEqTrend(); }
    };
    $("eq-pick").addEventListener("change", ev => {
      eqChosen = [...$("eq-pick").querySelectorAll("input:checked")].map(i => i.value);
      drawEqTrend();
    });
    $("eq-new-wo").onclick = () => newWorkOrder({site, line, equipment: eq});
    drawEqTrend();
  }
  $("eq-name").textContent = e ? e.name : eq;
  $("eq-sub").textContent = `${eq} · ${e ? e.kind : ""} · state ${e ? e.state || "–" : "–"}`;
  const num = eqSignals.filter(x => typeof x.value === "number" || typeof x.value === "boolean");
  $("eq-pick").innerHTML = num.map(x => `<label class="chk${x.spec ? " spec" : ""}" data-pick="${esc(x.signal)}"><input type="checkbox" value="${esc(x.signal)}"${eqChosen.includes(x.signal) ? " checked" : ""}>
      ${esc(x.signal)} <b class="st-${sigStatus(x)}">${esc(showValue(x))}</b> ${esc(x.unit)}</label>`).join("");
  const lifeRow = (k, a, b) => `<tr><td>${k}</td><td class="n">${a}</td><td class="n">${b}</td></tr>`;
  $("eq-life").innerHTML = unit ? `<div class="kv"><span>maker <b>${esc(unit.maker || "–")}</b></span><span>serial <b>${esc(unit.serial || "–")}</b></span><span>installed <b>${esc(unit.installed || "–")}</b></span>
      <span>calibration due <b>${unit.calibration_due ? esc(new Date(unit.calibration_due).toLocaleDateString("en-GB")) : "–"}</b></span></div>
    <table class="list" id="eq-life-table"><thead><tr><th></th><th>Total / 累计</th><th>Since maintenance / 自上次维护</th></tr></thead><tbody>
      ${lifeRow("Running hours / 运行小时", fmt(unit.total.running_hours, 1), fmt(unit.since_maintenance.running_hours, 1))}
      ${lifeRow("Starts / 启动次数", unit.total.starts, unit.since_maintenance.starts)}
      ${lifeRow("Cycles / 循环次数", fmt(unit.total.cycles, 0), fmt(unit.since_maintenance.cycles, 0))}</tbody></table>
    <h3 class="sub">Maintenance history / 维护记录</h3>
    <div class="scroll"><table class="list" id="eq-history"><thead><tr><th>When</th><th>Action</th><th>Work order</th><th>Part</th><th>By</th><th>Comment</th></tr></thead><tbody>
      ${(unit.history || []).slice().reverse().map(h => `<tr><td class="t">${esc(new Date(h.at).toLocaleString("en-GB", {hour12: false}))}</td><td>${esc(h.action)}</td><td>${esc(h.work_order)}</td><td>${esc(h.part || "")}</td><td>${esc(h.user)}</td><td>${esc(h.comment)}</td></tr>`).join("") || `<tr><td colspan="6" class="empty">None recorded</td></tr>`}</tbody></table></div>`
    : `<div class="empty">No lifecycle record</div>`;
  $("eq-health").innerHTML = parts.length ? `<table class="list" id="eq-parts"><thead><tr><th>Part</th><th>Health</th><th>Failure risk in horizon</th><th>RUL (90 % interval)</th><th>Signals behind it</th></tr></thead><tbody>
    ${parts.map(r => `<tr data-part="${esc(r.part)}"><td>${esc(r.part)}</td><td class="n">${fmt(100 * r.health, 0)} %</td><td class="n">${fmt(100 * r.p_fail)} % in ${fmt(r.horizon_h / 24)} d</td>
      <td class="n">${hours(r.rul_h)} (${hours(r.rul_low_h)} … ${hours(r.rul_high_h)})</td><td>${r.drivers.slice(0, 3).map(d => `${esc(d.signal)} ${fmt(d.value)} (healthy ${fmt(d.healthy)})`).join(", ")}</td></tr>`).join("")}</tbody></table>`
    : `<div class="empty">No prediction for this unit yet / 暂无预测</div>`;
  renderWorkOrders("eq-wo-table", w => w.site === site && w.line === line && w.equipment === eq);
  document.querySelectorAll(".hide-ro").forEach(b => b.hidden = !canManageWo());
}
let eqDrawing = false;
async function drawEqTrend(){
  if (view.name !== "equipment" || eqDrawing || !eqSignals.length) return;
  eqDrawing = true;
  try {
    const {from, to} = eqWindowRange();
    document.querySelectorAll("#eq-view button.win").forEach(b => b.classList.toggle("on", !eqWindow.from && +b.dataset.hours === eqWindow.hours));
    const base = eqPathBase();
    const chosen = eqChosen.slice(0, 6);
    const range = {from: from.toISOString(), to: to.toISOString()};
    const fetchOne = sig => fetch("/api/history?" + new URLSearchParams({path: base + sig, ...range}), {cache: "no-store"}).then(r => r.ok ? r.json() : {points: []}).catch(() => ({points: []}));
    const [hist, states] = await Promise.all([Promise.all(chosen.map(fetchOne)), fetchOne("state")]);
    if (chosen[0]) $("eq-csv-server").href = "/api/history?" + new URLSearchParams({path: base + chosen[0], ...range, format: "csv"});
    drawEqChart(chosen, hist, from, to);
    drawStates(states.points || [], from, to);
  } finally { eqDrawing = false; }
}
// At most ~1,500 points a series: min and max of each bucket keep spikes visible.
function thin(points, max = 1500){
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / (max / 2)), out = [];
  for (let i = 0; i < points.length; i += per) {
    const b = points.slice(i, i + per);
    let lo = b[0], hi = b[0];
    for (const p of b) { if (p[1] < lo[1]) lo = p; if (p[1] > hi[1]) hi = p; }
    out.push(...(lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}
function drawEqChart(chosen, hist, from, to){
  const c = chartIn("chart-eq");
  if (!c) return;
  if (!chosen.length) { c.clear(); return; }
  const n = chosen.length, H = c.getHeight(), top = 30, bottom = 70, gap = 26;
  const h = (H - top - bottom - gap * (n - 1)) / n;
  const sig = id => eqSignals.find(x => x.signal === id) || {};
  // A refresh of the same window and signals keeps where the user zoomed to.
  const zoomKey = JSON.stringify([eqKey, eqWindow, chosen]);
  const dz = c.getDom().dataset.zoomKey === zoomKey && ((c.getOption() || {}).dataZoom || [])[0];
  const keep = dz ? {start: dz.start, end: dz.end} : {};
  c.getDom().dataset.zoomKey = zoomKey;
  const colors = ["#4aa3df", "#e0a43a", "#9b7fd1", "#2e9e5b", "#e07a73", "#6cc3c8"];
  c.setOption({
    animation: false, color: colors,
    tooltip: {trigger: "axis", axisPointer: {link: [{xAxisIndex: "all"}]}},
    axisPointer: {link: [{xAxisIndex: "all"}]},
    // On a narrow screen the limits' own labels say them; the title stays short.
    title: chosen.map((id, i) => ({text: `${id} (${sig(id).unit || ""})${sig(id).spec && c.getWidth() >= 700 ? `  spec ${specText(sig(id).spec)}` : ""}`, top: top + i * (h + gap) - 18, left: 48, textStyle: {...TEXT, fontSize: 11, color: colors[i]}})),
    grid: chosen.map((_, i) => ({left: 58, right: 18, top: top + i * (h + gap), height: h})),
    xAxis: chosen.map((_, i) => ({...AXIS, type: "time", gridIndex: i, min: +from, max: +to, axisLabel: {show: i === n - 1, color: "#8593a3", hideOverlap: true}})),
    // The axis reaches the limits too, so they are always in sight.
    yAxis: chosen.map((id, i) => {
      const sp = sig(id).spec;
      const pad = (lo, hi) => (hi - lo) * 0.05 || 1;
      return {...AXIS, type: "value", gridIndex: i, scale: true, splitNumber: 2,
        ...(sp ? {min: v => { const lo = Math.min(v.min, sp.low), hi = Math.max(v.max, sp.high); return +(lo - pad(lo, hi)).toPrecision(3); },
                  max: v => { const lo = Math.min(v.min, sp.low), hi = Math.max(v.max, sp.high); return +(hi + pad(lo, hi)).toPrecision(3); }} : {})};
    }),
    dataZoom: [{type: "inside", xAxisIndex: chosen.map((_, i) => i), ...keep}, {type: "slider", xAxisIndex: chosen.map((_, i) => i), bottom: 12, height: 22, textStyle: {color: "#8593a3"}, ...keep}],
    series: chosen.map((id, i) => {
      const pts = (hist[i].points || []).filter(p => typeof p.v === "number" || typeof p.v === "boolean")
        // A Bad sample is no value: a gap in the line, never a point.
        .map(p => [Date.parse(p.t), (p.q >>> 30) === 2 ? null : +p.v]);
      const spec = sig(id).spec;
      return {name: id, type: "line", xAxisIndex: i, yAxisIndex: i, showSymbol: false, connectNulls: false, lineStyle: {width: 1.3},
        data: thin(pts.filter(p => p[1] != null)).concat(pts.filter(p => p[1] == null)).sort((a, b) => a[0] - b[0]),
        markLine: spec ? {symbol: "none", silent: true, data: [
          {yAxis: spec.low, lineStyle: {color: "#d0473f", type: "dashed"}, label: {formatter: `LSL ${fmt(spec.low)}`, color: "#e07a73", position: "insideEndBottom"}},
          {yAxis: spec.high, lineStyle: {color: "#d0473f", type: "dashed"}, label: {formatter: `USL ${fmt(spec.high)}`, color: "#e07a73", position: "insideEndTop"}}]} : undefined};
    }),
  }, true);
}
const STATE_COLOR = {EXECUTE: "var(--exec)", IDLE: "var(--idle)", HELD: "var(--held)", STOPPED: "var(--bad)", ABORTED: "var(--bad)", COMPLETE: "var(--done)"};
function drawStates(points, from, to){
  const t0 = +from, t1 = +to, span = t1 - t0;
  const pts = points.map(p => ({t: Date.parse(p.t), v: String(p.v), bad: (p.q >>> 30) === 2})).filter(p => p.t <= t1);
  const segs = [];
  for (let i = 0; i < pts.length; i++) {
    const a = Math.max(pts[i].t, t0), b = Math.min(i + 1 < pts.length ? pts[i + 1].t : Math.min(Date.now(), t1), t1);
    if (b <= a) continue;
    const v = pts[i].bad ? "Bad" : pts[i].v;
    if (segs.length && segs[segs.length - 1].v === v) segs[segs.length - 1].b = b; else segs.push({v, a, b});
  }
  $("eq-states").innerHTML = segs.length ? segs.map(s => `<i data-state="${esc(s.v)}" style="left:${(100 * (s.a - t0) / span).toFixed(3)}%;width:${(100 * (s.b - s.a) / span).toFixed(3)}%;background:${STATE_COLOR[s.v] || "#303a45"}"
      title="${esc(s.v)} ${esc(hhmmss(new Date(s.a)))} – ${esc(hhmmss(new Date(s.b)))}"></i>`).join("") : `<span class="note">No state change stored in this window</span>`;
  const total = {};
  for (const s of segs) total[s.v] = (total[s.v] || 0) + (s.b - s.a);
  $("eq-state-legend").innerHTML = Object.entries(total).map(([v, ms]) => `<span><i class="sw" style="background:${STATE_COLOR[v] || "#303a45"}"></i>${esc(v)} ${fmt(ms / 60000, 1)} min</span>`).join(" ");
}

/* ---------- work orders: create, list, close with a signature ---------- */
let workOrders = [];
const canManageWo = () => !!(ME && ME.permissions.includes("manage_work_orders"));
async function pollWorkOrders(){
  try {
    const r = await fetch("/api/work-orders", {cache: "no-store"});
    if (r.ok) workOrders = await r.json();
  } catch (e) { /* the next poll tries again */ }
  renderWorkOrders("wo-table", () => true);
  if (view.name === "equipment" && $("eq-wo-table")) renderWorkOrders("eq-wo-table", w => w.site === view.arg.site && w.line === view.arg.line && w.equipment === view.arg.eq);
}
function renderWorkOrders(tableId, keep){
  const t = $(tableId);
  if (!t) return;
  const rows = workOrders.filter(keep);
  const all = tableId === "wo-table";
  t.querySelector("tbody").innerHTML = rows.length ? rows.map(w => `<tr class="wo-row" data-wo="${esc(w.id)}" data-wo-state="${esc(w.state)}">
      <td>${esc(w.id)}</td>${all ? `<td><a href="#/equipment/${[w.site, w.line, w.equipment].map(encodeURIComponent).join("/")}">${esc(w.site)} / ${esc(w.line)} / ${esc(w.equipment)}</a></td>` : ""}
      <td>${esc(w.kind)}</td><td>${esc(w.part || "")}</td><td>${esc(w.reason)}</td>
      <td class="t" data-csv="${esc(w.due)}">${esc(new Date(w.due).toLocaleString("en-GB", {hour12: false}))}</td>
      <td><span class="tag wo-${esc(w.state)}">${esc(w.state)}</span></td><td>${esc(w.requested_by)}</td>
      <td>${w.closed ? `<span class="note">closed by ${esc(w.closed.signature)}</span>` : canManageWo() ? `<button data-wo-close="${esc(w.id)}">Close / 关闭</button>` : ""}</td></tr>`).join("")
    : `<tr><td colspan="${all ? 9 : 8}" class="empty">No work orders / 无工单</td></tr>`;
}
async function newWorkOrder(pre){
  const dlg = $("wo-dialog");
  const f = $("wo-form");
  const opts = sites.flatMap(s => (s.lines || []).flatMap(l => (l.equipment || []).map(e => [`${s.id}/${l.id}/${e.id}`, `${shortSite(s)} · ${l.id} · ${e.name}`])));
  f.unit.innerHTML = opts.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join("");
  if (pre.site) f.unit.value = `${pre.site}/${pre.line}/${pre.equipment}`;
  f.part.value = pre.part || ""; f.reason.value = pre.reason || ""; f.kind.value = "maintenance";
  const due = new Date(Date.now() + 24 * 3600e3);
  f.due.value = new Date(due - due.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  f.dataset.alert = pre.alert || "";
  $("wo-err").textContent = "";
  dlg.showModal();
}
async function submitWorkOrder(ev){
  ev.preventDefault();
  const f = $("wo-form");
  if (ev.submitter && ev.submitter.value === "cancel") { $("wo-dialog").close(); return; }
  const [site, line, equipment] = f.unit.value.split("/");
  const body = {site, line, equipment, part: f.part.value || null, kind: f.kind.value, reason: f.reason.value,
    due: new Date(f.due.value).toISOString(), reset_counters: f.reset.checked, alert: f.dataset.alert ? +f.dataset.alert : null};
  const r = await fetch("/api/work-orders", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) { $("wo-err").textContent = (await r.json().catch(() => ({}))).error || `HTTP ${r.status}`; return; }
  $("wo-dialog").close();
  pollWorkOrders();
}
document.addEventListener("click", async ev => {
  const id = ev.target.dataset && ev.target.dataset.woClose;
  if (!id) return;
  const body = await askSignature(`Close work order ${id} / 关闭工单 ${id}`);
  if (!body) return;
  const r = await fetch(`/api/work-orders/${encodeURIComponent(id)}/close`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) alert((await r.json().catch(() => ({}))).error || "refused");
  pollWorkOrders();
  if (view.name === "equipment") loadEquipment();
});
document.addEventListener("click", ev => {
  const b = ev.target.closest("[data-wo-for]");
  if (!b) return;
  const r = risks.find(x => partKey(x) === b.dataset.woFor);
  if (!r) return;
  const a = mAlerts.find(x => x.state !== "closed" && partKey(x) === b.dataset.woFor);
  newWorkOrder({site: r.site, line: r.line, equipment: r.equipment, part: r.part, alert: a && a.id,
    reason: `${r.part}: failure risk ${fmt(100 * r.p_fail)} % within ${fmt(r.horizon_h / 24)} d, health ${fmt(100 * r.health, 0)} %`});
});

/* ---------- quality board: capability per site and product, predicted CQAs ---------- */
let capTable = [], capCqa = "dissolution";
async function loadQualityBoard(){
  try {
    const [c, b] = await Promise.all([fetch("/api/capability?" + new URLSearchParams({cqa: capCqa}), {cache: "no-store"}),
      fetch("/api/batches?limit=200", {cache: "no-store"})]);
    if (c.ok) capTable = await c.json();
    if (b.ok) batchesAll = await b.json();
  } catch (e) { /* the next poll tries again */ }
  if (view.name === "quality") renderQualityBoard();
}
function renderQualityBoard(){
  const rows = capTable.map(g => {
    const k = g.capability;
    const cls = !k ? "" : k.cpk >= 1.33 ? "cap-ok" : k.cpk >= 1 ? "cap-marginal" : "cap-bad";
    return `<tr class="${cls}" data-cap="${esc(g.key.site)}/${esc(g.key.product || "")}"><td>${esc(g.key.site)}</td><td>${esc(g.key.product || "–")}</td>
      <td class="n">${k ? k.n || g.n || "" : ""}</td><td class="n" data-csv="${esc(k && k.cpk)}">${k ? fmt(k.cpk, 2) : "–"}</td><td class="n" data-csv="${esc(k && k.ppk)}">${k ? fmt(k.ppk, 2) : "–"}</td>
      <td>${k ? (k.cpk >= 1.33 ? "capable / 能力充足" : k.cpk >= 1 ? "marginal / 勉强" : "not capable / 能力不足") : esc(g.error || "")}</td></tr>`;
  }).join("");
  $("cap-rows").innerHTML = rows || `<tr><td colspan="6" class="empty">No lab results for ${esc(capCqa)} yet / 暂无检验结果</td></tr>`;
  const running = batchesAll.filter(b => b.end == null);
  $("pred-rows").innerHTML = running.flatMap(b => (b.predictions || []).map(p => {
    const risk = p.out_of_spec ? "out" : p.spec && (p.lower < p.spec.low || p.upper > p.spec.high) ? "risk" : "ok";
    return `<tr data-pred="${esc(b.id)}/${esc(p.cqa)}" class="rr-${risk}"><td>${esc(b.site)} / ${esc(b.line)}</td><td>${esc(b.id)}</td><td>${esc(b.product)}</td><td>${esc(p.cqa.replace(/_/g, " "))}</td>
      <td class="n" data-csv="${esc(p.value)}">${fmt(p.value)}</td><td class="n">${fmt(p.lower)} … ${fmt(p.upper)}</td><td class="n">${specText(p.spec)}</td>
      <td><span class="tag rr-${risk}">${risk === "out" ? "high / 高" : risk === "risk" ? "possible / 可能" : "low / 低"}</span>${outsideTag(p)}</td></tr>`;
  })).join("") || `<tr><td colspan="8" class="empty">No running batch with a prediction / 无在制批次预测</td></tr>`;
}

/* ---------- connectors: link, throughput, quality and gaps of each OPC UA source ---------- */
let connTimer;
// Notifications per second per site, measured between polls while the view is open.
const connSeries = {};
let connLast = null;
async function loadConnectors(){
  const r = await fetch("/api/diagnostics", {cache: "no-store"});
  if (!r.ok) { $("conn-cards").innerHTML = `<div class="empty">Connector health needs diagnostics rights / 需要诊断权限</div>`; return; }
  const d = await r.json();
  const now = Date.now();
  // A point every 5 s or more: plants publish in bursts, shorter windows only show them.
  if (!connLast || now - connLast.at >= 5000) {
    for (const s of d.sources || []) {
      const prev = connLast && connLast.by[s.site];
      const rate = prev != null ? (s.notifications - prev) / ((now - connLast.at) / 1000) : s.notifications_per_s;
      (connSeries[s.site] = connSeries[s.site] || []).push([now, Math.max(0, rate)]);
      if (connSeries[s.site].length > 300) connSeries[s.site].shift();
    }
    connLast = {at: now, by: Object.fromEntries((d.sources || []).map(s => [s.site, s.notifications]))};
  }
  if (view.name !== "connectors") return;
  const chart = chartIn("conn-chart");
  if (chart) chart.setOption({
    animation: false, tooltip: {trigger: "axis"}, legend: {top: 0, textStyle: TEXT},
    grid: {left: 56, right: 16, top: 30, bottom: 30},
    xAxis: {type: "time", ...AXIS}, yAxis: {type: "value", name: "notifications/s", nameTextStyle: TEXT, ...AXIS},
    series: Object.entries(connSeries).map(([site, pts]) => ({name: site, type: "line", showSymbol: false, data: pts})),
  }, true);
  const ms = t => t ? new Date(t).toLocaleTimeString("en-GB", {hour12: false}) : "–";
  $("conn-cards").innerHTML = (d.sources || []).map(s => {
    const kpi = (label, v, warn) => `<span class="${warn ? "warn" : ""}">${label} <b>${v}</b></span>`;
    const skew = s.clock_skew_ms == null && s.source_clock_skew_ms == null ? "–" : `${fmt(s.clock_skew_ms, 0)} / ${fmt(s.source_clock_skew_ms, 0)} ms`;
    const errors = (s.tag_errors || []).slice(0, 10).map(e => `<tr><td>${esc(e.tag)}</td><td>${esc(e.node)}</td><td>${esc(e.status)}</td></tr>`).join("");
    const gaps = (s.recent_gaps || []).slice(-10).reverse().map(g => `<tr data-gap="${esc(g.tag)}"><td>${esc(g.tag)}</td><td class="t">${ms(g.from)}</td><td class="t">${ms(g.to)}</td>
      <td class="n">${fmt((Date.parse(g.to) - Date.parse(g.from)) / 1000, 1)} s</td><td>${esc(g.reason)}</td><td class="n">${g.backfilled}${g.backfill_error ? ` (${esc(g.backfill_error)})` : ""}</td></tr>`).join("");
    return `<div class="conn" data-conn-site="${esc(s.site)}" data-connected="${s.connected}">
      <h3>${esc(s.site)} <span class="tag ${s.connected ? "ok" : "bad"}">${s.connected ? "connected / 已连接" : "not connected / 未连接"}</span> <small>${esc(s.endpoint)} · ${esc(s.security)}</small></h3>
      <div class="kpis">
        ${kpi("notifications/s", fmt(s.notifications_per_s, 0))}
        ${kpi("monitored", `${s.monitored} / ${s.signals}`, s.monitored < s.signals)}
        ${kpi("sessions", s.sessions)}${kpi("connection losses", s.connection_losses, s.connection_losses > 0)}
        ${kpi("Bad", s.bad_quality, s.bad_quality > 0)}${kpi("Uncertain", s.uncertain_quality)}
        ${kpi("overflows", s.overflows, s.overflows > 0)}${kpi("gaps", s.gap_records, s.gap_records > 0)}${kpi("open gaps", s.open_gaps, s.open_gaps > 0)}
        ${kpi("back-filled", s.backfilled)}${kpi("stale tags", (s.stale || []).length, (s.stale || []).length > 0)}
        ${kpi("clock skew server / source", skew, s.clock_skew_flagged)}
      </div>
      ${s.last_error ? `<div class="note">last error ${ms(s.last_error_at)}: ${esc(s.last_error)}</div>` : ""}
      ${errors ? `<table><thead><tr><th>Tag not flowing</th><th>Node</th><th>Status</th></tr></thead><tbody>${errors}</tbody></table>` : ""}
      ${gaps ? `<table><thead><tr><th>Gap in</th><th>From</th><th>To</th><th>Length</th><th>Why</th><th>Back-filled</th></tr></thead><tbody>${gaps}</tbody></table>` : ""}
    </div>`;
  }).join("") || `<div class="empty">No connectors in this process / 本进程无连接器</div>`;
}

/* ---------- wiring into the page's router ---------- */
function viewsRoute(){
  clearInterval(lineTimer); clearInterval(eqTimer); clearInterval(connTimer);
  if (view.name === "connectors") { loadConnectors(); connTimer = setInterval(loadConnectors, 2000); }
  if (view.name === "overview") { pollGroup(); }
  if (view.name === "line") {
    lineKey = view.arg.site + "/" + view.arg.line;
    document.title = `PharmaTwin · ${view.arg.site} ${view.arg.line}`;
    $("line-view").innerHTML = '<div class="empty">Loading the line…</div>';
    // Values come with the event stream; the batch and costs around them less often.
    loadLine(); lineTimer = setInterval(loadLine, liveEs && !asOf ? 15000 : 3000);
  }
  if (view.name === "equipment") {
    const key = [view.arg.site, view.arg.line, view.arg.eq].join("/");
    if (key !== eqKey) { eqKey = key; eqChosen = null; eqWindow = {hours: 1}; }
    document.title = `PharmaTwin · ${view.arg.eq}`;
    loadEquipment(); eqTimer = setInterval(() => { loadEquipment(); if (!eqWindow.from) drawEqTrend(); }, 10000);
  }
  if (view.name === "quality") loadQualityBoard();
  if (view.name === "maintenance") pollWorkOrders();
  addCsvButtons();
}
// The line's readings from the event stream: the values, quality and age of the signals the
// line and unit views already hold (names, units and limits came with /api/signals).
function viewsOnReadings(list){
  if (asOf) return;
  const by = new Map(list.map(r => [r.path, r]));
  const merge = arr => { for (const x of arr) { const r = by.get(x.path); if (r) Object.assign(x, r); } };
  merge(lineSignals); merge(eqSignals);
  if (view.name === "line" && lineSignals.length) renderLineView();
}
// Called by the page after every live update of the sites.
function viewsOnSites(){
  if (view.name === "line" && lineSignals.length) renderLineView();
  if (view.name === "overview") renderGroup();
}
function viewsStart(){
  $("wo-form").addEventListener("submit", submitWorkOrder);
  $("cap-cqa").addEventListener("change", () => { capCqa = $("cap-cqa").value; loadQualityBoard(); });
  setInterval(() => { if (view.name === "overview") pollGroup(); }, 15000);
  setInterval(() => { if (view.name === "quality") loadQualityBoard(); }, 15000);
  setInterval(pollWorkOrders, 10000);
  pollWorkOrders();
}
