"""What the deliverable check says: the light line for the task card, the PMO's view and the export,
the question to the owner about an uncertain OCR reading, and the replies to a file it cannot read."""
from __future__ import annotations

from cards.texts import register, t
from handlers.deliverables.lights import MISSING, UNREAD, UNSURE, FieldResult, Verdict

TEXTS = register({
    "deliv.light.green": {"zh": "🟢 绿灯", "en": "🟢 green"},
    "deliv.light.yellow": {"zh": "🟡 黄灯", "en": "🟡 yellow"},
    "deliv.light.red": {"zh": "🔴 红灯", "en": "🔴 red"},
    "deliv.light.none": {"zh": "—", "en": "—"},
    "deliv.field": {"zh": "交付物检查", "en": "Deliverable check"},
    "deliv.reason.missing": {"zh": "缺项：{labels}", "en": "missing: {labels}"},
    "deliv.reason.unsure": {"zh": "待确认：{labels}", "en": "to confirm: {labels}"},
    "deliv.reason.unread": {"zh": "无法读取", "en": "could not be read"},
    "deliv.reason.threshold": {"zh": "{label} {value}（要求 {need}）", "en": "{label} {value} (needs {need})"},
    "deliv.ask": {"zh": "识别到 {label} {value}，对吗？（回复「对」或「不对」）",
                  "en": "I read {label} as {value}. Is that right? (reply yes or no)"},
    "deliv.ask.value": {"zh": "请回复 {label} 的正确数值，例如 {example}", "en": "Please reply with the right {label}, e.g. {example}"},
    "deliv.problem.too_big": {"zh": "文件太大（{detail}），没有读取；请发送不超过 {cap} MB 的文件。",
                              "en": "The file is too large ({detail}) and was not read; please send one up to {cap} MB."},
    "deliv.problem.too_many_pages": {"zh": "文件页数太多（{detail}），没有读取；请只发送结果页。",
                                     "en": "The file has too many pages ({detail}); please send the results pages only."},
    "deliv.problem.too_many_pixels": {"zh": "图片太大（{detail}），没有识别；请截取结果区域后再发。",
                                      "en": "The image is too large ({detail}); please crop it to the results and send again."},
    "deliv.problem.unreadable": {"zh": "这个文件读不出来（{detail}），请换成截图、PDF、Excel 或压测工具导出的 CSV/JSON。",
                                 "en": "This file could not be read ({detail}); please send a screenshot, PDF, Excel or the tool's CSV/JSON."},
    "deliv.problem.unsupported": {"zh": "不支持这种文件（{detail}），请发送截图、PDF、Word、Excel 或压测工具导出的 CSV/JSON。",
                                  "en": "This kind of file is not supported ({detail}); please send a screenshot, PDF, Word, Excel or the tool's CSV/JSON."},
    "deliv.problem.timeout": {"zh": "识别超时（{detail}），请发送更清晰或更小的截图。",
                              "en": "Reading took too long ({detail}); please send a smaller or clearer screenshot."},
})


def light_label(locale: str, light: str) -> str:
    return t(locale, f"deliv.light.{light}")


def summary(locale: str, verdict: Verdict) -> str:
    """`🟡 黄灯（缺项：CPU峰值、移动端并发）`: the one line on the task card, the PMO's view and the export."""
    head = light_label(locale, verdict.light)
    why = reason(locale, verdict)
    return f"{head}（{why}）" if why and locale == "zh" else f"{head} ({why})" if why else head


def reason(locale: str, verdict: Verdict) -> str:
    sep = "、" if locale == "zh" else ", "
    worst = [f for f in verdict.fields if f.light == verdict.light]
    if verdict.reason == UNREAD:
        return t(locale, "deliv.reason.unread")
    if verdict.reason == MISSING:
        return t(locale, "deliv.reason.missing", labels=sep.join(f.label for f in worst if f.note == MISSING))
    if verdict.reason == UNSURE:
        return t(locale, "deliv.reason.unsure", labels=sep.join(f.label for f in worst if f.note == UNSURE))
    parts = [t(locale, "deliv.reason.threshold", label=f.label, value=f.shown(), need=f.note) for f in worst if f.note]
    return sep.join(parts)


def values_line(locale: str, fields: list[FieldResult]) -> str:
    """`并发量 4200 🟡 · 错误率 0.05% 🟢 · CPU峰值 — 🟡`, for the card's fields."""
    marks = {"green": "🟢", "yellow": "🟡", "red": "🔴", "none": ""}
    return " · ".join(f"{f.label} {f.shown()} {marks[f.light]}".strip() for f in fields)


def question(locale: str, f: FieldResult) -> str:
    return t(locale, "deliv.ask", label=f.label, value=f.shown())


def problem_reply(locale: str, problem: str, detail: str, cap_mb: float) -> str:
    return t(locale, f"deliv.problem.{problem}", detail=detail, cap=f"{cap_mb:g}")
