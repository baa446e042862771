"""Conversations the bot used to misread, as scripts, on SQLite and PostgreSQL.

曹宇: 你好 → a friendly line with the week's status; nothing recorded.
曹宇: @邓超 → the bot asks what the action is; nothing recorded.
曹宇: 测试 → 「把“测试”记为本周关键动作？」; only 是 records it.
王强: 明天请假 / 请假 下周一到周三 / 请病假 → leave; 请假 12-01 on 12-02 → asked, not moved a year.
曹宇: @张三 → 没有找到; @zhaolie → asks before 赵磊 becomes the witness; 都不是 changes nothing.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from store.db import Database
from store.models import IssuedCard, Leave, Task, WeeklyAction
from tests.harness import at, console_bot

WEDNESDAY = "2026-12-02 10:00"
FORMAT = "记录请回复：目标编号（可选） 一件事（20字以内） @见证同事，例：O1-KR2 完成2份临床评价报告初稿 @李娜"
NONE_YET = "本周 第49周（11-30~12-06） 还没有关键动作。"


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def actions(db: Database) -> list[WeeklyAction]:
    async with db.session() as s:
        return list((await s.execute(select(WeeklyAction))).scalars())


async def test_chit_chat_gets_a_friendly_answer_and_is_never_an_action(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        for said, first in (("你好", "你好！"), ("好的，收到", "好的。"), ("👍", "好的。"), ("在吗", "你好！"),
                            ("谢谢！", "不客气！"), ("🎉", "👍")):
            await bot.say("caoyu", said)
            assert await bot.texts("caoyu") == [f"{first}\n{NONE_YET}\n{FORMAT}"], said
        await bot.say("caoyu", "这是什么？")
        assert (await bot.texts("caoyu"))[0].startswith("我是动线：每周记一件关键动作")
        await bot.say("caoyu", "。。。")
        assert await bot.texts("caoyu") == [f"没看懂这条消息，什么也没有记录。\n{NONE_YET}\n{FORMAT}"]
        # The console's own 状态 chip, and the ways people ask for help and goals.
        await bot.say("caoyu", "状态")
        assert await bot.texts("caoyu") == [NONE_YET]
        await bot.say("caoyu", "进度如何？")
        assert await bot.texts("caoyu") == [NONE_YET]
        await bot.say("caoyu", "怎么用")
        assert (await bot.texts("caoyu"))[0].startswith("动线 · 可以这样说")
        assert await count(db, WeeklyAction) == 0
        assert await bot.new("dengchao") == [] and await bot.new("li_na") == []


async def test_a_witness_alone_asks_for_the_thing_and_records_nothing(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("caoyu", "@邓超")
        assert await bot.texts("caoyu") == ["这周最关键的一件事是什么？（20字以内）"]
        assert await count(db, WeeklyAction) == 0
        # Chit-chat in between is answered, and the draft keeps the witness.
        await bot.say("caoyu", "好的")
        assert (await bot.texts("caoyu"))[0].startswith("好的。")
        await bot.say("caoyu", "无 完成直播系统压测")
        [action] = await actions(db)
        assert (action.thing, action.witness_userid, action.goal_code) == ("完成直播系统压测", "dengchao", None)


async def test_a_short_text_alone_is_recorded_only_when_confirmed(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("caoyu", "测试")
        card = await bot.last_card("caoyu", "记为本周关键动作")
        assert card["body"] == "把“测试”记为本周关键动作？"
        assert [b["text"] for b in card["buttons"]] == ["是", "不是"]
        await bot.press("caoyu", card, "不是")
        assert f"好的，没有记录。\n{FORMAT}" in await bot.texts("caoyu")
        assert await count(db, WeeklyAction) == 0

        await bot.say("caoyu", "测试")
        await bot.press("caoyu", await bot.last_card("caoyu", "记为本周关键动作"), "是")
        assert "请 @ 一位同事作为见证人，例如 @李娜" in await bot.texts("caoyu")
        await bot.say("caoyu", "@邓超")
        await bot.press("caoyu", await bot.last_card("caoyu", "关联哪个目标"), "goal:none")
        [action] = await actions(db)
        assert (action.thing, action.witness_userid) == ("测试", "dengchao")


async def test_goals_lists_codes_with_the_departments_first(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("wangqiang", "有哪些目标")
        [reply] = await bot.texts("wangqiang")
        lines = reply.split("\n")
        assert lines[0] == "可关联的目标（先列你所在部门的）："
        assert lines[-1].startswith("写关键动作时带上编号")
        assert lines.index("O1-KR2 NMPA二类证平均获批周期≤82天") < lines.index("O1-KR1 新品首批订单≥300套")
        assert await count(db, WeeklyAction) == 0


async def test_leave_in_natural_words_and_a_past_date_is_asked_about(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("wangqiang", "明天请假")
        assert await bot.texts("wangqiang") == ["已记录请假 2026-12-03 至 2026-12-03，期间不会再提醒你。"]
        await bot.say("wangqiang", "请假 下周一到周三")
        assert await bot.texts("wangqiang") == ["已记录请假 2026-12-07 至 2026-12-09，期间不会再提醒你。"]
        await bot.say("wangqiang", "请病假")
        assert await bot.texts("wangqiang") == ["已记录请假 2026-12-02 至 2026-12-02（病假），期间不会再提醒你。"]
        assert await count(db, Leave) == 3

        # 12-01 typed on 12-02 was yesterday: asked, nothing stored, nothing moved a year.
        await bot.say("wangqiang", "请假 12-01")
        assert await bot.texts("wangqiang") == [
            "12-01 已经过去了，是指 2027-12-01 吗？回复「是」按 2027-12-01 记录；或重新发送，例如：请假 2027-12-01"]
        assert await count(db, Leave) == 3
        await bot.say("wangqiang", "是")
        assert await bot.texts("wangqiang") == ["已记录请假 2027-12-01 至 2027-12-01，期间不会再提醒你。"]
        async with db.session() as s:
            days = sorted((r.start_day, r.end_day) for r in (await s.execute(select(Leave))).scalars())
        assert days[-1] == (date(2027, 12, 1), date(2027, 12, 1))

        # 不是 drops the question; nothing is stored.
        await bot.say("wangqiang", "请假 11-30 至 12-01")
        assert (await bot.texts("wangqiang"))[0].startswith("11-30 至 12-01 已经过去了，是指 2027-11-30 至 2027-12-01 吗？")
        await bot.say("wangqiang", "不是")
        assert await bot.texts("wangqiang") == ["好的，没有记录请假。"]
        assert await count(db, Leave) == 4


async def test_a_task_due_already_past_is_asked_about_not_moved_a_year(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("guoqing", "任务 发布会 T31 直播系统压测 @唐凯 12-01 12:00 交付:压测报告")
        [reply] = await bot.texts("guoqing")
        assert "12-01 12:00 已经过去了，是指 2027-12-01 12:00 吗？" in reply
        assert await count(db, Task) == 0
        await bot.say("guoqing", "任务 发布会 T31 直播系统压测 @唐凯 周五 12:00 交付:压测报告")
        assert any(t.startswith("已创建任务 T31 直播系统压测") and "截止 12-04 12:00" in t
                   for t in await bot.texts("guoqing"))


async def test_unknown_and_mistyped_witnesses(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        # Nobody is called 张三: no unrelated colleagues are offered.
        await bot.say("caoyu", "无 完成直播系统压测 @张三")
        assert await bot.texts("caoyu") == ["没有找到“张三”，请重新 @ 见证人（可写姓名、拼音或账号）"]
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(IssuedCard).where(
                IssuedCard.kind == "witness_choice"))).scalar_one() == 0

        # @zhaolie is a typo of 赵磊: asked first, and 都不是 changes nothing.
        await bot.say("caoyu", "@zhaolie")
        card = (await bot.new("caoyu"))[-1]["card"]
        assert card["body"] == "没有找到“zhaolie”，你指的是这位同事吗？"
        assert [b["text"] for b in card["buttons"]] == ["赵磊（注册部）", "都不是"]
        await bot.press("caoyu", card, "都不是")
        assert "好的，见证人没有改变。请重新 @ 见证人，写全名或账号，例如 @李娜" in await bot.texts("caoyu")
        assert await count(db, WeeklyAction) == 0

        # A real choice also ends with 都不是.
        await bot.say("caoyu", "@lina")
        card = (await bot.new("caoyu"))[-1]["card"]
        assert [b["text"] for b in card["buttons"]] == ["李娜（注册部）", "李纳（质量部）", "都不是"]
        await bot.press("caoyu", card, "李娜（注册部）")
        [action] = await actions(db)
        assert action.witness_userid == "li_na"

        # Editing: a typo that would change the witness asks; the witness stays until the answer.
        await bot.say("caoyu", "修改 @zhaolie")
        card = (await bot.new("caoyu"))[-1]["card"]
        assert card["buttons"][-1]["text"] == "都不是"
        [action] = await actions(db)
        assert action.witness_userid == "li_na"
        await bot.press("caoyu", card, "赵磊（注册部）")
        [action] = await actions(db)
        assert action.witness_userid == "zhaolei"


async def test_twenty_characters_are_twenty_as_people_see_them(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at(WEDNESDAY)), tmp_path) as bot:
        await bot.say("caoyu", "无 " + "👨‍👩‍👧" * 20 + " @邓超")
        [action] = await actions(db)
        assert action.thing == "👨‍👩‍👧" * 20
        # Zero-width characters alone are not an action.
        await bot.say("dengchao", "\u200b\u200b")
        assert (await bot.texts("dengchao"))[-1].startswith("没看懂这条消息")
