"""The 09:30 morning prompt to a whole company, through a fake platform that enforces its limits.

A fresh company of N people with no weekly action yet; `dongxian serve` starts
with the prompt due at this very minute, so the ticker's first beat is the tick.
The fake WeCom enforces 1000 recipients a call, 10,000 calls a minute per API
and 30 messages a minute per member (silently dropping beyond it); the fake
DingTalk enforces 20 user ids a call and 20 calls a second per API. Measured:
time from the tick (the `at` of the claims the job wrote) to the last message
the fake accepted, against the floor the limits imply, and that everybody got
the prompt exactly once. A run that has not finished by the deadline reports
how far it got and the rate it was going at.

    .venv/bin/python -m bench.fanout --platform wecom --employees 100000
    .venv/bin/python -m bench.fanout --platform dingtalk --employees 20000
    .venv/bin/python -m bench.fanout --platform wecom --db postgres --servers 2
"""
from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bench.common import (WORK, BenchDatabase, RssSampler, ServerProcess, banner, cpu_seconds, due_now_tenant,
                          free_port, log, median, write_config, write_result)
from bench.company import Shape, populate
from bench.fakes import BenchDingTalk, LimitedWeCom, dingtalk_delivery_counter
from bench.inbound_wecom import wecom_tenant_config
from tests.fakes.dingtalk_server import tenant_config as dingtalk_tenant_config

TENANT = "acme"


def wecom_floor(recipients: int, per_call: int = 1000, per_minute: int = 10_000) -> tuple[int, float]:
    """(calls, seconds): a sliding minute lets the first `per_minute` calls go at once."""
    calls = math.ceil(recipients / per_call)
    return calls, 60.0 * max(0, math.ceil(calls / per_minute) - 1)


def dingtalk_floor(recipients: int, per_call: int = 20, qps: int = 20) -> tuple[int, float]:
    calls = math.ceil(recipients / per_call)
    return calls, float(max(0, math.ceil(calls / qps) - 1))


async def tick_time(db: Any) -> datetime | None:
    from store.models import ScheduledSend
    async with db.session() as s:
        return (await s.execute(select(func.min(ScheduledSend.at)).where(
            ScheduledSend.kind == "morning_prompt"))).scalar_one()


async def job_finished(db: Any) -> datetime | None:
    """When the first run of the prompt job had queued everything (later beats only touch finished_at)."""
    from store.models import JobRun
    async with db.session() as s:
        return (await s.execute(select(func.min(JobRun.started_at)).where(JobRun.job == "morning_prompt"))).scalar_one()


async def claims(db: Any) -> int:
    from store.models import ScheduledSend
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(ScheduledSend).where(
            ScheduledSend.kind == "morning_prompt"))).scalar_one())


async def outbox_recipients(db: Any) -> dict[str, int]:
    """People (not rows) in the outbox by status: a fan-out row counts each of its recipients."""
    from store.models import OutboxMessage
    from store import outbox as ob
    out: Counter[str] = Counter()
    async with db.session() as s:
        for userid, status, payload in (await s.execute(select(
                OutboxMessage.userid, OutboxMessage.status, OutboxMessage.payload))).all():
            out[status] += len(payload.get("to") or []) if userid == getattr(ob, "EVERYONE", "*") else 1
            out["rows"] += 1
    return dict(out)


