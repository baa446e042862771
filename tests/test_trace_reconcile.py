"""The nightly sweep of WeCom 审批: 张伟's contract is approved by 黄燕 while the bot is down and the
callback is lost; at 02:00 the sweep (oa/getapprovalinfo, then oa/getapprovaldetail) stores it and the
tracking row appears. An approval whose callback came, or whose callback arrives after the sweep,
creates nothing; the sweep runs once a night — on SQLite and PostgreSQL; and the fake refuses what
WeCom refuses."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from bot.cli import main
from tests.fakes.wecom_server import BotUnderTest, FakeWeCom
from tests.trace_support import CONTRACT_TEMPLATE, approval_bot, approval_fake, events, receivables, records

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
NIGHT = datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc)  # 02:00 the next night in Shanghai
DUE = str(int(datetime(2027, 3, 30, 16, 0, tzinfo=timezone.utc).timestamp()))
OTHER_TEMPLATE = "C4NzbzLjXBX6oAopDJr9yFLRDyhUbnXSVACnmEZzK"  # 请假: no rule reads it


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with approval_fake() as f:
        yield f


@pytest.fixture
async def bot(db: Any, fake: FakeWeCom) -> AsyncIterator[BotUnderTest]:
    async with approval_bot(db, fake, NOW) as b:
        yield b


def contract(fake: FakeWeCom, sp_no: str, *, applied: int, template: str = CONTRACT_TEMPLATE,
             customer: str = "宁波市第一医院") -> None:
    fake.add_approval(sp_no, sp_name="合同审批", template_id=template, applyer="zhangwei", apply_time=applied,
                      approvers=["huangyan"], fields=[
                          ("Text", "客户名称", {"text": customer}),
                          ("Money", "合同金额", {"new_money": "1280000"}),
                          ("Date", "回款日期", {"date": {"type": "day", "s_timestamp": DUE}})])


async def test_a_lost_callback_is_stored_by_the_nightly_sweep_once(bot: BotUnderTest, fake: FakeWeCom) -> None:
    applied = int(NOW.timestamp()) - 20 * 86400  # submitted three weeks ago, decided today
    contract(fake, "202611120001", applied=applied)
    fake.approve("202611120001", 0, int(NOW.timestamp()) - 60)  # 黄燕 approves; the callback never reaches us
    contract(fake, "202611120002", applied=applied + 60, customer="慈溪市人民医院")
    fake.approve("202611120002", 0, int(NOW.timestamp()) - 30)  # this one's callback does come
    assert await bot.client.post(bot.client.approval_change_xml("202611120002", 2)) == [200]
    contract(fake, "202611120003", applied=applied, template=OTHER_TEMPLATE)  # another template: not asked for
    await bot.runtime.settle()
    assert [r.customer for r in await receivables(bot.runtime.db)] == ["慈溪市人民医院"]

    # 02:00: the sweep lists the contract template's approvals and stores the one missing.
    assert await bot.runtime.run_job("approval_reconcile", bot.runtime.config.tenant("acme"), NIGHT) == 1
    await bot.runtime.settle()
    assert sorted(r.customer for r in await receivables(bot.runtime.db)) == ["宁波市第一医院", "慈溪市人民医院"]
    assert fake.approval_pages[-1]["templates"] == [CONTRACT_TEMPLATE]
    assert all(p["endtime"] - p["starttime"] <= 31 * 86400 and p["size"] <= 100 for p in fake.approval_pages)
    assert "已建立回款跟踪：合同审批｜客户 宁波市第一医院｜金额 ¥1,280,000.00｜回款日 2027-03-31" in [
        d.text for d in fake.messages_to("zhangwei")]
    assert fake.protocol_errors == []
    assert len(await events(bot.runtime.db)) == 2

    # A second tick of the same night, or a re-run, sweeps nothing again.
    pages = len(fake.approval_pages)
    assert await bot.runtime.run_job("approval_reconcile", bot.runtime.config.tenant("acme"),
                                     NIGHT + timedelta(minutes=5)) == 0
    assert len(fake.approval_pages) == pages
    # The next night's sweep finds both approvals stored: nothing new.
    assert await bot.runtime.run_job("approval_reconcile", bot.runtime.config.tenant("acme"),
                                     NIGHT + timedelta(days=1)) == 0
    assert len(fake.approval_pages) == pages + 1
    # WeCom's late delivery of the lost callback adds nothing either.
    assert await bot.client.post(bot.client.approval_change_xml("202611120001", 2)) == [200]
    await bot.runtime.settle()
    assert len(await events(bot.runtime.db)) == 2 and len(await receivables(bot.runtime.db)) == 2
    assert len(await records(bot.runtime.db)) == 2
    assert len([d for d in fake.messages_to("zhangwei") if d.text.startswith("已建立回款跟踪")]) == 2


async def test_the_sweep_pages_through_more_than_a_hundred(bot: BotUnderTest, fake: FakeWeCom) -> None:
    applied = int(NOW.timestamp()) - 86400
    for i in range(101):
        contract(fake, f"2026120100{i:02d}" if i < 100 else "202612010100", applied=applied + i)
    assert await bot.runtime.run_job("approval_reconcile", bot.runtime.config.tenant("acme"), NIGHT) == 101
    assert [p["new_cursor"] for p in fake.approval_pages] == ["", "c100"]
    await bot.runtime.settle()
    # Still under way (审批中): stored, and no rule applies yet.
    assert await receivables(bot.runtime.db) == [] and len(await events(bot.runtime.db)) == 101


async def test_a_failed_sweep_gives_its_night_back(bot: BotUnderTest, fake: FakeWeCom) -> None:
    contract(fake, "202612010001", applied=int(NOW.timestamp()) - 3600)
    fake.approve("202612010001", 0, int(NOW.timestamp()) - 60)
    fake.fail_next("oa/getapprovalinfo", "drop", times=10)
    tenant = bot.runtime.config.tenant("acme")
    with pytest.raises(Exception):
        await bot.runtime.run_job("approval_reconcile", tenant, NIGHT)
    assert await events(bot.runtime.db) == []
    fake.clear_faults()
    # The ticker's next beat within the grace window tries again.
    assert await bot.runtime.tick(NIGHT + timedelta(minutes=1)) >= 1
    await bot.runtime.settle()
    assert len(await receivables(bot.runtime.db)) == 1


async def _post(fake: FakeWeCom, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{fake.url}/cgi-bin/oa/getapprovalinfo", params={"access_token": token},
                          data=json.dumps(body)) as r:
            return dict(await r.json())


async def _token(fake: FakeWeCom) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake.url}/cgi-bin/gettoken", params={"corpid": fake.corp_id, "corpsecret": fake.secret}) as r:
            return str((await r.json())["access_token"])


async def test_the_fake_refuses_what_wecom_refuses(fake: FakeWeCom) -> None:
    token = await _token(fake)
    start = int(NOW.timestamp()) - 31 * 86400
    ok = await _post(fake, token, {"starttime": start, "endtime": int(NOW.timestamp()), "new_cursor": "", "size": 100})
    assert (ok["errcode"], ok["sp_no_list"]) == (0, []) and "new_next_cursor" not in ok
    too_long = await _post(fake, token, {"starttime": start - 1, "endtime": int(NOW.timestamp()), "size": 100})
    assert too_long["errcode"] == 301025
    millis = await _post(fake, token, {"starttime": start * 1000, "endtime": int(NOW.timestamp()) * 1000, "size": 100})
    assert millis["errcode"] == 301025
    too_many = await _post(fake, token, {"starttime": start, "endtime": int(NOW.timestamp()), "size": 101})
    assert too_many["errcode"] == 301025
    assert (await _post(fake, "not-a-token", {"starttime": start, "endtime": start + 1}))["errcode"] == 40014
    fake.expire_tokens()
    assert (await _post(fake, token, {"starttime": start, "endtime": start + 1}))["errcode"] == 42001


async def test_the_reconcile_command_sweeps_in_spans_of_31_days(fake: FakeWeCom, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    now = int(datetime.now(timezone.utc).timestamp())
    contract(fake, "202610010001", applied=now - 50 * 86400)
    fake.approve("202610010001", 0, now - 40 * 86400)
    config = tmp_path / "config.toml"
    config.write_text(f'''[database]
url = "sqlite+aiosqlite:///{tmp_path}/dx.db"
[[tenants]]
key = "acme"
name = "示例"
[tenants.wecom]
corp_id = "{fake.corp_id}"
agent_id = {fake.agent_id}
secret = "{fake.secret}"
token = "{fake.token}"
encoding_aes_key = "{fake.encoding_aes_key}"
api_base = "{fake.url}"
[[tenants.trace.rules]]
name = "合同回款"
source = "wecom_approval"
code = "{CONTRACT_TEMPLATE}"
status = ["approved"]
effect = "receivable"
''', encoding="utf-8")
    assert await asyncio.to_thread(main, ["db", "upgrade", "--config", str(config)]) == 0
    capsys.readouterr()
    args = ["events", "reconcile", "--tenant", "acme", "--days", "60", "--config", str(config)]
    assert await asyncio.to_thread(main, args) == 0
    assert "审批单 1 张，新补录 1 条，已有 0 条" in capsys.readouterr().out
    assert len(fake.approval_pages) == 2 and all(p["endtime"] - p["starttime"] <= 31 * 86400 for p in fake.approval_pages)
    assert await asyncio.to_thread(main, args) == 0
    assert "审批单 1 张，新补录 0 条，已有 1 条" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["events", "reconcile", "--tenant", "acme", "--days", "0",
                                          "--config", str(config)]) == 2
