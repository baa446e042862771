"""The 09:30 burst, end to end: how fast the bot *answers* while everyone replies at once.

A company of N people with unique names; each employee sends one distinct full weekly
action naming the next colleague as witness (`O1-KR2 完成第7份报告 @李娜`), over 64
keep-alive connections, as fast as `dongxian serve` acknowledges. The fake WeCom stamps
when each employee's confirmation and each witness invitation is accepted. Reported:
ack/s, answered/s = N ÷ (first callback → last confirmation accepted), reply latency
p50/p99 per person (callback sent → confirmation accepted), keep-up ratio
(answered/s ÷ ack/s), server CPU per answered reply, and checks that every acknowledged
reply was answered once and every witness invited once.

`--platform dingtalk` does the same over DingTalk Stream: the fake gateway pushes one
robot-message frame per employee over the WebSocket to the official dingtalk-stream
client in `dongxian serve`, keeping 64 frames in flight (the next frame goes as an ack
comes back), and stamps when each card or message reaches a person's robot chat. The
fake applies the platform's per-app QPS limit on each send API (20/s unless
`--dingtalk-qps` says otherwise; 0 lifts it to see the bot's own cost).

    .venv/bin/python -m bench.burst --sizes 1000,2000 --runs 3
    .venv/bin/python -m bench.burst --platform dingtalk --sizes 1000 --runs 1
    DONGXIAN_TEST_PG=… .venv/bin/python -m bench.burst --db postgres --sizes 2000 --runs 1
"""
from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import update

from bench.common import (RESULTS, ROOT, WORK, BenchDatabase, ServerProcess, banner, cpu_seconds, free_port, log, median,
                          percentile, rounded, start_profile, summarize_profile, write_config, write_result)
from bench.company import GIVEN, SURNAMES, Shape, populate
from bench.fakes import BenchDingTalk, LimitedWeCom
from bench.http_load import LoadStats, run_load
from bench.inbound_wecom import TENANT, quiet_tenant, wecom_tenant_config
from tests.fakes.dingtalk_server import ROBOT_TOPIC, Delivered, FakeApp, tenant_config as dingtalk_tenant_config

MSGID_BASE = 7_300_000_000_000_000_000


