"""The weekly loop with the mouse and keyboard, in real headless Chromium, against a real server.

Uses the system Chromium (Debian package `chromium`) through Playwright; nothing
downloads a browser. Skipped when /usr/bin/chromium is missing, unless
DONGXIAN_REQUIRE_BROWSER=1 (CI), where that is a failure. Screenshots of the
chat and the pulse view go to test-artifacts/.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.demo import DEMO_TENANT
from store.db import Database
from store.models import AuditLog, WeeklyAction
from tests.harness import at, seed_demo_company

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=zh-CN"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TOKEN = "browser-test-token-0123456789"
WAIT_MS = 15_000

REQUIRED = os.environ.get("DONGXIAN_REQUIRE_BROWSER") == "1"

if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)", allow_module_level=True)

from playwright.async_api import Page, async_playwright, expect  # noqa: E402


@asynccontextmanager
async def serving(db: Database, tmp_path: Path) -> AsyncIterator[str]:
    """The demo company on a real aiohttp server on 127.0.0.1, background loops running."""
    config = parse_config({
        "server": {"data_dir": str(tmp_path / "data")},
        "database": {"url": db.url},
        "console": {"enabled": True, "token": TOKEN},
        "tenants": [{"key": DEMO_TENANT, "name": "宁波康骨医疗器械有限公司"}],
    })
    await seed_demo_company(db, config)
    runtime = make_runtime(config, db, FrozenClock(at("2026-12-02 10:00")))
    runner = web.AppRunner(build_app(runtime, start_background=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await runtime.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runtime.stop()
        await runner.cleanup()


async def be(page: Page, search: str, userid: str) -> None:
    """Find a colleague with the search box and switch to them."""
    await page.fill("#people-search", search)
    await page.click(f'.person[data-userid="{userid}"]')
    await expect(page.locator(f'.person.active[data-userid="{userid}"]')).to_be_visible()


def card(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator(".msg.bot .card", has=page.locator(".card-title", has_text=title)).last


async def test_the_weekly_loop_in_a_real_browser(db: Database, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"DONGXIAN_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)"
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = db.dialect
    async with serving(db, tmp_path) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN", accept_downloads=True)
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            await page.goto(f"{base}/console/?token={TOKEN}")
            await expect(page.locator(".person")).to_have_count(40)
            assert TOKEN not in page.url  # read once, then sent only as a header

            # The employee fills in this week's action by typing, as in chat.
            await be(page, "wangq", "wangqiang")
            await page.fill("#input", "O1-KR2 完成2份临床评价报告初稿 @李娜")
            await page.press("#input", "Enter")
            await expect(card(page, "已记录本周关键动作")).to_contain_text("完成2份临床评价报告初稿")

            # The witness accepts; the card shows the answer in place of its buttons.
            await be(page, "lina", "li_na")
            invite = card(page, "见证邀请")
            await expect(invite).to_contain_text("王强 邀请你见证本周关键动作")
            await invite.get_by_role("button", name="接受见证").click()
            await expect(invite.locator(".card-result")).to_contain_text("已接受见证")
            await expect(invite.locator("button")).to_have_count(0)

            # Back to the employee: marked done with the card's button.
            await be(page, "王强", "wangqiang")
            await expect(page.locator(".chat")).to_contain_text("李娜 已接受见证")
            summary = card(page, "已记录本周关键动作")
            await summary.get_by_role("button", name="已完成").click()
            await expect(page.locator(".chat")).to_contain_text("已标记完成，已请 李娜 确认。")

            # The witness confirms.
            await be(page, "注册部 李", "li_na")
            confirm = card(page, "请确认完成")
            await confirm.get_by_role("button", name="确认完成").click()
            await expect(confirm.locator(".card-result")).to_be_visible()

            await be(page, "wangqiang", "wangqiang")
            await expect(page.locator(".chat")).to_contain_text("李娜 确认你已完成：完成2份临床评价报告初稿")
            await page.screenshot(path=str(ARTIFACTS / f"console-chat-{suffix}.png"))

            # An employee's data view holds their own actions only.
            await page.click('.tab[data-tab="pulse"]')
            await expect(page.locator("#pulse-title")).to_contain_text("我的数据")
            await expect(page.locator("#pulse-mine")).to_contain_text("已确认")
            await expect(page.locator("table.depts")).to_have_count(0)
            await expect(page.locator("#pulse-export")).to_be_hidden()

            # Friday 17:30 on the clock panel, then the pulse job by hand.
            await page.click('[data-quick="fri1730"]')
            await expect(page.locator("#clock-now")).to_contain_text("17:30")
            await expect(page.locator("#clock-now")).to_contain_text("周五")
            await page.click('#jobs [data-job="pulse"]')
            # The pulse is real work (every department's figures and a chart); on a loaded 2-core
            # machine it has taken over 15 s, and this test is about the outcome, not the speed.
            await expect(page.locator("#job-status")).to_contain_text("已发送", timeout=90_000)

            # HR: the company by department, the trend chart, the export.
            await be(page, "hexin", "hexin")
            await expect(page.locator("#pulse-title")).to_contain_text("组织脉搏 · 2026-W49")
            depts = page.locator("table.depts")
            await expect(depts.locator("tr", has_text="研发中心 / 注册部")).to_contain_text("20%")
            await expect(depts.locator("tr.total")).to_contain_text("40")
            await expect(page.locator('[data-figure="completion_rate"] .value')).to_have_text("100%")
            await expect(page.locator("#pulse-missing")).to_be_empty()
            await page.wait_for_function(
                "() => { const i = document.getElementById('pulse-chart-img'); return i.complete && i.naturalWidth > 0; }")
            async with page.expect_download() as download_info:
                await page.click("#pulse-export")
            download = await download_info.value
            assert download.suggested_filename == "动线周报-2026-W49.xlsx"
            xlsx = ARTIFACTS / f"console-export-{suffix}.xlsx"
            await download.save_as(str(xlsx))
            cells = {str(v) for ws in load_workbook(xlsx, read_only=True).worksheets
                     for row in ws.iter_rows(values_only=True) for v in row if v is not None}
            assert "完成2份临床评价报告初稿" in cells
            await page.set_viewport_size({"width": 1400, "height": 1500})
            await page.screenshot(path=str(ARTIFACTS / f"console-pulse-{suffix}.png"))

            # The HR chat got the Friday pulse card with the export and the chart.
            await page.set_viewport_size({"width": 1400, "height": 1300})
            await page.click('.tab[data-tab="chat"]')
            await expect(card(page, "组织脉搏")).to_be_visible()
            await expect(page.locator(".file a", has_text=".xlsx")).to_be_visible()
            await page.wait_for_function(
                "() => [...document.querySelectorAll('.inline-image')].some(i => i.complete && i.naturalWidth > 0)")
            await page.screenshot(path=str(ARTIFACTS / f"console-hr-chat-{suffix}.png"))
            assert errors == []
        finally:
            await browser.close()

    async with db.session() as s:
        action = (await s.execute(select(WeeklyAction).where(WeeklyAction.userid == "wangqiang"))).scalar_one()
        audit = [(r.actor_userid, r.action) for r in (await s.execute(select(AuditLog))).scalars()]
    assert (action.status, action.witness_state, action.week) == ("confirmed", "accepted", "2026-W49")
    assert {("hexin", "view_pulse"), ("hexin", "view_pulse_chart"), ("hexin", "export")} <= set(audit)
    assert not [a for a in audit if a[0] == "wangqiang"]
