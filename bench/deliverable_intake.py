"""A deliverable sent in chat, end to end: from the platform's callback to the light on the task card.

    .venv/bin/python -m bench.deliverable_intake [--runs 5]

The demo company on SQLite with the fake WeCom and the fake DingTalk (Stream, the real SDK), the same
harness as tests/test_deliverable_intake.py. Per kind of file (a WeCom screenshot, a DingTalk
picture, a DingTalk Locust CSV) it sends the file `--runs` times and times callback → handler →
intake stored → download → extraction in the pool → light recorded and replies queued. The first
run of the module includes spawning the reader and loading the OCR models; it is reported apart.
Writes bench/results/deliverable_intake.json.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import banner, log, median, write_result


async def run(runs: int) -> list[dict[str, Any]]:
    from handlers.deliverables.ocr import ExtractionPool
    from store.db import Database
    from store.migrate import upgrade
    from tests.test_deliverable_intake import check_of, dingtalk_company, report_png, wecom_company
    from tests.test_deliverables_extract import locust_history

    rows: list[dict[str, Any]] = []
    pool = ExtractionPool(timeout=180)
    try:
        for kind in ("wecom screenshot", "dingtalk picture", "dingtalk locust csv"):
            with tempfile.TemporaryDirectory() as tmp:
                db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
                await upgrade(db)
                company = wecom_company if kind.startswith("wecom") else dingtalk_company
                times: list[float] = []
                light = ""
                async with company(db, Path(tmp), pool) as people:
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        if kind == "wecom screenshot":
                            await people.send_image("wangqiang", report_png())
                        elif kind == "dingtalk picture":
                            await people.send_file("wangqiang", report_png(), picture=True)
                        else:
                            await people.send_file("wangqiang", locust_history([1000, 3000, 4200], 200_000, 100, 150.0),
                                                   filename="run_stats_history.csv")
                        times.append(time.perf_counter() - t0)
                        row = await check_of(db)
                        light = f"{row.light} ({row.method})" if row is not None else "none"
                await db.close()
            rows.append({"file": kind, "runs": runs, "first_s": round(times[0], 3),
                         "median_s": round(median(times[1:] or times) or 0, 3), "light": light})
            log(f"{kind:22} first {times[0]:6.2f} s  median {rows[-1]['median_s']:6.2f} s  light {light}")
    finally:
        pool.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    banner("A deliverable sent in chat, callback to light")
    rows = asyncio.run(run(args.runs))
    write_result("deliverable_intake", {"runs": args.runs, "files": rows})


if __name__ == "__main__":
    main()
