"""Goal dynamic calibration, replayed on the article's Ningbo case, on SQLite and PostgreSQL.

A procurement-policy change (集采) lands on Tuesday 12-08. 注册部's manager 刘洋 cuts O1-KR2's
weight by 30 % (40 → 28) and adds O1-KR5; his manager 陈杰 approves both on 12-09. The
quarter's calibration rate and the one-day lead time then show on the pulse, in the XLSX and
in the brief, while the week that closed before keeps its figures.
"""
from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.core.clock import FrozenClock
from handlers.goal_changes import read_verdict
from handlers.routes import classify_command
from store.db import Database
from store.export import export_weekly
from bot.core.calendar import iso_week
from store.goal_changes import calibration, match_cause, quarter_of, time_weighted_weight, versions
from store.pulse import compute_pulse
from store.statuses import GoalStatus
from store.models import AuditLog, Goal, GoalAdjustment, GoalVersion
from tests.harness import SHANGHAI, ConsoleBot, at, console_bot


async def said(bot: ConsoleBot, userid: str) -> list[str]:
    return [m["text"] for m in await bot.new(userid) if m["kind"] == "text"]


async def goals(db: Database) -> dict[str, Goal]:
    async with db.session() as s:
        return {g.code: g for g in (await s.execute(select(Goal).where(Goal.tenant == "demo"))).scalars()}


async def changes(db: Database) -> list[GoalAdjustment]:
    async with db.session() as s:
        return list((await s.execute(select(GoalAdjustment).order_by(GoalAdjustment.id))).scalars())


async def snapshot(db: Database) -> tuple[Any, ...]:
    """Everything a refused attempt must leave alone."""
    async with db.session() as s:
        g = [(x.code, x.title, x.weight, x.status, x.due) for x in (await s.execute(select(Goal).order_by(Goal.code))).scalars()]
        c = [(x.id, x.status) for x in (await s.execute(select(GoalAdjustment))).scalars()]
        v = [(x.goal_code, x.valid_from, x.valid_to) for x in (await s.execute(select(GoalVersion))).scalars()]
    return g, c, v


def test_causes_are_matched_tolerantly() -> None:
    assert [match_cause(t) for t in ("政策", "政策变化", "Policy", "正策", "集采", " 市场 ", "技术", "其它", "ＯＴＨＥＲ")] == [
        "政策", "政策", "政策", "政策", "政策", "市场", "技术", "其他", "其他"]
    assert [match_cause(t) for t in ("天气", "", "心情不好")] == [None, None, None]


def test_typed_verdicts() -> None:
    assert read_verdict("同意") == ("approve", "")
    assert read_verdict("同意👍") == ("approve", "")
    # Acknowledging the card is not approving the change.
    assert read_verdict("收到") is None and read_verdict("好的👍") is None and read_verdict("嗯") is None
    assert read_verdict("驳回 预算不足") == ("reject", "预算不足")
    assert read_verdict("不同意，先等集采结果") == ("reject", "先等集采结果")
    assert read_verdict("驳回") == ("reject", "")
    assert read_verdict("明天再说") is None


def test_the_commands_are_declared_with_their_words() -> None:
    assert classify_command("调整 O1-KR2 权重 40%→28% 原因:政策")[0] == "goal_adjust"
    assert classify_command("新增 O1-KR5 集采替代方案推进进度 上级 O1")[0] == "goal_add"
    assert classify_command("取消 o1kr3 原因:市场 需求消失")[0] == "goal_cancel"
    assert classify_command("取消")[0] == "cancel"  # the flow engine's own word stays its own
    assert classify_command("调整供应商交期 @李娜")[0] == ""  # a weekly action that starts the same way


def fields(card: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in card["fields"]}


async def workbook(bot: ConsoleBot, userid: str) -> Any:
    files = [m for m in await bot.all_messages(userid) if m["kind"] == "file" and m["file"]["name"].endswith(".xlsx")]
    assert files, f"{userid} got no XLSX"
    r = await bot.client.get(files[-1]["file"]["url"])
    assert r.status == 200
    return load_workbook(io.BytesIO(await r.read()))


def sheet_rows(wb: Any, name: str) -> list[list[Any]]:
    return [list(r) for r in wb[name].iter_rows(values_only=True)]


