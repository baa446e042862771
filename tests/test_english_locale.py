"""A tenant with `locale = "en"` hears English everywhere, on SQLite and PostgreSQL.

Each test walks one conversation for an English-speaking company and then reads every outbox row
sent to it, as stored and as each platform renders it (console and WeCom text, WeCom template_card,
DingTalk markdown): no Chinese character (nor Chinese punctuation) may be left in what the bot wrote. What
people typed and the company's own data (names, departments, goal titles, project names) stay as
they were written, so they are taken out before looking.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.db import Database
from bot.demo import DATA
from cards import dingtalk, wecom
from cards.brief_html import render_html
from cards.brief_records import (ActionRecord, AdjustmentRecord, Brief, CalibrationFigure, CompetencyRecord,
                                 EscalationRecord, FeedbackRecord, LeaveRecord, TaskRecord, TraceLine)
from cards.texts import t
from cards.model import Button, Card, Message, Option, Select
from store import competencies as comp
from store.competencies import Competency
from store.models import Department, Employee, Goal, OutboxMessage, Project, Task
from store.statuses import TaskStatus
from store.tasks import import_tasks
from store.trace import Receivable, ResponseMeasure, TraceRecord, trace_lines
from tests.harness import ConsoleBot, at, console_bot

# Han ideographs, CJK punctuation (。「」、), full-width forms (（）：，) and the 【】 brackets.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")

TAGS = [{"name": "Stepped in", "polarity": "praise"}, {"name": "New approach", "polarity": "praise"},
        {"name": "Slow to respond", "polarity": "improve"}]
ENGLISH = {"locale": "en", "feedback": {"tags": TAGS}}


class Typed:
    """The console bot, remembering what people typed (their words may come back in replies)."""

    def __init__(self, bot: ConsoleBot) -> None:
        self.bot = bot
        self.words: set[str] = set()

    async def say(self, userid: str, text: str) -> None:
        self.words.add(text)
        self.words.update(w.lstrip("@#＠＃") for w in re.split(r"[\s:：]+", text) if w)
        await self.bot.say(userid, text)


def strings(payload: Any) -> Iterator[str]:
    """Every piece of text in an outbox payload (card title, body, fields, buttons, choices, result …),
    keys and identifiers left out."""
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, dict):
        for k, v in payload.items():
            if k not in ("key", "id", "path", "kind", "style", "hint", "broadcast", "multi",
                         "msgtype", "card_type", "task_id", "question_key", "response_code"):
                yield from strings(v)
    elif isinstance(payload, (list, tuple)):
        for v in payload:
            yield from strings(v)


def rendered(payload: dict[str, Any]) -> Iterator[str]:
    """What the platforms show of an outbox payload: the console's and WeCom's text, WeCom's
    template_card and DingTalk's markdown (where a card names the words to type), all in English.

    WeCom clips long texts with "…": a clipped last line that stands whole in the payload or the
    console text is the company's data cut short, already looked at whole, so it is left out."""
    message = Message.from_dict(payload)
    yield message.plain("en")
    whole = "\n".join([message.plain("en"), *strings(payload)])
    platform: list[str] = []
    if message.kind in ("text", "markdown", "card"):
        platform += strings(wecom.render_message(message, "en"))
    if message.card is not None:
        if wecom.is_interactive(message.card):
            platform += strings(wecom.render_card_update(message.card, userid="u", agent_id=1, response_code="c",
                                                         locale="en"))
        platform += strings(dingtalk.card_markdown(Message(kind="card", card=message.card), "en").to_dict())
    for text in platform:
        if text.endswith("…"):
            head, _, last = text[:-1].rpartition("\n")
            text = head if last in whole else text
        yield text


async def data_words(db: Database) -> set[str]:
    """The company's own words: people's names, departments, goal titles, projects and tasks."""
    async with db.session() as s:
        words = set((await s.execute(select(Employee.name))).scalars())
        for dept in (await s.execute(select(Department.name))).scalars():
            words.add(dept)
            words.update(dept.split("/"))
        for emp_dept in (await s.execute(select(Employee.department))).scalars():
            words.add(emp_dept)
            words.update(emp_dept.split("/"))
        words.update((await s.execute(select(Goal.title))).scalars())
        words.update((await s.execute(select(Project.name))).scalars())
        words.update((await s.execute(select(Project.code))).scalars())
        words.update((await s.execute(select(Task.title))).scalars())
        words.update((await s.execute(select(Task.deliverable_template))).scalars())
        for c in (await s.execute(select(Competency))).scalars():  # the library: names and level anchors
            words.update((c.name, c.category, c.l1, c.l2, c.l3))
    return {w for w in words if w}


