"""DingTalk Stream mode: the real dingtalk-stream SDK client against the fake gateway."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.dingtalk.adapter import DingTalkAdapter
from bot.runtime import Runtime
from cards import dingtalk as render
from cards.model import Button, Card, Message
from handlers.router import Router
from store.db import Database
from store.models import InboxEvent
from tests.fakes.dingtalk_server import CARD_TOPIC, ROBOT_TOPIC, FakeApp, FakeDingTalk, tenant_config

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDingTalk]:
    f = FakeDingTalk(redeliver_after=0.4, disconnect_grace=3.0)
    await f.start()
    yield f
    await f.stop()


@asynccontextmanager
async def stream_bot(db: Database, tenants: list[dict[str, Any]]) -> AsyncIterator[tuple[Runtime, DingTalkAdapter]]:
    config = parse_config({"database": {"url": db.url}, "tenants": tenants})
    runtime = Runtime(config, db, FrozenClock(NOW), router=Router())
    adapter = DingTalkAdapter(runtime)
    adapter.reconnect_base = 0.02
    adapter.reconnect_max = 0.2
    runtime.add_adapter(adapter)
    await adapter.start()
    try:
        yield runtime, adapter
    finally:
        await adapter.stop()


async def inbox(db: Database) -> list[InboxEvent]:
    async with db.session() as s:
        return list((await s.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


def setup_app(fake: FakeDingTalk, client_id: str = "dingacme") -> FakeApp:
    app = fake.add_app(client_id, "s3cret-" + client_id, corp_id="dingcorp")
    for u in ("wangqiang", "li_na", "zhaolei"):
        fake.add_user(app, u)
    return app


async def test_robot_message_becomes_an_event_and_is_acked(db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(db, [tenant_config(app, fake.base_url)]):
        await fake.wait_connected(app)
        conn = fake.live(app)[0]
        # The SDK subscribed to exactly the two callback topics we handle.
        assert conn.topics == {("CALLBACK", ROBOT_TOPIC), ("CALLBACK", CARD_TOPIC)}
        f = await fake.push_robot_message(app, "wangqiang", "  O1-KR2 完成2份报告 @李娜  ", msg_id="msgA==")
        await fake.wait_acked([f])

    assert f.ack is not None and f.ack["code"] == 200
    assert f.ack["headers"]["messageId"] == f.message_id
    assert json.loads(f.ack["data"]) == {"response": "OK"}
    [row] = await inbox(db)
    ev = row.payload
    assert (row.tenant, row.platform, row.dedup_key, row.userid) == ("acme", "dingtalk", "msg:msgA==", "wangqiang")
    assert (ev["kind"], ev["text"], ev["mentions"]) == ("text", "O1-KR2 完成2份报告 @李娜", [])
    assert ev["hint"]["conversation_type"] == "1"
    assert ev["hint"]["session_webhook"].startswith(fake.base_url + "/robot/sendBySession?session=")
    assert ev["hint"]["expires"] == f.data["sessionWebhookExpiredTime"]
    assert ev["hint"]["conversation_id"] == f.data["conversationId"]
    assert fake.late_or_missing_acks() == [] and fake.protocol_errors == []


async def test_group_at_message_takes_witness_from_at_users(sqlite_db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(sqlite_db, [tenant_config(app, fake.base_url)]):
        await fake.wait_connected(app)
        f = await fake.push_robot_message(app, "wangqiang", "完成2份报告 @李娜", conversation_type="2",
                                          conversation_id="cidGROUP==", at_users=["li_na"])
        await fake.wait_acked([f])
    [row] = await inbox(sqlite_db)
    assert f.data["text"]["content"].startswith(" ")  # DingTalk keeps the space left by the robot's @
    assert row.payload["text"] == "完成2份报告 @李娜"
    assert row.payload["mentions"] == ["li_na"]  # the robot's own @ is not a witness
    assert row.payload["hint"]["conversation_type"] == "2"


async def test_card_press_arrives_as_action_with_our_button_key(db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(db, [tenant_config(app, fake.base_url)]) as (runtime, adapter):
        await fake.wait_connected(app)
        card = Card(title="见证邀请", body="王强 邀请你见证", id="c0123456789abcdef0123",
                    buttons=[Button("accept", "接受见证", "primary"), Button("decline", "无法见证")])
        tenant = runtime.tenant("acme")
        assert tenant is not None
        result = await adapter.send(tenant, "li_na", Message(kind="card", card=card))
        assert result.ok, result.error
        await fake.press(card.id, "li_na", "接受见证")
        await fake.press(card.id, "li_na", "接受见证")  # a double tap
        await fake.wait_acked([f for f in fake.frames.values() if f.kind == "card"])
    rows = await inbox(db)
    assert len(rows) == 1
    ev = rows[0].payload
    assert (ev["kind"], ev["userid"], ev["card_id"], ev["action_key"], ev["values"]) == (
        "action", "li_na", card.id, "accept", {})
    assert fake.protocol_errors == []


async def test_redelivered_message_is_processed_once(db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(db, [tenant_config(app, fake.base_url)]) as (runtime, _):
        await fake.wait_connected(app)
        # The database hiccups on the first try: the frame is acked 500, so DingTalk sends it again.
        real_accept = runtime.accept
        calls = 0

        async def flaky(event: Any) -> bool:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("database went away")
            return await real_accept(event)

        runtime.accept = flaky  # type: ignore[method-assign]
        first = await fake.push_robot_message(app, "wangqiang", "完成", msg_id="msgR==")
        await fake.wait_acked([first])
        assert first.ack is not None and first.ack["code"] == 500
        again = fake.final_frame(first)
        assert again is not first and again.data["msgId"] == "msgR=="
        # DingTalk may also deliver a message twice although it was acked.
        dup = await fake.push_robot_message(app, "wangqiang", "完成", msg_id="msgR==")
        await fake.wait_acked([dup])
    rows = await inbox(db)
    assert [r.dedup_key for r in rows] == ["msg:msgR=="]
    assert runtime.stats["inbox_duplicates"] == 1


async def test_ping_is_answered_and_disconnect_reconnects_without_loss(db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(db, [tenant_config(app, fake.base_url)]) as (_, adapter):
        await fake.wait_connected(app)
        ping = await fake.send_ping(app)
        await fake.wait_acked([ping])
        assert ping.ack is not None and json.loads(ping.ack["data"])["opaque"] == ping.data["opaque"]

        old = await fake.send_disconnect(app)
        # Sent while the client is between connections: held by the gateway, delivered after.
        during = [await fake.push_robot_message(app, "li_na", f"第{i}条", msg_id=f"msgD{i}==") for i in range(3)]
        await asyncio.wait_for(old.closed.wait(), 2.0)  # the client closed it, not the gateway's timer
        await fake.wait_connected(app, opened_at_least=2)
        await fake.wait_acked(during)
        assert adapter.streams["acme"].connects == 2
    assert sorted(r.dedup_key for r in await inbox(db)) == ["msg:msgD0==", "msg:msgD1==", "msg:msgD2=="]
    assert fake.connections_opened == 2 and fake.calls["connectionsOpen"] == 2  # a fresh ticket each time
    assert fake.protocol_errors == []
    assert fake.late_or_missing_acks() == []


@pytest.mark.parametrize("raw", [
    "this is not json",
    json.dumps(["a", "list"]),
    {"specVersion": "1.0", "type": "CALLBACK", "headers": {"messageId": "m_bad1", "topic": ROBOT_TOPIC,
                                                          "time": "1700000000000"}, "data": "{not json"},
    {"specVersion": "1.0", "type": "CALLBACK", "headers": {"messageId": "m_bad2", "topic": ROBOT_TOPIC,
                                                          "time": "soon"}, "data": "{}"},
    {"specVersion": "1.0", "type": "CALLBACK", "headers": {"messageId": "m_bad3", "topic": ROBOT_TOPIC,
                                                          "time": "1700000000000"},
     "data": json.dumps({"msgId": "x", "msgtype": "text", "conversationType": "1", "text": {"content": "hi"}})},
    {"specVersion": "1.0", "type": "CALLBACK", "headers": {"messageId": "m_bad4", "topic": CARD_TOPIC,
                                                          "time": "1700000000000"},
     "data": json.dumps({"outTrackId": "c1", "userId": "li_na", "value": json.dumps({"cardPrivateData": {
         "actionIds": ["someone_elses_button"], "params": {}}})})},
])
async def test_malformed_frames_are_refused_and_the_connection_survives(
        sqlite_db: Database, fake: FakeDingTalk, raw: Any) -> None:
    app = setup_app(fake)
    async with stream_bot(sqlite_db, [tenant_config(app, fake.base_url)]) as (_, adapter):
        await fake.wait_connected(app)
        conn = fake.live(app)[0]
        bad = await fake.push_frame(app, raw)
        good = await fake.push_robot_message(app, "wangqiang", "完成", msg_id="msgOK==")
        await fake.wait_acked([good] + ([bad] if bad else []))
        assert fake.live(app) == [conn] and adapter.streams["acme"].connects == 1
    assert [r.dedup_key for r in await inbox(sqlite_db)] == ["msg:msgOK=="]
    if bad is not None:  # a frame with a messageId is answered 400 (refused, do not redeliver)
        assert bad.ack is not None and bad.ack["code"] == 400
    assert fake.protocol_errors == []


async def test_two_tenants_two_gateways_in_one_process(sqlite_db: Database, fake: FakeDingTalk) -> None:
    other = FakeDingTalk()
    await other.start()
    try:
        a = setup_app(fake, "dingacme")
        b = setup_app(other, "dingbeta")
        tenants = [tenant_config(a, fake.base_url, key="acme"), tenant_config(b, other.base_url, key="beta")]
        async with stream_bot(sqlite_db, tenants):
            await fake.wait_connected(a)
            await other.wait_connected(b)
            fa = await fake.push_robot_message(a, "wangqiang", "甲", msg_id="same==")
            fb = await other.push_robot_message(b, "wangqiang", "乙", msg_id="same==")
            await fake.wait_acked([fa])
            await other.wait_acked([fb])
        rows = await inbox(sqlite_db)
        assert sorted((r.tenant, r.payload["text"]) for r in rows) == [("acme", "甲"), ("beta", "乙")]
        assert other.protocol_errors == []
    finally:
        await other.stop()


async def test_open_connection_failures_back_off_and_recover(sqlite_db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    fake.fail_next("connectionsOpen", "5xx", "5xx", "5xx")
    async with stream_bot(sqlite_db, [tenant_config(app, fake.base_url)]) as (_, adapter):
        await fake.wait_connected(app)
        assert fake.calls["connectionsOpen"] == 4
        f = await fake.push_robot_message(app, "wangqiang", "在吗")
        await fake.wait_acked([f])
        assert adapter.healthy()


async def test_open_connection_does_not_block_the_event_loop(sqlite_db: Database, fake: FakeDingTalk) -> None:
    """The SDK's open_connection is blocking `requests`; the gateway answering it runs on this same loop."""
    app = setup_app(fake)
    fake.open_gate = asyncio.Event()
    async with stream_bot(sqlite_db, [tenant_config(app, fake.base_url)]):
        await asyncio.wait_for(fake.open_waiting.wait(), 5)
        assert fake.live(app) == []
        fake.open_gate.set()  # only possible because the loop is free while the SDK waits
        await fake.wait_connected(app)


