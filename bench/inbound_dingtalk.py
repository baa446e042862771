"""Inbound DingTalk Stream frames: acknowledgement throughput and latency through the real SDK.

The fake gateway (in this process) pushes robot-message frames over the Stream
WebSocket to one `dongxian serve` process, whose official dingtalk-stream client
routes them into the inbox and acks. The gateway keeps a window of frames in
flight and sends the next as each ack comes back ("as fast as acks allow").
Afterwards the benchmark waits (bounded) for the dispatcher to drain and checks
every acked frame is in the inbox once and was handled once, with no
redelivery needed. The floor — frame and data JSON parsing plus the adapter's
mapping to an Event — is measured in the same run.

    .venv/bin/python -m bench.inbound_dingtalk
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

from bench.common import (WORK, BenchDatabase, RssSampler, ServerProcess, banner, cpu_seconds, free_port, log,
                          median, percentile, rounded, rss_mib, write_config, write_result)
from bench.company import Shape, populate
from bench.fakes import BenchDingTalk, FakeApp
from bench.inbound_wecom import inbox_state, max_inbox_id, outbox_backlog, quiet_tenant, wait_drained
from tests.fakes.dingtalk_server import ROBOT_TOPIC, tenant_config

TENANT = "acme"


def protocol_floor(fake: BenchDingTalk, frames: list[str], sample: int = 3000) -> float:
    """Seconds per frame for parsing the frame and its data and mapping it to an Event (the adapter's code)."""
    from bot.core.config import parse_config
    from bot.dingtalk.events import frame_problem, robot_event

    cfg = parse_config({"tenants": [tenant_config(next(iter(fake.apps.values())), fake.base_url, key=TENANT)]})
    tenant = cfg.tenants[0]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for raw in frames[:sample]:
            frame = json.loads(raw)
            frame_problem(frame)
            robot_event(tenant, json.loads(frame["data"]))
        best = min(best, (time.perf_counter() - t0) / min(sample, len(frames)))
    return best


async def one_run(run: int, fake: BenchDingTalk, app: FakeApp, server: ServerProcess, db: Any,
                  userids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    count = int(args.seconds * args.max_rate)
    payloads = []
    for k in range(count):
        msg_id = f"msgbench{run:02d}{k:08d}=="
        text = f"O{1 + k % 4}-KR{1 + k % 3} 完成第{k % 90 + 1}份报告"
        payloads.append((msg_id, fake.robot_message(app, userids[k % len(userids)], text, msg_id=msg_id)))
    floor_frames = [json.dumps({"specVersion": "1.0", "type": "CALLBACK", "headers": {
        "appId": app.client_id, "contentType": "application/json", "messageId": f"m{k}", "time": "1700000000000",
        "topic": ROBOT_TOPIC}, "data": json.dumps(d, ensure_ascii=False)}, ensure_ascii=False)
        for k, (_, d) in enumerate(payloads[:3000])]
    floor = protocol_floor(fake, floor_frames)

    before_id = await max_inbox_id(db)
    handled_before = await server.metric("dongxian_handler_seconds_count")
    cpu_before = cpu_seconds(server.pid)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    window = asyncio.Semaphore(args.window)
    acked: list[Any] = []

    def on_ack(f: Any) -> None:
        if f.kind == "robot":
            acked.append(f)
            window.release()

    fake.on_ack = on_ack
    pushed = []
    with RssSampler(server.pid) as sampler:
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        for _msg_id, data in payloads:
            if time.perf_counter() >= deadline:
                break
            await window.acquire()
            pushed.append(await fake._push(app, ROBOT_TOPIC, data, "robot"))
        # The frames still in flight: wait (bounded) for their acks.
        t_wait = time.monotonic()
        while len(acked) < len(pushed) and time.monotonic() - t_wait < 10:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
    fake.on_ack = None
    cpu_after = cpu_seconds(server.pid)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    latencies = [f.ack_latency for f in acked if f.ack_latency is not None and f.ack.get("code") == 200]
    redelivered = sum(1 for f in pushed if f.redelivered_as)

    drained, drain_s = await wait_drained(db, args.drain_timeout)
    state = await inbox_state(db, before_id)
    handled = await server.metric("dongxian_handler_seconds_count") - handled_before
    sent_ids = {d["msgId"] for d in (f.data for f in pushed)}
    acked_ids = {f.data["msgId"] for f in acked if f.ack.get("code") == 200}
    stored = [k.removeprefix("msg:") for k in state["keys"]]
    stored_set = set(stored)
    throughput = len(latencies) / elapsed if elapsed > 0 else 0.0
    result = {
        "run": run + 1, "pushed": len(pushed), "acked": len(latencies), "redelivered": redelivered,
        "seconds": round(elapsed, 3), "throughput_per_s": round(throughput, 1),
        "ack_ms": {"p50": rounded(1000 * (percentile(latencies, 50) or 0), 2),
                   "p99": rounded(1000 * (percentile(latencies, 99) or 0), 2),
                   "max": rounded(1000 * max(latencies, default=0), 2)},
        "floor_us_per_frame": round(floor * 1e6, 1), "floor_per_s": round(1 / floor, 1),
        "ratio_to_floor": round(throughput * floor, 3),
        "server_cpu_utilisation": round((cpu_after - cpu_before) / elapsed, 2),
        "loadgen_cpu_utilisation": round(((self_after.ru_utime + self_after.ru_stime)
                                          - (self_before.ru_utime + self_before.ru_stime)) / elapsed, 2),
        "server_rss_peak_mib": round(sampler.peak, 1),
        "drained": drained, "drain_seconds_after_load": round(drain_s, 1),
        "handled_per_s": round(len(stored) / (elapsed + drain_s), 1) if drained else None,
        "replies_not_yet_delivered": await outbox_backlog(db),
        "check": {
            "inbox_rows": len(stored), "lost": len(acked_ids - stored_set),
            "duplicated_rows": len(stored) - len(stored_set), "stored_not_pushed": len(stored_set - sent_ids),
            "done": state["status"]["done"], "failed": state["status"]["failed"],
            "still_pending": state["status"]["pending"] + state["status"]["processing"],
            "handler_invocations": int(handled), "protocol_errors": len(fake.protocol_errors),
        },
    }
    c = result["check"]
    # Every acknowledged frame stored once and every stored one acknowledged; handling may still run.
    result["acked_exactly_once"] = (c["lost"] == 0 and c["duplicated_rows"] == 0 and c["stored_not_pushed"] == 0
                                    and c["protocol_errors"] == 0)
    result["exactly_once"] = (drained and c["lost"] == 0 and c["duplicated_rows"] == 0 and c["failed"] == 0
                              and c["still_pending"] == 0 and c["handler_invocations"] == c["inbox_rows"]
                              and c["stored_not_pushed"] == 0 and len(acked_ids) == len(pushed))
    log(f"run {run + 1}: {result['acked']} acked in {elapsed:.1f}s = {throughput:.0f}/s, "
        f"p50 {result['ack_ms']['p50']} ms, p99 {result['ack_ms']['p99']} ms; floor {1 / floor:.0f}/s "
        f"(ratio {result['ratio_to_floor']}); server CPU {result['server_cpu_utilisation']}; "
        f"drained {drained} in {drain_s:.1f}s; exactly once: {result['exactly_once']} {c}")
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    name = "inbound_dingtalk"
    banner(f"{name}: DingTalk Stream frames through the SDK, window {args.window}, one server on sqlite")
    # Redelivery after 30 s: a frame still unacked then is a real loss, not load.
    fake = BenchDingTalk(redeliver_after=30.0, ack_deadline=1.0)
    await fake.start()
    app = fake.add_app("dingbench", "bench-secret", corp_id="dingcorp")
    shape = Shape(args.employees)
    userids = [shape.userid(i) for i in range(args.employees)]
    for u in userids:
        fake.add_user(app, u, u)
    bench_db = await BenchDatabase.create("sqlite", name)
    from store.db import Database
    db = Database(bench_db.url)
    server: ServerProcess | None = None
    try:
        await populate(db, TENANT, args.employees, platform="dingtalk")
        tenant = quiet_tenant({**tenant_config(app, fake.base_url, key=TENANT), "name": "基准测试集团"})
        port = free_port()
        cfg = write_config(WORK / f"{name}.toml", db_url=bench_db.url, port=port, tenant=tenant,
                           data_dir=WORK / f"{name}-data")
        server = ServerProcess(cfg, port)
        server.start()
        await server.wait_ready()
        await fake.wait_connected(app, timeout=30)
        await asyncio.sleep(2)
        idle = round(rss_mib(server.pid), 1)
        log(f"server ready and connected; idle RSS {idle} MiB")
        runs = [await one_run(run, fake, app, server, db, userids, args) for run in range(args.runs)]
        summary = {
            "target": {"throughput_per_s": 2000, "p99_ms": 50, "lost_or_duplicated": 0},
            "median": {
                "throughput_per_s": median([r["throughput_per_s"] for r in runs]),
                "p50_ms": median([r["ack_ms"]["p50"] for r in runs]),
                "p99_ms": median([r["ack_ms"]["p99"] for r in runs]),
                "floor_per_s": median([r["floor_per_s"] for r in runs]),
                "ratio_to_floor": median([r["ratio_to_floor"] for r in runs]),
            },
            "all_exactly_once": all(r["exactly_once"] for r in runs),
            "all_acked_exactly_once": all(r["acked_exactly_once"] for r in runs),
            "footprint": {"idle_rss_mib": idle, "peak_rss_under_load_mib": max(r["server_rss_peak_mib"] for r in runs)},
            "protocol_errors": fake.protocol_errors[:10],
        }
        m = summary["median"]
        log(f"median of {len(runs)}: {m['throughput_per_s']}/s, p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, "
            f"floor {m['floor_per_s']}/s, ratio {m['ratio_to_floor']}; exactly once in every run: "
            f"{summary['all_exactly_once']}")
        doc = {"settings": {"window": args.window, "seconds": args.seconds, "employees": args.employees,
                            "runs": args.runs}, "runs": runs, **summary}
        log(f"wrote {write_result(name, doc)}")
        return doc
    finally:
        if server is not None:
            server.stop()
        await db.close()
        await fake.stop()
        await bench_db.drop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.inbound_dingtalk", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--window", type=int, default=64, help="frames in flight (pushed, not yet acked)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--employees", type=int, default=10_000)
    p.add_argument("--max-rate", type=float, default=4000, help="frames prepared per second of load")
    p.add_argument("--drain-timeout", type=float, default=90.0)
    return p


def main() -> None:
    asyncio.run(main_async(parser().parse_args()))


if __name__ == "__main__":
    main()