class Platform:
    """The fake of one platform, with what the benchmark reads from it."""

    def __init__(self, name: str, employees: int) -> None:
        self.name = name
        self.employees = employees
        self.wecom: LimitedWeCom | None = None
        self.dingtalk: BenchDingTalk | None = None
        self.app: Any = None

    async def start(self, userids: list[str]) -> dict[str, Any]:
        if self.name == "wecom":
            self.wecom = LimitedWeCom()
            await self.wecom.start()
            for u in userids:
                self.wecom.add_user(u, u)
            return wecom_tenant_config(self.wecom)
        self.dingtalk = BenchDingTalk(redeliver_after=30.0)
        await self.dingtalk.start()
        dingtalk_delivery_counter(self.dingtalk)
        self.app = self.dingtalk.add_app("dingbench", "bench-secret", corp_id="dingcorp")
        for u in userids:
            self.dingtalk.add_user(self.app, u, u)
        return {**dingtalk_tenant_config(self.app, self.dingtalk.base_url, key=TENANT), "name": "基准测试集团"}

    async def ready(self, servers: int) -> None:
        if self.dingtalk is not None:
            await self.dingtalk.wait_connected(self.app, count=servers, timeout=30)

    async def stop(self) -> None:
        if self.wecom is not None:
            await self.wecom.stop()
        if self.dingtalk is not None:
            await self.dingtalk.stop()

    def delivered(self) -> int:
        if self.wecom is not None:
            return len(self.wecom.deliveries)
        assert self.dingtalk is not None
        return self.dingtalk.delivered_count

    def last_at(self) -> float:
        return self.wecom.last_at if self.wecom is not None else self.dingtalk.last_at  # type: ignore[union-attr]

    def first_at(self) -> float:
        return self.wecom.first_at if self.wecom is not None else self.dingtalk.first_at  # type: ignore[union-attr]

    def per_person(self) -> Counter[str]:
        if self.wecom is not None:
            return Counter(d.userid for d in self.wecom.deliveries)
        assert self.dingtalk is not None
        return Counter({u: len(v) for u, v in self.dingtalk.delivered.items() if v})

    def calls(self) -> dict[str, Any]:
        if self.wecom is not None:
            w = self.wecom
            sizes = w.recipients_per_call
            return {"message_send_ok": w.send_ok, "refused": {str(k): v for k, v in w.send_refused.items()},
                    "recipients_per_call_max": max(sizes, default=0),
                    "recipients_per_call_mean": round(sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 1),
                    "msgtypes": dict(w.msgtypes), "silently_dropped": len(w.silently_dropped)}
        d = self.dingtalk
        assert d is not None
        kinds = Counter(x.kind for v in d.delivered.values() for x in v)
        return {"api_calls": dict(d.calls), "rejected": {f"{a}:{b}": n for (a, b), n in d.rejected.items()},
                "delivered_kinds": dict(kinds), "protocol_errors": d.protocol_errors[:5]}

    def floor(self, calls_made: int) -> dict[str, Any]:
        n = self.employees
        if self.name == "wecom":
            calls, secs = wecom_floor(n)
            return {"calls_at_limit": calls, "floor_s": secs, "calls_made": calls_made,
                    "floor_for_calls_made_s": 60.0 * max(0, math.ceil(calls_made / 10_000) - 1)}
        calls, secs = dingtalk_floor(n)
        return {"calls_at_limit": calls, "floor_s": secs, "calls_made": calls_made,
                "floor_for_calls_made_s": float(max(0, math.ceil(calls_made / 20) - 1))}


