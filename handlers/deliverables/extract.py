"""Read the figures of a deliverable file, machine-readable outputs first and OCR last.

    JMeter statistics.json · Locust *_stats.csv / *_stats_history.csv · k6 summary JSON · XLSX
    → text-layer PDF (pdfplumber) and DOCX tables (python-docx) → OCR of an image (rapidocr)

`read_file` is what the process pool runs: it gets the bytes, the file name, the template's field
rules and the caps, and returns an `Extraction` (plain data, so it crosses the process boundary).
A file over a cap, of an unknown kind or that cannot be read is an `Extraction` with a `problem`,
never an exception: the reply says what is wrong and the light is yellow.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterable

from handlers.deliverables.rules import BUILTIN_SYNONYMS, FieldRule, fold_label, unit_of


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 30
    max_pixels: int = 25_000_000
    max_rows: int = 20_000
    ocr_pages: int = 3  # pages of a PDF without a text layer that are read by OCR


@dataclass
class Reading:
    field: str  # the rule's label
    value: float  # in the rule's unit
    raw: str  # as the file has it: "87.5%"
    method: str  # jmeter | locust | k6 | xlsx | pdf | docx | csv | text | ocr
    confidence: float = 1.0  # OCR's score for the label and the value; 1.0 for everything else
    snippet: str = ""  # the line or cell it came from


@dataclass
class Extraction:
    kind: str  # what the file was taken for: png, jpeg, pdf, docx, xlsx, jmeter, locust, k6, csv, text
    method: str = ""  # how the figures were read (the kind, or ocr)
    readings: dict[str, Reading] = field(default_factory=dict)
    problem: str = ""  # too_big | too_many_pages | too_many_pixels | unreadable | unsupported | timeout
    detail: str = ""


class Unreadable(Exception):
    pass


class OverCap(Exception):
    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem, self.detail = problem, detail


# -- numbers and units ----------------------------------------------------------------------
VALUE = re.compile(r"(?<![\w.])([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*"
                    r"(%|％|ms|毫秒|s|秒|sec|mb|gb|kb|qps|tps|rps|/s|次/秒|万|k|个|人|次)?(?![a-z])", re.I)


def convert(value: float, unit: str, rule: FieldRule) -> float | None:
    """`value` written in `unit` in the rule's unit; None when they measure different things."""
    u, factor = unit_of(unit)
    if u == "" and factor != 1.0:  # 万, k: a multiplier, not a unit
        return value * factor
    if not rule.unit or not u:
        return value * factor
    ru, rf = unit_of(rule.unit)
    if u != ru:
        return None
    return value * factor / rf


# -- text lines → readings ------------------------------------------------------------------------
@dataclass
class Line:
    text: str
    scores: list[float] | None = None  # per character (OCR); None: exact text

    def score(self, start: int, end: int) -> float:
        if self.scores is None:
            return 1.0
        part = [s for ch, s in zip(self.text[start:end], self.scores[start:end]) if not ch.isspace()]
        return min(part) if part else 1.0


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """The folded text and, per folded character, its index in `text`."""
    out, idx = [], []
    for i, ch in enumerate(text):
        f = fold_label(ch)
        for c in f:
            out.append(c)
            idx.append(i)
    return "".join(out), idx


def _labels_in(line: str, rules: Iterable[FieldRule]) -> list[tuple[int, int, FieldRule]]:
    """Where each field's label stands in `line` (original indices); a longer label wins an overlap."""
    folded, idx = _folded_with_map(line)
    found: list[tuple[int, int, FieldRule]] = []
    for rule in rules:
        for name in rule.names():
            start = folded.find(name)
            while start >= 0:
                found.append((idx[start], idx[start + len(name) - 1] + 1, rule))
                start = folded.find(name, start + 1)
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    kept: list[tuple[int, int, FieldRule]] = []
    for f in found:
        if all(f[1] <= k[0] or f[0] >= k[1] for k in kept):
            kept.append(f)
    kept.sort()
    return kept


