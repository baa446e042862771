"""Fuzzing everything reachable from outside: WeCom callbacks, DingTalk HTTP and Stream, the console API.

For every input: never a 5xx or a crash, always an answer with a body saying
what is wrong, and nothing stored unless the answer says it was taken. Bodies
are capped (413) on every route; a client that sends its body too slowly is cut
off (408) and one that never finishes its request head is disconnected.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
import logging
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, strategies as st
from sqlalchemy import func, select
from yarl import URL

import bot.app as bot_app
from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.console_guard import CSRF_HEADER
from bot.core.config import parse_config
from bot.demo import DATA
from bot.dingtalk.adapter import DingTalkAdapter
from bot.dingtalk.signing import callback_sign, card_api_secret, card_callback_sign
from bot.dingtalk.stream import StreamConnection
from bot.runtime import Runtime
from bot.storable import storable
from bot.wecom_crypto import MAX_BODY_BYTES as WECOM_MAX_BODY, sign
from store.db import Database
from store.models import InboxEvent
from store.roster import ensure_tenant, import_roster
from tests.fuzz_budget import budget, fuzz_counts_report, tried  # noqa: F401  (fixture)

NOW = datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)
TS = str(int(NOW.timestamp()))
NOW_MS = int(NOW.timestamp() * 1000)

CORP = "wwfuzzcorp0001"
AGENT = 1000002
TOKEN = "WeComCallbackTokenFuzz01"
AES = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo"
KEY = base64.b64decode(AES + "=")
DT_SECRET = "dingtalk-http-secret-fuzz-0001"
MAX_BODY = 256 * 1024

# -- the bot: one console, one WeCom, one DingTalk HTTP and one DingTalk Stream tenant ---------------


class FakeSocket:
    """Stands in for the Stream websocket: keeps the acks the SDK sends."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.acks.append(json.loads(text))


@dataclass
class Bot:
    runtime: Runtime
    base: str
    http: aiohttp.ClientSession
    stream: StreamConnection
    socket: FakeSocket
    app: web.Application

    async def inbox(self) -> int:
        async with self.runtime.db.session() as s:
            return int((await s.execute(select(func.count()).select_from(InboxEvent))).scalar_one())

    async def send(self, method: str, path: str, *, query: dict[str, str] | str | None = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        url: Any = self.base + path
        if isinstance(query, str):
            url = URL(url + "?" + query, encoded=True)
            query = None
        async with self.http.request(method, url, params=query, data=data, headers=headers) as r:
            return r.status, await r.read()


def config_for(db: Database) -> Any:
    return parse_config({
        "server": {"max_body_bytes": MAX_BODY},
        "database": {"url": db.url},
        "console": {"enabled": True},
        "tenants": [
            {"key": "demo", "name": "演示公司"},
            {"key": "acme", "name": "企业微信公司", "wecom": {
                "corp_id": CORP, "agent_id": AGENT, "secret": "wecom-app-secret-fuzz", "token": TOKEN,
                "encoding_aes_key": AES, "api_base": "http://127.0.0.1:9"}},
            {"key": "dhttp", "name": "钉钉HTTP", "dingtalk": {
                "client_id": "dinghttp", "client_secret": DT_SECRET, "robot_code": "dinghttp", "mode": "http",
                "api_base": "http://127.0.0.1:9"}},
            {"key": "dstream", "name": "钉钉Stream", "dingtalk": {
                "client_id": "dingstream", "client_secret": "dingtalk-stream-secret-fuzz", "robot_code": "dingstream",
                "api_base": "http://127.0.0.1:9"}},
        ]})


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[Bot]:
    config = config_for(db)
    for tenant in config.tenants:
        await ensure_tenant(db, tenant)
    assert not (await import_roster(db, "demo", DATA / "roster.csv")).errors
    runtime = make_runtime(config, db, FrozenClock(NOW))
    app = build_app(runtime, start_background=False)
    runner = web.AppRunner(app, access_log=None)  # as `dongxian serve` runs it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    adapter = runtime.adapters["dingtalk"]
    assert isinstance(adapter, DingTalkAdapter)
    stream = StreamConnection(adapter, config.tenant("dstream"))
    socket = FakeSocket()
    stream.client.websocket = socket  # type: ignore[assignment]
    # The console's page session: its cookie (kept for 127.0.0.1 too) and CSRF token go with every request.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"http://127.0.0.1:{port}/console/") as page:
            m = re.search(r'<meta name="dx-csrf" content="([0-9a-f]+)">', await page.text())
        assert m is not None
        http.headers[CSRF_HEADER] = m.group(1)
        try:
            yield Bot(runtime, f"http://127.0.0.1:{port}", http, stream, socket, app)
        finally:
            for a in runtime.adapters.values():
                await a.stop()
            await runner.cleanup()


def check_answer(status: int, body: bytes, stored: int, target: str) -> None:
    """The common promise: no 5xx, a body that says why when refused, nothing stored then."""
    assert status < 500, f"{target}: HTTP {status} {body[:200]!r}"
    if status >= 400:
        assert body.strip(), f"{target}: HTTP {status} without a message"
        assert stored == 0, f"{target}: HTTP {status} but {stored} inbox row(s) stored"
    assert stored <= 1

# -- WeCom callbacks -----------------------------------------------------------------------------------


def craft(plain: bytes, *, length: int | None = None, corp: bytes = CORP.encode(), pad: int | None = None,
          key: bytes = KEY, iv_random: bytes = b"0123456789abcdef") -> str:
    """WeCom's envelope, built by hand so every field can be wrong: random16 + len + msg + corp + pad."""
    content = iv_random + struct.pack(">I", len(plain) if length is None else length) + plain + corp
    n = 32 - len(content) % 32 if pad is None else pad
    content += bytes([n % 256]) * n
    content += b"\x00" * (-len(content) % 16)  # AES needs whole blocks even when the padding lies
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(content) + enc.finalize()).decode()


