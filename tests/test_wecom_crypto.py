"""WeCom callback crypto: Tencent's official vectors through the real endpoint, and the refusals."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.app import build_app
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.runtime import Runtime
from bot.wecom import WeComAdapter
from bot.wecom_crypto import CallbackQuery, CallbackRejected, WeComCrypto, parse_xml, sign
from handlers.router import Router
from store.models import InboxEvent

def _vectors() -> dict:
    for base in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[2], Path("/work")):
        p = base / "shared" / "fixtures" / "wecom_vectors.json"
        if p.exists():
            return json.loads(p.read_text(encoding="utf-8"))
    pytest.skip("shared/fixtures/wecom_vectors.json not found")


def _at(ts: str) -> datetime:
    return datetime.fromtimestamp(int(ts), timezone.utc)


def test_signature_matches_the_official_vectors() -> None:
    v = _vectors()
    g, m = v["verify_url"], v["message"]
    assert sign(v["token"], g["timestamp"], g["nonce"], g["echostr"]) == g["msg_signature"]
    encrypt = parse_xml(m["body"])["Encrypt"]
    assert sign(v["token"], m["timestamp"], m["nonce"], encrypt) == m["msg_signature"]


def test_round_trip_and_wrong_receive_id() -> None:
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    ours = WeComCrypto("tok", key, "wwcorp")
    theirs = WeComCrypto("tok", key, "wwother")
    q, body = ours.signed_envelope("<xml><Content>你好</Content></xml>", "1700000000", "42")
    now = _at("1700000000")
    assert ours.decrypt_callback(body, q, now, 300) == {"Content": "你好"}
    q2, body2 = theirs.signed_envelope("<xml><Content>x</Content></xml>", "1700000000", "42")
    with pytest.raises(CallbackRejected) as err:
        ours.decrypt_callback(body2, q2, now, 300)
    assert err.value.status == 403 and "corp id" in err.value.reason


@pytest.mark.parametrize("doc", [
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
    '<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><xml><Encrypt>x</Encrypt></xml>',
    "<xml><Encrypt>unclosed</xml>",
    "<notxml><Encrypt>x</Encrypt></notxml>",
])
def test_parse_xml_refuses_entities_dtds_and_garbage(doc: str) -> None:
    with pytest.raises(CallbackRejected) as err:
        parse_xml(doc)
    assert err.value.status == 400


def test_parse_xml_caps_size_and_reads_selected_items() -> None:
    with pytest.raises(CallbackRejected) as err:
        parse_xml("<xml><A>" + "x" * 70_000 + "</A></xml>")
    assert err.value.status == 413
    doc = ("<xml><TaskId><![CDATA[c1]]></TaskId><SelectedItems>"
           "<SelectedItem><QuestionKey><![CDATA[who]]></QuestionKey><OptionIds><OptionId><![CDATA[u1]]></OptionId>"
           "<OptionId><![CDATA[u2]]></OptionId></OptionIds></SelectedItem>"
           "<SelectedItem><QuestionKey>tag</QuestionKey><OptionIds><OptionId>t9</OptionId></OptionIds></SelectedItem>"
           "</SelectedItems></xml>")
    assert parse_xml(doc) == {"TaskId": "c1", "SelectedItems": {"who": ["u1", "u2"], "tag": ["t9"]}}


def test_verify_url_refuses_a_tampered_signature_and_stale_time() -> None:
    v = _vectors()
    g = v["verify_url"]
    crypto = WeComCrypto(v["token"], v["encoding_aes_key"], v["corp_id"])
    good = CallbackQuery(g["msg_signature"], g["timestamp"], g["nonce"], g["echostr"])
    assert crypto.verify_url(good, _at(g["timestamp"]), 300) == g["expected_plaintext"]
    bad = CallbackQuery("0" * 40, g["timestamp"], g["nonce"], g["echostr"])
    with pytest.raises(CallbackRejected):
        crypto.verify_url(bad, _at(g["timestamp"]), 300)
    with pytest.raises(CallbackRejected) as err:
        crypto.verify_url(good, _at(str(int(g["timestamp"]) + 301)), 300)
    assert err.value.status == 403


# -- the vectors through the real HTTP endpoint -------------------------------------------------
async def _serve(db, clock):  # type: ignore[no-untyped-def]
    v = _vectors()
    config = parse_config({"tenants": [{"key": "vec", "name": "向量", "wecom": {
        "corp_id": v["corp_id"], "agent_id": 1000002, "secret": "unused", "token": v["token"],
        "encoding_aes_key": v["encoding_aes_key"], "api_base": "http://127.0.0.1:9"}}]})
    runtime = Runtime(config, db, clock, router=Router())
    runtime.add_adapter(WeComAdapter(runtime))
    runner = web.AppRunner(build_app(runtime, start_background=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/wecom/vec/callback"


async def _inbox(db) -> list[InboxEvent]:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return list((await s.execute(select(InboxEvent))).scalars())


async def test_official_vectors_pass_through_the_endpoint_at_their_2016_time(db) -> None:  # type: ignore[no-untyped-def]
    v = _vectors()
    g, m = v["verify_url"], v["message"]
    clock = FrozenClock(_at(g["timestamp"]))
    runner, url = await _serve(db, clock)
    try:
        async with aiohttp.ClientSession() as http:
            # aiohttp encodes '+', '/' and '=' in echostr the way WeCom does.
            async with http.get(url, params={k: g[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}) as r:
                assert r.status == 200
                assert await r.read() == b"1288432023552776189"
            clock.set(_at(m["timestamp"]))
            q = urlencode({k: m[k] for k in ("msg_signature", "timestamp", "nonce")})
            async with http.post(f"{url}?{q}", data=m["body"].encode()) as r:
                assert r.status == 200
                assert await r.read() == b""
        rows = await _inbox(db)
        assert len(rows) == 1
        ev = rows[0].payload
        assert (ev["userid"], ev["kind"], ev["text"], ev["dedup_key"]) == ("ChenJiaShun", "text", "你好", "msg:1456453720")
        assert rows[0].tenant == "vec" and rows[0].platform == "wecom"
    finally:
        await runner.cleanup()


async def test_official_vectors_are_refused_at_todays_time(db) -> None:  # type: ignore[no-untyped-def]
    v = _vectors()
    g, m = v["verify_url"], v["message"]
    runner, url = await _serve(db, FrozenClock(datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, params={k: g[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}) as r:
                assert r.status == 403
                assert b"1288432023552776189" not in await r.read()
            q = urlencode({k: m[k] for k in ("msg_signature", "timestamp", "nonce")})
            async with http.post(f"{url}?{q}", data=m["body"].encode()) as r:
                assert r.status == 403
        assert await _inbox(db) == []
    finally:
        await runner.cleanup()