async def week_figures(db: Database, week: str) -> Any:
    async with db.session() as s:
        p = await compute_pulse(s, "demo", week)
        c = await calibration(s, "demo", "2026Q4", SHANGHAI, upto=at("2026-12-07 00:00"))
    return p.total, [(d.dept, d.linked, d.actions) for d in p.departments], (c.key_tasks, c.adjusted)


async def test_the_ningbo_case(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        # Last week (W49): 王强's action links to O1-KR2; the Friday pulse goes out as usual.
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        clock.set(at("2026-12-04 17:30"))
        await bot.run_job("pulse", at("2026-12-04 17:30"))
        w49_company = fields(await bot.last_card("zhoumin", "组织脉搏"))
        assert w49_company["目标校准率（2026Q4）"] == "0%（0/7）· 健康线 15% ✗ · 前20% 22.7% ✗"
        w49 = await week_figures(db, "2026-W49")
        # This week (W50): 赵磊's action links to O1-KR2 as well.
        clock.set(at("2026-12-07 09:30"))
        await bot.say("zhaolei", "O1-KR2 补齐注册检验报告 @李娜")
        clock.set(at("2026-12-08 10:00"))
        for u in ("wangqiang", "liuyang", "chenjie", "zhaolei", "zhoumin"):
            await bot.new(u)

        # An employee may not re-weight a goal: refused, nothing changes.
        before = await snapshot(db)
        await bot.say("wangqiang", "调整 O1-KR2 权重 40%→28% 原因:政策 集采政策突变")
        assert await said(bot, "wangqiang") == ["只有目标所在部门的负责人、HR 或管理员可以调整 O1-KR2"]
        assert await snapshot(db) == before

        # 刘洋 (注册部's manager) proposes −30 % on O1-KR2 because of the policy change of today.
        await bot.say("liuyang", "调整 O1-KR2 权重 -30% 原因:政策 集采政策突变，注册路径需重排")
        assert await said(bot, "liuyang") == ["已提交：O1-KR2 权重 40% → 28%，等待 陈杰 审批"]
        card = await bot.last_card("chenjie", "目标调整待审批：O1-KR2")
        assert "- 旧：40%" in card["body"] and "+ 新：28%" in card["body"]
        assert dict(card["fields"])["原因"] == "政策" and dict(card["fields"])["事件日期"] == "2026-12-08"
        assert [b["text"] for b in card["buttons"]] == ["同意", "驳回"]
        assert (await goals(db))["O1-KR2"].weight == 40.0  # nothing changes before approval

        # … and a new KR under O1 at 10 %: with 28 proposed for KR2 the siblings sum 98 %.
        await bot.say("liuyang", "新增 O1-KR5 集采替代方案推进进度 上级 O1 权重 10% 部门 注册部 原因:政策 集采 事件:12-08")
        assert await said(bot, "liuyang") == ["已提交：新增 O1-KR5「集采替代方案推进进度」（上级 O1，权重 10%），等待 陈杰 审批"]
        kr5_card = await bot.last_card("chenjie", "目标调整待审批：O1-KR5")
        assert dict(kr5_card["fields"])["O1 下权重合计"] == "98%"

        # Someone else's press of the approver's card changes nothing.
        before = await snapshot(db)
        await bot.press("liuyang", card, "同意")
        assert await said(bot, "liuyang") == ["这张卡片不是发给你的。"]
        assert await snapshot(db) == before

        # 12-09: 陈杰 approves KR2 with a press and KR5 by typing 同意.
        clock.set(at("2026-12-09 09:00"))
        await bot.new("chenjie")
        await bot.press("chenjie", card, "同意")
        assert (await bot.last_card("chenjie", "目标调整待审批：O1-KR2"))["result"] == "已同意 · 自 2026-12-09 起生效"
        notice = "目标调整：O1-KR2 权重 40% → 28%（原因：政策），自 2026-12-09 起生效"
        assert notice in await said(bot, "liuyang")
        assert await said(bot, "zhaolei") == [notice]  # his current action links to O1-KR2
        assert await said(bot, "wangqiang") == []  # his linked action was last week's
        await bot.say("chenjie", "同意")
        assert (await bot.last_card("chenjie", "目标调整待审批：O1-KR5"))["result"] == "已同意 · 自 2026-12-09 起生效"
        g = await goals(db)
        assert g["O1-KR2"].weight == 28.0
        assert (g["O1-KR5"].level, g["O1-KR5"].parent_code, g["O1-KR5"].weight, g["O1-KR5"].department,
                g["O1-KR5"].period) == (2, "O1", 10.0, "康骨医疗/研发中心/注册部", "2026Q4")

        # Effective-dated: 12-08 still reads 40, 12-09 on reads 28; the quarter is time-weighted.
        async with db.session() as s:
            vs = (await versions(s, "demo", ["O1-KR2"]))["O1-KR2"]
            audits = list((await s.execute(select(AuditLog.action).where(AuditLog.actor_userid == "chenjie"))).scalars())
        assert [(v.valid_from, v.valid_to, v.weight) for v in vs] == [(None, date(2026, 12, 9), 40.0),
                                                                       (date(2026, 12, 9), None, 28.0)]
        assert round(time_weighted_weight(vs, date(2026, 10, 1), date(2026, 12, 31)) or 0, 1) == 37.0
        assert audits.count("approve_goal_change") == 2

        log = [(c.goal_code, c.field_name, c.old_value, c.new_value, c.reason, c.event_date, c.status, c.decided_by)
               for c in await changes(db)]
        assert log == [("O1-KR2", "weight", "40", "28", "政策", date(2026, 12, 8), "approved", "chenjie"),
                       ("O1-KR5", "new", "", "集采替代方案推进进度", "政策", date(2026, 12, 8), "approved", "chenjie")]

        # A title-only edit, for the market, approved: logged, but it is no calibration.
        await bot.say("huangyan", "调整 O1-KR1 标题 新品首批订单≥320套 原因:市场 渠道反馈")
        assert await said(bot, "huangyan") == ["已提交：O1-KR1 标题「新品首批订单≥300套」→「新品首批订单≥320套」，等待 陈杰 审批"]
        await bot.say("chenjie", "同意👍")
        assert (await goals(db))["O1-KR1"].title == "新品首批订单≥320套"

        # Friday 12-11: the rate (KR2 and KR5 of 8 key tasks) and the one-day lead time.
        clock.set(at("2026-12-11 17:30"))
        await bot.run_job("pulse", at("2026-12-11 17:30"))
        company = fields(await bot.last_card("zhoumin", "组织脉搏"))
        assert company["目标校准率（2026Q4）"] == "25%（2/8）· 健康线 15% ✓ · 前20% 22.7% ✓"
        assert company["事件→批准"] == "中位 1 天"
        team = fields(await bot.last_card("liuyang", "团队脉搏"))  # 注册部: O1-KR2 and O1-KR5
        assert team["目标校准率（2026Q4）"] == "100%（2/2）· 健康线 15% ✓ · 前20% 22.7% ✓"
        sales = fields(await bot.last_card("huangyan", "团队脉搏"))  # 销售部: O1-KR1, renamed only
        assert sales["目标校准率（2026Q4）"] == "0%（0/1）· 健康线 15% ✗ · 前20% 22.7% ✗"

        # The XLSX: every change with who, when, old → new, cause, event, approver, effective day; the rate.
        wb = await workbook(bot, "zhoumin")
        rows = sheet_rows(wb, "目标校准")
        head = rows[0]
        log = [dict(zip(head, r)) for r in rows[1:4]]
        assert [(r["目标"], r["调整项"], r["原值"], r["新值"], r["原因"], r["提议人"], r["审批人"], r["状态"],
                 r["计入校准率"]) for r in log] == [
            ("O1-KR2", "权重", "40", "28", "政策", "刘洋", "陈杰", "已批准", "是"),
            ("O1-KR5", "新增", None, "集采替代方案推进进度", "政策", "刘洋", "陈杰", "已批准", "是"),
            ("O1-KR1", "标题", "新品首批订单≥300套", "新品首批订单≥320套", "市场", "黄燕", "陈杰", "已批准", "否")]
        assert log[0]["事件日期"].date() == date(2026, 12, 8) and log[0]["生效日期"].date() == date(2026, 12, 9)
        rate_at = next(i for i, r in enumerate(rows) if r[:2] == ["季度", "部门"])
        rates = {r[1]: r for r in rows[rate_at + 1:] if r[0] == "2026Q4" and r[1] and r[2] is not None
                 and isinstance(r[2], int) and len(r) > 8 and r[8] is not None and r[5] in ("达到", "未达到")}
        assert rates["全公司"][2:8] == [8, 2, 0.25, "达到", "达到", 1]
        assert rates["康骨医疗/研发中心/注册部"][2:5] == [2, 2, 1]
        weights = {r[1]: r for r in rows if r[0] == "2026Q4" and r[1] in ("O1-KR2", "O1-KR5")}
        # O1-KR2 up to the exported week's end (12-13): 69 days at 40, 5 at 28; 28 at the end.
        assert weights["O1-KR2"][3:5] == [round((69 * 40 + 5 * 28) / 74, 2), 28]

        # Last week's figures are what they were: the goal links and the rate as of W49's end.
        assert await week_figures(db, "2026-W49") == w49

        # The brief of 王强 (who served O1-KR2): the approved change of that goal, and the quarter's rate.
        await bot.say("liuyang", "简报 @王强 2026Q4")
        files = [m for m in await bot.all_messages("liuyang") if m["kind"] == "file"
                 and m["file"]["name"] == "事实简报-王强-2026Q4.html"]
        r = await bot.client.get(files[-1]["file"]["url"])
        page = await r.text()
        assert "目标校准率（全公司）" in page and "25%（2/8），事件→批准中位 1 天" in page
        assert "权重：40 → 28" in page and "2026-12-08" in page and "陈杰" in page
        assert "O1-KR1" not in page  # a goal he did not serve


async def test_bad_input_changes_nothing_and_a_hand_count_matches_the_export(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-08 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        before = await snapshot(db)
        # 吴昊 manages 质量部 (O2-KR1). Unknown goal, a cause off the list, no cause, a wrong old weight.
        for text, answer in (
                ("调整 O9-KR1 权重 20% 原因:政策", "没有找到目标 O9-KR1，回复「目标」查看本季度的目标"),
                ("调整 O2-KR1 权重 65% 原因:天气 下雨", "原因「天气」不在 市场 / 技术 / 政策 / 其他 之中"),
                ("调整 O2-KR1 权重 65%", "请写明原因（市场 / 技术 / 政策 / 其他），例如：原因:政策 集采政策突变"),
                ("调整 O2-KR1 权重 50%→65% 原因:技术", "O2-KR1 当前权重是 60%，不是 50%；请按当前值填写"),
                ("调整 O2-KR1 权重 六十五 原因:技术", "权重「六十五」看不懂：请写 40%→28%、28% 或 -30%"),
                ("调整 O2-KR1 颜色 红 原因:技术", "要调整什么？可以写 权重、标题、截止 或 上级，例如：调整 O2-KR1 权重 40%→28% 原因:政策"),
                ("调整 O2-KR1 权重 65% 原因:技术 事件:12-20", "事件日期 2026-12-20 还没到；请写已经发生的日期")):
            await bot.say("wuhao", text)
            assert await said(bot, "wuhao") == [answer], text
        # A manager of another department may not touch it.
        await bot.say("huangyan", "调整 O2-KR1 权重 65% 原因:技术")
        assert await said(bot, "huangyan") == ["只有目标所在部门的负责人、HR 或管理员可以调整 O2-KR1"]
        assert await snapshot(db) == before

        # Siblings over 100 %: warned and asked; 否 drops it, 是 (full-width, with a typo-free emoji) submits.
        await bot.say("wuhao", "调整 Ｏ２－ＫＲ１ 权重 65% 原因:技术 新检测工艺 事件:12-07")
        assert await said(bot, "wuhao") == [
            "提醒：O2 下各目标的权重合计将为 105%，超过 100%。仍要提交吗？回复「是」提交，「否」放弃"]
        await bot.say("wuhao", "什么意思")
        assert await said(bot, "wuhao") == ["回复「是」提交，「否」放弃"]
        await bot.say("wuhao", "否")
        assert await said(bot, "wuhao") == ["好的，没有提交"]
        assert await snapshot(db) == before
        await bot.say("wuhao", "调整 O2-KR1 权重 65% 原因:技术 新检测工艺 事件:12-07")
        await bot.say("wuhao", "是")
        assert (await said(bot, "wuhao"))[-1] == "已提交：O2-KR1 权重 60% → 65%，等待 陈杰 审批"

        # 客服部's 彭丽 proposes to cancel O3-KR2; 客服部 also moves O3-KR1's due date for 其他.
        await bot.say("pengli", "取消 O3-KR2 原因:市场 退货流程外包")
        assert await said(bot, "pengli") == ["已提交：取消 O3-KR2「退货问题闭环周期≤5天」，等待 陈杰 审批"]
        cancel_card = await bot.last_card("chenjie", "目标调整待审批：O3-KR2")
        await bot.say("pengli", "调整 O3-KR1 截止 12-20 原因:其它 人手调整")
        assert await said(bot, "pengli") == ["已提交：O3-KR1 截止 （无） → 2026-12-20，等待 陈杰 审批"]

        clock.set(at("2026-12-09 09:00"))
        await bot.new("chenjie")
        # The approver greets first: not an answer, nothing decided.
        await bot.say("chenjie", "早上好")
        assert (await said(bot, "chenjie"))[0].startswith("待审批：O3-KR1 截止")
        await bot.say("chenjie", "同意")  # the newest: O3-KR1's due date
        await bot.press("chenjie", await bot.last_card("chenjie", "目标调整待审批：O2-KR1"), "同意")
        # 驳回 pressed: the reason is asked, then typed.
        await bot.press("chenjie", cancel_card, "驳回")
        assert (await said(bot, "chenjie"))[-1] == "请回复驳回的原因（一句话）"
        await bot.say("chenjie", "外包合同还没签")
        assert (await bot.last_card("chenjie", "目标调整待审批：O3-KR2"))["result"] == "已驳回：外包合同还没签"
        assert "陈杰 驳回了你的目标调整：取消 O3-KR2「退货问题闭环周期≤5天」。原因：外包合同还没签" in await said(bot, "pengli")
        # A second press of the decided card changes nothing.
        before = await snapshot(db)
        await bot.press("chenjie", cancel_card, "同意")
        assert await snapshot(db) == before
        g = await goals(db)
        assert (g["O2-KR1"].weight, g["O3-KR2"].status, g["O3-KR1"].due) == (65.0, GoalStatus.ACTIVE, date(2026, 12, 20))

        # Hand count for 2026Q4: key tasks = the 7 level-2 goals (O3-KR2 stays, its cancel was rejected);
        # adjusted = O2-KR1 only (技术; O3-KR1's cause is 其他): 1/7 = 14.3 %, under the 15 % line; lead 2 days.
        out = tmp_path / "w50.xlsx"
        await export_weekly(db, "demo", ["2026-W50"], out, now=at("2026-12-11 18:00"))
        rows = sheet_rows(load_workbook(out), "目标校准")
        rate_at = next(i for i, r in enumerate(rows) if r[:2] == ["季度", "部门"])
        company = next(r for r in rows[rate_at + 1:] if r[1] == "全公司")
        assert company[2:4] == [7, 1] and abs(company[4] - 1 / 7) < 1e-9 and company[5:8] == ["未达到", "未达到", 2]
        quality = next(r for r in rows[rate_at + 1:] if r[1] == "康骨医疗/质量部")
        assert quality[2:5] == [1, 1, 1]


async def test_goals_lock_after_the_date_except_for_hr(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-21 10:00"))
    async with console_bot(db, clock, tmp_path, goals={"goal_lock_after": {"2026Q4": "2026-12-20"}}) as bot:
        await bot.say("liuyang", "调整 O1-KR2 权重 35% 原因:政策")
        assert await said(bot, "liuyang") == ["2026Q4 的目标已于 2026-12-20 锁定，只有 HR 可以调整"]
        assert await changes(db) == []
        await bot.say("zhoumin", "调整 O1-KR2 权重 35% 原因:政策")
        assert await said(bot, "zhoumin") == ["已提交：O1-KR2 权重 40% → 35%，等待 陈杰 审批"]


async def test_the_console_charts_the_rate_per_quarter(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-11 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        r = await bot.client.get("/console/api/pulse", params={"tenant": "demo", "userid": "zhoumin", "week": "2026-W50"})
        assert r.status == 200
        url = (await r.json())["calibration_chart"]
        png = await bot.client.get(url)
        assert png.status == 200 and png.content_type == "image/png"
        assert (await png.read()).startswith(b"\x89PNG")
        # An employee sees no company figures, and no chart.
        own = await bot.client.get(url.replace("userid=zhoumin", "userid=wangqiang"))
        assert own.status == 403


@pytest.mark.parametrize("started", ["2026-12-07 10:00", "2027-02-10 10:00"])
async def test_the_demo_company_rate_by_hand_matches_the_export(tmp_path: Path, started: str) -> None:
    """`dongxian demo`: 10 goals, 7 of level 2, plus O1-KR5 = 8 key tasks; O1-KR2 (政策) and O1-KR5 (政策)
    are adjusted, O1-KR1's rename is not: 2/8 = 25 %, one day from the event to approval — in whichever
    quarter the demo is started (its goals move to that quarter)."""
    from bot.demo import demo_config, seed_demo

    config = demo_config(str(tmp_path))
    db = Database(config.database.url)
    now = at(started)
    try:
        await seed_demo(db, config, now=now)
        async with db.session() as s:
            goals = list((await s.execute(select(Goal))).scalars())
        assert {g.period for g in goals} == {quarter_of(now.astimezone(SHANGHAI).date())}
        key_tasks = sorted(g.code for g in goals if g.level in (2, 3))
        assert len(key_tasks) == 8 and "O1-KR5" in key_tasks
        by_hand = 2 / len(key_tasks)
        week = iso_week(now.astimezone(SHANGHAI).date())
        out = tmp_path / "demo.xlsx"
        await export_weekly(db, "demo", [week], out, now=now)
        rows = sheet_rows(load_workbook(out), "目标校准")
        rate_at = next(i for i, r in enumerate(rows) if r[:2] == ["季度", "部门"])
        company = next(r for r in rows[rate_at + 1:] if r[1] == "全公司")
        assert company[2:5] == [8, 2, by_hand] and company[7] == 1
    finally:
        await db.close()


async def test_the_migration_keeps_imported_changes_and_drops_the_logged_creation(tmp_path: Path) -> None:
    """Rows the import wrote before approvals existed become approved changes; a goal's first 「new」
    row (its creation) is no adjustment and goes; every goal gets one version since its setup."""
    from alembic import command
    from sqlalchemy import text

    from store.migrate import _alembic_config

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    cfg = _alembic_config(db.url)

    def to(revision: str) -> Any:
        def go(conn: Any) -> None:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return go
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(to("0004"))
            await conn.execute(text("INSERT INTO tenant (key, name, timezone, locale, platform) "
                                    "VALUES ('demo', 'D', 'Asia/Shanghai', 'zh', 'console')"))
            await conn.execute(text("INSERT INTO goal (tenant, code, title, parent_code, department, weight, period, "
                                    "level, status) VALUES ('demo', 'O1-KR2', 'NMPA', 'O1', 'a/b', 30, '2026Q4', 2, 'active')"))
            for i, (name, old, new, at_) in enumerate((("new", "", "NMPA", "2026-10-01 01:00:00"),
                                                       ("weight", "40", "30", "2026-11-30 17:00:00"))):
                await conn.execute(text(
                    "INSERT INTO goaladjustment (tenant, goal_code, by_userid, at, field_name, old_value, new_value, "
                    f"reason, note) VALUES ('demo', 'O1-KR2', 'hr1', '{at_}', '{name}', '{old}', '{new}', '政策', '')"))
            await conn.run_sync(to("head"))
        async with db.session() as s:
            rows = list((await s.execute(select(GoalAdjustment))).scalars())
            vs = list((await s.execute(select(GoalVersion))).scalars())
        assert [(r.field_name, r.status, r.decided_by, r.effective_from) for r in rows] == [
            ("weight", "approved", "hr1", date(2026, 12, 1))]  # 17:00 UTC is the next day in Shanghai
        assert [(v.goal_code, v.valid_from, v.valid_to, v.weight) for v in vs] == [("O1-KR2", None, None, 30.0)]
    finally:
        await db.close()
