"""Texts of contributions, their verification, the heat map, the ranked list and reward suggestions."""
from __future__ import annotations

from cards.texts import register

TEXTS = register({
    "contrib.flow": {"zh": "记录贡献", "en": "recording a contribution"},
    "contrib.reward.flow": {"zh": "填写奖励金额", "en": "entering a reward amount"},
    "contrib.kind.revenue": {"zh": "项目收益", "en": "project revenue"},
    "contrib.kind.saving": {"zh": "流程节省", "en": "process saving"},
    "contrib.kind.reuse": {"zh": "知识复用", "en": "knowledge reuse"},
    "contrib.usage": {
        "zh": "记录贡献：贡献 类型 数额 说明 @核实人\n类型：项目收益（¥）、流程节省（¥ 或 小时）、知识复用（次数）\n"
              "例：贡献 项目收益 ¥120000 发布会提前两周上线 @唐凯",
        "en": "Record a contribution: contribution TYPE AMOUNT what-happened @verifier\nTypes: 项目收益 revenue (¥), "
              "流程节省 saving (¥ or hours), 知识复用 reuse (times)\nE.g. contribution revenue ¥120000 launch two weeks early @唐凯"},
    "contrib.card.title": {"zh": "记一条贡献：选类型", "en": "Record a contribution: pick the type"},
    "contrib.card.body": {"zh": "项目收益记金额（¥），流程节省记金额或小时，知识复用记被复用的次数。每条都需要一位同事核实。",
                          "en": "Revenue in ¥, savings in ¥ or hours, reuse in times reused. Each needs a colleague to verify it."},
    "contrib.ask.rest": {
        "zh": "{kind}：请回复 数额 和 发生了什么，如「{example}」",
        "en": "{kind}: reply with the amount and what happened, e.g. “{example}”"},
    "contrib.ask.verifier": {"zh": "{what}\n谁能核实这件事？请回复 @同事（不能是你自己）。",
                             "en": "{what}\nWho can verify it? Reply @colleague (not yourself)."},
    "contrib.example.revenue": {"zh": "¥120000 发布会提前两周上线", "en": "¥120000 launch two weeks early"},
    "contrib.example.saving": {"zh": "16小时 自动生成注册检验报告", "en": "16 hours test reports generated"},
    "contrib.example.reuse": {"zh": "8次 注册资料模板被其他组复用", "en": "8 times template reused"},
    "contrib.again.kind": {"zh": "请选一个类型：项目收益、流程节省或知识复用（也可以回复 1、2、3）",
                           "en": "Pick a type: 项目收益, 流程节省 or 知识复用 (or reply 1, 2, 3)"},
    # Refusals: each says why, and nothing is stored.
    "contrib.no_kind": {"zh": "没有看出贡献类型「{text}」：请写 项目收益、流程节省 或 知识复用。未记录。",
                        "en": "No contribution type in “{text}”: write 项目收益, 流程节省 or 知识复用. Nothing recorded."},
    "contrib.no_amount": {
        "zh": "看不懂数额：{kind}请写成 {units}，如 ¥120000、12万、1.2w、16小时、8次。未记录。",
        "en": "The amount is unreadable: {kind} takes {units}, e.g. ¥120000, 12万, 1.2w, 16 hours, 8 times. Nothing recorded."},
    "contrib.units.revenue": {"zh": "金额（¥）", "en": "an amount in ¥"},
    "contrib.units.saving": {"zh": "金额（¥）或小时", "en": "an amount in ¥ or hours"},
    "contrib.units.reuse": {"zh": "次数", "en": "a number of times"},
    "contrib.no_description": {"zh": "请写一句发生了什么（如「发布会提前两周上线」）。未记录。",
                               "en": "Say what happened in a few words (e.g. “launch two weeks early”). Nothing recorded."},
    "contrib.no_verifier": {"zh": "每条贡献都需要一位核实人：请在末尾 @同事（不能是你自己）。未记录。",
                            "en": "Every contribution needs a verifier: end with @colleague (not yourself). Nothing recorded."},
    "contrib.one_verifier": {"zh": "只能 @ 一位核实人。未记录。", "en": "Name one verifier only. Nothing recorded."},
    "contrib.self": {"zh": "不能自己核实自己的贡献：请 @ 另一位了解这件事的同事。未记录。",
                     "en": "You cannot verify your own contribution: name another colleague who knows it. Nothing recorded."},
    "contrib.reciprocal": {
        "zh": "本月（{month}）你核实过 {name} 的贡献，{name} 就不能再核实你的：请换一位同事。未记录。",
        "en": "You verified {name}'s contribution this month ({month}), so {name} cannot verify yours: name someone else. "
              "Nothing recorded."},
    "contrib.over_count": {"zh": "本月（{month}）你已记录 {n} 条贡献，每人每月最多 {cap} 条。未记录。",
                           "en": "You have recorded {n} contributions this month ({month}); the limit is {cap}. Nothing recorded."},
    "contrib.over_cap": {
        "zh": "超过每人每月上限：本月{kind}已记 {have}，加上这条 {add} 超过 {cap}。未记录。",
        "en": "Over the monthly limit: this month already {have}, with this {add} it exceeds {cap}. Nothing recorded."},
    "contrib.link.unknown": {"zh": "找不到关联的 {what}：请检查编号，或去掉它。未记录。",
                             "en": "The linked {what} was not found: check the code or leave it out. Nothing recorded."},
    "contrib.verifier.gone": {"zh": "{name} 已不在职，不能核实：请换一位同事。未记录。",
                              "en": "{name} has left and cannot verify: name someone else. Nothing recorded."},
    "contrib.recorded": {"zh": "已记录：{what}。已请 {verifier} 核实，核实后才计入。",
                         "en": "Recorded: {what}. {verifier} is asked to verify it; it counts once verified."},
    # The verifier's card.
    "contrib.verify.title": {"zh": "请核实贡献：{name} · {kind} {amount}", "en": "Please verify: {name} · {kind} {amount}"},
    "contrib.verify.body": {
        "zh": "{name}（{dept}）记录：{description}{links}\n你了解这件事吗？按「属实」或「不属实」，也可以直接回复「属实」或「不属实 原因」。",
        "en": "{name} ({dept}) recorded: {description}{links}\nDo you know this happened? Press Verified or Not true, or reply "
              "“属实” / “不属实 reason”."},
    "contrib.verify.links": {"zh": "\n关联：{links}", "en": "\nLinked: {links}"},
    "contrib.btn.confirm": {"zh": "属实", "en": "Verified"},
    "contrib.btn.decline": {"zh": "不属实", "en": "Not true"},
    "contrib.verify.done": {"zh": "已核实", "en": "Verified"},
    "contrib.verify.declined": {"zh": "已标为不属实{reason}", "en": "Marked as not true{reason}"},
    "contrib.verify.told": {"zh": "{verifier} 已核实你的贡献：{what}", "en": "{verifier} verified your contribution: {what}"},
    "contrib.verify.told_no": {"zh": "{verifier} 认为这条贡献不属实{reason}：{what}。它不计入。",
                               "en": "{verifier} says this is not true{reason}: {what}. It does not count."},
    "contrib.verify.already": {"zh": "这条贡献已经处理过了。", "en": "This contribution was already handled."},
    "contrib.verify.nothing": {"zh": "没有等你核实的贡献。", "en": "No contribution is waiting for you to verify."},
    "contrib.verify.next": {"zh": "还有 {n} 条贡献等你核实，下一条：{what}", "en": "{n} more to verify; next: {what}"},
    # The ranked list: never public.
    "contrib.rank.denied": {"zh": "贡献排名只给管理链上的主管（看自己的下属）和 HR 看，不公开。",
                            "en": "The contribution ranking is for managers (their own reports) and HR only; it is never public."},
    "contrib.rank.title": {"zh": "贡献排名 {period}（{scope}，仅你可见）", "en": "Contribution ranking {period} ({scope}, only you see this)"},
    "contrib.rank.scope.company": {"zh": "全公司", "en": "company"},
    "contrib.rank.scope.line": {"zh": "你的下属", "en": "your reports"},
    "contrib.rank.row": {"zh": "{i}. {name}（{dept}）{n} 条{sums}", "en": "{i}. {name} ({dept}) {n}{sums}"},
    "contrib.rank.none": {"zh": "本期还没有已核实的贡献。", "en": "No verified contributions in this period yet."},
    "contrib.rank.hidden": {"zh": "\n隐性贡献者（常为同事见证，却很少被认可）：", "en": "\nHidden contributors (often witness colleagues' work, seldom recognised):"},
    "contrib.rank.hidden.row": {"zh": "· {name}（{dept}）见证确认 {w} 次，认可 {r} 条，贡献 {c} 条",
                                "en": "· {name} ({dept}) witnessed {w}, recognitions {r}, contributions {c}"},
    "contrib.period.bad": {"zh": "期间格式不对：{text}，请写 2026-12（月）或 2026Q4（季度）",
                           "en": "Bad period {text}: write 2026-12 (month) or 2026Q4 (quarter)"},
    # Reward suggestions.
    "contrib.reward.title": {"zh": "奖励建议：{name} {month}", "en": "Reward suggestion: {name} {month}"},
    "contrib.reward.body": {
        "zh": "{name} 本月已核实的贡献：\n{evidence}\n如需奖励，按「填写金额」后回复金额（如 2000 或 ¥2,000），或直接说「奖励 @{name} 2000」。系统不会自动发放。",
        "en": "{name}'s verified contributions of the month:\n{evidence}\nTo reward, press Enter amount and reply the amount "
              "(e.g. 2000 or ¥2,000), or say “奖励 @{name} 2000”. Nothing is paid automatically."},
    "contrib.reward.evidence": {"zh": "· {kind} {amount}：{description}（核实人 {verifier}）",
                                "en": "· {kind} {amount}: {description} (verified by {verifier})"},
    "contrib.btn.amount": {"zh": "填写金额", "en": "Enter amount"},
    "contrib.reward.ask": {"zh": "请输入给 {name} 的{month}奖励金额（元），如 2000 或 ¥2,000；回复「取消」不填。",
                           "en": "Enter the reward for {name} for {month} in ¥, e.g. 2000; say 取消 to leave it."},
    "contrib.reward.usage": {"zh": "填写奖励：奖励 @同事 金额 [2026-12]，如「奖励 @王强 2000」",
                             "en": "Enter a reward: 奖励 @colleague AMOUNT [2026-12], e.g. “奖励 @王强 2000”"},
    "contrib.reward.bad": {"zh": "金额看不懂或不合理：「{text}」。请写 1 到 {cap} 之间的元数，如 2000 或 ¥2,000。未记录。",
                           "en": "Unreadable or unreasonable amount “{text}”: write ¥1 to ¥{cap}, e.g. 2000. Nothing recorded."},
    "contrib.reward.denied": {"zh": "只有 {name} 管理链上的主管可以填写 {name} 的奖励。",
                              "en": "Only managers above {name} enter {name}'s reward."},
    "contrib.reward.no_evidence": {"zh": "{name} 在 {month} 没有已核实的贡献，不能填写奖励。未记录。",
                                   "en": "{name} has no verified contributions in {month}; no reward can be entered. Nothing recorded."},
    "contrib.reward.saved": {"zh": "已记录 {name} {month} 的奖励建议 ¥{amount}（依据 {n} 条已核实贡献）。会进入发薪导出，不会自动发放。",
                             "en": "Reward suggestion for {name} ({month}) saved: ¥{amount}, on {n} verified contributions. "
                                   "It goes into the payroll export; nothing is paid automatically."},
    "contrib.reward.sent": {"zh": "已发出 {n} 张奖励建议卡片（{month}）。", "en": "{n} reward suggestion cards sent ({month})."},
    "contrib.reward.nobody": {"zh": "{month} 你的下属还没有已核实的贡献。", "en": "None of your reports has a verified contribution in {month}."},
    "contrib.export.caption": {"zh": "奖励建议导出 {month}（供发薪参考，不会自动发放）",
                               "en": "Reward suggestions {month} (for payroll; nothing is paid automatically)"},
    "contrib.export.file": {"zh": "奖励建议-{month}.xlsx", "en": "rewards-{month}.xlsx"},
    # The heat map.
    "contrib.heat.title": {"zh": "价值贡献热力图 {period}（部门 × 类型）", "en": "Contribution heat map {period} (department × type)"},
    "contrib.heat.caption": {"zh": "贡献热力图 {period}：格内为证据条数，少于 {n} 人的格不显示",
                             "en": "Contribution heat map {period}: evidence counts; cells under {n} people not shown"},
    "contrib.heat.none": {"zh": "{period} 还没有已核实的贡献（{scope}），没有热力图。",
                          "en": "No verified contributions in {period} ({scope}) yet: no heat map."},
    "contrib.heat.file": {"zh": "贡献热力图-{period}.png", "en": "contribution-heatmap-{period}.png"},
})
