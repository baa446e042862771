// The audit-log page: who looked at whose data, and when, for HR and admins.
// Plain browser JavaScript like the console page; the token is the console's (sessionStorage).
"use strict";

(function () {
  const TOKEN_HEADER = "X-Dongxian-Token";
  const $ = (id) => document.getElementById(id);
  let token = "";
  let people = []; // [{userid, name, department, roles}]

  function takeToken() {
    const url = new URL(window.location.href);
    const given = url.searchParams.get("token") || "";
    if (given) {
      sessionStorage.setItem("dx.token", given);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return given || sessionStorage.getItem("dx.token") || "";
  }

  async function getJson(path) {
    const res = await fetch(path, { headers: token ? { [TOKEN_HEADER]: token } : {} });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401) banner("需要控制台令牌：请用带 ?token= 的地址打开控制台。");
    if (!res.ok) throw new Error((data && data.error) || `HTTP ${res.status}`);
    return data;
  }

  function banner(text) {
    $("banner").textContent = text;
    $("banner").hidden = !text;
  }

  function option(value, text) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  }

  async function loadTenants() {
    const data = await getJson("/console/api/tenants");
    const select = $("audit-tenant");
    select.replaceChildren(...data.tenants.map((t) => option(t.key, t.name)));
    const wanted = new URL(window.location.href).searchParams.get("tenant") || sessionStorage.getItem("dx.tenant");
    if (wanted && data.tenants.some((t) => t.key === wanted)) select.value = wanted;
    await loadPeople();
  }

  async function loadPeople() {
    const key = $("audit-tenant").value;
    const data = await getJson(`/console/api/users?tenant=${encodeURIComponent(key)}`);
    people = data.users;
    const viewers = people.filter((p) => (p.roles || []).some((r) => r === "hr" || r === "admin"));
    const select = $("audit-viewer");
    select.replaceChildren(...viewers.map((p) => option(p.userid, `${p.name}（${p.userid}）`)));
    const wanted = new URL(window.location.href).searchParams.get("user") || sessionStorage.getItem(`dx.me.${key}`);
    if (wanted && viewers.some((p) => p.userid === wanted)) select.value = wanted;
    $("audit-people").replaceChildren(...people.map((p) => option(p.userid, `${p.name} · ${p.department}`)));
  }

  function personId(text) {
    const t = text.trim();
    if (!t) return "";
    const exact = people.find((p) => p.userid === t) || people.find((p) => p.name === t);
    return exact ? exact.userid : t;
  }

  function cell(text, title) {
    const td = document.createElement("td");
    td.textContent = text;
    if (title) td.title = title;
    return td;
  }

  async function search(event) {
    if (event) event.preventDefault();
    const q = new URLSearchParams({ tenant: $("audit-tenant").value, userid: $("audit-viewer").value });
    const person = personId($("audit-person").value);
    if (person) q.set("person", person);
    if ($("audit-from").value) q.set("from", $("audit-from").value);
    if ($("audit-to").value) q.set("to", $("audit-to").value);
    let data;
    try {
      data = await getJson(`/console/api/audit?${q}`);
    } catch (e) {
      $("audit-status").textContent = `查询失败：${e.message}`;
      $("audit-table").querySelector("tbody").replaceChildren();
      return;
    }
    const rows = data.entries.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.action = e.action;
      tr.append(cell(e.at), cell(`${e.actor.name}（${e.actor.userid}）`, e.actor.department),
        cell(e.action_text, e.action), cell(e.subject_text, e.subject));
      return tr;
    });
    $("audit-table").querySelector("tbody").replaceChildren(...rows);
    $("audit-status").textContent = `共 ${rows.length} 条（时间为 ${data.timezone} 当地时间）`;
  }

  async function start() {
    token = takeToken();
    $("audit-form").addEventListener("submit", search);
    $("audit-tenant").addEventListener("change", () => loadPeople().then(search));
    try {
      await loadTenants();
      await search();
    } catch (e) {
      $("audit-status").textContent = `加载失败：${e.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
