"""Deliverables sent in chat, checked with traffic lights — WeCom and DingTalk (the real dingtalk-stream SDK
against the fake gateway), on SQLite and PostgreSQL.

王强 owns T21 直播系统压测 (交付: 直播系统压测报告). He sends the load-test screenshot (drawn here with
Chinese labels, read by the real OCR in the extraction pool); the fake platform serves the bytes
(WeCom media/get, DingTalk messageFiles/download → downloadUrl); the light comes back to him and onto
the task card, the PMO's list and the export. An OCR reading that would be red is asked about
(识别到 CPU峰值 87.5%，对吗？) and his typed answer decides. A red task does not close as done until the
PMO 郭庆 releases it (放行 T21 原因).
"""
from __future__ import annotations

import asyncio
import csv
import io
from contextlib import asynccontextmanager
from pathlib import Path
from datetime import timedelta
from typing import Any, AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select, update

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock, utcnow
from bot.deliverable_intake import IntakeWorker
from bot.demo import DATA, DEMO_TENANT
from bot.dingtalk.adapter import DingTalkAdapter
from bot.wecom import WeComAdapter
from handlers.deliverable_intake import outcome_event
from handlers.deliverables.extract import Extraction
from handlers.deliverables.ocr import ExtractionPool
from store.db import Database
from store.deliverables import OUTCOME_KEY, deliverable_sheet, latest_check, queue_outcome
from store.models import (AuditLog, Conversation, DeliverableCheck, DeliverableIntake, Employee, InboxEvent,
                          Task)
from store.statuses import TaskStatus
from store.tasks import import_tasks
from tests.fakes.dingtalk_server import FakeApp, FakeDingTalk, tenant_config
from tests.fakes.wecom_server import FakeWeCom
from tests.harness import SHANGHAI, at, demo_test_config, seed_demo_company
from tests.test_deliverables_extract import load_test_png, locust_history
from tests.trace_support import records

RULE = ("并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿 / ≤ 1% 黄; 平均响应时间 ≤ 200ms 绿 / ≤ 500ms 黄; "
        "CPU峰值 ≤ 70% 绿 / ≤ 80% 黄 截图")
DELIVERABLES = {"templates": {"直播系统压测报告": RULE}}
TASKS = ("project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
         "发布会,新品发布会,guoqing,T21,直播系统压测,wangqiang,,2026-12-10 18:00,直播系统压测报告：CPU峰值截图\n"
         "发布会,新品发布会,guoqing,T22,物料采购,luoyi,,2026-12-10 18:00,采购单\n")
SECOND = "发布会,新品发布会,guoqing,T23,弹幕压测,wangqiang,,2026-12-11 18:00,直播系统压测报告\n"
NOW = at("2026-12-03 10:00")


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractionPool]:
    """One spawned reader for the module: the OCR models load once."""
    p = ExtractionPool(timeout=180)
    yield p
    p.close()


def report_png() -> bytes:
    return load_test_png([("并发量", "5600"), ("错误率", "0.05%"), ("CPU峰值", "87.5%")])


async def seed(db: Database, tmp_path: Path, extra_tasks: str = "", **tenant: Any) -> Any:
    config = demo_test_config(db.url, tmp_path, deliverables=tenant.pop("deliverables", DELIVERABLES), **tenant)
    await seed_demo_company(db, config)
    path = tmp_path / "tasks.csv"
    path.write_text(TASKS + extra_tasks, encoding="utf-8")
    report = await import_tasks(db, DEMO_TENANT, path, now=NOW)
    assert not report.errors, report.errors
    return config


async def check_of(db: Database, code: str = "T21") -> DeliverableCheck | None:
    async with db.session() as s:
        task = (await s.execute(select(Task).where(Task.tenant == DEMO_TENANT, Task.code == code))).scalar_one()
        return await latest_check(s, DEMO_TENANT, task.id or 0)


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


