"""回款跟踪 in chat, and 风险响应及时率 where HR and managers read it: 张伟's CRM contract is tracked; he
types the money that came in (partly, in full-width digits), his manager 黄燕 records the rest and the
reminders stop; a colleague may not. Deviation answers of 质量部 show per person and department on the
Friday pulse and in the export; every rule's effect and every payment leaves an audit line — on SQLite
and PostgreSQL."""
from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

from bot.cli import main
from bot.core.clock import FrozenClock
from store import audit
from store import external_events as ext
from store.db import Database
from store.export import export_weekly
from store.trace import Receivable
from tests.harness import at, console_bot
from tests.trace_support import DEVIATION_PROCESS, receivables, signed, trace_section

NOW = at("2026-12-02 10:00")
CONTRACT = {"id": "HT-2026-118", "type": "contract", "person": "zhangwei", "status": "approved",
            "occurred_at": "2026-12-02T09:58:00+08:00", "title": "宁波一院 骨科耗材年度合同",
            "fields": {"合同金额": "¥1,280,000.00", "客户名称": "宁波市第一医院", "回款日期": "2026-12-08"}}


async def _row(db: Database) -> Receivable:
    [row] = await receivables(db)
    return row


async def test_payments_typed_in_chat_stop_the_reminders(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with console_bot(db, clock, tmp_path, trace=trace_section(remind_days_before=3)) as bot:
        body, headers = signed(CONTRACT, "msg_pay_1", NOW)
        assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        # The CRM delivers the same contract again under a new webhook-id: still one tracking row.
        body, headers = signed(CONTRACT, "msg_pay_2", NOW)
        assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        row = await _row(db)
        assert (row.contract_no, row.paid_cents, row.status) == ("HT-2026-118", 0, "open")
        await bot.new("zhangwei")
        await bot.new("huangyan")

        # 王强 is neither the owner nor above him: refused, nothing recorded.
        await bot.say("wangqiang", "回款 HT-2026-118 已到账 ¥50000")
        assert await bot.texts("wangqiang") == ["只有合同 HT-2026-118 的负责人、其上级或管理员可以登记回款"]
        # 张伟 forgets the amount, then names a contract that does not exist, then types too much.
        await bot.say("zhangwei", "回款 HT-2026-118")
        await bot.say("zhangwei", "回款 HT-2026-999 已到账 ¥1")
        await bot.say("zhangwei", "回款 HT-2026-118 已到账 ¥2,000,000")
        replies = await bot.texts("zhangwei")
        assert replies[0].startswith("登记回款请这样写：回款 HT-2026-001 已到账 ¥50000")
        assert replies[1:] == ["没有找到合同 HT-2026-999 的回款跟踪，请核对合同编号",
                               "到账 ¥2,000,000.00 超过未回款金额 ¥1,280,000.00，没有登记；请核对金额"]
        assert (await _row(db)).paid_cents == 0
        # Full-width, lower case: ￥５００００ is ¥50,000.
        await bot.say("zhangwei", "回款 ｈｔ－２０２６－１１８ 已到账 ￥５００００")
        assert await bot.texts("zhangwei") == [
            "已登记回款 ¥50,000.00：宁波一院 骨科耗材年度合同 已回款 ¥50,000.00 / ¥1,280,000.00，未回款 ¥1,230,000.00"]
        assert ((await _row(db)).paid_cents, (await _row(db)).status) == (5_000_000, "open")
        # Thursday, three working days before the 8th: the reminder names what is still to come in.
        assert await bot.run_job("receivable_reminders", at("2026-12-03 09:30")) == 1
        assert await bot.texts("zhangwei") == [
            "回款提醒：宁波一院 骨科耗材年度合同（客户 宁波市第一医院，¥1,230,000.00）将于 2026-12-08 到期，请跟进回款"]
        # 黄燕, his manager, records the rest; 张伟 hears of it.
        await bot.say("huangyan", "回款 HT-2026-118 已结清")
        assert await bot.texts("huangyan") == [
            "已登记回款 ¥1,230,000.00：宁波一院 骨科耗材年度合同 已全部回款（¥1,280,000.00），回款提醒停止"]
        assert (await bot.texts("zhangwei"))[-1].startswith("黄燕 登记了回款 ¥1,230,000.00")
        assert (await _row(db)).status == "paid"
        await bot.say("zhangwei", "回款 HT-2026-118 已到账 ¥1")
        assert await bot.texts("zhangwei") == ["宁波一院 骨科耗材年度合同 已全部回款（¥1,280,000.00），无需再登记"]
        # Paid: no reminder, and no overdue notice to 黄燕 after the 8th.
        assert await bot.run_job("receivable_reminders", at("2026-12-07 09:30")) == 0
        assert await bot.run_job("receivable_reminders", at("2026-12-09 09:30")) == 0

        async with db.session() as s:
            trail = [(a.actor_userid, a.action, a.subject) for a in await audit.entries(s, "demo")]
        assert ("rule:CRM合同", "trace:receivable", "zhangwei:crm:msg_pay_1") in trail
        assert ("zhangwei", "record_payment", "zhangwei:HT-2026-118:5000000") in trail
        assert ("huangyan", "record_payment", "zhangwei:HT-2026-118:123000000") in trail
        assert not any(a[0] == "wangqiang" for a in trail)

        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "hr.xlsx", now=at("2026-12-04 18:00"))
    ws = load_workbook(out)["回款跟踪"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0][-3:] == ["合同编号", "已回款（元）", "未回款（元）"]
    assert [(r[2], r[6], r[9], r[10], r[11]) for r in rows[1:]] == [
        ("宁波一院 骨科耗材年度合同", "已回款", "HT-2026-118", 1280000, 0)]


