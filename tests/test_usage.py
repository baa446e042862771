"""The manager KPI: each use counted as pull, prompted or action; the week's figures in HR's card
and export; each person sees only their own; features nobody uses listed as 建议关闭."""
from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.db import Database
from store.export import export_weekly
from store.tasks import import_tasks
from store.usage import UsageEvent, adoption, manager_kpi
from bot.core.calendar import WorkCalendar
from tests.harness import ConsoleBot, at, console_bot

WEEK = "2026-W49"  # Monday 2026-11-30 … Sunday 2026-12-06
LIVE = "2026-10-19"  # seven weeks before the week's end
NO_REMINDERS = {"tasks": {"remind_before_working_hours": 0, "remind_at_due": False}}
TASKS = ("project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
         "发布会,新品发布会,guoqing,T12,直播系统压测,luoyi,,2026-12-01 12:00,压测报告\n")


async def uses(db: Database, userid: str) -> list[tuple[str, str, str]]:
    async with db.session() as s:
        rows = (await s.execute(select(UsageEvent).where(UsageEvent.userid == userid).order_by(UsageEvent.id))).scalars()
        return [(r.kind, r.feature, r.what) for r in rows]


async def open_data_tab(bot: ConsoleBot, userid: str) -> None:
    r = await bot.client.get("/console/api/pulse", params={"tenant": bot.tenant, "userid": userid, "week": WEEK})
    assert r.status == 200, await r.text()


async def a_week(bot: ConsoleBot, db: Database, tmp_path: Path) -> None:
    """Monday to Friday of W49 in the demo company (10 managers)."""
    clock = bot.clock
    # Monday: 刘洋 (注册部) asks for 王强's brief: a pull. 王强 greets first: chit-chat is no use.
    clock.set(at("2026-11-30 09:30"))
    await bot.say("wangqiang", "你好")
    await bot.say("liuyang", "简报 @王强")
    assert await uses(db, "wangqiang") == []
    assert await uses(db, "liuyang") == [("pull", "brief", "brief")]

    # 王强 writes his weekly action with 刘洋 as witness; the invitation is a card the bot pushed.
    await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @刘洋")
    assert await uses(db, "wangqiang") == [("action", "weekly_action", "")]
    await bot.press("liuyang", await bot.last_card("liuyang", "见证邀请"), "接受见证")
    assert (await uses(db, "liuyang"))[-1] == ("prompted", "weekly_action", "witness_invite")

    # Tuesday: 刘洋 gives feedback, stepping through the cards it answers with (full-width @ and #):
    # the steps are not counted again, the feedback given is one action.
    clock.set(at("2026-12-01 10:00"))
    await bot.say("liuyang", "反馈 ＠王强 周二夜里帮客户排查退货问题")
    await bot.press("liuyang", await bot.last_card("liuyang"), "主动补位")
    await bot.press("liuyang", await bot.last_card("liuyang"), "客户级")
    assert await uses(db, "liuyang") == [("pull", "brief", "brief"), ("prompted", "weekly_action", "witness_invite"),
                                         ("action", "feedback", "")]

    # Five more managers look at something once: the console's data tab, 状态, 目标.
    for boss in ("wuhao", "qinfeng"):
        await open_data_tab(bot, boss)
    await bot.say("hanmei", "状态")
    await bot.say("pengli", "目标")
    await bot.say("huangyan", "简报")
    await bot.say("huangyan", "简报 @张伟")  # two 张伟: the answer asks which; still a pull
    await bot.say("huangyan", "状 态")
    assert [k for k, _, _ in await uses(db, "huangyan")] == ["pull", "pull", "pull"]
    assert await uses(db, "wuhao") == [("pull", "console_data", "view_pulse")]

    # An escalation: T12 of 罗毅 (采购部, manager 梁波; PMO 郭庆) is silent past due at 14:00.
    report = await import_tasks(db, "demo", _csv(tmp_path), now=at("2026-11-30 10:00"))
    assert report.ok, report.errors
    assert await bot.run_job("overdue_scan", at("2026-12-01 14:00")) >= 2
    # 16:30: 梁波 presses 调整截止 (prompted) and answers (the action that resolves it): 2.5 working hours.
    clock.set(at("2026-12-01 16:30"))
    await bot.press("liangbo", await bot.last_card("liangbo", "阻塞预警"), "调整截止")
    await bot.say("liangbo", "12-03 18:00")
    await bot.say("liangbo", "等供应商到货")
    assert "已将 T12 的截止时间" in (await bot.texts("liangbo"))[-1]
    assert await uses(db, "liangbo") == [("prompted", "tasks", "task_escalation"), ("action", "tasks", "")]


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "tasks.csv"
    p.write_text(TASKS, encoding="utf-8")
    return p


