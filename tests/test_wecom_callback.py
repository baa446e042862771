"""WeCom callbacks end to end: what is stored, what is refused, and WeCom's retries."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.wecom_crypto import WeComCrypto
from store.models import InboxEvent
from tests.fakes.wecom_server import BotUnderTest, FakeWeCom, running_bot

NOW = datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom()
    f.add_user("wangqiang", "王强")
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


@pytest.fixture
async def bot(db: Any, fake: FakeWeCom) -> AsyncIterator[BotUnderTest]:
    async with running_bot(db, fake, FrozenClock(NOW)) as b:
        yield b


async def inbox(bot: BotUnderTest) -> list[dict[str, Any]]:
    async with bot.runtime.db.session() as s:
        return [r.payload for r in (await s.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars()]


async def post_raw(url: str, query: dict[str, str], body: bytes) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}?{urlencode(query)}", data=body) as r:
            await r.read()
            return r.status


async def test_get_url_check_returns_the_bare_echo(bot: BotUnderTest, fake: FakeWeCom) -> None:
    ts = str(int(NOW.timestamp()))
    echostr = fake.crypto.encrypt("8812345678901234567")
    from bot.wecom_crypto import sign
    params = {"msg_signature": sign(fake.token, ts, "99", echostr), "timestamp": ts, "nonce": "99", "echostr": echostr}
    async with aiohttp.ClientSession() as http:
        async with http.get(bot.callback_url, params=params) as r:
            assert r.status == 200
            assert await r.read() == b"8812345678901234567"
        async with http.get(bot.callback_url, params={**params, "nonce": "98"}) as r:
            assert r.status == 403


async def test_a_callback_delivered_four_times_is_stored_once(bot: BotUnderTest) -> None:
    outcomes = await bot.client.post(bot.client.text_xml("wangqiang", "O1-KR2 完成2份报告 @李娜"), repeat=4)
    assert outcomes == [200, 200, 200, 200]
    rows = await inbox(bot)
    assert len(rows) == 1
    assert rows[0]["text"] == "O1-KR2 完成2份报告 @李娜" and rows[0]["userid"] == "wangqiang"
    assert bot.runtime.stats["inbox_duplicates"] == 3


async def test_a_card_press_retried_by_wecom_is_stored_once(bot: BotUnderTest, fake: FakeWeCom) -> None:
    fake.cards["c0001"] = _card("c0001", ["wangqiang"])
    xml, code = bot.client.press_xml("wangqiang", "c0001", "accept")
    assert await bot.client.post(xml, repeat=4) == [200] * 4
    rows = await inbox(bot)
    assert len(rows) == 1
    ev = rows[0]
    assert (ev["kind"], ev["card_id"], ev["action_key"]) == ("action", "c0001", "accept")
    assert ev["hint"] == {"response_code": code}


async def test_wecom_retries_after_a_failed_answer_and_the_event_is_kept_once(bot: BotUnderTest) -> None:
    real_accept = bot.runtime.accept
    calls = {"n": 0}

    async def flaky(event):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return await real_accept(event)

    bot.runtime.accept = flaky  # type: ignore[method-assign]
    outcomes = await bot.client.say("wangqiang", "完成")
    assert outcomes == [500, 200]
    assert [r["text"] for r in await inbox(bot)] == ["完成"]


def _card(task_id: str, users: list[str]) -> Any:
    from tests.fakes.wecom_server import CardState
    card = {"card_type": "vote_interaction", "task_id": task_id, "main_title": {"title": "选择见证人"},
            "checkbox": {"question_key": "who", "option_list": [{"id": "u1", "text": "李娜"}], "mode": 0},
            "submit_button": {"text": "提交", "key": "accept"}}
    return CardState(task_id, users, card)


async def test_inbound_kinds_map_to_events(bot: BotUnderTest, fake: FakeWeCom) -> None:
    fake.cards["c0002"] = _card("c0002", ["wangqiang"])
    c = bot.client
    assert await c.press("wangqiang", "c0002", "accept", {"who": ["u1"]}) == [200]
    assert await c.click("wangqiang", "weekly") == [200]
    assert await c.enter("wangqiang") == [200]
    # kinds the bot does not handle are acknowledged and not stored
    assert await c.post(c.event_xml("wangqiang", "subscribe")) == [200]
    voice = (f"<xml>{c._head('wangqiang')}<MsgType>voice</MsgType><MediaId>v</MediaId><Format>amr</Format>"
             f"<MsgId>54</MsgId><AgentID>{fake.agent_id}</AgentID></xml>")
    assert await c.post(voice) == [200]
    # an image is a file event (a deliverable), keyed on its MsgId, carrying the MediaId to fetch it by
    image = (f"<xml>{c._head('wangqiang')}<MsgType>image</MsgType><PicUrl>http://x</PicUrl>"
             f"<MediaId>m</MediaId><MsgId>55</MsgId><AgentID>{fake.agent_id}</AgentID></xml>")
    assert await c.post(image) == [200]
    rows = await inbox(bot)
    assert [r["kind"] for r in rows] == ["action", "menu", "enter", "file"]
    action, menu, _enter, image_event = rows
    assert image_event["values"] == {"ref": {"media_id": "m"}, "type": "image", "filename": ""}
    assert image_event["dedup_key"] == "msg:55"
    assert action["values"] == {"who": ["u1"]} and action["card_id"] == "c0002"
    assert action["hint"]["response_code"]
    assert action["dedup_key"].startswith("card:wangqiang:")
    assert menu["action_key"] == "weekly"


async def test_a_callback_for_another_agent_is_ignored(bot: BotUnderTest, fake: FakeWeCom) -> None:
    xml = bot.client.text_xml("wangqiang", "hi").replace(f"<AgentID>{fake.agent_id}</AgentID>", "<AgentID>1000099</AgentID>")
    assert await bot.client.post(xml) == [200]
    assert await inbox(bot) == []


def _bad_requests(bot: BotUnderTest, fake: FakeWeCom) -> dict[str, tuple[dict[str, str], bytes]]:
    c = bot.client
    ts = str(int(NOW.timestamp()))
    good_xml = c.text_xml("wangqiang", "hello")

    def signed(plain: str, *, crypto: WeComCrypto = fake.crypto, timestamp: str = ts) -> tuple[dict[str, str], bytes]:
        q, body = crypto.signed_envelope(plain, timestamp, "123")
        return {"msg_signature": q.msg_signature, "timestamp": q.timestamp, "nonce": q.nonce}, body

    q, body = signed(good_xml)
    bomb = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>')
    other_corp = WeComCrypto(fake.token, fake.encoding_aes_key, "wwsomeoneelse")
    return {
        "bad signature": ({**q, "msg_signature": "f" * 40}, body),
        "wrong corp id": signed(good_xml, crypto=other_corp),
        "stale timestamp": signed(good_xml, timestamp=str(int(NOW.timestamp()) - 3600)),
        "timestamp from the future": signed(good_xml, timestamp=str(int(NOW.timestamp()) + 3600)),
        "malformed outer XML": (q, body[:-10]),
        "malformed inner XML": signed("<xml><FromUserName>wangqiang</FromUserName><MsgType>text"),
        "entity bomb outside": (q, (bomb + "<xml><Encrypt>&d;</Encrypt></xml>").encode()),
        "entity bomb inside": signed(bomb + "<xml><FromUserName>&d;</FromUserName><MsgType>text</MsgType></xml>"),
        "body too large": (q, b"<xml><Encrypt>" + b"A" * 100_000 + b"</Encrypt></xml>"),
        "missing signature": ({"timestamp": ts, "nonce": "1"}, body),
        "no sender": signed(f"<xml><MsgType>text</MsgType><Content>x</Content><MsgId>9</MsgId></xml>"),
    }


async def test_bad_callbacks_are_refused_and_store_nothing(bot: BotUnderTest, fake: FakeWeCom,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name, (query, body) in _bad_requests(bot, fake).items():
        status = await post_raw(bot.callback_url, query, body)
        assert status in (400, 403, 413), f"{name}: answered {status}"
    assert await inbox(bot) == []
    assert bot.runtime.stats["wecom_callbacks_refused"] == len(_bad_requests(bot, fake))
    logged = caplog.text
    for secret in (fake.secret, fake.encoding_aes_key, fake.token):
        assert secret not in logged


async def test_unknown_tenant_is_not_found(bot: BotUnderTest) -> None:
    url, body = bot.client.envelope(bot.client.text_xml("wangqiang", "x"))
    url = url.replace("/acme/", "/nobody/")
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body) as r:
            assert r.status == 404
    assert await inbox(bot) == []
