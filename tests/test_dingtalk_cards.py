"""DingTalk cards as the platform documents them: 消息卡片高级版 instances of one general template.

The fake delivers a press the way DingTalk does — over Stream only for cards created with
callbackType STREAM, over HTTP only to a registered route, never for the legacy StandardCard
in Stream mode — and `dongxian dingtalk check` names what a tenant's app is missing.
"""
from __future__ import annotations

import io
import json
import zipfile
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.dingtalk.adapter import DingTalkAdapter
from bot.dingtalk.api import DingTalkApi, DingTalkApiError
from bot.dingtalk.check import check_dingtalk
from bot.runtime import Runtime
from cards import dingtalk as render
from cards.model import Button, Card, Message, Option, Select
from handlers.router import Router
from store import outbox
from store.db import Database
from store.models import InboxEvent, OutboxMessage
from tests.fakes.dingtalk_server import (CARD_TOPIC, LEGACY_CARD, TEMPLATE_FILE, FakeApp, FakeDingTalk,
                                         template_variables, tenant_config)

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


@asynccontextmanager
async def stream_bot(db: Database, **tenant_kw: Any) -> AsyncIterator[tuple[Runtime, DingTalkAdapter, FakeDingTalk, FakeApp]]:
    fake = FakeDingTalk(now_ms=lambda: NOW_MS)
    await fake.start()
    app = fake.add_app("dingcards", "cards-secret")
    for u in ("wangqiang", "li_na"):
        fake.add_user(app, u)
    config = parse_config({"database": {"url": db.url}, "tenants": [tenant_config(app, fake.base_url, **tenant_kw)]})
    runtime = Runtime(config, db, FrozenClock(NOW), router=Router())
    adapter = DingTalkAdapter(runtime)
    runtime.add_adapter(adapter)
    await adapter.start()
    try:
        await fake.wait_connected(app)
        yield runtime, adapter, fake, app
    finally:
        await adapter.stop()
        await fake.stop()


async def inbox(db: Database) -> list[InboxEvent]:
    async with db.session() as s:
        return list((await s.execute(select(InboxEvent))).scalars())


def test_the_shipped_template_has_exactly_the_parameters_every_card_fills() -> None:
    template = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    card = Card(title="t", body="b", fields=[("k", "v")], buttons=[Button("a", "A")])
    assert set(render.card_params(card)) == template_variables(template)
    buttons = [c for c in template["layout"] if c["component"] == "button"]
    assert len(buttons) == render.MAX_BUTTONS
    assert all(b["action"] == {"type": "callback", "actionId": f"btn{i}", "params": {"key": f"${{btn{i}_key}}"}}
               for i, b in enumerate(buttons, 1))
    assert len([c for c in template["layout"] if c["component"] == "key_value"]) == render.MAX_ROWS


def test_card_params_are_strings_within_the_documented_sizes() -> None:
    card = Card(title="你指的是哪一位？", body="x" * 2000, fields=[("目标", "O1-KR2")],
                buttons=[Button("cancel", "都不是")],
                selects=[Select("witness", "见证人", (Option("li_na", "李娜（注册部）"), Option("li_na2", "李纳（质量部）")))],
                submit=Button("pick", "确定", "primary"))
    params = render.card_params(card)
    assert all(isinstance(v, str) and len(v.encode()) <= 1024 and len(k.encode()) <= 100 for k, v in params.items())
    assert [params[f"btn{i}_text"] for i in (1, 2, 3)] == ["都不是", "李娜（注册部）", "李纳（质量部）"]
    assert render.parse_action_id(params["btn3_key"]) == ("pick", {"witness": ["li_na2"]})
    assert (params["btn4_show"], params["row1_show"], params["row2_show"]) == ("false", "true", "false")
    card.result = "已选择 李纳"
    answered = render.card_params(card)
    assert answered["result"] == "✓ 已选择 李纳" and answered["btn1_show"] == "false"
    with pytest.raises(render.CardTooBig):
        render.card_params(Card(title="x", buttons=[Button(f"k{i}", str(i)) for i in range(11)]))


def test_user_text_is_escaped_in_card_markdown() -> None:
    assert render.escape_markdown("[登录](http://e.cn)") == "\\[登录\\](http://e.cn)"
    assert render.escape_markdown("# 标题\n1. 第一\n- 列表 **粗**") == "\\# 标题\n1\\. 第一\n\\- 列表 \\*\\*粗\\*\\*"
    assert render.escape_markdown("O1-KR2 完成2份报告") == "O1-KR2 完成2份报告"  # plain text is untouched
    msg = render.card_markdown(Message(kind="card", card=Card(title="见证邀请", body="王强：[登录](http://e.cn)",
                                                              fields=[("见证人", "*李娜*")])))
    assert "[登录](" not in msg.text and "\\[登录\\]" in msg.text and "\\*李娜\\*" in msg.text


