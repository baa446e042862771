"""Project tasks: import from CSV/XLSX, creation and progress in chat, task cards."""
from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, time, timezone
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from handlers.tasks.grammar import parse_progress, parse_task_line
from store.db import Database
from store.statuses import TaskStatus
from store.models import Project, Task, TaskUpdate, WeeklyAction
from store.tasks import import_tasks
from tests.harness import at, console_bot, demo_test_config, seed_demo_company

HEADER = "project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
GOOD = HEADER + (
    "发布会,新品发布会,guoqing,T12,直播系统压测,tangkai,caoyu;邓超,2026-12-01 12:00,直播系统压测报告：CPU峰值截图、错误日志摘要\n"
    "发布会,,,T13,物料采购,罗毅,,2026-12-02 18:00,采购单\n"
    "客服培训,客服话术培训,pengli,K1,话术手册,xiaoyan,,2026/12/03 09:30,\n"
)


def write(tmp_path: Path, text: str, name: str = "tasks.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


async def seeded(db: Database, tmp_path: Path) -> None:
    await seed_demo_company(db, demo_test_config(db.url, tmp_path))


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def task(db: Database, code: str) -> Task:
    async with db.session() as s:
        return (await s.execute(select(Task).where(Task.code == code))).scalar_one()


def utc(s: str) -> datetime:
    return at(s).astimezone(timezone.utc)


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# -- import ------------------------------------------------------------------------------------
async def test_import_creates_projects_and_tasks_and_a_reimport_updates_them(db: Database, tmp_path: Path) -> None:
    await seeded(db, tmp_path)
    now = at("2026-11-30 10:00")
    dry = await import_tasks(db, "demo", write(tmp_path, GOOD), now=now, dry_run=True)
    assert dry.ok and dry.dry_run
    assert (dry.projects_added, dry.added) == (["发布会", "客服培训"], ["T12", "T13", "K1"])
    assert await count(db, Task) == 0 and await count(db, Project) == 0

    report = await import_tasks(db, "demo", write(tmp_path, GOOD), now=now)
    assert report.ok, report.errors
    assert "已新增 3 个任务：T12、T13、K1" in report.summary()
    t12, t13, k1 = await task(db, "T12"), await task(db, "T13"), await task(db, "K1")
    assert (t12.owner_userid, t12.collaborators, t12.status) == ("tangkai", "caoyu;dengchao", TaskStatus.TODO)
    assert aware(t12.due_at) == utc("2026-12-01 12:00")
    assert aware(k1.due_at) == utc("2026-12-03 09:30")
    assert t13.owner_userid == "luoyi"  # by name
    assert t12.deliverable_template.startswith("直播系统压测报告")
    async with db.session() as s:
        launch = (await s.execute(select(Project).where(Project.code == "发布会"))).scalar_one()
    assert (launch.name, launch.pmo_userid) == ("新品发布会", "guoqing")
    assert t13.project_id == t12.project_id == launch.id  # the PMO of line 2 holds for line 3

    # Re-import: T12 moves to the afternoon; the change is logged, the status is untouched.
    async with db.transaction() as s:
        row = (await s.execute(select(Task).where(Task.code == "T12"))).scalar_one()
        row.status = TaskStatus.DOING
    moved = GOOD.replace("2026-12-01 12:00", "2026-12-01 15:00")
    again = await import_tasks(db, "demo", write(tmp_path, moved), now=at("2026-11-30 11:00"))
    assert (again.added, again.updated, again.unchanged) == ([], ["T12"], ["T13", "K1"])
    t12 = await task(db, "T12")
    assert aware(t12.due_at) == utc("2026-12-01 15:00") and t12.status == TaskStatus.DOING
    async with db.session() as s:
        due = (await s.execute(select(TaskUpdate).where(TaskUpdate.kind == "due"))).scalar_one()
    assert (due.old_value, due.new_value) == ("2026-12-01 12:00", "2026-12-01 15:00")

    # XLSX works the same (a due time typed as an Excel date-time cell too).
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.strip().split(","))
    ws.append(["发布会", "", "", "T14", "现场网络保障", "hanmei", "", datetime(2026, 12, 1, 8, 0), "网络测试记录"])
    xlsx = tmp_path / "more.xlsx"
    wb.save(xlsx)
    more = await import_tasks(db, "demo", xlsx, now=now)
    assert more.ok and more.added == ["T14"], more.errors
    assert aware((await task(db, "T14")).due_at) == utc("2026-12-01 08:00")


