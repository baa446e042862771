"""The deliverable check's core: rules, extraction (machine-readable first, OCR last) and lights.

The load-test screenshot is drawn here with matplotlib (Chinese labels, the CJK font the trend
chart uses) and read by the real rapidocr models from the wheel; small on purpose (OCR is heavy).
"""
from __future__ import annotations

import csv
import io
import json

import pytest

from cards.chart import cjk_font_family
from handlers.deliverables.extract import Limits, read_file
from handlers.deliverables.lights import MISSING, UNREAD, UNSURE, confirm, judge
from handlers.deliverables.ocr import ExtractionPool, check_file, model_files
from handlers.deliverables.rules import RuleError, parse_rule_line

RULES = parse_rule_line("直播系统压测报告: 并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿 / ≤ 1% 黄; "
                        "平均响应时间 ≤ 200ms 绿 / ≤ 500ms 黄")
ISSUE_RULES = parse_rule_line("直播系统压测报告: 并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿; "
                              "CPU峰值 截图 必填; 移动端并发 必填")


def load_test_png(rows: list[tuple[str, str]]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    family = cjk_font_family()
    assert family, "no CJK font (Debian fonts-noto-cjk)"
    fig = Figure(figsize=(4.8, 0.45 * (len(rows) + 2)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.85))
    ax.axis("off")
    table = ax.table(cellText=[("指标", "数值"), *rows], loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(14)
    table.scale(1, 1.6)
    for cell in table.get_celld().values():
        cell.get_text().set_fontfamily(family)
    fig.suptitle("直播系统压测报告", fontfamily=family, fontsize=14, y=0.99)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def locust_stats(requests: int, failures: int, avg_ms: float) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"])
    w.writerow(["GET", "/live/room", requests, failures, 120, avg_ms, 3, 900, 512, 800.5, 0.4,
                120, 130, 140, 150, 180, 220, 300, 400, 800, 900, 900])
    w.writerow(["", "Aggregated", requests, failures, 120, avg_ms, 3, 900, 512, 800.5, 0.4,
                120, 130, 140, 150, 180, 220, 300, 400, 800, 900, 900])
    return out.getvalue().encode()


def locust_history(users: list[int], requests: int, failures: int, avg_ms: float) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "95%", "99%",
                "Total Request Count", "Total Failure Count", "Total Median Response Time",
                "Total Average Response Time"])
    for i, u in enumerate(users):
        share = (i + 1) / len(users)
        w.writerow([1764650000 + 10 * i, u, "", "Aggregated", 800, 0.4, 120, 220, 400,
                    int(requests * share), int(failures * share), 120, avg_ms])
    return out.getvalue().encode()


