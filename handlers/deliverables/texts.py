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
    "deliv.upload.link": {"zh": "上传交付物", "en": "Upload file"},
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
    "deliv.problem.gone": {"zh": "这个文件已经取不到了（{detail}），请重新发送一次。",
                           "en": "The file can no longer be fetched ({detail}); please send it again."},
    "deliv.problem.failed": {"zh": "暂时取不到这个文件（{detail}），请稍后重新发送。",
                             "en": "The file could not be fetched ({detail}); please send it again later."},
    "deliv.values": {"zh": "检查数值", "en": "Values read"},
    "deliv.flow.label": {"zh": "交付物确认", "en": "the deliverable confirmation"},
    # intake
    "deliv.got.approval": {"zh": "审批附件「{name}」已收到，正在按 {code}「{template}」检查，稍等片刻。",
                           "en": "Got the approval's attachment “{name}”; checking it for {code} ({template}), one moment."},
    "deliv.file.attachment": {"zh": "附件", "en": "attachment"},
    "deliv.got": {"zh": "收到「{name}」，正在按 {code}「{template}」检查，稍等片刻。",
                  "en": "Got {name}; checking it against {code} ({template}), one moment."},
    "deliv.file.image": {"zh": "图片", "en": "the image"},
    "deliv.no_task": {"zh": "收到文件，但你没有需要交付物检查的进行中任务；文件没有保存。",
                      "en": "Got the file, but you have no open task with a deliverable check; nothing was stored."},
    "deliv.pick.title": {"zh": "这份交付物属于哪个任务？", "en": "Which task is this deliverable for?"},
    "deliv.pick.body": {"zh": "你有 {n} 个进行中的任务需要交付物，请选择一个。",
                        "en": "You have {n} open tasks that need a deliverable; pick one."},
    "deliv.pick.done": {"zh": "已选择 {code}", "en": "Picked {code}"},
    "deliv.pick.gone": {"zh": "这个任务已经不在进行中了，请重新发送文件。",
                        "en": "That task is no longer open; please send the file again."},
    "deliv.result": {"zh": "{code}「{title}」交付物检查：{summary}\n{values}",
                     "en": "{code} {title} deliverable check: {summary}\n{values}"},
    "deliv.result.problem": {"zh": "{code}「{title}」交付物检查：{summary}\n{why}",
                             "en": "{code} {title} deliverable check: {summary}\n{why}"},
    "deliv.card.body": {"zh": "交付物已检查：{summary}", "en": "Deliverable checked: {summary}"},
    "deliv.ask.again": {"zh": "请回复「对」，或「不对 85%」这样带上正确数值。（{label} 识别为 {value}）",
                        "en": "Please reply yes, or no with the right value, e.g. \"no 85%\" ({label} was read as {value})"},
    "deliv.confirmed": {"zh": "已更新：{summary}", "en": "Updated: {summary}"},
    # 完成 and 放行
    "deliv.refuse_done": {"zh": "{code} 的交付物检查是红灯（{why}），不能标记完成。请改进后重新发送交付物，或请 PMO {pmo} 放行（放行 {code} 原因）。",
                          "en": "{code}'s deliverable check is red ({why}); it cannot be closed as done. Send an improved deliverable, or ask the PMO {pmo} to release it (放行 {code} reason)."},
    "deliv.pmo.refused": {"zh": "{who} 想把 {code}「{title}」标记完成，但交付物检查是红灯（{why}）。如需放行，请点「放行」并写明原因，或回复：放行 {code} 原因",
                          "en": "{who} tried to close {code} {title}, but its deliverable check is red ({why}). To release it press 放行 and give the reason, or reply: 放行 {code} reason"},
    "deliv.release.title": {"zh": "{code}「{title}」交付物红灯", "en": "{code} {title}: red deliverable"},
    "deliv.release.btn": {"zh": "放行", "en": "Release"},
    "deliv.release.ask": {"zh": "请回复放行 {code} 的原因（例如：客户已书面确认）", "en": "Reply with the reason to release {code} (e.g. customer confirmed in writing)"},
    "deliv.release.done": {"zh": "已放行", "en": "Released"},
    "deliv.flow.release": {"zh": "放行原因", "en": "the release reason"},
    "deliv.override.usage": {"zh": "请这样写：放行 T3 原因（例如：放行 T3 客户已书面确认）",
                             "en": "Write: 放行 T3 reason (e.g. 放行 T3 customer confirmed in writing)"},
    "deliv.override.no_right": {"zh": "只有项目 PMO 或管理员可以放行 {code}。",
                                "en": "Only the project's PMO or an admin may release {code}."},
    "deliv.override.not_red": {"zh": "{code} 的交付物检查不是红灯（{summary}），不需要放行。",
                               "en": "{code}'s deliverable check is not red ({summary}); nothing to release."},
    "deliv.override.ok": {"zh": "已放行 {code}「{title}」（原因：{reason}），{owner} 现在可以标记完成。",
                          "en": "Released {code} {title} (reason: {reason}); {owner} may now close it as done."},
    "deliv.override.owner": {"zh": "{who} 已放行 {code}「{title}」的红灯交付物（原因：{reason}），现在可以标记完成。",
                             "en": "{who} released the red deliverable of {code} {title} (reason: {reason}); you may now close it as done."},
    "deliv.override.field": {"zh": "{who} 已放行", "en": "released by {who}"},
    "deliv.with_override": {"zh": "{summary}｜{override}", "en": "{summary} | {override}"},
    "deliv.summary.why": {"zh": "{light}（{why}）", "en": "{light} ({why})"},
    "deliv.delivered": {"zh": "{name}（{light}）", "en": "{name} ({light})"},
})


def light_label(locale: str, light: str) -> str:
    return t(locale, f"deliv.light.{light}")


def summary(locale: str, verdict: Verdict) -> str:
    """`🟡 黄灯（缺项：CPU峰值、移动端并发）`: the one line on the task card, the PMO's view and the export."""
    head = light_label(locale, verdict.light)
    why = reason(locale, verdict)
    return t(locale, "deliv.summary.why", light=head, why=why) if why else head


def reason(locale: str, verdict: Verdict) -> str:
    sep = t(locale, "list.sep")
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
