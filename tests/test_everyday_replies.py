"""Small replies people meet in their first week: help, 我的 while away, a job run that sends nothing."""
from __future__ import annotations

from pathlib import Path

from bot.core.clock import FrozenClock
from store.db import Database
from tests.harness import at, console_bot


async def test_help_lists_tasks_progress_and_reading_feedback(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        await bot.say("wangqiang", "帮助")
        [text] = await bot.texts("wangqiang")
    for line in ("· 任务：", "· 进度 T12 进行中", "· 反馈 查看 @王强", "· 简报 @王强 2026Q4", "每月有上限"):
        assert line in text, line


async def test_my_status_while_away_says_nothing_is_expected(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        await bot.say("wangqiang", "我的")
        assert await bot.texts("wangqiang") == ["本周 第49周（11-30~12-06） 还没有关键动作。"]
        await bot.say("li_na", "请假 12-01 至 12-04 年假")
        await bot.say("sunli", "本周跳过 出差")
        await bot.texts("li_na"), await bot.texts("sunli")
        await bot.say("li_na", "我的")
        await bot.say("sunli", "我的")
        assert await bot.texts("li_na") == [
            "本周（第49周（11-30~12-06））你请假 12-01~12-04（年假），不需要填写关键动作，也不会收到提醒。"
            "回来后如要补记，直接发本周的关键动作即可。"]
        assert (await bot.texts("sunli"))[0].startswith("本周（第49周（11-30~12-06））你已跳过本周（出差），")


async def test_a_job_run_by_hand_that_sends_nothing_says_why(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-05 10:00")), tmp_path) as bot:
        async def run(name: str) -> dict:  # type: ignore[type-arg]
            r = await bot.client.post(f"/console/api/jobs/{name}/run", json={"tenant": "demo"})
            assert r.status == 200
            return await r.json()
        briefs = await run("review_briefs")
        assert briefs["sent"] == 0 and "没有配置考评期" in briefs["note"]
        prompt = await run("morning_prompt")  # a Saturday
        assert prompt["sent"] == 0 and prompt["note"] == "今天不是工作日"
        await bot.run_job("pulse", at("2026-12-04 17:30"))
        again = await bot.client.post("/console/api/jobs/pulse/run", json={"tenant": "demo", "at": "2026-12-04T17:35:00+08:00"})
        assert (await again.json())["note"].startswith("本周的脉搏卡片已经发送过")