def readings_from_lines(lines: list[Line], rules: tuple[FieldRule, ...], method: str) -> dict[str, Reading]:
    """`并发量 4200`, `错误率：0.05%`, `| 并发量 | 4200 |`; a header row of labels over a row of values."""
    out: dict[str, Reading] = {}

    def put(rule: FieldRule, line: Line, m: re.Match[str], start: int, conf_from: int) -> None:
        raw = m.group(0).strip()
        value = convert(float(m.group(1).replace(",", "")), m.group(2) or "", rule)
        if value is None or rule.label in out:
            return
        out[rule.label] = Reading(rule.label, value, raw, method, line.score(conf_from, m.end()),
                                  line.text.strip()[:120])

    for i, line in enumerate(lines):
        labels = _labels_in(line.text, rules)
        if not labels:
            continue
        values_here = [m for m in VALUE.finditer(line.text) if not any(a <= m.start() < b for a, b, _ in labels)]
        if len(labels) > 1 and not values_here and i + 1 < len(lines):
            # A header row: the values stand in the next row, in the same order.
            below = lines[i + 1]
            vals = list(VALUE.finditer(below.text))
            if len(vals) == len(labels) and not _labels_in(below.text, rules):
                for (a, b, rule), cell in zip(labels, vals):
                    raw = cell.group(0).strip()
                    value = convert(float(cell.group(1).replace(",", "")), cell.group(2) or "", rule)
                    if value is not None and rule.label not in out:
                        conf = min(line.score(a, b), below.score(cell.start(), cell.end()))
                        out[rule.label] = Reading(rule.label, value, raw, method, conf,
                                                  f"{line.text.strip()[:60]} / {below.text.strip()[:60]}")
                continue
        for j, (a, b, rule) in enumerate(labels):
            end = labels[j + 1][0] if j + 1 < len(labels) else len(line.text)
            m = VALUE.search(line.text, b, end)
            if m is not None:
                put(rule, line, m, a, a)
            elif j + 1 == len(labels) and i + 1 < len(lines) and not _labels_in(lines[i + 1].text, rules):
                # The value on the line below the label (a form laid out in two rows).
                nxt = lines[i + 1]
                m = VALUE.search(nxt.text)
                if m is not None:
                    value = convert(float(m.group(1).replace(",", "")), m.group(2) or "", rule)
                    if value is not None and rule.label not in out:
                        out[rule.label] = Reading(rule.label, value, m.group(0).strip(), method,
                                                  min(line.score(a, b), nxt.score(m.start(), m.end())),
                                                  f"{line.text.strip()[:60]} / {nxt.text.strip()[:60]}")
    text = "\n".join(line.text for line in lines)
    for rule in rules:
        if rule.pattern and rule.label not in out:
            m = re.search(rule.pattern, text)
            if m is not None:
                vm = VALUE.search(m.group(1))
                if vm is not None:
                    value = convert(float(vm.group(1).replace(",", "")), vm.group(2) or "", rule)
                    if value is not None:
                        out[rule.label] = Reading(rule.label, value, m.group(1).strip(), method,
                                                  1.0 if method != "ocr" else 0.0, m.group(0).strip()[:120])
    return out


# -- machine-readable outputs ------------------------------------------------------------------------
def _metric_readings(metrics: dict[str, tuple[float, str, str]], rules: tuple[FieldRule, ...],
                     method: str) -> dict[str, Reading]:
    """Canonical metrics (keys of BUILTIN_SYNONYMS) → readings of the rules that mean them."""
    out: dict[str, Reading] = {}
    for rule in rules:
        names = set(rule.names())
        for metric, (value, unit, snippet) in metrics.items():
            known = {fold_label(metric), *(fold_label(s) for s in BUILTIN_SYNONYMS.get(metric, ()))}
            if names & known:
                v = convert(value, unit, rule)
                if v is not None:
                    out[rule.label] = Reading(rule.label, v, f"{value:g}{unit}", method, 1.0, snippet)
                    break
    return out


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def jmeter(doc: dict[str, Any]) -> dict[str, tuple[float, str, str]]:
    """JMeter's HTML-report statistics.json: {"Total": {sampleCount, errorPct, meanResTime, …}, …}."""
    total = doc.get("Total")
    if not isinstance(total, dict):
        raise Unreadable("statistics.json without Total")
    snip = "statistics.json Total"
    pairs = {"错误率": ("errorPct", "%"), "平均响应时间": ("meanResTime", "ms"), "P95响应时间": ("pct2ResTime", "ms"),
             "P99响应时间": ("pct3ResTime", "ms"), "吞吐量": ("throughput", "/s"), "请求总数": ("sampleCount", "")}
    out = {}
    for metric, (key, unit) in pairs.items():
        v = _num(total.get(key))
        if v is not None:
            out[metric] = (v, unit, f"{snip} {key}={total.get(key)}")
    return out


