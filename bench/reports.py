"""Friday reports at company scale: the pulse and the weekly XLSX export.

Companies of 1k, 10k and 100k people with 12 weeks of history are written with
bulk inserts (SQLite). Each measurement runs in its own Python process, so its
peak memory (ru_maxrss) is its own: the company pulse (`compute_pulse`: every
department and the total, the missing list, witness counts, diversity and
mutual pairs), the 12-week trend behind the HR chart, the managers' team
pulses (a sample, extrapolated to every manager) and the XLSX export of one
week (`export_weekly`).

    .venv/bin/python -m bench.reports                       # 1k, 10k, 100k; three runs each
    .venv/bin/python -m bench.reports --sizes 100000 --runs 1
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import ROOT, WORK, BenchDatabase, banner, log, median, write_result
from bench.company import TEAM_SIZE, TEAMS_PER_DIVISION, populate

TENANT = "acme"
WEEK = "2026-W49"
WEEKS = 12
AS_OF = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)  # the Monday after: the week is over
KINDS = ("pulse", "trend", "teams", "export")


# -- the measuring process ---------------------------------------------------------------------
async def _measure(kind: str, url: str, size: int) -> dict[str, Any]:
    from store.db import Database
    db = Database(url)
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    if kind == "pulse":
        from store.pulse import compute_pulse
        async with db.session() as s:
            p = await compute_pulse(s, TENANT, WEEK)
        extra = {"departments": len(p.departments), "people": p.total.population, "missing": len(p.missing)}
    elif kind == "trend":
        from store.pulse import trend
        async with db.session() as s:
            points = await trend(s, TENANT, WEEK, weeks=WEEKS)
        extra = {"weeks": len(points)}
    elif kind == "teams":
        extra = await _team_pulses(db, size)
    elif kind == "export":
        from store.export import export_weekly
        out = WORK / f"reports-{size}.xlsx"
        await export_weekly(db, TENANT, [WEEK], out, now=AS_OF)
        extra = {"bytes": out.stat().st_size}
    seconds = time.perf_counter() - t0
    await db.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": round(seconds, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mib": _peak_rss_mib(), **extra}


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM of its address space).

    Not ru_maxrss: Linux carries that over from the parent through fork and exec,
    so a measuring process started by a driver holding a big company would report
    the driver's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _team_pulses(db: Any, size: int) -> dict[str, Any]:
    """Managers' team cards as the Friday job builds them (pulse and task figures of each manager's line):
    a sample of each kind of manager, extrapolated to all of them."""
    from zoneinfo import ZoneInfo

    from store.pulse import compute_pulse, org_tree
    from store.task_figures import task_figures, weeks_window

    start, end = weeks_window([WEEK], ZoneInfo("Asia/Shanghai"))
    async with db.session() as s:
        tree = await org_tree(s, TENANT)
        managers = [m for m in tree.reports if tree.line(m)]
        teams = size // TEAM_SIZE + (1 if size % TEAM_SIZE else 0)
        heads = {f"u{d * TEAMS_PER_DIVISION * TEAM_SIZE:06d}" for d in range((teams + TEAMS_PER_DIVISION - 1)
                                                                            // TEAMS_PER_DIVISION)}
        groups = {"top": [m for m in managers if m == "u000000"],
                  "division": [m for m in managers if m in heads and m != "u000000"],
                  "team": [m for m in managers if m not in heads]}
        pulse_sample = {"top": 1, "division": 5, "team": 40}
        task_sample = {"top": 1, "division": 2, "team": 4}
        out: dict[str, Any] = {"managers": len(managers)}
        total = {"pulse": 0.0, "tasks": 0.0}
        for kind, people in groups.items():
            if not people:
                continue
            out[f"{kind}_managers"] = len(people)
            for what, sample in (("pulse", pulse_sample), ("tasks", task_sample)):
                picked = people[:: max(1, len(people) // sample[kind])][: sample[kind]]
                t = time.perf_counter()
                for m in picked:
                    line = tree.line(m)
                    if what == "pulse":
                        await compute_pulse(s, TENANT, WEEK, people=line)
                    else:
                        await task_figures(s, TENANT, start=start, end=end, now=AS_OF, people=line)
                each = (time.perf_counter() - t) / len(picked)
                out[f"{kind}_{what}_seconds_each"] = round(each, 4)
                total[what] += each * len(people)
        out["all_managers_pulse_estimated_s"] = round(total["pulse"], 1)
        out["all_managers_task_figures_estimated_s"] = round(total["tasks"], 1)
    return out


def worker(argv: list[str]) -> None:
    kind, url, size = argv[0], argv[1], int(argv[2])
    print(json.dumps(asyncio.run(_measure(kind, url, size))), flush=True)


# -- the driver ----------------------------------------------------------------------------------
def measure(kind: str, url: str, size: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.reports", "--worker", kind, url, str(size)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


async def build(size: int) -> tuple[BenchDatabase, dict[str, int], float]:
    from store.db import Database
    bench_db = await BenchDatabase.create("sqlite", f"reports-{size}")
    db = Database(bench_db.url)
    t = time.perf_counter()
    try:
        counts = await populate(db, TENANT, size, end_week=WEEK, weeks=WEEKS)
    finally:
        await db.close()
    return bench_db, counts, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--timeout", type=float, default=180.0, help="seconds one measurement may take")
    p.add_argument("--worker", nargs=3, metavar=("KIND", "URL", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker)
        return
    banner(f"reports: pulse, trend, team pulses and XLSX export; sizes {args.sizes}, {args.runs} run(s)")
    kinds = [k for k in args.kinds.split(",") if k]
    sizes: dict[str, Any] = {}
    for size in [int(x) for x in args.sizes.split(",")]:
        bench_db, counts, built = asyncio.run(build(size))
        log(f"{size} people: {counts} written in {built:.1f}s")
        figures: dict[str, Any] = {"rows": counts, "build_seconds": round(built, 1)}
        for kind in kinds:
            runs = [measure(kind, bench_db.url, size, args.timeout) for _ in range(args.runs if kind != "teams" else 1)]
            ok = [r for r in runs if "error" not in r]
            figures[kind] = {"runs": runs,
                             "median_seconds": median([r["seconds"] for r in ok]),
                             "median_cpu_s": median([r["cpu_s"] for r in ok]),
                             "max_peak_rss_mib": max((r["peak_rss_mib"] for r in ok), default=None)}
            extra = {k: v for k, v in (ok[0] if ok else runs[0]).items() if k not in ("seconds", "cpu_s", "peak_rss_mib")}
            log(f"{size} people, {kind}: median {figures[kind]['median_seconds']}s "
                f"(cpu {figures[kind]['median_cpu_s']}s), peak RSS {figures[kind]['max_peak_rss_mib']} MiB {extra}")
        sizes[str(size)] = figures
    big = sizes.get("100000", {})
    verdict = {}
    if big:
        verdict = {"pulse_s": big.get("pulse", {}).get("median_seconds"),
                   "export_s": big.get("export", {}).get("median_seconds"),
                   "peak_rss_mib": max((big[k]["max_peak_rss_mib"] or 0) for k in kinds if k in big)}
    doc = {"settings": {"week": WEEK, "history_weeks": WEEKS, "runs": args.runs},
           "target": {"pulse_s": 2.0, "export_s": 20.0, "peak_rss_mib": 600}, "at_100k": verdict, "sizes": sizes}
    log(f"at 100k: {verdict} (targets pulse ≤ 2 s, export ≤ 20 s, peak ≤ 600 MiB)")
    log(f"wrote {write_result('reports', doc)}")


if __name__ == "__main__":
    main()
