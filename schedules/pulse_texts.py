"""Texts of the Friday pulse beyond the shared ones in cards/texts.py (zh and en side by side)."""
from cards.texts import register

TEXTS = register({
    "pulse.ratio": {"zh": "{pct}（{n}/{d}）", "en": "{pct} ({n}/{d})"},
    "pulse.dept_line": {"zh": "{dept}：填写 {fill} · 完成 {done} · 关联 {linked} · 见证 {witnessed}",
                        "en": "{dept}: filled {fill} · done {done} · linked {linked} · witnessed {witnessed}"},
    "pulse.names_sep": {"zh": "、", "en": ", "},
    "pulse.tasks_on_time": {"zh": "任务按时交付率", "en": "Tasks delivered on time"},
    "pulse.escalations": {"zh": "升级", "en": "Escalations"},
    "pulse.escalations.value": {"zh": "{n} 次，未关闭 {open}", "en": "{n}, {open} still open"},
    "pulse.escalations.median": {"zh": "，解决中位 {minutes} 分钟", "en": ", median resolution {minutes} min"},
    "pulse.file.xlsx": {"zh": "动线周报-{week}.xlsx", "en": "dongxian-weekly-{week}.xlsx"},
    "pulse.file.xlsx.caption": {"zh": "{week} 组织脉搏明细", "en": "{week} company pulse details"},
    "pulse.file.trend": {"zh": "趋势-{week}.png", "en": "trend-{week}.png"},
    "pulse.file.trend.caption": {"zh": "近12周趋势", "en": "Trend over the last 12 weeks"},
})