def outer(encrypt: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT}]]></AgentID></xml>").encode()


_nonces = itertools.count(1)


def signed_query(encrypt: str, ts: str = TS) -> dict[str, str]:
    nonce = f"n{next(_nonces)}"
    return {"msg_signature": sign(TOKEN, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}


XXE_FILE = "/etc/hostname"
XXE_DOCS = [
    f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file://{XXE_FILE}">]><xml><Content>&e;</Content></xml>',
    '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><xml><Content>&d;</Content></xml>',
    '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><xml/>',
    '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><MsgType>text</MsgType></xml>',
    '<?xml version="1.0"?><?xml-stylesheet href="http://127.0.0.1:9/x"?><xml><MsgType>text</MsgType></xml>',
    '<xml xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/hostname" parse="text"/></xml>',
]

field_text = st.one_of(st.text(max_size=20), st.sampled_from(["", "]]>", "<b>x</b>", "wangqiang", "&amp;", "\u0000"]))


def cdata(v: str) -> str:
    return "<![CDATA[" + v.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def inner_xml(draw: st.DrawFn) -> bytes:
    """The decrypted message: well-formed kinds with odd values, random trees, entity tricks, noise."""
    kind = draw(st.sampled_from(["text", "text", "event", "tree", "xxe", "noise", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "noise":
        return draw(st.text(max_size=120)).encode("utf-8", "surrogatepass")
    if kind == "xxe":
        return draw(st.sampled_from(XXE_DOCS)).encode()
    fields = {
        "ToUserName": cdata(draw(st.sampled_from([CORP, "", "other"]))),
        "FromUserName": draw(st.sampled_from([cdata("wangqiang"), cdata(""), "<a>x</a>", cdata(draw(field_text))])),
        "CreateTime": draw(st.sampled_from(["1764552600", "", "-1", "x", "99999999999999999999"])),
        "AgentID": draw(st.sampled_from([str(AGENT), "", "1", cdata(str(AGENT)), "abc"])),
    }
    if kind == "text":
        fields.update(MsgType=cdata(draw(st.sampled_from(["text", "image", "", "TEXT"]))),
                      Content=cdata(draw(field_text)),
                      MsgId=draw(st.sampled_from(["", "1", "7000000000000000001", "x" * 300, cdata(draw(field_text))])))
    elif kind == "event":
        fields.update(MsgType=cdata("event"),
                      Event=cdata(draw(st.sampled_from(["template_card_event", "click", "enter_agent", "view", ""]))),
                      EventKey=cdata(draw(field_text)), TaskId=cdata(draw(field_text)),
                      ResponseCode=cdata(draw(field_text)),
                      SelectedItems=draw(st.sampled_from([
                          "", "<SelectedItem/>", "<SelectedItem><QuestionKey>q</QuestionKey><OptionIds><OptionId>a"
                          "</OptionId><OptionId/></OptionIds></SelectedItem>", "text", "<x><y><z/></y></x>"])))
    else:
        tags = st.sampled_from(list(fields) + ["MsgType", "Content", "Event", "SelectedItems", "a", "xml"])
        for _ in range(draw(st.integers(0, 6))):
            fields[draw(tags)] = draw(st.one_of(field_text.map(cdata), st.just("<b><c>1</c></b>")))
    order = draw(st.permutations(list(fields)))
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    return (f"<{root}>" + "".join(f"<{k}>{fields[k]}</{k}>" for k in order) + f"</{root}>").encode()


@st.composite
def wecom_post(draw: st.DrawFn) -> tuple[str, dict[str, str] | str, bytes]:
    """(kind, query, body) of a POST to the WeCom callback."""
    kind = draw(st.sampled_from(["random", "garbled", "garbled", "inner", "inner", "inner", "outer", "stale"]))
    if kind == "random":
        keys = draw(st.lists(st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "x"]), max_size=4))
        query: dict[str, str] | str = {k: draw(st.text(max_size=30)) for k in keys}
        if draw(st.booleans()):
            query = draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60))
        return kind, query, draw(st.one_of(st.binary(max_size=200), inner_xml(), st.builds(outer, st.text(max_size=40))))
    good = craft(b"<xml><MsgType>text</MsgType></xml>")
    if kind == "garbled":
        cut = draw(st.integers(0, len(good)))
        enc = draw(st.sampled_from([
            good[:cut], good.rstrip("="), good + "=", good + "===", good[:cut] + "!" + good[cut:],
            good[:cut] + "中" + good[cut:], base64.b64encode(draw(st.binary(max_size=96))).decode(),
            craft(b"<xml/>", corp=b"wwsomebodyelse"), craft(b"<xml/>", key=bytes(32)),
            craft(b"<xml/>", length=draw(st.integers(0, 2**32 - 1))), craft(b"<xml/>", pad=draw(st.integers(0, 255))),
            craft(draw(st.binary(max_size=40))), " ", "",
        ]))
        return kind, signed_query(enc.strip()), outer(enc)
    if kind == "inner":
        enc = craft(draw(inner_xml()))
        return kind, signed_query(enc), outer(enc)
    if kind == "stale":
        enc = craft(b"<xml><MsgType>text</MsgType><FromUserName>wangqiang</FromUserName><MsgId>1</MsgId></xml>")
        ts = str(int(NOW.timestamp()) + draw(st.sampled_from([-1, 1])) * draw(st.integers(301, 10**8)))
        return kind, signed_query(enc, ts), outer(enc)
    enc = craft(b"<xml><MsgType>text</MsgType><FromUserName>wangqiang</FromUserName><Content>hi</Content></xml>")
    body = draw(st.sampled_from([
        XXE_DOCS[0].replace("<Content>&e;</Content>", f"<Encrypt>{enc}</Encrypt>"),
        XXE_DOCS[1].replace("<Content>&d;</Content>", f"<Encrypt>{enc}</Encrypt>"),
        f'<!DOCTYPE xml [<!ENTITY x "{enc}">]><xml><Encrypt>&x;</Encrypt></xml>',
        f"<root><Encrypt>{enc}</Encrypt></root>", "<xml><Encrypt></Encrypt></xml>", "<xml/>",
        f"<xml><Encrypt><a>{enc}</a></Encrypt></xml>", f"<xml><Encrypt>{enc}</Encrypt>", "",
    ]))
    return kind, signed_query(enc), body.encode()


