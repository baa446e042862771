"""HR reads the audit log in a real headless Chromium: who read whose data, filtered by person and date."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from store.db import Database
from tests.harness import at, console_bot
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, TOKEN, WAIT_MS, serving

from playwright.async_api import async_playwright, expect  # noqa: E402  (test_browser skips without Chromium)

EVENT = "周二夜里帮客户排查退货问题"


async def test_the_audit_api_is_for_hr_and_filters_by_person_and_date(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("liuyang", f"反馈 @王强 #主动补位 客户级 {EVENT}")
        await bot.say("liuyang", "反馈 查看 @王强")       # 12-01: 刘洋 reads 王强's feedback
        clock.set(at("2026-12-03 11:00"))
        await bot.say("zhoumin", "反馈 查看 @李娜")       # 12-03: 周敏 (HR) reads 李娜's
        get = bot.client.get
        r = await get("/console/api/audit", params={"tenant": "demo", "userid": "wangqiang"})
        assert r.status == 403  # an employee sees no audit log
        r = await get("/console/api/audit", params={"tenant": "demo", "userid": "hexin", "person": "wangqiang"})
        entries = (await r.json())["entries"]
        assert [(e["at"], e["actor"]["name"], e["action_text"], e["subject_text"]) for e in entries] == [
            ("2026-12-01 10:00", "刘洋", "查看反馈", "王强（wangqiang）")]
        r = await get("/console/api/audit", params={"tenant": "demo", "userid": "hexin",
                                                     "from": "2026-12-02", "to": "2026-12-03"})
        # Newest first; reading the audit log about 王强 a moment ago is itself on it.
        assert [(e["actor"]["userid"], e["action"], e["subject"]) for e in (await r.json())["entries"]] == [
            ("hexin", "view_audit", "wangqiang"), ("zhoumin", "view_feedback", "li_na")]
        r = await get("/console/api/audit", params={"tenant": "demo", "userid": "hexin", "from": "12/01"})
        assert r.status == 400


async def test_hr_opens_the_audit_view_in_a_browser(db: Database, tmp_path: Path) -> None:
    assert CHROMIUM.exists()
    ARTIFACTS.mkdir(exist_ok=True)
    async with serving(db, tmp_path) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # 刘洋 reads 王强's feedback in chat, through the console.
            await page.goto(f"{base}/console/?token={TOKEN}")
            await page.fill("#people-search", "liuyang")
            await page.click('.person[data-userid="liuyang"]')
            await page.fill("#input", f"反馈 @王强 #主动补位 客户级 {EVENT}")
            await page.press("#input", "Enter")
            await expect(page.locator(".chat")).to_contain_text("已记录对 王强 的反馈")
            await page.fill("#input", "反馈 查看 @王强")
            await page.press("#input", "Enter")
            await expect(page.locator(".chat")).to_contain_text("王强 收到的反馈")

            # HR opens the audit log from the console's top bar and filters on 王强.
            await page.click("#audit-link")
            await expect(page).to_have_url(f"{base}/console/audit")
            await page.select_option("#audit-viewer", "hexin")
            await page.fill("#audit-person", "王强")
            await page.fill("#audit-from", "2026-12-02")
            await page.fill("#audit-to", "2026-12-02")
            await page.click("#audit-search")
            row = page.locator("#audit-table tbody tr")
            await expect(row).to_have_count(1)
            await expect(row).to_contain_text("刘洋（liuyang）")
            await expect(row).to_contain_text("查看反馈")
            await expect(row).to_contain_text("王强（wangqiang）")
            await expect(row).to_contain_text("2026-12-02 10:00")
            await expect(page.locator("#audit-status")).to_contain_text("共 1 条")
            await page.screenshot(path=str(ARTIFACTS / f"console-audit-{db.dialect}.png"))
            # A day with nothing in it shows nothing.
            await page.fill("#audit-from", "2026-12-03")
            await page.fill("#audit-to", "2026-12-03")
            await page.click("#audit-search")
            await expect(row).to_have_count(0)
            assert errors == []
        finally:
            await browser.close()
