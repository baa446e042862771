"""Replayed callbacks are refused; secrets, tokens and AES keys never reach a log line or an error.

Replay: a callback outside the time window is refused; inside it, the same
signature may come back only with the same body (a platform retry, stored
once), never on another message.

Secrets: whole conversations over WeCom and DingTalk run with every log record
captured at DEBUG, while the fakes fail calls (bad credentials, revoked tokens,
errors, dropped connections) and strangers post forged callbacks. Every
configured secret, every token the platforms hand out, the AES key and the
derived card-callback token are then searched for in the captured logs, the
error texts kept in the database and every HTTP answer the bot gave.
"""
from __future__ import annotations

import asyncio

import base64
import csv
import io
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.demo import DATA, DEMO_TENANT
from bot.dingtalk.signing import SIGNATURE_WINDOW_MS, callback_sign, card_api_secret, card_callback_sign
from bot.logs import QUIET_LIBRARIES, setup_logging
from bot.replay import ReplayGuard
from bot.wecom import WeComAdapter
from bot.wecom_crypto import sign
from store.db import Database
from store.models import InboxEvent, OutboxMessage
from tests.fakes.dingtalk_server import FakeDingTalk, tenant_config
from tests.fakes.wecom_server import FakeWeCom, running_bot
from tests.harness import at, seed_demo_company
from tests.test_dingtalk_conversation import dingtalk_company
from tests.test_dingtalk_http import NOW, NOW_MS, http_bot, setup_app

# -- the guard itself ------------------------------------------------------------------------------


def test_the_guard_lets_retries_through_and_refuses_another_body() -> None:
    g = ReplayGuard()
    assert g.admit(("acme", "1700000000", "n1"), "body-a", expires_at=1000.0, now=700.0)
    assert g.admit(("acme", "1700000000", "n1"), "body-a", expires_at=1000.0, now=701.0)  # a retry
    assert not g.admit(("acme", "1700000000", "n1"), "body-b", expires_at=1000.0, now=702.0)
    assert g.admit(("beta", "1700000000", "n1"), "body-b", expires_at=1000.0, now=702.0)  # other tenant
    assert g.refused == 1
    # Once the timestamp is out of the window the key is forgotten (the window check refuses it then).
    assert g.admit(("acme", "1700000001", "n2"), "body-c", expires_at=2000.0, now=1001.0)
    assert len(g) == 1


def test_the_guard_is_bounded() -> None:
    g = ReplayGuard(max_entries=3)
    for i in range(5):
        assert g.admit(("t", str(i), "n"), f"b{i}", expires_at=1000.0 + i, now=0.0)
    assert len(g) == 3
    # The soonest to expire went first; the newest are still guarded.
    assert not g.admit(("t", "4", "n"), "other", expires_at=1004.0, now=0.0)
    assert g.admit(("t", "0", "n"), "other", expires_at=1000.0, now=0.0)

# -- WeCom -----------------------------------------------------------------------------------------------


@pytest.fixture
async def wecom() -> Any:
    f = FakeWeCom()
    f.add_user("wangqiang", "王强")
    await f.start()
    yield f
    await f.stop()


async def _post(url: str, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}?{urlencode(query)}", data=body) as r:
            return r.status, await r.read()


def qdict(q: Any) -> dict[str, str]:
    return {"msg_signature": q.msg_signature, "timestamp": q.timestamp, "nonce": q.nonce}


async def _rows(db: Database) -> list[InboxEvent]:
    async with db.session() as s:
        return list((await s.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


def _text_xml(fake: FakeWeCom, content: str, msgid: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{fake.corp_id}]]></ToUserName><FromUserName><![CDATA[wangqiang]]>"
            f"</FromUserName><CreateTime>1764552600</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msgid}</MsgId><AgentID>{fake.agent_id}</AgentID></xml>")