async def test_a_standard_card_in_stream_mode_gets_no_press_back(sqlite_db: Database) -> None:
    """The legacy StandardCard API has no Stream callbacks: a press of it never reaches the bot."""
    async with stream_bot(sqlite_db) as (runtime, adapter, fake, app):
        tenant = runtime.tenant("acme")
        assert tenant is not None
        api = adapter.api(tenant)
        body = {"cardTemplateId": "StandardCard", "robotCode": app.robot_code, "cardBizId": "cstd0000000000000001",
                "singleChatReceiver": json.dumps({"userId": "li_na"}), "sendOptions": {"atAll": False},
                "cardData": json.dumps(render_standard_card())}
        # A new internal app cannot be granted this API at all …
        with pytest.raises(DingTalkApiError) as refused:
            await api.call("POST", "/v1.0/im/v1.0/robot/interactiveCards/send", body)
        assert refused.value.code == "Forbidden.AccessDenied.AccessTokenPermissionDenied"
        # … and where an old app still has it, its presses do not come over Stream.
        app.permissions.add(LEGACY_CARD)
        await api.call("POST", "/v1.0/im/v1.0/robot/interactiveCards/send", body)
        assert await fake.press("cstd0000000000000001", "li_na", "接受见证") == 0
        assert fake.unanswerable_presses and not [f for f in fake.frames.values() if f.kind == "card"]
        assert await inbox(sqlite_db) == []
        # The same card as a template instance (callbackType STREAM) is pressed and stored.
        card = Card(title="见证邀请", id="cinst000000000000001", buttons=[Button("accept", "接受见证", "primary")])
        assert (await adapter.send(tenant, "li_na", Message(kind="card", card=card))).ok
        await fake.press(card.id, "li_na", "接受见证")
        await fake.wait_acked([f for f in fake.frames.values() if f.kind == "card"])
        [row] = await inbox(sqlite_db)
        assert (row.payload["card_id"], row.payload["action_key"]) == (card.id, "accept")
        assert fake.frames[next(iter(f for f in fake.frames if fake.frames[f].kind == "card"))].frame["headers"]["topic"] \
            == CARD_TOPIC
        assert fake.protocol_errors == []


def render_standard_card() -> dict[str, Any]:
    return {"config": {"autoLayout": True}, "header": {"title": {"type": "text", "text": "见证邀请"}},
            "contents": [{"type": "markdown", "text": "王强 邀请你见证", "id": "md1"},
                         {"type": "action", "id": "act1", "actions": [{
                             "type": "button", "label": {"type": "text", "text": "接受见证", "id": "lb1"},
                             "actionType": "request", "status": "primary", "id": "btn_accept"}]}]}


async def test_registering_a_route_twice_without_force_is_the_documented_500(sqlite_db: Database) -> None:
    async with stream_bot(sqlite_db) as (runtime, adapter, fake, app):
        tenant = runtime.tenant("acme")
        assert tenant is not None
        api = adapter.api(tenant)
        reg = {"callbackRouteKey": "dongxian_acme", "callbackUrl": "https://bot.example.com/dingtalk/acme/callback",
               "apiSecret": "s" * 32}
        assert (await api.call("POST", "/v1.0/card/callbacks/register", reg))["result"]["apiSecret"] == "s" * 32
        with pytest.raises(DingTalkApiError) as again:
            await api.call("POST", "/v1.0/card/callbacks/register", reg)
        assert (again.value.status, again.value.code, again.value.permanent) == (500, "param.callbackRouteKeyExist", True)
        # The bot registers with forceUpdate, so running the command again is fine.
        assert (await api.register_card_callback("dongxian_acme", reg["callbackUrl"]))["callbackUrl"] == reg["callbackUrl"]


async def test_people_dingtalk_filters_are_not_marked_delivered(sqlite_db: Database) -> None:
    async with stream_bot(sqlite_db) as (runtime, adapter, fake, app):
        fake.filtered.add("li_na")
        async with runtime.db.transaction() as s:
            for u in ("wangqiang", "li_na"):
                outbox.enqueue(s, tenant="acme", platform="dingtalk", userid=u, message=Message(kind="text", text="通知"))
        await runtime.relay_once()
        async with runtime.db.session() as s:
            rows = {r.userid: r for r in (await s.execute(select(OutboxMessage))).scalars()}
        assert rows["wangqiang"].status == "sent"
        assert rows["li_na"].status == "dead" and "filtered" in rows["li_na"].last_error
        assert fake.delivered["li_na"] == []


