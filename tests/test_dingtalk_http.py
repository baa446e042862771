"""DingTalk HTTP mode: signed robot callbacks and card presses at /dingtalk/{tenant}/callback."""
from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.dingtalk.adapter import DingTalkAdapter
from bot.dingtalk.signing import callback_sign, check_signature
from bot.runtime import Runtime
from cards.model import Button, Card, Message
from handlers.router import Router
from store.db import Database
from store.models import InboxEvent
from tests.fakes.dingtalk_server import FakeApp, FakeDingTalk, card_callback_sign, tenant_config

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDingTalk]:
    f = FakeDingTalk(now_ms=lambda: NOW_MS)
    await f.start()
    yield f
    await f.stop()


class HttpBot:
    def __init__(self, runtime: Runtime, adapter: DingTalkAdapter, server: TestServer) -> None:
        self.runtime, self.adapter, self.server = runtime, adapter, server

    def url(self, tenant: str = "acme") -> str:
        return str(self.server.make_url(f"/dingtalk/{tenant}/callback"))

    @property
    def base(self) -> str:
        return str(self.server.make_url("/"))


@asynccontextmanager
async def http_bot(db: Database, tenants: list[dict[str, Any]]) -> AsyncIterator[HttpBot]:
    config = parse_config({"database": {"url": db.url}, "tenants": tenants})
    runtime = Runtime(config, db, FrozenClock(NOW), router=Router())
    adapter = DingTalkAdapter(runtime)
    runtime.add_adapter(adapter)
    server = TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)
    await server.start_server()
    await adapter.start()
    try:
        yield HttpBot(runtime, adapter, server)
    finally:
        await adapter.stop()
        await server.close()