@budget(400)
@given(case=wecom_post())
async def test_wecom_callback_fuzz(bot: Bot, case: tuple[str, dict[str, str] | str, bytes]) -> None:
    kind, query, body = case
    tried("wecom.callback.POST")
    before = await bot.inbox()
    status, answer = await bot.send("POST", "/wecom/acme/callback", query=query, data=body)
    stored = await bot.inbox() - before
    check_answer(status, answer, stored, f"wecom {kind}")
    if kind in ("random", "garbled", "outer", "stale"):
        assert status in (400, 403, 404, 413) and stored == 0, (kind, status, answer)


async def test_a_timestamp_of_other_digits_is_refused(bot: Bot) -> None:
    """'²' and '１２' pass str.isdigit() but not int(): refused as not a number, not a crash."""
    enc = craft(b"<xml><MsgType>text</MsgType><FromUserName>wangqiang</FromUserName><Content>x</Content></xml>")
    for ts in ("²", "１７６４５５２６００"):
        tried("wecom.callback.timestamp")
        status, answer = await bot.send("POST", "/wecom/acme/callback", query=signed_query(enc, ts), data=outer(enc))
        assert (status, answer) == (400, b"timestamp is not a number")
        tried("dingtalk.http.timestamp")
        status, answer = await bot.send("POST", "/dingtalk/dhttp/callback", data=json.dumps(robot_data()),
                                        headers={"timestamp": ts, "sign": callback_sign(DT_SECRET, ts)})
        assert status == 401 and json.loads(answer) == {"error": "signature"}
    assert await bot.inbox() == 0


