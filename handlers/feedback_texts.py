"""The texts of micro-feedback, zh and en side by side (joined to cards.texts on import)."""
from __future__ import annotations

from cards.texts import register

TEXTS = register({
    "fb.flow": {"zh": "填写反馈", "en": "the feedback"},
    "fb.btn": {"zh": "反馈", "en": "Feedback"},
    "fb.self": {"zh": "不能给自己反馈，请 @ 一位同事。", "en": "You cannot give yourself feedback; please @ a colleague."},
    "fb.person.none": {"zh": "没有找到“{token}”，请重新 @ 要反馈的同事（可写姓名、拼音或账号）。", "en": "No one matches \"{token}\"; please @ the colleague again (name, pinyin or user id)."},
    "fb.person.many": {"zh": "一条反馈只给一位同事，请只 @ 一位。", "en": "One piece of feedback is for one colleague; please @ only one."},
    "fb.person.ambiguous": {"zh": "“{token}”匹配到多位同事：{names}，请写全名或账号。", "en": "\"{token}\" matches several colleagues: {names}; please write the full name or user id."},
    "fb.outside_line": {"zh": "{name} 不在你的汇报线内，只能给自己汇报线内的同事反馈。可以 @ 另一位同事，或回复“取消”。", "en": "{name} is not in your reporting line; feedback goes to people in your reporting line. @ someone else, or reply \"cancel\"."},
    "fb.quota": {"zh": "本月你已给汇报线以外的同事 {n} 条反馈，达到每月上限，下月 1 日恢复；给自己汇报线内同事的反馈不受限制。", "en": "You have given {n} pieces of feedback outside your reporting line this month, the monthly limit; it resets on the 1st. Feedback to your own line is not limited."},
    "fb.no_line": {"zh": "你的汇报线内还没有同事，暂时无法给出反馈。", "en": "There is nobody in your reporting line to give feedback to."},
    "fb.person.title": {"zh": "微反馈 · 给谁？", "en": "Feedback · for whom?"},
    "fb.person.body": {"zh": "选择要反馈的同事，或直接 @ 他/她。", "en": "Pick the colleague, or @ them."},
    "fb.person.peers": {"zh": "也可以 @ 汇报线以外的同事。", "en": " You may also @ colleagues outside your line."},
    "fb.person.which": {"zh": "“{token}”匹配到多位同事，请选择：", "en": "\"{token}\" matches several colleagues:"},
    "fb.ask.person": {"zh": "请 @ 要反馈的同事，例如：@王强", "en": "Please @ the colleague, e.g. @Wang Qiang"},
    "fb.tag.title": {"zh": "微反馈 · 哪种行为？", "en": "Feedback · which behaviour?"},
    "fb.tag.body": {"zh": "认可：{praise}\n改进：{improve}", "en": "Recognition: {praise}\nImprovement: {improve}"},
    "fb.tag.more": {"zh": "更多标签", "en": "More"},
    "fb.tag.all": {"zh": "全部标签", "en": "All tags"},
    "fb.tag.unknown": {"zh": "没有“{token}”这个行为标签，请从标签库中选择。", "en": "There is no tag \"{token}\"; please pick one from the library."},
    "fb.impact.title": {"zh": "微反馈 · 影响范围？", "en": "Feedback · impact?"},
    "fb.impact.body": {"zh": "客户级：影响到客户；团队级：影响到团队；流程级：改进了做事的方法。", "en": "Customer, team, or process level."},
    "fb.ask.event": {"zh": "请写下具体事件：{name} 在什么时候、做了什么？例如：周二夜里帮客户排查退货问题", "en": "Please describe the event: when, and what did {name} do? e.g. Tuesday night, traced a customer's returns problem"},
    "fb.event.vague": {"zh": "“{text}”太笼统了。请写具体事件：什么时候、做了什么、结果如何？例如：周二夜里帮客户排查退货问题", "en": "\"{text}\" is too vague. Please write the concrete event: when, what was done, what came of it."},
    "fb.event.long": {"zh": "事件描述 {n} 字，请精简到 {max} 字以内。", "en": "The event has {n} characters; please keep it within {max}."},
    "fb.what": {"zh": "#{tag}（{polarity}）· {impact}\n{event}", "en": "#{tag} ({polarity}) · {impact}\n{event}"},
    "fb.received": {"zh": "{giver} 给了你一条反馈：\n{what}", "en": "{giver} gave you feedback:\n{what}"},
    "fb.recorded": {"zh": "已记录对 {name} 的反馈：\n{what}", "en": "Feedback for {name} recorded:\n{what}"},
    "fb.notified": {"zh": "已通知 {name}。", "en": "{name} has been told."},
    "fb.card.chosen": {"zh": "已选择 {text}", "en": "Chose {text}"},
    "fb.card.refused": {"zh": "无法选择", "en": "Not possible"},
    "fb.card.superseded": {"zh": "已失效", "en": "No longer valid"},
    "fb.view.title": {"zh": "{name} 收到的反馈（共 {n} 条）", "en": "Feedback {name} received ({n})"},
    "fb.view.empty": {"zh": "{name} 还没有收到反馈。", "en": "{name} has no feedback yet."},
    "fb.view.more": {"zh": "仅显示最近 {n} 条；完整记录见事实简报（简报 @{name}）。", "en": "Only the latest {n} are shown; the fact brief (brief @{name}) has them all."},
    "fb.view.denied": {"zh": "你无权查看 {name} 的反馈：只能查看自己和汇报线内同事的反馈。", "en": "You may not read {name}'s feedback: only your own and your reporting line's."},
    "fb.view.line": {"zh": "· {day} {giver} #{tag}（{polarity}）{impact}：{event}", "en": "· {day} {giver} #{tag} ({polarity}) {impact}: {event}"},
    # -- fact brief
})
