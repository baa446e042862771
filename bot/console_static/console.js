// The console page: act as any employee, chat with the bot, move the clock, see the pulse.
// ES modules, no build step and nothing loaded from the network; this one wires the page.
import { apiJson, takeToken } from "./api.js";
import { sendText } from "./chat.js";
import { loadJobs, quickTime, refreshClock, setClock, showClock } from "./clock.js";
import { showBanner, toast } from "./dom.js";
import { loadTenants, renderPeople, selectTenant } from "./people.js";
import { loadPulse } from "./pulse.js";
import { $, CLOCK_POLL_MS, state } from "./state.js";

function switchTab(tab) {
  state.tab = tab;
  document.querySelectorAll(".tab").forEach((b) => {
    const on = b.dataset.tab === tab;
    b.classList.toggle("active", on);
    b.setAttribute("aria-selected", on ? "true" : "false");
  });
  $("view-chat").hidden = tab !== "chat";
  $("view-pulse").hidden = tab !== "pulse";
  if (tab === "pulse") loadPulse();
}

function wire() {
  $("people-search").addEventListener("input", renderPeople);
  $("tenant-select").addEventListener("change", (ev) => selectTenant(ev.target.value));
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("input");
    const text = input.value;
    input.value = "";
    sendText(text);
  });
  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.querySelectorAll("#examples .chip").forEach((chip) => chip.addEventListener("click", () => {
    const input = $("input");
    input.value = chip.dataset.text;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }));
  document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => switchTab(b.dataset.tab)));
  $("clock-set").addEventListener("click", () => setClock($("clock-input").value));
  $("clock-reset").addEventListener("click", async () => {
    try {
      showClock(await apiJson("DELETE", "/console/api/clock"));
      toast("已恢复真实时间");
    } catch (e) { toast(`恢复失败：${e.message}`); }
  });
  document.querySelectorAll("[data-quick]").forEach((b) => b.addEventListener("click", () => quickTime(b.dataset.quick)));
  $("pulse-refresh").addEventListener("click", loadPulse);
  $("pulse-week").addEventListener("change", loadPulse);
  setInterval(refreshClock, CLOCK_POLL_MS);
}

async function start() {
  state.token = takeToken();
  wire();
  try {
    await loadTenants();
    await loadJobs();
    await refreshClock();
  } catch (e) {
    if (e.status !== 401) showBanner(`控制台加载失败：${e.message}`);
  }
}

document.addEventListener("DOMContentLoaded", start);