async def test_a_week_of_managers_counted_by_kind_in_hr_card_and_export(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 09:00"))
    async with console_bot(db, clock, tmp_path, live_from=LIVE, **NO_REMINDERS) as bot:
        await a_week(bot, db, tmp_path)

        # Figures: active = a pull this week; a prompted press or an action alone is not "opening it".
        async with db.session() as s:
            kpi = await manager_kpi(s, "demo", WEEK, WorkCalendar(bot.runtime.config.tenant("demo")))
        assert len(kpi.total.managers) == 10
        active = sorted(m.userid for m in kpi.total.managers if m.active)
        assert active == ["hanmei", "huangyan", "liuyang", "pengli", "qinfeng", "wuhao"]
        assert kpi.total.active_rate == 0.6
        # Pulls per manager: 0 0 0 0 1 1 1 1 1 3 → median 1.
        assert kpi.total.median_pulls == 1
        liangbo = kpi.by_manager["liangbo"]
        assert (liangbo.pulls, liangbo.prompted, liangbo.actions) == (0, 1, 1)
        assert (liangbo.escalations, liangbo.resolved, liangbo.act_hours) == (1, 1, [2.5])
        dept = {d.department: d for d in kpi.departments}
        assert dept["康骨医疗/采购部"].median_act_hours == 2.5 and dept["康骨医疗/采购部"].active == 0
        assert (dept["康骨医疗/研发中心/注册部"].active_rate, dept["康骨医疗/研发中心/注册部"].actions) == (1.0, 1)

        # Friday: HR's company card carries the figures per department.
        await bot.run_job("pulse", at("2026-12-04 17:00"))
        card = await bot.last_card("zhoumin", "组织脉搏")
        body = card["body"]
        assert "管理者使用：周活跃 6/10（60%），人均主动使用中位数 1 次，升级处理用时中位数 2.5 工时" in body
        assert "· 采购部：活跃 0/1，中位 0 次，推送点按 1，行动 1，升级 1 个（中位 2.5 工时）" in body
        assert "· 注册部：活跃 1/1，中位 1 次，推送点按 1，行动 1" in body
        # A manager's own team card does not carry the company's figures.
        assert "管理者使用" not in (await bot.last_card("liuyang", "团队脉搏"))["body"]

        # The export has the sheet, company first, and the definitions.
        out = await export_weekly(db, "demo", [WEEK], tmp_path / "w49.xlsx", now=at("2026-12-04 18:00"))
        wb = load_workbook(out)
        rows = [list(r) for r in wb["管理者使用"].iter_rows(values_only=True)]
        assert rows[0][:5] == ["周", "部门", "经理人数", "主动使用经理", "周活跃率"]
        assert rows[1][:6] == [WEEK, "全公司", 10, 6, 0.6, 1]
        purchasing = next(r for r in rows if r[1] == "康骨医疗/采购部")
        assert purchasing[8:] == [1, 1, 2.5]
        names = [r[0] for r in wb["指标定义"].iter_rows(values_only=True)]
        assert {"周活跃率", "人均主动使用中位数", "处理用时中位数", "建议关闭"} <= set(names)


async def test_each_person_sees_only_their_own_usage(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 09:00"))
    async with console_bot(db, clock, tmp_path, live_from=LIVE, **NO_REMINDERS) as bot:
        await a_week(bot, db, tmp_path)
        await bot.new("wangqiang")
        # 王强 (an employee) asks for his manager's figures: refused, nothing of 刘洋's shown.
        await bot.say("wangqiang", "我的使用 @刘洋")
        [reply] = await bot.texts("wangqiang")
        assert reply == "「我的使用」只显示你自己的使用数据，不能查看别人的。直接发「我的使用」即可。"
        await bot.say("wangqiang", "我的使用 ＠刘洋")  # full-width: the same answer
        assert (await bot.texts("wangqiang")) == [reply]
        assert await uses(db, "wangqiang") == [("action", "weekly_action", "")]  # the refusals stored nothing
        # 刘洋 is in the middle of writing feedback and asks with a typo: the feedback waits, he sees
        # his own week (this message counts as a pull too), and 继续 brings the feedback back.
        await bot.say("liuyang", "反馈 @王强 准备季度复盘材料")
        await bot.new("liuyang")
        await bot.say("liuyang", "我的使甬")
        paused, mine = await bot.texts("liuyang")
        assert paused == "已暂停填写反馈，回复「继续」接着填。"
        assert mine.startswith("我的使用 · ")
        assert "本周：主动查看 2 次，点按推送卡片 1 次，行动 1 次（含本次）" in mine
        assert "近 4 周里有 1 周主动打开过" in mine
        await bot.say("liuyang", "继续")
        assert await bot.new("liuyang")
        assert [k for k, _, _ in await uses(db, "liuyang")] == ["pull", "prompted", "action", "pull"]
        # 梁波's escalation is his, with its time to act.
        await bot.new("liangbo")
        await bot.say("liangbo", "我的使用。")
        [his] = await bot.texts("liangbo")
        assert "本周收到升级预警 1 个，已解决 1 个，处理用时中位数 2.5 工时" in his
        assert "2.5" not in mine


async def test_adoption_lists_what_nobody_used_after_six_weeks(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 09:00"))
    async with console_bot(db, clock, tmp_path, live_from=LIVE, **NO_REMINDERS) as bot:
        await a_week(bot, db, tmp_path)
        # Both HR people download the export from the console: everybody eligible used it.
        for hr in ("zhoumin", "hexin"):
            r = await bot.client.get("/console/api/export.xlsx", params={"tenant": "demo", "userid": hr, "week": WEEK})
            assert r.status == 200, await r.text()
        async with db.session() as s:
            found = {a.feature: a for a in await adoption(s, "demo", WEEK)}
            early = {a.feature: a for a in await adoption(s, "demo", "2026-W44")}
        assert (found["export"].users, found["export"].eligible, found["export"].turn_off) == (2, 2, False)
        assert (found["goal_changes"].users, found["goal_changes"].turn_off) == (0, True)
        assert found["goal_changes"].weeks == 7 and found["goal_changes"].mature
        # Feedback: 1 of 10 managers → under 20 %.
        assert (found["feedback"].users, found["feedback"].eligible, found["feedback"].turn_off) == (1, 10, True)
        # Two weeks after go-live nothing is judged yet.
        assert not any(a.turn_off for a in early.values())

        await bot.run_job("pulse", at("2026-12-04 17:00"))
        body = (await bot.last_card("zhoumin", "组织脉搏"))["body"]
        line = next(x for x in body.split("\n") if x.startswith("建议关闭"))
        assert line.startswith("建议关闭（上线满 6 周，近 4 周使用率低于 20%）：")
        assert "目标调整 0%（0/10）" in line and "导出周报" not in line
        out = await export_weekly(db, "demo", [WEEK], tmp_path / "w49.xlsx", now=at("2026-12-04 18:00"))
        rows = [list(r) for r in load_workbook(out)["管理者使用"].iter_rows(values_only=True)]
        goal = next(r for r in rows if r[0] == "目标调整")
        export = next(r for r in rows if r[0] == "导出周报")
        assert goal[2:7] == [10, 0, 0, 7, "建议关闭"] and export[2:6] == [2, 2, 1, 7] and not export[6]
