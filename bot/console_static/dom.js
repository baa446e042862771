// Small DOM helpers: elements, the banner, toasts, badges.
import { $, ROLE_NAMES } from "./state.js";

export function el(tag, attrs, ...children) {
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

export function showBanner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = !text;
}

export let toastTimer = null;
export function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
}

export function avatarText(name) {
  return (name || "?").length > 2 ? name.slice(-2) : name || "?";
}

export function roleBadges(roles) {
  return (roles || []).filter((r) => r !== "employee")
    .map((r) => el("span", { class: `badge ${r}`, text: ROLE_NAMES[r] || r }));
}

export function pct(v) {
  return v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`;
}
