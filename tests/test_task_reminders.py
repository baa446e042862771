"""The owner hears of the due time before the manager does; the owner's task card has its buttons; a PMO lists their projects' tasks."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.core.calendar import WorkCalendar
from bot.core.clock import FrozenClock
from bot.core.config import TenantConfig
from store.db import Database
from store.statuses import TaskStatus
from store.models import Task
from store.tasks import import_tasks
from tests.harness import SHANGHAI, at, console_bot

HEADER = "project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
TASKS = ["发布会,新品发布会,guoqing,T12,直播系统压测,luoyi,,2026-12-01 12:00,压测报告",
         "发布会,新品发布会,guoqing,T13,物料采购,tangkai,,2026-12-01 10:00,",
         "发布会,新品发布会,guoqing,T14,场地确认,songjia,,2026-12-01 15:00,"]


def titles(msgs: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [m["card"]["title"] for m in msgs if m["kind"] == "card"]


async def test_owner_is_reminded_two_working_hours_before_and_at_the_due_time(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))  # Monday
    async with console_bot(db, clock, tmp_path) as bot:
        p = tmp_path / "tasks.csv"
        p.write_text(HEADER + "\n".join(TASKS) + "\n", encoding="utf-8")
        assert (await import_tasks(db, "demo", p, now=clock.now())).ok
        assert await bot.run_job("overdue_scan", at("2026-11-30 10:00")) == 3  # the assignment cards
        for u in ("luoyi", "tangkai", "songjia"):
            await bot.new(u)

        # T13 is due Tuesday 10:00: two working hours before it is Monday 17:00.
        assert await bot.run_job("overdue_scan", at("2026-11-30 16:59")) == 0
        assert await bot.run_job("overdue_scan", at("2026-11-30 17:00")) == 1
        [soon] = await bot.new("tangkai")
        assert soon["card"]["title"] == "即将到期：T13 物料采购"
        assert soon["card"]["body"] == "截止时间 12-01 10:00，还有 17 小时。请更新进度；完成时请提交交付物。"
        assert [b["text"] for b in soon["card"]["buttons"]] == ["进行中", "阻塞", "完成"]
        assert await bot.run_job("overdue_scan", at("2026-11-30 17:30")) == 0  # once

        # Tuesday 09:00: the due-day cards; 10:00: T13 is due (its owner is told) and T12 is two hours off.
        assert await bot.run_job("overdue_scan", at("2026-12-01 09:00")) == 3
        for u in ("luoyi", "tangkai", "songjia"):
            await bot.new(u)
        clock.set(at("2026-12-01 10:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 10:00")) == 2
        [now] = await bot.new("tangkai")
        assert now["card"]["title"] == "已到截止时间：T13 物料采购"
        assert now["card"]["body"] == ("截止时间 12-01 10:00 已到。请现在更新进度：2 小时内没有更新，"
                                       "将通知你的上级和项目 PMO。")
        assert titles(await bot.new("luoyi")) == ["即将到期：T12 直播系统压测"]
        assert await bot.new("hanmei") == []  # the manager hears nothing yet

        # 罗毅 answers the reminder; 宋佳 updates before hers. At 12:00 T12 is due: 罗毅 is reminded still,
        # since the task is not done; 唐凯 stayed silent, so his manager and the PMO now hear of T13.
        clock.set(at("2026-12-01 10:05"))
        await bot.press("luoyi", (await bot.last_card("luoyi", "即将到期")), "进行中")
        clock.set(at("2026-12-01 12:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 12:00")) == 1 + 2
        assert "已到截止时间：T12 直播系统压测" in titles(await bot.new("luoyi"))
        esc = await bot.last_card("hanmei", "阻塞预警")
        assert esc["body"] == "唐凯 负责的任务已过截止时间（12-01 10:00），已 1 天 2 小时 没有更新进度。"
        # Once escalated, no "due now" card for T13 any more; T14 gets its reminders in turn.
        assert await bot.run_job("overdue_scan", at("2026-12-01 13:00")) == 1
        assert titles(await bot.new("songjia"))[-1] == "即将到期：T14 场地确认"
        # 15:00: T14 is due; and 罗毅, silent since 10:05, has been past due for over 2 hours.
        assert await bot.run_job("overdue_scan", at("2026-12-01 15:00")) == 1 + 2
        assert titles(await bot.new("songjia"))[-1] == "已到截止时间：T14 场地确认"
        assert (await bot.last_card("liangbo", "阻塞预警"))["body"] == (
            "罗毅 负责的任务已过截止时间（12-01 12:00），已 4 小时 没有更新进度。")
        assert await bot.run_job("overdue_scan", at("2026-12-01 15:30")) == 0


def test_working_hours_before_skips_nights_weekends_and_holidays() -> None:
    cal = WorkCalendar(TenantConfig(key="demo", name="D"))
    def local(s: str) -> datetime:
        return datetime.fromisoformat(s).replace(tzinfo=SHANGHAI)
    assert cal.working_hours_before(local("2026-12-01 12:00"), 2) == local("2026-12-01 10:00")
    assert cal.working_hours_before(local("2026-12-01 10:00"), 2) == local("2026-11-30 17:00")
    assert cal.working_hours_before(local("2026-12-01 20:00"), 2) == local("2026-12-01 16:00")
    assert cal.working_hours_before(local("2026-11-30 09:30"), 2) == local("2026-11-27 16:30")  # Monday → Friday
    assert cal.working_hours_before(local("2026-10-08 10:00"), 3) == local("2026-09-30 16:00")  # over 国庆


async def test_owner_gets_status_buttons_on_the_task_card_and_a_pmo_lists_their_projects(
        db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        p = tmp_path / "tasks.csv"
        p.write_text(HEADER + "\n".join(TASKS) + "\n", encoding="utf-8")
        assert (await import_tasks(db, "demo", p, now=clock.now())).ok

        # 罗毅 asks for his task: the card carries the status buttons, and they work.
        await bot.say("luoyi", "任务 T12")
        card = await bot.last_card("luoyi", "任务详情")
        assert [b["text"] for b in card["buttons"]] == ["进行中", "阻塞", "完成"]
        await bot.press("luoyi", card, "进行中")
        async with db.session() as s:
            t12 = (await s.execute(select(Task).where(Task.code == "T12"))).scalar_one()
        assert t12.status == TaskStatus.DOING
        # HR looking at the same task gets no status buttons.
        await bot.say("zhoumin", "任务 T12")
        assert [b["text"] for b in (await bot.last_card("zhoumin", "任务详情"))["buttons"]] == ["反馈"]

        # 郭庆 runs 新品发布会: 任务 lists its open tasks with their owners.
        await bot.say("guoqing", "任务")
        [listing] = await bot.texts("guoqing")
        lines = listing.split("\n")
        assert lines[0] == "你负责的项目（新品发布会）中的未完成任务（3）："
        assert lines[1] == "· T13 物料采购｜新品发布会｜截止 12-01 10:00｜待开始｜负责人 唐凯"
        assert lines[2] == "· T12 直播系统压测｜新品发布会｜截止 12-01 12:00｜进行中｜负责人 罗毅"
        assert lines[3] == "· T14 场地确认｜新品发布会｜截止 12-01 15:00｜待开始｜负责人 宋佳"
        # Someone with no task and no project still hears that there is nothing.
        await bot.say("hexin", "任务")
        assert await bot.texts("hexin") == ["你目前没有未完成的任务。"]