def k6(doc: dict[str, Any]) -> dict[str, tuple[float, str, str]]:
    """k6's end-of-test summary (handleSummary data, `values` per metric) or `--summary-export` (flat)."""
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise Unreadable("k6 summary without metrics")

    def val(name: str, *keys: str) -> tuple[float, str] | None:
        m = metrics.get(name)
        if not isinstance(m, dict):
            return None
        values = m.get("values")
        src: dict[str, Any] = values if isinstance(values, dict) else m
        for k in keys:
            v = _num(src.get(k))
            if v is not None:
                return v, f"{name}.{k}={src.get(k)}"
        return None

    out: dict[str, tuple[float, str, str]] = {}
    for metric, name, keys, unit, factor in (
            ("并发量", "vus_max", ("max", "value"), "", 1.0),
            ("错误率", "http_req_failed", ("rate", "value"), "%", 100.0),
            ("平均响应时间", "http_req_duration", ("avg",), "ms", 1.0),
            ("P95响应时间", "http_req_duration", ("p(95)",), "ms", 1.0),
            ("P99响应时间", "http_req_duration", ("p(99)",), "ms", 1.0),
            ("吞吐量", "http_reqs", ("rate",), "/s", 1.0),
            ("请求总数", "http_reqs", ("count",), "", 1.0)):
        got = val(name, *keys)
        if got is not None:
            out[metric] = (round(got[0] * factor, 6), unit, f"k6 {got[1]}")
    return out


