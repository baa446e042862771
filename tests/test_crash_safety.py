"""Crash safety: the server as a real process, killed with SIGKILL under a steady stream of callbacks.

WeCom encrypted callbacks (with WeCom's retries) and DingTalk robot messages (Stream
frames the gateway redelivers until they are acked, and signed HTTP-mode posts that
the sender repeats until answered 200) flow from the fakes in this process to
`python -m bot.cli serve`, which is killed at random points (fixed seed) and started
again. Every message carries a goal code nobody has, so the bot answers each one with
exactly one "没有找到目标“O123-KR4”…" that names it: counting those at the fakes
counts the answers per message. The morning prompt is run from the CLI between kills.

Afterwards: every acknowledged message was handled once and answered once, nothing is
left in the inbox or outbox, and everybody got one morning prompt. Then a burst is cut
short by SIGTERM: the process exits 0 within its shutdown timeout, leaves nothing
claimed, and after a restart nothing accepted is missing.
"""
from __future__ import annotations

import asyncio
import csv
import inspect
import json
import os
import random
import re
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Iterator

import aiohttp
from sqlalchemy import func, select

from bot.core.config import Config, TenantConfig, parse_config
from bot.demo import DATA
from bot.dingtalk.signing import card_route_key
from bot.dingtalk.api import DingTalkApi
from cards.texts import t
from store import inbox, outbox
from store.db import Database
from store.models import InboxEvent, OutboxMessage, ScheduledSend
from store.roster import ensure_tenant, import_roster
from tests.fakes.dingtalk_server import FakeApp, FakeDingTalk, Frame, tenant_config
from tests.fakes.wecom_server import CallbackClient, FakeWeCom, wecom_tenant

SEED = 20261128
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
TOKEN = re.compile(r"O[1-9]\d{2,}-KR\d+")  # the example in the prompt (O1-KR2) is not one

KILLS = 4
TRAFFIC_PER_SECOND = 10.0
BURST = 30
# A Monday (working day): the morning prompt is run for it from the CLI, twice.
PROMPT_AT = "2026-10-12T09:30:00+08:00"
# `dongxian serve` hands this to aiohttp's run_app as shutdown_timeout.
SHUTDOWN_TIMEOUT = 10.0
# How long WeCom (and here the HTTP-mode sender) keeps retrying one callback.
CALLBACK_RETRIES = 3
CALLBACK_RETRY_INTERVAL = 1.5


def _lease(fn: Any) -> float:
    return float(inspect.signature(fn).parameters["lease"].default)


# After a SIGKILL, rows the dead process had claimed wait for their lease to run out.
DRAIN_DEADLINE = max(_lease(inbox.claim), _lease(outbox.claim)) + 45.0

TENANTS = {"wc": "wecom", "ds": "dingtalk-stream", "dh": "dingtalk-http"}