async def chinese_left(db: Database, typed: Typed) -> list[tuple[str, str]]:
    """(recipient, text) for every outgoing piece of text that still holds a Chinese character
    once the company's data and what people typed are taken out."""
    allowed = sorted((await data_words(db)) | typed.words, key=len, reverse=True)
    found = []
    async with db.session() as s:
        rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.tenant == typed.bot.tenant)
                                .order_by(OutboxMessage.id))).scalars()
        for row in rows:
            for text in [*strings(row.payload), *rendered(row.payload)]:
                rest = text
                for w in allowed:
                    rest = rest.replace(w, "")
                if CJK.search(rest):
                    found.append((row.userid, text))
    return found


async def assert_english(db: Database, typed: Typed) -> None:
    left = await chinese_left(db, typed)
    assert not left, "Chinese left in English messages:\n" + "\n".join(f"{u}: {t!r}" for u, t in left)


async def sent(db: Database) -> int:
    async with db.session() as s:
        return len(list((await s.execute(select(OutboxMessage.id))).scalars()))


async def test_the_weekly_action_is_asked_answered_and_witnessed_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-07 09:30"))
    async with console_bot(db, clock, tmp_path, **ENGLISH) as bot:
        you = Typed(bot)
        assert await bot.run_job("morning_prompt", at("2026-12-07 09:30")) > 0
        prompt = (await bot.new("wangqiang"))[-1]["card"]
        assert prompt["title"] == "This week's key action"

        await you.say("wangqiang", "hello")
        await you.say("wangqiang", "O1-KR2 Finish two clinical evaluation drafts and file them @李娜")  # too long
        await you.say("wangqiang", "O1-KR2 Finish 2 drafts @李娜")
        summary = await bot.last_card("wangqiang", "Key action recorded")
        assert ("Witness", "李娜") in [tuple(f) for f in summary["fields"]]
        invite = await bot.last_card("li_na", "Witness request")
        await bot.press("li_na", invite, "Accept")
        await you.say("wangqiang", "status")
        await you.say("wangqiang", "goals")
        await you.say("wangqiang", "help")
        clock.set(at("2026-12-07 16:00"))
        await you.say("wangqiang", "done")
        await bot.press("li_na", await bot.last_card("li_na", "Please confirm"), "Confirm")
        await you.say("zhaolei", "O1 Send test report @lina")  # two people match "lina"
        await you.say("zhaolei", "edit")
        # The last working day of the week asks those who have not said done.
        clock.set(at("2026-12-11 16:00"))
        await bot.run_job("morning_prompt", at("2026-12-11 16:00"))
        assert await sent(db) > 10
        await assert_english(db, you)


async def test_leave_and_skip_are_answered_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-07 10:00"))
    async with console_bot(db, clock, tmp_path, **ENGLISH) as bot:
        you = Typed(bot)
        await you.say("wangqiang", "请假 12-08 至 12-09 年假")
        await you.say("li_na", "请假 11-02 至 11-03")  # in the past
        await you.say("zhaolei", "请假 明天到后天")
        await you.say("sunli", "本周跳过 出差")
        await you.say("sunli", "thanks")
        assert await sent(db) >= 5
        await assert_english(db, you)


