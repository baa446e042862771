"""The upload link on the task card, on SQLite and PostgreSQL, over the fake WeCom.

王强 asks for his T21 card (进度 T21); it carries 上传交付物, a WeCom url button (button_list type 1).
His browser opens the link: a small form (Chinese first, English beside). He uploads the Locust
history; the file takes the chat files' path (intake, reader, light) and the light comes back to him
in chat and onto the card. The link is used once; a forged one, an expired one and a file over the
cap are refused, each with nothing stored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.core.config import ConfigError
from bot.demo import DEMO_TENANT
from bot.upload import UPLOAD_DIR
from cards.dingtalk import card_markdown, card_params
from cards.model import Button, Card, Link, Message
from handlers.deliverables.ocr import ExtractionPool
from store.db import Database
from store.models import DeliverableCheck, DeliverableIntake, InboxEvent
from tests.harness import demo_test_config
from tests.test_deliverable_intake import DELIVERABLES, check_of, pool, wecom_company  # noqa: F401
from tests.test_deliverables_extract import locust_history

SECRET = "s3cret-for-upload-links-0123456789abcdef"
UPLOADS = {**DELIVERABLES, "upload_url": "https://dx.kanggu.example", "upload_secret": SECRET}
REPORT = locust_history([1000, 3000, 5200], 200_000, 100, 150.0)


def link_of(card: dict[str, Any]) -> str:
    (button,) = [b for b in card["button_list"] if b.get("type") == 1]
    assert button["text"] == "上传交付物" and "key" not in button
    return str(button["url"])


async def stored(db: Database, tmp_path: Path) -> tuple[int, int, int]:
    """(inbox events, intake rows, files waiting) — what an upload could have left behind."""
    async with db.session() as s:
        events = (await s.execute(select(func.count()).select_from(InboxEvent))).scalar_one()
        intakes = (await s.execute(select(func.count()).select_from(DeliverableIntake))).scalar_one()
    folder = tmp_path / UPLOAD_DIR
    return int(events), int(intakes), len(list(folder.iterdir())) if folder.exists() else 0


async def post_file(http: aiohttp.ClientSession, url: str, content: bytes, filename: str) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="text/csv")
    async with http.post(url, data=form) as resp:
        return resp.status, await resp.text()


async def test_wang_qiang_uploads_his_report_through_the_card_link_once(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:  # noqa: F811
    async with wecom_company(db, tmp_path, pool, deliverables=UPLOADS) as people:
        await people.say("wangqiang", "进度 T21")
        link = link_of(people.card("wangqiang", "T21"))
        assert link.startswith("https://dx.kanggu.example/upload/")
        local = str(people.server.make_url(link.removeprefix("https://dx.kanggu.example")))
        async with aiohttp.ClientSession() as http:
            async with http.get(local) as resp:
                page = await resp.text()
                assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
            assert "上传交付物" in page and "Upload the deliverable" in page and "T21 直播系统压测" in page
            assert page.index("上传交付物") < page.index("Upload the deliverable")  # Chinese first

            status, page = await post_file(http, local, REPORT, "run_stats_history.csv")
            assert status == 200 and "已收到「run_stats_history.csv」" in page
            await people.settle()
            said = people.texts("wangqiang")
            assert said[-2] == "收到「run_stats_history.csv」，正在按 T21「直播系统压测报告」检查，稍等片刻。"
            assert said[-1].startswith("T21「直播系统压测」交付物检查：🟢 绿灯")
            row = await check_of(db)
            assert row is not None and (row.method, row.source, row.light) == ("locust", "upload_link", "green")
            assert not list((tmp_path / UPLOAD_DIR).iterdir())  # read and handed on: the copy is gone

            # The same link again: refused, nothing new stored; opening it says so too.
            before = await stored(db, tmp_path)
            status, page = await post_file(http, local, REPORT, "again.csv")
            assert status == 410 and "已经用过了" in page and "already used" in page
            async with http.get(local) as resp:
                assert resp.status == 410
            await people.settle()
            assert await stored(db, tmp_path) == before and people.texts("wangqiang") == []
            async with db.session() as s:
                assert (await s.execute(select(func.count()).select_from(DeliverableCheck))).scalar_one() == 1
            # The card sent with the light carries a new link of its own.
            assert link_of(people.card("wangqiang", "T21")) != link


async def test_a_forged_or_expired_link_or_an_oversize_file_is_refused_with_nothing_stored(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:  # noqa: F811
    async with wecom_company(db, tmp_path, pool, deliverables={**UPLOADS, "max_file_mb": 0.01,
                                                               "upload_hours": 24}) as people:
        await people.say("wangqiang", "进度 T21")
        link = link_of(people.card("wangqiang", "T21"))
        local = str(people.server.make_url(link.removeprefix("https://dx.kanggu.example")))
        payload, signature = local.rsplit("/", 1)[1].split(".")
        base = local.rsplit("/", 1)[0]
        before = await stored(db, tmp_path)
        async with aiohttp.ClientSession() as http:
            # Another signature, another payload under the old signature, no token at all: 403.
            for token in (f"{payload}.{signature[:-2]}xx", f"{payload[:-2]}AA.{signature}", "你好", "a.b"):
                status, page = await post_file(http, f"{base}/{token}", REPORT, "run_stats_history.csv")
                assert status == 403 and "链接无效" in page, token
                async with http.get(f"{base}/{token}") as resp:
                    assert resp.status == 403
            # 10 KB cap; 40 KB file: 413, nothing kept (not even the part read before the cap).
            status, page = await post_file(http, local, b"#" * 40_000 + REPORT, "big_stats_history.csv")
            assert status == 413 and "超过 0.01 MB" in page
            # No file in the form: 400.
            async with http.post(local, data={"note": "hi"}) as resp:
                assert resp.status == 400
            assert await stored(db, tmp_path) == before
            # A day later the link has run out: 410, nothing stored.
            people.clock.advance(hours=24)
            status, page = await post_file(http, local, REPORT, "run_stats_history.csv")
            assert status == 410 and "已过期" in page
        await people.settle()
        assert await stored(db, tmp_path) == before and await check_of(db) is None
        assert people.texts("wangqiang") == []


def test_without_upload_url_no_link_and_an_upload_url_needs_its_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="upload_secret"):
        demo_test_config("sqlite+aiosqlite://", tmp_path, deliverables={**DELIVERABLES, "upload_url": "https://x.cn"})
    with pytest.raises(ConfigError, match="upload_url"):
        demo_test_config("sqlite+aiosqlite://", tmp_path, deliverables={**UPLOADS, "upload_url": "dx.example"})
    config = demo_test_config("sqlite+aiosqlite://", tmp_path, deliverables=UPLOADS)
    assert SECRET not in repr(config)


def test_dingtalk_shows_the_link_as_a_markdown_line() -> None:
    """The general template's buttons report presses; a link goes into the body, whole, after the text."""
    card = Card(title="T21 直播系统压测", body="进度如何？" * 200, buttons=[Button("done", "完成")],
                links=[Link("上传交付物", "https://dx.kanggu.example/upload/abc.def")])
    body = card_params(card)["body"]
    assert body.endswith("[上传交付物](https://dx.kanggu.example/upload/abc.def)")
    assert len(body.encode()) <= 1024
    text = card_markdown(Message(kind="card", card=card)).text
    assert "[上传交付物](https://dx.kanggu.example/upload/abc.def)" in text
    assert "上传交付物：https://dx.kanggu.example/upload/abc.def" in card.as_text()
    assert Card.from_dict(card.to_dict()) == card


async def test_a_report_larger_than_the_servers_body_cap_streams_in_under_the_file_cap(
        db: Database, tmp_path: Path, pool: ExtractionPool) -> None:  # noqa: F811
    """Other routes take at most server.max_body_bytes (1 MB); the upload streams to disk up to max_file_mb."""
    async with wecom_company(db, tmp_path, pool, deliverables=UPLOADS) as people:
        assert people.runtime.config.server.max_body_bytes < 1_500_000
        await people.say("wangqiang", "进度 T21")
        link = link_of(people.card("wangqiang", "T21"))
        local = str(people.server.make_url(link.removeprefix("https://dx.kanggu.example")))
        async with aiohttp.ClientSession() as http:
            status, _ = await post_file(http, local, REPORT + b"\n" * 1_500_000, "big_stats_history.csv")
        assert status == 200
        await people.settle()
        row = await check_of(db)
        assert row is not None and row.source == "upload_link" and row.filename == "big_stats_history.csv"
