"""The weekly key-action loop over DingTalk, as people live it: Stream mode and HTTP mode.

The bot runs with the demo company; the fake DingTalk plays the people. They write
to the robot (Stream: frames pushed to the real SDK client; HTTP: signed POSTs),
see what the bot sent through the OpenAPI, and press card buttons.
"""
from __future__ import annotations

import io
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import openpyxl
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.dingtalk.adapter import DingTalkAdapter
from bot.runtime import Runtime
from store.db import Database
from store.models import Employee, OutboxMessage, WeeklyAction
from tests.fakes.dingtalk_server import GENERAL_TEMPLATE_ID, FakeApp, FakeCard, FakeDingTalk, tenant_config
from tests.harness import at, demo_test_config, seed_demo_company


class DingTalkPeople:
    """The demo company's people, on DingTalk."""

    def __init__(self, runtime: Runtime, fake: FakeDingTalk, app: FakeApp, callback_url: str) -> None:
        self.runtime, self.fake, self.app, self.callback_url = runtime, fake, app, callback_url
        self.mode = "stream" if not callback_url else "http"
        self._seen: dict[str, int] = {}
        self._n = 0

    @property
    def tenant(self) -> Any:
        return self.runtime.config.tenants[0]

    async def say(self, userid: str, text: str, *, group_at: list[str] | None = None) -> None:
        """A 1:1 message, or with `group_at` a group message that @s the robot and those people."""
        self._n += 1
        kw: dict[str, Any] = {"msg_id": f"msg{self._n:04d}=="}
        if group_at is not None:
            kw.update(conversation_type="2", conversation_id="cidPROJECT==", at_users=group_at)
        if self.mode == "stream":
            frame = await self.fake.push_robot_message(self.app, userid, text, **kw)
            await self.fake.wait_acked([frame])
        else:
            assert await self.fake.post_robot_message(self.app, self.callback_url, userid, text, **kw) == 200
        await self.runtime.settle()

    async def press(self, userid: str, card: FakeCard, button: str) -> None:
        frames_before = set(self.fake.frames)
        status = await self.fake.press(card.biz_id, userid, button)
        if self.mode == "stream":
            await self.fake.wait_acked([f for m, f in self.fake.frames.items() if m not in frames_before])
        else:
            assert status == 200
        await self.runtime.settle()

    def new(self, userid: str) -> list[Any]:
        got = self.fake.delivered[userid]
        out = got[self._seen.get(userid, 0):]
        self._seen[userid] = len(got)
        return out

    def texts(self, userid: str) -> list[str]:
        return [d.content.get("content", d.content.get("text", "")) for d in self.new(userid)
                if d.kind in ("text", "markdown")]

    def card(self, userid: str, title: str) -> FakeCard:
        cards = [c for c in self.fake.cards_of(userid) if title in c.title]
        assert cards, f"{userid} has no card titled {title!r}: {[c.title for c in self.fake.cards_of(userid)]}"
        return cards[-1]


@asynccontextmanager
async def dingtalk_company(db: Database, tmp_path: Path, clock: FrozenClock, mode: str, *,
                           card_template_id: str = GENERAL_TEMPLATE_ID) -> AsyncIterator[DingTalkPeople]:
    fake = FakeDingTalk(now_ms=lambda: int(clock.now().timestamp() * 1000), redeliver_after=1.0)
    await fake.start()
    app = fake.add_app("dingkanggu", "kanggu-secret", corp_id="dingkanggu")
    entry = tenant_config(app, fake.base_url, mode=mode, card_template_id=card_template_id)
    config = demo_test_config(db.url, tmp_path, dingtalk=entry["dingtalk"])
    await seed_demo_company(db, config)
    async with db.session() as s:
        for e in (await s.execute(select(Employee))).scalars():
            fake.add_user(app, e.userid, e.name)
    runtime = make_runtime(config, db, clock)
    adapter = runtime.adapters["dingtalk"]
    assert isinstance(adapter, DingTalkAdapter)
    server = TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)
    await server.start_server()
    await adapter.start()
    try:
        url = ""
        if mode == "http":
            await adapter.register_card_callback(config.tenants[0], str(server.make_url("/")))
            url = str(server.make_url(f"/dingtalk/{config.tenants[0].key}/callback"))
        else:
            await fake.wait_connected(app)
        yield DingTalkPeople(runtime, fake, app, url)
        assert fake.protocol_errors == []
        assert fake.unanswerable_presses == []
        assert fake.late_or_missing_acks() == []
    finally:
        await adapter.stop()
        await server.close()
        await fake.stop()


