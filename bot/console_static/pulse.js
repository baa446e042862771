// The pulse tab: figures, the trend chart and the export.
import { apiBlob, apiJson, q } from "./api.js";
import { download } from "./chat.js";
import { el, pct, toast } from "./dom.js";
import { $, FIGURES, STATUS_CLASS, state } from "./state.js";
import { isoWeekOf, zone, zonedParts } from "./zone.js";

export function currentWeek() {
  return isoWeekOf(zonedParts(state.clock ? state.clock.now : new Date(), zone()));
}

export async function loadPulse() {
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

export function renderPulse(d) {
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

export function rateCell(v) {
  const fill = el("i");
  // Set through the CSSOM: the page's CSP refuses inline style attributes.
  fill.style.width = `${v === null ? 0 : Math.round(v * 100)}%`;
  return el("td", {}, el("span", { class: "rate" }, el("span", { class: "bar" }, fill), pct(v)));
}

export function deptTable(d) {
  const head = el("tr", {}, ["部门", "人数", "请假", "已填写", "填写率", "完成率", "目标关联度", "同事见证频次"].map((h) => el("th", { text: h })));
  const row = (f, cls) => el("tr", { class: cls, title: f.dept }, el("td", { text: cls ? f.dept : f.name }),
    el("td", { text: f.population }), el("td", { text: f.skipped }), el("td", { text: f.filled }),
    rateCell(f.fill_rate), rateCell(f.completion_rate), rateCell(f.linkage_rate), rateCell(f.witness_rate));
  return el("table", { class: "grid depts" }, el("thead", {}, head),
    el("tbody", {}, d.departments.map((f) => row(f, "")), row(d.total, "total")));
}

export function mineTable(actions) {
  const head = el("tr", {}, ["周次", "关键动作", "目标", "见证人", "状态"].map((h) => el("th", { text: h })));
  return el("table", { class: "grid mine" }, el("thead", {}, head), el("tbody", {}, actions.map((a) => el("tr", {},
    el("td", { text: a.week }), el("td", { text: a.thing }), el("td", { text: a.goal || "—" }),
    el("td", { text: a.witness.name }), el("td", { class: STATUS_CLASS[a.status] || "", text: a.status_text })))));
}
