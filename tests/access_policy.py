"""Who may call each HTTP route, chat command, card and menu entry of the bot, and what it may show.

tests/test_isolation_matrix.py reads these tables: it fails when the app has a
route, a chat command, a card kind or a menu key without an entry here, or when
an entry names one that no longer exists, and it runs every entry's attempts as
each role, with identifiers from the other tenant.

Callers of HTTP routes (`Route.who`):
- public:   anyone; the answer holds no tenant data.
- operator: whoever holds the console token. The console acts as any person of
            a console tenant, so every identifier it is given must belong to the
            tenant it names, and nothing it shows comes from another tenant.
- viewer:   the console token, and then only the figures the named person's role
            allows (employee: own actions; manager: reporting line; HR, admin: company).
- platform: the tenant's own platform, proven by that tenant's signature or
            encryption; the sender must be on that tenant's roster.

Rules of chat attempts (`Attempt.rule`), all within the sender's own tenant:
- own:           the sender's own records; nobody else's change.
- read_person:   the subject is the sender, in the sender's reporting line, or the sender is HR.
- give_feedback: the receiver is in the sender's reporting line (peer feedback is off).
- view_task:     people on the task (owner, collaborators), the project's PMO, the task's
                 creator, managers of the owner or a collaborator, and the pmo, admin and hr roles.
- report_task:   owner, collaborators and the project's PMO.
- edit_task:     the pmo and admin roles, the project's PMO and the task's creator.
- create_task:   the manager, pmo and admin roles.
- assess:        the subject's reviewer: the first active manager above them (not HR, not higher managers).
- calibrate:     the subject's reviewer and the hr role.
- lead:          the hr role (the company), or anyone with people in their reporting line (that line only).
- change_goal:   proposing a goal change: managers of the goal's department (or one above it), the hr
                 and admin roles; a new goal without 部门 is of the sender's own department (subject "").
- hr:            the hr role (role profiles summarise a whole department).
- recipient:     the person the card was sent to (a forwarded or forged press is refused).
- never:         identifiers of another tenant: always refused, nothing changed.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("employee", "manager", "hr", "pmo", "admin")
# Who may see a record, wherever it shows up: every answer the matrix gets is read for them.
SEES = {
    "action": "its owner and witness, managers of the owner, HR, and admins (the weekly export)",
    "feedback": "its receiver and giver, managers of the receiver, and HR",
    "task": "whoever view_task allows",
    "company": "people of that company only (department paths, names, goals)",
}
# One person per role; the same user ids exist in every tenant of the matrix.
# In the demo company the admin also heads it; in the rival company the admin heads nobody.
ROLE_ACTORS = {"employee": "wangqiang", "manager": "liuyang", "hr": "zhoumin", "pmo": "guoqing", "admin": "chenjie"}
# In no role actor's reporting line, except the demo admin's (who heads the demo company).
OUTSIDER = "xiaoyan"

# Placeholders in attempt texts, filled per tenant by the matrix:
#   {elsewhere}       a person who exists only in the other tenant
#   {elsewhere_task}  a task code that exists only in the other tenant
RULES = ("own", "read_person", "give_feedback", "view_task", "report_task", "edit_task", "create_task",
         "change_goal", "recipient", "assess", "calibrate", "lead", "hr", "never")
WHO = ("public", "operator", "viewer", "platform")


@dataclass(frozen=True)
class Attempt:
    """One chat message a person sends, and the rule that decides whether it may act."""

    text: str
    rule: str
    subject: str = ""  # the user id or task code the rule is about
    refusal: str = ""  # the text key of the answer when refused ("a|b": either)
    # Tables an allowed attempt may change, besides the sender's own inbox, outbox,
    # conversation state, cards and audit trail.
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    who: str
    reveals: str
    attempts: tuple[Attempt, ...]
    sample: str  # a message the command parser reads as this command


@dataclass(frozen=True)
class CardKind:
    who: str
    reveals: str
    press: str  # the button pressed: its key, or the prefix of its key


@dataclass(frozen=True)
class Menu:
    who: str
    reveals: str


@dataclass(frozen=True)
class Route:
    who: str
    reveals: str
    checks: tuple[str, ...]  # the matrix's attempts against this route (see CHECKS in the test)


# Table names as the database has them.
WEEKLY_TABLES = ("weeklyaction", "witnessevent", "actionedit", "leave")
TASK_TABLES = ("task", "task_update", "escalation", "project")
# A proposal is logged; an admin with nobody above approves their own at once.
GOAL_TABLES = ("goaladjustment", "goal", "goalversion")
_FB_EVENT = "周二夜里帮客户排查退货问题"

COMMANDS: dict[str, Command] = {
    "brief": Command(
        "the person, managers of their reporting line, HR",
        "the person's actions, feedback and tasks of the period (card and HTML document)",
        (Attempt("简报 @{elsewhere}", "never", refusal="fb.person.none"),
         Attempt("简报 @xiaoyan", "read_person", OUTSIDER, "brief.denied"),
         Attempt("简报 @wangqiang", "read_person", "wangqiang", "brief.denied"),
         Attempt("简报", "own")),
        "简报 @王强"),
    "feedback": Command(
        "managers to people of their reporting line; reading: as brief",
        "the feedback a person received, to those who may read it",
        (Attempt("反馈 查看 @{elsewhere}", "never", refusal="fb.person.none"),
         Attempt("反馈 查看 @xiaoyan", "read_person", OUTSIDER, "fb.view.denied"),
         Attempt(f"反馈 @{{elsewhere}} #主动补位 客户级 {_FB_EVENT}", "never", refusal="fb.person.none"),
         Attempt(f"反馈 @xiaoyan #主动补位 客户级 {_FB_EVENT}", "give_feedback", OUTSIDER, "fb.outside_line",
                 changes=("feedback",))),
        "反馈 @王强 #主动补位 客户级 周二夜里帮客户排查退货问题"),
    "goal_adjust": Command(
        "change_goal", "the goal's fields; the proposal goes to the approver as a card",
        (Attempt("调整 O3-KR1 权重 45% 原因:市场 客诉量上升", "change_goal", "O3-KR1", "gc.no_right",
                 changes=GOAL_TABLES),
         Attempt("调整 O9-KR9 权重 45% 原因:市场", "never", refusal="gc.unknown_goal")),
        "调整 O1-KR2 权重 40%→28% 原因:政策"),
    "goal_add": Command(
        "change_goal", "the new goal; the proposal goes to the approver as a card",
        (Attempt("新增 O1-KR9 备选注册路径 上级 O1 权重 5% 原因:政策 集采", "change_goal", "", "gc.no_right",
                 changes=GOAL_TABLES),),
        "新增 O1-KR5 集采替代方案推进进度 上级 O1 权重 10%"),
    "goal_cancel": Command(
        "change_goal", "the goal's title; the proposal goes to the approver as a card",
        (Attempt("取消 O3-KR1 原因:市场 需求消失", "change_goal", "O3-KR1", "gc.no_right", changes=GOAL_TABLES),),
        "取消 O1-KR3 原因:市场"),
    "my_feedback": Command("anyone on the roster", "the sender's own feedback",
                           (Attempt("我的反馈", "own"),), "我的反馈"),
    "task": Command(
        "viewing: view_task; changing: edit_task; creating: create_task; listing: own",
        "a task's fields and history to those who may view it; the sender's own open tasks",
        (Attempt("任务 {elsewhere_task}", "never", refusal="task.unknown"),
         Attempt("任务 T1", "view_task", "T1", "task.no_right.view"),
         Attempt("任务 T3", "view_task", "T3", "task.no_right.view"),
         Attempt("任务 T3 客服系统割接演练", "edit_task", "T3", "task.no_right.edit", changes=TASK_TABLES),
         Attempt("任务 新品发布 T9 场地确认 @{elsewhere} 12-20 18:00", "never",
                 refusal="task.no_right.create|task.person.none"),
         Attempt("任务 新品发布 T8 场地确认 @xiaoyan 12-20 18:00", "create_task", refusal="task.no_right.create",
                 changes=TASK_TABLES),
         Attempt("任务", "own")),
        "任务 T1"),
    "progress": Command(
        "report_task",
        "the task's new status, to its owner and PMO",
        (Attempt("进度 {elsewhere_task} 完成 报告已上传", "never", refusal="task.unknown"),
         Attempt("进度 T3 阻塞 等待供应商回复", "report_task", "T3", "task.no_right.report", changes=TASK_TABLES),
         Attempt("进度 T1 进行中", "report_task", "T1", "task.no_right.report", changes=TASK_TABLES)),
        "进度 T1 进行中"),
    "deliverable_override": Command(
        "edit_task",
        "the task's deliverable light, to the PMO releasing it and the owner",
        (Attempt("放行 {elsewhere_task} 客户已书面确认", "never", refusal="task.unknown"),
         # The matrix's world has no red check, so an allowed release says so and changes nothing
         # (tests/test_deliverable_intake.py releases a red one).
         Attempt("放行 T3 客户已书面确认", "edit_task", "T3", "deliv.override.no_right")),
        "放行 T3 客户已书面确认"),
    "edit": Command("own", "the sender's own weekly action",
                    (Attempt("修改 @{elsewhere}", "never", refusal="witness.none"),), "修改 @李娜"),
    "done": Command("own", "the sender's own weekly action; the witness is asked to confirm",
                    (Attempt("完成", "own", changes=WEEKLY_TABLES),), "完成"),
    "not_done": Command("own", "the sender's own weekly action",
                        (Attempt("未完成", "own", changes=WEEKLY_TABLES),), "未完成"),
    "status": Command("own", "the sender's own weekly action",
                      (Attempt("本周", "own"),), "本周"),
    "help": Command("anyone on the roster", "the help text", (Attempt("帮助", "own"),), "帮助"),
    "goals": Command("anyone on the roster", "goals of the same tenant (codes and titles)",
                     (Attempt("目标", "own"),), "目标"),
    "cancel": Command("own", "nothing; the sender's half-finished exchange is dropped",
                      (Attempt("取消", "own"),), "取消"),
    "continue": Command("own", "the sender's own exchange put aside, asked again",
                        (Attempt("继续", "own"),), "继续"),
    "leave": Command("own", "the sender's own leave",
                     (Attempt("请假 至 12-10", "own", changes=("leave",)),), "请假 至 12-10"),
    "skip": Command("own", "the sender's own leave",
                    (Attempt("本周跳过 出差", "own", changes=("leave",)),), "本周跳过 出差"),
    # A typed card answer acts only on a card sent to the sender, as its press would (rule "recipient"
    # of that card kind); the weekly record it answers belongs to the colleague who asked.
    "answer": Command("own: the sender's open cards only",
                      "the colleague's weekly action the sender was asked to witness or confirm",
                      (Attempt("接受", "own", changes=WEEKLY_TABLES), Attempt("确认", "own", changes=WEEKLY_TABLES)),
                      "接受"),
}

COMMANDS.update({
    "self_assess": Command("anyone on the roster", "the sender's own assessment draft and the library's anchors",
                           (Attempt("自评", "own"),), "自评"),
    "assess": Command(
        "the subject's reviewer", "the library's anchors and the subject's own records of the period, to the reviewer",
        (Attempt("评估 @{elsewhere}", "never", refusal="fb.person.none"),
         Attempt("评估 @xiaoyan", "assess", OUTSIDER, "comp.not_reviewer"),
         Attempt("评估 @wangqiang", "assess", "wangqiang", "comp.not_reviewer|comp.self_is_self")),
        "评估 @王强"),
    "calibrate": Command(
        "the subject's reviewer and HR", "the outcome of the subject's calibration, to the three parties",
        (Attempt("校准 @{elsewhere} C03 L2", "never", refusal="fb.person.none"),
         Attempt("校准 @wangqiang C03 L2 已当面对齐", "calibrate", "wangqiang", "comp.cal.denied")),
        "校准 @王强 C03 L2 已当面对齐"),
    "case_consent": Command("own", "the sender's own consent to show feedback as a case",
                            (Attempt("案例授权", "own"),), "案例授权 同意"),
    # The handler lets the tracking row's owner, managers above the owner and the admin role record a
    # payment (tests/test_trace_payments.py); no company of the matrix has a tracking row, so every attempt
    # here finds none, in either tenant, and changes nothing.
    "receivable_paid": Command(
        "the tracking row's owner, managers above the owner, the admin role",
        "the contract's title and amounts, to whoever may record its payments",
        (Attempt("回款 HT-2026-001 已到账 ¥50000", "never", refusal="trace.pay.unknown"),),
        "回款 HT-2026-001 已到账 ¥50000"),
})

COMMANDS.update({
    "contribute": Command(
        "anyone on the roster", "the sender's own contribution; the verifier named gets the card",
        (Attempt("贡献 项目收益 ¥120000 发布会提前两周上线 @{elsewhere}", "never", refusal="fb.person.none"),
         Attempt("贡献", "own")),
        "贡献 项目收益 ¥120000 发布会提前两周上线 @唐凯"),
    # 属实 / 不属实 typed instead of pressed act only on contributions waiting for the sender.
    "verify_contribution": Command(
        "own: contributions waiting for the sender", "the contribution the sender was asked to verify",
        (Attempt("属实", "own"),), "不属实 只提前了一周"),
    "contribution_ranking": Command(
        "lead", "verified contributions, witness confirmations and recognitions of the line (HR: the company)",
        (Attempt("贡献排名", "lead", refusal="contrib.rank.denied"),), "贡献排名 2026Q4"),
    "reward_suggestions": Command(
        "lead", "the verified contributions of the sender's direct reports, as reward cards to the sender",
        (Attempt("奖励建议", "lead", refusal="contrib.rank.denied"),), "奖励建议 2026-11"),
    "contribution_heatmap": Command(
        "lead", "verified contributions by department and type of the line (HR: the company), small cells blank",
        (Attempt("热力图", "lead", refusal="contrib.rank.denied"),), "热力图 本季度"),
    "reward_export": Command(
        "lead", "the reward amounts entered for the line (HR: the company), as XLSX",
        (Attempt("奖励导出", "lead", refusal="contrib.rank.denied"),), "奖励导出 2026-11"),
    # Entering a reward follows the reporting line, as giving feedback does.
    "reward": Command(
        "managers above the person", "the person's verified contributions of the month and the amount entered",
        (Attempt("奖励 @{elsewhere} 2000", "never", refusal="fb.person.none"),
         Attempt("奖励 @xiaoyan 2000", "give_feedback", OUTSIDER, "contrib.reward.denied")),
        "奖励 @王强 2000"),
    "role_profile": Command(
        "hr", "counts of a department's top group (goals, words, departments, competencies), never a person",
        (Attempt("岗位画像 研发中心/注册部", "hr", refusal="rp.denied"),), "岗位画像 研发中心/注册部"),
    # Naming anyone is refused for every role (tests/test_usage.py): only one's own figures.
    "my_usage": Command("own", "the sender's own uses of the bot and escalations sent to them",
                        (Attempt("我的使用", "own"), Attempt("我的使用 @{elsewhere}", "never", refusal="usage.own_only")),
                        "我的使用"),
})

CARDS: dict[str, CardKind] = {
    "action_owner": CardKind("recipient", "the owner's own weekly action", "done"),
    "last_day": CardKind("recipient", "the owner's own weekly action", "done"),
    "morning_prompt": CardKind("recipient", "nothing; the prompt", "skip"),
    "witness_invite": CardKind("recipient", "the action the witness was asked to witness", "accept"),
    "witness_confirm": CardKind("recipient", "the action the witness was asked to confirm", "confirm"),
    "witness_choice": CardKind("recipient", "colleagues of the same tenant matching the typed name", "pick:"),
    "goal_choice": CardKind("recipient", "goals of the same tenant", "goal:"),
    "action_doubt": CardKind("recipient", "the sender's own typed text, to record or drop", "yes"),
    "fb_person": CardKind("recipient", "people of the sender's reporting line", "to:"),
    "fb_tag": CardKind("recipient", "the tenant's feedback tags", "tag:"),
    "fb_impact": CardKind("recipient", "the impact levels", "impact:"),
    "brief": CardKind("recipient", "the brief's subject, for feedback", "feedback"),
    "task_view": CardKind("recipient", "the task's owner, for feedback", "feedback"),
    "task_owner": CardKind("recipient", "the owner's task", "progress"),
    "goal_change": CardKind("recipient", "the proposed goal change, to its approver", "gc_ok"),
    "task_escalation": CardKind("recipient", "the escalated task, to the manager and PMO it went to", "nudge"),
}

MENUS: dict[str, Menu] = {
    "weekly": Menu("anyone on the roster", "the sender's own weekly action or the prompt"),
    "mydata": Menu("anyone on the roster", "the sender's own weekly action"),
    "feedback": Menu("anyone on the roster", "people of the sender's reporting line"),
}

_CONSOLE = ("needs_token",)
ROUTES: dict[str, Route] = {
    "GET /healthz": Route("public", "database and adapter health; no tenant data", ("public_no_data",)),
    "GET /readyz": Route("public", "schema and adapter readiness; no tenant data", ("public_no_data",)),
    "GET /metrics": Route("public", "counters by platform; no tenant data", ("public_no_data",)),
    "GET /console": Route("public", "a redirect to the page", ("public_no_data",)),
    "GET /console/": Route("public", "the page, which holds no data", ("public_no_data",)),
    "GET /console/static/{name}": Route("public", "fixed assets, no data", ("public_no_data", "static_fixed_list")),
    "GET /console/api/tenants": Route("operator", "the configured tenants, no people", _CONSOLE + ("tenants_no_people",)),
    "GET /console/api/users": Route("operator", "the active people of the tenant named",
                                    _CONSOLE + ("users_of_that_tenant",)),
    "POST /console/api/messages": Route("operator", "nothing; the message is handled as its sender's",
                                        _CONSOLE + ("message_foreign_user", "message_platform_tenant",
                                                    "message_as_role")),
    "POST /console/api/actions": Route("operator", "nothing; the press is handled as its presser's",
                                       _CONSOLE + ("action_foreign_user", "action_foreign_card",
                                                   "action_platform_tenant")),
    "GET /console/api/inbox": Route("operator", "what the bot sent to that person of that tenant",
                                    _CONSOLE + ("inbox_foreign_user", "inbox_own")),
    "GET /console/api/files/{seq}": Route("operator", "a file sent to that person of that tenant",
                                          _CONSOLE + ("file_recipient_only",)),
    "GET /console/api/clock": Route("operator", "the clock; no tenant data", _CONSOLE + ("clock_no_data",)),
    "PUT /console/api/clock": Route("operator", "the clock; no tenant data", _CONSOLE + ("clock_no_data",)),
    "DELETE /console/api/clock": Route("operator", "the clock; no tenant data", _CONSOLE + ("clock_no_data",)),
    "GET /console/api/jobs": Route("operator", "the names of the jobs; no tenant data", _CONSOLE + ("clock_no_data",)),
    "POST /console/api/jobs/{name}/run": Route("operator", "how many messages the job sent in the tenant named",
                                               _CONSOLE + ("job_stays_in_tenant",)),
    "GET /console/api/pulse": Route("viewer", "own actions; figures of the role's scope",
                                    _CONSOLE + ("viewer_foreign_user", "pulse_scope")),
    "GET /console/api/pulse/chart.png": Route("viewer", "the trend of the role's scope (managers, HR, admins)",
                                              _CONSOLE + ("viewer_foreign_user", "chart_scope")),
    "GET /console/api/export.xlsx": Route("viewer", "the tenant's weekly rows (HR and admins)",
                                          _CONSOLE + ("viewer_foreign_user", "export_scope")),
    "GET /console/audit": Route("public", "the audit page, which holds no data", ("public_no_data",)),
    "GET /console/api/audit": Route("viewer", "the tenant's audit log: who read whose data (HR and admins)",
                                    _CONSOLE + ("viewer_foreign_user", "audit_scope")),
    "GET /wecom/{tenant_key}/callback": Route("platform", "the decrypted echo of a correctly signed URL check",
                                              ("wecom_verify",)),
    "POST /wecom/{tenant_key}/callback": Route("platform", "nothing; the message is handled as the sender's",
                                               ("wecom_foreign_corp", "wecom_foreign_sender", "wecom_foreign_card",
                                                "wecom_not_a_wecom_tenant", "wecom_as_role")),
    # Public, but only to the holder of a link signed with the tenant's upload_secret.
    "GET /upload/{token}": Route("public", "with a signed link: the form, with the task's code, title and template",
                                 ("upload_signed_only",)),
    "POST /upload/{token}": Route("public", "nothing; with a signed link the file becomes its owner's deliverable",
                                  ("upload_signed_only",)),
    "POST /hooks/{tenant_key}/{source}": Route("platform", "nothing; a signed external event is stored for the rules",
                                              ("hooks_unconfigured",)),
    "POST /dingtalk/{tenant_key}/callback": Route("platform", "nothing; the message is handled as the sender's",
                                                  ("dingtalk_foreign_secret", "dingtalk_foreign_sender",
                                                   "dingtalk_foreign_card", "dingtalk_foreign_mention",
                                                   "dingtalk_stream_frames",
                                                   "dingtalk_not_a_dingtalk_tenant", "dingtalk_as_role")),
}
