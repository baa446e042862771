"""The intake worker: fetch the files people sent in chat and read them, outside any handler's transaction.

The chat handler (handlers/deliverable_intake.py) stores an intake row in the inbox event's transaction
and answers at once. This worker claims pending rows, downloads the bytes through the platform's adapter
(capped: nothing past the size cap is read) and runs the extraction in the process pool (OCR never on the
event loop). It writes nothing of the person's own: what was read goes back into the inbox as an event
of theirs (one per intake), and the dispatcher records the light, the replies, the task card and the
question in the person's order, so a message they send meanwhile and the outcome never write their
conversation at the same time. A crash before that event is stored leaves the intake claimed; the claim
runs out and the file is read again (the check is recorded only by the outcome's handler, once).
A platform failure is retried later; after MAX_ATTEMPTS the person is told to send the file again.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.adapter import Download
from bot.upload import upload_path
from bot.core.clock import utcnow
from bot.core.events import Event
from handlers.context import Context
from handlers.deliverable_intake import outcome_event, rules_of
from handlers.deliverables.extract import Extraction
from handlers.deliverables.ocr import ExtractionPool
from handlers.deliverables.settings import DeliverableSettings
from store.deliverables import MAX_ATTEMPTS, claim_intakes, finish_intake, queue_outcome, retry_intake
from store.models import DeliverableIntake, Task

log = logging.getLogger(__name__)


class IntakeWorker:
    def __init__(self, runtime: Any, pool: ExtractionPool | None = None, *, idle: float = 1.0) -> None:
        self.runtime = runtime
        self.pool = pool or ExtractionPool()
        self.idle = idle
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="deliverable-intake")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self.pool.close()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                n = await self.run_once()
            except Exception:
                log.exception("deliverable intake step failed")
                n = 0
            if not n:
                await asyncio.sleep(self.idle)

    async def run_once(self) -> int:
        """Read every claimable file once; the number handled."""
        rows = await claim_intakes(self.runtime.db, utcnow())
        for row in rows:
            await self._one(row)
        return len(rows)

    async def _one(self, row: DeliverableIntake) -> None:
        tenant = self.runtime.tenant(row.tenant)
        adapter = self.runtime.adapters.get(row.platform)
        event = Event.from_dict(row.event)
        ref = event.values.get("ref") if isinstance(event.values.get("ref"), dict) else {}
        upload = str((ref or {}).get("upload") or "")
        if tenant is None or (adapter is None and not upload):
            await self._give_up(row, f"no tenant or adapter for {row.tenant}/{row.platform}", None)
            return
        settings = DeliverableSettings.of(tenant)
        limits = settings.limits()
        got: Download
        if upload:  # through the upload link: the bytes are already here (bot/upload.py)
            got = await asyncio.to_thread(_read_upload, self.runtime.config.server.data_dir, upload, limits.max_bytes)
        else:
            assert adapter is not None
            got = await adapter.download(tenant, {k: str(v) for k, v in (ref or {}).items()}, limits.max_bytes)
        if got.problem == "failed":
            if row.attempts < MAX_ATTEMPTS:
                await retry_intake(self.runtime.db, row.id or 0, utcnow(), got.retry_after or 30.0, got.detail)
                return
            await self._give_up(row, got.detail, "failed")
            return
        if got.problem == "gone":
            await self._give_up(row, got.detail, "gone")
            return
        if got.problem == "too_big":
            extraction = Extraction("", problem="too_big", detail=got.detail)
        else:
            filename = row.filename or got.filename
            rules = await self._rules(row, tenant)
            if rules is None:
                extraction = Extraction("", problem="unsupported", detail="no field rules for the task")
            else:
                pool = self.pool
                pool.timeout = settings.ocr_timeout_seconds
                extraction = await pool.check(got.content, filename, rules.fields, limits)
            if not row.filename and got.filename:
                row.filename = got.filename[:200]
        await self._queue(row, extraction)
        if upload:  # read and handed on: the copy is no longer needed (the check keeps the figures)
            await asyncio.to_thread(_remove_upload, self.runtime.config.server.data_dir, upload)

    async def _queue(self, row: DeliverableIntake, extraction: Extraction | None, problem: str = "",
                     detail: str = "") -> None:
        # False: another reader took the file over after our claim ran out, or queued it already.
        if await queue_outcome(self.runtime.db, row, outcome_event(row, extraction, problem, detail), utcnow()):
            self.runtime.wake_inbox()

    async def _rules(self, row: DeliverableIntake, tenant: Any) -> Any:
        async with self.runtime.db.session() as s:
            task = await s.get(Task, row.task_id) if row.task_id is not None else None
            if task is None or task.tenant != row.tenant:
                return None
            ctx = Context(session=s, tenant=tenant, now=self.runtime.now_for(tenant.key),
                          event=Event.from_dict(row.event))
            return rules_of(ctx, task)

    async def _give_up(self, row: DeliverableIntake, detail: str, problem: str | None) -> None:
        """The file cannot be had from the platform: the person is told through the inbox (nothing was
        read, no light); without a tenant or adapter there is nobody to tell it through."""
        log.warning("deliverable intake %s of %s given up: %s", row.id, row.tenant, detail)
        if problem is not None:
            await self._queue(row, None, problem, detail)
            return
        async with self.runtime.db.transaction() as s:
            fresh = await s.get(DeliverableIntake, row.id)
            if fresh is not None:
                finish_intake(fresh, "failed", error=detail)


def _read_upload(data_dir: str, name: str, cap: int) -> Download:
    try:
        path = upload_path(data_dir, name)
        with path.open("rb") as f:
            content = f.read(cap + 1)
    except (OSError, ValueError) as exc:
        return Download(problem="gone", detail=f"the uploaded file is gone ({type(exc).__name__})")
    if len(content) > cap:
        return Download(problem="too_big", detail=f"over {cap} bytes")
    return Download(content=content)


def _remove_upload(data_dir: str, name: str) -> None:
    try:
        upload_path(data_dir, name).unlink()
    except (OSError, ValueError):
        pass