async def test_feedback_is_given_and_received_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 21:30"))
    async with console_bot(db, clock, tmp_path, **ENGLISH) as bot:
        you = Typed(bot)
        await you.say("liuyang", "feedback @王强 #Stepped in 客户级 Fixed a customer's returns bug on Tuesday night")
        await you.say("liuyang", "feedback @李娜 #New approach Ran the registration tests in parallel, two weeks saved")
        impact = [m["card"] for m in await bot.all_messages("liuyang") if m["kind"] == "card"][-1]
        await bot.press("liuyang", impact, impact["buttons"][0]["text"])
        await you.say("liuyang", "feedback @赵磊 #whatever Shared the registration file template with the team")
        await you.say("liuyang", "feedback @孙丽 good job")  # vague
        await you.say("wangqiang", "my feedback")
        await you.say("liuyang", "brief @王强 2026Q4")
        assert any(m["kind"] == "file" for m in await bot.all_messages("liuyang"))
        await you.say("liuyang", "brief @lina")  # two people match
        assert await sent(db) >= 5
        await assert_english(db, you)


HEADER = "project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"


async def test_tasks_are_created_updated_and_escalated_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path, **ENGLISH,
                           tasks={"remind_before_working_hours": 0, "remind_at_due": False}) as bot:
        you = Typed(bot)
        await you.say("luoyi", "task Launch T13 Purchase @宋佳 12-02 18:00")  # not allowed
        await you.say("guoqing", "task Launch T13 @nobody")  # parts missing
        await you.say("guoqing", "task Launch T13 Purchase @宋佳 @魏薇 12-02 18:00 deliverable:Purchase order")
        card = await bot.last_card("songjia", "T13")
        await bot.press("songjia", card, card["buttons"][0]["text"])
        await you.say("guoqing", "task T13 Purchase parts 12-03 18:00 reason: the supplier is late")
        await you.say("guoqing", "task T13 12-01 25:00")  # no such time
        await you.say("songjia", "task")
        await you.say("hulin", "progress T13 doing")
        await you.say("songjia", "progress T13 blocked")
        await you.say("songjia", "Waiting for the supplier's quote")
        await you.say("songjia", "progress T13 done")
        await you.say("songjia", "PO-2026-118 arrives 12-05")

        csv = tmp_path / "tasks.csv"
        csv.write_text(HEADER + "Launch,Product launch,guoqing,T12,Load test,luoyi,,2026-12-01 12:00,Report\n",
                       encoding="utf-8")
        assert (await import_tasks(db, "demo", csv, now=clock.now())).ok
        await you.say("guoqing", "task")  # the PMO's list: the owner and the deliverable's light beside each
        await bot.run_job("overdue_scan", at("2026-11-30 10:00"))
        clock.set(at("2026-12-01 14:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 14:00")) >= 2
        escalation = await bot.last_card("liangbo", "T12")
        await bot.press("liangbo", escalation, escalation["buttons"][0]["text"])  # nudge
        await bot.press("guoqing", await bot.last_card("guoqing", "T12"), escalation["buttons"][2]["text"])  # view
        await you.say("luoyi", "progress T12 doing")
        clock.set(at("2026-12-02 09:00"))
        await bot.run_job("overdue_scan", at("2026-12-02 09:00"))
        csv.write_text(HEADER + "Launch,Product launch,guoqing,T12,Load test,luoyi,,2026-12-04 12:00,Report\n",
                       encoding="utf-8")
        assert (await import_tasks(db, "demo", csv, now=clock.now())).ok  # a new due time: in T12's history
        await you.say("guoqing", "task T12")
        assert await sent(db) > 10
        await assert_english(db, you)


async def test_the_friday_pulse_is_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path, **ENGLISH) as bot:
        you = Typed(bot)
        await you.say("wangqiang", "O1-KR2 Finish 2 drafts @李娜")
        await you.say("li_na", "none Tidy the folder @赵磊")
        await you.say("sunli", "本周跳过 trip")
        await you.say("wangqiang", "done")
        clock.set(at("2026-12-04 17:30"))
        assert await bot.run_job("pulse", at("2026-12-04 17:30")) > 0
        assert await bot.last_card("zhoumin")
        await assert_english(db, you)


