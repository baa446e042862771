// The console page: act as any employee, chat with the bot, move the clock, see the pulse.
// Plain browser JavaScript, no build step and nothing loaded from the network.
"use strict";

(function () {
  const TOKEN_HEADER = "X-Dongxian-Token";
  const POLL_MS = 500;
  const CLOCK_POLL_MS = 5000;
  const ROLE_NAMES = { manager: "经理", hr: "HR", pmo: "PMO", admin: "管理员" };
  const JOB_NAMES = {
    morning_prompt: "09:30 晨间提醒", pulse: "周五组织脉搏", overdue_scan: "阻塞预警扫描", review_briefs: "事实简报",
  };
  const FIGURES = [
    ["fill_rate", "填写率", "filled", (f) => f.population - f.skipped],
    ["completion_rate", "完成率", "done", (f) => f.actions],
    ["linkage_rate", "目标关联度", "linked", (f) => f.actions],
    ["witness_rate", "同事见证频次", "confirmed", (f) => f.done],
  ];
  const STATUS_CLASS = { confirmed: "status-confirmed", done: "status-done", not_done: "status-not_done" };

  const state = {
    token: "",
    tenants: [],
    tenant: null, // {key, name, platform, timezone, locale}
    users: [],
    me: null, // the user the page acts as
    after: 0,
    generation: 0, // bumps on every switch, so late answers for someone else are dropped
    cards: new Map(), // card id → {node, sig}: its element in the chat and what it showed
    seen: new Set(),
    pressed: new Map(), // card id → {seq, until}: a press waiting for the card to change
    clock: null, // {now: Date, simulated}
    tab: "chat",
    pollTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  // -- token: read once from the URL, then only ever sent as a header ------------
  function takeToken() {
    const url = new URL(window.location.href);
    let token = url.searchParams.get("token") || "";
    const hash = new URLSearchParams(url.hash.replace(/^#/, ""));
    token = token || hash.get("token") || "";
    if (token) {
      sessionStorage.setItem("dx.token", token);
      url.searchParams.delete("token");
      hash.delete("token");
      url.hash = hash.toString();
      // Out of the address bar, the history and anything copied from it.
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return token || sessionStorage.getItem("dx.token") || "";
  }

  async function api(method, path, body) {
    const headers = {};
    if (state.token) headers[TOKEN_HEADER] = state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") {
      const csrf = document.querySelector('meta[name="dx-csrf"]');
      if (csrf) headers["X-Dongxian-CSRF"] = csrf.content;
    }
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) showBanner("需要控制台令牌：请用管理员给的带 ?token= 的地址打开本页。");
    return res;
  }

  async function apiJson(method, path, body) {
    const res = await api(method, path, body);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && data.error) || `HTTP ${res.status}`);
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  async function apiBlob(path) {
    const res = await api("GET", path);
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    const disposition = res.headers.get("Content-Disposition") || "";
    return { blob: await res.blob(), filename: filenameFrom(disposition) };
  }

  function filenameFrom(disposition) {
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    if (star) { try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ } }
    const plain = /filename="?([^";]+)"?/i.exec(disposition);
    return plain ? plain[1] : "";
  }

  function q(params) {
    return Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
  }

  // -- small DOM helpers -----------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function showBanner(text) {
    const b = $("banner");
    b.textContent = text;
    b.hidden = !text;
  }

  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
  }

  function avatarText(name) {
    return (name || "?").length > 2 ? name.slice(-2) : name || "?";
  }

  function roleBadges(roles) {
    return (roles || []).filter((r) => r !== "employee")
      .map((r) => el("span", { class: `badge ${r}`, text: ROLE_NAMES[r] || r }));
  }

  function pct(v) {
    return v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`;
  }

  // -- time in the tenant's zone --------------------------------------------------
  function zone() {
    return (state.tenant && state.tenant.timezone) || "Asia/Shanghai";
  }

  function zonedParts(date, tz) {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
    }).formatToParts(date);
    const o = {};
    for (const p of parts) o[p.type] = p.value;
    return {
      year: +o.year, month: +o.month, day: +o.day, hour: +o.hour, minute: +o.minute, second: +o.second,
      weekday: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(o.weekday) + 1,
    };
  }

  function offsetMinutes(tz, ms) {
    const p = zonedParts(new Date(ms), tz);
    return Math.round((Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - ms) / 60000);
  }

  // "2026-12-04T09:30" in the tenant's zone → ISO-8601 with that zone's offset
  function localToIso(local, tz) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
    if (!m) return null;
    const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    let off = offsetMinutes(tz, guess);
    off = offsetMinutes(tz, guess - off * 60000);
    const sign = off >= 0 ? "+" : "-";
    const a = Math.abs(off);
    return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
  }

  function localString(p) {
    const two = (n) => String(n).padStart(2, "0");
    return `${p.year}-${two(p.month)}-${two(p.day)}T${two(p.hour)}:${two(p.minute)}`;
  }

  function addDays(p, n) {
    const d = new Date(Date.UTC(p.year, p.month - 1, p.day + n));
    return { ...p, year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: ((p.weekday - 1 + n) % 7 + 7) % 7 + 1 };
  }

  function formatClock(date) {
    return new Intl.DateTimeFormat("zh-CN", {
      timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit", weekday: "short",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).format(date);
  }

  function formatTime(iso) {
    if (!iso) return "";
    return new Intl.DateTimeFormat("zh-CN", {
      timeZone: zone(), month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).format(new Date(iso));
  }

  function isoWeekOf(p) {
    const d = new Date(Date.UTC(p.year, p.month - 1, p.day));
    const day = d.getUTCDay() || 7;
    d.setUTCDate(d.getUTCDate() + 4 - day);
    const yearStart = new Date(Date.UTC(d.getUTCFullYear(), 0, 1));
    const week = Math.ceil(((d - yearStart) / 86400000 + 1) / 7);
    return `${d.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
  }

  // -- tenants and people ----------------------------------------------------------
  async function loadTenants() {
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

  async function selectTenant(key) {
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

  function matches(u, needle) {
    if (!needle) return true;
    const hay = [u.name, u.userid, u.pinyin, u.department].join(" ").toLowerCase();
    return needle.toLowerCase().split(/\s+/).every((part) => hay.includes(part));
  }

  function renderPeople() {
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

  function renderMe() {
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

  function selectUser(userid) {
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

  // -- chat --------------------------------------------------------------------------
  // What the person typed is not stored by the server; keep it for this browser tab.
  function echoKey() {
    return `dx.echo.${state.tenant.key}.${state.me.userid}`;
  }

  function myEchoes() {
    try { return JSON.parse(sessionStorage.getItem(echoKey()) || "[]"); } catch (e) { return []; }
  }

  function rememberEcho(m) {
    const all = myEchoes();
    all.push(m);
    sessionStorage.setItem(echoKey(), JSON.stringify(all.slice(-200)));
  }

  function restartPolling() {
    clearTimeout(state.pollTimer);
    poll();
  }

  async function poll() {
    const gen = state.generation;
    if (state.me && state.tenant) {
      try {
        const data = await apiJson("GET", `/console/api/inbox?${q({ tenant: state.tenant.key, userid: state.me.userid, after: pollFrom() })}`);
        if (gen === state.generation) {
          for (const m of data.messages || []) addBotMessage(m);
        }
      } catch (e) {
        if (e.status !== 401) console.warn("inbox poll failed", e);
      }
    }
    if (gen === state.generation) state.pollTimer = setTimeout(poll, POLL_MS);
  }

  // While a press waits for its card to change, read from just before that card too:
  // the changed card normally comes with a new seq, but a database may hand out the
  // same number again when the old row was the newest one.
  function pollFrom() {
    let from = state.after;
    const now = Date.now();
    for (const [id, p] of state.pressed) {
      if (p.until < now) {
        state.pressed.delete(id);
        unpend(id);
      } else {
        from = Math.min(from, p.seq - 1);
      }
    }
    return Math.max(0, from);
  }

  function unpend(cardId) {
    const entry = state.cards.get(cardId);
    if (!entry) return;
    const node = entry.node.querySelector(".card");
    node.classList.remove("pending");
    node.querySelectorAll(".card-buttons button").forEach((b) => { b.disabled = false; });
  }

  function insertByTime(node, at) {
    const chat = $("chat");
    const empty = chat.querySelector(".chat-empty");
    if (empty) empty.remove();
    node.dataset.at = String(at);
    // Bot messages and one's own echoes interleave by the time they happened.
    let before = null;
    for (const child of chat.children) {
      if (Number(child.dataset.at || 0) > at) { before = child; break; }
    }
    const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
    chat.insertBefore(node, before);
    if (atBottom || !before) chat.scrollTop = chat.scrollHeight;
  }

  function addBotMessage(m) {
    state.after = Math.max(state.after, m.seq);
    const at = m.at ? Date.parse(m.at) : Date.now();
    if (m.kind === "card" && m.card) {
      const sig = JSON.stringify(m.card);
      const old = state.cards.get(m.card.id);
      if (old && old.sig === sig) return;
      state.pressed.delete(m.card.id);
      const wrapped = botWrap(renderCard(m.card), m, at);
      state.cards.set(m.card.id, { node: wrapped, sig });
      // A changed card comes again with the same id: show it in place, as WeCom does.
      if (old && old.node.isConnected) {
        wrapped.dataset.at = old.node.dataset.at;
        old.node.replaceWith(wrapped);
      } else {
        insertByTime(wrapped, at);
      }
      return;
    }
    if (state.seen.has(m.seq)) return;
    state.seen.add(m.seq);
    let content;
    if (m.kind === "markdown") content = el("div", { class: "bubble markdown" }, renderMarkdown(m.text));
    else if (m.kind === "file" && m.file) content = renderFile(m);
    else content = el("div", { class: "bubble", text: m.text });
    insertByTime(botWrap(content, m, at), at);
  }

  function botWrap(content, m, at) {
    return el("div", { class: "msg bot", dataset: { seq: m.seq, kind: m.kind } },
      el("div", { class: "avatar bot", text: "动" }),
      el("div", { class: "msg-body" }, el("div", { class: "msg-time", text: `动线 · ${formatTime(new Date(at).toISOString())}` }), content));
  }

  function renderMine(m) {
    const node = el("div", { class: "msg mine" },
      el("div", { class: "avatar", text: avatarText(state.me.name) }),
      el("div", { class: "msg-body" }, el("div", { class: "msg-time", text: formatTime(new Date(m.at).toISOString()) }),
        el("div", { class: "bubble", text: m.text })));
    node.dataset.at = String(m.at);
    return node;
  }

  async function sendText(text) {
    text = text.trim();
    if (!text || !state.me) return;
    const echo = { text, at: Date.now(), id: `${Date.now()}-${Math.random().toString(36).slice(2, 10)}` };
    rememberEcho(echo);
    insertByTime(renderMine(echo), echo.at);
    try {
      await apiJson("POST", "/console/api/messages", {
        tenant: state.tenant.key, userid: state.me.userid, text, client_id: echo.id,
      });
    } catch (e) {
      toast(`发送失败：${e.message}`);
    }
  }

  function renderCard(card) {
    const node = el("div", { class: "card", dataset: { cardId: card.id } },
      el("div", { class: "card-source" }, el("i"), "动线"),
      el("div", { class: "card-title", text: card.title }),
      card.body ? el("div", { class: "card-desc", text: card.body }) : null);
    if (card.fields && card.fields.length) {
      node.append(el("div", { class: "card-fields" }, card.fields.map(([k, v]) =>
        el("div", { class: "card-field" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v })))));
    }
    const answered = Boolean(card.result);
    const selects = answered ? [] : card.selects || [];
    if (selects.length) {
      node.append(el("div", { class: "card-selects" }, selects.map((s) => renderSelect(s))));
    }
    if (answered) {
      node.append(el("div", { class: "card-result", text: card.result }));
      return node;
    }
    const buttons = (card.buttons || []).map((b) => el("button", {
      type: "button", class: b.style === "primary" ? "primary" : b.style === "danger" ? "danger" : "",
      dataset: { key: b.key }, text: b.text, onclick: () => press(node, card, b.key),
    }));
    if (card.submit && selects.length) {
      buttons.push(el("button", { type: "button", class: "primary", dataset: { key: card.submit.key },
        text: card.submit.text, onclick: () => press(node, card, card.submit.key) }));
    }
    if (buttons.length) node.append(el("div", { class: "card-buttons" }, buttons));
    return node;
  }

  function renderSelect(s) {
    const box = el("div", { class: "card-select", dataset: { selectKey: s.key, multi: s.multi ? "1" : "" } },
      el("div", { class: "t", text: s.title }));
    if (s.multi) {
      box.append(el("div", { class: "opts" }, s.options.map((o) =>
        el("label", {}, el("input", { type: "checkbox", value: o.id }), " ", o.text))));
    } else {
      box.append(el("select", { "aria-label": s.title },
        el("option", { value: "", text: "请选择" }), s.options.map((o) => el("option", { value: o.id, text: o.text }))));
    }
    return box;
  }

  function selectValues(node) {
    const values = {};
    for (const box of node.querySelectorAll(".card-select")) {
      const key = box.dataset.selectKey;
      values[key] = box.dataset.multi
        ? [...box.querySelectorAll("input:checked")].map((i) => i.value)
        : [box.querySelector("select").value].filter(Boolean);
    }
    return values;
  }

  async function press(node, card, key) {
    if (!state.me) return;
    node.classList.add("pending");
    node.querySelectorAll(".card-buttons button").forEach((b) => { b.disabled = true; });
    const seq = Number(node.closest(".msg").dataset.seq);
    // If the card has not changed by then (the bot answered in words instead), press again.
    state.pressed.set(card.id, { seq, until: Date.now() + 8000 });
    try {
      const res = await apiJson("POST", "/console/api/actions", {
        tenant: state.tenant.key, userid: state.me.userid, card_id: card.id, key, values: selectValues(node),
      });
      if (res && res.accepted === false) toast("这个按钮已经按过了");
    } catch (e) {
      toast(`操作失败：${e.message}`);
      state.pressed.delete(card.id);
      unpend(card.id);
    }
  }

  function renderFile(m) {
    const name = m.file.name || "文件";
    const link = el("a", { href: "#", text: name, onclick: (ev) => { ev.preventDefault(); download(m.file.url, name); } });
    const caption = m.text && m.text.split("\n")[0] !== `📎 ${name}` ? m.text.replace(`📎 ${name}`, "").trim() : "";
    const box = el("div", {},
      caption ? el("div", { class: "file-caption", text: caption }) : null,
      el("div", { class: "file" }, el("span", { class: "icon", text: "📎" }), link));
    if (/\.(png|jpe?g|gif|webp)$/i.test(name)) {
      const img = el("img", { class: "inline-image", alt: name });
      box.append(img);
      apiBlob(m.file.url).then(({ blob }) => { img.src = URL.createObjectURL(blob); })
        .catch(() => img.remove());
    }
    return box;
  }

  async function download(url, fallbackName) {
    try {
      const { blob, filename } = await apiBlob(url);
      const href = URL.createObjectURL(blob);
      const a = el("a", { href, download: filename || fallbackName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60000);
    } catch (e) {
      toast(`下载失败：${e.message}`);
    }
  }

  // A small, safe subset of the markdown WeCom shows (text is escaped first).
  function renderMarkdown(src) {
    const out = [];
    let list = null;
    const flush = () => { if (list) { out.push(list); list = null; } };
    for (const raw of String(src || "").split("\n")) {
      const line = raw.trimEnd();
      let m;
      if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) { flush(); out.push(el("h4", {}, inline(m[2]))); }
      else if ((m = /^\s*[-*]\s+(.*)$/.exec(line))) {
        if (!list || list.tagName !== "UL") { flush(); list = el("ul"); }
        list.append(el("li", {}, inline(m[1])));
      } else if ((m = /^\s*\d+[.)]\s+(.*)$/.exec(line))) {
        if (!list || list.tagName !== "OL") { flush(); list = el("ol"); }
        list.append(el("li", {}, inline(m[1])));
      } else if ((m = /^>\s?(.*)$/.exec(line))) { flush(); out.push(el("blockquote", {}, inline(m[1]))); }
      else if (!line.trim()) { flush(); }
      else { flush(); out.push(el("p", {}, inline(line))); }
    }
    flush();
    return out;
  }

  function inline(text) {
    const nodes = [];
    const re = /\*\*(.+?)\*\*|`([^`]+)`|\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)|<font color="(info|comment|warning)">(.*?)<\/font>/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) nodes.push(text.slice(last, m.index));
      if (m[1] !== undefined) nodes.push(el("strong", {}, inline(m[1])));
      else if (m[2] !== undefined) nodes.push(el("code", { text: m[2] }));
      else if (m[3] !== undefined) nodes.push(el("a", { href: m[4], target: "_blank", rel: "noopener noreferrer", text: m[3] }));
      else nodes.push(el("span", { class: `font-${m[5]}` }, inline(m[6])));
      last = re.lastIndex;
    }
    if (last < text.length) nodes.push(text.slice(last));
    return nodes;
  }

  // -- clock and jobs ------------------------------------------------------------------
  async function refreshClock() {
    try {
      const data = await apiJson("GET", `/console/api/clock${state.tenant ? "?" + q({ tenant: state.tenant.key }) : ""}`);
      showClock(data);
    } catch (e) { /* the banner says why */ }
  }

  function showClock(data) {
    state.clock = { now: new Date(data.now), simulated: data.simulated };
    $("clock-now").textContent = formatClock(state.clock.now);
    $("clock-badge").hidden = !data.simulated;
    const input = $("clock-input");
    if (document.activeElement !== input) input.value = localString(zonedParts(state.clock.now, zone()));
  }

  async function setClock(local) {
    const iso = localToIso(local, zone());
    if (!iso) { toast("请先选择日期和时间"); return; }
    try {
      const body = state.tenant ? { now: iso, tenant: state.tenant.key } : { now: iso };
      showClock(await apiJson("PUT", "/console/api/clock", body));
      toast(`时间已设为 ${formatClock(state.clock.now)}`);
      if (state.tab === "pulse") loadPulse();
    } catch (e) { toast(`设定失败：${e.message}`); }
  }

  function quickTime(kind) {
    const now = zonedParts(state.clock ? state.clock.now : new Date(), zone());
    let p;
    if (kind === "today0930") p = { ...now, hour: 9, minute: 30 };
    else if (kind === "fri1730") p = { ...addDays(now, 5 - now.weekday), hour: 17, minute: 30 };
    else if (kind === "plus1d") p = addDays(now, 1);
    else p = { ...addDays(now, 8 - now.weekday), hour: 9, minute: 30 };
    setClock(localString(p));
  }

  async function loadJobs() {
    let names = ["morning_prompt", "pulse"];
    try {
      // An unknown job's answer lists the known ones; nothing runs.
      const res = await api("POST", "/console/api/jobs/__list__/run", {});
      const body = await res.json();
      const m = /known:\s*(.*)$/.exec(body.error || "");
      if (res.status === 404 && m) names = m[1].split(",").map((s) => s.trim()).filter(Boolean);
    } catch (e) { /* keep the defaults */ }
    $("jobs").replaceChildren(...names.map((name) => el("button", {
      type: "button", dataset: { job: name }, text: `▶ ${JOB_NAMES[name] || name}`, onclick: () => runJob(name),
    })));
  }

  async function runJob(name) {
    if (!state.tenant) return;
    const label = JOB_NAMES[name] || name;
    $("job-status").textContent = `${label}：运行中…`;
    try {
      const data = await apiJson("POST", `/console/api/jobs/${encodeURIComponent(name)}/run`, { tenant: state.tenant.key });
      $("job-status").textContent = `${label}：已发送 ${data.sent} 条（${formatClock(new Date(data.at))}）${data.note ? `：${data.note}` : ""}`;
    } catch (e) {
      $("job-status").textContent = `${label}：失败 — ${e.message}`;
    }
  }

  // -- pulse ------------------------------------------------------------------------------
  function currentWeek() {
    return isoWeekOf(zonedParts(state.clock ? state.clock.now : new Date(), zone()));
  }

  async function loadPulse() {
    if (!state.me) {
      $("pulse-title").textContent = "数据";
      $("pulse-scope").textContent = "请先在左侧选择一位同事。";
      return;
    }
    const gen = state.generation;
    const weekInput = $("pulse-week");
    if (!weekInput.value) weekInput.value = currentWeek();
    let data;
    try {
      data = await apiJson("GET", `/console/api/pulse?${q({ tenant: state.tenant.key, userid: state.me.userid, week: weekInput.value })}`);
    } catch (e) {
      toast(`读取数据失败：${e.message}`);
      return;
    }
    if (gen !== state.generation) return;
    renderPulse(data);
  }

  function renderPulse(d) {
    const titles = { self: "我的数据", line: "团队脉搏", company: "组织脉搏" };
    $("pulse-title").textContent = `${titles[d.scope]} · ${d.week}`;
    $("view-pulse").dataset.scope = d.scope;
    const scopeText = {
      self: "员工只能看到自己的关键动作。团队和全公司的数据由经理和 HR 查看。",
      line: `你的汇报线（直接和间接下属）共 ${d.people} 人。`,
      company: `全公司在职 ${d.people} 人，按部门统计。`,
    };
    $("pulse-scope").textContent = scopeText[d.scope];
    const exportBtn = $("pulse-export");
    exportBtn.hidden = !d.export;
    exportBtn.onclick = d.export ? () => download(d.export, `动线周报-${d.week}.xlsx`) : null;

    if (d.total) {
      $("pulse-figures").replaceChildren(...FIGURES.map(([key, name, num, den]) => el("div", { class: "figure", dataset: { figure: key } },
        el("div", { class: "name", text: name }),
        el("div", { class: "value", text: pct(d.total[key]) }),
        el("div", { class: "detail", text: `${d.total[num]} / ${den(d.total)}` }))));
      $("pulse-depts").replaceChildren(deptTable(d));
    } else {
      $("pulse-figures").replaceChildren();
      $("pulse-depts").replaceChildren();
    }
    if (d.missing) {
      $("pulse-missing").replaceChildren(el("h3", { text: `本周未填写（${d.missing.length} 人）` }),
        d.missing.length ? el("div", { class: "names" }, d.missing.map((p) => el("span", { class: "name-chip", title: p.department, text: p.name })))
          : el("p", { class: "muted", text: "都已填写 👍" }));
    } else $("pulse-missing").replaceChildren();
    if (d.mutual_pairs && d.mutual_pairs.length) {
      $("pulse-pairs").replaceChildren(el("h3", { text: "只互相见证的同事" }),
        el("div", { class: "names" }, d.mutual_pairs.map(([a, b]) => el("span", { class: "name-chip", text: `${a.name} ⇄ ${b.name}` }))));
    } else $("pulse-pairs").replaceChildren();
    if (d.competencies) {
      const c = d.competencies;
      $("pulse-pairs").append(el("h3", { text: c.average === null ? `能力评估 ${c.period}：参评不足 5 人，不显示分布`
        : `能力评估 ${c.period}：全公司主管评分均值 L${c.average}` }),
        el("ul", {}, c.managers.map((m) => el("li", { text: `${m.name}（${m.people} 人）：L1 ${m.l1} · L2 ${m.l2} · L3 ${m.l3}，均值 ${m.average}${m.lenient ? " ⚠ 高于全公司 0.5 级以上" : ""}` }))));
    }

    const fig = $("pulse-chart");
    const img = $("pulse-chart-img");
    if (d.chart) {
      fig.hidden = false;
      const gen = state.generation;
      apiBlob(d.chart).then(({ blob }) => {
        if (gen !== state.generation) return;
        if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
        img.src = URL.createObjectURL(blob);
      }).catch((e) => toast(`趋势图加载失败：${e.message}`));
    } else {
      fig.hidden = true;
      img.removeAttribute("src");
    }
    // The goal calibration rate per quarter, against the 15 % and 22.7 % lines.
    const calFig = $("calibration-chart");
    const calImg = $("calibration-chart-img");
    if (d.calibration_chart) {
      calFig.hidden = false;
      const gen = state.generation;
      apiBlob(d.calibration_chart).then(({ blob }) => {
        if (gen !== state.generation) return;
        if (calImg.src.startsWith("blob:")) URL.revokeObjectURL(calImg.src);
        calImg.src = URL.createObjectURL(blob);
      }).catch((e) => toast(`校准率图加载失败：${e.message}`));
    } else {
      calFig.hidden = true;
      calImg.removeAttribute("src");
    }
    // The contribution heat map (HR's view): department × type, cells under 5 people shown as —.
    const conFig = $("contribution-chart");
    const conImg = $("contribution-chart-img");
    if (d.contribution_chart) {
      conFig.hidden = false;
      const gen = state.generation;
      apiBlob(d.contribution_chart).then(({ blob }) => {
        if (gen !== state.generation) return;
        if (conImg.src.startsWith("blob:")) URL.revokeObjectURL(conImg.src);
        conImg.src = URL.createObjectURL(blob);
      }).catch((e) => toast(`贡献热力图加载失败：${e.message}`));
    } else {
      conFig.hidden = true;
      conImg.removeAttribute("src");
    }
    $("pulse-mine").replaceChildren(d.actions.length ? mineTable(d.actions) : el("p", { class: "muted", text: "最近 12 周没有记录。" }));
  }

  function rateCell(v) {
    const fill = el("i");
    // Set through the CSSOM: the page's CSP refuses inline style attributes.
    fill.style.width = `${v === null ? 0 : Math.round(v * 100)}%`;
    return el("td", {}, el("span", { class: "rate" }, el("span", { class: "bar" }, fill), pct(v)));
  }

  function deptTable(d) {
    const head = el("tr", {}, ["部门", "人数", "请假", "已填写", "填写率", "完成率", "目标关联度", "同事见证频次"].map((h) => el("th", { text: h })));
    const row = (f, cls) => el("tr", { class: cls, title: f.dept }, el("td", { text: cls ? f.dept : f.name }),
      el("td", { text: f.population }), el("td", { text: f.skipped }), el("td", { text: f.filled }),
      rateCell(f.fill_rate), rateCell(f.completion_rate), rateCell(f.linkage_rate), rateCell(f.witness_rate));
    return el("table", { class: "grid depts" }, el("thead", {}, head),
      el("tbody", {}, d.departments.map((f) => row(f, "")), row(d.total, "total")));
  }

  function mineTable(actions) {
    const head = el("tr", {}, ["周次", "关键动作", "目标", "见证人", "状态"].map((h) => el("th", { text: h })));
    return el("table", { class: "grid mine" }, el("thead", {}, head), el("tbody", {}, actions.map((a) => el("tr", {},
      el("td", { text: a.week }), el("td", { text: a.thing }), el("td", { text: a.goal || "—" }),
      el("td", { text: a.witness.name }), el("td", { class: STATUS_CLASS[a.status] || "", text: a.status_text })))));
  }

  // -- wiring ---------------------------------------------------------------------------------
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
})();