def locust(text: str) -> dict[str, tuple[float, str, str]]:
    """Locust's --csv output: *_stats.csv (an Aggregated row) or *_stats_history.csv (User Count over time)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise Unreadable("empty Locust CSV")
    agg = [r for r in rows if (r.get("Name") or "").strip() == "Aggregated"] or rows[-1:]
    last = agg[-1]
    out: dict[str, tuple[float, str, str]] = {}
    history = "User Count" in last
    req = _num(last.get("Total Request Count" if history else "Request Count"))
    fail = _num(last.get("Total Failure Count" if history else "Failure Count"))
    if req:
        out["请求总数"] = (req, "", f"Aggregated Request Count={req:g}")
        if fail is not None:
            out["错误率"] = (round(fail / req * 100, 6), "%", f"Aggregated Failure Count={fail:g} / Request Count={req:g}")
    for metric, col, unit in (("平均响应时间", "Total Average Response Time" if history else "Average Response Time", "ms"),
                              ("P95响应时间", "95%", "ms"), ("P99响应时间", "99%", "ms"),
                              ("吞吐量", "Requests/s", "/s")):
        v = _num(last.get(col))
        if v is not None:
            out[metric] = (v, unit, f"Aggregated {col}={last.get(col)}")
    if history:
        users = [u for u in (_num(r.get("User Count")) for r in rows) if u is not None]
        if users:
            out["并发量"] = (max(users), "", f"max User Count={max(users):g}")
    return out


# -- documents -------------------------------------------------------------------------------------------
def _zip_check(data: bytes, limits: Limits) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Unreadable("not a zip container") from None
    if sum(i.file_size for i in zf.infolist()) > limits.max_bytes * 10:
        raise OverCap("too_big", "unpacked size over the cap")
    return zf


def xlsx_lines(data: bytes, limits: Limits) -> list[Line]:
    from openpyxl import load_workbook

    _zip_check(data, limits)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise Unreadable(f"workbook: {type(exc).__name__}") from None
    lines: list[Line] = []
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            cells = [_cell(c) for c in row if c is not None and str(c).strip()]
            if cells:
                lines.append(Line(" | ".join(cells)))
            if len(lines) > limits.max_rows:
                raise OverCap("too_many_pages", f"more than {limits.max_rows} rows")
    wb.close()
    return lines


def _cell(c: Any) -> str:
    if isinstance(c, float):
        return f"{c:.6g}"
    return str(c).strip()


def docx_lines(data: bytes, limits: Limits) -> list[Line]:
    import docx

    _zip_check(data, limits)
    try:
        doc = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise Unreadable(f"document: {type(exc).__name__}") from None
    lines = [Line(p.text) for p in doc.paragraphs if p.text.strip()]
    for table in doc.tables:
        for row in table.rows:
            cells = list(dict.fromkeys(c.text.strip() for c in row.cells))  # merged cells repeat
            if any(cells):
                lines.append(Line(" | ".join(cells)))
    return lines


def pdf_lines(data: bytes, limits: Limits) -> tuple[list[Line], list[Any]]:
    """Text lines and table rows of a PDF; the page images to OCR when it has no text layer."""
    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:
        raise Unreadable(f"pdf: {type(exc).__name__}") from None
    with pdf:
        if len(pdf.pages) > limits.max_pages:
            raise OverCap("too_many_pages", f"{len(pdf.pages)} pages > {limits.max_pages}")
        lines: list[Line] = []
        for page in pdf.pages:
            for table in page.extract_tables():
                for row in table:
                    cells = [str(c).strip() for c in row if c is not None and str(c).strip()]
                    if cells:
                        lines.append(Line(" | ".join(cells)))
            text = page.extract_text() or ""
            lines += [Line(t) for t in text.splitlines() if t.strip()]
        if lines:
            return lines, []
        return [], [p.to_image(resolution=110).original for p in pdf.pages[:limits.ocr_pages]]


# -- the entry point --------------------------------------------------------------------------------------
def sniff(data: bytes, filename: str) -> str:
    name = filename.casefold()
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"PK"):
        if name.endswith((".xlsx", ".xlsm")):
            return "xlsx"
        if name.endswith(".docx"):
            return "docx"
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return "unknown"
        return "xlsx" if any(n.startswith("xl/") for n in names) else "docx" if any(
            n.startswith("word/") for n in names) else "unknown"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return "json"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    if name.endswith(".csv") or b"Request Count" in head or b"," in head.split(b"\n", 1)[0]:
        return "csv"
    return "text"


def read_file(data: bytes, filename: str, rules: tuple[FieldRule, ...], limits: Limits,
              ocr: Any = None) -> Extraction:
    """Everything the check reads from one file. `ocr(image) -> list[Line]` reads an image."""
    kind = sniff(data, filename)
    if len(data) > limits.max_bytes:
        return Extraction(kind, problem="too_big", detail=f"{len(data)} bytes > {limits.max_bytes}")
    try:
        if kind == "json":
            try:
                doc = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError):
                raise Unreadable("not JSON") from None
            if isinstance(doc, dict) and "metrics" in doc:
                return Extraction("k6", "k6", _metric_readings(k6(doc), rules, "k6"))
            if isinstance(doc, dict) and "Total" in doc:
                return Extraction("jmeter", "jmeter", _metric_readings(jmeter(doc), rules, "jmeter"))
            raise Unreadable("JSON that is neither a JMeter statistics.json nor a k6 summary")
        if kind == "csv":
            text = data.decode("utf-8-sig")
            header = text.split("\n", 1)[0]
            if "Request Count" in header and "Name" in header:
                return Extraction("locust", "locust", _metric_readings(locust(text), rules, "locust"))
            return Extraction("csv", "csv", readings_from_lines(
                [Line(" | ".join(r)) for r in csv.reader(io.StringIO(text))][: limits.max_rows], rules, "csv"))
        if kind == "text":
            return Extraction("text", "text", readings_from_lines(
                [Line(t) for t in data.decode("utf-8").splitlines()], rules, "text"))
        if kind == "xlsx":
            return Extraction("xlsx", "xlsx", readings_from_lines(xlsx_lines(data, limits), rules, "xlsx"))
        if kind == "docx":
            return Extraction("docx", "docx", readings_from_lines(docx_lines(data, limits), rules, "docx"))
        if kind == "pdf":
            lines, images = pdf_lines(data, limits)
            if lines:
                return Extraction("pdf", "pdf", readings_from_lines(lines, rules, "pdf"))
            if ocr is None:
                raise Unreadable("a PDF without a text layer")
            found: dict[str, Reading] = {}
            for image in images:
                for k, v in readings_from_lines(ocr(image), rules, "ocr").items():
                    found.setdefault(k, v)
            return Extraction("pdf", "ocr", found)
        if kind in ("png", "jpeg"):
            image = open_image(data, limits)
            if ocr is None:
                raise Unreadable("no OCR available")
            return Extraction(kind, "ocr", readings_from_lines(ocr(image), rules, "ocr"))
        return Extraction(kind, problem="unsupported", detail=filename or kind)
    except OverCap as exc:
        return Extraction(kind, problem=exc.problem, detail=exc.detail)
    except Unreadable as exc:
        return Extraction(kind, problem="unreadable", detail=str(exc))
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        return Extraction(kind, problem="unreadable", detail=f"{type(exc).__name__}: {exc}"[:200])


def open_image(data: bytes, limits: Limits) -> Any:
    """The image, refused over the pixel cap before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise Unreadable("not an image") from None
    w, h = img.size
    if w * h > limits.max_pixels:
        raise OverCap("too_many_pixels", f"{w}×{h} > {limits.max_pixels} pixels")
    try:
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Unreadable(f"image: {type(exc).__name__}") from None
    return img.convert("RGB")