@budget(200)
@given(query=st.dictionaries(st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr"]), st.text(max_size=40)),
       signed=st.booleans(), echo=st.one_of(st.text(max_size=60), st.sampled_from(["", "=", "a" * 64])))
async def test_wecom_url_check_fuzz(bot: Bot, query: dict[str, str], signed: bool, echo: str) -> None:
    tried("wecom.callback.GET")
    if signed:
        nonce = f"n{next(_nonces)}"
        query = {"msg_signature": sign(TOKEN, TS, nonce, echo), "timestamp": TS, "nonce": nonce, "echostr": echo}
    status, answer = await bot.send("GET", "/wecom/acme/callback", query=query)
    check_answer(status, answer, 0, "wecom GET")
    assert status in (400, 403) and answer  # none of these is a real handshake


async def test_wecom_xml_entities_are_refused(bot: Bot) -> None:
    """DTDs, entities, external entities, XInclude: refused or inert, inside and outside the encryption."""
    secret_file = Path(XXE_FILE).read_text().strip().encode() if Path(XXE_FILE).is_file() else b""
    for xml in XXE_DOCS:
        for where in ("inside", "outside"):
            tried("wecom.callback.xxe")
            if where == "inside":
                enc = craft(xml.encode())
                query, body = signed_query(enc), outer(enc)
            else:
                enc = craft(b"<xml><MsgType>text</MsgType></xml>")
                query, body = signed_query(enc), xml.replace("<xml>", f"<xml><Encrypt>{enc}</Encrypt>", 1).encode()
            status, answer = await bot.send("POST", "/wecom/acme/callback", query=query, data=body)
            if "<!DOCTYPE" in xml:
                assert (status, answer) == (400, b"malformed XML (EntitiesForbidden)") or \
                    (status == 400 and answer.startswith(b"malformed XML (DTDForbidden")), (where, xml, answer)
            else:
                assert status == 400 and answer, (where, xml)  # nothing fetched or included: just incomplete
            assert not secret_file or secret_file not in answer
    assert await bot.inbox() == 0


async def test_wecom_oversize_bodies_get_413(bot: Bot) -> None:
    enc = craft(b"<xml><MsgType>text</MsgType><FromUserName>wangqiang</FromUserName><Content>x</Content></xml>")
    padding = "<Pad>" + "x" * WECOM_MAX_BODY + "</Pad>"
    big = outer(enc).replace(b"</xml>", padding.encode() + b"</xml>")

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]

    bomb = gzip.compress(b"<xml>" + b" " * (MAX_BODY * 4) + b"</xml>")
    cases = [("content-length", big, {}), ("chunked", chunked(), {}),
             ("over the app cap", b"x" * (MAX_BODY + 1), {}),
             ("gzip bomb", bomb, {"Content-Encoding": "gzip"})]
    for name, data, headers in cases:
        tried("wecom.callback.oversize")
        status, answer = await bot.send("POST", "/wecom/acme/callback", query=signed_query(enc), data=data,
                                        headers=headers)
        assert status == 413 and answer, name
    assert await bot.inbox() == 0

# -- DingTalk HTTP mode ----------------------------------------------------------------------------------


