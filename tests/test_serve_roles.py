"""`dongxian serve --role web` and `--role worker` on one database: the web acknowledges, the worker answers.

王强 and 李娜 write their weekly actions to the web process (the console API, as a platform
callback would arrive); the web stores each message and handles none; the worker, another
process with no console and no callback routes, handles every one in order and sends the
answers. Both are real processes, so nothing is shared but the database.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bot.demo import DEMO_TENANT
from cards.texts import t
from store.db import Database
from store.models import InboxEvent, OutboxMessage, WeeklyAction
from tests.harness import demo_test_config, seed_demo_company
from tests.server_process import start_server, stop_server
from tests.test_two_servers_order import CONSOLE_TOKEN, _config_toml, _free_port

DEADLINE = 90.0  # a budget for a loaded machine, not a speed claim
PEOPLE = {"wangqiang": "完成2份临床评价报告初稿", "li_na": "提交注册资料补正"}


async def _handled(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url + "/metrics") as r:
        text = await r.text()
    m = re.search(r'^dongxian_handler_seconds_count\{kind="text"\} (\d+(?:\.\d+)?)', text, re.M)
    return int(float(m.group(1))) if m else 0


async def test_the_web_acknowledges_and_the_worker_answers(db: Database, tmp_path: Path) -> None:
    await seed_demo_company(db, demo_test_config(db.url, tmp_path))
    config = tmp_path / "dongxian.toml"
    web_port, worker_port = _free_port(), _free_port()
    config.write_text(_config_toml(db.url, web_port, tmp_path / "data"), encoding="utf-8")
    web_url, worker_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
    procs = []
    try:
        procs.append(await start_server(config, tmp_path, tmp_path / "web.log", web_url, args=("--role", "web")))
        procs.append(await start_server(config, tmp_path, tmp_path / "worker.log", worker_url,
                                        args=("--role", "worker", "--port", str(worker_port))))
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"}) as http:
            # The worker has no console and takes no messages.
            async with http.post(worker_url + "/console/api/messages", json={
                    "tenant": DEMO_TENANT, "userid": "wangqiang", "text": "O1-KR2"}) as r:
                assert r.status == 404
            for userid, thing in PEOPLE.items():
                for n, text in enumerate(("O1-KR2", thing, "@邓超")):
                    async with http.post(web_url + "/console/api/messages", json={
                            "tenant": DEMO_TENANT, "userid": userid, "text": text,
                            "client_id": f"{userid}-{n}"}) as r:
                        assert r.status == 202, await r.text()
            deadline = time.monotonic() + DEADLINE
            while True:
                async with db.session() as s:
                    open_events = (await s.execute(select(func.count()).select_from(InboxEvent).where(
                        InboxEvent.status.in_(("pending", "processing"))))).scalar_one()
                    unsent = (await s.execute(select(func.count()).select_from(OutboxMessage).where(
                        OutboxMessage.status.in_(("pending", "sending"))))).scalar_one()
                if open_events == 0 and unsent == 0:
                    break
                assert time.monotonic() < deadline, (
                    f"{open_events} events open, {unsent} replies unsent:\n"
                    + (tmp_path / "worker.log").read_text(errors="replace")[-2000:])
                await asyncio.sleep(0.2)
            handled = {"web": await _handled(http, web_url), "worker": await _handled(http, worker_url)}
    finally:
        for proc in procs:
            await stop_server(proc)

    assert handled == {"web": 0, "worker": 6}
    async with db.session() as s:
        actions = {a.userid: a for a in (await s.execute(select(WeeklyAction))).scalars()}
        replies = list((await s.execute(select(OutboxMessage).where(
            OutboxMessage.userid.in_(list(PEOPLE))).order_by(OutboxMessage.id))).scalars())
    for userid, thing in PEOPLE.items():
        assert (actions[userid].goal_code, actions[userid].thing, actions[userid].witness_userid) == (
            "O1-KR2", thing, "dengchao")
        said = [m.payload.get("text") if m.payload.get("kind") == "text" else m.payload["card"]["title"]
                for m in replies if m.userid == userid]
        assert said == [t("zh", "ask.thing"), t("zh", "ask.witness"), t("zh", "summary.title")], (userid, said)
    assert {m.status for m in replies} == {"sent"}
