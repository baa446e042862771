"""The texts of the fact brief, zh and en side by side (joined to cards.texts on import)."""
from __future__ import annotations

from cards.texts import register

TEXTS = register({
    "brief.title": {"zh": "事实简报 · {name} · {period}", "en": "Fact brief · {name} · {period}"},
    "brief.f.filled": {"zh": "填写", "en": "Filled"},
    "brief.f.done": {"zh": "完成", "en": "Done"},
    "brief.f.confirmed": {"zh": "见证确认", "en": "Witnessed"},
    "brief.f.linked": {"zh": "目标关联", "en": "Linked"},
    "brief.f.feedback": {"zh": "反馈", "en": "Feedback"},
    "brief.f.tasks": {"zh": "按时交付", "en": "On time"},
    "brief.f.escalations": {"zh": "阻塞升级", "en": "Escalated"},
    "brief.goals": {"zh": "服务的目标：{goals}", "en": "Goals served: {goals}"},
    "brief.tags": {"zh": "反馈标签：{tags}", "en": "Feedback tags: {tags}"},
    "brief.adjustments": {"zh": "所服务目标本期调整 {n} 次", "en": "{n} adjustments of the goals served"},
    "brief.attached": {"zh": "完整简报见附件：每个数字都列出了依据的记录。", "en": "The full brief is attached; every figure lists its records."},
    "brief.caption": {"zh": "{name} · {period} 多维事实简报", "en": "{name} · {period} fact brief"},
    "brief.usage": {"zh": "请这样写：简报 @王强 2026Q4（期间可省略）", "en": "Write: brief @Wang Qiang 2026Q4 (the period is optional)"},
    "brief.denied": {"zh": "你无权查看 {name} 的简报：只能查看自己和汇报线内同事的简报。", "en": "You may not read {name}'s brief: only your own and your reporting line's."},
    "brief.period.bad": {"zh": "期间“{text}”无效，请写成 2026Q4 这样的形式。", "en": "\"{text}\" is not a period; write it like 2026Q4."},
    "brief.f.filled.value": {"zh": "{n}/{weeks} 周", "en": "{n}/{weeks} weeks"},
    "brief.f.feedback.value": {"zh": "{n} 条（认可 {praise}）", "en": "{n} (praise {praise})"},
    "brief.count": {"zh": "{what}（{n}）", "en": "{what} ({n})"},
    "brief.sep": {"zh": "、", "en": ", "},
    "brief.filename": {"zh": "事实简报-{name}-{period}.html", "en": "fact-brief-{name}-{period}.html"},
    # -- cross-functional tasks and escalation
})
