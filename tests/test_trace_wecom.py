"""WeCom 审批 → 回款跟踪: 张伟's contract approval is approved by 黄燕; WeCom's sys_approval_change callback
(signed and encrypted like every WeCom callback) creates one tracking row from the form read with
oa/getapprovaldetail, and WeCom's redelivery creates none — on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, AsyncIterator

import pytest

from tests.fakes.wecom_server import BotUnderTest, FakeWeCom
from tests.trace_support import CONTRACT_TEMPLATE, approval_bot, approval_fake, events, receivables, records

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
DUE = str(int(datetime(2027, 3, 30, 16, 0, tzinfo=timezone.utc).timestamp()))  # 2027-03-31 00:00 in Shanghai


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with approval_fake() as f:
        yield f


@pytest.fixture
async def bot(db: Any, fake: FakeWeCom) -> AsyncIterator[BotUnderTest]:
    async with approval_bot(db, fake, NOW) as b:
        yield b


def contract(fake: FakeWeCom, sp_no: str = "202612020001", applyer: str = "zhangwei") -> None:
    fake.add_approval(sp_no, sp_name="合同审批", template_id=CONTRACT_TEMPLATE, applyer=applyer,
                      apply_time=int(NOW.timestamp()) - 3600, approvers=["huangyan"], fields=[
                          ("Text", "客户名称", {"text": "宁波市第一医院"}),
                          ("Money", "合同金额", {"new_money": "1280000"}),
                          ("Date", "回款日期", {"date": {"type": "day", "s_timestamp": DUE}}),
                          ("Text", "目标编码", {"text": "O1-KR1"})])


async def test_an_approved_contract_creates_one_tracking_row_and_a_redelivery_none(bot: BotUnderTest, fake: FakeWeCom) -> None:
    contract(fake)
    # 黄燕 approves in WeCom; WeCom calls back (encrypted, signed) and the bot reads the form.
    fake.approve("202612020001", 0, int(NOW.timestamp()) - 60)
    assert await bot.client.post(bot.client.approval_change_xml("202612020001", 2)) == [200]
    await bot.runtime.settle()
    [row] = await receivables(bot.runtime.db)
    assert (row.owner, row.customer, row.amount_cents, row.due, row.goal_code, row.ref) == (
        "zhangwei", "宁波市第一医院", 128_000_000, date(2027, 3, 31), "O1-KR1", "wecom_approval:202612020001")
    assert ("oa/getapprovaldetail", 0) in fake.calls
    # 张伟 is told in WeCom.
    assert "已建立回款跟踪：合同审批｜客户 宁波市第一医院｜金额 ¥1,280,000.00｜回款日 2027-03-31" in [
        d.text for d in fake.messages_to("zhangwei")]
    [rec] = await records(bot.runtime.db)
    assert (rec.userid, rec.effect) == ("zhangwei", "receivable")

    # WeCom delivers the same callback three more times: nothing new.
    assert await bot.client.post(bot.client.approval_change_xml("202612020001", 2), repeat=3) == [200] * 3
    await bot.runtime.settle()
    assert len(await events(bot.runtime.db)) == 1 and len(await receivables(bot.runtime.db)) == 1
    assert len(fake.messages_to("zhangwei")) == 1


async def test_an_approval_still_under_way_or_unknown_person_creates_no_row(bot: BotUnderTest, fake: FakeWeCom) -> None:
    contract(fake, "202612020002")
    assert await bot.client.post(bot.client.approval_change_xml("202612020002", 1)) == [200]  # 提单: 审批中
    contract(fake, "202612020003", applyer="qianduoduo")  # not on the roster
    fake.approve("202612020003", 0, int(NOW.timestamp()) - 30)
    assert await bot.client.post(bot.client.approval_change_xml("202612020003", 2)) == [200]
    await bot.runtime.settle()
    assert await receivables(bot.runtime.db) == []
    states = {e.external_id.split(":")[0]: e.state for e in await events(bot.runtime.db)}
    assert states == {"202612020002": "ignored", "202612020003": "unmatched"}


async def test_a_detail_that_cannot_be_fetched_is_not_acknowledged(bot: BotUnderTest, fake: FakeWeCom) -> None:
    contract(fake, "202612020004")
    fake.approve("202612020004", 0, int(NOW.timestamp()) - 30)
    fake.fail_next("oa/getapprovaldetail", -1, times=20)  # 系统繁忙 on every try of the first delivery
    outcomes = await bot.client.post(bot.client.approval_change_xml("202612020004", 2), repeat=1)
    assert outcomes == [500] and await events(bot.runtime.db) == []
    fake.clear_faults()
    assert await bot.client.post(bot.client.approval_change_xml("202612020004", 2)) == [200]
    await bot.runtime.settle()
    assert len(await receivables(bot.runtime.db)) == 1