async def test_wecom_timestamps_outside_the_window_are_refused(db: Database, wecom: FakeWeCom) -> None:
    clock = FrozenClock(NOW)
    async with running_bot(db, wecom, clock) as bot:
        now, window = int(NOW.timestamp()), 300
        for i, (offset, expected) in enumerate([(-window - 1, 403), (window + 1, 403), (-window, 200), (window, 200)]):
            q, body = wecom.crypto.signed_envelope(_text_xml(wecom, f"第{i}条", 100 + i), str(now + offset))
            status, answer = await _post(bot.callback_url, qdict(q), body)
            assert status == expected, (offset, answer)
            if expected == 403:
                assert answer == b"timestamp outside the replay window"
    assert [r.payload["text"] for r in await _rows(db)] == ["第2条", "第3条"]


async def test_wecom_nonce_reused_on_another_message_is_refused(db: Database, wecom: FakeWeCom) -> None:
    clock = FrozenClock(NOW)
    async with running_bot(db, wecom, clock) as bot:
        adapter = bot.adapter
        assert isinstance(adapter, WeComAdapter)
        ts = str(int(NOW.timestamp()))
        q, body = wecom.crypto.signed_envelope(_text_xml(wecom, "完成", 1), ts, nonce="555")
        query = {"msg_signature": q.msg_signature, "timestamp": ts, "nonce": "555"}
        # WeCom retrying: the same request again and again is taken, and stored once.
        assert [(await _post(bot.callback_url, query, body))[0] for _ in range(3)] == [200, 200, 200]
        # The same timestamp and nonce on another message, correctly signed: refused.
        q2, other = wecom.crypto.signed_envelope(_text_xml(wecom, "请假 至 12-31", 2), ts, nonce="555")
        status, answer = await _post(bot.callback_url, {**query, "msg_signature": q2.msg_signature}, other)
        assert (status, answer) == (403, b"nonce already used for another message")
        # A fresh nonce is a fresh message.
        q3, third = wecom.crypto.signed_envelope(_text_xml(wecom, "请假 至 12-31", 2), ts, nonce="556")
        assert (await _post(bot.callback_url, qdict(q3), third))[0] == 200
        assert adapter.replays.refused == 1
        # Past the window the remembered nonces are dropped: memory stays bounded by the window.
        assert len(adapter.replays) == 2
        clock.advance(seconds=301)
        q4, fourth = wecom.crypto.signed_envelope(_text_xml(wecom, "本周", 3), str(int(clock.now().timestamp())))
        assert (await _post(bot.callback_url, qdict(q4), fourth))[0] == 200
        assert len(adapter.replays) == 1
    assert [r.payload["text"] for r in await _rows(db)] == ["完成", "请假 至 12-31", "本周"]

# -- DingTalk HTTP mode --------------------------------------------------------------------------------------


@pytest.fixture
async def dingtalk() -> Any:
    f = FakeDingTalk(now_ms=lambda: NOW_MS)
    await f.start()
    yield f
    await f.stop()


async def test_dingtalk_signature_reused_on_another_message_is_refused(db: Database, dingtalk: FakeDingTalk) -> None:
    app = setup_app(dingtalk)
    async with http_bot(db, [tenant_config(app, dingtalk.base_url, mode="http")]) as bot:
        headers = dingtalk.signed_headers(app)
        first = dingtalk.robot_message(app, "wangqiang", "完成", msg_id="msgR1==")
        assert await dingtalk.post(bot.url(), first, headers=headers) == 200
        assert await dingtalk.post(bot.url(), first, headers=headers) == 200  # DingTalk retrying
        # Another real message signed in the same millisecond arrives at once: taken.
        same_moment = dingtalk.robot_message(app, "li_na", "本周", msg_id="msgR4==")
        assert await dingtalk.post(bot.url(), same_moment, headers=headers) == 200
        # A sign captured a minute ago and replayed on a forged message: refused.
        captured = dingtalk.signed_headers(app, NOW_MS - 60_000)
        real = dingtalk.robot_message(app, "zhaolei", "完成", msg_id="msgR5==")
        assert await dingtalk.post(bot.url(), real, headers=captured) == 200
        forged = dingtalk.robot_message(app, "li_na", "请假 至 12-31", msg_id="msgR2==")
        assert await dingtalk.post(bot.url(), forged, headers=captured) == 409
        # Outside the one-hour window nothing is taken, however it is signed.
        stale = dingtalk.signed_headers(app, NOW_MS - SIGNATURE_WINDOW_MS - 1)
        assert await dingtalk.post(bot.url(), dingtalk.robot_message(app, "li_na", "好", msg_id="msgR3=="),
                                   headers=stale) == 401
    assert [(r.userid, r.payload["text"]) for r in await _rows(db)] == [
        ("wangqiang", "完成"), ("li_na", "本周"), ("zhaolei", "完成")]

