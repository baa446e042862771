"""The fact brief as one self-contained HTML page; each number links to the records it counts."""
from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from cards import brief_texts  # noqa: F401  (the brief's texts join the catalogue)
from cards.brief_records import Brief
from cards.texts import t as text

# -- the document ----------------------------------------------------------------------------

# The goal import's fields a reader of the brief knows by name (brief.doc.field.*); others show as stored.
FIELD_LABELS = ("title", "weight", "parent_code", "department", "period", "new", "cancelled", "status")

_CSS = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.6}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f5f5f5}.muted{color:#777;font-size:.9em}.event{white-space:pre-wrap}a{color:#1a5fb4}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=False)


def _links(anchors: list[str], labels: dict[str, str], locale: str) -> str:
    if not anchors:
        return "—"
    return text(locale, "list.sep").join(f'<a href="#{a}">{_e(labels.get(a, a))}</a>' for a in anchors)


def _when(dt: datetime | None, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else "—"


def _field(name: str, locale: str) -> str:
    return text(locale, f"brief.doc.field.{name}") if name in FIELD_LABELS else name


def _th(locale: str, *keys: str) -> str:
    return "<tr>" + "".join(f"<th>{_e(text(locale, f'brief.doc.th.{k}'))}</th>" for k in keys) + "</tr>"


def render_html(brief: Brief) -> str:
    """The full brief as one self-contained HTML page in the brief's locale; each number links to the
    records it counts."""
    b = brief
    loc = b.locale

    def tx(key: str, **kw: object) -> str:
        return text(loc, key, **kw)

    def links(anchors: list[str]) -> str:
        return _links(anchors, labels, loc)
    labels: dict[str, str] = {}
    for a in b.actions:
        labels[a.anchor] = a.week
    for l in b.leaves:
        labels[l.anchor] = tx("brief.doc.leave", start=f"{l.start:%m-%d}", end=f"{l.end:%m-%d}")
    for f in b.feedback:
        labels[f.anchor] = tx("brief.doc.feedback", day=f"{f.day:%m-%d}", tag=f.tag)
    for g in b.adjustments:
        labels[g.anchor] = f"{g.goal_code} {g.day:%m-%d}"
    for t in b.tasks:
        labels[t.anchor] = t.code
    for e in b.escalations:
        labels[e.anchor] = f"{e.task_code} L{e.level}"

    out: list[str] = [
        "<!DOCTYPE html>", f'<html lang="{tx("brief.doc.lang")}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{tx('brief.doc.title', name=_e(b.name), period=_e(b.period))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{tx('brief.doc.h1', name=_e(b.name), period=_e(b.period))}</h1>",
        '<p class="muted">' + tx("brief.doc.meta", department=_e(b.department), userid=_e(b.userid),
                                 first=b.first.isoformat(), last=b.last.isoformat(), as_of=b.as_of.isoformat(),
                                 generated=_when(b.generated_at, b.tz)) + "</p>",
        f"<p>{tx('brief.doc.intro')}</p>",
        f"<h2 id=\"figures\">{tx('brief.doc.figures')}</h2>",
        "<table>" + _th(loc, "figure", "value", "records", "definition"),
    ]
    for fig in b.figures():
        out.append(f'<tr id="fig-{fig.key}"><td>{_e(fig.label)}</td><td><b>{_e(fig.value)}</b></td>'
                   f"<td>{links(fig.records)}</td><td class=\"muted\">{_e(fig.definition)}</td></tr>")
    out.append("</table>")

    out.append(f'<h2 id="actions">{tx("brief.doc.actions")}</h2>')
    if b.actions:
        out.append("<table>" + _th(loc, "week", "goal", "thing", "witness", "status"))
        for a in b.actions:
            goal = f"{a.goal_code} {b.goals.get(a.goal_code, '')}".strip() if a.goal_code else tx("goal.none")
            out.append(f'<tr id="{a.anchor}"><td>{_e(a.week)}</td><td>{_e(goal)}</td><td>{_e(a.thing)}</td>'
                       f"<td>{_e(a.witness)}</td><td>{_e(a.status)}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{tx('brief.doc.actions.none')}</p>")
    if b.leaves:
        out.append(f"<p>{tx('brief.doc.leaves')}</p><ul>")
        for l in b.leaves:
            line = tx("brief.doc.leave.line", start=l.start.isoformat(), end=l.end.isoformat(), reason=_e(l.reason))
            out.append(f'<li id="{l.anchor}">{line}</li>')
        out.append("</ul>")
    if b.missed_weeks:
        out.append(f"<p>{tx('brief.doc.missed', weeks=_e(tx('list.sep').join(b.missed_weeks)))}</p>")

    out.append(f'<h2 id="goals">{tx("brief.doc.goals")}</h2>')
    served = b.served()
    if served:
        out.append("<ul>")
        for code, title, acts in served:
            line = tx("brief.doc.goal.line", code=_e(code), title=_e(title), n=len(acts),
                      links=links([a.anchor for a in acts]))
            out.append(f"<li>{line}</li>")
        out.append("</ul>")
    else:
        out.append(f"<p>{tx('brief.doc.goals.none')}</p>")

    out.append(f'<h2 id="feedback">{tx("brief.doc.fb")}</h2>')
    groups = b.feedback_groups()
    if groups:
        for tag, polarity, by_impact in groups:
            n = sum(len(r) for _, r in by_impact)
            head = tx("brief.doc.fb.group", tag=_e(tag), polarity=_e(tx(f"fb.polarity.{polarity}")), n=n)
            out.append(f"<h3>{head}</h3>")
            for impact, records in by_impact:
                out.append(f"<p><b>{_e(tx(f'fb.impact.{impact}'))}</b>{tx('brief.doc.fb.impact', n=len(records))}</p><ul>")
                for f in records:
                    ref = tx("brief.doc.fb.ref", ref=_e(f.ref)) if f.ref else ""
                    out.append(f'<li id="{f.anchor}"><span class="muted">{f.day.isoformat()} · {_e(f.giver)}{ref}</span><br>'
                               f'<span class="event">{_e(f.event)}</span></li>')
                out.append("</ul>")
    else:
        out.append(f"<p>{tx('brief.doc.fb.none')}</p>")

    out.append(f'<h2 id="adjustments">{tx("brief.doc.adj")}</h2>')
    if b.adjustments:
        out.append("<table>" + _th(loc, "effective", "goal", "change", "reason", "event_date", "by", "approver"))
        for g in b.adjustments:
            change = tx("brief.doc.change", label=_field(g.field_name, loc), old=g.old or "—", new=g.new or "—") + (
                tx("reason.suffix", reason=g.note) if g.note else "")
            out.append(f'<tr id="{g.anchor}"><td>{g.day.isoformat()}</td><td>{_e(g.goal_code)}</td><td>{_e(change)}</td>'
                       f"<td>{_e(g.reason)}</td><td>{g.event_date.isoformat() if g.event_date else '—'}</td>"
                       f"<td>{_e(g.by or '—')}</td><td>{_e(g.approver or '—')}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{tx('brief.doc.adj.none')}</p>")

    out.append(f'<h2 id="tasks">{tx("brief.doc.tasks")}</h2>')
    if b.tasks:
        out.append("<table>" + _th(loc, "task", "title", "due", "completed", "status", "outcome"))
        for t in b.tasks:
            out.append(f'<tr id="{t.anchor}"><td>{_e(t.code)}</td><td>{_e(t.title)}</td><td>{_when(t.due, b.tz)}</td>'
                       f"<td>{_when(t.completed, b.tz)}</td><td>{_e(t.status)}</td><td>{_e(tx(f'task.outcome.{t.outcome}'))}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{tx('brief.doc.tasks.none')}</p>")
    if b.escalations:
        out.append("<table>" + _th(loc, "task", "level", "escalated", "resolved"))
        for e in b.escalations:
            out.append(f'<tr id="{e.anchor}"><td>{_e(e.task_code)}</td><td>L{e.level}</td><td>{_when(e.at, b.tz)}</td>'
                       f"<td>{_when(e.resolved, b.tz)}</td></tr>")
        out.append("</table>")
    out.append(f'<h2 id="trace">{tx("brief.doc.trace")}</h2>')
    if b.response_rate is not None:
        ok, n = b.response_rate
        out.append(f"<p>{tx('brief.doc.response_rate', ok=ok, n=n, pct=f'{ok / n:.0%}')}</p>")
    if b.trace:
        out.append("<table>" + _th(loc, "date", "item", "detail", "source"))
        for x in b.trace:
            src = f'<a href="{_e(x.link)}">{_e(x.source)}</a>' if x.link.startswith(("https://", "http://")) else _e(x.source)
            out.append(f'<tr id="{x.anchor}"><td>{x.day.isoformat()}</td><td>{_e(x.title)}</td>'
                       f"<td>{_e(x.detail)}</td><td>{src}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{tx('brief.doc.trace.none')}</p>")
    out += _competencies(b)
    out.append("</body></html>")
    return "\n".join(out)


def _level(level: int | None) -> str:
    return f"L{level}" if level else "—"


def _competencies(b: Brief) -> list[str]:
    """Self, manager and agreed levels with their evidence; shown only once both sides have submitted."""
    loc = b.locale
    out = [f'<h2 id="competencies">{text(loc, "brief.doc.comp")}</h2>']
    if not b.competencies:
        return out + [f"<p>{text(loc, 'brief.doc.comp.none')}</p>"]
    labels = {**{a.anchor: text(loc, "brief.doc.comp.action", week=a.week) for a in b.actions},
              **{f.anchor: f"#{f.tag} {f.day.isoformat()}" for f in b.feedback}, **{t.anchor: t.code for t in b.tasks}}
    out.append("<table>" + _th(loc, "competency", "self", "manager", "agreed", "evidence", "calibration"))
    for c in b.competencies:
        out.append(f'<tr id="{c.anchor}"><td>{_e(c.code)} {_e(c.name)}</td><td>{_level(c.self_level)}</td>'
                   f"<td>{_level(c.manager_level)}</td><td>{_level(c.agreed_level)}</td>"
                   f"<td>{_links(c.evidence, labels, loc)}</td><td>{_e(c.calibration or '—')}</td></tr>")
    out.append("</table>")
    return out