async def one_run(run: int, args: argparse.Namespace, name: str) -> dict[str, Any]:
    shape = Shape(args.employees)
    userids = [shape.userid(i) for i in range(args.employees)]
    platform = Platform(args.platform, args.employees)
    tenant = due_now_tenant(await platform.start(userids))
    bench_db = await BenchDatabase.create(args.db, f"{name}-{run}")
    from store.db import Database
    db = Database(bench_db.url)
    servers: list[ServerProcess] = []
    try:
        t = time.perf_counter()
        await populate(db, TENANT, args.employees, platform=args.platform)
        log(f"run {run + 1}: company of {args.employees} written in {time.perf_counter() - t:.1f}s")
        for i in range(args.servers):
            port = free_port()
            cfg = write_config(WORK / f"{name}-{i}.toml", db_url=bench_db.url, port=port, tenant=tenant,
                               data_dir=WORK / f"{name}-{i}-data")
            servers.append(ServerProcess(cfg, port))
        started = time.time()
        for s in servers:
            s.start()
        for s in servers:
            await s.wait_ready()
        await platform.ready(args.servers)
        samplers = [RssSampler(s.pid) for s in servers]
        for sm in samplers:
            sm.__enter__()
        deadline = started + args.deadline
        finished = False
        while time.time() < deadline:
            if platform.delivered() >= args.employees:
                finished = True
                break
            await asyncio.sleep(0.2)
        cpu = [round(cpu_seconds(s.pid), 1) for s in servers]
        if finished:
            await asyncio.sleep(args.settle)  # a duplicate would show up now
        for sm in samplers:
            sm.__exit__()
        tick = await tick_time(db)
        job_done = await job_finished(db)
        delivered = platform.delivered()
        per = platform.per_person()
        calls = platform.calls()
        calls_made = calls.get("message_send_ok") or sum(
            v for k, v in calls.get("api_calls", {}).items() if k in ("batchSend", "cardSend"))
        floor = platform.floor(calls_made)
        t0 = tick.timestamp() if tick else started
        last = platform.last_at()
        took = (last - t0) if finished and last else None
        elapsed = time.time() - t0
        dup = sum(c - 1 for c in per.values() if c > 1)
        result = {
            "run": run + 1, "finished": finished, "employees": args.employees, "delivered": delivered,
            "people_reached": len(per), "missing": args.employees - len(per), "duplicates": dup,
            "claims_written": await claims(db),
            "tick_to_job_done_s": round(job_done.timestamp() - t0, 2) if job_done else None,
            "tick_to_first_accepted_s": round(platform.first_at() - t0, 2) if platform.first_at() else None,
            "tick_to_last_accepted_s": round(took, 2) if took is not None else None,
            "floor": floor,
            "ratio_to_floor": round(took / floor["floor_s"], 2) if took and floor["floor_s"] >= 1 else None,
            "rate_per_s": round(delivered / max(0.001, (last - t0) if last else elapsed), 1),
            "projected_total_s": None if finished else (round(args.employees / (delivered / elapsed), 0)
                                                        if delivered else None),
            "calls": calls, "outbox": await outbox_recipients(db),
            "server_cpu_s": cpu, "server_rss_peak_mib": [round(sm.peak, 1) for sm in samplers],
        }
        result["exactly_once"] = finished and result["missing"] == 0 and dup == 0 and \
            calls.get("silently_dropped", 0) == 0
        log(f"run {run + 1}: {'done' if finished else 'DEADLINE'}: {delivered}/{args.employees} delivered, "
            f"tick→job done {result['tick_to_job_done_s']}s, tick→last {result['tick_to_last_accepted_s']}s "
            f"(floor {floor['floor_s']}s, for the calls made {floor['floor_for_calls_made_s']}s), "
            f"{result['rate_per_s']}/s, missing {result['missing']}, duplicates {dup}; calls {calls}")
        return result
    finally:
        for s in servers:
            s.stop()
        await db.close()
        await platform.stop()
        await bench_db.drop()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    name = args.name or (f"fanout_{args.platform}" if args.servers == 1 and args.db == "sqlite"
                         else f"fanout_{args.platform}_{args.db}_{args.servers}x")
    banner(f"{name}: the 09:30 prompt to {args.employees} people, {args.servers} server(s) on {args.db}")
    runs = []
    budget_end = time.time() + args.budget if args.budget else None
    for run in range(args.runs):
        if run and budget_end and time.time() + (runs[-1]["tick_to_last_accepted_s"] or args.deadline) + 30 > budget_end:
            log(f"time budget reached: {run} run(s)")
            break
        runs.append(await one_run(run, args, name))
        if not runs[-1]["finished"]:
            log("the run hit its deadline: no further runs")
            break
    done = [r for r in runs if r["finished"]]
    floor = runs[0]["floor"]
    summary = {
        "target": {"ratio_to_floor": 1.2, "exactly_once": True},
        "median": {"tick_to_last_accepted_s": _round(median([r["tick_to_last_accepted_s"] for r in done])),
                   "tick_to_job_done_s": median([r["tick_to_job_done_s"] for r in runs if r["tick_to_job_done_s"]]),
                   "floor_s": floor["floor_s"],
                   "ratio_to_floor": _round(median([r["ratio_to_floor"] for r in done if r["ratio_to_floor"]]))},
        "all_exactly_once": all(r["exactly_once"] for r in runs),
    }
    log(f"median of {len(done)} finished run(s): {summary['median']}; exactly once: {summary['all_exactly_once']}")
    doc = {"settings": {"platform": args.platform, "employees": args.employees, "servers": args.servers,
                        "db": args.db, "deadline_s": args.deadline, "runs": args.runs}, "runs": runs, **summary}
    log(f"wrote {write_result(name, doc)}")
    return doc


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", choices=("wecom", "dingtalk"), default="wecom")
    p.add_argument("--employees", type=int, default=None, help="default 100000 (WeCom), 20000 (DingTalk)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deadline", type=float, default=150.0, help="seconds from server start a run may take")
    p.add_argument("--budget", type=float, default=0.0, help="stop starting runs after this many seconds")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to watch for duplicates after the last one")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--servers", type=int, default=1)
    p.add_argument("--name", default="")
    return p


def main() -> None:
    args = parser().parse_args()
    if args.employees is None:
        args.employees = 100_000 if args.platform == "wecom" else 20_000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
