"""The fact brief: a quarter of one person's records, counted by hand and by the bot."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.audit import SEND_BRIEF, VIEW_BRIEF
from store.statuses import TaskStatus
from store.brief import parse_period, period_days, period_weeks
from store.db import Database
from store.models import AuditLog, Escalation, GoalAdjustment, Leave, Project, Task, WeeklyAction
from tests.harness import ConsoleBot, at, console_bot

UTC = timezone.utc
EVENTS = [
    ("2026-10-13 21:00", "反馈 @王强 #主动补位 客户级 周二夜里帮客户排查退货问题，当晚给出临时方案"),
    ("2026-11-05 10:00", "反馈 @王强 #主动补位 团队级 孙丽请假时接手两份补正资料，按期提交"),
    ("2026-12-08 16:00", "反馈 @王强 #响应不及时 客户级 客户周一来电问注册进度，周三才回复"),
]
CEO_EVENT = ("2026-12-15 11:00", "反馈 @王强 #方案创新 流程级 提出注册检验与临床评价并行的排期，缩短两周")
REVIEW = {"review_periods": [{"period": "2026Q4", "opens": "2027-01-04"}]}


def test_quarters_and_their_weeks() -> None:
    assert parse_period("2026q4") == parse_period(" 2026 Q4 ") == parse_period("2026-Q4") == "2026Q4"
    assert parse_period("2026Q5") is None and parse_period("Q4") is None
    assert period_days("2026Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    assert period_days("2027Q1") == (date(2027, 1, 1), date(2027, 3, 31))
    weeks = period_weeks("2026Q4")
    # A week belongs to the quarter its Thursday is in: 2026-10-01 and 2026-12-31 are Thursdays.
    assert weeks[0] == "2026-W40" and weeks[-1] == "2026-W53" and len(weeks) == 14
    assert period_weeks("2026Q4", until=date(2026, 10, 12)) == ["2026-W40", "2026-W41", "2026-W42"]


def utc(s: str) -> datetime:
    return at(s).astimezone(UTC)


# Weeks of 2026Q4 for 王强: (week, goal, thing, status) — None = no action that week.
HISTORY: dict[str, tuple[str | None, str, str] | None] = {
    "2026-W40": ("O1-KR2", "完成临床评价报告初稿", "confirmed"),
    "2026-W41": ("O1-KR2", "提交注册检验申请", "confirmed"),
    "2026-W42": ("O1-KR2", "整理检验报告", "confirmed"),
    "2026-W43": ("O1-KR2", "回复发补意见第一轮", "done"),
    "2026-W44": ("O1", "参加新品上市评审会", "confirmed"),
    "2026-W45": None,  # on leave
    "2026-W46": (None, "整理注册资料目录", "not_done"),
    "2026-W47": None,  # missed
    "2026-W48": ("O1-KR2", "准备专家审评答辩", "open"),
    "2026-W49": ("O1", "完成2份临床评价报告初稿", "confirmed"),
    "2026-W50": (None, "培训新同事注册流程", "done"),
    "2026-W51": (None, "归档全年注册文件", "open"),
    "2026-W52": None,  # on leave
    "2026-W53": None,  # missed
}


async def seed_quarter(db: Database) -> None:
    """A quarter of 王强's records written straight to the store, with a few that must not count."""
    async with db.transaction() as s:
        for week, row in HISTORY.items():
            if row is None:
                continue
            goal, thing, status = row
            s.add(WeeklyAction(tenant="demo", userid="wangqiang", week=week, goal_code=goal, thing=thing,
                               witness_userid="li_na", status=status,
                               witness_state="accepted" if status == "confirmed" else "invited",
                               created_at=utc("2026-10-05 10:00")))
        s.add(WeeklyAction(tenant="demo", userid="wangqiang", week="2026-W39", goal_code="O1-KR2", thing="上季度的动作",
                           witness_userid="li_na", status="confirmed", created_at=utc("2026-09-22 10:00")))
        s.add(WeeklyAction(tenant="demo", userid="li_na", week="2026-W45", goal_code="O1-KR2", thing="别人的动作",
                           witness_userid="wangqiang", status="confirmed", created_at=utc("2026-11-02 10:00")))
        s.add(Leave(tenant="demo", userid="wangqiang", start_day=date(2026, 11, 2), end_day=date(2026, 11, 6),
                    reason="年假", created_at=utc("2026-10-30 10:00")))
        s.add(Leave(tenant="demo", userid="wangqiang", start_day=date(2026, 12, 21), end_day=date(2026, 12, 25),
                    reason="出差", created_at=utc("2026-12-18 10:00")))
        for when, code, field, old, new, reason in (
                ("2026-11-10 15:00", "O1-KR2", "weight", "40", "50", "政策"),
                ("2026-12-01 09:00", "O1", "title", "新产品上市成功率", "新产品按期上市率", "市场"),
                ("2026-11-11 09:00", "O2-KR1", "weight", "60", "70", "技术"),  # a goal he did not serve
                ("2027-01-02 09:00", "O1-KR2", "weight", "50", "45", "其他")):  # after the quarter
            s.add(GoalAdjustment(tenant="demo", goal_code=code, by_userid="zhoumin", at=utc(when), field_name=field,
                                 old_value=old, new_value=new, reason=reason))
        project = Project(tenant="demo", code="P1", name="新品上市", pmo_userid="guoqing", created_at=utc("2026-10-01 09:00"))
        s.add(project)
        await s.flush()
        tasks = {}
        for code, due, done_at, status in (
                ("T1", "2026-11-15 18:00", "2026-11-14 17:00", TaskStatus.DONE),  # on time
                ("T2", "2026-12-01 18:00", "2026-12-03 10:00", TaskStatus.DONE),  # late
                ("T3", "2026-12-20 18:00", None, TaskStatus.DOING),  # overdue, escalated twice in one episode
                ("T4", "2027-01-20 18:00", None, TaskStatus.DOING)):  # due next quarter
            t = Task(tenant="demo", project_id=project.id or 0, code=code, title=f"任务{code}", owner_userid="wangqiang",
                     due_at=utc(due), status=status, created_at=utc("2026-10-10 09:00"),
                     status_updated_at=utc("2026-10-10 09:00"), completed_at=utc(done_at) if done_at else None)
            s.add(t)
            tasks[code] = t
        await s.flush()
        for level, when in ((1, "2026-12-21 09:00"), (2, "2026-12-21 13:00")):
            s.add(Escalation(tenant="demo", task_id=tasks["T3"].id or 0, episode=1, level=level,
                             to_userids="liuyang", created_at=utc(when)))


