"""The deliverable check's extraction, per file type: seconds and peak memory.

    .venv/bin/python -m bench.deliverables [--runs 3]

Each file type is read in a fresh process of its own (so its peak RSS is its own): the file is
made here (a Locust stats CSV, a JMeter statistics.json, a k6 summary, an XLSX, a DOCX, a
text-layer PDF and a 480-pixel load-test screenshot with Chinese labels), then read `--runs`
times; the first OCR run includes loading the models, reported apart. Writes
bench/results/deliverables.json.
"""
from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import banner, log, median, write_result

RULE = ("直播系统压测报告: 并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿 / ≤ 1% 黄; "
        "平均响应时间 ≤ 200ms 绿 / ≤ 500ms 黄")


def make_files(folder: Path) -> dict[str, Path]:
    from tests.test_deliverables_extract import load_test_png, locust_history, locust_stats

    from docx import Document
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure
    from openpyxl import Workbook

    files: dict[str, bytes] = {
        "locust_stats.csv": locust_stats(200_000, 100, 150.0),
        "locust_stats_history.csv": locust_history(list(range(100, 4300, 10)), 200_000, 100, 150.0),
        "jmeter_statistics.json": json.dumps({"Total": {"sampleCount": 200000, "errorPct": 0.05, "meanResTime": 150.0},
                                              **{f"GET /api/{i}": {"sampleCount": 1000, "errorPct": 0.05}
                                                 for i in range(200)}}).encode(),
        "k6_summary.json": json.dumps({"metrics": {"vus_max": {"values": {"value": 4200}},
                                                   "http_req_failed": {"values": {"rate": 0.0005}},
                                                   "http_req_duration": {"values": {"avg": 150.0}}}}).encode(),
    }
    wb = Workbook()
    ws = wb.active
    for i in range(2000):  # a workbook with a raw-data sheet of 2000 rows before the summary
        ws.append([f"sample {i}", i, i * 0.5])
    ws.append(["最大并发", 4200])
    ws.append(["错误率", "0.05%"])
    ws.append(["平均响应时间", "150ms"])
    buf = io.BytesIO()
    wb.save(buf)
    files["report.xlsx"] = buf.getvalue()
    doc = Document()
    for i in range(50):
        doc.add_paragraph(f"第{i + 1}段：测试环境与步骤说明。" * 5)
    t = doc.add_table(rows=2, cols=3)
    for i, (h, v) in enumerate([("并发用户数", "4,200"), ("失败率", "0.05%"), ("平均耗时", "150ms")]):
        t.cell(0, i).text, t.cell(1, i).text = h, v
    buf = io.BytesIO()
    doc.save(buf)
    files["report.docx"] = buf.getvalue()
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        for page in range(10):
            fig = Figure(figsize=(8.27, 11.69))
            FigureCanvasPdf(fig)
            for line in range(40):
                fig.text(0.08, 0.95 - line * 0.022, f"Step {page}.{line}: request batch finished")
            if page == 9:
                fig.text(0.08, 0.05, "Concurrent users: 4200   Error rate: 0.05%   Average response time: 150 ms")
            pdf.savefig(fig)
    files["report_10_pages.pdf"] = buf.getvalue()
    files["screenshot_480px.png"] = load_test_png([("并发量", "4200"), ("错误率", "0.05%"), ("平均响应时间", "150 ms")])
    out = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        out[name] = path
    return out


def child(path: str, runs: int) -> None:
    """Runs in the fresh process: read the file `runs` times, print seconds and peak RSS as JSON."""
    from handlers.deliverables.extract import Limits
    from handlers.deliverables.ocr import check_file
    from handlers.deliverables.rules import parse_rule_line

    rules = parse_rule_line(RULE).fields
    data = Path(path).read_bytes()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, light = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        ex = check_file(data, Path(path).name, rules, Limits())
        times.append(time.perf_counter() - t0)
        light = {k: r.value for k, r in ex.readings.items()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": ex.method, "problem": ex.problem, "times": times, "values": light,
                      "rss_after_imports_mib": round(base, 1), "peak_rss_mib": round(peak, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    banner("Deliverable extraction per file type")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in make_files(Path(tmp)).items():
            out = subprocess.run([sys.executable, "-m", "bench.deliverables", "--child", str(path),
                                  "--runs", str(args.runs)], capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise SystemExit(f"{name}: {out.stderr[-2000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            times = r["times"]
            row = {"file": name, "bytes": path.stat().st_size, "method": r["method"], "problem": r["problem"],
                   "first_s": round(times[0], 3), "median_s": round(median(times[1:] or times) or 0, 3),
                   "peak_rss_mib": r["peak_rss_mib"], "rss_after_imports_mib": r["rss_after_imports_mib"],
                   "values": r["values"]}
            rows.append(row)
            log(f"{name:28} {row['method']:7} first {row['first_s']:7.3f} s  median {row['median_s']:7.3f} s  "
                f"peak {row['peak_rss_mib']:7.1f} MiB  {row['values']}")
    write_result("deliverables", {"runs": args.runs, "files": rows})


if __name__ == "__main__":
    main()