async def test_goal_changes_are_proposed_and_approved_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-08 10:00"))
    async with console_bot(db, clock, tmp_path, **ENGLISH) as bot:
        you = Typed(bot)
        await you.say("zhaolei", "O1-KR2 Send test report @李娜")
        await you.say("wangqiang", "调整 O1-KR2 权重 40%→28% 原因:政策 policy changed")  # not his to change
        await you.say("liuyang", "调整 O1-KR2 权重 -30% 原因:政策 policy changed")
        await you.say("liuyang", "新增 O1-KR5 Alternative plan progress 上级 O1 权重 10% 部门 注册部 原因:政策 事件:12-08")
        card = await bot.last_card("chenjie", "O1-KR2")
        await bot.press("liuyang", card, card["buttons"][0]["text"])  # not his card
        clock.set(at("2026-12-09 09:00"))
        await bot.press("chenjie", card, card["buttons"][0]["text"])
        await you.say("chenjie", "同意")
        await you.say("huangyan", "调整 O1-KR1 标题 First orders of 320 sets 原因:市场 channel feedback")
        await bot.press("chenjie", await bot.last_card("chenjie", "O1-KR1"), card["buttons"][1]["text"])
        assert await sent(db) > 5
        await assert_english(db, you)


async def test_a_competency_self_assessment_is_in_english(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-14 09:00"))
    round_ = {"review_periods": [{"period": "2026Q4", "opens": "2026-12-14"}],
              "feedback": {"tags": [{"name": "Customer insight", "competency": "C03"}]}}
    async with console_bot(db, clock, tmp_path, **{**ENGLISH, **round_}) as bot:
        you = Typed(bot)
        assert (await comp.import_library(db, "demo", DATA / "competencies.csv")).ok
        await you.say("liuyang", "feedback @王强 #Customer insight customer Found three hidden needs in a client call")
        assert await bot.run_job("competency_round", at("2026-12-14 09:00")) > 0
        invite = [m["card"] for m in await bot.all_messages("wangqiang") if m["kind"] == "card"][-1]
        await bot.press("wangqiang", invite, invite["buttons"][0]["text"])  # start
        for _ in range(3):
            level = [m["card"] for m in await bot.all_messages("wangqiang")
                     if m["kind"] == "card" and not m["card"]["result"] and m["card"]["buttons"]][-1]
            await bot.press("wangqiang", level, level["buttons"][1]["text"])  # L2
            step = [m["card"] for m in await bot.all_messages("wangqiang")
                    if m["kind"] == "card" and not m["card"]["result"] and m["card"]["buttons"]][-1]
            await bot.press("wangqiang", step, step["buttons"][-1]["text"])  # next
        await you.say("wangqiang", "thanks")
        await you.say("li_na", "share-cases yes")
        assert await sent(db) > 5
        await assert_english(db, you)


def test_the_platforms_punctuate_an_english_card_in_english() -> None:
    """The words a card does not say itself (submit, 'reply', the field colon, the cut mark) follow the locale."""
    pick = Card(title="Which one?", fields=[("Project", "Launch")],
                selects=[Select("who", "Person", (Option("a", "Li Na"), Option("b", "Li Nan")))])
    assert wecom.render_template_card(pick, locale="en")["submit_button"]["text"] == "Submit"
    assert wecom.render_template_card(pick)["submit_button"]["text"] == "提交"
    assert pick.as_text("en").splitlines()[:3] == ["== Which one? ==", "Project: Launch", "Person: Li Na / Li Nan"]
    assert pick.as_text().splitlines()[:2] == ["【Which one?】", "Project：Launch"]
    ask = Message(kind="card", card=Card(title="Task", buttons=[Button("done", "Done")]))
    assert dingtalk.card_markdown(ask, "en").text.endswith('Reply "Done"')
    assert dingtalk.card_markdown(ask).text.endswith("回复 「Done」")
    cut = wecom.render_text("x" * 3000, "en")["text"]["content"]
    assert cut.endswith(wecom.truncated_mark("en")) and not CJK.search(cut)


# -- the fact brief document ------------------------------------------------------------------

def sample_brief(locale: str) -> Brief:
    """A brief with a record in every section, its data in Chinese as a Chinese company writes it; the
    labels the store writes into the records are in `locale`, as build_brief writes them."""
    tz = ZoneInfo("Asia/Shanghai")

    def when(s: str) -> datetime:
        return datetime.fromisoformat(s).replace(tzinfo=tz)

    return Brief(
        tenant="demo", userid="wangqiang", name="王强", department="产品中心/注册部", period="2026Q4",
        first=date(2026, 10, 1), last=date(2026, 12, 31), as_of=date(2026, 12, 14),
        generated_at=when("2026-12-14 09:30"), tz=tz, weeks=["2026-W40", "2026-W41", "2026-W42", "2026-W43"],
        skipped_weeks=["2026-W42"],
        actions=[ActionRecord(1, "2026-W40", "O1-KR2", "完成临床评价报告初稿", "李娜",
                              t(locale, "action.shown.confirmed"), True, True),
                 ActionRecord(2, "2026-W41", "", "整理注册资料目录", "赵磊", t(locale, "action.shown.not_done"),
                              False, False)],
        leaves=[LeaveRecord(3, date(2026, 10, 12), date(2026, 10, 16), "年假")],
        goals={"O1-KR2": "取得注册证"},
        feedback=[FeedbackRecord(4, date(2026, 10, 9), "刘洋", "主动补位", "praise", "customer", "周二晚修好了退货问题",
                                 t(locale, "brief.rec.ref.action", week="2026-W40")),
                  FeedbackRecord(5, date(2026, 10, 20), "陈杰", "响应慢", "improve", "process", "回复客户慢了两天",
                                 t(locale, "brief.rec.ref.task", code="T1"))],
        adjustments=[AdjustmentRecord(6, "O1-KR2", date(2026, 11, 10), "周敏", "weight", "40", "50", "政策", "集采",
                                      event_date=date(2026, 11, 3), approver="陈杰", counted=True),
                     AdjustmentRecord(7, "O1-KR2", date(2026, 12, 1), "周敏", "title", "旧名", "", "市场", "")],
        tasks=[TaskRecord(8, "T1", "样品送检", when("2026-11-15 18:00"), when("2026-11-14 17:00"),
                          TaskStatus.DONE.label(locale), "on_time"),
               TaskRecord(9, "T2", "发补答复", when("2026-12-10 18:00"), None, TaskStatus.DOING.label(locale), "overdue")],
        escalations=[EscalationRecord(10, "T2", 1, 1, when("2026-12-11 09:00"), None)],
        trace=[TraceLine(11, date(2026, 11, 2), "dingtalk", "合同审批 HT-001", "https://example.com/a", "receivable",
                         t(locale, "brief.rec.money", customer="华东医院", amount="12,000.00", due="2026-12-30")),
               TraceLine(12, date(2026, 11, 5), "wecom", "偏差调查", "sp:123", "response",
                         t(locale, "brief.rec.response", hours="3", sla="8") + t(locale, "brief.rec.response.on_time"))],
        response_rate=(1, 1),
        competencies=[CompetencyRecord("C03", "客户洞察", 2, 3, 3, ["a1", "f4", "t8"], t(locale, "brief.rec.cal.agreed")),
                      CompetencyRecord("C05", "团队协作", 3, None, None, [], "")],
        calibration=CalibrationFigure(20, 3, 6.5), locale=locale)


# The company's words in sample_brief: names, department, goal, actions, tags, feedback, reasons, tasks …
SAMPLE_DATA = ("王强", "产品中心/注册部", "李娜", "赵磊", "刘洋", "陈杰", "周敏", "完成临床评价报告初稿", "整理注册资料目录",
               "年假", "取得注册证", "主动补位", "响应慢", "周二晚修好了退货问题", "回复客户慢了两天", "政策", "集采", "旧名",
               "市场", "样品送检", "发补答复", "合同审批 HT-001", "华东医院", "偏差调查", "客户洞察", "团队协作")


def empty_brief(locale: str) -> Brief:
    """A quarter with nothing in it: every section says so."""
    return replace(sample_brief(locale), userid="sunli", name="孙丽", weeks=["2026-W40", "2026-W41"],
                   skipped_weeks=[], actions=[], leaves=[], goals={}, feedback=[], adjustments=[], tasks=[],
                   escalations=[], trace=[], response_rate=None, competencies=[], calibration=None)


def test_a_chinese_tenants_brief_document_is_what_it_was() -> None:
    """Byte for byte the pages the Chinese-only renderer wrote for the same records (tests/data/brief_zh*.html
    were written by it before the texts moved to the catalogue): every section full, and every section empty."""
    data = Path(__file__).parent / "data"
    assert render_html(empty_brief("zh")) == (data / "brief_zh_empty.html").read_text(encoding="utf-8")
    golden = (data / "brief_zh.html").read_text(encoding="utf-8")
    page = render_html(sample_brief("zh"))
    assert page == golden
    assert '<html lang="zh-CN">' in page and "<h2 id=\"figures\">概览</h2>" in page and "未填写的周：2026-W43" in page


def test_an_english_tenants_brief_document_has_every_section_in_english() -> None:
    page = render_html(sample_brief("en"))
    assert '<html lang="en">' in page
    for heading in ("Overview", "Weekly key actions", "Goals served", "Micro-feedback (by tag and impact)",
                    "Goal adjustments", "Cross-functional tasks and escalations",
                    "Records: receivables and risk response", "Competency assessment"):
        assert f">{heading}</h2>" in page
    assert "Weight: 40 → 50 (集采)" in page and "Title: 旧名 → —" in page
    assert "Weeks not filled: 2026-W43" in page and "Risk responses on time: 1/1 (100%)" in page
    assert "15% (3/20), event → approval median 6.5 days" in page
    assert "#主动补位 (Recognition) · 1" in page and "<b>Customer</b> · 1" in page
    empty = render_html(empty_brief("en"))
    assert "No task fell due in the period." in empty and "Weeks not filled: 2026-W40, 2026-W41" in empty
    for rest in (page, empty):
        for word in sorted(SAMPLE_DATA + ("孙丽",), key=len, reverse=True):
            rest = rest.replace(word, "")
        assert not CJK.search(rest), CJK.findall(rest)


async def test_an_english_tenants_brief_document_has_no_chinese_left(db: Database, tmp_path: Path) -> None:
    """王强's quarter for an English-speaking company: his action witnessed, feedback, a goal change, an
    overdue task escalated — then 刘洋 asks for his brief and reads the HTML file the bot sent."""
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path, **ENGLISH,
                           tasks={"remind_before_working_hours": 0, "remind_at_due": False}) as bot:
        you = Typed(bot)
        csv = tmp_path / "tasks.csv"
        csv.write_text(HEADER + "Launch,Product launch,guoqing,T12,Load test,wangqiang,,2026-12-01 12:00,Report\n",
                       encoding="utf-8")
        assert (await import_tasks(db, "demo", csv, now=clock.now())).ok
        clock.set(at("2026-12-01 14:00"))
        assert await bot.run_job("overdue_scan", at("2026-12-01 14:00")) >= 1
        clock.set(at("2026-12-07 09:30"))
        await you.say("wangqiang", "O1-KR2 Finish 2 drafts @李娜")
        await bot.press("li_na", await bot.last_card("li_na", "Witness request"), "Accept")
        await you.say("wangqiang", "done")
        await bot.press("li_na", await bot.last_card("li_na", "Please confirm"), "Confirm")
        await you.say("liuyang", "feedback @王强 #Stepped in Fixed a customer's returns bug on Tuesday night")
        impact = await bot.last_card("liuyang", "Feedback · impact?")
        await bot.press("liuyang", impact, impact["buttons"][0]["text"])  # customer
        await you.say("liuyang", "调整 O1-KR2 权重 -30% 原因:政策 policy changed")
        clock.set(at("2026-12-08 09:00"))
        await bot.press("chenjie", await bot.last_card("chenjie", "O1-KR2"),
                        (await bot.last_card("chenjie", "O1-KR2"))["buttons"][0]["text"])
        clock.set(at("2026-12-09 10:00"))
        await you.say("liuyang", "brief @王强 2026Q4")

        files = [m for m in await bot.all_messages("liuyang") if m["kind"] == "file"]
        assert [f["file"]["name"] for f in files] == ["fact-brief-王强-2026Q4.html"]
        r = await bot.client.get(files[-1]["file"]["url"])
        assert r.status == 200
        page = await r.text()
        assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
        assert "<title>Fact brief · 王强 · 2026Q4</title>" in page
        # Every section has its records: the action, the feedback, the adjustment and the escalated task.
        assert "Finish 2 drafts" in page and "Fixed a customer&#x27;s returns bug" not in page
        assert "Fixed a customer's returns bug on Tuesday night" in page
        assert "#Stepped in (Recognition) · 1" in page and "<b>Customer</b> · 1" in page
        assert "Weight: " in page and "Load test" in page and "<td>L1</td>" in page
        assert ">confirmed<" in page and ">Overdue<" in page
        allowed = sorted((await data_words(db)) | you.words, key=len, reverse=True)
        rest = page
        for w in allowed:
            rest = rest.replace(w, "")
        left = sorted({line for line in rest.splitlines() if CJK.search(line)})
        assert not left, "Chinese left in the English brief:\n" + "\n".join(left)
        await assert_english(db, you)


