"""A tenant with `locale = "en"` hears English everywhere, on SQLite and PostgreSQL.

Each test walks one conversation for an English-speaking company and then reads every outbox row
sent to it, as stored and as each platform renders it (console and WeCom text, WeCom template_card,
DingTalk markdown): no Chinese character (nor Chinese punctuation) may be left in what the bot wrote. What
people typed and the company's own data (names, departments, goal titles, project names) stay as
they were written, so they are taken out before looking.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.db import Database
from bot.demo import DATA
from cards import dingtalk, wecom
from cards.model import Button, Card, Message, Option, Select
from store import competencies as comp
from store.competencies import Competency
from store.models import Department, Employee, Goal, OutboxMessage, Project, Task
from store.tasks import import_tasks
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