def test_the_models_ship_inside_the_wheel() -> None:
    """Nothing is downloaded at run time: the three ONNX models are files of the installed package."""
    names = {p.name for p in model_files()}
    assert {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx"} <= names
    assert all(p.stat().st_size > 100_000 for p in model_files())


def test_a_screenshot_is_read_by_ocr_and_a_locust_csv_gives_the_same_light_without_it() -> None:
    png = load_test_png([("并发量", "4200"), ("错误率", "0.05%"), ("平均响应时间", "150 ms")])
    ex = check_file(png, "压测截图.png", RULES.fields, Limits())
    assert ex.method == "ocr" and not ex.problem
    got = {k: r.value for k, r in ex.readings.items()}
    assert got == {"并发量": 4200.0, "错误率": 0.05, "平均响应时间": 150.0}
    assert all(r.confidence > 0.8 for r in ex.readings.values())
    verdict = judge(RULES, ex, 0.8)
    lights = {f.label: f.light for f in verdict.fields}
    assert lights == {"并发量": "yellow", "错误率": "green", "平均响应时间": "green"}
    assert verdict.light == "yellow" and verdict.reason == "≥ 5000"

    # The same run as Locust wrote it: no OCR, the same figures and the same light.
    csv_ex = read_file(locust_history([1000, 3000, 4200, 4200], 200_000, 100, 150.0), "run_stats_history.csv",
                       RULES.fields, Limits())
    assert csv_ex.method == "locust"
    assert {k: r.value for k, r in csv_ex.readings.items()} == got
    assert judge(RULES, csv_ex, 0.8).light == verdict.light


def test_a_missing_required_field_is_yellow_que_xiang() -> None:
    # A Locust stats file has no CPU peak and no mobile figure: both required.
    ex = read_file(locust_stats(100_000, 20, 95.0), "run_stats.csv", ISSUE_RULES.fields, Limits())
    assert ex.method == "locust" and ex.readings["错误率"].value == pytest.approx(0.02)
    verdict = judge(ISSUE_RULES, ex, 0.8)
    by = {f.label: (f.light, f.note) for f in verdict.fields}
    assert by["CPU峰值"] == ("yellow", MISSING) and by["移动端并发"] == ("yellow", MISSING)
    assert by["错误率"] == ("green", "")
    assert by["并发量"] == ("none", "")  # not required, not in this file
    assert verdict.light == "yellow" and verdict.reason == MISSING


def test_ocr_alone_never_makes_a_light_red_the_owner_confirms_first() -> None:
    from handlers.deliverables.extract import Extraction, Reading

    ex = Extraction("png", "ocr", {"并发量": Reading("并发量", 1200, "1200", "ocr", 0.99, "并发量 1200"),
                                   "错误率": Reading("错误率", 0.05, "0.05%", "ocr", 0.55, "错误率 0.05%")})
    verdict = judge(RULES, ex, 0.8)
    by = {f.label: f for f in verdict.fields}
    assert (by["并发量"].light, by["并发量"].note, by["并发量"].confirm) == ("yellow", UNSURE, True)
    assert (by["错误率"].light, by["错误率"].note, by["错误率"].confirm) == ("yellow", UNSURE, True)
    assert verdict.light == "yellow" and verdict.reason == UNSURE
    # The owner says 1200 is right: now it is red, read and confirmed.
    fields = confirm(verdict.fields, "并发量", RULES)
    assert {f.label: f.light for f in fields}["并发量"] == "red"
    # The same 1200 in a machine-readable file is red at once.
    k6 = {"metrics": {"vus_max": {"type": "gauge", "values": {"value": 1200, "min": 1200, "max": 1200}},
                      "http_req_failed": {"values": {"rate": 0.0004}},
                      "http_req_duration": {"values": {"avg": 180.2, "p(95)": 400}}}}
    red = judge(RULES, read_file(json.dumps(k6).encode(), "summary.json", RULES.fields, Limits()), 0.8)
    assert red.light == "red" and {f.label: f.light for f in red.fields} == {
        "并发量": "red", "错误率": "green", "平均响应时间": "green"}


def test_jmeter_statistics_json() -> None:
    stats = {"Total": {"transaction": "Total", "sampleCount": 50000, "errorCount": 250, "errorPct": 0.5,
                       "meanResTime": 320.5, "pct2ResTime": 800, "throughput": 900.1},
             "GET /room": {"transaction": "GET /room", "sampleCount": 50000, "errorPct": 0.5}}
    ex = read_file(json.dumps(stats).encode(), "statistics.json", RULES.fields, Limits())
    assert ex.method == "jmeter"
    assert {k: r.value for k, r in ex.readings.items()} == {"错误率": 0.5, "平均响应时间": 320.5}
    assert judge(RULES, ex, 0.8).light == "yellow"


def test_xlsx_docx_and_text_pdf_tables() -> None:
    from docx import Document
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["压测结果", None])
    ws.append(["最大并发", 6000])
    ws.append(["错误率", "0.08%"])
    ws.append(["平均响应时间", "0.18s"])
    buf = io.BytesIO()
    wb.save(buf)
    x = read_file(buf.getvalue(), "结果.xlsx", RULES.fields, Limits())
    assert x.method == "xlsx" and {k: r.value for k, r in x.readings.items()} == {
        "并发量": 6000, "错误率": 0.08, "平均响应时间": pytest.approx(180.0)}
    assert judge(RULES, x, 0.8).light == "green"

    doc = Document()
    doc.add_paragraph("直播系统压测报告")
    t = doc.add_table(rows=2, cols=3)
    for i, (h, v) in enumerate([("并发用户数", "5,200"), ("失败率", "2%"), ("平均耗时", "90ms")]):
        t.cell(0, i).text, t.cell(1, i).text = h, v
    buf = io.BytesIO()
    doc.save(buf)
    d = read_file(buf.getvalue(), "报告.docx", RULES.fields, Limits())
    assert d.method == "docx" and {k: r.value for k, r in d.readings.items()} == {
        "并发量": 5200, "错误率": 2.0, "平均响应时间": 90.0}
    assert judge(RULES, d, 0.8).light == "red"  # read from a text layer, not OCR

    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2))
    FigureCanvasPdf(fig)
    fig.text(0.1, 0.7, "Concurrent users: 5100")
    fig.text(0.1, 0.5, "Error rate: 0.02%")
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    p = read_file(buf.getvalue(), "report.pdf", RULES.fields, Limits())
    assert p.method == "pdf" and {k: r.value for k, r in p.readings.items()} == {"并发量": 5100, "错误率": 0.02}