# -- configuration ----------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml(config: dict[str, Any]) -> str:
    lines: list[str] = []
    for section in ("server", "database"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in config[section].items()]
    for tenant in config["tenants"]:
        lines.append("[[tenants]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in tenant.items() if not isinstance(v, dict)]
        for k, sub in tenant.items():
            if isinstance(sub, dict):
                lines.append(f"[tenants.{k}]")
                lines += [f"{sk} = {_toml_value(sv)}" for sk, sv in sub.items()]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quiet_schedule() -> dict[str, Any]:
    """Keep the ticker's own 09:30 and pulse runs out of the way: only the CLI prompts here."""
    return {"morning_prompt_at": "00:00", "pulse_at": "00:00", "catch_up_grace_minutes": 0}


# -- the server process -----------------------------------------------------------------------------
class ServerProcess:
    """`python -m bot.cli serve --config FILE`, started, killed and started again."""

    def __init__(self, config_path: Path, port: int, workdir: Path, ding: FakeDingTalk, stream_app: FakeApp) -> None:
        self.config_path = config_path
        self.port = port
        self.workdir = workdir
        self.ding = ding
        self.stream_app = stream_app
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_path(self, n: int | None = None) -> Path:
        return self.workdir / f"server-{n or self.starts}.log"

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path().read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def start(self) -> None:
        self.starts += 1
        opened = self.ding.connections_opened
        with open(self.log_path(), "wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "serve", "--config", str(self.config_path),
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=str(self.workdir),
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while True:
                if self.proc.returncode is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode} on start:\n{self.tail()}")
                try:
                    async with http.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            break
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not come up:\n{self.tail()}")
                await asyncio.sleep(0.05)
        await self.ding.wait_connected(self.stream_app, opened_at_least=opened + 1, timeout=60)

    async def kill(self) -> None:
        assert self.proc is not None and self.proc.returncode is None, "server is not running"
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.kills += 1

    async def terminate(self) -> int:
        """SIGTERM; the exit code, once the process is gone (fails if it outlives its shutdown timeout)."""
        assert self.proc is not None and self.proc.returncode is None, "server is not running"
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), SHUTDOWN_TIMEOUT + 5)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"server still running {SHUTDOWN_TIMEOUT + 5:.0f} s after SIGTERM:\n{self.tail()}")

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def cli(config_path: Path, workdir: Path, *args: str) -> str:
    """Run a `dongxian` command; its output (fails on a non-zero exit)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, "--config", str(config_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(workdir))
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, f"dongxian {' '.join(args)} exited {proc.returncode}: {err.decode()[-2000:]}"
    return out.decode()


async def run_morning_prompt(config_path: Path, workdir: Path) -> dict[str, int]:
    """`dongxian jobs run morning_prompt` for every tenant at once; how many prompts each queued."""
    outs = await asyncio.gather(*(cli(config_path, workdir, "jobs", "run", "morning_prompt", "--tenant", key,
                                      "--at", PROMPT_AT) for key in TENANTS))
    counts = {}
    for key, out in zip(TENANTS, outs):
        m = re.search(r"morning_prompt: (\d+) message", out)
        assert m, out
        counts[key] = int(m.group(1))
    return counts


# -- people writing to the bot ------------------------------------------------------------------------
@dataclass
class Sent:
    """One message a person wrote, and what the platform saw of the bot's answers to it."""

    channel: str  # the tenant key: wc | ds | dh
    userid: str
    token: str
    outcomes: list[Any] = field(default_factory=list)  # HTTP statuses / errors of each delivery attempt
    frame: Frame | None = None


def _frames(frame: Frame, ding: FakeDingTalk) -> Iterator[Frame]:
    yield frame
    while frame.redelivered_as:
        frame = ding.frames[frame.redelivered_as]
        yield frame