async def test_files_of_other_types_go_zipped_as_a_documented_file_type(sqlite_db: Database, tmp_path: Path) -> None:
    csv = tmp_path / "周报-2026-W49.csv"
    csv.write_text("工号,关键动作\nwangqiang,完成\n", encoding="utf-8")
    async with stream_bot(sqlite_db) as (runtime, adapter, fake, app):
        tenant = runtime.tenant("acme")
        assert tenant is not None
        res = await adapter.send(tenant, "wangqiang", Message(kind="file", path=str(csv), filename=csv.name))
        assert res.ok
        [file] = fake.delivered["wangqiang"]
        assert (file.content["fileName"], file.content["fileType"]) == ("周报-2026-W49.zip", "zip")
        _, _, content = fake.media[file.content["mediaId"]]
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            assert z.read(csv.name) == csv.read_bytes()


async def test_readyz_reports_the_markdown_fallback(sqlite_db: Database) -> None:
    async with stream_bot(sqlite_db, card_template_id="") as (runtime, adapter, fake, app):
        assert adapter.notices() == ["acme: no card_template_id, cards go out as markdown with typed answers"]
        from aiohttp.test_utils import TestClient, TestServer

        from bot.app import build_app
        async with TestClient(TestServer(build_app(runtime, start_background=False))) as client:
            r = await client.get("/readyz")
            body = await r.json()
        assert body["notices"] == adapter.notices()


# -- dongxian dingtalk check ------------------------------------------------------------------------------
async def run_check(fake: FakeDingTalk, app: FakeApp, **cfg: Any) -> list[tuple[bool, str]]:
    entry = tenant_config(app, fake.base_url)
    entry["dingtalk"].update(cfg)
    tenant = parse_config({"tenants": [entry]}).tenants[0]
    assert tenant.dingtalk is not None
    api = DingTalkApi(tenant.dingtalk)
    try:
        return [(f.ok, f.text) for f in await check_dingtalk(tenant, api)]
    finally:
        await api.close()


async def test_check_passes_on_a_well_set_up_app_and_sends_nothing() -> None:
    fake = FakeDingTalk()
    await fake.start()
    try:
        app = fake.add_app("dingok", "ok-secret")
        fake.add_user(app, "wangqiang")
        findings = await run_check(fake, app)
        assert all(ok for ok, _ in findings), findings
        assert sum(len(v) for v in fake.delivered.values()) == 0  # no one got anything
        assert all(not c.userid for c in fake.cards.values())  # the test card is in nobody's chat
    finally:
        await fake.stop()


@pytest.mark.parametrize("case", ["wrong_secret", "robot_code", "send_permission", "card_permission",
                                  "unknown_template", "no_template"])
async def test_check_names_what_is_missing(case: str) -> None:
    fake = FakeDingTalk()
    await fake.start()
    try:
        app = fake.add_app("dingcheck", "check-secret")
        cfg: dict[str, Any] = {}
        if case == "wrong_secret":
            cfg["client_secret"] = "not-the-secret"
        elif case == "robot_code":
            cfg["robot_code"] = "dingsomeoneelse"
        elif case == "send_permission":
            app.permissions.discard("qyapi_robot_sendmsg")
        elif case == "card_permission":
            app.permissions.discard("Card.Instance.Write")
        elif case == "unknown_template":
            cfg["card_template_id"] = "00000000-0000-0000-0000-000000000000.schema"
        else:
            cfg["card_template_id"] = ""
        failed = [text for ok, text in await run_check(fake, app, **cfg) if not ok]
        expected = {"wrong_secret": "client_id/client_secret 被拒绝", "robot_code": "robot_code dingsomeoneelse 不是这个应用的机器人",
                    "send_permission": "缺少权限 (missing permission) qyapi_robot_sendmsg",
                    "card_permission": "缺少权限 (missing permission) Card.Instance.Write",
                    "unknown_template": "card_template_id 00000000-0000-0000-0000-000000000000.schema 不存在或未发布",
                    "no_template": "card_template_id 未配置"}[case]
        assert len(failed) == 1 and failed[0].startswith(expected), failed
    finally:
        await fake.stop()


def test_check_is_a_cli_command(tmp_path: Path) -> None:
    from bot.cli import build_parser
    args = build_parser().parse_args(["dingtalk", "check", "--tenant", "acme", "--config", str(tmp_path / "c.toml")])
    assert args.fn.__name__ == "cmd_dingtalk_check"