def _answer(task_id: str, person: str, started: datetime, finished: datetime) -> ext.Incoming:
    return ext.Incoming(source="dingtalk_oa", external_id=f"ev-{task_id}", type="approval_task", person=person,
                        occurred_at=finished, code=DEVIATION_PROCESS, status="task_finished",
                        title="郑爽提交的偏差调查：灭菌批次温度偏差",
                        extra={"instance": "pi-dev-0050", "tasks": [{"id": task_id, "person": person,
                                                                     "started_at": started.isoformat(),
                                                                     "finished_at": finished.isoformat()}]})


async def test_response_rates_on_the_friday_pulse_and_in_the_export(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path, trace=trace_section()) as bot:
        # 冯涛 answers in two working hours (on time, SLA 4); 李纳 the next morning (late).
        for item in (_answer("t-51", "fengtao", at("2026-12-01 10:00"), at("2026-12-01 12:00")),
                     _answer("t-52", "li_na2", at("2026-12-01 10:00"), at("2026-12-02 11:00"))):
            assert await ext.ingest(db, "demo", item, at("2026-12-02 11:00"))
        await bot.runtime.settle()
        clock.set(at("2026-12-04 17:30"))
        await bot.run_job("pulse", at("2026-12-04 17:30"))
        team = dict(tuple(f) for f in (await bot.last_card("wuhao", "团队脉搏"))["fields"])
        assert team["风险响应及时率（2026Q4）"] == "50%（1/2）"
        assert team["风险响应·按人"] == "李纳 0%（0/1）；冯涛 100%（1/1）"
        company = dict(tuple(f) for f in (await bot.last_card("zhoumin", "组织脉搏"))["fields"])
        assert company["风险响应及时率（2026Q4）"] == "50%（1/2）"
        assert company["风险响应·按部门"] == "质量部 50%（1/2）"
        # Another manager's team answered nothing: no such line on 黄燕's card.
        sales = dict(tuple(f) for f in (await bot.last_card("huangyan", "团队脉搏"))["fields"])
        assert not any(k.startswith("风险响应") for k in sales)
        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "w49.xlsx", now=at("2026-12-04 18:00"))
        async with db.session() as s:
            trail = [(a.actor_userid, a.action, a.subject) for a in await audit.entries(s, "demo")]
    assert ("rule:偏差调查", "trace:response", "fengtao:dingtalk_oa:ev-t-51") in trail
    rows = [[c.value for c in r] for r in load_workbook(out)["风险响应及时率"].iter_rows()]
    assert rows[0] == ["范围", "部门", "姓名", "已响应", "及时", "及时率", "平均用时（工作小时）", "约定（工作小时）", "来源事件"]
    person = {r[2]: r for r in rows[1:] if r[0] == "个人"}
    assert (person["冯涛"][3], person["冯涛"][4], person["冯涛"][5], person["冯涛"][6]) == (1, 1, 1.0, 2.0)
    assert person["李纳"][4] == 0 and "dingtalk_oa:ev-t-52" in person["李纳"][8]
    assert [r[1:6] for r in rows[1:] if r[0] == "部门"] == [["康骨医疗/质量部", None, 2, 1, 0.5]]
    assert [r[3:6] for r in rows[1:] if r[0] == "全公司"] == [[2, 1, 0.5]]