class People:
    """Writes unique messages to the bot over the three channels, as the platforms deliver them."""

    def __init__(self, rng: random.Random, wecom: CallbackClient, ding: FakeDingTalk, stream_app: FakeApp,
                 http_app: FakeApp, http_url: str, userids: dict[str, list[str]]) -> None:
        self.rng = rng
        self.wecom = wecom
        self.ding = ding
        self.stream_app = stream_app
        self.http_app = http_app
        self.http_url = http_url
        self.userids = userids
        self.sent: list[Sent] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._n = 100

    def acked(self, m: Sent) -> bool:
        if m.frame is not None:
            return any(f.ack is not None and f.ack.get("code") == 200 for f in _frames(m.frame, self.ding))
        return 200 in m.outcomes

    def write(self) -> None:
        """One person writes one message on a random channel (delivered in the background)."""
        channel = self.rng.choice(list(TENANTS))
        self._n += 1
        m = Sent(channel, self.rng.choice(self.userids[channel]), f"O{self._n}-KR{self.rng.randint(1, 99)}")
        self.sent.append(m)
        coro: Awaitable[None] = {"wc": self._wecom, "ds": self._stream, "dh": self._http}[channel](m)
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wecom(self, m: Sent) -> None:
        m.outcomes = await self.wecom.say(m.userid, m.token)

    async def _stream(self, m: Sent) -> None:
        m.frame = await self.ding.push_robot_message(self.stream_app, m.userid, m.token, msg_id=f"msg{m.token}==")

    async def _http(self, m: Sent) -> None:
        data = self.ding.robot_message(self.http_app, m.userid, m.token, msg_id=f"msg{m.token}==")
        for attempt in range(1 + CALLBACK_RETRIES):
            if attempt:
                await asyncio.sleep(CALLBACK_RETRY_INTERVAL)
            try:
                status: Any = await asyncio.wait_for(
                    self.ding.post(self.http_url, data, headers=self.ding.signed_headers(self.http_app)), 5)
            except asyncio.TimeoutError:
                status = "timeout"
            except (aiohttp.ClientError, OSError):
                status = "error"
            m.outcomes.append(status)
            if status == 200:
                return

    async def steady(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.write()
            await asyncio.sleep(self.rng.expovariate(TRAFFIC_PER_SECOND))

    async def settle(self) -> None:
        """Until every sender has finished its attempts."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


# -- the company on the fakes --------------------------------------------------------------------------
def write_roster(key: str, path: Path) -> list[tuple[str, str]]:
    """The demo roster with userids prefixed by the tenant key, so every fake's deliveries name their tenant."""
    with open(DATA / "roster.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["userid"] = f"{key}_{row['userid']}"
        row["manager_userid"] = f"{key}_{row['manager_userid']}" if row["manager_userid"] else ""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [(row["userid"], row["name"]) for row in rows]


async def seed(db: Database, config: Config, rosters: dict[str, Path]) -> None:
    for tenant in config.tenants:
        await ensure_tenant(db, tenant)
        report = await import_roster(db, tenant.key, rosters[tenant.key])
        assert not report.errors, report.errors


async def register_card_route(tenant: TenantConfig, server_url: str) -> None:
    """HTTP-mode cards name a callback route; DingTalk refuses cards whose route is unknown."""
    assert tenant.dingtalk is not None
    api = DingTalkApi(tenant.dingtalk)
    try:
        await api.register_card_callback(
            card_route_key(tenant), f"{server_url}/dingtalk/{tenant.key}/callback")
    finally:
        await api.close()


# -- what the database and the fakes hold ----------------------------------------------------------------
async def status_counts(db: Database) -> tuple[Counter[str], Counter[str]]:
    async with db.session() as s:
        ib = Counter({st: n for st, n in (await s.execute(
            select(InboxEvent.status, func.count()).group_by(InboxEvent.status))).all()})
        ob = Counter({st: n for st, n in (await s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all()})
    return ib, ob


def delivered_tokens(wecom: FakeWeCom, ding: FakeDingTalk) -> Counter[tuple[str, str]]:
    """(userid, token) → how many times the person saw an answer naming that token."""
    seen: Counter[tuple[str, str]] = Counter()
    for d in wecom.deliveries:
        if d.msgtype in ("text", "markdown"):
            for tok in TOKEN.findall(d.text):
                seen[(d.userid, tok)] += 1
    for userid, items in ding.delivered.items():
        for d in items:
            if d.kind in ("text", "markdown"):
                for tok in TOKEN.findall(json.dumps(d.content, ensure_ascii=False)):
                    seen[(userid, tok)] += 1
    return seen


def prompts_received(wecom: FakeWeCom, ding: FakeDingTalk) -> Counter[str]:
    """userid → morning prompts received (on DingTalk the shared card arrives as markdown)."""
    title = t("zh", "prompt.title")
    got: Counter[str] = Counter()
    for d in wecom.deliveries:
        if d.msgtype == "template_card" and d.text == title:
            got[d.userid] += 1
    for userid, items in ding.delivered.items():
        for d in items:
            if (d.kind == "markdown" and d.content.get("title") == title) or \
                    (d.kind == "card" and d.content.get("header", {}).get("title", {}).get("text") == title):
                got[userid] += 1
    return got


async def wait_drained(db: Database, people: People, deadline: float) -> float:
    """Until every stream frame is acked and the inbox and outbox are empty; the seconds it took."""
    started = time.monotonic()
    while True:
        ib, ob = await status_counts(db)
        unacked = [m for m in people.sent if m.frame is not None and not people.acked(m)]
        if not unacked and not (ib["pending"] + ib["processing"]) and not (ob["pending"] + ob["sending"]):
            return time.monotonic() - started
        if time.monotonic() - started > deadline:
            async with db.session() as s:
                stuck = (await s.execute(select(OutboxMessage).where(
                    OutboxMessage.status.in_(("pending", "sending", "dead"))).order_by(OutboxMessage.status).limit(8))).scalars()
                sample = [f"#{r.id} {r.tenant}/{r.userid} {r.status} attempts={r.attempts} "
                          f"next={r.next_attempt_at} error={r.last_error[:200]!r}" for r in stuck]
            raise AssertionError(f"not drained after {deadline:.0f} s: inbox {dict(ib)}, outbox {dict(ob)}, "
                                 f"{len(unacked)} stream frames unacked; e.g.\n" + "\n".join(sample))
        await asyncio.sleep(0.2)


def write_figures(name: str, key: str, figures: dict[str, Any]) -> None:
    """Merge this run's figures into test-artifacts/<name> under `key` (one entry per database)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[key] = figures
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# -- the test --------------------------------------------------------------------------------------------------
async def test_sigkill_and_sigterm_lose_nothing_and_repeat_nothing(db: Database, tmp_path: Path) -> None:
    rng = random.Random(SEED)  # who writes what, on which channel
    when = random.Random(SEED + 1)  # when the server dies, and for how long
    rosters = {key: tmp_path / f"roster-{key}.csv" for key in TENANTS}
    staff = {key: write_roster(key, path) for key, path in rosters.items()}
    userids = {key: [u for u, _ in people] for key, people in staff.items()}

    wecom = FakeWeCom(seed=SEED)
    for userid, name in staff["wc"]:
        wecom.add_user(userid, name)
    ding = FakeDingTalk(redeliver_after=1.0, seed=SEED)
    apps = {"ds": ding.add_app("dxstream", "stream-secret", corp_id="dingstream"),
            "dh": ding.add_app("dxhttp", "http-secret", corp_id="dinghttp")}
    for key, app in apps.items():
        for userid, name in staff[key]:
            ding.add_user(app, userid, name)
    await wecom.start()
    await ding.start()

    port = _free_port()
    raw = {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "data")},
        "database": {"url": db.url},
        "tenants": [
            {**wecom_tenant(wecom, "wc"), "name": "企业微信公司", **_quiet_schedule()},
            {**tenant_config(apps["ds"], ding.base_url, key="ds", mode="stream"), "name": "钉钉Stream公司",
             **_quiet_schedule()},
            {**tenant_config(apps["dh"], ding.base_url, key="dh", mode="http"), "name": "钉钉HTTP公司",
             **_quiet_schedule()},
        ],
    }
    config = parse_config(raw)
    config_path = tmp_path / "dongxian.toml"
    config_path.write_text(_toml(raw), encoding="utf-8")
    config_path.chmod(0o600)
    await seed(db, config, rosters)
    server = ServerProcess(config_path, port, tmp_path, ding, apps["ds"])
    await register_card_route(config.tenant("dh"), server.url)

    client = wecom.callback_client(f"{server.url}/wecom/wc/callback", timeout=3.0,
                                   retry_interval=CALLBACK_RETRY_INTERVAL)
    people = People(rng, client, ding, apps["ds"], apps["dh"], f"{server.url}/dingtalk/dh/callback", userids)
    try:
        await server.start()

        # Steady traffic; the server is killed at random points and started again.
        stop = asyncio.Event()
        traffic = asyncio.ensure_future(people.steady(stop))
        first_prompt: asyncio.Task[dict[str, int]] | None = None
        for k in range(KILLS):
            await asyncio.sleep(when.uniform(1.0, 3.0))
            if k == 1:
                # The morning prompt is queued while the server is about to die; the relay of
                # whichever process comes next delivers it.
                first_prompt = asyncio.ensure_future(run_morning_prompt(config_path, tmp_path))
                await asyncio.sleep(when.uniform(0.5, 2.0))
            await server.kill()
            await asyncio.sleep(when.uniform(0.0, 0.6))
            await server.start()
        await asyncio.sleep(when.uniform(1.0, 2.0))
        stop.set()
        await traffic
        assert first_prompt is not None
        queued_first = await first_prompt
        # A second run of the same morning (after the kills) must find everyone already prompted.
        queued_again = await run_morning_prompt(config_path, tmp_path)
        await people.settle()
        recovery = await wait_drained(db, people, DRAIN_DEADLINE)

        # A burst cut short by SIGTERM: in-flight work is finished, nothing stays claimed.
        steady_count = len(people.sent)
        for _ in range(BURST):
            people.write()
        await asyncio.sleep(when.uniform(0.05, 0.3))
        term_started = time.monotonic()
        rc = await server.terminate()
        term_seconds = time.monotonic() - term_started
        assert rc == 0, f"SIGTERM exit code {rc}:\n{server.tail()}"
        ib, ob = await status_counts(db)
        assert ib["processing"] == 0 and ob["sending"] == 0, (
            f"graceful shutdown left claimed work behind: inbox {dict(ib)}, outbox {dict(ob)}")
        left_after_term = {"inbox_pending": ib["pending"], "outbox_pending": ob["pending"]}
        await server.start()
        await people.settle()
        await wait_drained(db, people, DRAIN_DEADLINE)
        # Answers of the last messages may still be in flight to the fakes.
        await asyncio.sleep(0.5)
        rc_final = await server.terminate()
        assert rc_final == 0, f"final SIGTERM exit code {rc_final}:\n{server.tail()}"

        # -- what happened -----------------------------------------------------------------------
        async with db.session() as s:
            inbox_rows = list((await s.execute(select(InboxEvent))).scalars())
            outbox_rows = list((await s.execute(select(OutboxMessage))).scalars())
            prompts_claimed = Counter(tenant for tenant, in (await s.execute(
                select(ScheduledSend.tenant).where(ScheduledSend.kind == "morning_prompt",
                                                   ScheduledSend.day == PROMPT_AT[:10]))).all())
        handled: Counter[tuple[str, str]] = Counter()
        for row in inbox_rows:
            for tok in TOKEN.findall(str(row.payload.get("text", ""))):
                handled[(row.tenant, tok)] += 1
        answered: Counter[tuple[str, str, str]] = Counter()
        # DingTalk's robot send APIs (batchSend, sessionWebhook) carry no idempotency key: a send
        # that reached DingTalk just before a SIGKILL, before its row was marked sent, goes again
        # when the row is claimed anew. Such a row shows attempts > 1 without any platform error.
        resent_rows: set[tuple[str, str, str]] = set()
        for row in outbox_rows:
            if row.payload.get("kind") == "text":
                for tok in TOKEN.findall(str(row.payload.get("text", ""))):
                    answered[(row.tenant, row.userid, tok)] += 1
                    if row.attempts > 1 and not row.last_error:
                        resent_rows.add((row.tenant, row.userid, tok))
        seen = delivered_tokens(wecom, ding)

        problems: list[str] = []
        lost = duplicates = processed = resent_after_kill = 0
        for m in people.sent:
            ident = (m.channel, m.userid, m.token)
            n_handled, n_answered, n_seen = handled[(m.channel, m.token)], answered[ident], seen[(m.userid, m.token)]
            processed += n_handled
            what = f"{m.channel} {m.token} from {m.userid} ({'acknowledged' if people.acked(m) else 'not acknowledged'}, " \
                   f"{m.outcomes}): stored {n_handled}×, answered {n_answered}×, seen {n_seen}×"
            wrong = False
            if n_handled > 1 or n_answered != n_handled:  # handled twice, or not answered once
                duplicates += max(0, n_handled - 1) + max(0, n_answered - 1)
                wrong = True
            if (people.acked(m) and n_handled == 0) or (n_answered and not n_seen):
                lost += 1
                wrong = True
            if n_seen > 1:
                if m.channel in ("ds", "dh") and n_seen == 2 and ident in resent_rows:
                    resent_after_kill += 1
                else:
                    duplicates += n_seen - 1
                    wrong = True
            if wrong:
                problems.append(what)
        stray = set(seen) - {(m.userid, m.token) for m in people.sent}
        problems += [f"answer naming {tok} reached {uid}, who never wrote it" for uid, tok in sorted(stray)]
        inbox_status = Counter(r.status for r in inbox_rows)
        outbox_status = Counter(r.status for r in outbox_rows)
        if set(inbox_status) - {"done"}:
            problems.append(f"inbox rows not done: {dict(inbox_status)}")
        if set(outbox_status) - {"sent"}:
            problems.append(f"outbox rows not sent: {dict(outbox_status)}")

        prompts = prompts_received(wecom, ding)
        prompt_duplicates = 0
        fanout_resent = {row.tenant for row in outbox_rows
                         if row.userid == outbox.EVERYONE and row.attempts > 1 and not row.last_error}
        for key in TENANTS:
            everyone = userids[key]
            off = {}
            for u in everyone:
                if prompts[u] == 2 and key in ("ds", "dh") and key in fanout_resent:
                    resent_after_kill += 1
                elif prompts[u] != 1:
                    prompt_duplicates += max(0, prompts[u] - 1)
                    off[u] = prompts[u]
            if queued_first[key] != len(everyone) or queued_again[key] != 0:
                problems.append(f"{key}: morning prompt queued {queued_first[key]} then {queued_again[key]}, "
                                f"expected {len(everyone)} then 0")
            if prompts_claimed[key] != len(everyone):
                problems.append(f"{key}: {prompts_claimed[key]} morning prompt claims, expected {len(everyone)}")
            if off:
                problems.append(f"{key}: morning prompts per person other than 1: {off}")
        if wecom.silently_dropped:
            problems.append(f"WeCom dropped {len(wecom.silently_dropped)} messages over its per-member limit")
        if ding.protocol_errors:
            problems.append(f"DingTalk gateway protocol errors: {ding.protocol_errors[:5]}")

        by_channel = {key: {"sent": sum(1 for m in people.sent if m.channel == key),
                            "acknowledged": sum(1 for m in people.sent if m.channel == key and people.acked(m)),
                            "processed": sum(handled[(key, m.token)] for m in people.sent if m.channel == key)}
                      for key in TENANTS}
        figures = {
            "database": db.dialect,
            "seed": SEED,
            "events_sent": len(people.sent),
            "acknowledged": sum(1 for m in people.sent if people.acked(m)),
            "processed": processed,
            "duplicates": duplicates + prompt_duplicates,
            "dingtalk_robot_resends_after_kill": resent_after_kill,
            "lost": lost,
            "kills_survived": server.kills,
            "by_channel": by_channel,
            "callback_attempts": sum(len(m.outcomes) for m in people.sent if m.frame is None),
            "callback_answers": dict(Counter(str(o) for m in people.sent for o in m.outcomes)),
            "stream_frames_pushed": len([f for f in ding.frames.values() if f.kind == "robot"]),
            "steady_events": steady_count,
            "sigterm_burst": BURST,
            "sigterm_exit_code": rc,
            "sigterm_exit_seconds": round(term_seconds, 2),
            "left_pending_after_sigterm": left_after_term,
            "recovery_seconds_after_last_kill": round(recovery, 1),
            "morning_prompts": {key: {"queued": queued_first[key], "queued_on_rerun": queued_again[key],
                                      "people": len(userids[key]),
                                      "received": sum(prompts[u] for u in userids[key])}
                                for key in TENANTS},
            "reminder_duplicates": prompt_duplicates,
            "outbox_rows": len(outbox_rows),
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        print(f"\ncrash figures ({db.dialect}): " + json.dumps(figures, ensure_ascii=False, sort_keys=True))
        write_figures("crash-figures.json", db.dialect, figures)
        assert not problems, "\n".join(problems[:40])
        assert figures["duplicates"] == 0 and figures["lost"] == 0
        assert server.kills == KILLS
    finally:
        await server.close()
        await ding.stop()
        await wecom.stop()
