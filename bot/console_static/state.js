// What the page knows: the tenant, the person it acts as, the chat's cursor, the clock.

export const TOKEN_HEADER = "X-Dongxian-Token";
export const POLL_MS = 500;
export const CLOCK_POLL_MS = 5000;
export const ROLE_NAMES = { manager: "经理", hr: "HR", pmo: "PMO", admin: "管理员" };
export const FIGURES = [
  ["fill_rate", "填写率", "filled", (f) => f.population - f.skipped],
  ["completion_rate", "完成率", "done", (f) => f.actions],
  ["linkage_rate", "目标关联度", "linked", (f) => f.actions],
  ["witness_rate", "同事见证频次", "confirmed", (f) => f.done],
];
export const STATUS_CLASS = { confirmed: "status-confirmed", done: "status-done", not_done: "status-not_done" };

export const state = {
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
  jobLabels: {}, // job name → its label, from /console/api/jobs
};

export const $ = (id) => document.getElementById(id);
