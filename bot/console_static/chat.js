// The chat: messages, cards and presses, polled from the console inbox.
import { apiBlob, apiJson, q } from "./api.js";
import { avatarText, el, toast } from "./dom.js";
import { $, POLL_MS, state } from "./state.js";
import { formatTime } from "./zone.js";

// What the person typed is not stored by the server; keep it for this browser tab.
export function echoKey() {
  return `dx.echo.${state.tenant.key}.${state.me.userid}`;
}

export function myEchoes() {
  try { return JSON.parse(sessionStorage.getItem(echoKey()) || "[]"); } catch (e) { return []; }
}

export function rememberEcho(m) {
  const all = myEchoes();
  all.push(m);
  sessionStorage.setItem(echoKey(), JSON.stringify(all.slice(-200)));
}

export function restartPolling() {
  clearTimeout(state.pollTimer);
  poll();
}

export async function poll() {
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
export function pollFrom() {
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

export function unpend(cardId) {
  const entry = state.cards.get(cardId);
  if (!entry) return;
  const node = entry.node.querySelector(".card");
  node.classList.remove("pending");
  node.querySelectorAll(".card-buttons button").forEach((b) => { b.disabled = false; });
}

export function insertByTime(node, at) {
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

export function addBotMessage(m) {
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

export function botWrap(content, m, at) {
  return el("div", { class: "msg bot", dataset: { seq: m.seq, kind: m.kind } },
    el("div", { class: "avatar bot", text: "动" }),
    el("div", { class: "msg-body" }, el("div", { class: "msg-time", text: `动线 · ${formatTime(new Date(at).toISOString())}` }), content));
}

export function renderMine(m) {
  const node = el("div", { class: "msg mine" },
    el("div", { class: "avatar", text: avatarText(state.me.name) }),
    el("div", { class: "msg-body" }, el("div", { class: "msg-time", text: formatTime(new Date(m.at).toISOString()) }),
      el("div", { class: "bubble", text: m.text })));
  node.dataset.at = String(m.at);
  return node;
}

export async function sendText(text) {
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

export function renderCard(card) {
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

export function renderSelect(s) {
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

export function selectValues(node) {
  const values = {};
  for (const box of node.querySelectorAll(".card-select")) {
    const key = box.dataset.selectKey;
    values[key] = box.dataset.multi
      ? [...box.querySelectorAll("input:checked")].map((i) => i.value)
      : [box.querySelector("select").value].filter(Boolean);
  }
  return values;
}

export async function press(node, card, key) {
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

export function renderFile(m) {
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

export async function download(url, fallbackName) {
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
export function renderMarkdown(src) {
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

export function inline(text) {
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
