"""The blocking rule: past due and silent for 2 hours → the manager and the PMO; still silent → one level up."""
from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from schedules.tasks_scan import scan
from store.db import Database
from store.statuses import TaskStatus
from store.models import Escalation, IssuedCard, OutboxMessage, Project, ScheduledSend, Task, TaskUpdate
from store.task_figures import task_figures, task_figures_for_weeks
from store.tasks import episode_of, import_tasks
from tests.harness import at, console_bot, demo_test_config, seed_demo_company

HEADER = "project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"


def csv(tmp_path: Path, *rows: str) -> Path:
    p = tmp_path / "tasks.csv"
    p.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


async def escalations(db: Database) -> list[Escalation]:
    async with db.session() as s:
        return list((await s.execute(select(Escalation).order_by(Escalation.id))).scalars())


async def count(db: Database, model: type, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


# The escalation tests count the cards the scan sends: the owner's reminders before and at
# the due time (tests/test_task_reminders.py) are switched off in them.
NO_REMINDERS = {"tasks": {"remind_before_working_hours": 0, "remind_at_due": False}}


async def test_stale_task_escalates_once_per_episode_and_climbs(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path, **NO_REMINDERS) as bot:
        # 罗毅 (采购部, manager 梁波, whose manager is 陈杰) owns T12 of 郭庆's project, due Tuesday 12:00.
        report = await import_tasks(db, "demo", csv(
            tmp_path, "发布会,新品发布会,guoqing,T12,直播系统压测,luoyi,,2026-12-01 12:00,压测报告"), now=clock.now())
        assert report.ok, report.errors
        assert await bot.run_job("overdue_scan", at("2026-11-30 10:00")) == 1  # the assignment card
        assert (await bot.last_card("luoyi"))["title"] == "新任务：T12 直播系统压测"
        clock.set(at("2026-12-01 09:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 09:00")) == 1  # the due-day card
        await bot.new("luoyi")

        # 13:59: past due for 1 h 59 min: nothing.
        assert await bot.run_job("overdue_scan", at("2026-12-01 13:59")) == 0
        assert await bot.new("liangbo") == [] and await bot.new("guoqing") == []

        # 14:00: the manager and the PMO each get one escalation card.
        clock.set(at("2026-12-01 14:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 14:00")) == 2
        for boss in ("liangbo", "guoqing"):
            got = await bot.new(boss)
            assert [m["card"]["title"] for m in got] == ["阻塞预警：T12 直播系统压测"]
            card = got[0]["card"]
            # The real silence: no update since the import on Monday 10:00 (it used to say "2 小时").
            assert card["body"] == "罗毅 负责的任务已过截止时间（12-01 12:00），已 1 天 4 小时 没有更新进度。"
            assert [b["text"] for b in card["buttons"]] == ["催办", "调整截止", "查看"]
        assert await bot.new("luoyi") == [] and await bot.new("chenjie") == []

        # A second scan sends nothing more.
        assert await bot.run_job("overdue_scan", at("2026-12-01 14:00:30")) == 0
        assert await bot.run_job("overdue_scan", at("2026-12-01 15:30")) == 0
        assert await bot.new("liangbo") == [] and await bot.new("guoqing") == []
        [first] = await escalations(db)
        assert (first.level, first.to_userids, first.resolved_at) == (1, "liangbo;guoqing", None)

        # 催办 reaches the owner; a second press of the same button does not nudge again.
        clock.set(at("2026-12-01 14:05"))
        card = await bot.last_card("liangbo", "阻塞预警")
        await bot.press("liangbo", card, "催办")
        assert await bot.texts("liangbo") == ["已催办 罗毅。"]
        nudge = await bot.new("luoyi")
        assert [m["card"]["title"] for m in nudge] == ["催办：T12 直播系统压测"]
        assert nudge[0]["card"]["body"] == "梁波 提醒你：任务已过截止时间（12-01 12:00），请尽快更新进度。"
        await bot.press("liangbo", card, "催办")
        assert await bot.new("luoyi") == []
        assert await count(db, TaskUpdate, TaskUpdate.kind == "nudge") == 1

        # 查看 shows the task and its history to the person who pressed it.
        await bot.press("guoqing", await bot.last_card("guoqing", "阻塞预警"), "查看")
        view = await bot.last_card("guoqing", "任务详情")
        assert "阻塞预警 → 梁波、郭庆" in view["body"] and "梁波 催办" in view["body"]

        # The owner updates the status: the episode closes and the cards say so.
        clock.set(at("2026-12-01 14:30"))
        await bot.say("luoyi", "进度 T12 进行中")
        [first] = await escalations(db)
        assert aware(first.resolved_at) == at("2026-12-01 14:30")
        assert (await bot.last_card("liangbo", "阻塞预警"))["result"] == "罗毅 已更新进度：进行中"
        await bot.press("liangbo", card, "调整截止")
        assert (await bot.texts("liangbo"))[-1] == "这张卡片已经处理过了。"

        # Two hours later without another update: a new stale episode escalates again.
        await bot.new("liangbo"), await bot.new("guoqing")
        assert await bot.run_job("overdue_scan", at("2026-12-01 16:29")) == 0
        assert await bot.run_job("overdue_scan", at("2026-12-01 16:30")) == 2
        assert [m["card"]["title"] for m in await bot.new("liangbo")] == ["阻塞预警：T12 直播系统压测"]
        assert [m["card"]["title"] for m in await bot.new("guoqing")] == ["阻塞预警：T12 直播系统压测"]
        second = (await escalations(db))[1]
        assert second.level == 1 and second.episode != first.episode and second.resolved_at is None

        # Still stale 4 hours later (20:30, after hours): the next level up is told at the next working moment.
        assert await bot.run_job("overdue_scan", at("2026-12-01 20:30")) == 0
        assert await bot.run_job("overdue_scan", at("2026-12-02 08:59")) == 0
        clock.set(at("2026-12-02 09:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-02 09:00")) == 1
        up = await bot.new("chenjie")
        assert [m["card"]["title"] for m in up] == ["阻塞预警（升级）：T12 直播系统压测"]
        assert "已告知 梁波、郭庆，仍未更新进度（已 18 小时 没有更新）" in up[0]["card"]["body"]
        assert await bot.new("liangbo") == [] and await bot.new("guoqing") == []
        # 陈杰 has nobody above him: no further level.
        assert await bot.run_job("overdue_scan", at("2026-12-02 13:00")) == 0
        assert [(e.level, e.to_userids) for e in await escalations(db)] == [(1, "liangbo;guoqing"), (1, "liangbo;guoqing"), (2, "chenjie")]

        # 调整截止: asks for the new due time and a reason, logs it, ends the episode, tells the owner.
        clock.set(at("2026-12-02 09:10"))
        await bot.press("guoqing", await bot.last_card("guoqing", "阻塞预警"), "调整截止")
        assert (await bot.texts("guoqing"))[-1] == "请回复 T12 新的截止时间和调整原因（当前 12-01 12:00），例如：12-03 18:00 等供应商到货"
        await bot.say("guoqing", "12-03 18:00")
        assert (await bot.texts("guoqing"))[-1] == "请回复调整原因，例如：等供应商到货"
        await bot.say("guoqing", "等供应商到货")
        assert (await bot.texts("guoqing"))[-1] == "已将 T12 的截止时间从 12-01 12:00 调整为 12-03 18:00（等供应商到货），已通知负责人。"
        assert "郭庆 将任务 T12 直播系统压测 的截止时间从 12-01 12:00 调整为 12-03 18:00，原因：等供应商到货" in await bot.texts("luoyi")
        assert all(aware(e.resolved_at) for e in (await escalations(db))[1:])
        assert (await bot.last_card("chenjie", "阻塞预警"))["result"] == "郭庆 已将截止时间调整为 12-03 18:00"
        async with db.session() as s:
            due = (await s.execute(select(TaskUpdate).where(TaskUpdate.kind == "due"))).scalar_one()
        assert (due.old_value, due.new_value, due.note, due.by_userid) == (
            "2026-12-01 12:00", "2026-12-03 18:00", "等供应商到货", "guoqing")

        # Delivered before the new due time, but the task was escalated as overdue first: it is
        # judged against the due time in force then (12-01 12:00), so it is late. (Changed on
        # purpose: moving the due date after an escalation used to turn it into on time.)
        # Resolution times by hand: 14:00→14:30 and
        # 16:30→09:10 the next day, 30 and 1000 minutes, median 515.
        clock.set(at("2026-12-03 17:00"))
        await bot.say("luoyi", "进度 T12 完成 压测报告 https://wiki.example/t12")
        figures = await task_figures_for_weeks(db, "demo", ["2026-W49"], now=at("2026-12-04 12:00"))
        t = figures.total
        assert (t.due, t.on_time, t.late_done, t.on_time_rate, t.escalations, t.resolved, t.open_escalations) == (
            1, 0, 1, 0.0, 2, 2, 0)
        assert sorted(t.resolution_minutes) == [30.0, 1000.0] and t.median_resolution_minutes == 515.0
        assert [d.key for d in figures.departments] == ["康骨医疗/采购部"]


async def test_an_escalation_due_at_night_waits_for_the_next_working_morning(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-04 10:00"))  # a Friday
    async with console_bot(db, clock, tmp_path) as bot:
        await import_tasks(db, "demo", csv(
            tmp_path, "发布会,新品发布会,guoqing,T20,现场网络保障,tangkai,,2026-12-04 20:00,网络测试记录"), now=clock.now())
        assert await bot.run_job("overdue_scan", at("2026-12-04 10:00")) == 1
        # Stale from 22:00 on Friday; the weekend is not working time.
        for when in ("2026-12-04 22:00", "2026-12-05 10:00", "2026-12-06 15:00", "2026-12-07 08:59"):
            assert await bot.run_job("overdue_scan", at(when)) == 0, when
        # The ticker runs the scan on every beat of the working day; Monday 09:00 it goes out.
        await bot.runtime.tick(at("2026-12-07 08:59:40"))
        assert await escalations(db) == []
        await bot.runtime.tick(at("2026-12-07 09:00:10"))
        await bot.runtime.settle()
        [esc] = await escalations(db)
        assert (esc.to_userids, aware(esc.created_at)) == ("hanmei;guoqing", at("2026-12-07 09:00:10"))
        assert (await bot.last_card("hanmei", "阻塞预警"))["title"] == "阻塞预警：T20 现场网络保障"
        await bot.runtime.tick(at("2026-12-07 09:00:40"))
        await bot.runtime.tick(at("2026-12-07 11:17:25"))
        assert len(await escalations(db)) == 1
        assert len([m for m in await bot.all_messages("hanmei") if m["kind"] == "card"]) == 1


async def test_left_overs_of_an_ended_episode_are_closed_by_the_scan(db: Database, tmp_path: Path) -> None:
    """A status update racing a scan can leave an escalation of the old episode open, and a due time
    moved by import leaves its cards open; the next scan closes both."""
    config = demo_test_config(db.url, tmp_path)
    await seed_demo_company(db, config)
    await import_tasks(db, "demo", csv(tmp_path, "发布会,,guoqing,T30,物料,luoyi,,2026-12-01 12:00,"),
                       now=at("2026-11-30 10:00"))
    async with db.transaction() as s:
        task = (await s.execute(select(Task))).scalar_one()
        old_episode = episode_of(task)
        task.status, task.status_updated_at = TaskStatus.DOING, at("2026-12-01 14:10").astimezone(timezone.utc)
        s.add(Escalation(tenant="demo", task_id=task.id, episode=old_episode, level=1, to_userids="liangbo;guoqing",
                         created_at=at("2026-12-01 14:00").astimezone(timezone.utc)))
        s.add(IssuedCard(id="c-old", tenant="demo", userid="liangbo", kind="task_escalation", ref_id=task.id,
                         data={"episode": old_episode, "level": 1}, card={"title": "阻塞预警：T30 物料", "buttons": []},
                         created_at=at("2026-12-01 14:00"), expires_at=at("2026-12-04 14:00")))
    await scan(db, config.tenant("demo"), at("2026-12-01 14:20"))
    [esc] = await escalations(db)
    assert aware(esc.resolved_at) == at("2026-12-01 14:10")
    async with db.session() as s:
        card = await s.get(IssuedCard, "c-old")
    assert card is not None and (card.state, card.card["result"]) == ("used", "预警已解除")


CONFIG = """
[database]
url = "{url}"
[[tenants]]
key = "demo"
name = "宁波康骨医疗器械有限公司"
"""


# Owners and their managers in the demo roster; 郭庆 is also the project's PMO.
MANAGERS = {"luoyi": "liangbo", "songjia": "liangbo", "weiwei": "liangbo", "tangkai": "hanmei", "caoyu": "hanmei",
            "dengchao": "hanmei", "shenbin": "hanmei", "xiaoyan": "pengli", "yuanhui": "pengli", "jiangnan": "pengli",
            "hulin": "guoqing", "linfang": "guoqing", "heping": "guoqing"}


async def test_two_processes_scanning_the_same_database_send_each_escalation_once(db: Database, tmp_path: Path) -> None:
    config = demo_test_config(db.url, tmp_path)
    await seed_demo_company(db, config)
    # Enough tasks that the two scans overlap in time.
    rows = [f"发布会,新品发布会,guoqing,T{i}{n},任务{i}{n},{owner},,2026-12-01 12:00,"
            for i, owner in enumerate(MANAGERS) for n in range(3)]
    report = await import_tasks(db, "demo", csv(tmp_path, *rows), now=at("2026-11-30 10:00"))
    assert report.ok, report.errors
    expected = {f"T{i}{n}": ";".join(dict.fromkeys([MANAGERS[owner], "guoqing"]))
                for i, owner in enumerate(MANAGERS) for n in range(3)}
    cfg = tmp_path / "dongxian.toml"
    cfg.write_text(CONFIG.format(url=db.url), encoding="utf-8")
    env = dict(os.environ, DONGXIAN_LOG_LEVEL="WARNING")

    async def one_process() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "jobs", "run", "overdue_scan", "--tenant", "demo",
            "--at", "2026-12-01T14:00:00+08:00", "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return int(out.decode().split(": ")[1].split()[0])

    sent = await asyncio.gather(one_process(), one_process())
    # One assignment card per task and one escalation card per recipient, whichever process sent them.
    cards = len(expected) + sum(len(v.split(";")) for v in expected.values())
    assert sum(sent) == cards, sent
    assert await count(db, OutboxMessage) == cards
    async with db.session() as s:
        told = dict((await s.execute(select(Task.code, Escalation.to_userids).join(
            Task, Task.id == Escalation.task_id).where(Escalation.level == 1))).all())
    assert told == expected
    assert await count(db, Escalation) == len(expected)
    assert await count(db, ScheduledSend, ScheduledSend.kind.like("task_assign:%")) == len(expected)


async def test_on_time_rate_and_resolution_time_match_a_hand_count(db: Database, tmp_path: Path) -> None:
    await seed_demo_company(db, demo_test_config(db.url, tmp_path))
    u = lambda s: at(s).astimezone(timezone.utc)  # noqa: E731
    async with db.transaction() as s:
        launch = Project(tenant="demo", code="发布会", name="新品发布会", pmo_userid="guoqing", created_at=u("2026-11-20 09:00"))
        training = Project(tenant="demo", code="培训", name="客服培训", pmo_userid="pengli", created_at=u("2026-11-20 09:00"))
        s.add_all([launch, training])
        await s.flush()
        ids: dict[str, int] = {}
        for code, project, owner, due, done in [
            ("A1", launch, "luoyi", "2026-12-01 12:00", "2026-12-01 11:00"),    # on time
            ("A2", launch, "luoyi", "2026-12-02 12:00", "2026-12-02 15:00"),    # late
            ("A3", launch, "tangkai", "2026-12-03 12:00", None),                # past due, open
            ("A4", launch, "tangkai", "2026-12-08 12:00", None),                # due next week: not counted
            ("A5", training, "xiaoyan", "2026-12-04 18:00", "2026-12-04 17:00"),  # on time
            ("A6", training, "xiaoyan", "2026-12-06 18:00", None),              # not yet due: not counted
            ("A7", training, "yuanhui", "2026-12-06 20:00", "2026-12-05 10:00"),  # delivered early: on time
            ("A8", launch, "songjia", "2026-11-27 12:00", "2026-12-01 10:00"),  # due last week: not counted
            ("A9", training, "yuanhui", "2026-12-01 09:00", "2026-12-02 10:00"),  # late
        ]:
            t = Task(tenant="demo", project_id=project.id, code=code, title=code, owner_userid=owner, due_at=u(due),
                     status=TaskStatus.DONE if done else TaskStatus.DOING, completed_at=u(done) if done else None,
                     created_at=u("2026-11-20 09:00"), status_updated_at=u(done or "2026-11-30 09:00"))
            s.add(t)
            await s.flush()
            ids[code] = t.id or 0
        for code, episode, level, created, resolved in [
            ("A2", 1, 1, "2026-12-02 14:00", "2026-12-02 15:00"),   # 60 min
            ("A3", 1, 1, "2026-12-03 14:00", "2026-12-03 14:30"),   # 30 min
            ("A3", 2, 1, "2026-12-03 16:30", None),                 # still open …
            ("A3", 2, 2, "2026-12-04 09:00", None),                 # … and climbed: one episode
            ("A8", 1, 1, "2026-11-27 14:00", "2026-12-01 10:00"),   # raised last week: not counted
            ("A9", 1, 1, "2026-12-01 11:00", "2026-12-02 10:00"),   # 1380 min …
            ("A9", 1, 2, "2026-12-01 15:00", "2026-12-02 10:00"),   # … its climb is the same episode
        ]:
            s.add(Escalation(tenant="demo", task_id=ids[code], episode=episode, level=level, to_userids="x",
                             created_at=u(created), resolved_at=u(resolved) if resolved else None))

    now = at("2026-12-05 12:00")
    figures = await task_figures_for_weeks(db, "demo", ["2026-W49"], now=now)
    by = {f.key: f for f in figures.projects + figures.departments + figures.people}

    def row(key: str) -> tuple:  # type: ignore[type-arg]
        f = figures.total if key == "total" else by[key]
        return (f.due, f.on_time, f.late_done, f.overdue_open, f.escalations, f.resolved, f.open_escalations,
                f.median_resolution_minutes)

    assert row("发布会") == (3, 1, 1, 1, 3, 2, 1, 45.0)
    assert row("培训") == (3, 2, 1, 0, 1, 1, 0, 1380.0)
    assert row("康骨医疗/采购部") == (2, 1, 1, 0, 1, 1, 0, 60.0)
    assert row("康骨医疗/IT部") == (1, 0, 0, 1, 2, 1, 1, 30.0)
    assert row("康骨医疗/客服部") == (3, 2, 1, 0, 1, 1, 0, 1380.0)
    assert row("luoyi") == (2, 1, 1, 0, 1, 1, 0, 60.0)
    assert row("yuanhui") == (2, 1, 1, 0, 1, 1, 0, 1380.0)
    assert row("xiaoyan") == (1, 1, 0, 0, 0, 0, 0, None)
    assert "songjia" not in by  # nothing of hers falls in the week
    assert row("total") == (6, 3, 2, 1, 4, 3, 1, 60.0)
    assert figures.total.on_time_rate == 0.5 and by["发布会"].on_time_rate == 1 / 3
    assert figures.rows()[-1] == ["合计", "全公司", "全公司", 6, 3, 2, 1, 0.5, 4, 3, 1, 60.0]

    # A manager's line only: 梁波's people.
    async with db.session() as s:
        line = await task_figures(s, "demo", start=figures.start, end=figures.end, now=now,
                                  people={"luoyi", "songjia", "weiwei"})
    assert (line.total.due, line.total.on_time, line.total.escalations) == (2, 1, 1)


async def test_task_figures_reach_the_friday_pulse(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        report = await import_tasks(db, "demo", csv(
            tmp_path,
            "发布会,新品发布会,guoqing,T12,直播系统压测,luoyi,,2026-12-01 12:00,压测报告",
            "发布会,新品发布会,guoqing,T13,物料下单,songjia,,2026-12-02 12:00,采购订单"), now=clock.now())
        assert report.ok, report.errors
        clock.set(at("2026-12-01 10:00"))
        await bot.say("luoyi", "进度 T12 完成 压测报告链接")  # on time
        clock.set(at("2026-12-02 14:30"))
        await bot.run_job("overdue_scan", at("2026-12-02 14:30"))  # T13 late and silent: escalated
        clock.set(at("2026-12-04 17:30"))
        await bot.run_job("pulse", at("2026-12-04 17:30"))
        # Hand count for 采购部 (梁波's line: 罗毅, 宋佳, 魏薇): 2 tasks due, 1 on time; 1 escalation, open.
        team = dict(tuple(f) for f in (await bot.last_card("liangbo", "团队脉搏"))["fields"])
        assert team["任务按时交付率"] == "50%（1/2）"
        assert team["升级"].startswith("1 次，未关闭 1")
        company = dict(tuple(f) for f in (await bot.last_card("zhoumin", "组织脉搏"))["fields"])
        assert company["任务按时交付率"] == "50%（1/2）"


async def test_the_weekly_export_carries_task_and_feedback_sheets(db: Database, tmp_path: Path) -> None:
    import openpyxl

    from store.export import export_weekly

    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await import_tasks(db, "demo", csv(
            tmp_path, "发布会,新品发布会,guoqing,T12,直播系统压测,luoyi,,2026-12-01 12:00,压测报告"), now=clock.now())
        clock.set(at("2026-12-01 10:00"))
        await bot.say("luoyi", "进度 T12 完成 压测报告链接")
        await bot.say("liuyang", "反馈 @王强 #主动补位 客户级 周二夜里帮客户排查退货问题")
        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "w49.xlsx", now=at("2026-12-04 18:00"))
    wb = openpyxl.load_workbook(out, read_only=True)
    assert {"明细", "部门指标", "反馈标签", "任务交付", "指标定义"} <= set(wb.sheetnames)
    fb = [r for r in wb["反馈标签"].iter_rows(values_only=True)][1:]
    assert fb == [("康骨医疗/研发中心/注册部", "主动补位", 1)]
    tasks = [r for r in wb["任务交付"].iter_rows(values_only=True)]
    total = next(r for r in tasks if r[0] == "合计" or r[1] == "全公司")
    header = tasks[0]
    assert total[header.index("到期任务")] == 1 and total[header.index("按时交付")] == 1