def test_caps_and_unreadable_files_give_a_reason_and_a_yellow_light_never_a_crash() -> None:
    from PIL import Image

    limits = Limits(max_bytes=50_000, max_pixels=100_000, max_pages=1)
    big = read_file(b"x" * 60_000, "a.csv", RULES.fields, limits)
    assert big.problem == "too_big"
    img = Image.new("RGB", (400, 400), "white")  # 160 000 pixels
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    px = read_file(buf.getvalue(), "a.png", RULES.fields, limits)
    assert px.problem == "too_many_pixels"
    assert read_file(b"\x89PNG\r\n\x1a\nbroken", "b.png", RULES.fields, limits).problem == "unreadable"
    assert read_file(b"PK\x03\x04junk", "c.xlsx", RULES.fields, limits).problem == "unreadable"
    assert read_file(b"%PDF-1.4 junk", "d.pdf", RULES.fields, limits).problem == "unreadable"
    assert read_file(b'{"hello": 1}', "e.json", RULES.fields, limits).problem == "unreadable"
    assert read_file(b"\x00\x01\x02\xff" * 10, "f.bin", RULES.fields, limits).problem == "unsupported"
    for ex in (big, px):
        verdict = judge(ISSUE_RULES, ex, 0.8)
        assert verdict.light == "yellow" and verdict.reason == UNREAD


def test_rule_lines_that_cannot_be_read_fail_with_the_template_name() -> None:
    for bad in ("报告: 并发量 ≥ 5000 蓝", "报告: 并发量 ≥ 3000 黄", "报告: 错误率 ≤ 1% 绿 / ≤ 5ms 黄",
                "报告 并发量 ≥ 5000 绿", "报告: 并发量 ≥ 5000 绿; 并发量 必填", "报告: X pattern=(a)(b)"):
        with pytest.raises(RuleError):
            parse_rule_line(bad)
    rules = parse_rule_line("报告：峰值QPS(QPS峰值|peak qps) ≥ 1万 绿 必填；版本 pattern=版本号[:：]\\s*(\\d+) 必填")
    qps, version = rules.fields
    assert qps.green is not None and qps.green.value == 10000 and qps.required and "qps峰值" in qps.names()
    assert version.pattern and version.required
    ex = read_file("peak QPS 12000\n版本号：7".encode(), "notes.txt", rules.fields, Limits())
    assert {k: r.value for k, r in ex.readings.items()} == {"峰值QPS": 12000, "版本": 7}


async def test_the_pool_times_out_and_recovers() -> None:
    pool = ExtractionPool(timeout=0.01)
    try:
        png = load_test_png([("并发量", "4200")])
        slow = await pool.check(png, "a.png", RULES.fields, Limits())
        assert slow.problem == "timeout"
        pool.timeout = 120
        ok = await pool.check(locust_stats(1000, 0, 50), "x_stats.csv", RULES.fields, Limits())
        assert ok.method == "locust" and ok.readings["错误率"].value == 0
    finally:
        pool.close()


