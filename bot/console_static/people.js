// Tenants and people: whom the page acts as.
import { apiJson, q } from "./api.js";
import { myEchoes, renderMine, restartPolling } from "./chat.js";
import { refreshClock } from "./clock.js";
import { avatarText, el, roleBadges, showBanner } from "./dom.js";
import { loadPulse } from "./pulse.js";
import { $, state } from "./state.js";

export async function loadTenants() {
  const data = await apiJson("GET", "/console/api/tenants");
  state.tenants = data.tenants || [];
  const sel = $("tenant-select");
  sel.replaceChildren(...state.tenants.map((t) => el("option", { value: t.key, text: t.name })));
  const wanted = sessionStorage.getItem("dx.tenant");
  const pick = state.tenants.find((t) => t.key === wanted)
    || state.tenants.find((t) => t.platform === "console") || state.tenants[0];
  if (!pick) {
    showBanner("配置里还没有公司（tenants）。");
    return;
  }
  sel.value = pick.key;
  await selectTenant(pick.key);
}

export async function selectTenant(key) {
  state.tenant = state.tenants.find((t) => t.key === key) || null;
  sessionStorage.setItem("dx.tenant", key);
  const data = await apiJson("GET", `/console/api/users?${q({ tenant: key })}`);
  state.users = data.users || [];
  renderPeople();
  const wanted = new URL(window.location.href).searchParams.get("user") || sessionStorage.getItem(`dx.me.${key}`);
  const me = state.users.find((u) => u.userid === wanted);
  if (me) selectUser(me.userid);
  else {
    state.me = null;
    renderMe();
    $("chat").replaceChildren(el("div", { class: "chat-empty", text: "请在左侧选择一位同事。" }));
  }
  refreshClock();
}

export function matches(u, needle) {
  if (!needle) return true;
  const hay = [u.name, u.userid, u.pinyin, u.department].join(" ").toLowerCase();
  return needle.toLowerCase().split(/\s+/).every((part) => hay.includes(part));
}

export function renderPeople() {
  const needle = $("people-search").value.trim();
  const shown = state.users.filter((u) => matches(u, needle));
  const list = $("people-list");
  if (!shown.length) {
    list.replaceChildren(el("li", { class: "people-empty", text: needle ? "没有匹配的同事" : "还没有员工，请先导入花名册" }));
    return;
  }
  list.replaceChildren(...shown.map((u) => el("li", {
    class: `person${state.me && state.me.userid === u.userid ? " active" : ""}`,
    dataset: { userid: u.userid }, title: `${u.name}（${u.userid}）${u.department}`,
    onclick: () => selectUser(u.userid),
  },
  el("div", { class: "avatar", text: avatarText(u.name) }),
  el("div", { class: "person-text" },
    el("div", { class: "person-name" }, u.name, " ", ...roleBadges(u.roles)),
    el("div", { class: "person-dept", text: u.department.split("/").slice(-2).join(" / ") })))));
}

export function renderMe() {
  const box = $("me");
  const u = state.me;
  if (!u) {
    box.replaceChildren("请在左侧选择一位同事，以他/她的身份使用动线");
    return;
  }
  box.replaceChildren("我是 ", el("strong", { text: u.name }), " ",
    el("span", { class: "muted", text: `${u.userid} · ${u.department}` }), " ", ...roleBadges(u.roles));
  const chatOk = state.tenant && state.tenant.platform === "console";
  $("input").disabled = !chatOk;
  $("send").disabled = !chatOk;
  $("input").placeholder = chatOk
    ? "给动线发消息，例如：O1-KR2 完成2份临床评价报告初稿 @李娜（Enter 发送，Shift+Enter 换行）"
    : `这家公司通过${state.tenant.platform === "wecom" ? "企业微信" : "钉钉"}对话，控制台只能查看数据`;
}

export function selectUser(userid) {
  const u = state.users.find((x) => x.userid === userid);
  if (!u) return;
  state.me = u;
  state.generation += 1;
  state.after = 0;
  state.cards = new Map();
  state.seen = new Set();
  state.pressed = new Map();
  sessionStorage.setItem(`dx.me.${state.tenant.key}`, userid);
  renderPeople();
  renderMe();
  const chat = $("chat");
  chat.replaceChildren();
  for (const m of myEchoes()) chat.append(renderMine(m));
  if (!chat.childElementCount) chat.append(el("div", { class: "chat-empty", text: "还没有消息。可以直接回复本周关键动作，或在右侧运行“09:30 晨间提醒”。" }));
  restartPolling();
  if (state.tab === "pulse") loadPulse();
}