def robot_data(user: str = "wangqiang", text: str = "完成", msg_id: str = "msgA==") -> dict[str, Any]:
    return {"conversationId": "cidX==", "conversationType": "1", "msgId": msg_id, "msgtype": "text",
            "text": {"content": text}, "senderStaffId": user, "senderNick": "王强", "senderId": "$:LWCP_v1:$x",
            "chatbotUserId": "$:LWCP_v1:$b", "robotCode": "dinghttp", "isInAtList": True,
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$l", "staffId": "li_na"}], "createAt": NOW_MS,
            "sessionWebhook": "http://127.0.0.1:9/robot/sendBySession?session=s1",
            "sessionWebhookExpiredTime": NOW_MS + 5_400_000, "senderCorpId": "dingcorp", "chatbotCorpId": "dingcorp"}


def card_data(user: str = "li_na") -> dict[str, Any]:
    private = json.dumps({"cardPrivateData": {"actionIds": [], "params": {"key": "confirm"}}})
    return {"extension": "{}", "corpId": "dingcorp", "spaceType": "im", "userIdType": 1, "type": "actionCallback",
            "userId": user, "content": private, "spaceId": "cidX==", "outTrackId": "cFuzzCard0001", "value": private}


# NUL and lone surrogates are valid JSON ("\u0000", "\ud800") that no database column takes.
UNSTORABLE_TEXTS = ["\x00", "wang\x00qiang", "\ud800", "x\udfff"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
    | st.sampled_from(UNSTORABLE_TEXTS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


# Values that break one field while the rest of the input stays well-formed.
nasty = st.sampled_from([None, 0, -1, 1.5, True, "", " ", "x" * 300, [], {}, "²", "\u202e",
                         *UNSTORABLE_TEXTS, *UNSTORABLE_TEXTS])


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A well-formed input with up to two fields dropped, broken or retyped, so checks deep inside are reached."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(data) + ["extra"]))
        op = draw(st.sampled_from(["drop", "nasty", "nasty", "nasty", "random", "nested"]))
        if op == "drop":
            data.pop(key, None)
        elif op == "nested" and isinstance(data.get(key), dict):
            data[key] = {k: draw(nasty) for k in data[key]}
        else:
            data[key] = draw(nasty if op != "random" else json_values)
    return data


_stamps = itertools.count(1)


def fresh_stamp() -> str:
    """A distinct, valid millisecond timestamp per request, so the replay guard does not interfere."""
    return str(NOW_MS - next(_stamps))


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"), max_size=30)


@st.composite
def dingtalk_post(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """(kind, path with query, headers, body) of a POST to a DingTalk HTTP callback."""
    kind = draw(st.sampled_from(["random", "signed", "signed", "signed", "card", "card", "elsewhere"]))
    body_s = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                       mutated(robot_data()).map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                       mutated(robot_data()).map(lambda d: json.dumps(d).encode()),
                       mutated(card_data()).map(lambda d: json.dumps(d).encode()))
    if kind == "random":
        headers = {k: draw(header_text) for k in draw(st.lists(st.sampled_from(["timestamp", "sign"]), max_size=2))}
        if draw(st.booleans()):
            headers["timestamp"] = draw(st.sampled_from(["²", "１７", "-1", "1e3", "0x10", " 1", str(NOW_MS), "9" * 16]))
            headers["sign"] = callback_sign(DT_SECRET, headers["timestamp"])
        return kind, "/dingtalk/dhttp/callback", headers, draw(body_s)
    if kind == "signed":
        ts = fresh_stamp()
        return kind, "/dingtalk/dhttp/callback", {"timestamp": ts, "sign": callback_sign(DT_SECRET, ts)}, draw(body_s)
    if kind == "card":
        from bot.core.config import TenantConfig
        tenant = TenantConfig.model_validate({"key": "dhttp", "name": "x", "dingtalk": {
            "client_id": "dinghttp", "client_secret": DT_SECRET, "robot_code": "dinghttp", "mode": "http"}})
        assert tenant.dingtalk is not None
        ts = fresh_stamp()
        secret = draw(st.sampled_from([card_api_secret(tenant.dingtalk), "guess", ""]))
        return kind, "/dingtalk/dhttp/callback", {"x-ddpaas-signature-timestamp": ts,
                                                  "x-ddpaas-signature": card_callback_sign(secret, ts)}, draw(body_s)
    path = draw(st.sampled_from(["/dingtalk/dstream/callback", "/dingtalk/nobody/callback", "/dingtalk/acme/callback",
                                 "/dingtalk/%E4%B8%AD/callback", "/dingtalk//callback"]))
    ts = fresh_stamp()
    return kind, path, {"timestamp": ts, "sign": callback_sign(DT_SECRET, ts)}, draw(body_s)


@budget(300)
@given(case=dingtalk_post())
async def test_dingtalk_http_fuzz(bot: Bot, case: tuple[str, str, dict[str, str], bytes]) -> None:
    kind, path, headers, body = case
    tried("dingtalk.http.POST")
    before = await bot.inbox()
    status, answer = await bot.send("POST", path, headers={"Content-Type": "application/json", **headers}, data=body)
    stored = await bot.inbox() - before
    check_answer(status, answer, stored, f"dingtalk {kind}")
    if kind == "elsewhere":
        assert stored == 0 and status in (404, 405)


# -- DingTalk Stream frames (the adapter's frame handler, as the socket loop calls it) ---------------------


def frame(topic: str, data: Any, *, type_: str = "CALLBACK", message_id: str = "m1") -> dict[str, Any]:
    return {"specVersion": "1.0", "type": type_, "headers": {
        "appId": "a", "connectionId": "c", "contentType": "application/json", "messageId": message_id,
        "time": str(NOW_MS), "topic": topic}, "data": data if isinstance(data, str) else json.dumps(data)}


_frame_ids = itertools.count(1)


@st.composite
def stream_frame(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["noise", "json", "robot", "robot", "card", "system", "shape"]))
    if kind == "noise":
        return draw(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
    if kind == "json":
        return json.dumps(draw(json_values))
    mid = f"fz{next(_frame_ids)}"
    if kind == "robot":
        f = frame("/v1.0/im/bot/messages/get", draw(mutated(robot_data(msg_id=mid))), message_id=mid)
    elif kind == "card":
        f = frame("/v1.0/card/instances/callback", draw(mutated(card_data())), message_id=mid)
    elif kind == "system":
        f = frame(draw(st.sampled_from(["ping", "disconnect", "other"])), {"opaque": "o"}, type_="SYSTEM", message_id=mid)
    else:
        f = frame("/v1.0/im/bot/messages/get", robot_data(msg_id=mid), message_id=mid)
        where = draw(st.sampled_from(["top", "headers"]))
        target = f if where == "top" else f["headers"]
        key = draw(st.sampled_from(sorted(target) + ["eventBornTime"]))
        value = draw(st.one_of(json_values, st.sampled_from(["²", "", "１２", "-5", "12.5", "EVENT", "CALLBACK"])))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = value
    return json.dumps(f, ensure_ascii=False)


def _superscript_time() -> str:
    f = frame("/v1.0/im/bot/messages/get", robot_data(msg_id="sup"), message_id="sup")
    f["headers"]["time"] = "²"  # str.isdigit() says yes, int() says no
    return json.dumps(f, ensure_ascii=False)


@budget(300)
@given(raw=stream_frame())
@example(raw=_superscript_time())
async def test_dingtalk_stream_frame_fuzz(bot: Bot, raw: str | bytes, caplog: pytest.LogCaptureFixture) -> None:
    tried("dingtalk.stream.frame")
    before = await bot.inbox()
    acks_before = len(bot.socket.acks)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = await bot.stream._on_frame(raw)
    stored = await bot.inbox() - before
    acks = bot.socket.acks[acks_before:]
    assert result in ("", "disconnect")
    assert all(a["code"] < 500 for a in acks), acks
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    if stored:
        assert stored == 1 and [a["code"] for a in acks] == [200]
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("headers"), dict) and parsed.get("type") == "CALLBACK" \
            and isinstance(parsed["headers"].get("messageId"), str) and parsed["headers"]["messageId"] \
            and parsed["headers"].get("topic") in ("/v1.0/im/bot/messages/get", "/v1.0/card/instances/callback"):
        assert len(acks) == 1, "a callback of ours is always acked, well-formed or not"


# -- the console API ----------------------------------------------------------------------------------------

CONSOLE_BODY = {"tenant": "demo", "userid": "wangqiang", "text": "O1-KR2 完成2份报告 @李娜", "client_id": "c1",
                "card_id": "cFuzz0001", "key": "accept", "values": {}, "now": "2026-12-01T09:30:00+08:00",
                "at": "2026-12-01T09:30:00+08:00"}
# An employee: HR's chart and export are valid, slow, and not what this test is about.
CONSOLE_QUERY = {"tenant": "demo", "userid": "wangqiang", "after": "0", "week": "2026-W49", "from": "2026-W45"}


def _url_safe(v: Any) -> bool:
    """A string a client can put in a URL: NUL is fine (%00), a lone surrogate has no UTF-8."""
    return isinstance(v, str) and storable(v.replace("\x00", ""))


def route_url(path: str, name: str) -> str:
    return (path.replace("{seq}", name).replace("{name}", name).replace("{tenant_key}", name))


@budget(30)
@given(data=st.data())
async def test_console_api_fuzz(bot: Bot, data: st.DataObject) -> None:
    """Each example is sent to every console route the app serves, so each gets the same budget."""
    routes = sorted({(r.method, r.resource.canonical) for r in bot.app.router.routes()
                     if r.resource is not None and r.resource.canonical.startswith("/console") and r.method != "HEAD"})
    assert len(routes) >= 15
    name = data.draw(st.sampled_from(["1", "0", "-1", "x", "morning_prompt", "console.css", "..%2Fx", "中", "%00"]))
    query = data.draw(st.one_of(
        *[mutated(CONSOLE_QUERY).map(lambda q: {k: v for k, v in q.items() if _url_safe(v)})] * 3,
        st.dictionaries(st.text(max_size=6), st.text(max_size=12), max_size=3)))
    body = data.draw(st.one_of(
        mutated(CONSOLE_BODY).map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        mutated(CONSOLE_BODY).map(lambda d: json.dumps(d).encode()),
        json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=60)))
    # Mostly JSON (so the handlers are reached); sometimes what a cross-site form would send.
    ctype = data.draw(st.sampled_from(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded"]))
    for method, path in routes:
        tried(f"console {method} {path}")
        before = await bot.inbox()
        status, answer = await bot.send(method, route_url(path, name), query=query,
                                        data=body if method in ("POST", "PUT", "DELETE") else None,
                                        headers={"Content-Type": ctype} if method in ("POST", "PUT", "DELETE") else None)
        stored = await bot.inbox() - before
        check_answer(status, answer, stored, f"console {method} {path}")
        if stored:
            assert status == 202


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_client_input_that_used_to_answer_500_gets_a_4xx(bot: Bot) -> None:
    """Deep JSON, integers beyond BIGINT, far-off weeks and a body that is not the gzip it says: 4xx, nothing stored."""
    deep = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
            json.dumps({**CONSOLE_BODY, "values": {"a": nest(40)}}).encode()]
    routes = sorted({(r.method, r.resource.canonical) for r in bot.app.router.routes()
                     if r.resource is not None and r.method in ("POST", "PUT", "DELETE")})
    for method, path in routes:
        for body in deep:
            tried("input.deep_json")
            status, answer = await bot.send(method, route_url(path, "demo"), data=body,
                                            headers={"Content-Type": "application/json"})
            assert 400 <= status < 500 and answer, (method, path, status, answer[:200])
        tried("input.bad_content_encoding")
        status, answer = await bot.send(method, route_url(path, "demo"), data=b"this is not gzip at all",
                                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert status == 400 and b"cannot be decoded" in answer, (method, path, status, answer[:200])
    big = {"tenant": "demo", "userid": "wangqiang", "text": "x", "client_id": "c", "values": {"n": 10 ** 30}}
    tried("input.big_int_body")
    status, answer = await bot.send("POST", "/console/api/messages", data=json.dumps(big).encode(),
                                    headers={"Content-Type": "application/json"})
    assert status == 400 and b"integer" in answer
    for path, query in [("/console/api/inbox", {"tenant": "demo", "userid": "wangqiang", "after": "9" * 30}),
                        ("/console/api/inbox", {"tenant": "demo", "userid": "wangqiang", "after": "-1"}),
                        ("/console/api/files/" + "9" * 30, {"tenant": "demo", "userid": "wangqiang"}),
                        ("/console/api/files/-5", {"tenant": "demo", "userid": "wangqiang"}),
                        ("/console/api/pulse", {"tenant": "demo", "userid": "hexin", "week": "9999-W52"}),
                        ("/console/api/pulse", {"tenant": "demo", "userid": "hexin", "week": "0001-W01"}),
                        ("/console/api/pulse/chart.png", {"tenant": "demo", "userid": "hexin", "week": "9999-W52"}),
                        ("/console/api/export.xlsx", {"tenant": "demo", "userid": "hexin", "week": "9999-W52"}),
                        ("/console/api/export.xlsx", {"tenant": "demo", "userid": "hexin", "week": "2026-W49",
                                                      "from": "0001-W01"})]:
        tried("input.out_of_range_query")
        status, answer = await bot.send("GET", path, query=query)
        assert 400 <= status < 500 and answer, (path, query, status, answer[:200])
    for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"):
        tried("input.clock_range")
        status, answer = await bot.send("PUT", "/console/api/clock", data=json.dumps({"now": when}).encode(),
                                        headers={"Content-Type": "application/json"})
        assert status == 400 and b"between the years" in answer
    assert await bot.inbox() == 0


# -- caps and timeouts on every route -------------------------------------------------------------------------


async def test_the_body_cap_applies_to_every_route(bot: Bot) -> None:
    """Every route the app serves refuses a body over server.max_body_bytes, declared or streamed."""
    routes = sorted({(r.method, r.resource.canonical) for r in bot.app.router.routes()
                     if r.resource is not None and r.method not in ("HEAD", "*")})
    assert ("POST", "/wecom/{tenant_key}/callback") in routes and ("POST", "/dingtalk/{tenant_key}/callback") in routes
    big = b"x" * (MAX_BODY + 1)

    async def trickle() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    for method, path in routes:
        url = route_url(path, "acme")
        for how, data in (("declared", big), ("chunked", trickle())):
            tried("http.body_cap")
            status, answer = await bot.send(method, url, data=data, headers={"Content-Type": "application/json"})
            assert status == 413 and answer, f"{method} {path} ({how}): HTTP {status}"
    assert await bot.inbox() == 0


async def _raw_exchange(port: int, head: bytes, trickle: bytes, pause: float) -> bytes:
    """Send `head`, then `trickle` a byte at a time; return the server's whole answer (b"" if it hung up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def dribble() -> None:
        for b in trickle:
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(pause)

    async def answer() -> bytes:
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = await reader.read(4096)
            if not chunk:
                return got
            got += chunk
        m = re.search(rb"content-length: *(\d+)", got, re.IGNORECASE)
        while m and len(got.split(b"\r\n\r\n", 1)[1]) < int(m.group(1)):
            chunk = await reader.read(4096)
            if not chunk:
                break
            got += chunk
        return got

    sender = asyncio.create_task(dribble())
    try:
        writer.write(head)
        await writer.drain()
        # A bound so a regression fails instead of hanging; the server answers long before.
        return await asyncio.wait_for(answer(), 20)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        sender.cancel()
        writer.close()


async def test_a_client_trickling_its_body_gets_408(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot_app, "BODY_TIMEOUT_SECONDS", 0.3)
    port = int(bot.base.rsplit(":", 1)[1])
    enc = craft(b"<xml><MsgType>text</MsgType><FromUserName>wangqiang</FromUserName><Content>x</Content></xml>")
    q = signed_query(enc)
    body = outer(enc)
    for path in (f"/wecom/acme/callback?msg_signature={q['msg_signature']}&timestamp={TS}&nonce={q['nonce']}",
                 "/console/api/messages"):
        tried("http.slow_body")
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        answer = await _raw_exchange(port, head, body, 0.05)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert b"request body not received in time" in answer and b"Connection: close" in answer
    assert await bot.inbox() == 0


async def test_a_client_that_never_finishes_its_request_head_is_disconnected(bot: Bot) -> None:
    """`serve` sets aiohttp's keep-alive timeout, which also closes connections stuck in the request head."""
    tried("http.slow_head")
    runner = web.AppRunner(bot.app, access_log=None, keepalive_timeout=0.3)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        head = b"POST /console/api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        answer = await _raw_exchange(port, head, b"X-Slow: " + b"a" * 400, 0.05)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
    finally:
        await runner.cleanup()


def test_serve_sets_the_timeouts_and_no_access_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot import cli

    seen: dict[str, Any] = {}

    def fake_run_app(app: Any, **kw: Any) -> None:
        app.close()  # the factory coroutine: not run here
        seen.update(kw)

    monkeypatch.setattr(web, "run_app", fake_run_app)
    config = parse_config({"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"}})
    assert cli._serve(config) == 0
    assert seen["keepalive_timeout"] == bot_app.IDLE_TIMEOUT_SECONDS
    assert seen["access_log"] is None  # request lines may carry ?token=: they are not logged
