"""The weekly key-action loop over WeCom, against the fake WeCom: callbacks in, API calls out."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, AsyncIterator

import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.demo import DATA, DEMO_TENANT
from bot.wecom import WeComAdapter
from store.db import Database
from store.models import WeeklyAction
from tests.fakes.wecom_server import CallbackClient, Delivered, FakeWeCom
from tests.harness import open_console, at, demo_test_config, seed_demo_company


class WeComPeople:
    """People using the WeCom app: they type, press card buttons and read what the app shows."""

    def __init__(self, fake: FakeWeCom, client: CallbackClient, runtime: Any, console: TestClient) -> None:
        self.fake = fake
        self.client = client
        self.runtime = runtime
        self.console = console
        self._seen: dict[str, int] = {}

    async def say(self, userid: str, text: str, **kw: Any) -> None:
        assert set(await self.client.say(userid, text, **kw)) == {200}
        await self.runtime.settle()

    def new(self, userid: str) -> list[Delivered]:
        got = self.fake.messages_to(userid)
        start = self._seen.get(userid, 0)
        self._seen[userid] = len(got)
        return got[start:]

    def texts(self, userid: str) -> list[str]:
        return [d.text for d in self.new(userid) if d.msgtype in ("text", "markdown")]

    def card(self, userid: str, title: str) -> dict[str, Any]:
        """The card titled `title` as `userid` sees it now (with updates applied)."""
        for d in reversed(self.fake.messages_to(userid)):
            if d.msgtype == "template_card" and title in d.text:
                return self.fake.cards[d.task_id].card
        raise AssertionError(f"{userid} has no card titled {title!r}")

    async def press(self, userid: str, card: dict[str, Any], text: str, **kw: Any) -> str:
        key = next((b["key"] for b in card.get("button_list", []) if b["text"] == text), None)
        assert key is not None, f"no button {text!r} on {card['main_title']['title']!r}"
        xml, code = self.client.press_xml(userid, card["task_id"], key)
        assert set(await self.client.post(xml, **kw)) == {200}
        await self.runtime.settle()
        return code

    async def run_job(self, name: str, when: Any) -> int:
        r = await self.console.post(f"/console/api/jobs/{name}/run", json={"tenant": DEMO_TENANT, "at": when.isoformat()})
        assert r.status == 200, await r.text()
        await self.runtime.settle()
        return int((await r.json())["sent"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom()
    with open(DATA / "roster.csv", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(io.StringIO(fh.read())):
            f.add_user(row["userid"], row["name"])
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


async def test_weekly_loop_over_wecom(db: Database, fake: FakeWeCom, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-10-10 09:30"))  # a make-up working Saturday
    config = demo_test_config(db.url, tmp_path, wecom={
        "corp_id": fake.corp_id, "agent_id": fake.agent_id, "secret": fake.secret, "token": fake.token,
        "encoding_aes_key": fake.encoding_aes_key, "api_base": fake.url})
    await seed_demo_company(db, config)
    runtime = make_runtime(config, db, clock)
    adapter = runtime.adapters["wecom"]
    assert isinstance(adapter, WeComAdapter)
    adapter.api_options = {"quick_backoff": 0.01}
    app = build_app(runtime, start_background=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as console:
        await open_console(console)
        url = str(console.make_url(f"/wecom/{DEMO_TENANT}/callback"))
        client = fake.callback_client(url, now=lambda: clock.now().timestamp(), retry_interval=0.05)
        people = WeComPeople(fake, client, runtime, console)
        try:
            # 09:30: the prompt reaches everyone through WeCom, triggered by hand from the console.
            assert await people.run_job("morning_prompt", at("2026-10-10 09:30")) == 40
            prompt = people.new("wangqiang")
            assert len(prompt) == 1 and "本周关键动作" in prompt[0].text

            # 王强 answers in one line; WeCom delivers the callback twice, it counts once.
            await people.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜", repeat=2)
            summary = people.card("wangqiang", "已记录本周关键动作")
            fields = {h["keyname"]: h["value"] for h in summary.get("horizontal_content_list", [])}
            assert fields.get("见证人") == "李娜"
            async with db.session() as s:
                assert len(list((await s.execute(select(WeeklyAction))).scalars())) == 1

            # 李娜 gets the witness card and accepts; the card turns grey via the press's ResponseCode.
            invite = people.card("li_na", "见证邀请")
            people.new("wangqiang")
            code = await people.press("li_na", invite, "接受见证")
            state = fake.cards[invite["task_id"]]
            assert len(state.updates) == 1 and state.card["replace_text"].startswith("已接受见证")
            assert fake._codes[code]["used"] is True
            assert "李娜 已接受见证：完成2份临床评价报告初稿" in people.texts("wangqiang")

            # A second press is impossible in WeCom (the card is grey); the fake refuses it too.
            with pytest.raises(AssertionError, match="greyed out"):
                client.press_xml("li_na", invite["task_id"], "decline")

            # Done → 李娜 confirms → 王强 is told.
            clock.set(at("2026-10-10 16:00"))
            await people.say("wangqiang", "完成")
            assert "已标记完成，已请 李娜 确认。" in people.texts("wangqiang")
            confirm = people.card("li_na", "请确认完成")
            await people.press("li_na", confirm, "确认完成")
            assert "李娜 确认你已完成：完成2份临床评价报告初稿 👍" in people.texts("wangqiang")
            assert fake.cards[confirm["task_id"]].card.get("replace_text")
            async with db.session() as s:
                action = (await s.execute(select(WeeklyAction))).scalar_one()
            assert (action.status, action.witness_userid, action.goal_code) == ("confirmed", "li_na", "O1-KR2")

            # 17:30 on the week's last working day: HR receives the pulse and the XLSX export as a WeCom file.
            clock.set(at("2026-10-10 17:30"))
            assert await people.run_job("pulse", at("2026-10-10 17:30")) > 0
            files = [d for d in fake.messages_to("zhoumin") if d.msgtype == "file"]
            assert len(files) == 1
            media = fake.media[files[0].body["file"]["media_id"]]
            assert media["filename"].endswith(".xlsx")
            xlsx = tmp_path / "from_wecom.xlsx"
            xlsx.write_bytes(media["content"])
            rows = list(openpyxl.load_workbook(xlsx, read_only=True).worksheets[0].iter_rows(values_only=True))
            header = rows[0]
            row = dict(zip(header, next(r for r in rows[1:] if r[header.index("工号")] == "wangqiang")))
            assert (row["关键动作"], row["见证人"], row["动作状态"]) == ("完成2份临床评价报告初稿", "李娜", "已确认")

            # Nothing the bot sent was refused by WeCom or silently dropped.
            assert all(code == 0 for path, code in fake.calls if path != "gettoken")
            assert fake.silently_dropped == []
        finally:
            await adapter.stop()
