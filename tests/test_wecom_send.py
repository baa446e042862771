"""Sending through WeCom: rendering, batching, tokens, faults, card updates, files, menu, directory."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select, update

from bot.adapter import OutboundItem
from bot.core.clock import FrozenClock, utcnow
from bot.wecom import ZERO_WIDTH
from bot.wecom_directory import sync_wecom_directory
from bot.wecom_menu import create_wecom_menu
from cards.model import Button, Card, Message, Option, Select
from cards.wecom import CardRenderError, clip_bytes, render_message, render_template_card
from store import outbox
from store.models import Employee, IssuedCard, OutboxMessage
from store.statuses import Role
from tests.fakes.wecom_server import BotUnderTest, FakeWeCom, running_bot

NOW = datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)
USERS = [f"user{i:02d}" for i in range(40)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom()
    for uid in USERS:
        f.add_user(uid, "员工" + uid[-2:])
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


@pytest.fixture
async def bot(sqlite_db: Any, fake: FakeWeCom) -> AsyncIterator[BotUnderTest]:
    """For what happens between the adapter and WeCom; the store plays no part."""
    async with running_bot(sqlite_db, fake, FrozenClock(NOW)) as b:
        yield b


@pytest.fixture
async def relay_bot(db: Any, fake: FakeWeCom) -> AsyncIterator[BotUnderTest]:
    """For sends that go through the outbox relay, on SQLite and PostgreSQL."""
    async with running_bot(db, fake, FrozenClock(NOW)) as b:
        yield b


def tenant(bot: BotUnderTest) -> Any:
    return bot.runtime.config.tenants[0]


def card(cid: str, *buttons: str) -> Card:
    return Card(title="本周关键动作", body="完成2份临床评价报告初稿", fields=[("目标", "O1-KR2"), ("见证人", "李娜")],
                buttons=[Button(key=k, text=t) for k, t in (b.split(":") for b in buttons)], id=cid)


def sent_calls(fake: FakeWeCom, path: str = "message/send") -> list[Any]:
    return [c for c in fake.calls if c[0] == path]


# -- rendering --------------------------------------------------------------------------------
def test_text_is_clipped_to_2048_bytes_on_a_character_boundary() -> None:
    body = render_message(Message(kind="text", text="动" * 1000))
    content = body["text"]["content"]
    assert len(content.encode("utf-8")) <= 2048
    assert content.endswith("（内容过长，已截断）")
    assert clip_bytes("短", 2048) == "短"


def test_cards_render_to_the_matching_template_card_types() -> None:
    buttons = render_template_card(card("c1", "edit:修改", "done:已完成"))
    assert buttons["card_type"] == "button_interaction" and buttons["task_id"] == "c1"
    assert [b["key"] for b in buttons["button_list"]] == ["edit", "done"]
    assert {"keyname": "目标", "value": "O1-KR2"} in buttons["horizontal_content_list"]
    one = Card(title="选择", selects=[Select("who", "见证人", (Option("u1", "李娜"), Option("u2", "李纳")))], id="c2")
    vote = render_template_card(one)
    assert vote["card_type"] == "vote_interaction" and vote["checkbox"]["question_key"] == "who"
    assert vote["submit_button"]["key"] == "submit"
    two = Card(title="反馈", selects=[Select("tag", "标签", (Option("t1", "主动补位"),)),
                                     Select("impact", "影响", (Option("i1", "客户级"),))],
               submit=Button("send", "发送"), id="c3")
    multi = render_template_card(two)
    assert multi["card_type"] == "multiple_interaction" and len(multi["select_list"]) == 2
    assert multi["submit_button"] == {"text": "发送", "key": "send"}
    with pytest.raises(CardRenderError):
        render_template_card(card("c4", *(f"k{i}:按钮{i}" for i in range(7))))
    plain = render_message(Message(kind="card", card=Card(title="本周汇总", body="填写率 80%")))
    assert plain["msgtype"] == "text" and "填写率 80%" in plain["text"]["content"]


# -- sending --------------------------------------------------------------------------------
async def test_identical_texts_go_out_in_one_call_and_invalid_users_fail_permanently(bot: BotUnderTest, fake: FakeWeCom) -> None:
    items = [OutboundItem(i, uid, Message(kind="text", text="今天是本周最后一个工作日，完成了吗？"))
             for i, uid in enumerate(USERS[:5] + ["ghost"], start=1)]
    results = await bot.adapter.send_batch(tenant(bot), items)
    assert len(sent_calls(fake)) == 1
    assert [r.ok for r in results.values()] == [True] * 5 + [False]
    assert results[6].permanent and "invaliduser" in results[6].error
    assert sorted(d.userid for d in fake.deliveries) == USERS[:5]


async def test_all_recipients_invalid_is_permanent(bot: BotUnderTest) -> None:
    res = await bot.adapter.send(tenant(bot), "ghost", Message(kind="text", text="你好"))
    assert not res.ok and res.permanent and "81013" in res.error


async def test_more_than_1000_recipients_are_split(bot: BotUnderTest, fake: FakeWeCom) -> None:
    for i in range(1100):
        fake.add_user(f"m{i}", "成员")
    items = [OutboundItem(i, f"m{i}", Message(kind="text", text="全员通知")) for i in range(1100)]
    results = await bot.adapter.send_batch(tenant(bot), items)
    assert all(r.ok for r in results.values())
    assert len(sent_calls(fake)) == 2
    assert len(fake.deliveries) == 1100


async def test_one_persons_messages_keep_their_order_beside_a_broadcast(bot: BotUnderTest, fake: FakeWeCom) -> None:
    broadcast = Message(kind="text", text="全员通知")
    items = [OutboundItem(1, "user01", Message(kind="text", text="第一句")),
             OutboundItem(2, "user02", broadcast),
             OutboundItem(3, "user01", Message(kind="card", card=card("co0001", "ok:好的"))),
             OutboundItem(4, "user01", broadcast),
             OutboundItem(5, "user03", broadcast),
             OutboundItem(6, "user01", Message(kind="text", text="最后一句"))]
    results = await bot.adapter.send_batch(tenant(bot), items)
    assert all(r.ok for r in results.values())
    assert [d.text for d in fake.messages_to("user01")] == ["第一句", "本周关键动作", "全员通知", "最后一句"]


async def test_a_failed_message_holds_back_the_persons_later_ones(bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot.adapter.api_options = {"quick_backoff": 0.01, "quick_retries": 0}
    fake.fail_next("message/send", -1)
    items = [OutboundItem(1, "user01", Message(kind="text", text="先")),
             OutboundItem(2, "user01", Message(kind="text", text="后"))]
    results = await bot.adapter.send_batch(tenant(bot), items)
    assert not results[1].ok and not results[2].ok and not results[2].permanent
    assert fake.messages_to("user01") == []


async def test_the_same_text_twice_to_one_person_is_shown_twice(bot: BotUnderTest, fake: FakeWeCom) -> None:
    msg = Message(kind="text", text="请回复本周关键动作")
    first = await bot.adapter.send_batch(tenant(bot), [OutboundItem(1, "user01", msg), OutboundItem(2, "user01", msg)])
    third = await bot.adapter.send(tenant(bot), "user01", msg)
    assert all(r.ok for r in first.values()) and third.ok
    seen = fake.messages_to("user01")
    assert len(seen) == 3
    assert {d.text.rstrip(ZERO_WIDTH) for d in seen} == {"请回复本周关键动作"}


async def test_tokens_are_fetched_once_per_expiry_under_50_concurrent_senders(bot: BotUnderTest, fake: FakeWeCom) -> None:
    async def burst(tag: str) -> None:
        results = await asyncio.gather(*(
            bot.adapter.send(tenant(bot), USERS[i % 40], Message(kind="text", text=f"{tag}-{i}")) for i in range(50)))
        assert all(r.ok for r in results)

    await burst("a")
    assert fake.token_fetches == 1
    gettoken_calls = len(sent_calls(fake, "gettoken"))
    fake.expire_tokens()  # WeCom invalidates the token early: every sender gets 42001 at once
    await burst("b")
    assert fake.token_fetches == 2
    assert len(sent_calls(fake, "gettoken")) == gettoken_calls + 1


async def test_a_late_token_error_does_not_drop_the_fresh_token(bot: BotUnderTest, fake: FakeWeCom) -> None:
    api = bot.adapter.api(tenant(bot))
    old = await api.access_token()
    api.invalidate(old)
    fake.expire_tokens()
    new = await api.access_token()
    assert new != old
    calls = len(sent_calls(fake, "gettoken"))
    api.invalidate(old)  # a sender that still held the old token reports its failure late
    assert await api.access_token() == new
    assert len(sent_calls(fake, "gettoken")) == calls


async def test_token_is_refreshed_before_it_expires(bot: BotUnderTest, fake: FakeWeCom) -> None:
    ticks = {"t": 0.0}
    bot.adapter.api_options = {"quick_backoff": 0.01, "clock": lambda: ticks["t"]}
    assert (await bot.adapter.send(tenant(bot), "user01", Message(kind="text", text="一"))).ok
    ticks["t"] = 7200 - 299  # inside the refresh margin: fetch a new one before WeCom refuses it
    fake.advance(7200 - 299)
    assert (await bot.adapter.send(tenant(bot), "user01", Message(kind="text", text="二"))).ok
    assert fake.token_fetches == 1  # the fake still had it valid and handed the same token back
    assert len(sent_calls(fake, "gettoken")) == 2
    assert [c[1] for c in sent_calls(fake)] == [0, 0]


async def test_per_member_limit_is_respected_not_silently_dropped(bot: BotUnderTest, fake: FakeWeCom) -> None:
    results = [await bot.adapter.send(tenant(bot), "user03", Message(kind="text", text=f"第{i}条")) for i in range(31)]
    assert all(r.ok for r in results[:30])
    assert not results[30].ok and not results[30].permanent and results[30].retry_after > 0
    assert len(fake.messages_to("user03")) == 30 and fake.silently_dropped == []


async def _enqueue(bot: BotUnderTest, messages: list[tuple[str, Message]]) -> list[int]:
    async with bot.runtime.db.transaction() as s:
        rows = [outbox.enqueue(s, tenant="acme", platform="wecom", userid=u, message=m) for u, m in messages]
        await s.flush()
        return [r.id for r in rows]


async def _make_due(bot: BotUnderTest) -> None:
    async with bot.runtime.db.transaction() as s:
        await s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def _drain(bot: BotUnderTest, rounds: int = 60) -> dict[str, int]:
    """Relay until nothing is pending; retries are made due at once instead of waiting."""
    for _ in range(rounds):
        await bot.runtime.relay_once()
        await _make_due(bot)
        counts = await outbox.status_counts(bot.runtime.db)
        if not counts.get(("wecom", "pending")):
            break
    return {st: n for (_p, st), n in (await outbox.status_counts(bot.runtime.db)).items()}


async def test_under_faults_every_message_is_delivered_once(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot = relay_bot
    # No quick retries inside a call: every fault goes back to the outbox relay and is retried from there.
    bot.adapter.api_options = {"quick_backoff": 0.01, "quick_retries": 0}
    fake.set_chaos("message/send", [(0.1, 42001), (0.08, -1), (0.08, 45009), (0.08, "drop"), (0.15, "drop_after")])
    fake.set_chaos("gettoken", [(0.2, "drop")])
    broadcast = Message(kind="text", text="全员：本周脉搏已发布")
    messages: list[tuple[str, Message]] = []
    for i, uid in enumerate(USERS):
        messages.append((uid, Message(kind="text", text=f"个人消息 {i}")))
        if i < 20:
            messages.append((uid, broadcast))
        if i % 4 == 0:
            messages.append((uid, Message(kind="card", card=card(f"card{i:03d}", "accept:接受见证", "decline:无法见证"))))
    await _enqueue(bot, messages)
    # More of the same broadcast arrives while earlier copies are being retried, so retries
    # are batched with newcomers: a regrouped retry must still not show anyone a copy twice.
    for uid in USERS[20:]:
        await bot.runtime.relay_once()
        await _make_due(bot)
        await _enqueue(bot, [(uid, broadcast)])
        messages.append((uid, broadcast))
    counts = await _drain(bot)
    assert counts == {"sent": len(messages)}
    faults = [c for c in fake.calls if c[1] != 0]
    assert len(faults) > 10  # the faults really happened
    seen: dict[tuple[str, str], int] = {}
    for d in fake.deliveries:
        key = (d.userid, d.task_id or d.text.rstrip(ZERO_WIDTH))
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == len(messages)
    assert set(seen.values()) == {1}


async def test_a_lost_answer_retried_beside_newcomers_shows_nobody_a_copy_twice(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot = relay_bot
    bot.adapter.api_options = {"quick_backoff": 0.01, "quick_retries": 0}
    broadcast = Message(kind="text", text="全员：本周脉搏已发布")
    await _enqueue(bot, [(uid, broadcast) for uid in USERS[:5]])
    fake.fail_next("message/send", "drop_after")  # delivered, but the bot never hears so
    await bot.runtime.relay_once()
    assert len(fake.deliveries) == 5
    await _enqueue(bot, [(USERS[5], broadcast)])
    await _make_due(bot)
    assert await _drain(bot) == {"sent": 6}
    assert sorted(d.userid for d in fake.deliveries) == USERS[:6]


async def test_permanent_errors_dead_letter_without_retry(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot = relay_bot
    fake.fail_next("message/send", 48002)
    await _enqueue(bot, [("user01", Message(kind="text", text="无权限"))])
    counts = await _drain(bot)
    assert counts == {"dead": 1}
    async with bot.runtime.db.session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert row.attempts == 1 and "48002" in row.last_error


# -- cards -------------------------------------------------------------------------------------
async def test_a_pressed_card_is_updated_with_the_press_response_code(bot: BotUnderTest, fake: FakeWeCom) -> None:
    c = card("cw0001", "accept:接受见证", "decline:无法见证")
    assert (await bot.adapter.send(tenant(bot), "user05", Message(kind="card", card=c))).ok
    _xml, code = bot.client.press_xml("user05", "cw0001", "accept")
    c.result = "已接受见证"
    res = await bot.adapter.send(tenant(bot), "user05", Message(kind="card_update", card=c,
                                                                hint={"response_code": code}))
    assert res.ok
    state = fake.card("cw0001")
    assert state.card["replace_text"] == "已接受见证"
    assert len(state.updates) == 1
    with pytest.raises(AssertionError, match="greyed out"):
        bot.client.press_xml("user05", "cw0001", "decline")


async def test_card_closed_without_a_press_uses_the_send_time_code(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot = relay_bot
    c = card("cw0002", "accept:接受见证", "decline:无法见证")
    await _issue(bot, "user06", c)
    await _drain(bot)
    # The code message/send returned is kept with the issued card, with the task_id of that copy.
    [sent] = fake.messages_to("user06")
    async with bot.runtime.db.session() as s:
        issued = await s.get(IssuedCard, "cw0002")
    assert issued is not None and issued.response_code and issued.response_task_id == sent.task_id
    c.result = "已改由他人见证"
    await _enqueue(bot, [("user06", Message(kind="card_update", card=c))])
    assert await _drain(bot) == {"sent": 2}
    assert fake.card("cw0002").card["replace_text"] == clip_text(c.result)
    assert len(fake.messages_to("user06")) == 1  # no extra message
    # Spent: a second close without a press has no code left and tells the person in a message.
    async with bot.runtime.db.session() as s:
        assert (await s.get(IssuedCard, "cw0002")).response_code == ""  # type: ignore[union-attr]
    c.result = "已失效"
    await _enqueue(bot, [("user06", Message(kind="card_update", card=c))])
    await _drain(bot)
    assert len(fake.messages_to("user06")) == 2 and fake.messages_to("user06")[-1].msgtype == "text"


async def test_a_card_sent_to_many_keeps_no_code_on_anyones_card(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    """A shared card goes out in one call; a person's own card of the same id is not given that call's code."""
    bot = relay_bot
    c = card("cw0012", "accept:接受见证")
    c.broadcast = True
    await _issue(bot, "user09", c)  # the row of one recipient …
    await _enqueue(bot, [("user10", Message(kind="card", card=c))])  # … and a second copy in the same call
    await _drain(bot)
    async with bot.runtime.db.session() as s:
        assert (await s.get(IssuedCard, "cw0012")).response_code == ""  # type: ignore[union-attr]


async def _issue(bot: BotUnderTest, userid: str, c: Card) -> None:
    """A card as handlers send it: the issued card and its outbox row in one transaction."""
    now = utcnow()
    async with bot.runtime.db.transaction() as s:
        s.add(IssuedCard(id=c.id, tenant="acme", userid=userid, kind="test", card=c.to_dict(), created_at=now,
                         expires_at=now + timedelta(days=3)))
        outbox.enqueue(s, tenant="acme", platform="wecom", userid=userid, message=Message(kind="card", card=c))


def clip_text(s: str) -> str:
    return s if len(s) <= 10 else s[:9] + "…"


async def test_an_expired_code_falls_back_to_a_message(bot: BotUnderTest, fake: FakeWeCom) -> None:
    c = card("cw0003", "accept:接受见证")
    assert (await bot.adapter.send(tenant(bot), "user07", Message(kind="card", card=c))).ok
    _xml, code = bot.client.press_xml("user07", "cw0003", "accept")
    fake.advance(73 * 3600)
    c.result = "已接受见证"
    res = await bot.adapter.send(tenant(bot), "user07", Message(kind="card_update", card=c,
                                                                hint={"response_code": code}))
    assert res.ok
    # 60140 (used or expired) is final: no retry; the answered card comes again as a fresh card
    # with a task_id of its own (WeCom delivers nothing for a reused one).
    first, last = fake.messages_to("user07")[0], fake.messages_to("user07")[-1]
    assert last.msgtype == "template_card" and "✓ 已接受见证" in last.body["template_card"]["sub_title_text"]
    assert last.task_id != first.task_id and last.task_id.startswith("cw0003_")
    assert [c for (path, c) in fake.calls if path == "message/update_template_card" and c != 42001] == [60140]
    assert fake.protocol_errors == []


async def test_an_update_whose_answer_was_lost_is_not_repeated_as_a_message(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    bot = relay_bot
    c = card("cw0004", "accept:接受见证")
    assert (await bot.adapter.send(tenant(bot), "user08", Message(kind="card", card=c))).ok
    _xml, code = bot.client.press_xml("user08", "cw0004", "accept")
    c.result = "已接受见证"
    fake.fail_next("message/update_template_card", "drop_after", times=3)
    await _enqueue(bot, [("user08", Message(kind="card_update", card=c, hint={"response_code": code}))])
    assert await _drain(bot) == {"sent": 1}
    assert len(fake.card("cw0004").updates) == 1
    assert len(fake.messages_to("user08")) == 1


# -- files ---------------------------------------------------------------------------------------
async def test_a_file_is_uploaded_and_sent_once_with_its_caption(relay_bot: BotUnderTest, fake: FakeWeCom, tmp_path: Path) -> None:
    bot = relay_bot
    path = tmp_path / "weekly.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"x" * 2000)
    fake.fail_next("message/send", "drop_after", times=2)  # the caption's answer is lost, then the file's
    msg = Message(kind="file", path=str(path), filename="2026-W49 周报.xlsx", text="本周数据导出")
    await _enqueue(bot, [("user09", msg)])
    assert await _drain(bot) == {"sent": 1}
    got = fake.messages_to("user09")
    assert [d.msgtype for d in got] == ["text", "file"]
    media = fake.media[got[1].body["file"]["media_id"]]
    assert media["filename"] == "2026-W49 周报.xlsx" and media["content"] == path.read_bytes()


async def test_a_missing_file_is_a_permanent_failure(bot: BotUnderTest, tmp_path: Path) -> None:
    res = await bot.adapter.send(tenant(bot), "user01", Message(kind="file", path=str(tmp_path / "gone.xlsx"),
                                                                filename="gone.xlsx"))
    assert not res.ok and res.permanent


# -- menu and directory ------------------------------------------------------------------------
async def test_menu_is_created_with_the_three_click_keys(bot: BotUnderTest, fake: FakeWeCom) -> None:
    await create_wecom_menu(tenant(bot), runtime=bot.runtime)
    assert fake.menu == {"button": [{"type": "click", "name": "本周动作", "key": "weekly"},
                                    {"type": "click", "name": "微反馈", "key": "feedback"},
                                    {"type": "click", "name": "我的数据", "key": "mydata"}]}


async def test_directory_sync_upserts_people_paths_and_managers(db: Any) -> None:
    fake = FakeWeCom()
    fake.add_department(2, "研发中心", 1, leaders=["zhaomin"])
    fake.add_department(3, "注册部", 2, leaders=["lina"])
    fake.add_department(4, "市场部", 1)
    fake.departments[1]["department_leader"] = ["boss"]
    fake.add_user("boss", "陈总", [1])
    fake.add_user("zhaomin", "赵敏", [2])
    fake.add_user("lina", "李娜", [3])
    fake.add_user("wangqiang", "王强", [3])
    fake.add_user("xiaozhang", "小张", [4])
    await fake.start()
    try:
        async with running_bot(db, fake, FrozenClock(NOW)) as bot:
            async with db.transaction() as s:
                s.add(Employee(tenant="acme", userid="lina", name="李娜", roles="hr"))
                s.add(Employee(tenant="acme", userid="left", name="离职者"))
            report = await sync_wecom_directory(bot.runtime, tenant(bot))
            assert sorted(report.created) == ["boss", "wangqiang", "xiaozhang", "zhaomin"]
            assert report.updated == ["lina"] and report.deactivated == ["left"]
            async with db.session() as s:
                people = {e.userid: e for e in (await s.execute(select(Employee))).scalars()}
            assert people["wangqiang"].department == "总部/研发中心/注册部"
            assert people["wangqiang"].manager_userid == "lina"
            assert people["lina"].manager_userid == "zhaomin"  # a leader reports to the leader above
            assert people["xiaozhang"].manager_userid == "boss"
            assert people["boss"].manager_userid is None
            # The granted hr is kept, manager added; stored in the one order every writer uses.
            assert people["lina"].role_list == [Role.MANAGER, Role.HR] and people["lina"].roles == "manager;hr"
            assert people["wangqiang"].pinyin == "wangqiang" and people["lina"].initials == "ln"
            assert people["left"].active is False
            again = await sync_wecom_directory(bot.runtime, tenant(bot))
            assert again.created == [] and again.updated == [] and again.unchanged == 5
    finally:
        await fake.stop()


# -- protocol corrections (protocols.md "Corrections and confirmations") -----------------------
async def test_the_fake_refuses_more_than_1000_recipients_with_40032(bot: BotUnderTest, fake: FakeWeCom) -> None:
    for i in range(1001):
        fake.add_user(f"m{i}", "成员")
    api = bot.adapter.api(tenant(bot))  # type: ignore[attr-defined]
    assert tenant(bot).wecom is not None
    from bot.wecom_api import WeComError
    with pytest.raises(WeComError) as refused:
        await api.send_message({"touser": "|".join(f"m{i}" for i in range(1001)), "agentid": tenant(bot).wecom.agent_id,
                                "msgtype": "text", "text": {"content": "全员"}})
    assert refused.value.errcode == 40032
    assert fake.deliveries == []


async def test_every_card_send_has_a_task_id_of_its_own(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    """A reused task_id is answered ok and delivered to nobody: the same card to two people, a shared
    card in several calls and a card sent again each get a task_id no other call had."""
    bot = relay_bot
    c = card("cw0100", "accept:接受见证")
    shared = Card(title="本周关键动作", body="今天最关键的一件事？", buttons=[Button("skip", "本周跳过")], id="bshared01",
                  broadcast=True)
    await _enqueue(bot, [("user01", Message(kind="card", card=c)), ("user02", Message(kind="card", card=c)),
                         *[(u, Message(kind="card", card=shared)) for u in USERS[:30]]])
    fake.fail_next("message/send", "drop_after")  # an unsure first call: replayed as the same call
    assert await _drain(bot) == {"sent": 32}
    await _enqueue(bot, [("user01", Message(kind="card", card=c))])
    assert await _drain(bot) == {"sent": 33}
    task_ids = [d.task_id for d in fake.deliveries]
    sent = [c for c in fake.calls if c[0] == "message/send"]
    assert len(set(fake.cards)) == len([s for s in sent if s[1] == 0]) - 1  # the replay is the one repeat
    assert fake.protocol_errors == []
    assert sorted(d.userid for d in fake.deliveries if d.task_id.startswith("cw0100_")) == ["user01", "user01", "user02"]
    assert len(set(d.task_id for d in fake.deliveries if d.task_id.startswith("cw0100_"))) == 3
    assert all(len(t.encode()) <= 128 for t in task_ids)
    assert len(fake.deliveries) == 33  # everyone got each card once


def test_decline_and_danger_buttons_are_negative_style_4() -> None:
    c = Card(title="见证邀请", id="cw0101", buttons=[Button("accept", "接受见证", "primary"),
                                                   Button("decline", "无法见证", "danger"), Button("later", "稍后")])
    styles = [b["style"] for b in render_template_card(c)["button_list"]]
    assert styles == [1, 4, 2]  # 强调, 负向, 次强调; 3 is 中性


async def test_a_wrong_secret_backs_off_for_hours_not_minutes(relay_bot: BotUnderTest, fake: FakeWeCom) -> None:
    """Repeated wrong secrets ban the server's IP for an hour for every tenant: ask once, then wait hours."""
    bot = relay_bot
    fake.secret = "rotated-in-the-console"
    await _enqueue(bot, [(u, Message(kind="text", text=f"第{i}条")) for i, u in enumerate(USERS[:10])])
    for _ in range(5):
        await bot.runtime.relay_once()
        await _make_due(bot)
    assert len(fake.wrong_secret_calls) == 1
    assert fake.protocol_errors == []  # never banned
    async with bot.runtime.db.session() as s:
        rows = list((await s.execute(select(OutboxMessage))).scalars())
    assert {r.status for r in rows} == {"pending"} and all("40001" in r.last_error for r in rows)
    api = bot.adapter.api(tenant(bot))  # type: ignore[attr-defined]
    assert api._credentials_refused is not None
    until, _ = api._credentials_refused
    assert until - api._clock() > 2 * 3600
