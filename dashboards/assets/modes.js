"use strict";
/* The page's modes: time travel (the views of a past moment, read from the store) and
   training (scenarios on the simulated plants, marked everywhere). Loaded after index.html's
   script and views.js, whose `view`, `$`, `esc`, `fmt`, `ME`, `poll`, `viewsRoute`,
   `addCsvButtons` and `askSignature` it uses. */

/* ---------- time travel ---------- */
// The moment looked at (ISO, UTC), or null while live.
let asOf = null;
// `url` asking for the moment looked at: the API answers `?at=` from the store.
function withAt(url){
  if (!asOf) return url;
  return url + (url.includes("?") ? "&" : "?") + "at=" + encodeURIComponent(asOf);
}
function setAsOf(iso){
  asOf = iso;
  document.body.classList.toggle("past", !!iso);
  $("tt-banner").hidden = !iso;
  $("tt-live").hidden = !iso;
  if (iso) {
    $("tt-when").textContent = new Date(iso).toLocaleString("en-GB", {hour12: false});
    // The picker shows local time.
    const t = new Date(iso);
    $("tt-at").value = new Date(t - t.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
    // The past does not move: no stream, one read per view.
    stopStream();
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    $("mode").textContent = "time travel";
  } else {
    $("tt-at").value = "";
    if (useSse) startStream(); else startPolling();
  }
  poll();
  viewsRoute();
}
function timeTravelStart(){
  $("tt-at").addEventListener("change", () => {
    const v = $("tt-at").value;
    if (!v) return setAsOf(null);
    const t = new Date(v);   // the input is local time
    if (isNaN(t) || t > new Date()) { $("tt-at").value = ""; return; }
    setAsOf(t.toISOString());
  });
  $("tt-live").addEventListener("click", () => setAsOf(null));
  $("tt-back").addEventListener("click", () => setAsOf(null));
}

/* ---------- training ---------- */
let training = null, trainingTimer = null;
const canTrain = () => !!(ME && ME.permissions && ME.permissions.includes("run_training"));
async function loadTraining(){
  try {
    const r = await fetch("/api/training", {cache: "no-store"});
    if (!r.ok) return;
    training = await r.json();
  } catch (e) { return; }
  const on = training.mode === "training";
  document.body.classList.toggle("training", on);
  $("training-banner").hidden = !on;
  $("nav-training").hidden = !on;
  if (!on) return;
  const s = training.session;
  $("training-state").textContent = s ? `scenario “${s.scenario_name}” running since ${hhmmss(new Date(s.started_at))}, started by ${s.trainer}`
    : "no scenario running";
  if (view.name === "training") renderTraining();
}
function dt(t){ return t ? new Date(t).toLocaleString("en-GB", {hour12: false}) : "–"; }
function secs(s){ return s == null ? "–" : s < 120 ? `${fmt(s, 0)} s` : `${fmt(s / 60, 1)} min`; }
async function renderTraining(){
  const box = $("training-view");
  if (!training || training.mode !== "training") {
    box.innerHTML = `<div class="empty">This twin is not in training mode / 非培训模式. Training runs on the simulated plants: <code>pharmatwin demo --training</code>.</div>`;
    return;
  }
  const s = training.session;
  const scen = (training.scenarios || []).map(sc => `<tr data-scenario="${esc(sc.id)}"><td><b>${esc(sc.name)}</b><div class="sub">${esc(sc.description)}</div></td>
    <td>${sc.faults.map(f => `${esc(f.site)} / ${esc(f.line)} / ${esc(f.equipment)}: ${f.signal ? `${esc(f.signal)} sensor off line for ${fmt(f.offline_hours, 1)} plant h` : `${esc(f.part)} ×${fmt(f.factor, 0)}`} after ${fmt(f.after_plant_hours, 1)} plant h`).join("<br>")}</td>
    <td>${canTrain() && !s ? `<button class="t-start" data-id="${esc(sc.id)}">Start / 开始</button>` : ""}</td></tr>`).join("");
  let session = `<div class="empty">No scenario running / 无进行中的场景</div>`;
  if (s) {
    const faults = s.faults.map(f => `<tr><td>${esc(f.fault.site)} / ${esc(f.fault.line)} / ${esc(f.fault.equipment)}</td><td>${esc(f.fault.signal || f.fault.part)}</td>
      <td>${dt(f.due_at)}</td><td>${f.injected_at ? dt(f.injected_at) : "pending / 待注入"}</td><td>${esc(f.error || "")}</td></tr>`).join("");
    const alerts = s.alerts.map(a => `<tr><td>${esc(a.kind)}</td><td>${esc(a.site)} / ${esc(a.line)} / ${esc(a.equipment || "")}</td><td>${esc(a.message)}</td>
      <td>${dt(a.raised_at)}</td><td>${esc(a.acknowledged_by || "–")}</td><td class="n" data-csv="${esc(a.response_s)}">${secs(a.response_s)}</td></tr>`).join("")
      || `<tr><td colspan="6" class="empty">No alert yet / 暂无警报</td></tr>`;
    session = `<h3>Running: ${esc(s.scenario_name)} <small>since ${dt(s.started_at)} · trainer ${esc(s.trainer)}</small>
      ${canTrain() ? `<button id="t-stop">Stop and keep the record / 结束并保存记录</button>` : ""}</h3>
      <div class="scroll"><table class="list" id="t-faults"><thead><tr><th>Unit / 设备</th><th>Part / 部件</th><th>Due / 计划</th><th>Injected / 已注入</th><th></th></tr></thead><tbody>${faults}</tbody></table></div>
      <h3>Alerts of the session / 本次警报 <small>${s.summary.alerts} raised, ${s.summary.acknowledged} acknowledged, mean response ${secs(s.summary.mean_response_s)}</small></h3>
      <div class="scroll"><table class="list" id="t-alerts"><thead><tr><th>Kind</th><th>Where / 位置</th><th>Alert / 警报</th><th>Raised / 触发</th><th>Acknowledged by / 确认人</th><th>Response / 响应</th></tr></thead><tbody>${alerts}</tbody></table></div>`;
  }
  let records = "";
  if (canTrain() || (ME && ME.permissions.includes("view_audit"))) {
    const r = await fetch("/api/training/records", {cache: "no-store"}).catch(() => null);
    const list = r && r.ok ? await r.json() : [];
    records = `<h3>Training records / 培训记录</h3><div class="scroll"><table class="list" id="t-records"><thead><tr><th>Session</th><th>Scenario / 场景</th><th>Trainer / 培训师</th><th>Started / 开始</th><th>Ended / 结束</th><th>Alerts</th><th>Acknowledged</th><th>Mean response</th><th>Slowest</th></tr></thead><tbody>${
      list.map(x => `<tr><td>${esc(x.id)}</td><td>${esc(x.scenario_name)}</td><td>${esc(x.trainer)}</td><td>${dt(x.started_at)}</td><td>${dt(x.ended_at)}</td>
      <td class="n">${x.summary.alerts}</td><td class="n">${x.summary.acknowledged}</td><td class="n">${secs(x.summary.mean_response_s)}</td><td class="n">${secs(x.summary.max_response_s)}</td></tr>`).join("")
      || `<tr><td colspan="9" class="empty">None yet / 暂无</td></tr>`}</tbody></table></div>`;
  }
  box.innerHTML = `<h2>Training / 培训 <small>scenarios on the simulated plants; trainees work the usual views</small></h2>
    <div class="scroll"><table class="list" id="t-scenarios"><thead><tr><th>Scenario / 场景</th><th>Faults / 故障</th><th></th></tr></thead><tbody>${scen}</tbody></table></div>
    ${session}${records}`;
  box.querySelectorAll(".t-start").forEach(b => b.onclick = () => trainingAction("/api/training/start", {scenario: b.dataset.id}));
  if ($("t-stop")) $("t-stop").onclick = () => trainingAction("/api/training/stop", {});
  addCsvButtons();
}
async function trainingAction(url, body){
  const r = await fetch(url, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) alert((await r.json().catch(() => ({}))).error || "HTTP " + r.status);
  loadTraining();
}
function modesRoute(){
  clearInterval(trainingTimer);
  if (view.name === "training") { renderTraining(); trainingTimer = setInterval(loadTraining, 3000); }
}
function modesStart(){
  timeTravelStart();
  // `/?at=<time>#/view` opens a view at a past moment: a link to it can be shared.
  const at = new URLSearchParams(location.search).get("at");
  if (at && !isNaN(new Date(at))) setAsOf(new Date(at).toISOString());
  loadTraining();
  setInterval(() => { if (view.name !== "training") loadTraining(); }, 15000);
}
