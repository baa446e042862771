// The clock panel and the jobs: names come from /console/api/jobs (the job registry).
import { apiJson, q } from "./api.js";
import { el, toast } from "./dom.js";
import { loadPulse } from "./pulse.js";
import { $, state } from "./state.js";
import { addDays, formatClock, localString, localToIso, zone, zonedParts } from "./zone.js";

export async function refreshClock() {
  try {
    const data = await apiJson("GET", `/console/api/clock${state.tenant ? "?" + q({ tenant: state.tenant.key }) : ""}`);
    showClock(data);
  } catch (e) { /* the banner says why */ }
}

export function showClock(data) {
  state.clock = { now: new Date(data.now), simulated: data.simulated };
  $("clock-now").textContent = formatClock(state.clock.now);
  $("clock-badge").hidden = !data.simulated;
  const input = $("clock-input");
  if (document.activeElement !== input) input.value = localString(zonedParts(state.clock.now, zone()));
}

export async function setClock(local) {
  const iso = localToIso(local, zone());
  if (!iso) { toast("请先选择日期和时间"); return; }
  try {
    const body = state.tenant ? { now: iso, tenant: state.tenant.key } : { now: iso };
    showClock(await apiJson("PUT", "/console/api/clock", body));
    toast(`时间已设为 ${formatClock(state.clock.now)}`);
    if (state.tab === "pulse") loadPulse();
  } catch (e) { toast(`设定失败：${e.message}`); }
}

export function quickTime(kind) {
  const now = zonedParts(state.clock ? state.clock.now : new Date(), zone());
  let p;
  if (kind === "today0930") p = { ...now, hour: 9, minute: 30 };
  else if (kind === "fri1730") p = { ...addDays(now, 5 - now.weekday), hour: 17, minute: 30 };
  else if (kind === "plus1d") p = addDays(now, 1);
  else p = { ...addDays(now, 8 - now.weekday), hour: 9, minute: 30 };
  setClock(localString(p));
}

export async function loadJobs() {
  // The job registry is the one list: a feature's new job shows here without an edit to this page.
  try {
    const data = await apiJson("GET", `/console/api/jobs?${q({ locale: (state.tenant && state.tenant.locale) || "zh" })}`);
    state.jobLabels = data.labels || {};
    $("jobs").replaceChildren(...(data.jobs || []).map((name) => el("button", {
      type: "button", dataset: { job: name }, text: `▶ ${state.jobLabels[name] || name}`, onclick: () => runJob(name),
    })));
  } catch (e) {
    $("job-status").textContent = `任务列表加载失败：${e.message}`;
  }
}

export async function runJob(name) {
  if (!state.tenant) return;
  const label = state.jobLabels[name] || name;
  $("job-status").textContent = `${label}：运行中…`;
  try {
    const data = await apiJson("POST", `/console/api/jobs/${encodeURIComponent(name)}/run`, { tenant: state.tenant.key });
    $("job-status").textContent = `${label}：已发送 ${data.sent} 条（${formatClock(new Date(data.at))}）${data.note ? `：${data.note}` : ""}`;
  } catch (e) {
    $("job-status").textContent = `${label}：失败 — ${e.message}`;
  }
}