async def test_the_labels_the_store_writes_into_a_brief_follow_the_locale(db: Database) -> None:
    """A contract's receivable and a deviation answered in time, as the brief's trace lines tell them:
    in English for an English tenant, and in the old Chinese words for a Chinese one."""
    when = at("2026-11-02 10:00")
    async with db.transaction() as s:
        s.add(TraceRecord(tenant="demo", userid="wangqiang", event_id=1, day="2026-11-02", occurred_at=when,
                          source="dingtalk", title="Contract HT-001", link="https://example.com/a", effect="receivable"))
        s.add(Receivable(tenant="demo", ref="dingtalk:HT-001", owner="wangqiang", customer="华东医院",
                         amount_cents=1_200_000, due=date(2026, 12, 30), event_id=1, created_at=when))
        s.add(TraceRecord(tenant="demo", userid="wangqiang", event_id=2, day="2026-11-05", occurred_at=when,
                          source="wecom", title="Deviation", link="sp:123", effect="response"))
        s.add(ResponseMeasure(tenant="demo", source="wecom", task_ref="sp:123", userid="wangqiang", started_at=when,
                              finished_at=at("2026-11-02 13:00"), working_hours=3, sla_hours=8, on_time=True,
                              start_event_id=2))
    async with db.session() as s:
        en, rate = await trace_lines(s, "demo", "wangqiang", date(2026, 10, 1), date(2026, 12, 31), "en")
        zh, _ = await trace_lines(s, "demo", "wangqiang", date(2026, 10, 1), date(2026, 12, 31))
    assert [x.detail for x in en] == ["Customer 华东医院 | ¥12,000.00 | Due 2026-12-30",
                                      "Answered in 3 working hours / agreed 8 (on time)"] and rate == (1, 1)
    assert [x.detail for x in zh] == ["客户 华东医院｜¥12,000.00｜回款日 2026-12-30", "响应 3 个工作小时 / 约定 8（及时）"]


