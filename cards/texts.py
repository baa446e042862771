"""Bot texts in Simplified Chinese (default) and English, looked up by key.

This module holds the texts of the weekly loop and those every feature shares (cards,
buttons, the pulse). A feature declares its own texts next to its code with `register`,
zh and en side by side, and they join this catalogue when the feature is imported.
"""
from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, str]] = {
    "flow.paused": {"zh": "已暂停{what}，回复「继续」接着填。", "en": "Paused {what}; reply \"continue\" to pick it up again."},
    "flow.resumed": {"zh": "接着{what}：请回复刚才的问题。", "en": "Back to {what}: please answer the last question."},
    "flow.nothing": {"zh": "没有暂停的内容。", "en": "Nothing is paused."},
    "flow.cancelled": {"zh": "已取消{what}。", "en": "Cancelled {what}."},
    "flow.cancelled.none": {"zh": "已取消。", "en": "Cancelled."},
    "flow.still_aside": {"zh": "还有暂停的{what}，回复「继续」接着填。", "en": " {what} is still paused; reply \"continue\" to pick it up."},
    "flow.default": {"zh": "刚才的填写", "en": "what you were filling in"},
    "flow.weekly": {"zh": "填写本周关键动作", "en": "this week's key action"},
    "flow.weekly_edit": {"zh": "修改本周关键动作", "en": "editing this week's key action"},
    "prompt.title": {"zh": "本周关键动作", "en": "This week's key action"},
    "prompt.body": {
        "zh": "本周最关键的一件事是什么？请回复：目标编号（可选） 一件事（20字以内） @见证同事\n例：O1-KR2 完成2份临床评价报告初稿 @李娜",
        "en": "What is the one key thing this week? Reply: goal code (optional), one thing (≤20 chars), @witness\ne.g. O1-KR2 Finish 2 clinical evaluation drafts @Li Na",
    },
    "btn.skip_week": {"zh": "本周跳过", "en": "Skip this week"},
    "lastday.title": {"zh": "本周关键动作", "en": "This week's key action"},
    "lastday.body": {"zh": "今天是本周最后一个工作日，完成了吗？\n{thing}", "en": "Last working day of the week: is it done?\n{thing}"},
    "btn.done": {"zh": "已完成", "en": "Done"},
    "btn.not_done": {"zh": "未完成", "en": "Not done"},
    "btn.edit": {"zh": "修改", "en": "Edit"},
    "btn.accept": {"zh": "接受见证", "en": "Accept"},
    "btn.decline": {"zh": "无法见证", "en": "Decline"},
    "btn.confirm": {"zh": "确认完成", "en": "Confirm"},
    "btn.deny": {"zh": "尚未完成", "en": "Not yet"},
    "btn.none_goal": {"zh": "不关联目标", "en": "No goal"},
    "field.goal": {"zh": "目标", "en": "Goal"},
    "field.thing": {"zh": "关键动作", "en": "Key action"},
    "field.witness": {"zh": "见证人", "en": "Witness"},
    "field.week": {"zh": "周次", "en": "Week"},
    "field.status": {"zh": "状态", "en": "Status"},
    "goal.none": {"zh": "（未关联）", "en": "(none)"},
    "summary.title": {"zh": "已记录本周关键动作", "en": "Key action recorded"},
    "summary.body": {"zh": "已邀请 {witness} 见证。完成后回复“完成”或点“已完成”。", "en": "{witness} has been asked to witness. Reply \"done\" when it is done."},
    "invite.title": {"zh": "见证邀请", "en": "Witness request"},
    "invite.body": {"zh": "{name} 邀请你见证本周关键动作：{thing}", "en": "{name} asks you to witness this week's key action: {thing}"},
    "confirm.title": {"zh": "请确认完成", "en": "Please confirm"},
    "confirm.body": {"zh": "{name} 已完成本周关键动作：{thing}，请确认。", "en": "{name} says this week's key action is done: {thing}. Please confirm."},
    "nudge.body": {"zh": "{name} 的本周关键动作还在等你确认：{thing}", "en": "{name}'s key action is waiting for your confirmation: {thing}"},
    "ask.thing": {"zh": "这周最关键的一件事是什么？（20字以内）", "en": "What is the one thing this week? (at most 20 characters)"},
    "ask.witness": {"zh": "请 @ 一位同事作为见证人，例如 @李娜", "en": "Please @ one colleague as witness, e.g. @Li Na"},
    "ask.goal.title": {"zh": "关联哪个目标？", "en": "Which goal does it serve?"},
    "ask.goal.body": {"zh": "回复目标编号（如 O1-KR2），或点下面的按钮；回复“无”表示不关联。", "en": "Reply with a goal code (e.g. O1-KR2), tap below, or reply \"none\"."},
    "too_long": {"zh": "当前 {n} 字，请精简到 20 字以内", "en": "{n} characters now; please keep it within 20"},
    "witness.none": {"zh": "没有找到“{token}”，请重新 @ 见证人（可写姓名、拼音或账号）", "en": "No one matches \"{token}\"; please @ the witness again (name, pinyin or user id)"},
    "witness.self": {"zh": "见证人不能是自己，请 @ 一位同事", "en": "You cannot witness yourself; please @ a colleague"},
    "witness.many": {"zh": "只需要一位见证人，请只 @ 一位同事", "en": "Exactly one witness, please"},
    "witness.choose.title": {"zh": "你指的是哪一位？", "en": "Which one do you mean?"},
    "witness.choose.body": {"zh": "“{token}”匹配到多位同事，请选择：", "en": "\"{token}\" matches several colleagues:"},
    "goal.unknown": {"zh": "没有找到目标“{token}”，请回复正确的目标编号，或回复“无”", "en": "No goal matches \"{token}\"; reply a goal code or \"none\""},
    "accepted.owner": {"zh": "{witness} 已接受见证：{thing}", "en": "{witness} accepted to witness: {thing}"},
    "declined.owner": {"zh": "{witness} 无法见证“{thing}”，请 @ 另一位同事作为见证人", "en": "{witness} cannot witness \"{thing}\"; please @ another colleague"},
    "done.owner": {"zh": "已标记完成，已请 {witness} 确认。", "en": "Marked done; {witness} has been asked to confirm."},
    "confirmed.owner": {"zh": "{witness} 确认你已完成：{thing} 👍", "en": "{witness} confirmed: {thing} 👍"},
    "denied.owner": {"zh": "{witness} 认为尚未完成：{thing}。完成后再回复“完成”。", "en": "{witness} says it is not done yet: {thing}. Reply \"done\" when it is."},
    "not_done.owner": {"zh": "已记录：本周关键动作未完成。下周继续加油，把最关键的一件事做完。", "en": "Recorded as not done."},
    "not_done.early": {"zh": "本周还没结束，先不记为未完成：{day}（本周最后一个工作日）会再问你。要换一件事请回复「修改 新的一件事」，本周做不了请回复「本周跳过 原因」。",
                       "en": "The week is not over, so it is not marked not done: you will be asked on {day}, its last working day. To change it reply \"edit <new thing>\"; to skip the week, \"skip this week <reason>\"."},
    "no_action": {"zh": "你本周还没有记录关键动作。", "en": "You have no key action this week yet."},
    "already_confirmed": {"zh": "见证人已确认完成，不能再修改。", "en": "Already confirmed by the witness; it can no longer be edited."},
    "edit.ask": {"zh": "请回复要修改的内容，例如：修改 完成3份报告 或 修改 @王强", "en": "Reply with the change, e.g. edit Finish 3 reports, or edit @Wang Qiang"},
    "edit.done": {"zh": "已修改：{changes}", "en": "Changed: {changes}"},
    "edit.nothing": {"zh": "没有识别到要修改的内容。", "en": "Nothing to change was recognised."},
    "edit.unchanged": {"zh": "本周关键动作未作修改。", "en": "This week's action was not changed."},
    "already_recorded": {"zh": "本周已记录关键动作：{thing}。如需修改请回复“修改 …”。", "en": "This week's action is already recorded: {thing}. Reply \"edit …\" to change it."},
    "leave.ok": {"zh": "已记录请假 {start} 至 {end}{reason}，期间不会再提醒你。", "en": "Leave recorded {start} to {end}{reason}; no reminders meanwhile."},
    "skip.ok": {"zh": "本周已跳过{reason}，本周不再提醒你。", "en": "This week is skipped{reason}; no more reminders this week."},
    "card.witness_changed": {"zh": "见证人已更换", "en": "The witness has changed"},
    "card.accepted": {"zh": "已接受见证：{thing}", "en": "Accepted to witness: {thing}"},
    "card.declined": {"zh": "已告知对方你无法见证", "en": "They have been told you cannot witness"},
    "card.void": {"zh": "已失效", "en": "No longer valid"},
    "card.confirmed": {"zh": "已确认完成", "en": "Confirmed as done"},
    "card.confirmed.thing": {"zh": "已确认完成：{thing}", "en": "Confirmed as done: {thing}"},
    "card.denied": {"zh": "已反馈：尚未完成", "en": "Answered: not done yet"},
    "card.gone": {"zh": "该同事已不在名单中", "en": "This colleague is no longer on the roster"},
    "card.chosen": {"zh": "已选择 {name}", "en": "Chose {name}"},
    # A reason added after a sentence part: 已跳过（出差）/ skipped (business trip).
    "reason.suffix": {"zh": "（{reason}）", "en": " ({reason})"},
    # One person told apart from a namesake by the last part of their department: 李娜（注册部）.
    "person.label": {"zh": "{name}（{where}）", "en": "{name} ({where})"},
    "list.sep": {"zh": "、", "en": ", "},
    "list.semi": {"zh": "；", "en": "; "},
    # How a card reads where the platform shows only text (logs, the console, a text fallback).
    "render.title": {"zh": "【{title}】", "en": "== {title} =="},
    "render.field": {"zh": "{label}：{value}", "en": "{label}: {value}"},
    "render.reply_with": {"zh": "回复 {words}", "en": "Reply {words}"},
    "render.word": {"zh": "「{word}」", "en": "\"{word}\""},
    "render.submit": {"zh": "提交", "en": "Submit"},
    "render.truncated": {"zh": "…（内容过长，已截断）", "en": "… (too long, cut short)"},
    "card.used": {"zh": "这张卡片已经处理过了。", "en": "This card has already been answered."},
    "card.expired": {"zh": "这张卡片已过期。", "en": "This card has expired."},
    "card.not_yours": {"zh": "这张卡片不是发给你的。", "en": "This card was not sent to you."},
    "card.unknown": {"zh": "找不到这张卡片，可能已过期。", "en": "Unknown card; it may have expired."},
    "answer.nothing": {"zh": "现在没有等你回复的卡片。", "en": "No card is waiting for your answer."},
    "unknown_user": {"zh": "你还不在动线的名单中，请联系 HR 导入名册。", "en": "You are not on the roster yet; please ask HR."},
    "error": {"zh": "抱歉，处理时出错了，请稍后再试。", "en": "Sorry, something went wrong; please try again later."},
    "help": {
        "zh": ("动线 · 可以这样说：\n"
               "· 记录本周关键动作：O1-KR2 完成2份临床评价报告初稿 @李娜\n"
               "· 完成 / 未完成\n"
               "· 修改 完成3份报告 / 修改 @王强\n"
               "· 请假 至 12-05 ／ 本周跳过 出差\n"
               "· 我的：查看本周状态\n"
               "· 反馈 @王强 #主动补位 客户级 具体事件（汇报线内不限；给其他同事每月有上限）\n"
               "· 反馈 查看 @王强 ／ 我的反馈\n"
               "· 简报 @王强 2026Q4\n"
               "· 任务：我的未完成任务（PMO 还能看到所负责项目的任务）／ 任务 T12：任务详情\n"
               "· 进度 T12 进行中 ／ 进度 T12 阻塞 原因 ／ 进度 T12 完成 交付物"),
        "en": ("Dongxian — you can say:\n"
               "· record this week's key action: O1-KR2 Finish 2 drafts @Li Na\n"
               "· done / not done\n"
               "· edit Finish 3 drafts / edit @Wang Qiang\n"
               "· leave to 12-05 / skip this week\n"
               "· status: this week's action\n"
               "· feedback @Wang Qiang #tag team-level what happened (your line: no limit; others: a monthly quota)\n"
               "· view feedback @Wang Qiang / my feedback\n"
               "· brief @Wang Qiang 2026Q4\n"
               "· task: my open tasks (a PMO also sees their projects') / task T12: the task and its history\n"
               "· progress T12 doing / blocked REASON / done DELIVERABLE"),
    },
    "status.none": {"zh": "本周 {week} 还没有关键动作。", "en": "No key action this week ({week})."},
    "status.away": {"zh": "本周（{week}）你{what}，不需要填写关键动作，也不会收到提醒。回来后如要补记，直接发本周的关键动作即可。", "en": "This week ({week}) you are {what}: no key action is expected and no reminders are sent. To record one anyway, just send it."},
    "status.leave": {"zh": "请假 {start}~{end}{reason}", "en": "on leave {start}–{end}{reason}"},
    "status.skip": {"zh": "已跳过本周{reason}", "en": "skipping this week{reason}"},
    "pulse.title.manager": {"zh": "团队脉搏 · {week}", "en": "Team pulse · {week}"},
    "pulse.title.hr": {"zh": "组织脉搏 · {week}", "en": "Company pulse · {week}"},
    "pulse.fill": {"zh": "填写率", "en": "Fill rate"},
    "pulse.completion": {"zh": "完成率", "en": "Completion"},
    "pulse.linkage": {"zh": "目标关联度", "en": "Goal linkage"},
    "pulse.witness": {"zh": "见证确认率", "en": "Witness confirmation rate"},
    "pulse.missing": {"zh": "本周未填写：{names}", "en": "Not filled this week: {names}"},
    "pulse.export": {"zh": "本周明细与部门指标见附件。", "en": "Details and department figures attached."},
    # A weekly action's status as people see it (store/pulse.py action_status).
    "action.shown.confirmed": {"zh": "已确认", "en": "confirmed"},
    "action.shown.done": {"zh": "已完成", "en": "done"},
    "action.shown.unwitnessed": {"zh": "待见证", "en": "awaiting the witness"},
    "action.shown.open": {"zh": "进行中", "en": "in progress"},
    "action.shown.not_done": {"zh": "未完成", "en": "not done"},
    # -- micro-feedback
    # -- the conversation engine: chit-chat, doubtful text, past dates, goals, people
    "witness.typo.body": {"zh": "没有找到“{token}”，你指的是这位同事吗？", "en": "No one is called \"{token}\"; did you mean this colleague?"},
    "witness.none_of_them": {"zh": "好的，见证人没有改变。请重新 @ 见证人，写全名或账号，例如 @李娜", "en": "OK, the witness is unchanged. Please @ the witness again by full name or user id."},
    "btn.none_of_them": {"zh": "都不是", "en": "None of them"},
    "chat.greeting": {"zh": "你好！", "en": "Hello!"},
    "chat.thanks": {"zh": "不客气！", "en": "You're welcome!"},
    "chat.ack": {"zh": "好的。", "en": "OK."},
    "chat.farewell": {"zh": "再见！", "en": "Bye!"},
    "chat.emoji": {"zh": "👍", "en": "👍"},
    "chat.question": {"zh": "我是动线：每周记一件关键动作，请一位同事见证；回复「帮助」看全部用法。", "en": "I am Dongxian: one key action a week, witnessed by a colleague; reply \"help\" for everything I understand."},
    "chat.has_action": {"zh": "本周关键动作：{thing}（{status}）。", "en": "This week's key action: {thing} ({status})."},
    "chat.format": {"zh": "记录请回复：目标编号（可选） 一件事（20字以内） @见证同事，例：O1-KR2 完成2份临床评价报告初稿 @李娜", "en": "To record, reply: goal code (optional), one thing (≤20 chars), @witness, e.g. O1-KR2 Finish 2 drafts @Li Na"},
    "chat.unclear": {"zh": "没看懂这条消息，什么也没有记录。", "en": "I did not understand that message; nothing was recorded."},
    "doubt.title": {"zh": "记为本周关键动作？", "en": "Record as this week's key action?"},
    "doubt.body": {"zh": "把“{thing}”记为本周关键动作？", "en": "Record \"{thing}\" as this week's key action?"},
    "doubt.yes": {"zh": "是", "en": "Yes"},
    "doubt.no": {"zh": "不是", "en": "No"},
    "doubt.dropped": {"zh": "好的，没有记录。", "en": "OK, nothing recorded."},
    "goals.head": {"zh": "可关联的目标（先列你所在部门的）：", "en": "Goals you can link (your department's first):"},
    "goals.none": {"zh": "还没有导入目标；关键动作可以不关联目标（写“无”）。", "en": "No goals imported yet; an action may have none (write \"none\")."},
    "goals.more": {"zh": "……共 {n} 个目标，这里列出 {shown} 个。", "en": "… {n} goals in all, {shown} shown."},
    "goals.hint": {"zh": "写关键动作时带上编号，例如：O1-KR2 完成2份报告初稿 @李娜", "en": "Put the code in front of the action, e.g. O1-KR2 Finish 2 drafts @Li Na"},
    "leave.past.ask": {"zh": "{question}回复「是」按 {suggested} 记录；或重新发送，例如：请假 {example}", "en": "{question} Reply \"yes\" to record {suggested}, or send the leave again, e.g. leave {example}"},
    "leave.past.dropped": {"zh": "好的，没有记录请假。", "en": "OK, no leave recorded."},
    "date.past": {"zh": "{token} 已经过去了，是指 {suggested} 吗？", "en": "{token} has already passed; did you mean {suggested}?"},
}


def register(entries: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Add a feature's texts to the catalogue; every key needs zh and en, and may be declared once."""
    for key, entry in entries.items():
        if set(entry) != {"zh", "en"}:
            raise ValueError(f"text {key!r} needs exactly zh and en, has {sorted(entry)}")
        if key in TEXTS and TEXTS[key] != entry:
            raise ValueError(f"text {key!r} is declared twice")
        TEXTS[key] = entry
    return entries


def t(locale: str, key: str, **kw: Any) -> str:
    entry = TEXTS[key]
    s = entry.get(locale) or entry["zh"]
    return s.format(**kw) if kw else s