async def test_stop_closes_the_connection_and_ends_the_task(sqlite_db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with stream_bot(sqlite_db, [tenant_config(app, fake.base_url)]) as (_, adapter):
        await fake.wait_connected(app)
        conn = fake.live(app)[0]
        stream = adapter.streams["acme"]
        task = stream._task
        await adapter.stop()
        assert task is not None and task.done()
        await asyncio.wait_for(conn.closed.wait(), 2)
        assert adapter.streams == {}


async def test_ticket_is_single_use_and_expires(fake: FakeDingTalk) -> None:
    import aiohttp

    app = setup_app(fake)
    fake.ticket_ttl = 0.2
    async with aiohttp.ClientSession() as http:
        body = {"clientId": app.client_id, "clientSecret": app.client_secret, "ua": "t", "localIp": "",
                "subscriptions": [{"type": "CALLBACK", "topic": ROBOT_TOPIC}]}
        async with http.post(fake.base_url + "/v1.0/gateway/connections/open", json=body) as r:
            opened = await r.json()
        ws = await http.ws_connect(f"{opened['endpoint']}?ticket={opened['ticket']}")
        await ws.close()
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{opened['endpoint']}?ticket={opened['ticket']}")
        async with http.post(fake.base_url + "/v1.0/gateway/connections/open", json=body) as r:
            late = await r.json()
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{late['endpoint']}?ticket={late['ticket']}")
        async with http.post(fake.base_url + "/v1.0/gateway/connections/open",
                             json={**body, "clientSecret": "wrong"}) as r:
            assert r.status == 401


def test_action_ids_round_trip_and_foreign_ids_are_refused() -> None:
    cid = render.action_id("pick:li_na", {"witness": ["li_na"]})
    assert cid.startswith("dx_") and cid.replace("_", "").isalnum()
    assert render.parse_action_id(cid) == ("pick:li_na", {"witness": ["li_na"]})
    assert render.parse_action_id(render.action_id("accept")) == ("accept", {})
    for bad in ("button_1646816888257", "dx_", "dx_!!!!", "dx_" + "a" * 3000, 42):
        assert render.parse_action_id(bad) is None  # type: ignore[arg-type]
