// Calls to the console API: the token (read once from the URL, then only sent as a header) and CSRF.
import { showBanner } from "./dom.js";
import { TOKEN_HEADER, state } from "./state.js";

export function takeToken() {
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

export async function api(method, path, body) {
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

export async function apiJson(method, path, body) {
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

export async function apiBlob(path) {
  const res = await api("GET", path);
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const disposition = res.headers.get("Content-Disposition") || "";
  return { blob: await res.blob(), filename: filenameFrom(disposition) };
}

export function filenameFrom(disposition) {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) { try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ } }
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : "";
}

export function q(params) {
  return Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}