async def test_a_bad_task_file_is_refused_whole_with_line_numbers(db: Database, tmp_path: Path) -> None:
    await seeded(db, tmp_path)
    bad = HEADER + (
        "发布会,新品发布会,guoqing,T12,直播系统压测,tangkai,,2026-12-01 12:00,压测报告\n"    # 2: fine
        "发布会,,,T13,物料采购,nobody,,2026-12-02 18:00,\n"                                  # 3: unknown owner
        "发布会,,,T14,场地布置,hulin,,2026-13-01 12:00,\n"                                   # 4: bad date
        "发布会,,,t12,直播彩排,linfang,,2026-12-01 15:00,\n"                                 # 5: duplicate code
        "发布会,,,T15,物流,weiwei,某某人,明天中午,\n"                                          # 6: collaborator, date
        "培训,,,K1,话术手册,xiaoyan,,2026-12-03 09:30,\n"                                    # 7: new project, no PMO
        "市场,,钱多多,M1,海报,heping,,2026-12-03 09:30,\n"                                    # 8: unknown PMO
    )
    report = await import_tasks(db, "demo", write(tmp_path, bad), now=at("2026-11-30 10:00"))
    assert not report.ok
    assert report.errors == [
        "第 3 行：负责人“nobody”不在名单中或已停用",
        "第 4 行：截止时间 “2026-13-01 12:00” 无效，应写成 2026-12-01 12:00",
        "第 5 行：任务编号 T12 与第 2 行重复",
        "第 6 行：协作人“某某人”不在名单中或已停用",
        "第 6 行：截止时间 “明天中午” 无效，应写成 2026-12-01 12:00",
        "第 7 行：新项目 培训 需要填写 PMO",
        "第 8 行：PMO “钱多多”不在名单中或已停用",
    ]
    assert report.summary().startswith("任务文件有 7 处错误，未做任何修改")
    assert await count(db, Task) == 0 and await count(db, Project) == 0 and await count(db, TaskUpdate) == 0

    # A wrong header is a file-level error.
    header = await import_tasks(db, "demo", write(tmp_path, "code,title\nT1,x\n"), now=at("2026-11-30 10:00"))
    assert header.errors and header.errors[0].startswith("第 1 行：缺少列")


def test_cli_imports_a_file_and_refuses_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli_tasks import add_task_commands
    from store.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"

    async def prepare() -> None:
        db = Database(url)
        await upgrade(db)
        await seeded(db, tmp_path)
        await db.close()

    asyncio.run(prepare())
    cfg = tmp_path / "dongxian.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n[[tenants]]\nkey = "demo"\nname = "宁波康骨医疗器械有限公司"\n',
                   encoding="utf-8")
    parser = argparse.ArgumentParser(prog="dongxian")
    add_task_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return int(args.fn(args))

    assert run("tasks", "import", str(write(tmp_path, GOOD)), "--tenant", "demo", "--config", str(cfg), "--dry-run") == 0
    assert "（试运行，未写入）" in capsys.readouterr().out
    bad = GOOD.replace("tangkai", "nobody")
    assert run("tasks", "import", str(write(tmp_path, bad, "bad.csv")), "--tenant", "demo", "--config", str(cfg)) == 1
    assert "第 2 行：负责人“nobody”不在名单中或已停用" in capsys.readouterr().out
    assert run("tasks", "import", str(write(tmp_path, GOOD)), "--tenant", "demo", "--config", str(cfg)) == 0
    assert "已新增 3 个任务" in capsys.readouterr().out


# -- grammar -------------------------------------------------------------------------------------
def test_task_line_and_progress_grammar() -> None:
    line = parse_task_line("发布会 T12 直播系统压测 @唐凯 12-01 12:00 交付:压测报告", date(2026, 11, 30), time(18))
    assert (line.words, line.mentions, line.due, line.deliverable) == (
        ["发布会", "T12", "直播系统压测"], ["唐凯"], datetime(2026, 12, 1, 12, 0), "压测报告")
    # Full-width punctuation, a version number in the title, a date with no time (end of the working day),
    # a date that has passed this year (next year), collaborators.
    line = parse_task_line("发布会 T20 升级到V2.1版本 ＠唐凯 @曹宇 1月5日 交付物：升级记录", date(2026, 11, 30), time(18))
    assert (line.words, line.mentions, line.due, line.deliverable) == (
        ["发布会", "T20", "升级到V2.1版本"], ["唐凯", "曹宇"], datetime(2027, 1, 5, 18, 0), "升级记录")
    line = parse_task_line("T12 明天 9:30 原因：客户改期", date(2026, 11, 30), time(18))
    assert (line.words, line.due, line.reason) == (["T12"], datetime(2026, 12, 1, 9, 30), "客户改期")
    assert parse_task_line("T12 12-01 25:00", date(2026, 11, 30), time(18)).due_error.startswith("时间 12-01 25:00 无效")

    assert parse_progress("T12 阻塞 等采购确认") == ("T12", TaskStatus.BLOCKED, "等采购确认")
    assert parse_progress("t12完成 https://x.example/r.pdf") == ("T12", TaskStatus.DONE, "https://x.example/r.pdf")
    assert parse_progress("Ｔ１２ 进行中") == ("T12", TaskStatus.DOING, "")
    assert parse_progress("阻塞：等法务") == (None, TaskStatus.BLOCKED, "等法务")
    assert parse_progress("T12 随便说说") == ("T12", None, "随便说说")


