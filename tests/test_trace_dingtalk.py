"""DingTalk OA over Stream → 风险响应及时率: 郑爽 starts a deviation investigation on Friday afternoon;
the bpms_task_change pair of each assigned approver (start, then finish on Monday) measures the response
in working hours across the weekend against the 4-hour SLA — the real dingtalk-stream SDK against the
fake gateway, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.demo import DATA
from bot.dingtalk.adapter import DingTalkAdapter
from bot.runtime import Runtime
from handlers.routes import build_router
from store.db import Database
from store.models import OutboxMessage
from store.roster import ensure_tenant, import_roster
from tests.fakes.dingtalk_server import FakeDingTalk, tenant_config
from tests.harness import at
from tests.trace_support import DEVIATION_PROCESS, events, receivables, records, responses, trace_section


@pytest.fixture
async def fake() -> AsyncIterator[FakeDingTalk]:
    f = FakeDingTalk(redeliver_after=0.4, disconnect_grace=3.0)
    await f.start()
    yield f
    await f.stop()


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def task(kind: str, staff: str, task_id: str, created: datetime, finished: datetime | None = None) -> dict[str, Any]:
    data = {"eventType": "bpms_task_change", "processInstanceId": "pi-dev-0042", "corpId": "dingcorp",
            "processCode": DEVIATION_PROCESS, "title": "郑爽提交的偏差调查：灭菌批次温度偏差", "type": kind,
            "staffId": staff, "taskId": task_id, "createTime": ms(created)}
    if finished is not None:
        data.update(finishTime=ms(finished), result="agree")
    return data


async def test_a_task_pair_measures_working_hours_across_a_weekend(db: Database, fake: FakeDingTalk) -> None:
    app = fake.add_app("dingacme", "s3cret-dingacme", corp_id="dingcorp")
    for u in ("fengtao", "wuhao", "zhengshuang"):
        fake.add_user(app, u)
    config = parse_config({"database": {"url": db.url},
                           "tenants": [{**tenant_config(app, fake.base_url), "trace": trace_section()}]})
    runtime = Runtime(config, db, FrozenClock(at("2026-12-07 15:00")), router=build_router())
    adapter = DingTalkAdapter(runtime)
    adapter.reconnect_base, adapter.reconnect_max = 0.02, 0.2
    runtime.add_adapter(adapter)
    await ensure_tenant(db, config.tenant("acme"))
    assert not (await import_roster(db, "acme", DATA / "roster.csv")).errors
    # The rule names the deviation process: each event's instance is read for its form.
    fake.add_process_instance("pi-dev-0042", process_code=DEVIATION_PROCESS, title="郑爽提交的偏差调查：灭菌批次温度偏差",
                              originator="zhengshuang", form=[("偏差编号", "DEV-2026-118"), ("批次", "S2612-07")])
    await adapter.start()
    try:
        await fake.wait_connected(app)
        assert ("EVENT", "*") in fake.live(app)[0].topics
        # Friday 16:00 the investigation reaches 吴昊, 17:00 冯涛 (a second node).
        f1 = await fake.push_event(app, "bpms_task_change", task("start", "wuhao", "t-1", at("2026-12-04 16:00")), event_id="ev-1")
        f2 = await fake.push_event(app, "bpms_task_change", task("start", "fengtao", "t-2", at("2026-12-04 17:00")), event_id="ev-2")
        # Monday: 冯涛 answers at 10:00 (2 working hours), 吴昊 at 15:00 (2 + 6 = 8 working hours).
        f3 = await fake.push_event(app, "bpms_task_change",
                                   task("finish", "fengtao", "t-2", at("2026-12-04 17:00"), at("2026-12-07 10:00")), event_id="ev-3")
        f4 = await fake.push_event(app, "bpms_task_change",
                                   task("finish", "wuhao", "t-1", at("2026-12-04 16:00"), at("2026-12-07 15:00")), event_id="ev-4")
        # DingTalk redelivers an event it thinks was not acked: same eventId, nothing new.
        f5 = await fake.push_event(app, "bpms_task_change",
                                   task("finish", "wuhao", "t-1", at("2026-12-04 16:00"), at("2026-12-07 15:00")), event_id="ev-4")
        # A malformed event is refused (400), nothing stored.
        f6 = await fake.push_event(app, "bpms_task_change", {"type": "finish", "staffId": "wuhao"}, event_id="ev-bad")
        await fake.wait_acked([f1, f2, f3, f4, f5, f6])
        await runtime.settle()
    finally:
        await adapter.stop()
    assert [f.ack["code"] for f in (f1, f2, f3, f4, f5)] == [200] * 5 and f6.ack["code"] == 400
    assert fake.calls["processInstances"] >= 4 and fake.protocol_errors == []
    assert all(e.payload["fields"]["偏差编号"] == "DEV-2026-118" for e in await events(db))
    measured = {(r.userid, r.working_hours, r.on_time) for r in await responses(db)}
    assert measured == {("fengtao", 2.0, True), ("wuhao", 8.0, False)}
    # Each figure links back to its events.
    evs = {e.external_id: e.id for e in await events(db)}
    assert len(evs) == 4
    by_user = {r.userid: r for r in await responses(db)}
    assert (by_user["wuhao"].start_event_id, by_user["wuhao"].finish_event_id) == (evs["ev-1"], evs["ev-4"])
    # 留痕 for both approvers, and 吴昊 hears that he was late.
    assert {(r.userid, r.effect) for r in await records(db)} == {("wuhao", "response"), ("fengtao", "response")}
    async with db.session() as s:
        told = {(r.userid, r.payload.get("text", "")) for r in (await s.execute(select(OutboxMessage))).scalars()}
    assert told == {("wuhao", "郑爽提交的偏差调查：灭菌批次温度偏差：你的响应用时 8.0 个工作小时，超过约定的 4 小时")}
    from store.brief import build_brief
    from tests.harness import SHANGHAI
    async with db.session() as s:
        wuhao = await build_brief(s, "acme", "wuhao", "2026Q4", now=at("2026-12-07 16:00"), tz=SHANGHAI)
        fengtao = await build_brief(s, "acme", "fengtao", "2026Q4", now=at("2026-12-07 16:00"), tz=SHANGHAI)
    assert wuhao.response_rate == (0, 1) and fengtao.response_rate == (1, 1)
    assert "响应 8 个工作小时 / 约定 4（超时）" in [x.detail for x in wuhao.trace]


async def test_a_contract_approval_reads_its_form_from_the_instance(db: Database, fake: FakeDingTalk) -> None:
    """钉钉 OA: 张伟's contract is approved; the bpms_instance_change frame has no form, so the bot reads
    GET /v1.0/workflow/processInstances first — and when that fails the event is not acked, so DingTalk's
    redelivery brings it again and the tracking row is made once."""
    app = fake.add_app("dingacme", "s3cret-dingacme", corp_id="dingcorp")
    for u in ("zhangwei", "huangyan"):
        fake.add_user(app, u)
    section = trace_section()
    section["rules"].append({"name": "钉钉合同", "source": "dingtalk_oa", "code": "PROC-CONTRACT-07",
                             "status": ["approved"], "effect": "receivable"})
    config = parse_config({"database": {"url": db.url}, "tenants": [{**tenant_config(app, fake.base_url), "trace": section}]})
    runtime = Runtime(config, db, FrozenClock(at("2026-12-07 15:00")), router=build_router())
    adapter = DingTalkAdapter(runtime)
    adapter.reconnect_base, adapter.reconnect_max = 0.02, 0.2
    runtime.add_adapter(adapter)
    await ensure_tenant(db, config.tenant("acme"))
    assert not (await import_roster(db, "acme", DATA / "roster.csv")).errors
    fake.add_process_instance("pi-ct-7", process_code="PROC-CONTRACT-07", title="张伟提交的合同审批", originator="zhangwei",
                              status="COMPLETED", result="agree",
                              form=[("客户名称", "宁波市第一医院"), ("合同金额", "1280000"), ("回款日期", "2027-03-31")],
                              tasks=[{"taskId": 61, "userId": "huangyan", "status": "COMPLETED", "result": "AGREE",
                                      "createTime": "2026-12-07T01:00Z", "finishTime": "2026-12-07T06:00Z"}])
    finish = {"eventType": "bpms_instance_change", "processInstanceId": "pi-ct-7", "corpId": "dingcorp",
              "processCode": "PROC-CONTRACT-07", "title": "张伟提交的合同审批", "type": "finish", "result": "agree",
              "staffId": "zhangwei", "createTime": ms(at("2026-12-07 09:00")), "finishTime": ms(at("2026-12-07 14:00"))}
    fake.fail_next("processInstances", "5xx")  # DingTalk is busy on the first read
    await adapter.start()
    try:
        await fake.wait_connected(app)
        f1 = await fake.push_event(app, "bpms_instance_change", finish, event_id="ev-ct-1")
        await fake.wait_acked([f1])
        await runtime.settle()
    finally:
        await adapter.stop()
    assert f1.ack is not None and f1.ack["code"] >= 500 and fake.final_frame(f1).ack["code"] == 200
    [row] = await receivables(db)
    assert (row.owner, row.customer, row.amount_cents, row.due.isoformat() if row.due else None) == (
        "zhangwei", "宁波市第一医院", 128_000_000, "2027-03-31")
    [ev] = await events(db)
    assert ev.payload["approvers"] == ["huangyan"] and ev.payload["instance_status"] == "COMPLETED"
    assert fake.protocol_errors == []


async def test_the_fake_refuses_an_instance_read_without_token_or_id(fake: FakeDingTalk) -> None:
    import aiohttp
    app = fake.add_app("dingacme", "s3cret-dingacme", corp_id="dingcorp")
    fake.add_process_instance("pi-1", process_code="P", title="t", originator="u", form=[])
    url = f"{fake.base_url}/v1.0/workflow/processInstances"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{fake.base_url}/v1.0/oauth2/accessToken",
                          json={"appKey": app.client_id, "appSecret": app.client_secret}) as r:
            token = (await r.json())["accessToken"]
        async with s.get(url, params={"processInstanceId": "pi-1"}) as r:
            assert r.status == 400  # no x-acs-dingtalk-access-token
        async with s.get(url, params={"processInstanceId": "pi-1"}, headers={"x-acs-dingtalk-access-token": "forged"}) as r:
            assert r.status == 400 and (await r.json())["code"] == "InvalidAuthentication"
        async with s.get(url, headers={"x-acs-dingtalk-access-token": token}) as r:
            assert r.status == 400
        async with s.post(url, json={"processInstanceId": "pi-1"}, headers={"x-acs-dingtalk-access-token": token}) as r:
            assert r.status == 405  # it is a GET
        async with s.get(url, params={"processInstanceId": "pi-1"}, headers={"x-acs-dingtalk-access-token": token}) as r:
            assert r.status == 200 and (await r.json())["result"]["title"] == "t"
