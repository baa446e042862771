"""A feature is one unit: the test-only 点赞 feature (tests/features/kudos.py) is added to the bot
through the public feature API alone — its command with words, typed button, texts, job, config
section and access declarations — and used end to end, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from bot.core.config import ConfigError, parse_config
from handlers.routes import build_router
from handlers.router import Router
from schedules.jobs import all_jobs
from schedules.registry import JobRegistry
from store.db import Database
from tests.features import kudos
from tests.harness import at, console_bot


def with_kudos() -> tuple[Router, JobRegistry]:
    router = build_router()
    router.include(kudos.router)
    return router, all_jobs().include(kudos.jobs)


async def test_a_feature_added_through_the_public_api_works_end_to_end(db: Database, tmp_path: Path) -> None:
    router, jobs = with_kudos()
    clock = FrozenClock(at("2026-12-02 10:00"))
    async with console_bot(db, clock, tmp_path, router=router, jobs=jobs, kudos_demo={"max_words": 12}) as bot:
        # 王强: 点赞 @李娜 谢谢你帮我改方案 → bot: 已为 李娜 点赞 → 李娜 gets a card with 回赞.
        await bot.say("wangqiang", "点赞 @李娜 谢谢你帮我改方案")
        assert await bot.texts("wangqiang") == ["已为 李娜 点赞"]
        card = await bot.last_card("li_na", "王强 为你点赞")
        assert card["body"] == "谢谢你帮我改方案"
        # The typed button's key is packed by the action and parsed back by the router.
        assert [b["key"] for b in card["buttons"]] == ["kudos_back:wangqiang"]
        await bot.press("li_na", card, "回赞")
        assert await bot.texts("wangqiang") == ["李娜 回赞了你"]
        assert (await bot.last_card("li_na", "王强 为你点赞"))["result"] == "已回赞"
        await bot.new("li_na")
        # A second press of the answered card changes nothing.
        await bot.press("li_na", card, "回赞")
        assert await bot.texts("wangqiang") == []

        # Its config section is read ([tenants.kudos_demo] max_words = 12) …
        await bot.say("wangqiang", "点赞 @李娜 谢谢你这周每天都帮我把方案改到深夜")
        assert await bot.texts("wangqiang") == ["一句话就好（12 字以内）"]
        # … its command words do not swallow weekly actions that start the same way …
        await bot.say("zhaolei", "点赞功能需求评审 @李娜")
        assert "已为" not in " ".join(await bot.texts("zhaolei"))
        # … and nobody can thank themselves.
        await bot.say("li_na", "kudos @李娜 太棒了")
        assert await bot.texts("li_na") == ["不能给自己点赞"]

        # Its job is on the registry the console reads, runs at its slot, and sends once per person and day.
        listed = await (await bot.client.get("/console/api/jobs")).json()
        assert "kudos_reminder" in listed["jobs"] and listed["labels"]["kudos_reminder"] == "点赞提醒"
        english = await (await bot.client.get("/console/api/jobs", params={"locale": "en"})).json()
        assert english["labels"]["kudos_reminder"] == "Kudos reminder"
        assert await bot.run_job("kudos_reminder", at("2026-12-02 16:00")) == 40
        assert "今天有想感谢的同事吗？" in (await bot.texts("zhaolei"))[-1]
        assert await bot.run_job("kudos_reminder", at("2026-12-02 16:05")) == 0
        clock.set(at("2026-12-03 15:59"))
        assert await bot.runtime.tick(clock.now()) == 0
        clock.set(at("2026-12-03 16:00"))
        assert await bot.runtime.tick(clock.now()) == 40


async def test_without_the_feature_its_words_are_not_a_command(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        assert build_router().classify("点赞 @李娜 谢谢")[0] == ""
        listed = await bot.client.get("/console/api/jobs")
        assert "kudos_reminder" not in (await listed.json())["jobs"]


def test_the_feature_declares_its_parts() -> None:
    router, jobs = with_kudos()
    assert router.classify("点赞 @李娜 谢谢") == ("kudos", "@李娜 谢谢")
    assert router.classify("ＫＵＤＯＳ @lina thanks") == ("kudos", "@lina thanks")  # full-width, any case
    assert router.commands["kudos"].access == ("own",) and router.cards["kudos"].access == "recipient"
    assert "kudos_back" in router.actions and "kudos_reminder" in jobs
    assert kudos.ThankBack.unpack(kudos.ThankBack(giver="a:b%c").pack()) == kudos.ThankBack(giver="a:b%c")
    assert kudos.ThankBack.unpack("kudos_back:a:b") is None  # malformed: refused, not guessed
    with pytest.raises(ConfigError, match=r"tenants\[0\]\.kudos_demo\.max_words"):
        parse_config({"tenants": [{"key": "acme", "name": "A", "kudos_demo": {"max_words": "many"}}]})
    # Registering the same word or card kind twice is refused, so features cannot shadow each other.
    with pytest.raises(ValueError, match="registered twice"):
        router.include(kudos.router)