# -- chat and cards ----------------------------------------------------------------------------------
async def test_create_list_and_report_progress_in_chat(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        # Only PMOs, managers and admins start tasks.
        await bot.say("luoyi", "任务 发布会 T13 物料采购 @宋佳 12-02 18:00")
        assert await bot.texts("luoyi") == ["只有项目 PMO、管理者或管理员可以创建任务。"]
        # Missing parts are all named at once.
        await bot.say("guoqing", "任务 发布会 T13 @nobody")
        reply = (await bot.texts("guoqing"))[0]
        assert "没有找到“nobody”" in reply and "请写明任务名称。" in reply and "请写明截止时间" in reply
        assert await count(db, Task) == 0

        await bot.say("guoqing", "任务 发布会 T13 物料采购 @宋佳 @魏薇 12-02 18:00 交付:采购单与到货时间")
        assert await bot.texts("guoqing") == [
            "已创建任务 T13 物料采购（项目：发布会），负责人 宋佳，截止 12-02 18:00，已通知负责人。\n"
            "已新建项目 发布会，你是该项目的 PMO。"]
        card = await bot.last_card("songjia", "新任务")
        assert card["title"] == "新任务：T13 物料采购"
        assert card["body"].startswith("郭庆 给你分配了任务")
        assert [b["text"] for b in card["buttons"]] == ["进行中", "阻塞", "完成"]
        assert ("交付物要求", "采购单与到货时间") in [tuple(f) for f in card["fields"]]
        assert await bot.texts("weiwei") == ["郭庆 将你加为任务 T13 物料采购 的协作人，负责人 宋佳。"]
        # The scan does not send the assignment card a second time.
        assert await bot.run_job("overdue_scan", at("2026-11-30 10:01")) == 0

        await bot.say("songjia", "任务")
        await bot.texts("songjia")  # the card
        await bot.say("weiwei", "任务")
        listing = (await bot.texts("weiwei"))[0]
        assert "T13 物料采购｜发布会｜截止 12-02 18:00｜待开始（协作）" in listing

        # Someone outside the task may not report on it.
        await bot.say("hulin", "进度 T13 进行中")
        assert await bot.texts("hulin") == ["只有负责人、协作人或项目 PMO 可以更新 T13 的进度。"]

        # 阻塞 needs a reason: asked for, then recorded; the PMO hears of it.
        clock.set(at("2026-11-30 11:00"))
        await bot.say("songjia", "进度 T13 阻塞")
        assert (await bot.texts("songjia"))[-1] == "T13 因为什么阻塞？请回复原因，例如：等采购确认"
        await bot.say("songjia", "等供应商报价")
        assert (await bot.texts("songjia"))[-1] == "已更新 T13：阻塞（等供应商报价）"
        assert "宋佳 报告任务 T13 物料采购 阻塞：等供应商报价" in await bot.texts("guoqing")

        # 完成 needs the deliverable the task names; "好了" does not name it.
        clock.set(at("2026-12-02 17:00"))
        await bot.say("songjia", "进度 T13 完成")
        assert (await bot.texts("songjia"))[-1].startswith("完成 T13 需要提交交付物：采购单与到货时间")
        await bot.say("songjia", "好了")
        assert (await bot.texts("songjia"))[-1].startswith("完成 T13 需要提交交付物")
        assert (await task(db, "T13")).status == TaskStatus.BLOCKED
        await bot.say("songjia", "采购单 PO-2026-118，12-05 到货")
        assert (await bot.texts("songjia"))[-1] == "已完成 T13 物料采购，交付物已记录。"
        done = await task(db, "T13")
        assert (done.status, done.deliverable) == (TaskStatus.DONE, "采购单 PO-2026-118，12-05 到货")
        assert aware(done.completed_at) == utc("2026-12-02 17:00")  # type: ignore[arg-type]
        assert "宋佳 已完成任务 T13 物料采购，交付物：采购单 PO-2026-118，12-05 到货" in await bot.texts("guoqing")
        await bot.say("songjia", "进度 T13 进行中")
        assert await bot.texts("songjia") == ["T13 已完成，无需再更新。"]
        async with db.session() as s:
            steps = [(u.old_value, u.new_value, u.note) for u in (await s.execute(
                select(TaskUpdate).where(TaskUpdate.kind == "status").order_by(TaskUpdate.id))).scalars()]
        assert steps == [("todo", "blocked", "等供应商报价"), ("blocked", "done", "采购单 PO-2026-118，12-05 到货")]

        # The PMO moves an open task's due time in chat, with a reason.
        await bot.say("guoqing", "任务 发布会 T14 场地布置 @hulin 12-03 18:00")
        await bot.say("guoqing", "任务 T14 12-04 12:00 原因：场地方改期")
        assert (await bot.texts("guoqing"))[-1] == "已修改 T14：截止 12-03 18:00 → 12-04 12:00"
        async with db.session() as s:
            due = (await s.execute(select(TaskUpdate).where(TaskUpdate.kind == "due"))).scalar_one()
        assert (due.old_value, due.new_value, due.note, due.by_userid) == (
            "2026-12-03 18:00", "2026-12-04 12:00", "场地方改期", "guoqing")


async def test_task_card_buttons(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await import_tasks(db, "demo", write(tmp_path, GOOD), now=clock.now())
        assert await bot.run_job("overdue_scan", at("2026-11-30 10:00")) == 3  # one assignment card per owner
        first = await bot.last_card("tangkai", "新任务")
        assert first["body"] == "你有一项新任务（项目：新品发布会），请按时更新进度。"

        await bot.press("tangkai", first, "进行中")
        assert (await task(db, "T12")).status == TaskStatus.DOING
        assert (await bot.last_card("tangkai", "新任务"))["result"] == "已更新：进行中"
        second = await bot.last_card("tangkai", "任务：T12")
        assert second["body"] == "已更新：进行中" and second["buttons"]
        # The pressed card is spent.
        await bot.press("tangkai", first, "完成")
        assert (await bot.new("tangkai"))[-1]["text"] == "这张卡片已经处理过了。"

        # 阻塞 from the card asks for the reason; 完成 for the deliverable. A weekly action he
        # was half-way through writing waits meanwhile and is finished afterwards.
        await bot.say("tangkai", "无 完成压测脚本")
        assert (await bot.texts("tangkai"))[-1].startswith("请 @ 一位同事作为见证人")
        await bot.press("tangkai", second, "阻塞")
        assert (await bot.texts("tangkai"))[-1] == "T12 因为什么阻塞？请回复原因，例如：等采购确认"
        await bot.say("tangkai", "等压测环境")
        third = await bot.last_card("tangkai", "任务：T12")
        assert third["body"] == "已更新：阻塞（等压测环境）"
        await bot.say("tangkai", "@曹宇")
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
        assert (action.userid, action.thing, action.witness_userid) == ("tangkai", "完成压测脚本", "caoyu")
        await bot.texts("caoyu")
        await bot.press("tangkai", third, "完成")
        assert (await bot.texts("tangkai"))[-1].startswith("完成 T12 需要提交交付物：直播系统压测报告")
        await bot.say("tangkai", "https://wiki.example/load-test-report")
        assert (await bot.texts("tangkai"))[-1] == "已完成 T12 直播系统压测，交付物已记录。"
        assert (await task(db, "T12")).deliverable == "https://wiki.example/load-test-report"

        # A collaborator's presses on someone else's card do not count; the owner card is the owner's.
        k1 = await bot.last_card("xiaoyan", "新任务")
        await bot.press("tangkai", k1, "进行中")
        assert (await bot.new("tangkai"))[-1]["text"] == "这张卡片不是发给你的。"
        assert (await task(db, "K1")).status == TaskStatus.TODO

        # The due-day card: on the last working day on or before the due day, once.
        assert await bot.run_job("overdue_scan", at("2026-12-01 09:00")) == 0  # T13 is due 12-02
        assert await bot.run_job("overdue_scan", at("2026-12-02 09:00")) == 1
        due = await bot.last_card("luoyi", "今日到期")
        assert due["title"] == "今日到期：T13 物料采购"
        assert await bot.run_job("overdue_scan", at("2026-12-02 09:30")) == 0

        # 任务 T12 shows the task and its history.
        await bot.say("guoqing", "任务 T12")
        view = await bot.last_card("guoqing", "任务详情")
        assert view["title"] == "任务详情：T12 直播系统压测"
        assert "导入创建任务" in view["body"] and "唐凯：进行中 → 阻塞（等压测环境）" in view["body"]
        assert ("交付物", "https://wiki.example/load-test-report") in [tuple(f) for f in view["fields"]]
