"""OCR with rapidocr-onnxruntime, in a worker process, with a timeout; never on the event loop.

The detection, direction and recognition models ship inside the rapidocr-onnxruntime wheel
(`rapidocr_onnxruntime/models/*.onnx`, paths relative to the package in its config.yaml), so
nothing is downloaded at run time. `model_files()` names them; a test checks they are there.

`check_file` is what runs in the pool: the whole extraction of one file (documents as well as
images: a hostile or huge file then costs a worker process, not the bot). The pool has one worker
by default; a file that takes longer than the timeout has its worker killed and the pool renewed.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from pathlib import Path
from typing import Any

from handlers.deliverables.extract import Extraction, Limits, Line, read_file
from handlers.deliverables.rules import FieldRule

log = logging.getLogger(__name__)

_ENGINE: Any = None
ROW_TOLERANCE = 0.6  # boxes whose vertical centres are closer than this share of their height are one row


def model_files() -> list[Path]:
    import rapidocr_onnxruntime

    return sorted((Path(rapidocr_onnxruntime.__file__).parent / "models").glob("*.onnx"))


def _engine() -> Any:
    global _ENGINE
    if _ENGINE is None:
        from rapidocr_onnxruntime import RapidOCR

        # Two threads: the machine's other work (the bot, the database) keeps a core.
        _ENGINE = RapidOCR(intra_op_num_threads=2, inter_op_num_threads=1)
    return _ENGINE


def rows_of(boxes: list[tuple[list[list[float]], str, float]]) -> list[Line]:
    """OCR boxes grouped into rows (a table's label and value side by side), left to right."""
    items = []
    for box, text, score in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text, float(score)))
    items.sort()
    rows: list[list[tuple[float, float, float, str, float]]] = []
    for it in items:
        if rows:
            last = rows[-1]
            cy = sum(i[0] for i in last) / len(last)
            h = max(i[1] for i in last)
            if abs(it[0] - cy) <= ROW_TOLERANCE * max(h, it[1]):
                last.append(it)
                continue
        rows.append([it])
    lines = []
    for row in rows:
        row.sort(key=lambda i: i[2])
        text, scores = "", []
        for _, _, _, t, s in row:
            if text:
                text += "  "
                scores += [1.0, 1.0]
            text += t
            scores += [s] * len(t)
        lines.append(Line(text, scores))
    return lines


def ocr_image(image: Any) -> list[Line]:
    import numpy as np

    result, _ = _engine()(np.asarray(image)[:, :, ::-1])  # RGB → the BGR rapidocr expects
    return rows_of(result or [])


def check_file(data: bytes, filename: str, rules: tuple[FieldRule, ...], limits: Limits) -> Extraction:
    return read_file(data, filename, rules, limits, ocr=ocr_image)


class ExtractionPool:
    """A process pool for `check_file` with a timeout per file."""

    def __init__(self, workers: int = 1, timeout: float = 60.0) -> None:
        self.workers, self.timeout = workers, timeout
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _get(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process with an event loop and database connections is not safe.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def check(self, data: bytes, filename: str, rules: tuple[FieldRule, ...], limits: Limits) -> Extraction:
        loop = asyncio.get_running_loop()
        pool = self._get()
        fut = loop.run_in_executor(pool, check_file, data, filename, rules, limits)
        try:
            return await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            log.warning("deliverable %s: extraction over %.0f s, worker killed", filename, self.timeout)
            self._kill()
            return Extraction("", problem="timeout", detail=f"{self.timeout:g} s")
        except concurrent.futures.process.BrokenProcessPool:
            log.warning("deliverable %s: the extraction worker died", filename)
            self._kill()
            return Extraction("", problem="unreadable", detail="the reading process stopped")

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()  # a stuck OCR run ignores cancellation
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
