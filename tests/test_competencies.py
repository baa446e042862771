"""Competencies in chat, on SQLite and PostgreSQL: a round opens on the configured day, 王强 assesses
himself and 刘洋 assesses him blind, both see the reveal, the L1/L3 gap calls one calibration to the
person, the manager and HR, its outcome is recorded, and two low periods bring the learning card
with opted-in success cases only."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.demo import DATA
from store import competencies as comp
from cards.brief_html import render_html
from store.brief import build_brief
from store.db import Database
from store.export import export_weekly
from store.models import AuditLog
from tests.harness import ConsoleBot, at, console_bot

TAGS = {"tags": [
    {"name": "客户需求深挖", "competency": "C03"}, {"name": "专业攻关", "competency": "C07"},
    {"name": "主动补位"}, {"name": "响应不及时", "polarity": "改进"}]}
ROUND = {"review_periods": [{"period": "2026Q4", "opens": "2026-12-14"}], "feedback": TAGS}
FOCUS = "department,codes\n康骨医疗,C01;C02;C10\n康骨医疗/研发中心/注册部,C03;C06;C07\n"


async def load_library(db: Database, tmp_path: Path) -> None:
    lib = await comp.import_library(db, "demo", DATA / "competencies.csv")
    assert lib.ok and len(lib.added) == 12, lib.errors
    focus = tmp_path / "focus.csv"
    focus.write_text(FOCUS, encoding="utf-8")
    assert (await comp.import_focus(db, "demo", focus)).ok
    assert (await comp.import_learning(db, "demo", DATA / "learning.csv")).ok


async def seed_previous_period(db: Database, subject: str, manager: str, levels: dict[str, int]) -> None:
    """2026Q3, submitted on both sides, as the previous round left it."""
    async with db.transaction() as s:
        for side, who in ((comp.SELF, subject), (comp.MANAGER, manager)):
            a = comp.Assessment(tenant="demo", period="2026Q3", subject_userid=subject, assessor_userid=who, side=side,
                                state=comp.SUBMITTED, codes=";".join(levels), created_at=at("2026-09-20 10:00"),
                                submitted_at=at("2026-09-21 10:00"))
            s.add(a)
            await s.flush()
            assert a.id is not None
            for code, level in levels.items():
                s.add(comp.Rating(tenant="demo", assessment_id=a.id, code=code, level=level, evidence=[],
                                  at=at("2026-09-21 10:00")))


async def press_level(bot: ConsoleBot, userid: str, level: int) -> dict[str, Any]:
    card = [c for c in await cards(bot, userid, " · C") if not c["result"]][-1]
    assert "L1" in card["body"] and "L3" in card["body"], card
    await bot.press(userid, card, next(b["text"] for b in card["buttons"] if b["text"].startswith(f"L{level}")))
    return await bot.last_card(userid, "附上证据")


async def next_step(bot: ConsoleBot, userid: str) -> None:
    await bot.press(userid, await bot.last_card(userid, "附上证据"), "下一项")


async def cards(bot: ConsoleBot, userid: str, title: str) -> list[dict[str, Any]]:
    return [m["card"] for m in await bot.all_messages(userid) if m["kind"] == "card" and title in m["card"]["title"]]


async def test_a_round_from_opening_to_calibration_and_learning(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    async with console_bot(db, clock, tmp_path, **ROUND) as bot:
        await load_library(db, tmp_path)
        # Evidence accumulates from day one: feedback tagged with a competency's tag.
        await bot.say("liuyang", "反馈 @王强 #客户需求深挖 客户级 周二帮客户梳理出三个隐性需求并写进方案")
        await bot.say("liuyang", "反馈 @李娜 #专业攻关 团队级 两天内查清了注册检验报告的数据偏差")
        await bot.say("liuyang", "反馈 @赵磊 #专业攻关 团队级 连夜改完了临床评价报告的引用格式")
        await bot.say("li_na", "案例授权 同意")
        assert "已同意" in (await bot.texts("li_na"))[-1]
        await seed_previous_period(db, "wangqiang", "liuyang", {"C03": 2, "C06": 2, "C07": 1})

        # The round opens on the configured day, not before; once per person.
        assert await bot.run_job("competency_round", at("2026-12-11 09:00")) == 0
        clock.set(at("2026-12-14 09:00"))
        assert await bot.run_job("competency_round", at("2026-12-14 09:00")) > 0
        assert await bot.run_job("competency_round", at("2026-12-14 09:05")) == 0
        invite = await bot.last_card("wangqiang", "2026Q4 能力自评")
        assert "C03、C06、C07" in invite["body"]
        boss_invite = await bot.last_card("liuyang", "2026Q4 能力评估：王强")

        # 王强: C03 → L3, with the tagged feedback as evidence.
        await bot.press("wangqiang", invite, "开始")
        anchor = await bot.last_card("wangqiang", "C03")
        assert "能复述客户原话" in anchor["body"] and "能设计需求验证话术" in anchor["body"]
        evidence = await press_level(bot, "wangqiang", 3)
        assert "附上证据" in evidence["title"] and "L3 至少要一条证据" in evidence["body"]
        # 下一项 without evidence: refused with what to attach; nothing moves on.
        await bot.new("wangqiang")
        await bot.press("wangqiang", evidence, "下一项")
        assert any("L3 需要至少一条证据" in t for t in await bot.texts("wangqiang"))
        await bot.press("wangqiang", evidence, next(b["text"] for b in evidence["buttons"] if "#客户需求深挖" in b["text"]))
        attached = await bot.last_card("wangqiang", "附上证据")
        assert "已附：#客户需求深挖" in attached["body"]
        await bot.press("wangqiang", attached, "下一项")
        # A command in the middle puts the draft aside; 继续 asks the same question again.
        await bot.say("wangqiang", "本周")
        assert any("已暂停能力评估" in t for t in await bot.texts("wangqiang"))
        await bot.say("wangqiang", "继续")
        assert not (await bot.last_card("wangqiang", "C06"))["result"]
        await bot.say("wangqiang", "谢谢😊")  # not an answer: said so, nothing changes
        assert any("L1 / L2 / L3" in t for t in await bot.texts("wangqiang"))
        await bot.say("wangqiang", "Ｌ２")  # typed, full-width
        await bot.say("wangqiang", "下一项")
        await press_level(bot, "wangqiang", 1)
        await next_step(bot, "wangqiang")
        submit = await bot.last_card("wangqiang", "确认提交")
        assert "C03 客户需求洞察 L3" in submit["body"] and "C07 专业能力 L1" in submit["body"]
        await bot.press("wangqiang", submit, "提交")
        assert any("主管提交后" in t for t in await bot.texts("wangqiang"))
        # Pressing the answered card again (a double click) changes nothing; an older card says it was answered.
        await bot.press("wangqiang", submit, "提交")
        assert await bot.texts("wangqiang") == []
        await bot.press("wangqiang", anchor, next(b["text"] for b in anchor["buttons"] if b["text"].startswith("L1")))
        assert await bot.texts("wangqiang") == ["这张卡片已经处理过了。"]

        # Blind: nothing of 王强's levels reaches 刘洋 before he submits.
        seen = " ".join(m.get("text", "") + str(m.get("card", "")) for m in await bot.all_messages("liuyang"))
        assert "自评 L" not in seen and "C03 客户需求洞察 L3" not in seen
        async with db.session() as s:  # nor through the brief
            early = await build_brief(s, "demo", "wangqiang", "2026Q4", now=clock.now(), tz=at("2026-12-14 00:00").tzinfo)
        assert early.competencies == [] and "本期没有双方都已提交的能力评估" in render_html(early)
        # 李娜 cannot press 刘洋's card.
        await bot.new("li_na")
        await bot.press("li_na", boss_invite, "开始")
        assert await bot.texts("li_na") == ["这张卡片不是发给你的。"] and await cards(bot, "li_na", "C03") == []

        # 刘洋 assesses 王强: C03 L1, C06 L2, C07 L1.
        await bot.press("liuyang", boss_invite, "开始")
        await press_level(bot, "liuyang", 1)
        await next_step(bot, "liuyang")
        await press_level(bot, "liuyang", 2)
        await next_step(bot, "liuyang")
        await press_level(bot, "liuyang", 1)
        await next_step(bot, "liuyang")
        await bot.press("liuyang", await bot.last_card("liuyang", "确认提交"), "提交")

        # The reveal reaches both, side by side.
        for who in ("wangqiang", "liuyang"):
            reveal = await bot.last_card(who, "自评与主管评估")
            assert "C03 客户需求洞察：自评 L3 · 主管 L1 ⚠" in reveal["body"]
            assert "C06 问题解决：自评 L2 · 主管 L2" in reveal["body"]
        # One calibration card each to 王强, 刘洋 and HR (周敏, 何欣), with anchors and the evidence.
        for who in ("wangqiang", "liuyang", "zhoumin", "hexin"):
            got = await cards(bot, who, "对齐会：王强 2026Q4")
            assert len(got) == 1, (who, got)
            assert "能设计需求验证话术" in got[0]["body"] and "能复述客户原话" in got[0]["body"]
            assert "#客户需求深挖" in got[0]["body"]
        assert await cards(bot, "li_na", "对齐会") == []
        # Someone else cannot record the outcome.
        await bot.say("li_na", "校准 @王强 C03 L2 已当面对齐")
        assert "只有 王强 的主管或 HR" in (await bot.texts("li_na"))[-1]
        # No learning card yet: the level that counts is known only after the meeting.
        assert await cards(bot, "wangqiang", "成长建议") == []

        await bot.new("liuyang")
        await bot.say("liuyang", "校准 @王强 C03 L2 已当面对齐")
        told = await bot.texts("liuyang")
        assert told[0] == "已记录：王强 C03 对齐为 L2（已当面对齐）"
        assert any("对齐会已完成" in t for t in await bot.texts("wangqiang"))
        async with db.session() as s:
            agreed = await comp.agreed(s, "demo", "2026Q4", "wangqiang")
            assert agreed["C03"].level == 2 and agreed["C03"].by_userid == "liuyang"
            assert agreed["C03"].note == "已当面对齐"
            actions = [a.action for a in (await s.execute(select(AuditLog).where(
                AuditLog.tenant == "demo", AuditLog.subject == "wangqiang"))).scalars()]
        for step in ("competency_submit", "competency_reveal", "calibration_open", "calibration_agreed",
                     "learning_card"):
            assert step in actions, (step, actions)

        # The brief shows the three levels and links each evidence record.
        await bot.say("liuyang", "简报 @王强 2026Q4")
        files = [m for m in await bot.all_messages("liuyang") if m["kind"] == "file"]
        page = (await bot.client.get(f"/console/api/files/{files[-1]['seq']}",
                                     params={"tenant": "demo", "userid": "liuyang"})).status
        assert page == 200
        async with db.session() as s:
            brief = await build_brief(s, "demo", "wangqiang", "2026Q4", now=clock.now(), tz=at("2026-12-14 00:00").tzinfo)
        c03 = next(c for c in brief.competencies if c.code == "C03")
        assert (c03.self_level, c03.manager_level, c03.agreed_level, c03.calibration) == (3, 1, 2, "已对齐")
        html = render_html(brief)
        assert '<td>C03 客户需求洞察</td><td>L3</td><td>L1</td><td>L2</td>' in html
        assert f'href="#{c03.evidence[0]}">#客户需求深挖' in html and f'id="{c03.evidence[0]}"' in html

        # The XLSX export's 能力评估 sheet: self, manager, agreed, evidence count, calibration status.
        out = await export_weekly(db, "demo", ["2026-W51"], tmp_path / "w51.xlsx", now=at("2026-12-18 10:00"))
        sheet = openpyxl.load_workbook(out)["能力评估"]
        rows = {(r[1], r[4]): r for r in sheet.iter_rows(min_row=2, values_only=True)}
        assert rows[("wangqiang", "C03")][6:] == (3, 1, 2, 1, "已对齐")
        assert rows[("wangqiang", "C06")][6:] == (2, 2, None, 0, None)
        assert {u for u, _ in rows} == {"wangqiang"}  # one-sided or absent assessments show nowhere

        # C07 was L1 in 2026Q3 and is L1 now: the learning card, with 李娜's case (she opted in) and
        # not 赵磊's (he did not), and the manager hears of it.
        learn = await bot.last_card("wangqiang", "C07 专业能力：成长建议")
        assert "李娜" in learn["body"] and "注册检验报告" in learn["body"]
        assert "赵磊" not in learn["body"]
        assert any("连续两期低于 L2" in t for t in told)
        await bot.new("wangqiang")
        assert "注册法规要点" in learn["body"] and "带新人" in learn["body"]
        await bot.press("wangqiang", learn, "有用1")
        assert "已记录" in (await bot.texts("wangqiang"))[-1]


async def test_bad_presses_and_l3_without_records(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-14 10:00"))
    async with console_bot(db, clock, tmp_path, **ROUND) as bot:
        await load_library(db, tmp_path)
        # 赵磊 has no records this period: an L3 is refused with what would back it.
        await bot.say("zhaolei", "自评")
        anchor = await bot.last_card("zhaolei", "C03")
        await bot.new("zhaolei")
        await bot.press("zhaolei", anchor, next(b["text"] for b in anchor["buttons"] if b["text"].startswith("L3")))
        assert "还没有记录" in (await bot.texts("zhaolei"))[-1]
        async with db.session() as s:
            a = await comp.assessment(s, "demo", "2026Q4", "zhaolei", comp.SELF)
            assert a is not None and a.id is not None
            assert await comp.ratings(s, "demo", a.id) == {}
        # Someone else's card: refused, nothing rated.
        await bot.new("li_na")
        await bot.press("li_na", anchor, next(b["text"] for b in anchor["buttons"] if b["text"].startswith("L2")))
        assert await bot.texts("li_na") == ["这张卡片不是发给你的。"]
        async with db.session() as s:
            assert await comp.ratings(s, "demo", a.id) == {}
        # 评估 by someone who is not the reviewer is refused; an unknown person is named.
        await bot.say("zhaolei", "评估 @王强")
        assert "只有 王强 的直属主管" in (await bot.texts("zhaolei"))[-1]
        await bot.say("liuyang", "评估 @不存在的人")
        assert "不存在的人" in (await bot.texts("liuyang"))[-1]
        # An expired anchor card changes nothing.
        clock.set(at("2026-12-30 10:00"))
        await bot.new("zhaolei")
        await bot.press("zhaolei", anchor, next(b["text"] for b in anchor["buttons"] if b["text"].startswith("L2")))
        assert await bot.texts("zhaolei") == ["这张卡片已过期。"]
        async with db.session() as s:
            assert await comp.ratings(s, "demo", a.id) == {}


async def test_direction_and_untagged_l3_rules() -> None:
    def pair(self_levels: dict[str, int], boss_levels: dict[str, int],
             evidence: dict[str, list[str]] | None = None) -> comp.Pair:
        now = datetime(2026, 12, 14, tzinfo=at("2026-12-14 00:00").tzinfo)
        mine = comp.Assessment(tenant="t", period="2026Q4", subject_userid="a", assessor_userid="a", side="self",
                               codes=";".join(self_levels), created_at=now)
        boss = comp.Assessment(tenant="t", period="2026Q4", subject_userid="a", assessor_userid="b", side="manager",
                               codes=";".join(boss_levels), created_at=now)
        ev = evidence or {}

        def rows(levels: dict[str, int]) -> dict[str, comp.Rating]:
            return {c: comp.Rating(tenant="t", assessment_id=1, code=c, level=lv, evidence=ev.get(c, []), at=now)
                    for c, lv in levels.items()}
        return comp.Pair(mine, boss, rows(self_levels), rows(boss_levels))

    # Two competencies one level higher is ordinary disagreement; three is a pattern.
    assert comp.calibration_reasons(pair({"A": 2, "B": 2, "C": 2}, {"A": 1, "B": 1, "C": 2}), {}) == []
    three = comp.calibration_reasons(pair({"A": 2, "B": 2, "C": 2}, {"A": 1, "B": 1, "C": 1}), {})
    assert [r["why"] for r in three] == ["direction"] * 3
    # Mixed directions are not systematic.
    assert comp.calibration_reasons(pair({"A": 2, "B": 2, "C": 1}, {"A": 1, "B": 1, "C": 2}), {}) == []
    # An L3 on both sides with only an action as evidence: no feedback tagged to it → calibration.
    untagged = comp.calibration_reasons(pair({"A": 3}, {"A": 3}, {"A": ["action:1"]}), {"A": {"feedback:9"}})
    assert untagged == [{"code": "A", "why": "l3_untagged"}]
    assert comp.calibration_reasons(pair({"A": 3}, {"A": 3}, {"A": ["feedback:9"]}), {"A": {"feedback:9"}}) == []
    # L1 against L3 is the gap.
    assert comp.calibration_reasons(pair({"A": 3}, {"A": 1}, {"A": ["feedback:9"]}), {"A": {"feedback:9"}}) == [
        {"code": "A", "why": "gap2"}]


async def test_calibration_not_held_reminds_once_then_tells_hr(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-14 10:00"))
    async with console_bot(db, clock, tmp_path, **ROUND) as bot:
        async with db.transaction() as s:
            s.add(comp.Calibration(tenant="demo", period="2026Q4", subject_userid="wangqiang", manager_userid="liuyang",
                                   reasons=[{"code": "C03", "why": "gap2"}], opened_at=at("2026-12-14 10:00"),
                                   due_on="2026-12-21"))
        # Due on the 5th working day (Mon 12-21): nothing before or on it.
        assert await bot.run_job("calibration_watch", at("2026-12-21 09:00")) == 0
        assert await bot.run_job("calibration_watch", at("2026-12-22 09:00")) == 2
        assert any("对齐会已过期限" in t for t in await bot.texts("liuyang"))
        assert await bot.run_job("calibration_watch", at("2026-12-23 09:00")) == 0  # one reminder only
        assert await bot.run_job("calibration_watch", at("2026-12-24 09:00")) == 2  # two working days on: HR
        assert any("提醒后仍未开" in t for t in await bot.texts("zhoumin"))
        assert any("提醒后仍未开" in t for t in await bot.texts("hexin"))
        assert await bot.run_job("calibration_watch", at("2026-12-25 09:00")) == 0
        async with db.session() as s:
            row = (await s.execute(select(comp.Calibration))).scalar_one()
        assert row.reminded_at is not None and row.hr_told_at is not None and row.state == "open"


async def test_the_console_shows_hr_the_round_and_suppresses_small_groups(db: Database, tmp_path: Path) -> None:
    from bot.demo import seed_finished_round

    clock = FrozenClock(at("2026-12-04 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await load_library(db, tmp_path)
        await seed_finished_round(db, "demo", "2026Q3", now=clock.now())

        async def view(userid: str) -> dict[str, Any]:
            r = await bot.client.get("/console/api/pulse", params={"tenant": "demo", "userid": userid, "week": "2026-W49"})
            assert r.status == 200, await r.text()
            return await r.json()
        # Four people were rated: under five, so no distribution, for HR …
        assert (await view("zhoumin"))["competencies"] == {"period": "2026Q3", "average": None, "managers": []}
        # … and nothing of it for a manager's or an employee's view.
        assert "competencies" not in await view("liuyang") and "competencies" not in await view("wangqiang")


async def submitted_self(db: Database, userid: str, period: str = "2026Q4") -> None:
    async with db.transaction() as s:
        s.add(comp.Assessment(tenant="demo", period=period, subject_userid=userid, assessor_userid=userid,
                              side=comp.SELF, state=comp.SUBMITTED, codes="C03;C06;C07",
                              created_at=at("2026-12-14 11:00"), submitted_at=at("2026-12-14 11:30")))


async def test_who_has_not_submitted_is_reminded_once_and_the_budget_holds(db: Database, tmp_path: Path) -> None:
    """The round opens Monday 12-14; three working days on (Thursday 12-17, 14:00) whoever has an
    assessment open gets one card with a button to each. 王强 submitted: nothing. 赵磊 had the 09:30
    prompt that day (no action yet: the day's one reminder): his card comes Friday. 孙丽 is on leave.
    刘洋's card names his four reports."""
    clock = FrozenClock(at("2026-12-14 09:00"))
    async with console_bot(db, clock, tmp_path, **ROUND) as bot:
        await load_library(db, tmp_path)
        assert await bot.run_job("competency_round", at("2026-12-14 09:00")) > 0
        await submitted_self(db, "wangqiang")
        clock.set(at("2026-12-14 12:00"))
        await bot.say("li_na", "O1-KR2 整理注册资料目录 @王强")
        await bot.say("liuyang", "O1-KR2 排定注册路径 @李娜")
        await bot.say("sunli", "请假 12-16 至 12-18 年假")
        assert any("12-16" in t for t in await bot.texts("sunli")), await bot.texts("sunli")
        # Not before the third working day; and not before the afternoon slot.
        clock.set(at("2026-12-16 14:00"))
        assert await bot.run_job("competency_nudge", at("2026-12-16 14:00")) == 0
        clock.set(at("2026-12-17 09:30"))
        await bot.run_job("morning_prompt", at("2026-12-17 09:30"))
        for userid in ("wangqiang", "li_na", "zhaolei", "sunli", "liuyang"):
            await bot.new(userid)
        clock.set(at("2026-12-17 14:00"))
        assert await bot.run_job("competency_nudge", at("2026-12-17 14:00")) > 0
        assert await bot.run_job("competency_nudge", at("2026-12-17 14:05")) == 0  # once
        mine = await bot.last_card("li_na", "2026Q4 能力评估还没提交")
        assert "你的自评" in mine["body"] and [b["text"] for b in mine["buttons"]] == ["自评"]
        boss = await bot.last_card("liuyang", "2026Q4 能力评估还没提交")
        assert all(f"{n} 的评估" in boss["body"] for n in ("王强", "李娜", "赵磊", "孙丽")), boss["body"]
        assert "你的自评" in boss["body"]  # 刘洋 has his own self-assessment open too
        assert {"王强", "李娜", "赵磊", "孙丽"} <= {b["text"] for b in boss["buttons"]}
        for userid in ("wangqiang", "zhaolei", "sunli"):
            assert not any("还没提交" in str(m) for m in await bot.new(userid)), userid
        # The button opens the assessment where it stands.
        await bot.press("li_na", mine, "自评")
        assert "L1" in (await bot.last_card("li_na", "C03"))["body"]

        # Friday is the week's last working day: 赵磊's 完成了吗 card is that day's reminder. Monday he
        # records the new week's action first thing, so the morning leaves him alone and the card comes;
        # 李娜 is not reminded twice.
        clock.set(at("2026-12-17 16:00"))
        await bot.say("zhaolei", "O1-KR2 核对注册检验报告 @王强")
        for day in ("2026-12-18", "2026-12-21"):
            if day == "2026-12-21":
                clock.set(at(f"{day} 09:00"))
                await bot.say("zhaolei", "O1-KR2 补齐注册检验资料 @王强")
            clock.set(at(f"{day} 09:30"))
            await bot.run_job("morning_prompt", at(f"{day} 09:30"))
            for userid in ("li_na", "zhaolei"):
                await bot.new(userid)
            clock.set(at(f"{day} 14:00"))
            await bot.run_job("competency_nudge", at(f"{day} 14:00"))
            assert not any("还没提交" in str(m) for m in await bot.new("li_na"))
            nudged = any("还没提交" in str(m) for m in await bot.new("zhaolei"))
            assert nudged == (day == "2026-12-21"), day
        assert "你的自评" in (await bot.last_card("zhaolei", "2026Q4 能力评估还没提交"))["body"]
