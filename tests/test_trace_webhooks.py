"""Signed webhooks at /hooks/{tenant}/{source}: a CRM signing by Standard Webhooks and 宜搭 sending a
static key are accepted and applied by the rules; forged, stale, unsigned and replayed ones are refused
with nothing stored — on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from bot.core.clock import FrozenClock
from store.db import Database
from tests.harness import at, console_bot
from tests.trace_support import YIDA_KEY, events, receivables, records, signed, trace_section

NOW = at("2026-12-02 10:00")
CONTRACT = {"id": "HT-2026-118", "type": "contract", "person": "zhangwei", "status": "approved",
            "occurred_at": "2026-12-02T09:58:00+08:00", "title": "宁波一院 骨科耗材年度合同",
            "link": "https://crm.example.com/contracts/118",
            "fields": {"合同金额": "¥1,280,000.00", "客户名称": "宁波市第一医院", "回款日期": "2027-03-31",
                       "目标编码": "O1-KR1"}}


async def test_a_signed_crm_webhook_starts_payment_tracking_once(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        body, headers = signed(CONTRACT, "msg_2Kq8", NOW)
        # The CRM posts the approved contract, signed → 202, stored, and 张伟 is told at once.
        r = await bot.client.post("/hooks/demo/crm", data=body, headers=headers)
        assert r.status == 202, await r.text()
        await bot.runtime.settle()
        assert await bot.texts("zhangwei") == [
            "已建立回款跟踪：宁波一院 骨科耗材年度合同｜客户 宁波市第一医院｜金额 ¥1,280,000.00｜回款日 2027-03-31"]
        [row] = await receivables(db)
        assert (row.owner, row.customer, row.amount_cents, row.due, row.goal_code) == (
            "zhangwei", "宁波市第一医院", 128_000_000, date(2027, 3, 31), "O1-KR1")
        [ev] = await events(db)
        assert row.event_id == ev.id and ev.state == "applied" and ev.userid == "zhangwei"
        # 留痕: the contract is a dated record of 张伟's, linked to the CRM.
        [rec] = await records(db)
        assert (rec.userid, rec.day, rec.link, rec.event_id) == (
            "zhangwei", "2026-12-02", "https://crm.example.com/contracts/118", ev.id)

        # The same message again (a replay, or a retry after our answer was lost) → 409, nothing new.
        r = await bot.client.post("/hooks/demo/crm", data=body, headers=headers)
        assert r.status == 409 and (await r.json())["error"] == "already received"
        await bot.runtime.settle()
        assert len(await events(db)) == 1 and len(await receivables(db)) == 1
        assert await bot.texts("zhangwei") == []


async def test_forged_stale_and_unsigned_webhooks_are_refused_and_nothing_is_stored(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        body, headers = signed(CONTRACT, "msg_forged", NOW, secret="whsec_" + "QUJD" * 11)
        r = await bot.client.post("/hooks/demo/crm", data=body, headers=headers)
        assert r.status == 401 and "signature" in (await r.json())["error"]
        # A genuine signature over another body (the amount changed on the way) is no signature.
        body, headers = signed(CONTRACT, "msg_tampered", NOW)
        r = await bot.client.post("/hooks/demo/crm", data=body.replace(b"1,280,000", b"9,280,000"), headers=headers)
        assert r.status == 401
        # Signed six minutes ago: stale; signed six minutes ahead: refused too.
        for when in (NOW - timedelta(minutes=6), NOW + timedelta(minutes=6)):
            body, headers = signed(CONTRACT, f"msg_{when:%H%M}", when)
            r = await bot.client.post("/hooks/demo/crm", data=body, headers=headers)
            assert r.status == 401 and "tolerance" in (await r.json())["error"]
        # Four minutes is within the tolerance.
        body, headers = signed(CONTRACT, "msg_late_ok", NOW - timedelta(minutes=4))
        unsigned = {"Content-Type": "application/json"}
        r = await bot.client.post("/hooks/demo/crm", data=body, headers=unsigned)
        assert r.status == 401
        # A source nobody configured, and a tenant that does not exist: 404.
        assert (await bot.client.post("/hooks/demo/erp", data=body, headers=headers)).status == 404
        assert (await bot.client.post("/hooks/nobody/crm", data=body, headers=headers)).status == 404
        await bot.runtime.settle()
        assert await events(db) == [] and await receivables(db) == []
        r = await bot.client.post("/hooks/demo/crm", data=body, headers=headers)
        assert r.status == 202


async def test_a_static_key_webhook_from_yida_becomes_a_trace_record(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        check = {"id": "YD-77", "type": "inspection", "person": "郑爽", "occurred_at": "2026-12-01T15:20:00+08:00",
                 "title": "洁净车间月度巡检", "link": "https://yida.example.com/form/77"}
        raw = json.dumps(check, ensure_ascii=False).encode()
        # Wrong key, or none → 401 and nothing stored.
        for hdrs in ({"X-Yida-Key": "guess"}, {}):
            r = await bot.client.post("/hooks/demo/yida", data=raw, headers=hdrs)
            assert r.status == 401
        assert await events(db) == []
        r = await bot.client.post("/hooks/demo/yida", data=raw, headers={"X-Yida-Key": YIDA_KEY})
        assert r.status == 202, await r.text()
        await bot.runtime.settle()
        # 宜搭 names people by name: 郑爽 is zhengshuang; the record is dated the day it happened.
        [rec] = await records(db)
        assert (rec.userid, rec.day, rec.title, rec.effect) == ("zhengshuang", "2026-12-01", "宜搭巡检：洁净车间月度巡检", "trace")
        # The same id again → 409.
        r = await bot.client.post("/hooks/demo/yida", data=raw, headers={"X-Yida-Key": YIDA_KEY})
        assert r.status == 409
        # Not JSON, or no id: a clear 400, nothing stored.
        r = await bot.client.post("/hooks/demo/yida", data=b"{not json", headers={"X-Yida-Key": YIDA_KEY})
        assert r.status == 400
        r = await bot.client.post("/hooks/demo/yida", data=json.dumps({"title": "无编号"}).encode(),
                                  headers={"X-Yida-Key": YIDA_KEY})
        assert r.status == 400 and "id" in (await r.json())["error"]
        assert len(await events(db)) == 1


async def test_the_owner_is_reminded_before_the_due_date_and_the_manager_when_overdue(db: Database, tmp_path: Path) -> None:
    near = {**CONTRACT, "id": "HT-2026-120", "fields": {**CONTRACT["fields"], "回款日期": "2026-12-08"}}
    clock = FrozenClock(NOW)
    async with console_bot(db, clock, tmp_path, trace=trace_section(remind_days_before=3)) as bot:
        body, headers = signed(near, "msg_near", NOW)
        assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        await bot.new("zhangwei")
        # Wednesday: the 8th is four working days away — not yet.
        assert await bot.run_job("receivable_reminders", at("2026-12-02 09:30")) == 0
        # Thursday: three working days (Fri, Mon, Tue) — 张伟 is reminded, once.
        assert await bot.run_job("receivable_reminders", at("2026-12-03 09:30")) == 1
        assert await bot.texts("zhangwei") == [
            "回款提醒：宁波一院 骨科耗材年度合同（客户 宁波市第一医院，¥1,280,000.00）将于 2026-12-08 到期，请跟进回款"]
        assert await bot.run_job("receivable_reminders", at("2026-12-04 09:30")) == 0
        # Wednesday the 9th it is overdue: his manager 黄燕 hears of it, once.
        assert await bot.run_job("receivable_reminders", at("2026-12-09 09:30")) == 1
        assert (await bot.texts("huangyan"))[-1] == (
            "回款逾期：张伟 负责的 宁波一院 骨科耗材年度合同（客户 宁波市第一医院，¥1,280,000.00）已于 2026-12-08 到期仍未回款")
        assert await bot.run_job("receivable_reminders", at("2026-12-10 09:30")) == 0


async def test_the_brief_shows_the_trace_linked_to_its_source(db: Database, tmp_path: Path) -> None:
    from cards.brief_html import render_html
    from store.brief import build_brief
    from tests.harness import SHANGHAI

    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        body, headers = signed(CONTRACT, "msg_brief", NOW)
        assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        async with db.session() as s:
            brief = await build_brief(s, "demo", "zhangwei", "2026Q4", now=NOW, tz=SHANGHAI)
            other = await build_brief(s, "demo", "huangyan", "2026Q4", now=NOW, tz=SHANGHAI)
        [line] = brief.trace
        assert (line.day.isoformat(), line.title, line.effect) == ("2026-12-02", "CRM合同：宁波一院 骨科耗材年度合同", "receivable")
        assert line.detail == "客户 宁波市第一医院｜¥1,280,000.00｜回款日 2027-03-31"
        html = render_html(brief)
        assert '<a href="https://crm.example.com/contracts/118">crm</a>' in html and "留痕：回款跟踪与风险响应" in html
        # 黄燕's brief holds none of 张伟's facts.
        assert other.trace == [] and "本期没有来自审批或业务系统的记录" in render_html(other)


async def test_the_hr_export_has_a_payment_tracking_sheet(db: Database, tmp_path: Path) -> None:
    from openpyxl import load_workbook
    from store.export import export_weekly

    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        late = {**CONTRACT, "id": "HT-2026-099", "title": "鄞州二院 设备合同",
                "fields": {**CONTRACT["fields"], "回款日期": "2026-11-30", "合同金额": "5万"}}
        for i, body_json in enumerate((CONTRACT, late)):
            body, headers = signed(body_json, f"msg_x{i}", NOW)
            assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "hr.xlsx", now=NOW)
    ws = load_workbook(out)["回款跟踪"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0] == ["负责人", "部门", "合同", "客户", "金额（元）", "回款日", "状态", "目标", "来源事件",
                       "合同编号", "已回款（元）", "未回款（元）"]
    assert [(r[0], r[2], r[4], r[5].date().isoformat(), r[6], r[8], r[9], r[10], r[11]) for r in rows[1:]] == [
        ("张伟", "鄞州二院 设备合同", 50000, "2026-11-30", "已逾期", "crm:msg_x1", "HT-2026-099", 0, 50000),
        ("张伟", "宁波一院 骨科耗材年度合同", 1280000, "2027-03-31", "未到期", "crm:msg_x0", "HT-2026-118", 0, 1280000)]