async def test_the_review_briefs_of_an_english_tenant_are_in_english(db: Database, tmp_path: Path) -> None:
    """The review period opens: 刘洋 gets the briefs of his line, each page in English."""
    clock = FrozenClock(at("2026-12-07 10:00"))
    review = {"review_periods": [{"period": "2026Q4", "opens": "2026-12-14"}]}
    async with console_bot(db, clock, tmp_path, **{**ENGLISH, **review}) as bot:
        you = Typed(bot)
        await you.say("wangqiang", "O1-KR2 Finish 2 drafts @李娜")
        await you.say("li_na", "feedback @王强 #Stepped in Covered the Friday submission")
        impact = await bot.last_card("li_na", "Feedback · impact?")
        await bot.press("li_na", impact, impact["buttons"][1]["text"])  # team
        clock.set(at("2026-12-14 09:00"))
        assert await bot.run_job("review_briefs", at("2026-12-14 09:00")) > 0
        files = [m for m in await bot.all_messages("liuyang") if m["kind"] == "file"]
        assert "fact-brief-王强-2026Q4.html" in [f["file"]["name"] for f in files]
        allowed = sorted((await data_words(db)) | you.words, key=len, reverse=True)
        for f in files:
            page = await (await bot.client.get(f["file"]["url"])).text()
            assert page.startswith('<!DOCTYPE html>\n<html lang="en">') and "Overview" in page
            for w in allowed:
                page = page.replace(w, "")
            assert not CJK.search(page), (f["file"]["name"], sorted(set(CJK.findall(page))))
        await assert_english(db, you)