def test_the_section_reads_templates_and_refuses_a_bad_rule_with_its_dotted_key() -> None:
    from bot.core.config import ConfigError, parse_config
    from handlers.deliverables.rules import template_for
    from handlers.deliverables.settings import DeliverableSettings

    base = {"database": {"url": "sqlite+aiosqlite:///x.db"}}
    cfg = parse_config({**base, "tenants": [{"key": "acme", "name": "Acme", "deliverables": {
        "templates": {"直播系统压测报告": "并发量 ≥ 5000 绿 / ≥ 3000 黄; 移动端并发 必填"},
        "synonyms": {"移动端并发": ["App并发"]}, "max_file_mb": 1}}]})
    s = DeliverableSettings.of(cfg.tenant("acme"))
    rules = template_for("直播系统压测报告：CPU峰值截图、错误日志摘要", s.rules)
    assert rules is not None and "app并发" in rules.fields[1].names()
    assert s.limits().max_bytes == 1024 * 1024
    assert template_for("周报", s.rules) is None
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "tenants": [{"key": "acme", "name": "Acme", "deliverables": {
            "templates": {"压测报告": "并发量 ≥ 5000 蓝"}}}]})
    assert "deliverables.templates" in str(err.value) and "压测报告" in str(err.value)


def test_what_the_card_and_the_owner_are_told() -> None:
    from handlers.deliverables.extract import Extraction, Reading
    from handlers.deliverables.texts import problem_reply, question, summary, values_line

    ex = read_file(locust_stats(100_000, 20, 95.0), "run_stats.csv", ISSUE_RULES.fields, Limits())
    v = judge(ISSUE_RULES, ex, 0.8)
    assert summary("zh", v) == "🟡 黄灯（缺项：CPU峰值、移动端并发）"
    assert summary("en", v) == "🟡 yellow (missing: CPU峰值, 移动端并发)"
    assert values_line("zh", v.fields) == "并发量 — · 错误率 0.02% 🟢 · CPU峰值 — 🟡 · 移动端并发 — 🟡"
    ocr = Extraction("png", "ocr", {"CPU峰值": Reading("CPU峰值", 87.5, "87.5%", "ocr", 0.6, "CPU峰值 87.5%")})
    unsure = judge(ISSUE_RULES, ocr, 0.8)
    asked = [question("zh", f) for f in unsure.fields if f.confirm]
    assert asked == ["识别到 CPU峰值 87.5%，对吗？（回复「对」或「不对」）"]
    red = judge(RULES, read_file(locust_history([1000], 1000, 50, 90.0), "h.csv", RULES.fields, Limits()), 0.8)
    assert summary("zh", red) == "🔴 红灯（并发量 1000（要求 ≥ 3000）、错误率 5%（要求 ≤ 1%））"
    assert problem_reply("zh", "too_big", "30 MB", 20) == "文件太大（30 MB），没有读取；请发送不超过 20 MB 的文件。"


def test_the_owners_typed_answer_to_the_ocr_question() -> None:
    from handlers.deliverables.answers import parse_answer

    cpu = ISSUE_RULES.fields[2]
    err = ISSUE_RULES.fields[1]
    for text in ("对", "对的。", "是的！", "👍", "OK", "ｏｋ", "对 谢谢"):
        assert parse_answer(text, cpu) == "right", text
    for text in ("不对", "错了", "no", "不是"):
        assert parse_answer(text, cpu) == "wrong", text
    assert parse_answer("不对，应该是 85.2%", cpu) == 85.2
    assert parse_answer("０.０８％", err) == 0.08
    assert parse_answer("200ms", err) is None  # a time is no error rate
    for text in ("你好", "谢谢", "", "任务 T12"):
        assert parse_answer(text, cpu) is None, text