async def record_feedback(bot: ConsoleBot) -> None:
    for when, text in EVENTS:
        bot.clock.set(at(when))
        await bot.say("liuyang", text)
    bot.clock.set(at(CEO_EVENT[0]))
    await bot.say("chenjie", CEO_EVENT[1])  # the manager above counts as well
    bot.clock.set(at("2026-09-20 10:00"))
    await bot.say("liuyang", "反馈 @王强 #知识沉淀 团队级 上季度把注册资料目录整理成共享模板")  # not in 2026Q4


async def document(bot: ConsoleBot, userid: str, name: str) -> str:
    files = [m for m in await bot.all_messages(userid) if m["kind"] == "file" and m["file"]["name"] == name]
    assert files, f"{userid} got no {name}"
    r = await bot.client.get(files[-1]["file"]["url"])
    assert r.status == 200
    return await r.text()


def figure_records(page: str, key: str) -> list[str]:
    row = re.search(rf'<tr id="fig-{key}">(.*?)</tr>', page, re.S)
    assert row, key
    return re.findall(r'href="#(\w+)"', row.group(1))


def fields(card: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in card["fields"]}


async def test_brief_matches_a_hand_count_and_goes_to_managers_once(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FrozenClock(at("2026-10-13 21:00"))
    async with console_bot(db, clock, tmp_path, **REVIEW) as bot:
        await seed_quarter(db)
        await record_feedback(bot)

        # Nothing before the review opens; on its morning each manager gets the briefs of their line.
        assert await bot.run_job("review_briefs", at("2026-12-31 09:00")) == 0
        clock.set(at("2027-01-04 09:00"))
        sent = await bot.run_job("review_briefs", at("2027-01-04 09:00"))
        assert sent > 0
        assert await bot.run_job("review_briefs", at("2027-01-04 09:05")) == 0  # once
        assert await bot.run_job("review_briefs", at("2027-01-05 09:00")) == 0  # and not again the next day

        cards = [m["card"] for m in await bot.all_messages("liuyang") if m["kind"] == "card"]
        assert sorted(c["title"] for c in cards) == sorted(
            f"事实简报 · {n} · 2026Q4" for n in ("王强", "李娜", "赵磊", "孙丽"))
        card = next(c for c in cards if "王强" in c["title"])
        # Hand count (HISTORY): 14 weeks, 2 on leave → 12 expected; 10 actions;
        # done = confirmed 5 + done 2 = 7; linked 7 (O1-KR2 ×5, O1 ×2); feedback 4 in the quarter
        # (3 认可, 1 改进); tasks due in the quarter T1–T3, on time T1; one escalation episode.
        assert fields(card) == {"填写": "10/12 周", "完成": "7/10", "见证确认": "5/7", "目标关联": "7/10",
                                "反馈": "4 条（认可 3）", "按时交付": "1/3", "阻塞升级": "1"}
        assert "O1-KR2（5）、O1（2）" in card["body"]
        assert [b["text"] for b in card["buttons"]] == ["反馈"]
        # Each brief goes to the person's own manager: 陈杰 gets his nine direct reports, not all 39.
        ceo = [m["card"]["title"] for m in await bot.all_messages("chenjie") if m["kind"] == "card"]
        assert "事实简报 · 刘洋 · 2026Q4" in ceo and "事实简报 · 王强 · 2026Q4" not in ceo and len(ceo) == 9
        assert not any(m["kind"] == "card" for m in await bot.all_messages("wangqiang"))

        page = await document(bot, "liuyang", "事实简报-王强-2026Q4.html")
        for _when, text in EVENTS + [CEO_EVENT]:
            event = text.split(maxsplit=4)[-1]
            assert f'<span class="event">{event}</span>' in page  # verbatim
        assert "上季度把注册资料目录整理成共享模板" not in page
        # Each figure lists exactly the records it counts.
        async with db.session() as s:
            acts = {a.week: a.id for a in (await s.execute(select(WeeklyAction).where(
                WeeklyAction.userid == "wangqiang"))).scalars()}
            served = [g.id for g in (await s.execute(select(GoalAdjustment).where(
                GoalAdjustment.by_userid == "zhoumin", GoalAdjustment.goal_code.in_(["O1", "O1-KR2"]))
                .order_by(GoalAdjustment.at))).scalars()]
        def anchors(*weeks: str) -> list[str]:
            return [f"a{acts[w]}" for w in weeks]
        assert figure_records(page, "done") == anchors("2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44",
                                                       "2026-W49", "2026-W50")
        assert figure_records(page, "confirmed") == anchors("2026-W40", "2026-W41", "2026-W42", "2026-W44", "2026-W49")
        assert figure_records(page, "linked") == anchors("2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44",
                                                         "2026-W48", "2026-W49")
        assert len(figure_records(page, "filled")) == 10 and f'id="a{acts["2026-W39"]}"' not in page
        assert figure_records(page, "adjustments") == [f"g{served[0]}", f"g{served[1]}"]  # not 2027's
        assert "权重：40 → 50" in page and "名称：新产品上市成功率 → 新产品按期上市率" in page
        assert len(figure_records(page, "feedback")) == 4 and len(figure_records(page, "skipped")) == 2
        assert "未填写的周：2026-W47、2026-W53" in page
        for anchor in figure_records(page, "done") + figure_records(page, "feedback"):
            assert f'id="{anchor}"' in page  # every link lands on its record

        # 反馈 on the brief opens the feedback flow for that person.
        await bot.press("liuyang", card, "反馈")
        last = [m for m in await bot.all_messages("liuyang") if m["kind"] == "card"][-1]["card"]
        assert last["title"] == "微反馈 · 哪种行为？"

        # On request, with role checks: an employee cannot read a colleague's brief.
        for u in ("liuyang", "li_na", "zhoumin", "wangqiang"):
            await bot.new(u)
        await bot.say("li_na", "简报 @王强 2026Q4")
        assert [m["text"] for m in await bot.new("li_na")] == [
            "你无权查看 王强 的简报：只能查看自己和汇报线内同事的简报。"]
        await bot.say("zhoumin", "简报 @王强 2026Q4")  # HR
        got = await bot.new("zhoumin")
        assert [m["kind"] for m in got] == ["card", "file"]
        assert fields(got[0]["card"]) == fields(card)
        await bot.say("wangqiang", "简报")  # his own; the review period opened this week
        own = await bot.new("wangqiang")
        assert own[0]["card"]["title"] == "事实简报 · 王强 · 2026Q4" and own[0]["card"]["buttons"] == []
        # 刘洋 left the feedback flow open: the command puts it aside first, and says so.
        await bot.say("liuyang", "简报 @王强 2026Q5")
        assert [m["text"] for m in await bot.new("liuyang")] == [
            "已暂停填写反馈，回复「继续」接着填。", "期间“2026Q5”无效，请写成 2026Q4 这样的形式。"]

        async with db.session() as s:
            log = [(a.actor_userid, a.action, a.subject) for a in (await s.execute(
                select(AuditLog).order_by(AuditLog.id))).scalars()]
        assert ("liuyang", SEND_BRIEF, "wangqiang") in log and ("zhoumin", VIEW_BRIEF, "wangqiang") in log
        assert not any(actor in ("li_na", "wangqiang") for actor, _a, _s in log)
        assert list((tmp_path / "briefs" / "demo").glob("2026Q4-wangqiang-*.html"))


def test_review_briefs_wait_for_the_opening_working_morning() -> None:
    from bot.core.config import parse_config
    from schedules.briefs import review_briefs_at, reviewer
    from bot.core.calendar import WorkCalendar
    from schedules.jobs import all_jobs

    # Opens on a Saturday: the briefs go out on the next working day at the start of working hours,
    # and are still caught up for a few days after, never before.
    tenant = parse_config({"tenants": [{"key": "demo", "name": "康骨", "review_periods": [
        {"period": "2026Q4", "opens": "2027-01-09"}]}]}).tenants[0]
    cal = WorkCalendar(tenant)
    assert all_jobs()["review_briefs"].at is review_briefs_at
    assert review_briefs_at(tenant, cal, at("2027-01-08 09:00")) is None
    assert review_briefs_at(tenant, cal, at("2027-01-09 09:00")) is None
    assert review_briefs_at(tenant, cal, at("2027-01-11 09:00")) == tenant.work_hours_start
    assert review_briefs_at(tenant, cal, at("2027-01-13 09:00")) == tenant.work_hours_start
    assert review_briefs_at(tenant, cal, at("2027-01-25 09:00")) is None

    class P:
        def __init__(self, manager: str | None, active: bool = True) -> None:
            self.manager_userid, self.active = manager, active

    people = {"ceo": P(None), "vacant": P("ceo", active=False), "x": P("vacant"), "loop1": P("loop2", False),
              "loop2": P("loop1", False), "y": P("loop1")}
    assert reviewer(people, "x") == "ceo"  # a vacant post is skipped
    assert reviewer(people, "ceo") is None and reviewer(people, "y") is None
