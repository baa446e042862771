"""09:30 prompts: working days only, exactly once, caught up the same morning, within the budget."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from store.db import Database
from store.models import OutboxMessage, ScheduledSend
from tests.harness import at, console_bot


async def prompts_sent(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(ScheduledSend).where(
            ScheduledSend.kind == "morning_prompt"))).scalar_one())


async def outbox_recipients(db: Database) -> list[str]:
    """Everyone a queued message goes to (a fan-out row counts each of its recipients)."""
    from store.outbox import recipients

    async with db.session() as s:
        return [u for row in (await s.execute(select(OutboxMessage))).scalars() for u in recipients(row)]


async def test_prompt_goes_out_once_at_0930_on_working_days(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 09:29"))
    async with console_bot(db, clock, tmp_path) as bot:
        assert await bot.runtime.tick(at("2026-12-01 09:29")) == 0
        assert await bot.runtime.tick(at("2026-12-01 09:30")) == 40
        # The ticker beats every 30 s; the slot is already taken.
        assert await bot.runtime.tick(at("2026-12-01 09:30:30")) == 0
        assert await bot.run_job("morning_prompt", at("2026-12-01 09:31")) == 0
        await bot.runtime.settle()
        assert len(await bot.all_messages("wangqiang")) == 1
        # Saturday 2026-12-05 is an ordinary weekend day: nothing.
        assert await bot.runtime.tick(at("2026-12-05 09:30")) == 0
        # A tenant override can make it a working day.
    async with console_bot(db, FrozenClock(at("2026-12-05 09:30")), tmp_path,
                           extra_workdays=["2026-12-05"]) as bot2:
        assert await bot2.runtime.tick(at("2026-12-05 09:30")) == 40


async def test_catch_up_the_same_morning_but_not_later(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-02 11:29")), tmp_path) as bot:
        # The service was down at 09:30 and came back at 11:29: within the 2-hour grace.
        assert await bot.runtime.tick(at("2026-12-02 11:29")) == 40
    async with console_bot(db, FrozenClock(at("2026-12-03 11:31")), tmp_path) as bot:
        # Back at 11:31: too late; people are not prompted at lunch time.
        assert await bot.runtime.tick(at("2026-12-03 11:31")) == 0


async def test_people_on_leave_and_people_with_an_action_are_not_prompted(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 08:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "请假 至 12-02 年假")
        assert await bot.texts("wangqiang") == ["已记录请假 2026-11-30 至 2026-12-02（年假），期间不会再提醒你。"]
        await bot.say("li_na", "无 整理注册资料目录 @赵磊")
        assert await bot.run_job("morning_prompt", at("2026-11-30 09:30")) == 38
        assert not [m for m in await bot.new("wangqiang") if m["kind"] == "card"]
        # Back from leave on Thursday: prompted again.
        assert await bot.run_job("morning_prompt", at("2026-12-03 09:30")) >= 1
        assert (await bot.new("wangqiang"))[-1]["card"]["title"] == "本周关键动作"


async def test_last_working_day_asks_whether_it_is_done(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        clock.set(at("2026-12-04 09:30"))
        await bot.run_job("morning_prompt", at("2026-12-04 09:30"))
        card = await bot.last_card("wangqiang", "本周关键动作")
        assert card["body"].startswith("今天是本周最后一个工作日，完成了吗？")
        await bot.press("wangqiang", card, "已完成")
        assert (await bot.last_card("li_na", "请确认完成"))["body"] == "王强 已完成本周关键动作：完成2份临床评价报告初稿，请确认。"


async def test_a_silent_witness_gets_one_nudge_within_the_daily_budget(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        await bot.say("wangqiang", "完成")
        await bot.say("li_na", "无 整理注册资料目录 @赵磊")  # so 李娜 gets no prompt herself
        await bot.new("li_na")
        # Tuesday: one working day has passed without an answer → one nudge.
        await bot.run_job("morning_prompt", at("2026-12-01 09:30"))
        assert await bot.texts("li_na") == ["王强 的本周关键动作还在等你确认：完成2份临床评价报告初稿"]
        await bot.run_job("morning_prompt", at("2026-12-02 09:30"))
        assert await bot.texts("li_na") == []  # only one nudge

        # 赵磊 is both a silent witness and unfilled: one reminder a day, the prompt first.
        await bot.say("li_na", "完成")
        await bot.new("zhaolei")
        await bot.run_job("morning_prompt", at("2026-12-03 09:30"))
        got = await bot.new("zhaolei")
        assert len(got) == 1 and got[0]["card"]["title"] == "本周关键动作"
        await bot.run_job("morning_prompt", at("2026-12-04 09:30"))
        # Friday he has still no action: the prompt again, so the nudge waits (budget of one).
        assert len(await bot.new("zhaolei")) == 1


CONFIG = """
[database]
url = "{url}"
[[tenants]]
key = "demo"
name = "宁波康骨医疗器械有限公司"
"""


async def test_two_processes_running_the_same_slot_send_each_prompt_once(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 09:30")), tmp_path):
        pass  # seeds the demo company
    cfg = tmp_path / "dongxian.toml"
    cfg.write_text(CONFIG.format(url=db.url), encoding="utf-8")
    env = dict(os.environ, DONGXIAN_LOG_LEVEL="WARNING")

    async def one_process() -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "jobs", "run", "morning_prompt", "--tenant", "demo",
            "--at", "2026-12-01T09:30:00+08:00", "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    outputs = await asyncio.gather(*(one_process() for _ in range(3)))
    sent = sorted(int(o.split(": ")[1].split()[0]) for o in outputs)
    assert sum(sent) == 40, outputs
    assert await prompts_sent(db) == 40
    to = await outbox_recipients(db)
    assert len(to) == len(set(to)) == 40


async def test_the_shared_prompt_card_answers_each_person_alone(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 09:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("zhaolei", "无 提交一份补正资料 @孙丽")  # has an action: not prompted
        await bot.run_job("morning_prompt", at("2026-12-01 09:30"))
        mine = await bot.last_card("wangqiang", "本周关键动作")
        assert mine["id"] == (await bot.last_card("li_na", "本周关键动作"))["id"]  # one card for all
        await bot.press("wangqiang", mine, "本周跳过")
        assert "本周已跳过，本周不再提醒你。" in await bot.texts("wangqiang")
        assert (await bot.last_card("wangqiang", "本周关键动作"))["result"] == "本周跳过"
        assert (await bot.last_card("li_na", "本周关键动作"))["buttons"] != []  # hers is untouched
        # A press from someone the card never went to (a forwarded card) is refused.
        await bot.press("zhaolei", mine, "本周跳过")
        assert (await bot.new("zhaolei"))[-1]["text"] == "这张卡片不是发给你的。"
        # The next morning 王强 (skipping this week) is not prompted; 李娜 is.
        await bot.run_job("morning_prompt", at("2026-12-02 09:30"))
        assert not [m for m in await bot.new("wangqiang") if m["kind"] == "card"]
        assert any(m["kind"] == "card" for m in await bot.new("li_na"))