async def inbox(db: Database) -> list[InboxEvent]:
    async with db.session() as s:
        return list((await s.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


def setup_app(fake: FakeDingTalk) -> FakeApp:
    app = fake.add_app("dinghttp", "http-secret")
    for u in ("wangqiang", "li_na"):
        fake.add_user(app, u)
    return app


def test_signature_matches_the_documented_scheme() -> None:
    # Composed check from the protocol notes: appSecret `testsecret`, ts 1700000000000.
    assert callback_sign("testsecret", "1700000000000") == "d043yCasNZ+KC1N0lrVg+Aan0gEIKPvRfzRqMlUUwzk="
    at = datetime.fromtimestamp(1700000000, timezone.utc)
    good = "d043yCasNZ+KC1N0lrVg+Aan0gEIKPvRfzRqMlUUwzk="
    assert check_signature("testsecret", "1700000000000", good, at) is None
    assert check_signature("testsecret", "1700000000000", good, at + timedelta(hours=1)) is None
    assert check_signature("testsecret", "1700000000000", good, at + timedelta(hours=1, seconds=1)) \
        == "timestamp outside the one-hour window"
    assert check_signature("other", "1700000000000", good, at) == "bad sign"
    assert check_signature("testsecret", "17e11", good, at) == "timestamp is not milliseconds"


async def test_signed_message_is_stored_once(db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    async with http_bot(db, [tenant_config(app, fake.base_url, mode="http")]) as bot:
        assert bot.adapter.streams == {}  # HTTP mode opens no Stream connection
        data = fake.robot_message(app, "wangqiang", "O1-KR2 完成2份报告 @李娜", msg_id="msgH==")
        headers = fake.signed_headers(app)
        assert await fake.post(bot.url(), data, headers=headers) == 200
        assert await fake.post(bot.url(), data, headers=headers) == 200  # DingTalk retrying
    [row] = await inbox(db)
    assert (row.dedup_key, row.userid, row.payload["text"]) == ("msg:msgH==", "wangqiang", "O1-KR2 完成2份报告 @李娜")
    assert row.payload["hint"]["session_webhook"] == data["sessionWebhook"]
    assert fake.calls["connectionsOpen"] == 0


@pytest.mark.parametrize("case", ["bad_sign", "other_secret", "expired", "future", "no_headers", "not_digits"])
async def test_bad_or_stale_signatures_are_refused(sqlite_db: Database, fake: FakeDingTalk, case: str) -> None:
    app = setup_app(fake)
    async with http_bot(sqlite_db, [tenant_config(app, fake.base_url, mode="http")]) as bot:
        data = fake.robot_message(app, "wangqiang", "完成")
        ts = str(NOW_MS)
        headers = {
            "bad_sign": {"timestamp": ts, "sign": callback_sign(app.client_secret, ts)[:-4] + "AAA="},
            "other_secret": {"timestamp": ts, "sign": callback_sign("someone-else", ts)},
            "expired": fake.signed_headers(app, NOW_MS - 3600 * 1000 - 1),
            "future": fake.signed_headers(app, NOW_MS + 3600 * 1000 + 1),
            "no_headers": {},
            "not_digits": {"timestamp": "yesterday", "sign": callback_sign(app.client_secret, "yesterday")},
        }[case]
        assert await fake.post(bot.url(), data, headers=headers) == 401
        # Just inside the window is fine.
        edge = fake.signed_headers(app, NOW_MS - 3600 * 1000 + 1000)
        assert case != "expired" or await fake.post(bot.url(), fake.robot_message(app, "li_na", "好"), headers=edge) == 200
    rows = await inbox(sqlite_db)
    assert [r.userid for r in rows] == (["li_na"] if case == "expired" else [])


@pytest.mark.parametrize("body", [
    "{not json",
    "[1, 2]",
    json.dumps({"msgtype": "text", "text": {"content": "没有 msgId"}, "senderStaffId": "wangqiang", "conversationType": "1"}),
    json.dumps({"msgId": "m1", "msgtype": "text", "text": {"content": "没有发送人"}, "conversationType": "1"}),
    json.dumps({"msgId": "m2", "msgtype": "text", "senderStaffId": "wangqiang", "conversationType": "1"}),
    json.dumps({"msgId": "m3", "msgtype": "text", "text": {"content": "x"}, "senderStaffId": "wangqiang",
                "conversationType": 1}),
    json.dumps({"msgId": "m4", "msgtype": "text", "text": {"content": "x"}, "senderStaffId": "wangqiang",
                "conversationType": "1", "atUsers": "li_na"}),
])
async def test_malformed_bodies_are_refused(sqlite_db: Database, fake: FakeDingTalk, body: str) -> None:
    app = setup_app(fake)
    async with http_bot(sqlite_db, [tenant_config(app, fake.base_url, mode="http")]) as bot:
        assert await fake.post(bot.url(), body, headers=fake.signed_headers(app)) == 400
    assert await inbox(sqlite_db) == []


async def test_unknown_or_stream_tenants_have_no_http_callback(sqlite_db: Database, fake: FakeDingTalk) -> None:
    app = setup_app(fake)
    other = fake.add_app("dingstream", "stream-secret")
    tenants = [tenant_config(app, fake.base_url, mode="http"), tenant_config(other, fake.base_url, key="beta")]
    async with http_bot(sqlite_db, tenants) as bot:
        data = fake.robot_message(app, "wangqiang", "完成")
        assert await fake.post(bot.url("nobody"), data, headers=fake.signed_headers(app)) == 404
        assert await fake.post(bot.url("beta"), data, headers=fake.signed_headers(other)) == 404
    assert await inbox(sqlite_db) == []


async def test_card_press_comes_back_through_the_registered_route(db: Database, fake: FakeDingTalk) -> None:
    # HTTP mode: the card is created with callbackType HTTP + the registered callbackRouteKey; DingTalk
    # posts the press to the registered URL, signed x-ddpaas-signature with the registered apiSecret.
    app = setup_app(fake)
    async with http_bot(db, [tenant_config(app, fake.base_url, mode="http")]) as bot:
        tenant = bot.runtime.tenant("acme")
        assert tenant is not None
        url = await bot.adapter.register_card_callback(tenant, bot.base)
        assert url == bot.url()  # the signature is the credential: no secret in the URL
        (registered_url, api_secret), = fake.routes.values()
        assert api_secret != app.client_secret  # the app secret itself never leaves the server
        card = Card(title="请确认完成", body="王强 已完成", id="cHTTPcard0000000001",
                    buttons=[Button("confirm", "确认完成", "primary"), Button("deny", "尚未完成")])
        assert (await bot.adapter.send(tenant, "li_na", Message(kind="card", card=card))).ok
        sent = fake.cards[card.id]
        assert (sent.kind, sent.callback_type, sent.route_key) == ("instance", "HTTP", "dongxian_acme")
        assert await fake.press(card.id, "li_na", "确认完成") == 200
        assert await fake.press(card.id, "li_na", "确认完成") == 200  # a double tap: stored once
        # Forged, wrongly signed and stale presses are refused and store nothing.
        press = {"outTrackId": card.id, "userId": "li_na", "userIdType": 1, "type": "actionCallback",
                 "content": json.dumps({"cardPrivateData": {"actionIds": ["btn2"], "params": {"key": "deny"}}})}
        ts = str(NOW_MS)
        stale = str(NOW_MS - 3600 * 1000 - 1)
        for headers in ({},  # no signature at all
                        {"x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": card_callback_sign("guess", ts)},
                        {"x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": card_callback_sign(app.client_secret, ts)},
                        {"x-ddpaas-signature-timestamp": stale, "x-ddpaas-signature": card_callback_sign(api_secret, stale)},
                        {"x-ddpaas-signature-timestamp": "soon", "x-ddpaas-signature": card_callback_sign(api_secret, "soon")}):
            assert await fake.post(url, press, headers=headers) == 401, headers
        # A press cannot ride on a robot-message signature either.
        assert await fake.post(url, press, headers=fake.signed_headers(app)) == 401
        # A captured good signature replayed later on another body is refused too.
        good = {"x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": card_callback_sign(api_secret, ts)}
        bot.runtime.clock.advance(seconds=30)  # type: ignore[attr-defined]
        assert await fake.post(url, press, headers=good) == 409
    [row] = await inbox(db)
    ev = row.payload
    assert (ev["kind"], ev["userid"], ev["card_id"], ev["action_key"]) == ("action", "li_na", card.id, "confirm")
    assert fake.protocol_errors == []