# -- WeCom ---------------------------------------------------------------------------------------------------
class WeComPeople:
    def __init__(self, fake: FakeWeCom, server: TestServer, runtime: Any, worker: IntakeWorker, clock: FrozenClock) -> None:
        self.fake, self.runtime, self.worker, self.server, self.clock = fake, runtime, worker, server, clock
        self.client = fake.callback_client(str(server.make_url(f"/wecom/{DEMO_TENANT}/callback")),
                                           now=lambda: clock.now().timestamp(), retry_interval=0.05)
        self._seen: dict[str, int] = {}

    async def settle(self) -> None:
        await self.runtime.settle()
        while await self.worker.run_once():
            await self.runtime.settle()

    async def say(self, userid: str, text: str) -> None:
        assert set(await self.client.say(userid, text)) == {200}
        await self.settle()

    async def send_image(self, userid: str, content: bytes) -> str:
        media_id = await self.client.send_image(userid, content)
        await self.settle()
        return media_id

    def texts(self, userid: str) -> list[str]:
        got = self.fake.messages_to(userid)
        new = got[self._seen.get(userid, 0):]
        self._seen[userid] = len(got)
        return [d.text for d in new if d.msgtype in ("text", "markdown")]

    def card(self, userid: str, title: str) -> dict[str, Any]:
        for d in reversed(self.fake.messages_to(userid)):
            if d.msgtype == "template_card" and title in d.text:
                return self.fake.cards[d.task_id].card
        raise AssertionError(f"{userid} has no card titled {title!r}")

    async def press(self, userid: str, card: dict[str, Any], text: str) -> None:
        key = next(b["key"] for b in card["button_list"] if b["text"] == text)
        xml, _ = self.client.press_xml(userid, card["task_id"], key)
        assert set(await self.client.post(xml)) == {200}
        await self.settle()


def shown(card: dict[str, Any]) -> str:
    """Everything a WeCom card shows as text: its fields and its sub-title (where long fields go)."""
    fields = [f"{h['keyname']} {h['value']}" for h in card.get("horizontal_content_list", [])]
    return "\n".join(fields + [card.get("sub_title_text", "")])


@asynccontextmanager
async def wecom_company(db: Database, tmp_path: Path, pool: ExtractionPool, *, extra_tasks: str = "",
                        **tenant: Any) -> AsyncIterator[WeComPeople]:
    fake = FakeWeCom()
    await fake.start()
    clock = FrozenClock(NOW)
    wecom = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "secret": fake.secret, "token": fake.token,
             "encoding_aes_key": fake.encoding_aes_key, "api_base": fake.url}
    config = await seed(db, tmp_path, extra_tasks, wecom=wecom, **tenant)
    async with db.session() as s:
        for e in (await s.execute(select(Employee))).scalars():
            fake.add_user(e.userid, e.name)
    runtime = make_runtime(config, db, clock)
    adapter = runtime.adapters["wecom"]
    assert isinstance(adapter, WeComAdapter)
    adapter.api_options = {"quick_backoff": 0.01}
    server = TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield WeComPeople(fake, server, runtime, IntakeWorker(runtime, pool), clock)
        assert fake.protocol_errors == []
    finally:
        await adapter.stop()
        await server.close()
        await fake.stop()


async def test_wang_qiangs_screenshot_in_wecom_gets_a_light_on_his_task_card(db: Database, tmp_path: Path,
                                                                          pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool) as people:
        media_id = await people.send_image("wangqiang", report_png())
        assert ("media/get", 0) in people.fake.calls and media_id in people.fake.media
        said = people.texts("wangqiang")
        assert said[0] == "收到「图片」，正在按 T21「直播系统压测报告」检查，稍等片刻。"
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（待确认：CPU峰值）")
        assert "并发量 5600 🟢" in said[1] and "错误率 0.05% 🟢" in said[1] and "CPU峰值 87.5% 🟡" in said[1]
        # 87.5 % would be red, but OCR alone never makes a light red: he is asked first.
        assert said[2] == "识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"
        card = people.card("wangqiang", "T21")
        assert "交付物检查 🟡 黄灯（待确认：CPU峰值）" in shown(card)
        row = await check_of(db)
        assert row is not None and row.method == "ocr" and row.source == "chat_image" and row.light == "yellow"
        by = {f["label"]: f for f in row.fields}
        assert by["并发量"]["value"] == 5600 and "5600" in by["并发量"]["snippet"]
        assert by["CPU峰值"]["value"] == 87.5 and by["CPU峰值"]["confirm"] is True

        # Something that is no answer changes nothing and the question stands.
        await people.say("wangqiang", "稍等我看看")
        assert people.texts("wangqiang") == ["请回复「对」，或「不对 85%」这样带上正确数值。（CPU峰值 识别为 87.5%）"]
        assert (await check_of(db)).light == "yellow"  # type: ignore[union-attr]
        # 不对 → the right value; full-width digits and percent sign are read too.
        await people.say("wangqiang", "不对")
        assert people.texts("wangqiang") == ["请回复 CPU峰值 的正确数值，例如 87.5%"]
        await people.say("wangqiang", "６８％")
        said = people.texts("wangqiang")
        assert said[0].startswith("已更新：🟢 绿灯") and "CPU峰值 68% 🟢" in said[0]
        row = await check_of(db)
        assert row is not None and row.light == "green"
        assert {f["label"]: f["method"] for f in row.fields}["CPU峰值"] == "typed"
        assert "交付物检查 🟢 绿灯" in shown(people.card("wangqiang", "T21"))

        # The PMO sees the light in the list of the project's tasks.
        await people.say("guoqing", "任务")
        listing = people.texts("guoqing")[0]
        assert "T21 直播系统压测" in listing and "负责人 王强｜🟢 绿灯" in listing

    # The export sheet: one row per field, with the value, its light, how it was read and the snippet.
    async with db.session() as s:
        rows = await deliverable_sheet(s, DEMO_TENANT, SHANGHAI)
    cpu = next(r for r in rows if r[6] == "CPU峰值")
    assert cpu[:6] == ["T21", "直播系统压测", "王强", "直播系统压测报告", "绿灯", ""]
    assert cpu[7:10] == ["68%", "绿灯", "typed"] and "87.5" in cpu[10]
    concurrency = next(r for r in rows if r[6] == "并发量")
    assert concurrency[7:10] == ["5600", "绿灯", "ocr"] and "5600" in concurrency[10]


