"""Platform faults: WeCom and DingTalk misbehave at once, and every message still arrives exactly once.

One bot serves a WeCom tenant and a DingTalk tenant. Between it and each fake sits
a proxy that fails a random share of calls the way networks do (502/503, dropped
connections, time-outs, slow answers); behind it the fakes answer a random share
with their own error codes (WeCom 42001/40014/-1/45009/45033, calls that take
effect but lose their answer, answers after the client gave up; DingTalk QPS
limits, 5xx, InvalidAuthentication) and invalidate tokens. In the middle both
platforms go down for a few minutes. The relay keeps retrying on its own.

Time is compressed: every retry delay the outbox computes is divided by
TIME_SCALE, so five minutes of outage take three seconds and twelve attempts
with exponential backoff take seconds, not a quarter of an hour.

Some messages cannot be delivered: one person is not yet visible to either app
(a permanent refusal) and one DingTalk user is flow-controlled throughout (retries
run out). They become dead letters that `dongxian outbox status` lists; once
the causes are fixed, `dongxian outbox retry` sends them, once.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.app import make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.dingtalk_api import DingTalkApi
from cards.model import Button, Card, Message
from cards.texts import t
from handlers.context import new_card_id
from store import outbox
from store.db import Database
from store.models import OutboxMessage
from store.roster import ensure_tenant, import_roster
from tests.fakes.dingtalk_server import FakeDingTalk, tenant_config
from tests.fakes.wecom_server import FakeWeCom, Fault, wecom_tenant
from tests.harness import at
from tests.test_crash_safety import TOKEN, _toml, write_figures, write_roster

SEED = 4242
TIME_SCALE = 100.0
OUTAGE_SIMULATED_SECONDS = 300.0
CLIENT_TIMEOUT = 1.0
WAVE_TEXTS = 20  # per tenant and wave
WAVE_CARDS = 4
NEWHIRE = "newhire"  # in the roster, not yet in either app's visible range
FLOODED = "dt_liuyang"  # DingTalk keeps flow-controlling this person until the end of the incident
SETTLE_DEADLINE = 90.0
TENANTS = {"wc": "wecom", "dt": "dingtalk"}


class ChaosProxy:
    """A reverse proxy in front of a fake platform that fails a share of calls the way networks do.

    Every fault here happens before the call reaches the platform, except that a
    slow answer still arrives: what reached the platform always took effect.
    """

    def __init__(self, upstream: str, rng: random.Random, *, exempt: tuple[str, ...] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.rng = rng
        self.exempt = exempt
        self.rate = 0.0
        self.outage = False
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self.url

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _drop(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)  # never reaches the client

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not request.path.startswith(self.exempt):
            if self.outage:
                self.injected["outage"] += 1
                return web.Response(status=503, text="service unavailable")
            if self.rng.random() < self.rate:
                kind = self.rng.choice(("502", "503", "drop", "timeout", "slow"))
                self.injected[kind] += 1
                if kind in ("502", "503"):
                    return web.Response(status=int(kind), text="upstream error")
                if kind == "drop":
                    return self._drop(request)
                if kind == "timeout":
                    await asyncio.sleep(CLIENT_TIMEOUT + 0.5)  # the client has given up meanwhile
                    return self._drop(request)
                await asyncio.sleep(self.rng.uniform(0.1, CLIENT_TIMEOUT / 2))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")}
        assert self._http is not None
        try:
            async with self._http.request(request.method, self.upstream + request.path_qs, headers=headers,
                                          data=body) as r:
                data = await r.read()
                status, ctype = r.status, r.headers.get("Content-Type", "application/json")
        except aiohttp.ClientError:  # the platform dropped the connection: so does the proxy
            return self._drop(request)
        self.forwarded += 1
        return web.Response(status=status, body=data, headers={"Content-Type": ctype})


def wecom_faults(rate: float) -> list[tuple[float, Fault]]:
    """message/send faults of the fake WeCom, `rate` of the calls in all."""
    share = rate / 9
    return [(share, Fault(42001)), (share, Fault(40014)), (share, Fault(-1)), (share, Fault(45009)),
            (share, Fault(45033)), (share, Fault("drop")), (share, Fault("drop_after")),
            (share, Fault("slow", latency=0.3)),
            (share, Fault("slow", latency=CLIENT_TIMEOUT + 0.3))]  # delivered after the client gave up


async def cli(config_path: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, "--config", str(config_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(config_path.parent))
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, f"dongxian {' '.join(args)} exited {proc.returncode}: {err.decode()[-2000:]}"
    return out.decode()


async def counts(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter({st: n for st, n in (await s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all()})


async def wait_settled(db: Database, deadline: float) -> None:
    """Until nothing is waiting or being sent (every row sent or dead)."""
    started = time.monotonic()
    while True:
        c = await counts(db)
        if not c["pending"] and not c["sending"]:
            return
        if time.monotonic() - started > deadline:
            raise AssertionError(f"outbox not settled after {deadline:.0f} s: {dict(c)}")
        await asyncio.sleep(0.1)


async def test_chaos_on_both_platforms_delivers_everything_once(db: Database, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    real_backoff = outbox.backoff
    monkeypatch.setattr(outbox, "backoff", lambda attempts, retry_after: real_backoff(attempts, retry_after) / TIME_SCALE)

    rosters = {key: tmp_path / f"roster-{key}.csv" for key in TENANTS}
    staff = {key: write_roster(key, path) for key, path in rosters.items()}
    for key, path in rosters.items():  # somebody HR has entered, but the platform admin has not yet
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{key}_{NEWHIRE},新同事,康骨医疗/研发中心/注册部,{key}_liuyang,\n")

    wecom = FakeWeCom(seed=SEED)
    for userid, name in staff["wc"]:
        wecom.add_user(userid, name)
    ding = FakeDingTalk(seed=SEED)
    app = ding.add_app("dxchaos", "chaos-secret", corp_id="dingchaos")
    for userid, name in staff["dt"]:
        ding.add_user(app, userid, name)
    await wecom.start()
    await ding.start()
    wecom_proxy = ChaosProxy(wecom.url, random.Random(SEED + 1))
    ding_proxy = ChaosProxy(ding.base_url, random.Random(SEED + 2), exempt=("/v1.0/gateway/",))
    await wecom_proxy.start()
    await ding_proxy.start()

    wecom_cfg = wecom_tenant(wecom, "wc")
    wecom_cfg["wecom"]["api_base"] = wecom_proxy.url
    raw = {
        "server": {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path / "data")},
        "database": {"url": db.url},
        "tenants": [{**wecom_cfg, "name": "企业微信公司"},
                    {**tenant_config(app, ding_proxy.url, key="dt", mode="stream"), "name": "钉钉公司"}],
    }
    config = parse_config(raw)
    config_path = tmp_path / "dongxian.toml"
    config_path.write_text(_toml(raw), encoding="utf-8")
    config_path.chmod(0o600)
    for tenant in config.tenants:
        await ensure_tenant(db, tenant)
        report = await import_roster(db, tenant.key, rosters[tenant.key])
        assert not report.errors, report.errors

    clock = FrozenClock(at("2026-10-12 09:30"))  # a Monday
    runtime = make_runtime(config, db, clock)
    wecom_adapter, ding_adapter = runtime.adapters["wecom"], runtime.adapters["dingtalk"]
    # Short client time-outs: a call that hangs costs a second here, not fifteen.
    wecom_adapter.api_options = {"quick_backoff": 0.01}
    wecom_adapter._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT))
    ding_adapter._apis["dt"] = DingTalkApi(config.tenant("dt").dingtalk, timeout=CLIENT_TIMEOUT)

    expected: dict[str, Counter[tuple[str, str]]] = {key: Counter() for key in TENANTS}  # (userid, token)
    n = 100

    async def wave() -> None:
        nonlocal n
        async with db.transaction() as s:
            for key in TENANTS:
                people = [u for u, _ in staff[key]] + [f"{key}_{NEWHIRE}"]
                for i in range(WAVE_TEXTS + WAVE_CARDS):
                    n += 1
                    token = f"O{n}-KR{rng.randint(1, 99)}"
                    userid = rng.choice(people)
                    if i < WAVE_TEXTS:
                        message = Message(kind="text", text=f"进展提醒 {token}：请查看本周动作")
                    else:
                        message = Message(kind="card", card=Card(
                            id=new_card_id(), title=f"待确认 {token}", body="请确认已阅",
                            buttons=[Button("ack", "知道了", "primary")]))
                    outbox.enqueue(s, tenant=key, platform=TENANTS[key], userid=userid, message=message)
                    expected[key][(userid, token)] += 1
        runtime.wake_outbox()

    async def invalidate_tokens(stop: asyncio.Event) -> None:
        """WeCom invalidates its tokens early now and then; the next call with one gets 42001."""
        beats = random.Random(SEED + 3)
        while not stop.is_set():
            await asyncio.sleep(beats.uniform(0.3, 1.0))
            wecom.expire_tokens()

    ding.flow_control(FLOODED, times=10_000)
    try:
        await runtime.start()
        # -- the incident ------------------------------------------------------------------
        wecom.chaos["message/send"] = wecom_faults(0.25)
        ding.set_fault_rate("*", 0.15, ("qps", "5xx", "auth"))
        wecom_proxy.rate = ding_proxy.rate = 0.1
        stop_tokens = asyncio.Event()
        token_task = asyncio.ensure_future(invalidate_tokens(stop_tokens))
        prompted = {key: await runtime.run_job("morning_prompt", config.tenant(key), clock.now()) for key in TENANTS}
        runtime.wake_outbox()
        await wave()
        await asyncio.sleep(1.0)
        outage_started = time.monotonic()
        wecom_proxy.outage = ding_proxy.outage = True
        await asyncio.sleep(0.5)
        await wave()  # written while both platforms are down
        await asyncio.sleep(OUTAGE_SIMULATED_SECONDS / TIME_SCALE - 0.5)
        wecom_proxy.outage = ding_proxy.outage = False
        outage_seconds = time.monotonic() - outage_started
        await wave()
        await wait_settled(db, SETTLE_DEADLINE)
        stop_tokens.set()
        await token_task

        # -- dead letters: visible, then sent once the causes are fixed ----------------------
        status = await cli(config_path, "outbox", "status")
        async with db.session() as s:
            dead_rows = list((await s.execute(select(OutboxMessage).where(OutboxMessage.status == "dead"))).scalars())
        listed = {int(i) for i in re.findall(r"dead #(\d+)", status)}
        assert {r.id for r in dead_rows} <= listed, status
        for platform, n_dead in Counter(r.platform for r in dead_rows).items():
            assert re.search(rf"^{platform}: .*dead={n_dead}\b", status, re.M), status
        dead_for = Counter(u for r in dead_rows for u in outbox.recipients(r))
        for key in TENANTS:
            newhire = f"{key}_{NEWHIRE}"
            owed = sum(c for (u, _), c in expected[key].items() if u == newhire) + 1  # + the morning prompt
            assert dead_for[newhire] == owed, f"{newhire}: {dead_for[newhire]} dead letters, expected {owed}\n{status}"
        flooded_owed = sum(c for (u, _), c in expected["dt"].items() if u == FLOODED) + 1
        flooded_rows = [r for r in dead_rows if FLOODED in outbox.recipients(r)]
        assert dead_for[FLOODED] == flooded_owed, f"{FLOODED}: {dead_for[FLOODED]} dead letters, expected {flooded_owed}"
        assert all(r.attempts >= outbox.MAX_ATTEMPTS for r in flooded_rows), [(r.id, r.attempts) for r in flooded_rows]
        dead_before_retry = len(dead_rows)

        # The incident is over; the platform admin adds the new hire; DingTalk lifts the flow control.
        wecom.clear_faults()
        ding.set_fault_rate("*", 0.0)
        wecom_proxy.rate = ding_proxy.rate = 0.0
        wecom.add_user(f"wc_{NEWHIRE}", "新同事")
        ding.add_user(app, f"dt_{NEWHIRE}", "新同事")
        ding._flow[FLOODED] = 0
        retried = await cli(config_path, "outbox", "retry")
        assert f"{dead_before_retry} dead-lettered message(s) queued again" in retried, retried
        runtime.wake_outbox()
        await wait_settled(db, SETTLE_DEADLINE)
        after = await cli(config_path, "outbox", "status")
        assert "dead=" not in after and "pending=" not in after, after
    finally:
        await runtime.stop()
        await wecom_proxy.stop()
        await ding_proxy.stop()
        await ding.stop()
        await wecom.stop()

    # -- what everybody received ------------------------------------------------------------
    title = t("zh", "prompt.title")
    got: dict[str, Counter[tuple[str, str]]] = {key: Counter() for key in TENANTS}
    prompts: dict[str, Counter[str]] = {key: Counter() for key in TENANTS}
    for d in wecom.deliveries:
        if d.msgtype == "template_card" and d.text == title:
            prompts["wc"][d.userid] += 1
        for tok in TOKEN.findall(d.text):
            got["wc"][(d.userid, tok)] += 1
    for userid, items in ding.delivered.items():
        for d in items:
            if d.kind == "markdown" and d.content.get("title") == title:
                prompts["dt"][userid] += 1
            text = d.content.get("content") or d.content.get("text") or \
                d.content.get("header", {}).get("title", {}).get("text", "")
            for tok in TOKEN.findall(str(text)):
                got["dt"][(userid, tok)] += 1
    problems: list[str] = []
    duplicates = lost = 0
    for key in TENANTS:
        for k in set(expected[key]) | set(got[key]):
            if got[key][k] != expected[key][k]:
                problems.append(f"{key}: {k[0]} got {k[1]} {got[key][k]}×, expected {expected[key][k]}×")
            duplicates += max(0, got[key][k] - expected[key][k])
            lost += max(0, expected[key][k] - got[key][k])
        everyone = [u for u, _ in staff[key]] + [f"{key}_{NEWHIRE}"]
        for u in everyone:
            if prompts[key][u] != 1:
                problems.append(f"{key}: {u} got the morning prompt {prompts[key][u]}×")
            duplicates += max(0, prompts[key][u] - 1)
            lost += 1 if prompts[key][u] == 0 else 0
        if prompted[key] != len(everyone):
            problems.append(f"{key}: morning prompt queued for {prompted[key]}, expected {len(everyone)}")
    if wecom.silently_dropped:
        problems.append(f"WeCom dropped {len(wecom.silently_dropped)} messages over its per-member limit")
    if ding.protocol_errors:
        problems.append(f"DingTalk protocol errors: {ding.protocol_errors[:5]}")

    async with db.session() as s:
        rows = list((await s.execute(select(OutboxMessage))).scalars())
    wecom_faults_seen = Counter(str(code) for _, code in wecom.calls if code not in (0,))
    figures = {
        "database": db.dialect,
        "seed": SEED,
        "time_scale": TIME_SCALE,
        "messages": sum(sum(c.values()) for c in expected.values()) + sum(prompted.values()),
        "delivered": sum(sum(c.values()) for c in got.values()) + sum(sum(c.values()) for c in prompts.values()),
        "duplicates": duplicates,
        "lost": lost,
        "dead_letters_before_retry": dead_before_retry,
        "outbox_rows": len(rows),
        "send_attempts": sum(r.attempts for r in rows),
        "outage_simulated_seconds": OUTAGE_SIMULATED_SECONDS,
        "outage_real_seconds": round(outage_seconds, 1),
        "faults": {
            "proxy_wecom": dict(wecom_proxy.injected),
            "proxy_dingtalk": dict(ding_proxy.injected),
            "wecom_errcodes": dict(wecom_faults_seen),
            "wecom_token_fetches": wecom.token_fetches,
            "dingtalk_rejected": {f"{api}:{kind}": c for (api, kind), c in ding.rejected.items()},
            "dingtalk_token_requests": ding.token_requests,
        },
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"\nchaos figures ({db.dialect}): " + json.dumps(figures, ensure_ascii=False, sort_keys=True))
    write_figures("chaos-figures.json", db.dialect, figures)
    assert not problems, "\n".join(problems[:40])
    assert duplicates == 0 and lost == 0