# -- secrets ----------------------------------------------------------------------------------------------------


class Captured(logging.Handler):
    """Every record at every level, formatted with its traceback, as the operator's log would show it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # The fakes' own servers log their request lines (with their tokens) under aiohttp.access;
        # `dongxian serve` runs with no access log (see test_serve_sets_the_timeouts_and_no_access_log).
        if record.name == "aiohttp.access":
            return
        self.lines.append(self.format(record))


@contextmanager
def everything_logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """Logging as `dongxian serve` sets it up with DONGXIAN_LOG_LEVEL=DEBUG, every record kept unmasked."""
    root = logging.getLogger()
    names = ("aiohttp.access", "apscheduler", *QUIET_LIBRARIES)
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    monkeypatch.setenv("DONGXIAN_LOG_LEVEL", "DEBUG")
    setup_logging()
    for h in root.handlers[:]:
        root.removeHandler(h)  # its stderr handler: the raw records below are what counts
    handler = Captured()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        for n, level in saved[2].items():
            logging.getLogger(n).setLevel(level)


async def error_texts(db: Database) -> list[str]:
    async with db.session() as s:
        out = [r.last_error for r in (await s.execute(select(OutboxMessage))).scalars() if r.last_error]
        out += [r.error for r in (await s.execute(select(InboxEvent))).scalars() if r.error]
    return out


def assert_nothing_leaks(secrets: dict[str, str], *haystacks: list[str]) -> None:
    text = "\n".join(line for hay in haystacks for line in hay)
    leaked = {name: value for name, value in secrets.items() if value and value in text}
    assert not leaked, f"secrets found in logs or errors: {sorted(leaked)}"


def aes_forms(encoding_aes_key: str) -> dict[str, str]:
    key = base64.b64decode(encoding_aes_key + "=")
    return {"aes key": encoding_aes_key, "aes key (hex)": key.hex(), "aes key (base64)": base64.b64encode(key).decode()}


WECOM_SECRET = "WeComCorpSecret-7f3a91c2e8"
WECOM_TOKEN = "WeComCallbackToken4d21b9"
WECOM_AES = "Q3VyaW91c2x5U2VjcmV0QWVzS2V5Rm9yRG9uZ3hpYW4"
CONSOLE_TOKEN = "console-token-5b8e0f17aa"


async def test_no_wecom_secret_reaches_logs_or_errors(db: Database, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWeCom(secret=WECOM_SECRET, token=WECOM_TOKEN, encoding_aes_key=WECOM_AES)
    with open(DATA / "roster.csv", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(io.StringIO(fh.read())):
            fake.add_user(row["userid"], row["name"])
    await fake.start()
    clock = FrozenClock(at("2026-10-10 09:30"))
    config = parse_config({
        "server": {"data_dir": str(tmp_path)}, "database": {"url": db.url},
        "console": {"enabled": True, "token": CONSOLE_TOKEN},
        "tenants": [{"key": DEMO_TENANT, "name": "宁波康骨医疗器械有限公司", "wecom": {
            "corp_id": fake.corp_id, "agent_id": fake.agent_id, "secret": WECOM_SECRET, "token": WECOM_TOKEN,
            "encoding_aes_key": WECOM_AES, "api_base": fake.url}}]})
    await seed_demo_company(db, config)
    runtime = make_runtime(config, db, clock)
    adapter = runtime.adapters["wecom"]
    assert isinstance(adapter, WeComAdapter)
    adapter.api_options = {"quick_backoff": 0.01}
    runner = web.AppRunner(build_app(runtime, start_background=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    url = f"{base}/wecom/{DEMO_TENANT}/callback"
    client = fake.callback_client(url, now=lambda: clock.now().timestamp(), retry_interval=0.01)
    tenant = config.tenant(DEMO_TENANT)
    answers: list[str] = []
    try:
        with everything_logged(monkeypatch) as logs:
            # The prompt goes out; then WeCom invalidates the token early and the bot refetches it.
            assert await runtime.run_job("morning_prompt", tenant, clock.now()) == 40
            await runtime.settle()
            fake.expire_tokens()
            assert set(await client.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")) == {200}
            await runtime.settle()
            invite = fake.last_card("li_na").card
            xml, _ = client.press_xml("li_na", invite["task_id"], invite["button_list"][0]["key"])
            assert set(await client.post(xml)) == {200}
            # Failing calls: a busy platform, a dropped connection, a bad token …
            fake.fail_next("message/send", -1, times=3)
            fake.fail_next("message/send", "drop")
            fake.fail_next("message/send", 40014)
            clock.set(at("2026-10-10 16:00"))
            assert set(await client.say("wangqiang", "完成")) == {200}
            # Until the platform has answered every queued failure (retries wait out their backoff).
            for _ in range(60):
                await runtime.settle()
                await runtime.relay_once()
                if not fake.queued["message/send"]:
                    break
                await asyncio.sleep(0.25)
            assert not fake.queued["message/send"], "the failing sends were never attempted"
            # … and last a refused secret: after it the client leaves gettoken alone for hours.
            fake.expire_tokens()
            fake.fail_next("gettoken", 40001)
            assert set(await client.say("wangqiang", "本周")) == {200}
            for _ in range(2):
                await runtime.settle()
                await runtime.relay_once()
            # Strangers: a forged signature, a wrong key, entity tricks, a console call without the token.
            ts = str(int(clock.now().timestamp()))
            good_q, good_body = fake.crypto.signed_envelope(client.text_xml("wangqiang", "hi"), ts)
            other = FakeWeCom(token="not-the-token", encoding_aes_key="B" * 43, corp_id=fake.corp_id)
            bad_q, bad_body = other.crypto.signed_envelope(client.text_xml("wangqiang", "hi"), ts)
            probes = [
                ({**qdict(good_q), "msg_signature": "0" * 40}, good_body),
                (qdict(bad_q), bad_body),
                ({"msg_signature": sign(WECOM_TOKEN, ts, "1", "x"), "timestamp": ts, "nonce": "1"},
                 b"<xml><Encrypt>x</Encrypt></xml>"),
                (qdict(good_q), b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'),
            ]
            async with aiohttp.ClientSession() as http:
                for q, body in probes:
                    async with http.post(url, params=q, data=body) as r:
                        assert r.status in (400, 403)
                        answers.append(await r.text())
                async with http.get(url, params={"msg_signature": "x", "timestamp": ts, "nonce": "1",
                                                 "echostr": fake.crypto.encrypt("123")}) as r:
                    answers.append(await r.text())
                async with http.get(f"{base}/console/api/tenants", headers={"X-Dongxian-Token": "wrong"}) as r:
                    assert r.status == 401
                    answers.append(await r.text())
                async with http.get(f"{base}/console/api/tenants", params={"token": CONSOLE_TOKEN}) as r:
                    assert r.status == 200
                    answers.append(await r.text())
        errors = await error_texts(db)
        # The failures happened: the failing sends were answered (asserted above; a row that got through on a
        # retry no longer holds its error) and the refused secret is on record.
        seen = errors + list(logs.lines)
        assert any("40001" in e for e in seen)
        assert fake.token_fetches >= 2 and any("failed" in line for line in logs.lines)  # the failures were logged
        secrets = {"wecom secret": WECOM_SECRET, "callback token": WECOM_TOKEN, "console token": CONSOLE_TOKEN,
                   **aes_forms(WECOM_AES), **{f"access token {i}": t for i, t in enumerate(fake.access_tokens)}}
        assert_nothing_leaks(secrets, logs.lines, errors, answers)
    finally:
        await adapter.stop()
        await runner.cleanup()
        await fake.stop()


@pytest.mark.parametrize("mode", ["stream", "http"])
async def test_no_dingtalk_secret_reaches_logs_or_errors(db: Database, tmp_path: Path, mode: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FrozenClock(at("2026-10-10 09:30"))
    answers: list[str] = []
    with everything_logged(monkeypatch) as logs:
        async with dingtalk_company(db, tmp_path, clock, mode) as people:
            fake, app, runtime = people.fake, people.app, people.runtime
            tenant = people.tenant
            assert await runtime.run_job("morning_prompt", tenant, clock.now()) == 40
            await runtime.settle()
            await people.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
            await people.press("li_na", people.card("li_na", "见证邀请"), "接受见证")
            # Failing calls: revoked tokens, refused tokens, throttling, a platform error, a failing token call.
            fake.revoke_tokens(app)
            fake.fail_next("batchSend", "auth", "auth", "qps", "5xx")
            fake.fail_next("accessToken", "5xx")
            clock.set(at("2026-10-10 16:00"))
            await people.say("wangqiang", "完成")
            for _ in range(3):
                await runtime.settle()
            if mode == "http":
                url = people.callback_url
                ts = str(int(clock.now().timestamp() * 1000))
                forged = fake.robot_message(app, "wangqiang", "本周")
                async with aiohttp.ClientSession() as http:
                    for headers in ({"timestamp": ts, "sign": callback_sign("guess", ts)}, {},
                                    {"timestamp": "²", "sign": "x"}):
                        async with http.post(url, json=forged, headers=headers) as r:
                            assert r.status == 401
                            answers.append(await r.text())
                    async with http.post(url, json={"outTrackId": "x"}, headers={
                            "x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": card_callback_sign("guess", ts)}) as r:
                        answers.append(await r.text())
        errors = await error_texts(db)
    assert fake.token_requests >= 2 and any("failed" in line for line in logs.lines)
    secrets = {"client secret": app.client_secret, "card callback apiSecret": card_api_secret(tenant.dingtalk),
               **{f"access token {i}": t for i, t in enumerate(fake.tokens)},
               **{f"stream ticket {i}": t for i, t in enumerate(fake.tickets)},
               **{f"session webhook {i}": s for i, s in enumerate(fake.sessions)}}
    assert_nothing_leaks(secrets, logs.lines, errors, answers)


async def test_a_transport_error_quoting_the_url_does_not_quote_the_token() -> None:
    """aiohttp's redirect and response errors print the URL, whose query holds the access token."""
    from bot.core.config import DingTalkConfig
    from bot.dingtalk.api import DingTalkApi, DingTalkApiError

    token = "dt-access-token-0b7c1e5d9a"

    async def access_token(request: web.Request) -> web.Response:
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(request.rel_url))  # back to itself, query and all

    app = web.Application()
    app.router.add_post("/v1.0/oauth2/accessToken", access_token)
    app.router.add_post("/topapi/v2/user/get", loop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api = DingTalkApi(DingTalkConfig(client_id="c", client_secret="dingtalk-secret-3c9a", robot_code="c",
                                     api_base=f"http://127.0.0.1:{runner.addresses[0][1]}"))
    try:
        with pytest.raises(DingTalkApiError) as caught:
            await api.user("wangqiang")
    finally:
        await api.close()
        await runner.cleanup()
    assert "TooManyRedirects" in str(caught.value) and "/topapi/v2/user/get" in str(caught.value)
    assert token not in str(caught.value)


# -- database errors and credentials that are not in the config -------------------------------------

async def test_a_failing_statement_does_not_quote_its_parameters(db: Database) -> None:
    """王强's message is in the inbox payload; a database error about that row must not carry it."""
    from datetime import datetime, timezone

    from sqlalchemy.exc import DBAPIError

    row = dict(tenant="demo", platform="wecom", dedup_key="msg:1", userid="wangqiang", status="pending",
               payload={"text": "王强的私密绩效反馈", "hint": {"session_webhook": "https://x/robot/sendBySession?session=abc"}},
               received_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    async with db.transaction() as s:
        s.add(InboxEvent(id=7, **row))
    with pytest.raises(DBAPIError) as caught:
        async with db.transaction() as s:
            s.add(InboxEvent(id=7, **{**row, "dedup_key": "msg:2"}))  # the same primary key again
    assert "王强的私密绩效反馈" not in str(caught.value) and "session=abc" not in str(caught.value)
    assert "hidden" in str(caught.value)


def test_session_webhooks_and_stream_tickets_are_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    from bot.logs import RedactSecrets

    log = logging.getLogger("dongxian.test.redact")
    f = RedactSecrets([])
    log.addFilter(f)
    try:
        with caplog.at_level(logging.INFO, logger="dongxian.test.redact"):
            log.warning("reply failed: POST https://oapi.dingtalk.com/robot/sendBySession?session=5f3a9c0e7d1b24&x=1")
            log.warning("stream connect wss://wss-open-connection.dingtalk.com/connect?ticket=9d2e7a4c-11aa")
            log.warning("endpoint answer %s", '{"endpoint": "wss://h/connect", "ticket": "c0ffee-ticket-77"}')
            try:
                raise RuntimeError("webhook https://h/robot/sendBySession?session=feedbeef01 gone")
            except RuntimeError:
                log.exception("send failed")
    finally:
        log.removeFilter(f)
    text = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                     for r in caplog.records)
    for secret in ("5f3a9c0e7d1b24", "9d2e7a4c-11aa", "c0ffee-ticket-77", "feedbeef01"):
        assert secret not in text
    assert "sendBySession?session=***" in text and "ticket=***" in text


async def test_an_altered_wrapper_sent_first_does_not_lock_out_the_genuine_callback(
        db: Database, wecom: FakeWeCom) -> None:
    """Only `Encrypt` is signed: someone who saw the callback re-sends it first with another wrapper."""
    async with running_bot(db, wecom, FrozenClock(NOW)) as bot:
        ts = str(int(NOW.timestamp()))
        q, body = wecom.crypto.signed_envelope(_text_xml(wecom, "完成", 9), ts, nonce="777")
        altered = body.replace(b"<xml>", b"<xml><Padding>x</Padding>").replace(
            f"<ToUserName><![CDATA[{wecom.corp_id}]]>".encode(), b"<ToUserName><![CDATA[someone-else]]>")
        assert altered != body
        assert (await _post(bot.callback_url, qdict(q), altered))[0] == 200
        assert (await _post(bot.callback_url, qdict(q), body))[0] == 200  # the genuine one is not a "replay"
        # Another signed message under the same timestamp and nonce is still refused.
        q2, other = wecom.crypto.signed_envelope(_text_xml(wecom, "请假 至 12-31", 10), ts, nonce="777")
        assert (await _post(bot.callback_url, qdict(q2), other))[0] == 403
    assert [r.payload["text"] for r in await _rows(db)] == ["完成"]