@pytest.mark.parametrize("mode", ["stream", "http"])
async def test_weekly_loop_over_dingtalk(db: Database, tmp_path: Path, mode: str) -> None:
    clock = FrozenClock(at("2026-10-10 09:30"))  # a make-up working Saturday, last working day of 2026-W41
    async with dingtalk_company(db, tmp_path, clock, mode) as people:
        tenant = people.tenant
        # 09:30: the prompt reaches everyone, 王强 included, by batchSend (20 people a call):
        # a shared card becomes markdown whose button is a reply hint.
        assert await people.runtime.run_job("morning_prompt", tenant, clock.now()) == 40
        await people.runtime.settle()
        prompt = people.new("wangqiang")
        assert len(prompt) == 1 and prompt[0].kind == "markdown"
        assert "@见证同事" in prompt[0].content["text"] and "回复 「本周跳过」" in prompt[0].content["text"]
        assert sum(1 for u in people.fake.delivered for d in people.fake.delivered[u] if d.kind == "markdown") == 40

        # 王强 answers; in HTTP mode from the project group, @-ing the robot and 李娜.
        if mode == "http":
            await people.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜", group_at=["li_na"])
        else:
            await people.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        summary = people.card("wangqiang", "已记录本周关键动作")
        assert "**见证人**：李娜" in summary.markdown()

        # 李娜 gets the invitation card and accepts; the card shows the answer in place of its buttons.
        invite = people.card("li_na", "见证邀请")
        assert "王强 邀请你见证本周关键动作：完成2份临床评价报告初稿" in invite.markdown()
        people.new("wangqiang")
        await people.press("li_na", invite, "接受见证")
        assert "李娜 已接受见证：完成2份临床评价报告初稿" in people.texts("wangqiang")
        assert invite.buttons() == [] and "✓ 已接受见证" in invite.markdown()
        assert len(invite.versions) == 2

        # Done → 李娜 asked → confirms → 王强 told.
        clock.set(at("2026-10-10 16:00"))
        await people.say("wangqiang", "完成")
        assert "已标记完成，已请 李娜 确认。" in people.texts("wangqiang")
        confirm = people.card("li_na", "请确认完成")
        await people.press("li_na", confirm, "确认完成")
        assert "李娜 确认你已完成：完成2份临床评价报告初稿 👍" in people.texts("wangqiang")
        assert confirm.buttons() == []
        # Replies to someone in a live 1:1 chat go through its sessionWebhook; a group's is never used for them.
        vias = [d.via for d in people.fake.delivered["wangqiang"] if d.kind == "text"]
        if mode == "stream":
            assert set(vias) == {"session"}
        else:  # the first answer followed the group message; the last ones followed 王强's 1:1 "完成"
            assert vias[0] == "batchSend" and vias[-1] == "session"

        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
        assert (action.status, action.witness_userid, action.goal_code) == ("confirmed", "li_na", "O1-KR2")

        # 17:30: the pulse; HR gets the company card and the XLSX export as a DingTalk file.
        clock.set(at("2026-10-10 17:30"))
        assert await people.runtime.run_job("pulse", tenant, clock.now()) > 0
        await people.runtime.settle()
        assert people.card("zhoumin", "组织脉搏")
        [export] = [d for d in people.fake.delivered["zhoumin"] if d.kind == "file"]
        assert export.content["fileName"].endswith(".xlsx") and export.content["fileType"] == "xlsx"
        _, _, content = people.fake.media[export.content["mediaId"]]
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        row = dict(zip(rows[0], next(r for r in rows[1:] if r[rows[0].index("工号")] == "wangqiang")))
        assert (row["关键动作"], row["见证人"], row["动作状态"]) == ("完成2份临床评价报告初稿", "李娜", "已确认")

        async with db.session() as s:
            statuses = {r.status for r in (await s.execute(select(OutboxMessage))).scalars()}
        assert statuses == {"sent"}  # every message of the loop went out, none dead-lettered


@pytest.mark.parametrize("mode", ["stream", "http"])
async def test_cards_are_template_instances_whose_presses_come_back_as_documented(
        db: Database, tmp_path: Path, mode: str) -> None:
    """李娜's invitation is a card instance with the callback type of the mode; her press is answered
    at once and the card is updated afterwards, never from inside the callback (the fake checks)."""
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with dingtalk_company(db, tmp_path, clock, mode) as people:
        await people.say("wangqiang", "O1-KR2 [登录](http://e.cn) @李娜")
        invite = people.card("li_na", "见证邀请")
        assert (invite.kind, invite.callback_type) == ("instance", "STREAM" if mode == "stream" else "HTTP")
        assert (invite.route_key != "") == (mode == "http")
        # User text inside card markdown is escaped: the action is text, not a link.
        assert "\\[登录\\](http://e.cn)" in invite.markdown()
        await people.press("li_na", invite, "接受见证")
        assert invite.buttons() == [] and "✓ 已接受见证" in invite.markdown()
        assert invite.pressing == 0
        assert people.fake.calls["cardInstanceUpdate"] == 1 and people.fake.calls["cardSend"] == 0


async def test_without_a_card_template_cards_are_markdown_that_says_what_to_type(
        db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    with caplog.at_level("WARNING", logger="bot.dingtalk.adapter"):
        async with dingtalk_company(db, tmp_path, clock, "stream", card_template_id="") as people:
            await people.runtime.adapters["dingtalk"].start()  # a second start does not say it again
            await people.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
            [invite] = [d for d in people.new("li_na") if d.kind == "markdown"]
            assert "王强 邀请你见证本周关键动作：完成2份临床评价报告初稿" in invite.content["text"]
            assert "回复 「接受见证」 / 「无法见证」" in invite.content["text"]
            assert people.fake.cards == {}  # no card API call without a template
            # 李娜 types what the message says; 王强 is told, as after a press.
            await people.say("li_na", "接受见证")
            assert "李娜 已接受见证：完成2份临床评价报告初稿" in people.texts("wangqiang")
            assert any("✓ 已接受见证" in t for t in people.texts("li_na"))
            clock.set(at("2026-11-30 16:00"))
            await people.say("wangqiang", "完成")
            [ask] = [d for d in people.new("li_na") if d.kind == "markdown"]
            assert "回复 「确认完成」 / 「尚未完成」" in ask.content["text"]
            await people.say("li_na", "确认完成")
            assert "李娜 确认你已完成：完成2份临床评价报告初稿 👍" in people.texts("wangqiang")
    said = [r.getMessage() for r in caplog.records if "card_template_id" in r.getMessage()]
    assert len(said) == 1 and "typed answers" in said[0]
    async with db.session() as s:
        action = (await s.execute(select(WeeklyAction))).scalar_one()
    assert action.status == "confirmed"