def unique_name(i: int) -> str:
    """Surname + two given characters, distinct for i < 120 × 70 × 70: the witness is found by name alone."""
    s, rest = i % len(SURNAMES), i // len(SURNAMES)
    return SURNAMES[s] + GIVEN[rest % len(GIVEN)] + GIVEN[(rest // len(GIVEN)) % len(GIVEN)]


INVITE = "invite"
ANSWER = "answer"


def kind_of(body: dict[str, Any]) -> str:
    """A witness invitation is the card titled with the catalogue's invite.title; anything else answers the sender."""
    from cards.texts import t
    title = body.get("template_card", {}).get("main_title", {}).get("title")
    return INVITE if title == t("zh", "invite.title") else ANSWER


class StampedWeCom(LimitedWeCom):
    """Records the wall time at which each delivery was accepted, per person and kind (answer or invitation)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.stamps: dict[str, list[tuple[float, str]]] = defaultdict(list)

    async def _send(self, request: Any) -> dict[str, Any]:
        before = len(self.deliveries)
        answer = await super()._send(request)
        now = time.perf_counter()
        for d in self.deliveries[before:]:
            self.stamps[d.userid].append((now, kind_of(d.body)))
        return answer


def dingtalk_kind(fake: BenchDingTalk, d: Delivered) -> str:
    """A witness invitation is the card whose title is the catalogue's invite.title."""
    from cards.texts import t
    card = fake.cards.get(d.card_biz_id) if d.card_biz_id else None
    return INVITE if card is not None and card.title == t("zh", "invite.title") else ANSWER


class StampedDingTalk(BenchDingTalk):
    """Records the wall time at which anything reached a person's robot chat (card, batchSend, session)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.stamps: dict[str, list[tuple[float, str]]] = defaultdict(list)
        fake = self

        class Stamped(list):  # type: ignore[type-arg]
            def __init__(self, userid: str) -> None:
                super().__init__()
                self.userid = userid

            def append(self, item: Any) -> None:
                super().append(item)
                fake.stamps[self.userid].append((time.perf_counter(), dingtalk_kind(fake, item)))

        class Chats(defaultdict):  # type: ignore[type-arg]
            def __missing__(self, key: str) -> Any:
                value = self[key] = Stamped(key)
                return value

        self.delivered = Chats()


async def push_frames(fake: StampedDingTalk, app: FakeApp, frames: list[dict[str, Any]], *, window: int,
                      seconds: float) -> LoadStats:
    """Push one robot frame per item, `window` in flight, the next as each ack comes back (as fast as acks allow)."""
    stats = LoadStats()
    slots = asyncio.Semaphore(window)
    pushed_at: dict[str, tuple[int, float]] = {}

    def on_ack(f: Any) -> None:
        if f.kind != "robot" or f.message_id not in pushed_at:
            return
        index, t0 = pushed_at.pop(f.message_id)
        now = time.perf_counter()
        code = (f.ack or {}).get("code")
        stats.count(code if code is not None else "none")
        if code == 200:
            stats.latencies.append(now - t0)
            stats.acked.append(index)
            stats.sent_at.append(t0)
        stats.last_done = max(stats.last_done, now)
        slots.release()

    fake.on_ack = on_ack
    stats.first_sent = time.perf_counter()
    deadline = stats.first_sent + seconds
    try:
        for index, data in enumerate(frames):
            if time.perf_counter() >= deadline:
                break
            await slots.acquire()
            frame = fake._frame(app, "CALLBACK", ROBOT_TOPIC, data, "robot")
            pushed_at[frame.message_id] = (index, time.perf_counter())
            await fake._send(frame)
            stats.sent += 1
        wait_until = time.perf_counter() + 30
        while pushed_at and time.perf_counter() < wait_until:  # the frames still in flight
            await asyncio.sleep(0.01)
    finally:
        fake.on_ack = None
    return stats


async def one_run(size: int, args: argparse.Namespace, run: int) -> dict[str, Any]:
    from store.db import Database
    from store.models import Employee

    dingtalk = args.platform == "dingtalk"
    fake: Any
    app: FakeApp | None = None
    if dingtalk:
        # Redelivery after 30 s: a frame still unacked then is a real loss, not load.
        fake = StampedDingTalk(redeliver_after=30.0, ack_deadline=1.0, qps_limit=args.dingtalk_qps)
    else:
        fake = StampedWeCom()
    await fake.start()
    shape = Shape(size)
    userids = [shape.userid(i) for i in range(size)]
    names = [unique_name(i) for i in range(size)]
    if dingtalk:
        app = fake.add_app("dingburst", "burst-secret", corp_id="dingcorp")
        for u, n in zip(userids, names):
            fake.add_user(app, u, n)
    else:
        for u, n in zip(userids, names):
            fake.add_user(u, n)
    name = f"burst-{args.platform}-{args.db}-{size}-{run}"
    bench_db = await BenchDatabase.create(args.db, name)
    db = Database(bench_db.url)
    procs: list[ServerProcess] = []
    try:
        await populate(db, TENANT, size, platform=args.platform)
        async with db.engine.begin() as conn:  # unique names, so that `@名字` resolves without a question
            for i in range(0, size, 500):
                for j in range(i, min(size, i + 500)):
                    await conn.execute(update(Employee).where(Employee.tenant == TENANT,
                                                              Employee.userid == userids[j]).values(name=names[j]))
        port = free_port()
        tenant = ({**dingtalk_tenant_config(app, fake.base_url, key=TENANT), "name": "基准测试集团"}
                  if app is not None else wecom_tenant_config(fake))
        cfg = write_config(WORK / f"{name}.toml", db_url=bench_db.url, port=port,
                           tenant=quiet_tenant(tenant), data_dir=WORK / f"{name}-data")
        server = ServerProcess(cfg, port, args=("--role", "web") if args.split else ())
        procs = [server]
        if args.split:  # a worker beside the web, on the same database: handling gets its own core
            worker_port = free_port()
            worker_cfg = cfg.with_name(f"{name}-worker.toml")
            worker_cfg.write_bytes(cfg.read_bytes())
            worker_cfg.chmod(0o600)
            procs.append(ServerProcess(worker_cfg, worker_port, args=("--role", "worker", "--port", str(worker_port))))
        for proc in procs:
            proc.start()
        for proc in procs:
            await proc.wait_ready()
        if app is not None:
            await fake.wait_connected(app, timeout=30)
        await asyncio.sleep(3)  # start-up work (first tick, pools) settles
        texts = [f"O{1 + k % 4}-KR{1 + k % 3} 完成第{k % 90 + 1}份报告 @{names[(k + 1) % size]}" for k in range(size)]
        requests: list[Any] = []
        if app is not None:
            requests = [fake.robot_message(app, userids[k], texts[k], msg_id=f"msgburst{run:02d}{k:08d}==")
                        for k in range(size)]
        else:
            client = fake.callback_client(f"/wecom/{TENANT}/callback")
            requests = [client.envelope(client.text_xml(userids[k], texts[k], msgid=MSGID_BASE + run * 10**7 + k))
                        for k in range(size)]
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        # The handling process (the worker when split) is the one to look into.
        profile_path = RESULTS / "profiles" / f"burst-{args.platform}-{args.db}-{size}{'-split' if args.split else ''}.txt"
        profiler = start_profile(procs[-1].pid, args.profile_seconds, profile_path) \
            if args.profile and run == 0 else None
        if app is not None:
            stats = await push_frames(fake, app, requests, window=args.connections, seconds=args.load_seconds)
        else:
            stats = await run_load("127.0.0.1", port, requests, connections=args.connections, seconds=args.load_seconds)
        ack_done = stats.last_done
        acked = set(stats.acked)
        sent_at = dict(zip(stats.acked, stats.sent_at))
        # Wait (bounded) until every acknowledged sender has a confirmation and every witness an invitation.
        deadline = time.perf_counter() + args.answer_timeout
        def answered() -> tuple[int, int]:
            conf = sum(1 for k in acked if any(t == ANSWER for _, t in fake.stamps.get(userids[k], ())))
            inv = sum(1 for k in acked if any(t == INVITE for _, t in fake.stamps.get(userids[(k + 1) % size], ())))
            return conf, inv
        while time.perf_counter() < deadline and answered() != (len(acked), len(acked)):
            await asyncio.sleep(0.1)
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
        if profiler is not None:
            profiler.wait(60)
        conf, inv = answered()
        first = stats.first_sent
        confirmations = {k: min(t for t, m in fake.stamps[userids[k]] if m == ANSWER)
                         for k in acked if any(m == ANSWER for _, m in fake.stamps.get(userids[k], ()))}
        last = max(confirmations.values(), default=first)
        latencies = [confirmations[k] - sent_at[k] for k in confirmations]
        per_person = {u: [m for _, m in fake.stamps.get(u, ())] for u in userids}
        twice = sum(1 for k in acked if sum(1 for m in per_person[userids[k]] if m == ANSWER) > 1)
        invited_twice = sum(1 for k in acked if sum(1 for m in per_person[userids[(k + 1) % size]]
                                                    if m == INVITE) > 1)
        ack_s = len(acked) / (ack_done - first) if ack_done > first else 0.0
        answered_s = len(confirmations) / (last - first) if last > first else 0.0
        result = {
            "size": size, "run": run + 1, "acked": len(acked),
            "ack_per_s": round(ack_s, 1),
            "ack_ms": {"p50": rounded(1000 * (percentile(stats.latencies, 50) or 0), 2),
                       "p99": rounded(1000 * (percentile(stats.latencies, 99) or 0), 2)},
            "answered_per_s": round(answered_s, 1),
            "reply_s": {"p50": rounded(percentile(latencies, 50) or 0, 3), "p99": rounded(percentile(latencies, 99) or 0, 3)},
            "keep_up_ratio": round(answered_s / ack_s, 3) if ack_s else None,
            "server_cpu_ms_per_answer": round(1000 * cpu / max(1, len(confirmations)), 2),
            "check": {"confirmed": conf, "invited": inv, "confirmed_twice": twice, "invited_twice": invited_twice,
                      "all_answered_once": conf == len(acked) and twice == 0,
                      "all_witnesses_invited_once": inv == len(acked) and invited_twice == 0},
        }
        if dingtalk:
            result["check"]["protocol_errors"] = fake.protocol_errors[:5]
            result["check"]["refused_by_qps"] = sum(n for (api, why), n in fake.rejected.items() if why == "qps-limit")
        if profiler is not None:
            result["profile"] = {"file": str(profile_path.relative_to(ROOT)),
                                 "on_stack": summarize_profile(profile_path, top=40)}
        log(f"N={size} run {run + 1}: ack {result['ack_per_s']}/s (p99 {result['ack_ms']['p99']} ms), "
            f"answered {result['answered_per_s']}/s, reply p50 {result['reply_s']['p50']} s p99 "
            f"{result['reply_s']['p99']} s, keep-up {result['keep_up_ratio']}, CPU "
            f"{result['server_cpu_ms_per_answer']} ms/answer; {result['check']}")
        return result
    finally:
        for proc in procs:
            proc.stop()
        await db.close()
        await fake.stop()
        await bench_db.drop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,2000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--platform", choices=("wecom", "dingtalk"), default="wecom")
    p.add_argument("--connections", type=int, default=64, help="connections (WeCom) or frames in flight (DingTalk)")
    p.add_argument("--dingtalk-qps", type=int, default=20, help="the fake's per-app QPS limit on each send API")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--profile", action="store_true", help="sample the handling process with py-spy in the first run")
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument("--split", action="store_true", help="one `serve --role web` and one `--role worker`")
    p.add_argument("--load-seconds", type=float, default=60.0, help="upper bound for sending the callbacks")
    p.add_argument("--answer-timeout", type=float, default=300.0, help="how long to wait for the last answer")
    args = p.parse_args()
    banner(f"burst: everyone answers at once, with a witness each; {args.platform}, sizes {args.sizes} on {args.db}")
    sizes: dict[str, Any] = {}
    for size in [int(x) for x in args.sizes.split(",")]:
        runs = [asyncio.run(one_run(size, args, r)) for r in range(args.runs)]
        sizes[str(size)] = {
            "runs": runs,
            "median": {k: median([r[k] for r in runs]) for k in ("ack_per_s", "answered_per_s", "keep_up_ratio",
                                                                  "server_cpu_ms_per_answer")}
            | {"reply_p50_s": median([r["reply_s"]["p50"] for r in runs]),
               "reply_p99_s": median([r["reply_s"]["p99"] for r in runs]),
               "ack_p99_ms": median([r["ack_ms"]["p99"] for r in runs])},
            "all_exactly_once": all(r["check"]["all_answered_once"] and r["check"]["all_witnesses_invited_once"]
                                    for r in runs),
        }
        log(f"N={size} median of {len(runs)}: {sizes[str(size)]['median']}")
    doc = {"settings": {"platform": args.platform, "connections": args.connections, "db": args.db, "runs": args.runs},
           "target": {"answered_per_s": 1000, "reply_p99_s": 2.0, "keep_up_ratio": 0.5, "ack_per_s": 2000,
                      "ack_p99_ms": 50},
           "sizes": sizes}
    doc["settings"]["split"] = args.split
    if args.platform == "dingtalk":
        doc["settings"]["dingtalk_qps"] = args.dingtalk_qps
    log(f"wrote {write_result('burst' + ('' if args.platform == 'wecom' else f'_{args.platform}') + ('' if args.db == 'sqlite' else f'_{args.db}') + ('_split' if args.split else ''), doc)}")


if __name__ == "__main__":
    main()
