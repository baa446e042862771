"""Two `dongxian serve` processes on one PostgreSQL database: one person's messages in order, one at a time.

Twelve people each write their weekly action in three messages (goal, thing, witness),
as fast as each answer comes back, every message to the other server than the one
before. Each message builds on the draft the one before left, so handling two of one
person's messages at once (in two processes) loses a part, and handling them out of
order changes the answers. Afterwards every person has the whole action and got the
three answers in order, and both servers handled messages (people run side by side).
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.demo import DEMO_TENANT
from cards.texts import t
from store.db import Database
from store.models import InboxEvent, OutboxMessage, WeeklyAction
from tests.server_process import start_server, stop_server
from tests.harness import demo_test_config, seed_demo_company

PEOPLE = ["wangqiang", "li_na", "zhaolei", "sunli", "caoyu", "tangkai", "hanmei", "shenbin", "hulin", "linfang",
          "heping", "guoqing"]
WITNESS = "邓超"
DEADLINE = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONSOLE_TOKEN = "two-servers-console-token"


def _config_toml(db_url: str, port: int, data_dir: Path) -> str:
    # The ticker's own 09:30 and Friday runs are kept out of the way: only people write here.
    return "\n".join([
        "[server]", 'host = "127.0.0.1"', f"port = {port}", f"data_dir = {json.dumps(str(data_dir))}",
        "[database]", f"url = {json.dumps(db_url)}",
        # Two processes have two page sessions: the console token is what both accept.
        "[console]", "enabled = true", f'token = "{CONSOLE_TOKEN}"',
        "[[tenants]]", f'key = "{DEMO_TENANT}"', 'name = "宁波康骨医疗器械有限公司"',
        'morning_prompt_at = "00:00"', 'pulse_at = "00:00"', "catch_up_grace_minutes = 0", ""])


class Server:
    def __init__(self, db_url: str, workdir: Path, name: str) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.config = workdir / f"{name}.toml"
        self.config.write_text(_config_toml(db_url, self.port, workdir / "data"), encoding="utf-8")
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await start_server(self.config, self.workdir, self.log, self.url)

    async def handled(self, http: aiohttp.ClientSession) -> int:
        async with http.get(self.url + "/metrics") as r:
            text = await r.text()
        m = re.search(r'^dongxian_handler_seconds_count\{kind="text"\} (\d+(?:\.\d+)?)', text, re.M)
        return int(float(m.group(1))) if m else 0

    async def stop(self) -> None:
        await stop_server(self.proc)


async def test_one_persons_messages_are_handled_in_order_across_two_servers(db: Database, tmp_path: Path) -> None:
    if not db.is_postgres:
        pytest.skip("two server processes share a PostgreSQL database")
    await seed_demo_company(db, demo_test_config(db.url, tmp_path))
    servers = [Server(db.url, tmp_path, "a"), Server(db.url, tmp_path, "b")]
    try:
        await asyncio.gather(*(s.start() for s in servers))
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"}) as http:
            async def say(server: Server, userid: str, text: str, n: int) -> None:
                async with http.post(server.url + "/console/api/messages", json={
                        "tenant": DEMO_TENANT, "userid": userid, "text": text, "client_id": f"{userid}-{n}"}) as r:
                    assert r.status == 202, await r.text()

            async def person(i: int, userid: str) -> None:
                # Stored (202) before the next is sent: the inbox holds them in the order written.
                for n, text in enumerate(("O1-KR2", f"完成第{i + 1}份注册报告初稿", f"@{WITNESS}")):
                    await say(servers[(i + n) % 2], userid, text, n)

            await asyncio.gather(*(person(i, u) for i, u in enumerate(PEOPLE)))

            deadline = time.monotonic() + DEADLINE
            while True:
                async with db.session() as s:
                    open_events = (await s.execute(select(func.count()).select_from(InboxEvent).where(
                        InboxEvent.status.in_(("pending", "processing"))))).scalar_one()
                    recorded = (await s.execute(select(func.count()).select_from(WeeklyAction))).scalar_one()
                if open_events == 0:  # an event is marked done in its handler's own transaction
                    break
                assert time.monotonic() < deadline, (
                    f"{open_events} events open, {recorded} actions after {DEADLINE:.0f} s:\n"
                    + "\n".join(s.log.read_text()[-2000:] for s in servers))
                await asyncio.sleep(0.2)
            handled = [await s.handled(http) for s in servers]
    finally:
        await asyncio.gather(*(s.stop() for s in servers))

    async with db.session() as s:
        events = list((await s.execute(select(InboxEvent))).scalars())
        actions = {a.userid: a for a in (await s.execute(select(WeeklyAction))).scalars()}
        replies = list((await s.execute(select(OutboxMessage).where(
            OutboxMessage.userid.in_(PEOPLE)).order_by(OutboxMessage.id))).scalars())
    assert {e.status for e in events} == {"done"} and len(events) == 3 * len(PEOPLE)
    assert sorted(actions) == sorted(PEOPLE)
    # Nothing was lost: each person's three messages made one whole action.
    for i, userid in enumerate(PEOPLE):
        a = actions[userid]
        assert (a.goal_code, a.thing, a.witness_userid) == ("O1-KR2", f"完成第{i + 1}份注册报告初稿", "dengchao"), userid
    # … and were answered in the order they were written.
    for userid in PEOPLE:
        said = [m.payload.get("text") if m.payload.get("kind") == "text" else m.payload["card"]["title"]
                for m in replies if m.userid == userid]
        assert said == [t("zh", "ask.thing"), t("zh", "ask.witness"), t("zh", "summary.title")], (userid, said)
    # Both instances took part: different people were handled side by side.
    assert sum(handled) == 3 * len(PEOPLE) and all(n > 0 for n in handled), handled
