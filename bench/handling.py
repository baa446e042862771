"""What one inbound message costs the dispatcher, by kind and company size.

In one process, without HTTP: events are put in the inbox and the runtime's own
dispatcher (`process_inbox_once`, the handlers, the outbox rows) handles them;
sending is left out. Two kinds of reply: the weekly action without a witness
(the bot asks for one) and with an `@name` witness, which resolves the name
against the tenant's directory.

    .venv/bin/python -m bench.handling                      # 1k, 10k, 100k
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import BenchDatabase, banner, log, write_result
from bench.company import Shape, person_name, populate

TENANT = "acme"


async def measure(size: int, per_kind: int) -> dict[str, Any]:
    from bot.core.clock import Clock
    from bot.core.config import parse_config
    from bot.core.events import Event
    from bot.runtime import Runtime
    from store.db import Database

    bench_db = await BenchDatabase.create("sqlite", f"handling-{size}")
    db = Database(bench_db.url)
    try:
        await populate(db, TENANT, size, platform="console")
        config = parse_config({"database": {"url": bench_db.url}, "tenants": [{"key": TENANT, "name": "基准测试集团"}]})
        runtime = Runtime(config, db, Clock())
        shape = Shape(size)
        out: dict[str, Any] = {}
        kinds = {
            "no_witness": lambda k: f"O1-KR{1 + k % 3} 完成第{k % 90 + 1}份报告",
            "with_witness": lambda k: f"O1-KR{1 + k % 3} 完成第{k % 90 + 1}份报告 @{person_name((k * 7 + 3) % size)}",
        }
        for kind, text in kinds.items():
            # Resolving a witness costs seconds at 100k people: a few events tell the figure.
            count = per_kind if kind == "no_witness" or size <= 10_000 else min(per_kind, 5)
            for k in range(count):
                await runtime.accept(Event(tenant=TENANT, platform="console", userid=shape.userid((k * 13) % size),
                                           kind="text", text=text(k), dedup_key=f"{kind}:{k}"))
            t0 = time.perf_counter()
            c0 = time.process_time()
            done = 0
            while done < count:
                n = await runtime.process_inbox_once()
                if not n:
                    break
                done += n
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
            out[kind] = {"events": done, "ms_each": round(1000 * wall / max(1, done), 2),
                         "cpu_ms_each": round(1000 * cpu / max(1, done), 2),
                         "per_s": round(done / wall, 1) if wall else None}
            log(f"{size} people, {kind}: {out[kind]}")
        return out
    finally:
        await db.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.handling", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--events", type=int, default=60, help="events of each kind per size")
    args = p.parse_args()
    banner(f"handling: dispatcher cost per event; sizes {args.sizes}")
    sizes = {}
    for size in [int(x) for x in args.sizes.split(",")]:
        sizes[str(size)] = asyncio.run(measure(size, args.events))
    log(f"wrote {write_result('handling', {'settings': {'events': args.events}, 'sizes': sizes})}")


if __name__ == "__main__":
    main()