async def test_the_fake_wecom_serves_media_strictly(db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    """media/get as documented: the bytes with Content-disposition, or a JSON errcode (40007 unknown media)."""
    async with wecom_company(db, tmp_path, pool) as people:
        tenant = people.runtime.config.tenants[0]
        adapter = people.runtime.adapters["wecom"]
        media_id = people.fake.receive_media(b"\x89PNG fake bytes", "截图.png")
        got = await adapter.download(tenant, {"media_id": media_id}, 1_000)
        assert (got.content, got.filename, got.problem) == (b"\x89PNG fake bytes", "截图.png", "")
        assert (await adapter.download(tenant, {"media_id": "nope"}, 1_000)).problem == "gone"
        assert ("media/get", 40007) in people.fake.calls
        too_big = await adapter.download(tenant, {"media_id": media_id}, 5)
        assert too_big.problem == "too_big"
        # A dead token is refused with 42001/40014 and the adapter refreshes it once.
        people.fake.expire_tokens()
        assert (await adapter.download(tenant, {"media_id": media_id}, 1_000)).content == b"\x89PNG fake bytes"
        assert ("media/get", 42001) in people.fake.calls or ("media/get", 40014) in people.fake.calls
        # An image whose MediaId WeCom no longer knows: he is told to send it again, no light.
        people.fake.media.clear()
        await people.client.post(people.client.image_xml("wangqiang", "expired-media"))
        await people.settle()
        said = people.texts("wangqiang")
        assert said[-1] == "这个文件已经取不到了（40007 invalid media_id），请重新发送一次。"
        assert await check_of(db) is None
        async with db.session() as s:
            assert [r.status for r in (await s.execute(select(DeliverableIntake))).scalars()] == ["failed"]


async def test_with_two_open_tasks_a_card_asks_which_and_without_one_nothing_is_stored(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool, extra_tasks=SECOND) as people:
        # 罗毅's task has no deliverable rules: his file is not kept.
        await people.client.send_image("luoyi", b"\x89PNG not a report")
        await people.settle()
        assert people.texts("luoyi") == ["收到文件，但你没有需要交付物检查的进行中任务；文件没有保存。"]
        assert await count(db, DeliverableIntake) == 0

        await people.client.send_image("wangqiang", report_png())
        await people.settle()
        card = people.card("wangqiang", "这份交付物属于哪个任务？")
        assert [b["text"] for b in card["button_list"]] == ["T21 直播系统压测", "T23 弹幕压测"]
        assert await check_of(db, "T23") is None
        await people.press("wangqiang", card, "T23 弹幕压测")
        said = people.texts("wangqiang")
        assert "收到「图片」，正在按 T23「直播系统压测报告」检查，稍等片刻。" in said
        row = await check_of(db, "T23")
        assert row is not None and row.method == "ocr" and row.light == "yellow" and await check_of(db, "T21") is None
        # The card is used up: it shows what was picked.
        assert "已选择 T23" in str(people.fake.cards[card["task_id"]].card)
        assert said[-1] == "识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"

        # A newer file for the same task replaces the check: the question about the old reading is moot.
        await people.client.send_image("wangqiang", b"\x89PNG\r\n\x1a\nbroken")
        await people.settle()
        await people.press("wangqiang", people.card("wangqiang", "这份交付物属于哪个任务？"), "T23 弹幕压测")
        assert "这个文件读不出来（not an image）" in people.texts("wangqiang")[-1]
        await people.say("wangqiang", "对")
        assert not any(t.startswith("已更新") for t in people.texts("wangqiang"))
        row = await check_of(db, "T23")
        assert row is not None and (row.light, row.problem) == ("yellow", "unreadable")
        assert await count(db, DeliverableCheck) == 2


async def test_an_image_over_the_pixel_cap_or_unreadable_gets_a_clear_reply_and_a_yellow_light(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool, deliverables={**DELIVERABLES, "max_megapixels": 0.05}) as people:
        await people.send_image("wangqiang", report_png())  # 480 px wide: over 50 000 pixels
        said = people.texts("wangqiang")
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（无法读取）\n图片太大（")
        assert said[1].endswith("），没有识别；请截取结果区域后再发。") and len(said) == 2
        row = await check_of(db)
        assert row is not None and (row.light, row.problem) == ("yellow", "too_many_pixels")
        await people.send_image("wangqiang", b"\x89PNG\r\n\x1a\nbroken")
        said = people.texts("wangqiang")
        assert "这个文件读不出来（not an image）" in said[1]
        assert "交付物检查 🟡 黄灯（无法读取）" in shown(people.card("wangqiang", "T21"))
        assert await count(db, DeliverableCheck) == 2


def two_page_pdf() -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        for text in ("Concurrency 5600", "Error rate 0.05%"):
            fig = Figure(figsize=(3, 2))
            fig.text(0.1, 0.5, text)
            pdf.savefig(fig)
    return buf.getvalue()


# -- DingTalk over Stream ----------------------------------------------------------------------------------------
class DingTalkPeople:
    def __init__(self, runtime: Any, fake: FakeDingTalk, app: FakeApp, worker: IntakeWorker) -> None:
        self.runtime, self.fake, self.app, self.worker = runtime, fake, app, worker
        self._seen: dict[str, int] = {}
        self._n = 0

    async def settle(self) -> None:
        await self.runtime.settle()
        while await self.worker.run_once():
            await self.runtime.settle()

    async def say(self, userid: str, text: str) -> None:
        self._n += 1
        frame = await self.fake.push_robot_message(self.app, userid, text, msg_id=f"msg{self._n:04d}==")
        await self.fake.wait_acked([frame])
        await self.settle()

    async def send_file(self, userid: str, content: bytes, *, filename: str = "", picture: bool = False) -> None:
        self._n += 1
        frame = await self.fake.push_file_message(self.app, userid, content, filename=filename, picture=picture,
                                                  msg_id=f"file{self._n:04d}==")
        await self.fake.wait_acked([frame])
        assert frame.ack is not None and frame.ack["code"] == 200
        await self.settle()

    def texts(self, userid: str) -> list[str]:
        got = self.fake.delivered[userid]
        new = got[self._seen.get(userid, 0):]
        self._seen[userid] = len(got)
        return [d.content.get("content", d.content.get("text", "")) for d in new if d.kind in ("text", "markdown")]

    def card_text(self, userid: str, title: str) -> str:
        cards = [c for c in self.fake.cards_of(userid) if title in c.title]
        assert cards, f"{userid} has no card titled {title!r}"
        return cards[-1].markdown()


@asynccontextmanager
async def dingtalk_company(db: Database, tmp_path: Path, pool: ExtractionPool, **tenant: Any) -> AsyncIterator[DingTalkPeople]:
    clock = FrozenClock(NOW)
    fake = FakeDingTalk(now_ms=lambda: int(clock.now().timestamp() * 1000), redeliver_after=1.0)
    await fake.start()
    app = fake.add_app("dingkanggu", "kanggu-secret", corp_id="dingkanggu")
    config = await seed(db, tmp_path, "", dingtalk=tenant_config(app, fake.base_url)["dingtalk"], **tenant)
    async with db.session() as s:
        for e in (await s.execute(select(Employee))).scalars():
            fake.add_user(app, e.userid, e.name)
    runtime = make_runtime(config, db, clock)
    adapter = runtime.adapters["dingtalk"]
    assert isinstance(adapter, DingTalkAdapter)
    adapter.reconnect_base, adapter.reconnect_max = 0.02, 0.2
    await adapter.start()
    try:
        await fake.wait_connected(app)
        yield DingTalkPeople(runtime, fake, app, IntakeWorker(runtime, pool))
        assert fake.protocol_errors == []
        assert fake.late_or_missing_acks() == []
    finally:
        await adapter.stop()
        await fake.stop()


async def test_a_picture_over_dingtalk_stream_a_confirmed_red_and_the_pmos_release(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with dingtalk_company(db, tmp_path, pool) as people:
        await people.send_file("wangqiang", report_png(), picture=True)
        assert people.fake.calls["messageFilesDownload"] == 1
        said = people.texts("wangqiang")
        assert said[0] == "收到「图片」，正在按 T21「直播系统压测报告」检查，稍等片刻。"
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（待确认：CPU峰值）")
        assert said[-1] == "识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"
        assert "🟡 黄灯（待确认：CPU峰值）" in people.card_text("wangqiang", "T21")

        # A command in between puts the question aside; 继续 asks it again.
        await people.say("wangqiang", "任务")
        said = people.texts("wangqiang")
        assert said[0] == "已暂停交付物确认，回复「继续」接着填。" and "T21 直播系统压测" in said[1]
        await people.say("wangqiang", "继续")
        assert people.texts("wangqiang") == ["识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"]
        # 对: the reading stands, confirmed; now the light is red.
        await people.say("wangqiang", "对的")
        said = people.texts("wangqiang")
        assert said[0].startswith("已更新：🔴 红灯（CPU峰值 87.5%（要求 ≤ 80%））")
        assert "🔴 红灯" in people.card_text("wangqiang", "T21")

        # A red task does not close as done; the PMO hears of it with the command that releases it.
        await people.say("wangqiang", "进度 T21 完成")
        assert people.texts("wangqiang") == [
            "T21 的交付物检查是红灯（🔴 红灯（CPU峰值 87.5%（要求 ≤ 80%））），不能标记完成。"
            "请改进后重新发送交付物，或请 PMO 郭庆 放行（放行 T21 原因）。"]
        notice = people.card_text("guoqing", "T21「直播系统压测」交付物红灯")
        assert ("王强 想把 T21「直播系统压测」标记完成，但交付物检查是红灯" in notice
                and "放行 T21 原因" in notice and "放行" in notice)
        async with db.session() as s:
            task = (await s.execute(select(Task).where(Task.code == "T21"))).scalar_one()
        assert task.status != TaskStatus.DONE

        # 王强 cannot release his own task; the PMO must give a reason.
        await people.say("wangqiang", "放行 T21 我觉得可以")
        assert people.texts("wangqiang") == ["只有项目 PMO 或管理员可以放行 T21。"]
        await people.say("guoqing", "放行 T21")
        assert people.texts("guoqing") == ["请这样写：放行 T3 原因（例如：放行 T3 客户已书面确认）"]
        assert (await check_of(db)).override_by == ""  # type: ignore[union-attr]
        await people.say("guoqing", "放行：T21 客户已书面确认 CPU 峰值可接受")
        assert people.texts("guoqing") == ["已放行 T21「直播系统压测」（原因：客户已书面确认 CPU 峰值可接受），王强 现在可以标记完成。"]
        assert people.texts("wangqiang") == [
            "郭庆 已放行 T21「直播系统压测」的红灯交付物（原因：客户已书面确认 CPU 峰值可接受），现在可以标记完成。"]
        row = await check_of(db)
        assert row is not None and (row.override_by, row.override_reason) == ("guoqing", "客户已书面确认 CPU 峰值可接受")
        async with db.session() as s:
            audit = [(a.actor_userid, a.action, a.subject) for a in (await s.execute(select(AuditLog))).scalars()]
        assert ("guoqing", "deliverable_override", "T21: 客户已书面确认 CPU 峰值可接受") in audit

        await people.say("wangqiang", "进度 T21 完成")
        assert people.texts("wangqiang")[0].startswith("已完成 T21")
        async with db.session() as s:
            task = (await s.execute(select(Task).where(Task.code == "T21"))).scalar_one()
        assert task.status == TaskStatus.DONE and task.deliverable == "图片（🔴 红灯）"


def locust_stats_csv() -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"])
    w.writerow(["", "Aggregated", 200000, 100, 120, 150.0, 3, 900, 512, 800.5, 0.4,
                120, 130, 140, 150, 180, 220, 300, 400, 800, 900, 900])
    return out.getvalue().encode()


async def test_a_locust_csv_file_message_gives_the_light_without_ocr_and_an_oversize_file_is_yellow(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with dingtalk_company(db, tmp_path, pool,
                                deliverables={**DELIVERABLES, "max_file_mb": 1, "max_pages": 1}) as people:
        await people.send_file("wangqiang", locust_history([1000, 3000, 4200, 4200], 200_000, 100, 150.0),
                               filename="run_stats_history.csv")
        said = people.texts("wangqiang")
        assert said[0] == "收到「run_stats_history.csv」，正在按 T21「直播系统压测报告」检查，稍等片刻。"
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（并发量 4200（要求 ≥ 5000））")
        assert len(said) == 2  # machine-readable: nothing to confirm
        row = await check_of(db)
        assert row is not None and (row.method, row.source, row.filename) == ("locust", "chat_file", "run_stats_history.csv")
        assert {f["label"]: f["snippet"] for f in row.fields}["并发量"] == "max User Count=4200"

        # DingTalk revoked the token: the download is refused (InvalidAuthentication), the token renewed, the file read.
        people.fake.revoke_tokens(people.app)
        await people.send_file("wangqiang", locust_history([1000, 5200], 200_000, 100, 150.0), filename="again_stats_history.csv")
        assert people.fake.rejected[("messageFilesDownload", "auth")] == 1
        assert people.texts("wangqiang")[1].startswith("T21「直播系统压测」交付物检查：🟢 绿灯")

        # Over the size cap (20 MB by default; here 1 MB): not read past the cap, a clear reply, yellow.
        big = locust_stats_csv() + b"#" * (3 * 1024 * 1024)
        await people.send_file("wangqiang", big, filename="run_stats.csv")
        said = people.texts("wangqiang")
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（无法读取）")
        assert "文件太大" in said[1] and "请发送不超过 1 MB 的文件" in said[1]
        row = await check_of(db)
        assert row is not None and (row.light, row.problem) == ("yellow", "too_big")
        assert "🟡 黄灯（无法读取）" in people.card_text("wangqiang", "T21")

        # Over the page cap: the same clear reply and yellow light.
        await people.send_file("wangqiang", two_page_pdf(), filename="压测报告.pdf")
        said = people.texts("wangqiang")
        assert "文件页数太多（2 pages > 1），没有读取；请只发送结果页。" in said[1]
        assert (await check_of(db)).problem == "too_many_pages"  # type: ignore[union-attr]

        # A downloadCode the platform does not know is refused by the fake, and the bot asks for the file again.
        people.fake.received.clear()
        frame = await people.fake.push_frame(people.app, {
            "specVersion": "1.0", "type": "CALLBACK",
            "headers": {"messageId": "m-lost", "topic": "/v1.0/im/bot/messages/get", "contentType": "application/json",
                        "time": str(people.fake.now_ms())},
            "data": __import__("json").dumps({**people.fake.robot_message(people.app, "wangqiang", "", msg_id="lost=="),
                                              "msgtype": "file", "content": {"downloadCode": "dc-unknown",
                                                                             "fileName": "x.csv"}})})
        assert frame is not None
        await people.fake.wait_acked([frame])
        await people.settle()
        assert people.texts("wangqiang")[-1].startswith("这个文件已经取不到了（")
        assert people.fake.rejected[("messageFilesDownload", "unknown")] == 1


# -- the outcome in the person's order ----------------------------------------------------------------------
class GatedPool:
    """The real reader, held at the door until the test lets it through: "while the check runs"."""

    def __init__(self, pool: ExtractionPool) -> None:
        self.pool, self.timeout = pool, pool.timeout
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def check(self, *args: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self.pool.check(*args)

    def close(self) -> None:
        pass


async def outcomes(db: Database) -> list[str]:
    async with db.session() as s:
        return [r.status for r in (await s.execute(select(InboxEvent).where(
            InboxEvent.dedup_key.startswith(OUTCOME_KEY)))).scalars()]


async def conversation_kind(db: Database, userid: str) -> str | None:
    async with db.session() as s:
        row = (await s.execute(select(Conversation).where(
            Conversation.tenant == DEMO_TENANT, Conversation.userid == userid))).scalar_one_or_none()
        return row.kind if row is not None else None


async def test_what_wang_qiang_says_while_his_file_is_read_is_answered_in_order_with_the_check(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool) as people:
        await people.client.send_image("wangqiang", report_png())
        await people.runtime.settle()
        assert people.texts("wangqiang") == ["收到「图片」，正在按 T21「直播系统压测报告」检查，稍等片刻。"]
        gated = GatedPool(pool)
        worker = IntakeWorker(people.runtime, gated)  # type: ignore[arg-type]
        reading = asyncio.create_task(worker.run_once())
        await gated.entered.wait()

        # While the screenshot is read, he is answered at once: the reader holds nothing of his.
        await people.say("wangqiang", "你好")
        hello = people.texts("wangqiang")
        assert len(hello) == 1 and "交付物检查" not in hello[0]
        # 对 arrives before the reading is done, and waits in the inbox (not handled yet).
        assert set(await people.client.say("wangqiang", "对")) == {200}
        gated.release.set()
        assert await reading == 1
        # The reader only queued the outcome: no light, no reply, no question written beside his message.
        assert await outcomes(db) == ["pending"] and await check_of(db) is None
        assert people.texts("wangqiang") == [] and await conversation_kind(db, "wangqiang") is None

        await people.runtime.settle()
        said = people.texts("wangqiang")
        # In his order: 对 came first, when nothing was asked, so it confirmed nothing; then the check.
        assert not said[0].startswith("已更新") and "交付物检查" not in said[0]
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟡 黄灯（待确认：CPU峰值）")
        assert said[2] == "识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"
        assert await conversation_kind(db, "wangqiang") == "deliv_confirm"
        assert "交付物检查 🟡 黄灯（待确认：CPU峰值）" in shown(people.card("wangqiang", "T21"))
        # What he says after the outcome sees the question.
        await people.say("wangqiang", "对")
        assert people.texts("wangqiang")[0].startswith("已更新：🔴 红灯")
        assert await outcomes(db) == ["done"] and await count(db, DeliverableCheck) == 1


async def test_a_crash_between_reading_and_queueing_reads_the_file_again_and_records_one_light(
        db: Database, tmp_path: Path, pool: ExtractionPool, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.deliverable_intake as reader

    async with wecom_company(db, tmp_path, pool) as people:
        await people.client.send_image("wangqiang", report_png())
        await people.runtime.settle()
        people.texts("wangqiang")

        async def power_cut(*args: Any) -> bool:
            raise ConnectionError("the process died before the outcome was stored")

        monkeypatch.setattr(reader, "queue_outcome", power_cut)
        with pytest.raises(ConnectionError):
            await people.worker.run_once()
        monkeypatch.undo()
        await people.runtime.settle()
        async with db.session() as s:
            crashed = (await s.execute(select(DeliverableIntake))).scalar_one()
        assert crashed.status == "reading" and await outcomes(db) == [] and await check_of(db) is None
        assert people.texts("wangqiang") == []
        assert await people.worker.run_once() == 0  # still claimed by the dead reader

        async with db.transaction() as s:  # … until its claim runs out
            await s.execute(update(DeliverableIntake).values(claimed_until=utcnow() - timedelta(seconds=1)))
        await people.settle()
        said = people.texts("wangqiang")
        assert said[0].startswith("T21「直播系统压测」交付物检查：🟡 黄灯") and len(said) == 2
        assert await count(db, DeliverableCheck) == 1 and await outcomes(db) == ["done"]
        async with db.session() as s:
            done = (await s.execute(select(DeliverableIntake))).scalar_one()
        assert (done.status, done.attempts) == ("done", 2)

        # The dead reader's late outcome (its claim was the first) is refused; so is a second copy.
        event = outcome_event(crashed, Extraction("png", method="ocr"))
        assert not await queue_outcome(db, crashed, event, utcnow())
        assert not await queue_outcome(db, done, event, utcnow())
        await people.settle()
        assert people.texts("wangqiang") == [] and await count(db, DeliverableCheck) == 1


async def test_the_pmo_releases_a_red_task_with_the_button_on_the_notice(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool) as people:
        await people.send_image("wangqiang", report_png())
        people.texts("wangqiang")
        await people.say("wangqiang", "对")
        assert people.texts("wangqiang")[0].startswith("已更新：🔴 红灯")
        await people.say("wangqiang", "进度 T21 完成")
        assert people.texts("wangqiang")[0].startswith("T21 的交付物检查是红灯")
        notice = people.card("guoqing", "T21「直播系统压测」交付物红灯")
        assert [b["text"] for b in notice["button_list"]] == ["放行"]
        assert "王强 想把 T21「直播系统压测」标记完成" in str(notice)

        await people.press("guoqing", notice, "放行")
        assert people.texts("guoqing")[-1] == "请回复放行 T21 的原因（例如：客户已书面确认）"
        # Nothing typed but spaces: asked again, nothing changes.
        await people.say("guoqing", "\u3000")
        again = people.texts("guoqing")
        assert len(again) == 1 and again[0].startswith("请回复放行 T21 的原因（例如：客户已书面确认）")
        assert (await check_of(db)).override_by == ""  # type: ignore[union-attr]
        await people.say("guoqing", "客户已书面确认 CPU 峰值可接受")
        said = people.texts("guoqing")
        assert said[0] == "已放行 T21「直播系统压测」（原因：客户已书面确认 CPU 峰值可接受），王强 现在可以标记完成。"
        assert people.texts("wangqiang") == [
            "郭庆 已放行 T21「直播系统压测」的红灯交付物（原因：客户已书面确认 CPU 峰值可接受），现在可以标记完成。"]
        row = await check_of(db)
        assert row is not None and (row.override_by, row.override_reason) == ("guoqing", "客户已书面确认 CPU 峰值可接受")
        async with db.session() as s:
            audit = [(a.actor_userid, a.action, a.subject) for a in (await s.execute(select(AuditLog))).scalars()]
        assert audit.count(("guoqing", "deliverable_override", "T21: 客户已书面确认 CPU 峰值可接受")) == 1

        # The notice is used up: greyed out, it cannot be pressed again.
        assert people.fake.cards[notice["task_id"]].card.get("replace_text") == "已放行"
        await people.say("wangqiang", "进度 T21 完成")
        assert people.texts("wangqiang")[0].startswith("已完成 T21")


# -- a file attached to a WeCom approval -----------------------------------------------------------------
REPORT_TEMPLATE = "C4ZXKAtvB9YbGrwPvUfp3brDjbSMX6LxmJ5RnYWZG"
APPROVAL_RULES = {"rules": [{"name": "压测报告审批", "source": "wecom_approval", "code": REPORT_TEMPLATE,
                             "status": ["approved"], "effect": "deliverable", "task": "T21"}]}


async def test_a_load_test_report_attached_to_a_wecom_approval_gets_the_same_check(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    async with wecom_company(db, tmp_path, pool, trace=APPROVAL_RULES) as people:
        report = locust_history([1000, 3000, 5200], 200_000, 100, 150.0)
        file_id = people.fake.receive_media(report, "run_stats_history.csv", kind="file")
        at = int(NOW.timestamp())
        people.fake.add_approval("202612030001", sp_name="压测报告审批", template_id=REPORT_TEMPLATE,
                                 applyer="wangqiang", apply_time=at - 3600, approvers=["guoqing"], fields=[
                                     ("Text", "说明", {"text": "直播系统压测完成"}),
                                     ("File", "压测报告", {"files": [{"file_id": file_id}]})])
        # Submitted (审批中): no rule maps it, nothing is read.
        assert set(await people.client.post(people.client.approval_change_xml("202612030001", 1))) == {200}
        await people.settle()
        assert people.texts("wangqiang") == [] and await count(db, DeliverableIntake) == 0
        # 郭庆 approves: WeCom calls back, the form is read, the attachment goes to T21's check.
        people.fake.approve("202612030001", 0, at - 60)
        assert set(await people.client.post(people.client.approval_change_xml("202612030001", 2))) == {200}
        await people.settle()
        assert ("oa/getapprovaldetail", 0) in people.fake.calls and ("media/get", 0) in people.fake.calls
        said = people.texts("wangqiang")
        # The form gives only the file id; its name comes with the file (media/get's Content-disposition).
        assert said[0] == "审批附件「附件」已收到，正在按 T21「直播系统压测报告」检查，稍等片刻。"
        assert said[1].startswith("T21「直播系统压测」交付物检查：🟢 绿灯")
        row = await check_of(db)
        assert row is not None and (row.method, row.source, row.light) == ("locust", "approval_file", "green")
        assert row.filename == "run_stats_history.csv"
        assert "交付物检查 🟢 绿灯" in shown(people.card("wangqiang", "T21"))

        # WeCom's redelivery of the same change reads nothing again.
        assert set(await people.client.post(people.client.approval_change_xml("202612030001", 2))) == {200}
        await people.settle()
        assert people.texts("wangqiang") == [] and await count(db, DeliverableCheck) == 1


async def test_an_approval_attachment_without_a_named_task_needs_exactly_one_open_task(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:
    rules = {"rules": [{**APPROVAL_RULES["rules"][0], "task": ""}]}
    async with wecom_company(db, tmp_path, pool, extra_tasks=SECOND, trace=rules) as people:
        file_id = people.fake.receive_media(locust_history([5200], 200_000, 100, 150.0), "a_stats_history.csv",
                                            kind="file")
        at = int(NOW.timestamp())
        people.fake.add_approval("202612030002", sp_name="压测报告审批", template_id=REPORT_TEMPLATE,
                                 applyer="wangqiang", apply_time=at - 3600, approvers=["guoqing"],
                                 fields=[("File", "压测报告", {"files": [{"file_id": file_id}]})])
        people.fake.approve("202612030002", 0, at - 60)
        assert set(await people.client.post(people.client.approval_change_xml("202612030002", 2))) == {200}
        await people.settle()
        # T21 and T23 are both his: which one is not guessed; the approval is kept as 留痕 only.
        assert await count(db, DeliverableIntake) == 0 and ("media/get", 0) not in people.fake.calls
        assert [(r.userid, r.effect) for r in await records(db)] == [("wangqiang", "deliverable")]
