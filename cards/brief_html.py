"""The fact brief as one self-contained HTML page; each number links to the records it counts."""
from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from cards.brief_records import Brief
from cards.texts import t as text

# -- the document ----------------------------------------------------------------------------

# The goal import's field names, as a reader of the brief calls them.
FIELD_LABELS = {"title": "名称", "weight": "权重", "parent_code": "上级目标", "department": "部门", "period": "期间",
                "new": "新增", "cancelled": "取消", "status": "状态"}

_CSS = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.6}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f5f5f5}.muted{color:#777;font-size:.9em}.event{white-space:pre-wrap}a{color:#1a5fb4}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=False)


def _links(anchors: list[str], labels: dict[str, str]) -> str:
    if not anchors:
        return "—"
    return "、".join(f'<a href="#{a}">{_e(labels.get(a, a))}</a>' for a in anchors)


def _when(dt: datetime | None, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else "—"


def render_html(brief: Brief) -> str:
    """The full brief as one self-contained HTML page; each number links to the records it counts."""
    b = brief
    labels: dict[str, str] = {}
    for a in b.actions:
        labels[a.anchor] = a.week
    for l in b.leaves:
        labels[l.anchor] = f"请假 {l.start:%m-%d}~{l.end:%m-%d}"
    for f in b.feedback:
        labels[f.anchor] = f"反馈 {f.day:%m-%d} #{f.tag}"
    for g in b.adjustments:
        labels[g.anchor] = f"{g.goal_code} {g.day:%m-%d}"
    for t in b.tasks:
        labels[t.anchor] = t.code
    for e in b.escalations:
        labels[e.anchor] = f"{e.task_code} L{e.level}"

    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>事实简报 · {_e(b.name)} · {_e(b.period)}</title><style>{_CSS}</style></head><body>",
        f"<h1>多维事实简报 · {_e(b.name)} · {_e(b.period)}</h1>",
        f'<p class="muted">{_e(b.department)}（{_e(b.userid)}）｜期间 {b.first.isoformat()} 至 {b.last.isoformat()}'
        f"｜统计截至 {b.as_of.isoformat()}｜生成于 {_when(b.generated_at, b.tz)}</p>",
        "<p>本简报只列事实：每个数字后面都列出了它所依据的记录，点击可跳到该记录。</p>",
        "<h2 id=\"figures\">概览</h2>",
        "<table><tr><th>指标</th><th>数值</th><th>依据的记录</th><th>口径</th></tr>",
    ]
    for fig in b.figures():
        out.append(f'<tr id="fig-{fig.key}"><td>{_e(fig.label)}</td><td><b>{_e(fig.value)}</b></td>'
                   f"<td>{_links(fig.records, labels)}</td><td class=\"muted\">{_e(fig.definition)}</td></tr>")
    out.append("</table>")

    out.append('<h2 id="actions">本周关键动作</h2>')
    if b.actions:
        out.append("<table><tr><th>周次</th><th>目标</th><th>关键动作</th><th>见证人</th><th>状态</th></tr>")
        for a in b.actions:
            goal = f"{a.goal_code} {b.goals.get(a.goal_code, '')}".strip() if a.goal_code else "（未关联）"
            out.append(f'<tr id="{a.anchor}"><td>{_e(a.week)}</td><td>{_e(goal)}</td><td>{_e(a.thing)}</td>'
                       f"<td>{_e(a.witness)}</td><td>{_e(a.status)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期没有关键动作记录。</p>")
    if b.leaves:
        out.append("<p>请假/跳过：</p><ul>")
        for l in b.leaves:
            out.append(f'<li id="{l.anchor}">{l.start.isoformat()} 至 {l.end.isoformat()} {_e(l.reason)}</li>')
        out.append("</ul>")
    if b.missed_weeks:
        out.append(f"<p>未填写的周：{_e('、'.join(b.missed_weeks))}</p>")

    out.append('<h2 id="goals">服务的目标</h2>')
    served = b.served()
    if served:
        out.append("<ul>")
        for code, title, acts in served:
            out.append(f"<li>{_e(code)} {_e(title)}：{len(acts)} 次（{_links([a.anchor for a in acts], labels)}）</li>")
        out.append("</ul>")
    else:
        out.append("<p>本期关键动作没有关联目标。</p>")

    out.append('<h2 id="feedback">微反馈（按标签与影响范围）</h2>')
    groups = b.feedback_groups()
    if groups:
        for tag, polarity, by_impact in groups:
            n = sum(len(r) for _, r in by_impact)
            out.append(f"<h3>#{_e(tag)}（{_e(text('zh', f'fb.polarity.{polarity}'))}）· {n} 条</h3>")
            for impact, records in by_impact:
                out.append(f"<p><b>{_e(text('zh', f'fb.impact.{impact}'))}</b> · {len(records)} 条</p><ul>")
                for f in records:
                    ref = f"｜关联：{_e(f.ref)}" if f.ref else ""
                    out.append(f'<li id="{f.anchor}"><span class="muted">{f.day.isoformat()} · {_e(f.giver)}{ref}</span><br>'
                               f'<span class="event">{_e(f.event)}</span></li>')
                out.append("</ul>")
    else:
        out.append("<p>本期没有收到微反馈。</p>")

    out.append('<h2 id="adjustments">目标调整</h2>')
    if b.adjustments:
        out.append("<table><tr><th>生效</th><th>目标</th><th>调整</th><th>原因</th><th>事件日期</th><th>调整人</th>"
                   "<th>批准人</th></tr>")
        for g in b.adjustments:
            label = FIELD_LABELS.get(g.field_name, g.field_name)
            change = f"{label}：{g.old or '—'} → {g.new or '—'}" + (f"（{g.note}）" if g.note else "")
            out.append(f'<tr id="{g.anchor}"><td>{g.day.isoformat()}</td><td>{_e(g.goal_code)}</td><td>{_e(change)}</td>'
                       f"<td>{_e(g.reason)}</td><td>{g.event_date.isoformat() if g.event_date else '—'}</td>"
                       f"<td>{_e(g.by or '—')}</td><td>{_e(g.approver or '—')}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期所服务的目标没有调整。</p>")

    out.append('<h2 id="tasks">跨职能任务与阻塞升级</h2>')
    if b.tasks:
        out.append("<table><tr><th>任务</th><th>名称</th><th>截止</th><th>完成</th><th>状态</th><th>结果</th></tr>")
        for t in b.tasks:
            out.append(f'<tr id="{t.anchor}"><td>{_e(t.code)}</td><td>{_e(t.title)}</td><td>{_when(t.due, b.tz)}</td>'
                       f"<td>{_when(t.completed, b.tz)}</td><td>{_e(t.status)}</td><td>{_e(text('zh', f'task.outcome.{t.outcome}'))}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期没有到期的任务。</p>")
    if b.escalations:
        out.append("<table><tr><th>任务</th><th>级别</th><th>升级时间</th><th>解除时间</th></tr>")
        for e in b.escalations:
            out.append(f'<tr id="{e.anchor}"><td>{_e(e.task_code)}</td><td>L{e.level}</td><td>{_when(e.at, b.tz)}</td>'
                       f"<td>{_when(e.resolved, b.tz)}</td></tr>")
        out.append("</table>")
    out.append('<h2 id="trace">留痕：回款跟踪与风险响应</h2>')
    if b.response_rate is not None:
        ok, n = b.response_rate
        out.append(f"<p>风险响应及时率：{ok}/{n}（{ok / n:.0%}）</p>")
    if b.trace:
        out.append("<table><tr><th>日期</th><th>事项</th><th>说明</th><th>来源</th></tr>")
        for x in b.trace:
            src = f'<a href="{_e(x.link)}">{_e(x.source)}</a>' if x.link.startswith(("https://", "http://")) else _e(x.source)
            out.append(f'<tr id="{x.anchor}"><td>{x.day.isoformat()}</td><td>{_e(x.title)}</td>'
                       f"<td>{_e(x.detail)}</td><td>{src}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期没有来自审批或业务系统的记录。</p>")
    out += _competencies(b)
    out.append("</body></html>")
    return "\n".join(out)


def _level(level: int | None) -> str:
    return f"L{level}" if level else "—"


def _competencies(b: Brief) -> list[str]:
    """Self, manager and agreed levels with their evidence; shown only once both sides have submitted."""
    out = ['<h2 id="competencies">能力评估</h2>']
    if not b.competencies:
        return out + ["<p>本期没有双方都已提交的能力评估。</p>"]
    labels = {**{a.anchor: f"{a.week} 动作" for a in b.actions}, **{f.anchor: f"#{f.tag} {f.day.isoformat()}" for f in b.feedback},
              **{t.anchor: t.code for t in b.tasks}}
    out.append("<table><tr><th>能力</th><th>自评</th><th>主管</th><th>对齐</th><th>证据</th><th>对齐会</th></tr>")
    for c in b.competencies:
        out.append(f'<tr id="{c.anchor}"><td>{_e(c.code)} {_e(c.name)}</td><td>{_level(c.self_level)}</td>'
                   f"<td>{_level(c.manager_level)}</td><td>{_level(c.agreed_level)}</td>"
                   f"<td>{_links(c.evidence, labels)}</td><td>{_e(c.calibration or '—')}</td></tr>")
    out.append("</table>")
    return out
