"""The weekly key-action loop, as people live it, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from store.db import Database
from store.models import ActionEdit, WeeklyAction
from tests.harness import at, console_bot

THING_21 = "完成两份临床评价报告初稿并提交法务评审"  # 19
assert len(THING_21) == 19
THING_21 = THING_21 + "再审"  # 21


async def count_actions(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(WeeklyAction))).scalar_one())


async def test_weekly_loop_from_prompt_to_export(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-10-01 09:30"))  # 国庆节: a statutory holiday
    async with console_bot(db, clock, tmp_path) as bot:
        # No prompt on a statutory holiday …
        assert await bot.run_job("morning_prompt", at("2026-10-01 09:30")) == 0
        assert await bot.new("wangqiang") == []
        # … and one on the make-up working Saturday 2026-10-10.
        clock.set(at("2026-10-10 09:30"))
        assert await bot.run_job("morning_prompt", at("2026-10-10 09:30")) == 40
        prompt = await bot.new("wangqiang")
        assert len(prompt) == 1 and prompt[0]["card"]["title"] == "本周关键动作"
        assert "@见证同事" in prompt[0]["text"]

        # 王强 writes 21 characters: refused with the count, nothing stored.
        await bot.say("wangqiang", f"O1-KR2 {THING_21} @李娜")
        reply = await bot.texts("wangqiang")
        assert reply == ["当前 21 字，请精简到 20 字以内"]
        assert await count_actions(db) == 0

        # The draft kept the goal and the witness: the shorter thing alone completes it.
        # But first, an ambiguous witness: "lina" is both 李娜 (注册部) and 李纳 (质量部).
        await bot.say("wangqiang", "@lina")
        choice = (await bot.new("wangqiang"))[-1]["card"]
        assert choice["title"] == "你指的是哪一位？"
        # Every choice of people ends with 都不是 (added on purpose: a wrong match must be refusable).
        assert sorted(b["text"] for b in choice["buttons"][:-1]) == ["李娜（注册部）", "李纳（质量部）"]
        assert choice["buttons"][-1]["text"] == "都不是"
        await bot.press("wangqiang", choice, "李娜（注册部）")
        assert "已选择 李娜" in (await bot.last_card("wangqiang", "你指的是哪一位"))["result"]
        assert await bot.texts("wangqiang") != []  # the updated choice card + the ask for the thing
        await bot.say("wangqiang", "完成2份临床评价报告初稿")
        summary = await bot.last_card("wangqiang", "已记录本周关键动作")
        assert ("目标", "O1-KR2 NMPA二类证平均获批周期≤82天") in [tuple(f) for f in summary["fields"]]
        assert ("见证人", "李娜") in [tuple(f) for f in summary["fields"]]
        assert await count_actions(db) == 1

        # 李娜 gets the invitation and accepts.
        invite = await bot.last_card("li_na", "见证邀请")
        assert invite["body"] == "王强 邀请你见证本周关键动作：完成2份临床评价报告初稿"
        await bot.press("li_na", invite, "接受见证")
        assert "李娜 已接受见证：完成2份临床评价报告初稿" in await bot.texts("wangqiang")
        pressed = await bot.last_card("li_na", "见证邀请")
        assert pressed["buttons"] == [] and pressed["result"].startswith("已接受见证")

        # Pressing the same card again changes nothing and says so.
        before = await bot.all_messages("wangqiang")
        await bot.press("li_na", invite, "无法见证")
        assert (await bot.new("li_na"))[-1]["text"] == "这张卡片已经处理过了。"
        assert await bot.all_messages("wangqiang") == before

        # Done → 李娜 asked to confirm → confirms → 王强 told.
        clock.set(at("2026-10-10 16:00"))
        await bot.say("wangqiang", "完成")
        assert "已标记完成，已请 李娜 确认。" in await bot.texts("wangqiang")
        confirm = await bot.last_card("li_na", "请确认完成")
        await bot.press("li_na", confirm, "确认完成")
        assert "李娜 确认你已完成：完成2份临床评价报告初稿 👍" in await bot.texts("wangqiang")

        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
        assert (action.status, action.witness_userid, action.goal_code, action.week) == (
            "confirmed", "li_na", "O1-KR2", "2026-W41")

        # The export shows the confirmed action.
        out = tmp_path / "week.xlsx"
        from store.export import export_weekly
        await export_weekly(db, "demo", ["2026-W41"], out)
        wb = openpyxl.load_workbook(out, read_only=True)
        rows = [r for r in wb.worksheets[0].iter_rows(values_only=True)]
        header, data = rows[0], rows[1:]
        row = dict(zip(header, next(r for r in data if r[header.index("工号")] == "wangqiang")))
        assert row["关键动作"] == "完成2份临床评价报告初稿"
        assert row["见证人"] == "李娜"
        assert row["动作状态"] == "已确认" and row["填写状态"] == "已填写" and row["见证人确认"] == "是"
        assert row["目标编号"] == "O1-KR2"


async def test_pulse_figures_match_a_hand_count(db: Database, tmp_path: Path) -> None:
    """Four people of 注册部 in week 2026-W49; the pulse says what we count by hand."""
    clock = FrozenClock(at("2026-11-30 10:00"))  # Monday of 2026-W49
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")      # linked, done, confirmed
        await bot.say("li_na", "无 整理注册资料目录 @赵磊")                      # not linked, done, unconfirmed
        await bot.say("zhaolei", "O1 提交一份补正资料 @孙丽")                   # linked, open
        await bot.say("sunli", "本周跳过 出差")                                 # skipped
        # liuyang (manager of 注册部) does not fill in.
        await bot.say("wangqiang", "完成")
        await bot.press("li_na", await bot.last_card("li_na", "请确认完成"), "确认完成")
        await bot.say("li_na", "完成")

        from store.pulse import compute_pulse
        async with db.session() as s:
            p = await compute_pulse(s, "demo", "2026-W49")
        reg = next(d for d in p.departments if d.dept == "康骨医疗/研发中心/注册部")
        # Hand count: 5 people, 1 skipped → 4 expected; 3 filled; 3 actions; 2 done; 2 linked; 1 confirmed.
        assert (reg.population, reg.skipped, reg.filled, reg.actions, reg.done, reg.linked, reg.confirmed) == (5, 1, 3, 3, 2, 2, 1)
        assert reg.fill_rate == 3 / 4 and reg.completion_rate == 2 / 3
        assert reg.linkage_rate == 2 / 3 and reg.witness_rate == 1 / 2
        assert "liuyang" in p.missing and "sunli" not in p.missing

        # Friday 17:30: 刘洋 gets his team's card (his reports and himself, as the department is
        # counted on HR's card: 5 people, 1 skipped); 陈杰, above him, sees that 刘洋 did not fill in;
        # HR gets the company card + XLSX. (Changed on purpose: the manager used to be left out.)
        clock.set(at("2026-12-04 17:30"))
        sent = await bot.run_job("pulse", at("2026-12-04 17:30"))
        assert sent > 0
        team = await bot.last_card("liuyang", "团队脉搏")
        fields = dict(tuple(f) for f in team["fields"])
        assert fields["填写率"] == "75%（3/4）"
        assert fields["完成率"] == "67%（2/3）"
        assert fields["目标关联度"] == "67%（2/3）"
        assert fields["见证确认率"] == "50%（1/2）"
        assert "本周未填写" not in team["body"]
        ceo = await bot.last_card("chenjie", "团队脉搏")
        assert "刘洋" in ceo["body"].split("本周未填写：")[1]  # told privately, never in a group
        hr = await bot.all_messages("zhoumin")
        assert any(m["kind"] == "card" and "组织脉搏" in m["card"]["title"] for m in hr)
        assert any(m["kind"] == "file" and m["file"]["name"].endswith(".xlsx") for m in hr)
        # Running the pulse again for the same week sends nothing more.
        assert await bot.run_job("pulse", at("2026-12-04 17:35")) == 0


async def test_edits_are_kept_until_the_witness_confirms(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("xujing", "O1-KR1 拜访3家重点医院 @马军")
        await bot.say("xujing", "修改 拜访5家重点医院")
        assert any("拜访3家重点医院 → 拜访5家重点医院" in t for t in await bot.texts("xujing"))
        await bot.say("xujing", "修改 @朱婷")
        assert (await bot.last_card("zhuting", "见证邀请"))["body"].endswith("拜访5家重点医院")
        old_invite = await bot.last_card("majun", "见证邀请")
        assert old_invite["buttons"] == [] and old_invite["result"] == "见证人已更换"
        await bot.say("xujing", "完成")
        await bot.press("zhuting", await bot.last_card("zhuting", "请确认完成"), "确认完成")
        await bot.say("xujing", "修改 拜访6家重点医院")
        assert "见证人已确认完成，不能再修改。" in await bot.texts("xujing")
        async with db.session() as s:
            edits = [(e.field_name, e.old_value, e.new_value) for e in (await s.execute(
                select(ActionEdit).order_by(ActionEdit.id))).scalars()]
        assert edits == [("thing", "拜访3家重点医院", "拜访5家重点医院"), ("witness", "majun", "zhuting")]


async def test_declined_witness_asks_for_another(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("caoyu", "无 完成直播系统压测 @唐凯")
        await bot.press("tangkai", await bot.last_card("tangkai", "见证邀请"), "无法见证")
        assert "唐凯 无法见证“完成直播系统压测”，请 @ 另一位同事作为见证人" in await bot.texts("caoyu")
        await bot.say("caoyu", "@邓超")
        assert (await bot.last_card("dengchao", "见证邀请"))["body"] == "曹宇 邀请你见证本周关键动作：完成直播系统压测"


async def test_missing_parts_are_asked_one_at_a_time(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("hulin", "准备发布会物料清单")
        assert await bot.texts("hulin") == ["请 @ 一位同事作为见证人，例如 @李娜"]
        await bot.say("hulin", "@林芳")
        goal_card = (await bot.new("hulin"))[-1]["card"]
        assert goal_card["title"] == "关联哪个目标？"
        assert goal_card["buttons"][0]["text"].startswith("O1-KR3")  # her department's goal first
        await bot.press("hulin", goal_card, "goal:O1-KR3")
        summary = await bot.last_card("hulin", "已记录本周关键动作")
        assert ("目标", "O1-KR3 新品发布会按期举办") in [tuple(f) for f in summary["fields"]]
        # Oneself as witness and an unknown colleague are refused with a reason.
        await bot.new("linfang")  # (her invitation from 胡琳)
        await bot.say("linfang", "无 写FAQ文档 @林芳")
        assert await bot.texts("linfang") == ["见证人不能是自己，请 @ 一位同事"]
        await bot.say("linfang", "@诸葛亮")
        assert await bot.texts("linfang") == ["没有找到“诸葛亮”，请重新 @ 见证人（可写姓名、拼音或账号）"]
        await bot.say("linfang", "@heping")
        assert (await bot.last_card("heping", "见证邀请"))["body"] == "林芳 邀请你见证本周关键动作：写FAQ文档"


async def test_card_answers_can_be_typed(db: Database, tmp_path: Path) -> None:
    """李娜 types 「接受」 and 「确认」 instead of pressing: same outcome as the buttons."""
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("li_na", "确认")
        assert await bot.texts("li_na") == ["现在没有等你回复的卡片。"]
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        await bot.new("wangqiang")
        await bot.say("li_na", "接受")
        assert "李娜 已接受见证：完成2份临床评价报告初稿" in await bot.texts("wangqiang")
        assert (await bot.last_card("li_na", "见证邀请"))["result"].startswith("已接受见证")
        await bot.say("wangqiang", "完成")
        await bot.say("li_na", "确认完成")
        assert "李娜 确认你已完成：完成2份临床评价报告初稿 👍" in await bot.texts("wangqiang")
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
        assert (action.status, action.witness_state) == ("confirmed", "accepted")
        # Nothing is left to answer: a second 「确认」 changes nothing and says so.
        await bot.say("li_na", "确认")
        assert (await bot.texts("li_na"))[-1] == "现在没有等你回复的卡片。"
async def test_an_edit_naming_oneself_as_witness_changes_nothing(db: Database, tmp_path: Path) -> None:
    """徐静 tries "修改 新内容 @自己": the witness is refused, and the new text is not applied either."""
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        await bot.say("xujing", "O1-KR1 拜访3家重点医院 @马军")
        await bot.texts("xujing")
        await bot.say("xujing", "修改 拜访9家重点医院 @徐静")
        said = "\n".join(await bot.texts("xujing"))
        assert "不能" in said and "本周关键动作未作修改。" in said and "→" not in said
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
            edits = (await s.execute(select(func.count()).select_from(ActionEdit))).scalar_one()
        assert (action.thing, action.witness_userid, edits) == ("拜访3家重点医院", "majun", 0)
        assert await bot.texts("majun") == [] or all("拜访9家" not in t for t in await bot.texts("majun"))
