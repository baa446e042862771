"""Texts of the manager KPI: a person's own usage and the lines of HR's Friday card (zh and en)."""
from __future__ import annotations

from cards.texts import register

TEXTS = register({
    "usage.own_only": {"zh": "「我的使用」只显示你自己的使用数据，不能查看别人的。直接发「我的使用」即可。",
                       "en": "My usage shows your own figures only, never someone else's. Just send: my usage"},
    "usage.title": {"zh": "我的使用 · {week}", "en": "My usage · {week}"},
    "usage.week": {"zh": "本周：主动查看 {pulls} 次，点按推送卡片 {prompted} 次，行动 {actions} 次（含本次）",
                   "en": "This week: {pulls} pulls, {prompted} presses on pushed cards, {actions} actions (this one included)"},
    "usage.active_weeks": {"zh": "近 {n} 周里有 {active} 周主动打开过", "en": "Active (a pull) in {active} of the last {n} weeks"},
    "usage.escalations": {"zh": "本周收到升级预警 {n} 个，已解决 {resolved} 个{median}",
                          "en": "Escalations sent to you this week: {n}, resolved {resolved}{median}"},
    "usage.escalations.median": {"zh": "，处理用时中位数 {hours} 工时", "en": ", median {hours} working hours to resolve"},
    "usage.definitions": {"zh": "主动：你自己发起的查看（简报、反馈 查看、我的使用、控制台数据页、导出）；行动：给出反馈、处理升级预警、完成校准等。",
                          "en": "Pull: what you opened yourself (brief, feedback view, my usage, the console, an export); "
                                "action: feedback given, an escalation resolved, a calibration held."},
    "usage.hr.title": {"zh": "管理者使用：周活跃 {active}/{n}（{pct}），人均主动使用中位数 {median} 次{esc}",
                       "en": "Managers' use: weekly active {active}/{n} ({pct}), median {median} pulls{esc}"},
    "usage.hr.esc": {"zh": "，升级处理用时中位数 {hours} 工时", "en": ", median {hours} working hours to resolve an escalation"},
    "usage.hr.dept": {"zh": "· {dept}：活跃 {active}/{n}，中位 {median} 次，推送点按 {prompted}，行动 {actions}{esc}",
                      "en": "· {dept}: active {active}/{n}, median {median} pulls, {prompted} prompted, {actions} actions{esc}"},
    "usage.hr.dept.esc": {"zh": "，升级 {n} 个（中位 {hours} 工时）", "en": ", {n} escalations (median {hours} h)"},
    "usage.hr.turn_off": {"zh": "建议关闭（上线满 {weeks} 周，近 {window} 周使用率低于 {floor}）：{items}",
                          "en": "Consider turning off (after {weeks} weeks, used by under {floor} in the last {window} weeks): {items}"},
    "usage.hr.turn_off.item": {"zh": "{name} {pct}（{users}/{eligible}）", "en": "{name} {pct} ({users}/{eligible})"},
    "usage.sep": {"zh": "、", "en": ", "},
})
