"""DingTalk outbound: token, batchSend, cards, files, session webhooks, faults; directory sync."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select, update

from bot.core.clock import FrozenClock, utcnow
from bot.core.config import parse_config
from bot.dingtalk.adapter import DingTalkAdapter
from bot.dingtalk.api import DingTalkApi, DingTalkApiError
from bot.dingtalk.directory import sync_dingtalk_directory
from bot.runtime import Runtime
from cards.model import Button, Card, Message, Option, Select
from handlers.router import Router
from store import outbox
from store.db import Database
from store.models import Department, Employee, InboxEvent, OutboxMessage
from store.roster import ensure_tenant
from tests.fakes.dingtalk_server import FakeApp, FakeDingTalk, tenant_config

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


class Bot:
    def __init__(self, runtime: Runtime, adapter: DingTalkAdapter, fake: FakeDingTalk, app: FakeApp) -> None:
        self.runtime, self.adapter, self.fake, self.app = runtime, adapter, fake, app

    @property
    def clock(self) -> FrozenClock:
        assert isinstance(self.runtime.clock, FrozenClock)
        return self.runtime.clock

    @property
    def tenant(self) -> Any:
        return self.runtime.tenant("acme")

    async def enqueue(self, *items: tuple[str, Message]) -> None:
        async with self.runtime.db.transaction() as s:
            for userid, message in items:
                outbox.enqueue(s, tenant="acme", platform="dingtalk", userid=userid, message=message)

    async def deliver(self, rounds: int = 40) -> None:
        """Relay until nothing is pending, moving retries forward instead of waiting for them."""
        for _ in range(rounds):
            await self.runtime.relay_once()
            async with self.runtime.db.transaction() as s:
                res = await s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                                      .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
                if not res.rowcount:
                    return
        raise AssertionError("outbox did not drain")

    async def rows(self) -> list[OutboxMessage]:
        async with self.runtime.db.session() as s:
            return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


@asynccontextmanager
async def dingtalk_bot(db: Database, *, users: int = 5, mode: str = "stream", **fake_kw: Any) -> AsyncIterator[Bot]:
    clock = FrozenClock(NOW)
    fake = FakeDingTalk(now_ms=lambda: int(clock.now().timestamp() * 1000), **fake_kw)
    await fake.start()
    app = fake.add_app("dingsend", "send-secret")
    for i in range(users):
        fake.add_user(app, f"u{i:02d}", f"员工{i}")
    config = parse_config({"database": {"url": db.url}, "tenants": [tenant_config(app, fake.base_url, mode=mode)]})
    runtime = Runtime(config, db, clock, router=Router())
    adapter = DingTalkAdapter(runtime)
    runtime.add_adapter(adapter)
    try:
        yield Bot(runtime, adapter, fake, app)
    finally:
        await adapter.stop()
        await fake.stop()


def text(t: str) -> Message:
    return Message(kind="text", text=t)


async def test_identical_messages_share_calls_of_at_most_twenty(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db, users=47) as bot:
        await bot.enqueue(*[(f"u{i:02d}", text("早上好，本周最关键的一件事是什么？")) for i in range(45)],
                          ("u45", text("另一条")), ("u46", Message(kind="markdown", title="周报", text="**本周**")))
        await bot.deliver()
        assert bot.fake.calls["batchSend"] == 3 + 1 + 1
        for i in range(45):
            assert [(d.kind, d.content) for d in bot.fake.delivered[f"u{i:02d}"]] == [
                ("text", {"content": "早上好，本周最关键的一件事是什么？"})]
        assert bot.fake.delivered["u46"][0].content == {"title": "周报", "text": "**本周**"}
        assert {r.status for r in await bot.rows()} == {"sent"}
        assert bot.fake.token_requests == 1
        assert bot.fake.protocol_errors == []


async def test_two_copies_to_one_person_go_in_separate_calls(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        await bot.enqueue(("u01", text("提醒")), ("u01", text("提醒")), ("u02", text("提醒")))
        await bot.deliver()
        assert [d.content["content"] for d in bot.fake.delivered["u01"]] == ["提醒", "提醒"]
        assert len(bot.fake.delivered["u02"]) == 1
        assert bot.fake.protocol_errors == []


async def test_flow_controlled_people_get_it_later_and_invalid_ids_are_dead(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        bot.fake.flow_control("u01")
        await bot.enqueue(("u00", text("通知")), ("u01", text("通知")), ("nobody", text("通知")))
        await bot.runtime.relay_once()
        by_user = {r.userid: r for r in await bot.rows()}
        assert by_user["u00"].status == "sent"
        assert by_user["u01"].status == "pending" and "flow controlled" in by_user["u01"].last_error
        assert by_user["nobody"].status == "dead" and "invalid staff id" in by_user["nobody"].last_error
        assert bot.fake.delivered["u01"] == []
        await bot.deliver()
        assert [d.content["content"] for d in bot.fake.delivered["u01"]] == ["通知"]


async def test_every_message_is_delivered_once_despite_qps_errors_and_5xx(db: Database) -> None:
    async with dingtalk_bot(db, users=12, seed=7) as bot:
        bot.fake.set_fault_rate("*", 0.35, ("qps", "5xx"))
        cards = [Card(title="见证邀请", body=f"第{i}张", id=f"cfault{i:014d}",
                      buttons=[Button("accept", "接受见证", "primary"), Button("decline", "无法见证")]) for i in range(4)]
        await bot.enqueue(*[(f"u{i:02d}", text(f"只给 u{i:02d} 的话")) for i in range(12)],
                          *[(f"u{i:02d}", text("大家好")) for i in range(12)],
                          *[(f"u{i:02d}", Message(kind="card", card=c)) for i, c in enumerate(cards)])
        await bot.deliver()
        for c in cards:
            c.result = "已接受见证"
        await bot.enqueue(*[(f"u{i:02d}", Message(kind="card_update", card=c)) for i, c in enumerate(cards)])
        await bot.deliver()

        rejected = {kind for (_, kind) in bot.fake.rejected}
        assert {"qps", "5xx"} <= rejected  # the faults really happened
        for i in range(12):
            got = Counter(d.content.get("content") or d.card_biz_id for d in bot.fake.delivered[f"u{i:02d}"])
            want = Counter([f"只给 u{i:02d} 的话", "大家好"] + ([cards[i].id] if i < 4 else []))
            assert got == want, f"u{i:02d}"
        for c in cards:
            assert not bot.fake.cards[c.id].buttons()
            assert "✓ 已接受见证" in bot.fake.cards[c.id].markdown()
        rows = await bot.rows()
        assert {r.status for r in rows} == {"sent"} and len(rows) == 32
        assert bot.fake.protocol_errors == []


async def test_requests_stay_under_twenty_per_second(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db, users=45) as bot:
        await bot.enqueue(*[(f"u{i:02d}", text(f"第{i}条")) for i in range(45)])
        await bot.runtime.relay_once()
        assert {r.status for r in await bot.rows()} == {"sent"}
        assert bot.fake.calls["batchSend"] == 45
        assert not [k for k in bot.fake.rejected if k[1] == "qps-limit"]


async def test_token_is_cached_single_flight_renewed_early_and_dropped_when_refused() -> None:
    fake = FakeDingTalk()
    await fake.start()
    app = fake.add_app("dingtoken", "token-secret")
    fake.add_user(app, "u00")
    now = [1000.0]
    cfg = parse_config({"tenants": [tenant_config(app, fake.base_url)]}).tenants[0].dingtalk
    assert cfg is not None
    api = DingTalkApi(cfg, clock=lambda: now[0])
    try:
        await asyncio.gather(*(api.batch_send(["u00"], "sampleText", {"content": str(i)}) for i in range(10)))
        assert fake.token_requests == 1 and api.token_fetches == 1
        now[0] += 7200 - 299  # inside the refresh margin: renewed before DingTalk would refuse it
        await api.batch_send(["u00"], "sampleText", {"content": "again"})
        assert api.token_fetches == 2
        fake.revoke_tokens(app)  # DingTalk drops the token early
        await api.batch_send(["u00"], "sampleText", {"content": "after revoke"})
        assert api.token_fetches == 3
        assert [d.content["content"] for d in fake.delivered["u00"]][-1] == "after revoke"
        assert fake.rejected[("batchSend", "auth")] == 1
    finally:
        await api.close()
        await fake.stop()


async def test_wrong_secret_is_not_fatal_for_messages(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        bot.app.client_secret = "rotated"  # the operator rotated it in the console, not yet in the config
        await bot.enqueue(("u00", text("你好")))
        await bot.runtime.relay_once()
        [row] = await bot.rows()
        assert row.status == "pending" and "invalidClientIdOrSecret" in row.last_error


async def test_cards_render_as_template_instances_and_update_in_place(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        card = Card(title="你指的是哪一位？", body="“lina”匹配到多位同事，请选择：", id="cpick000000000000001",
                    fields=[("目标", "O1-KR2")],
                    buttons=[Button("cancel", "都不是")],
                    selects=[Select("witness", "见证人", (Option("li_na", "李娜（注册部）"), Option("li_na2", "李纳（质量部）")))],
                    submit=Button("pick", "确定", "primary"))
        await bot.enqueue(("u01", Message(kind="card", card=card)))
        await bot.deliver()
        sent = bot.fake.cards[card.id]
        assert sent.title == "你指的是哪一位？" and "**目标**：O1-KR2" in sent.markdown()
        assert [b["label"]["text"] for b in sent.buttons()] == ["都不是", "李娜（注册部）", "李纳（质量部）"]
        assert {b["actionType"] for b in sent.buttons()} == {"request"}
        assert (sent.kind, sent.callback_type, sent.template_id) == ("instance", "STREAM", bot.tenant.dingtalk.card_template_id)

        await bot.adapter.accept_card(bot.tenant, _press_data(bot.fake, card.id, "u01", "李纳（质量部）"))
        async with bot.runtime.db.session() as s:
            [row] = (await s.execute(select(InboxEvent))).scalars()
        assert (row.payload["action_key"], row.payload["values"]) == ("pick", {"witness": ["li_na2"]})

        card.result = "已选择 李纳"
        await bot.enqueue(("u01", Message(kind="card_update", card=card, hint=row.payload["hint"])))
        await bot.deliver()
        updated = bot.fake.cards[card.id]
        assert updated.buttons() == [] and "✓ 已选择 李纳" in updated.markdown()
        assert len(updated.versions) == 2
        assert [d.kind for d in bot.fake.delivered["u01"]] == ["card"]  # updated, not sent again
        assert bot.fake.protocol_errors == []


def _press_data(fake: FakeDingTalk, biz_id: str, userid: str, label: str) -> dict[str, Any]:
    btn = next(b for b in fake.cards[biz_id].buttons() if b["label"]["text"] == label)
    private = json.dumps({"cardPrivateData": {"actionIds": [btn["id"]], "params": btn["params"]}})
    return {"outTrackId": biz_id, "userId": userid, "userIdType": 1, "type": "actionCallback",
            "content": private, "corpId": "dingcorp", "spaceType": "IM_ROBOT", "extension": "{}"}


async def test_update_of_an_unknown_card_is_told_as_a_message(sqlite_db: Database) -> None:
    # Was dead-lettered; the outcome of a press must reach the person even when the card cannot change.
    async with dingtalk_bot(sqlite_db) as bot:
        await bot.enqueue(("u01", Message(kind="card_update", card=Card(title="x", id="cnever", result="已接受见证"))))
        await bot.runtime.relay_once()
        [row] = await bot.rows()
        assert row.status == "sent"
        assert [d.content["content"] for d in bot.fake.delivered["u01"]] == ["✓ 已接受见证"]
        assert bot.fake.calls["cardInstanceUpdate"] == 1


async def test_files_are_uploaded_then_sent(sqlite_db: Database, tmp_path: Path) -> None:
    export = tmp_path / "周报-2026-W49.xlsx"
    export.write_bytes(b"PK\x03\x04 not really a workbook")
    async with dingtalk_bot(sqlite_db) as bot:
        await bot.enqueue(("u01", Message(kind="file", path=str(export), filename=export.name, text="本周明细见附件")),
                          ("u02", Message(kind="file", path=str(export), filename=export.name)),
                          ("u03", Message(kind="file", path=str(tmp_path / "gone.xlsx"), filename="gone.xlsx")))
        await bot.deliver()
        assert bot.fake.calls["mediaUpload"] == 1  # one upload for both people
        [(media_id, (_, name, content))] = bot.fake.media.items()
        assert (name, content) == ("file.xlsx", export.read_bytes())
        got = bot.fake.delivered["u01"]
        assert [(d.kind, d.content) for d in got] == [
            ("file", {"mediaId": media_id, "fileName": export.name, "fileType": "xlsx"}),
            ("text", {"content": "本周明细见附件"})]
        assert [d.kind for d in bot.fake.delivered["u02"]] == ["file"]
        by_user = {r.userid: r for r in await bot.rows()}
        assert by_user["u03"].status == "dead" and "no longer exists" in by_user["u03"].last_error


async def test_replies_use_the_session_webhook_while_it_lives(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        data = bot.fake.robot_message(bot.app, "u01", "完成")
        assert await bot.adapter.accept_robot(bot.tenant, data) == 200
        await bot.enqueue(("u01", text("已标记完成")), ("u02", text("已标记完成")))
        await bot.deliver()
        assert [(d.via, d.content) for d in bot.fake.delivered["u01"]] == [("session", {"content": "已标记完成"})]
        assert [d.via for d in bot.fake.delivered["u02"]] == ["batchSend"]

        bot.clock.advance(minutes=89, seconds=30)  # the webhook has 30 s left: too close to use
        await bot.enqueue(("u01", text("第二条")))
        await bot.deliver()
        assert [d.via for d in bot.fake.delivered["u01"]] == ["session", "batchSend"]


async def test_a_refused_session_webhook_falls_back_to_batch_send(sqlite_db: Database) -> None:
    async with dingtalk_bot(sqlite_db) as bot:
        await bot.adapter.accept_robot(bot.tenant, bot.fake.robot_message(bot.app, "u01", "完成"))
        bot.fake.sessions.clear()  # DingTalk forgot the session early
        await bot.enqueue(("u01", text("收到")))
        await bot.deliver()
        assert [(d.via, d.content) for d in bot.fake.delivered["u01"]] == [("batchSend", {"content": "收到"})]


async def test_directory_sync_builds_people_departments_and_managers(db: Database) -> None:
    async with dingtalk_bot(db, users=0, qps_limit=0) as bot:
        fake, app = bot.fake, bot.app
        assert bot.tenant.dingtalk is not None
        api = DingTalkApi(bot.tenant.dingtalk, qps=0)  # the rate limit is tested elsewhere; this is about data
        fake.add_department(app, 1, "康骨医疗")
        fake.add_department(app, 10, "研发中心")
        fake.add_department(app, 11, "注册部", parent_id=10)
        fake.add_department(app, 20, "销售部")
        fake.add_user(app, "ceo", "陈总", [1])
        fake.add_user(app, "liuyang", "刘洋", [11], manager_userid="ceo")
        fake.add_user(app, "li_na", "李娜", [11], manager_userid="liuyang")
        fake.add_user(app, "wangqiang", "王强", [11, 20], manager_userid="liuyang")
        for i in range(105):  # more than one page of user/list
            fake.add_user(app, f"s{i:03d}", f"销售{i}", [20], manager_userid="ceo")
        tenant = bot.tenant
        await ensure_tenant(db, tenant)
        async with db.transaction() as s:
            s.add(Employee(tenant="acme", userid="liuyang", name="刘洋", roles="hr"))
            s.add(Employee(tenant="acme", userid="left_co", name="离职者"))

        report = await sync_dingtalk_directory(db, tenant, api=api)
        assert report.errors == []
        assert len(report.added) == 108 and report.updated == ["liuyang"] and report.deactivated == ["left_co"]
        async with db.session() as s:
            people = {e.userid: e for e in (await s.execute(select(Employee))).scalars()}
            paths = set((await s.execute(select(Department.path))).scalars())
        assert (people["li_na"].department, people["li_na"].manager_userid) == ("康骨医疗/研发中心/注册部", "liuyang")
        assert people["li_na"].pinyin == "lina"
        assert people["wangqiang"].department == "康骨医疗/研发中心/注册部"  # the first department is the main one
        assert people["liuyang"].roles == "manager;hr"  # hr kept from the roster, manager from DingTalk
        assert people["ceo"].roles == "manager" and people["ceo"].manager_userid is None
        assert people["s104"].department == "康骨医疗/销售部"
        assert not people["left_co"].active
        assert {"康骨医疗", "康骨医疗/研发中心", "康骨医疗/研发中心/注册部", "康骨医疗/销售部"} <= paths

        # A failing directory call changes nothing.
        del fake.users[app.client_id]["s000"]
        fake.fail_next("userGet", "5xx", "5xx")
        failed = await sync_dingtalk_directory(db, tenant, api=api)
        assert failed.errors and "未做任何修改" in failed.errors[0]
        async with db.session() as s:
            assert (await s.execute(select(Employee.active).where(Employee.userid == "s000"))).scalar_one()
        again = await sync_dingtalk_directory(db, tenant, api=api)
        assert again.deactivated == ["s000"] and again.added == [] and again.updated == []
        await api.close()


async def test_api_errors_say_whether_to_retry() -> None:
    fake = FakeDingTalk()
    await fake.start()
    app = fake.add_app("dingerr", "err-secret")
    fake.add_user(app, "u00")
    cfg = parse_config({"tenants": [tenant_config(app, fake.base_url)]}).tenants[0].dingtalk
    assert cfg is not None
    api = DingTalkApi(cfg)
    try:
        fake.fail_next("batchSend", "qps")
        with pytest.raises(DingTalkApiError) as qps:
            await api.batch_send(["u00"], "sampleText", {"content": "x"})
        assert qps.value.code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi" and qps.value.retry_after == 1.0
        fake.fail_next("batchSend", "5xx")
        with pytest.raises(DingTalkApiError) as busy:
            await api.batch_send(["u00"], "sampleText", {"content": "x"})
        assert busy.value.status == 503 and not busy.value.permanent
        with pytest.raises(DingTalkApiError) as bad:
            await api.batch_send(["u00"], "noSuchKey", {"content": "x"})
        assert bad.value.code == "invalidParameter.msgKey.invalid" and bad.value.permanent
        with pytest.raises(ValueError):
            await api.batch_send([f"u{i}" for i in range(21)], "sampleText", {"content": "x"})
    finally:
        await api.close()
        await fake.stop()