async def test_an_event_for_someone_not_on_the_roster_is_listed(db: Database, tmp_path: Path,
                                                                capsys: "object") -> None:
    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        stranger = _answer("t-60", "qianduoduo", at("2026-12-01 10:00"), at("2026-12-01 12:00"))
        assert await ext.ingest(db, "demo", stranger, NOW)
        mine = _answer("t-61", "FengTao", at("2026-12-01 10:00"), at("2026-12-01 12:00"))  # the id in another case
        assert await ext.ingest(db, "demo", mine, NOW)
        await bot.runtime.settle()
        async with db.session() as s:
            from sqlalchemy import select

            from store.models import InboxEvent
            keyed = {r.dedup_key: r.userid for r in (await s.execute(
                select(InboxEvent).where(InboxEvent.platform == ext.INBOX_PLATFORM))).scalars()}
        # The inbox orders 冯涛's event with his own messages; the stranger's keeps the source's id.
        assert keyed == {"dingtalk_oa:ev-t-60": "qianduoduo", "dingtalk_oa:ev-t-61": "fengtao"}
    config = tmp_path / "config.toml"
    config.write_text(f'''[database]
url = "{db.url}"
[[tenants]]
key = "demo"
name = "康骨医疗"
''', encoding="utf-8")
    assert await asyncio.to_thread(main, ["events", "unmatched", "--tenant", "demo", "--config", str(config)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "1 条事件的人员在名册中找不到" in out
    assert "dingtalk_oa\tev-t-60\tperson=qianduoduo\trule=偏差调查" in out


async def test_the_payment_columns_migrate_both_ways(db: Database) -> None:
    """0015 on a database with tracking rows: a row already paid counts its whole amount in; back to 0010
    and up again keeps the rows."""
    from sqlalchemy import text

    from store.migrate import downgrade, upgrade

    await downgrade(db, "0010")
    async with db.transaction() as s:
        for ref, status in (("crm:HT-1", "paid"), ("crm:HT-2", "open")):
            await s.execute(text(
                "INSERT INTO receivable (tenant, ref, owner, customer, amount_cents, due, goal_code, title, status, "
                "event_id, created_at) VALUES ('demo', :ref, 'zhangwei', '', 500000, NULL, '', '合同', :status, 1, "
                ":at)"), {"ref": ref, "status": status, "at": NOW})
    await upgrade(db)
    rows = {r.ref: r for r in await receivables(db)}
    assert (rows["crm:HT-1"].paid_cents, rows["crm:HT-1"].outstanding_cents) == (500000, 0)
    assert (rows["crm:HT-2"].paid_cents, rows["crm:HT-2"].contract_no) == (0, "")
    await downgrade(db, "0010")
    await upgrade(db)
    assert len(await receivables(db)) == 2
