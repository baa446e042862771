"""Texts of the role capability profile (岗位画像) and its JD suggestion (zh and en side by side)."""
from __future__ import annotations

from cards.texts import register

TEXTS = register({
    "rp.denied": {"zh": "岗位画像只有 HR 可以生成和审批：它汇总整个部门的绩效数据。",
                  "en": "Only HR builds and approves role profiles: they summarise a whole department's figures."},
    "rp.usage": {"zh": "用法：岗位画像 部门路径 [角色:主管]（如：岗位画像 研发中心/注册部）",
                 "en": "Usage: 岗位画像 <department path> [角色:manager] (e.g. 岗位画像 研发中心/注册部)"},
    "rp.pending.list": {"zh": "待审批的岗位画像：\n{lines}", "en": "Role profiles waiting for approval:\n{lines}"},
    "rp.pending.none": {"zh": "目前没有待审批的岗位画像。", "en": "No role profile is waiting for approval."},
    "rp.pending.line": {"zh": "#{id} {department}（{built}）", "en": "#{id} {department} ({built})"},
    "rp.dept.unknown": {"zh": "没有找到部门「{text}」。请写部门路径，如：研发中心/注册部",
                        "en": "No department {text}. Write its path, e.g. 研发中心/注册部"},
    "rp.dept.many": {"zh": "「{text}」对应多个部门，请写完整路径：\n{paths}",
                     "en": "{text} names several departments; write the full path:\n{paths}"},
    "rp.too_few": {"zh": ("「{department}」{role}{first} 至 {last} 只有 {qualified} 人符合条件（在职、至少 {min_weeks} 周"
                          "填写关键动作；部门共 {in_scope} 人），少于 {need} 人，未生成岗位画像，什么也没有保存。"),
                   "en": ("{department}{role}, {first} to {last}: only {qualified} people qualify (active, weekly actions in at "
                          "least {min_weeks} weeks; {in_scope} in the department), fewer than {need}; no profile was "
                          "produced and nothing was stored.")},
    "rp.unknown": {"zh": "没有岗位画像 #{id}。回复「岗位画像」看待审批的画像。",
                   "en": "No role profile #{id}. Say 岗位画像 to list those waiting."},
    "rp.role.bad": {"zh": "没有「{text}」这个角色，可选：员工、主管、HR、PMO、管理员",
                    "en": "No role {text}; one of: employee, manager, hr, pmo, admin"},
    "rp.card.title": {"zh": "JD 建议待审批：{department}", "en": "JD suggestion to approve: {department}"},
    "rp.card.body": {"zh": ("合格 {qualified} 人，取前 {top} 人 · {first} 至 {last}\n建议新增 {add} 条 · 不再出现 {gone} 条\n"
                            "全文见上一条消息。回复「通过」或「驳回 原因」也可以。"),
                     "en": ("{qualified} qualify, top {top} · {first} to {last}\n{add} duties to add · {gone} no longer "
                            "seen\nThe full text is in the message above. You may also reply 通过 or 驳回 <reason>.")},
    "rp.btn.approve": {"zh": "通过", "en": "Approve"},
    "rp.btn.reject": {"zh": "驳回", "en": "Reject"},
    "rp.superseded": {"zh": "已被更新的画像 #{id} 取代", "en": "Superseded by the newer profile #{id}"},
    "rp.approved": {"zh": "已通过：岗位画像 #{id}（{department}）", "en": "Approved: role profile #{id} ({department})"},
    "rp.rejected": {"zh": "已驳回：岗位画像 #{id}（{department}）{reason}",
                    "en": "Rejected: role profile #{id} ({department}) {reason}"},
    "rp.decided": {"zh": "这份岗位画像已经处理过了（{state}）。", "en": "This role profile was already dealt with ({state})."},
    "rp.review.again": {"zh": "岗位画像 #{id}（{department}）：回复「通过」，或「驳回 原因」。",
                        "en": "Role profile #{id} ({department}): reply 通过 (approve) or 驳回 <reason> (reject)."},
    "rp.review.flow": {"zh": "岗位画像审批", "en": "the role profile approval"},
    "rp.state.pending": {"zh": "待审批", "en": "pending"},
    "rp.state.approved": {"zh": "已通过", "en": "approved"},
    "rp.state.rejected": {"zh": "已驳回", "en": "rejected"},
    "rp.state.superseded": {"zh": "已被取代", "en": "superseded"},
    # The Markdown of the JD suggestion.
    "rp.md.title": {"zh": "# JD 建议：{department}", "en": "# JD suggestion: {department}"},
    "rp.md.role": {"zh": "（角色：{role}）", "en": " (role: {role})"},
    "rp.md.meta": {"zh": ("> {state} · {first} 至 {last}（{weeks} 周）· 合格 {qualified} 人（至少 {min_weeks} 周有关键动作），"
                          "按综合分取前 {share}%（至少 {min_top} 人）：{top} 人"),
                   "en": ("> {state} · {first} to {last} ({weeks} weeks) · {qualified} qualify (weekly actions in at least "
                          "{min_weeks} weeks), top {share}% by the composite (at least {min_top}): {top}")},
    "rp.md.composite": {"zh": "> 综合分 = {completion}×关键动作完成率 + {witnessed}×见证确认率 + {praise}×认可反馈数（相对部门最高者）"
                              " + {on_time}×任务按时完成率；缺数据的一项不计，其余按权重折算。",
                        "en": "> Composite = {completion}×completion + {witnessed}×witnessed rate + {praise}×认可 feedback "
                              "(relative to the highest) + {on_time}×on-time tasks; a part without data is left out."},
    "rp.md.add": {"zh": "## 建议新增的职责", "en": "## Duties to add"},
    "rp.md.gone": {"zh": "## 不再出现的职责", "en": "## Duties no longer seen"},
    "rp.md.goals": {"zh": "## 服务的目标", "en": "## Goal codes served"},
    "rp.md.terms": {"zh": "## 关键动作与任务的高频词", "en": "## Frequent terms of weekly actions and tasks"},
    "rp.md.depts": {"zh": "## 协作部门", "en": "## Departments collaborated with"},
    "rp.md.comps": {"zh": "## 达到 L3 的能力", "en": "## Competencies held at L3"},
    "rp.md.none": {"zh": "- （无）", "en": "- (none)"},
    "rp.md.no_jd": {"zh": "（尚未保存现行 JD，以下全部列为建议新增）", "en": "(no current JD is stored: everything is listed)"},
    "rp.md.term": {"zh": "- {term}：{people} 人 · {count} 次（动作 {actions} · 任务 {tasks}）· {weeks} 周",
                   "en": "- {term}: {people} people · {count} times (actions {actions} · tasks {tasks}) · {weeks} weeks"},
    "rp.md.goal": {"zh": "- {code} {title}：{people} 人 · {actions} 条关键动作 · {weeks} 周",
                   "en": "- {code} {title}: {people} people · {actions} weekly actions · {weeks} weeks"},
    "rp.md.jd_gone": {"zh": "- 现行 JD 第 {number} 条「{line}」：{weeks} 周内的关键动作和任务里 0 次",
                      "en": "- Current JD item {number} \u201c{line}\u201d: 0 times in {weeks} weeks of actions and tasks"},
    "rp.md.prev_gone": {"zh": "- {term}：上次通过的画像中 {count} 次 · {weeks} 周，本期 0 次",
                        "en": "- {term}: {count} times in {weeks} weeks in the last approved profile, 0 now"},
    "rp.md.other_depts": {"zh": "其他部门（人数或协作者太少，不单列）",
                          "en": "other departments (too few people or collaborators to name)"},
    "rp.md.dept": {"zh": "- {department}：见证 {witness} · 反馈 {feedback} · 任务 {task}（{people} 人）",
                   "en": "- {department}: witness {witness} · feedback {feedback} · tasks {task} ({people} people)"},
    "rp.md.comp": {"zh": "- {code} {name}：{people}/{top} 人", "en": "- {code} {name}: {people}/{top} people"},
    "rp.md.footer": {"zh": "> 只显示人数和次数，不显示任何人的姓名或排名。",
                     "en": "> Counts only: no one's name or rank is shown."},
})
