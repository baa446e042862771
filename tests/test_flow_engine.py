"""The flow engine: a command or a whole weekly action in the middle of another exchange puts it
aside and says so, 继续 brings it back, 取消 ends it — nothing typed is misfiled. SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.db import Database
from store.statuses import Impact
from store.models import Feedback, Task, WeeklyAction
from store.tasks import import_tasks
from tests.harness import ConsoleBot, at, console_bot

TASKS = ("project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
         "发布会,新品发布会,guoqing,T12,直播系统压测,tangkai,caoyu,2026-12-04 12:00,\n")


async def texts(bot: ConsoleBot, userid: str) -> list[str]:
    return [m["text"] for m in await bot.new(userid) if m["kind"] == "text"]


async def actions(db: Database) -> list[WeeklyAction]:
    async with db.session() as s:
        return list((await s.execute(select(WeeklyAction))).scalars())


async def task(db: Database, code: str) -> Task:
    async with db.session() as s:
        return (await s.execute(select(Task).where(Task.code == code))).scalar_one()


async def newest_card(bot: ConsoleBot, userid: str) -> dict[str, Any]:
    return [m["card"] for m in await bot.all_messages(userid) if m["kind"] == "card"][-1]


async def test_a_command_in_the_middle_puts_the_question_aside_and_the_action_is_not_misfiled(
        db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    csv = tmp_path / "tasks.csv"
    csv.write_text(TASKS, encoding="utf-8")
    async with console_bot(db, clock, tmp_path) as bot:
        await import_tasks(db, "demo", csv, now=clock.now())
        # 唐凯: 进度 T12 阻塞 → bot asks for the reason.
        await bot.say("tangkai", "进度 T12 阻塞")
        assert (await texts(bot, "tangkai"))[-1] == "T12 因为什么阻塞？请回复原因，例如：等采购确认"
        # 唐凯: 帮助 → the question is put aside, in one line, and the help is shown.
        await bot.say("tangkai", "帮助")
        said = await texts(bot, "tangkai")
        assert said[0] == "已暂停填写阻塞原因，回复「继续」接着填。" and len(said) == 2
        # 唐凯 writes this week's action: it is the weekly action, not the block reason.
        await bot.say("tangkai", "O1-KR2 完成2份报告初稿 @李娜")
        [action] = await actions(db)
        assert (action.userid, action.goal_code, action.thing, action.witness_userid) == (
            "tangkai", "O1-KR2", "完成2份报告初稿", "li_na")
        t12 = await task(db, "T12")
        assert t12.block_reason in (None, "") and t12.status != "blocked" and t12.status != "阻塞"
        # 继续 asks the question again; the answer is recorded as the reason.
        await bot.say("tangkai", "继续")
        assert (await texts(bot, "tangkai"))[-1] == "T12 因为什么阻塞？请回复原因，例如：等采购确认"
        await bot.say("tangkai", "等压测环境")
        assert (await task(db, "T12")).block_reason == "等压测环境"
        # Nothing is left aside now.
        await bot.say("tangkai", "继续")
        assert (await texts(bot, "tangkai"))[-1] == "没有暂停的内容。"


async def test_a_whole_weekly_action_typed_while_feedback_waits_for_a_tag(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        # 刘洋 starts feedback for 王强 without a tag: the tag card is shown.
        await bot.say("liuyang", "反馈 @王强")
        tag_card = await newest_card(bot, "liuyang")
        assert "主动补位" in [b["text"] for b in tag_card["buttons"]]
        await bot.new("liuyang")
        # Then writes his own weekly action: recorded, and the feedback is put aside (said once).
        await bot.say("liuyang", "O1-KR2 完成2份报告初稿 @李娜")
        said = await texts(bot, "liuyang")
        assert "已暂停填写反馈，回复「继续」接着填。" in said
        assert [(a.userid, a.thing) for a in await actions(db)] == [("liuyang", "完成2份报告初稿")]
        # 继续 brings the feedback back where it was: the tag is asked again, 王强 kept.
        await bot.say("liuyang", "继续")
        again = await newest_card(bot, "liuyang")
        assert again["id"] != tag_card["id"] and "主动补位" in [b["text"] for b in again["buttons"]]
        await bot.press("liuyang", again, "主动补位")
        impact = await newest_card(bot, "liuyang")
        await bot.press("liuyang", impact, "客户级")
        await bot.say("liuyang", "周二夜里帮客户排查退货问题到凌晨两点")
        async with db.session() as s:
            [fb] = list((await s.execute(select(Feedback))).scalars())
        assert (fb.receiver_userid, fb.tag, fb.impact) == ("wangqiang", "主动补位", Impact.CUSTOMER)


async def test_cancel_ends_what_is_under_way_and_says_what_is_still_aside(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    # Feedback to reporting lines only, so 王强 (no reports) is refused and nothing else is under way.
    async with console_bot(db, clock, tmp_path, feedback={"peer": False}) as bot:
        await bot.say("wangqiang", "无 完成压测脚本")  # a weekly action without a witness: asked for one
        assert (await texts(bot, "wangqiang"))[-1].startswith("请 @ 一位同事作为见证人")
        await bot.say("wangqiang", "反馈 @李娜")  # a command: the draft is put aside
        assert "已暂停填写本周关键动作，回复「继续」接着填。" in await texts(bot, "wangqiang")
        # (王强 may not give 李娜 feedback: peer feedback is off, so nothing new is under way.)
        await bot.say("wangqiang", "取消")  # nothing under way to end; the draft is still aside
        assert (await texts(bot, "wangqiang"))[-1] == "已取消。还有暂停的填写本周关键动作，回复「继续」接着填。"
        await bot.say("wangqiang", "继续")  # the draft asks for the witness again
        assert (await texts(bot, "wangqiang"))[-1].startswith("请 @ 一位同事作为见证人")
        await bot.say("wangqiang", "@曹宇")
        [action] = await actions(db)
        assert (action.thing, action.witness_userid) == ("完成压测脚本", "caoyu")
        # What is put aside does not outlive the draft time: a day later 继续 has nothing.
        await bot.say("wangqiang", "取消")
        await bot.new("wangqiang")
        await bot.say("wangqiang", "反馈 @李娜")
        await bot.say("wangqiang", "帮助")
        clock.advance(hours=25)
        await bot.new("wangqiang")
        await bot.say("wangqiang", "继续")
        assert (await texts(bot, "wangqiang"))[-1] == "没有暂停的内容。"


async def test_not_done_midweek_changes_nothing_and_on_the_last_day_it_counts(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))  # a Wednesday
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份报告初稿 @李娜")
        await bot.new("wangqiang")
        # 王强: 未完成 on Wednesday → the week is not closed; the bot says when it will ask.
        await bot.say("wangqiang", "未完成")
        said = await texts(bot, "wangqiang")
        assert said == ["本周还没结束，先不记为未完成：12-04（本周最后一个工作日）会再问你。"
                        "要换一件事请回复「修改 新的一件事」，本周做不了请回复「本周跳过 原因」。"]
        [action] = await actions(db)
        assert action.status == "open"
        # On Friday, the week's last working day, 未完成 is the outcome.
        clock.set(at("2026-12-04 16:00"))
        await bot.say("wangqiang", "未完成")
        [action] = await actions(db)
        assert action.status == "not_done"
