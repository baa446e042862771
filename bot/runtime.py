"""The running bot: inbox → dispatcher → handlers → outbox → relay → adapters.

One Runtime per process. Several processes may share one PostgreSQL database:
the inbox and outbox are claimed row by row (SKIP LOCKED) and scheduled sends
are claimed by unique keys, so nothing is handled or sent twice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update

from bot.adapter import Adapter, OutboundItem, SendResult
from bot.core.clock import Clock, utcnow
from bot.core.config import Config, TenantConfig
from bot.core.events import Event
from cards.model import Message
from bot.inbox_writer import InboxWriter
from bot.metrics import Metrics
from handlers.context import Context
from handlers.router import Router
from handlers.routes import build_router
from schedules.jobs import all_jobs
from schedules.registry import JobEnv, JobRegistry
from store import inbox, outbox
from store.db import Database, is_transient
from store.models import Conversation, Employee, InboxEvent, OutboxMessage

log = logging.getLogger(__name__)

# Rows handed to an adapter at once: a crash mid-send can repeat at most this many
# (DingTalk has no idempotency key), and it is one full DingTalk batchSend of 20.
RELAY_CHUNK = 20
# Events of different people handled in one transaction: one commit for the batch instead of
# one per event. Bounded in time as well, because on SQLite the batch holds the one writer
# that storing callbacks (the acknowledgement) also needs.
BATCH_EVENTS = 32
BATCH_SECONDS = 0.05
# On PostgreSQL a wave of different people is handled in this many transactions side by side.
PG_LANES = 4


def _log_job_failure(job: str, tenant: str) -> None:
    log.exception("job %s failed for tenant %s", job, tenant)


class Runtime:
    def __init__(self, config: Config, db: Database, clock: Clock | None = None, router: Router | None = None,
                 jobs: JobRegistry | None = None) -> None:
        self.config = config
        self.db = db
        # The real clock (a FrozenClock in tests). Platform callbacks, replay windows and delivery
        # always use it; the console's clock panel moves console tenants only, by an offset each.
        self.clock = clock or Clock()
        self._offsets: dict[str, timedelta] = {}
        self.router = router if router is not None else build_router()
        self.jobs = jobs if jobs is not None else all_jobs()
        self.adapters: dict[str, Adapter] = {}
        self.instance = f"{os.uname().nodename}:{os.getpid()}"
        self._inbox_wake = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self.stats: dict[str, int] = defaultdict(int)
        self.metrics = Metrics()
        self.inbox_writer = InboxWriter(db)
        self.job_env = JobEnv(db=db, data_dir=config.server.data_dir, on_run=self._count_job_run)

    def _count_job_run(self, job: str, sent: int) -> None:
        self.metrics.job_runs.labels(job).inc()
        self.metrics.job_sends.labels(job).inc(sent)

    async def tick(self, now: datetime) -> int:
        """Run every job that is due at `now` (what the ticker does on each beat)."""
        return await self.jobs.tick(self.job_env, self.config.tenants, now, _log_job_failure, self.offset)

    async def run_job(self, name: str, tenant: TenantConfig, at: datetime) -> int:
        """Run a job by hand (console, CLI, tests) as of `at`; the same exactly-once claims apply."""
        return await self.jobs.run(self.job_env, name, tenant, at)

    # -- wiring --------------------------------------------------------------
    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter

    def tenant(self, key: str) -> TenantConfig | None:
        for t in self.config.tenants:
            if t.key == key:
                return t
        return None

    # -- time ----------------------------------------------------------------
    def now_for(self, tenant_key: str) -> datetime:
        """The tenant's "now": the real clock, moved by the console's offset for a console tenant."""
        return self.clock.now() + self._offsets.get(tenant_key, timedelta(0))

    def offset(self, tenant_key: str) -> timedelta:
        return self._offsets.get(tenant_key, timedelta(0))

    def simulate(self, tenant_key: str, when: datetime | None) -> None:
        """Move one tenant's clock to `when` (and keep it ticking), or back to real time with None."""
        if when is None:
            self._offsets.pop(tenant_key, None)
        else:
            self._offsets[tenant_key] = when - self.clock.now()

    def simulated(self, tenant_key: str) -> bool:
        return tenant_key in self._offsets or self.clock.simulated

    # -- inbound -------------------------------------------------------------
    async def accept(self, event: Event) -> bool:
        """Persist an inbound event (before the platform is answered); False for a duplicate."""
        fresh = await self.inbox_writer.accept(event)
        self.stats["inbox_accepted" if fresh else "inbox_duplicates"] += 1
        self.metrics.inbound.labels(event.platform, "accepted" if fresh else "duplicate").inc()
        if fresh:
            self._inbox_wake.set()
        return fresh

    async def process_inbox_once(self, limit: int = 50) -> int:
        rows = await inbox.claim(self.db, utcnow(), limit=limit)
        if not rows:
            return 0
        # Per-person order is kept by handling one person's events in sequence: the claimed
        # events go in waves, the first event of each person, then the second, … A wave is
        # handled in batches of different people, one transaction (one commit) per batch.
        by_user: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            by_user[(row.tenant, row.userid)].append(row)
        queues = list(by_user.values())
        depth = max(len(q) for q in queues)
        for i in range(depth):
            wave = [q[i] for q in queues if len(q) > i]
            if self.db.is_postgres and len(wave) > 1:
                # Different people side by side, each share in its own transaction (connection).
                lanes = min(PG_LANES, len(wave))
                await asyncio.gather(*(self._handle_batch(wave[k::lanes]) for k in range(lanes)))
            else:
                await self._handle_batch(wave)
        return len(rows)

    async def _handle_batch(self, rows: list[Any]) -> None:
        """Handle events of different people, as few transactions as the time budget allows."""
        left = rows
        while left:
            # Acknowledging comes first: at 09:30 callbacks are stored and answered
            # while handling waits its turn (the platforms retry what is not answered).
            while self.inbox_writer.busy:
                await asyncio.sleep(0.002)
            left = await self._handle_some(left)

    async def _handle_some(self, rows: list[Any]) -> list[Any]:
        """Handle a prefix of `rows` in one transaction, each event under its own savepoint; returns the rest.

        An event's handler that fails rolls back to its savepoint only: the others of the batch
        keep their outcome, and the failed one is retried (or dead-lettered) after the commit,
        exactly as when it had a transaction of its own. Nothing is acknowledged by this (the
        platform was answered when the event was stored) and nothing is sent before the commit:
        the relay only sees the outbox rows once they are committed, so sends stay exactly once.
        The batch ends early when storing callbacks waits (SQLite has one writer) or its time is up.
        """
        handled: list[tuple[Event, Context, float]] = []
        failed: list[tuple[Any, TenantConfig, Event, Exception]] = []
        unknown: list[tuple[Any, Event]] = []
        taken: list[tuple[Any, TenantConfig | None, Event]] = []
        left: list[Any] = []
        began = time.perf_counter()
        try:
            async with self.db.transaction() as s:
                for i, row in enumerate(rows):
                    if i and (i >= BATCH_EVENTS or time.perf_counter() - began > BATCH_SECONDS
                              or self.inbox_writer.busy):
                        left = rows[i:]
                        break
                    event = Event.from_dict(row.payload)
                    tenant = self.tenant(event.tenant)
                    taken.append((row, tenant, event))
                    if tenant is None:
                        unknown.append((row, event))
                        continue
                    started = time.perf_counter()
                    try:
                        async with s.begin_nested():
                            ctx = await self._dispatch(s, row, tenant, event)
                    except _LostClaim:
                        log.warning("inbox event %s was claimed again by another worker; left to it", row.id)
                        continue
                    except Exception as exc:
                        if is_transient(exc):
                            raise  # the database cannot take work now: the whole batch waits
                        failed.append((row, tenant, event, exc))
                        continue
                    handled.append((event, ctx, started))
        except Exception as exc:
            # Nothing of this batch was stored (a transient error, or the commit itself failed):
            # each event is retried as if its own transaction had failed.
            for row, tenant, event in taken:
                if tenant is not None:
                    await self._handler_failed(row, tenant, event, exc)
            return left
        sent = False
        for event, ctx, started in handled:
            self.stats["inbox_processed"] += 1
            self.metrics.handler_seconds.labels(event.kind).observe(time.perf_counter() - started)
            sent = sent or bool(ctx.sent)
        if sent:
            self._outbox_wake.set()
        for row, event in unknown:
            await inbox.finish(self.db, row.id, utcnow(), error=f"unknown tenant {event.tenant!r}")
        for row, tenant, event, exc in failed:
            await self._handler_failed(row, tenant, event, exc)
        return left

    async def _dispatch(self, s: Any, row: Any, tenant: TenantConfig, event: Event) -> Context:
        # Done in the same transaction as the handler's changes and replies, and only
        # while our claim holds: a crash can no longer leave it handled but "processing".
        took = await s.execute(update(InboxEvent).where(
            InboxEvent.id == row.id, InboxEvent.status == "processing",
            InboxEvent.claimed_until == row.claimed_until).values(
            status="done", processed_at=utcnow(), error=""))
        if not took.rowcount:
            raise _LostClaim()
        # The sender and their exchange under way in one query: every text turn needs both.
        found = (await s.execute(select(Employee, Conversation).outerjoin(Conversation, and_(
            Conversation.tenant == Employee.tenant, Conversation.userid == Employee.userid)).where(
            Employee.tenant == tenant.key, Employee.userid == event.userid))).first()
        me, conversation = (found[0], found[1]) if found is not None else (None, None)
        ctx = Context(session=s, tenant=tenant, event=event, me=me, now=self.now_for(tenant.key),
                      data_dir=self.config.server.data_dir)
        if me is not None:
            ctx.known_conversation(conversation)
        await self.router.dispatch(ctx)
        return ctx

    async def _handler_failed(self, row: Any, tenant: TenantConfig, event: Event, exc: Exception) -> None:
        """Retry later what failed because of the database; dead-letter what keeps failing by itself.

        The callback was acknowledged, so the event is never given up because the database
        was full, read-only or gone: it waits (backoff) and is handled once the database is back.
        Only the handler's own failure, N times over, makes a dead letter, and only then is the
        person told, in the same transaction that records it.
        """
        now = utcnow()
        error = f"{type(exc).__name__}: {exc}"
        if is_transient(exc):
            self.stats["inbox_deferred"] += 1
            log.warning("inbox event %s (%s) deferred: the database cannot take it now (%s)",
                        row.id, event.kind, type(exc).__name__)
            await self.db.recover()
            try:
                await inbox.retry_later(self.db, row.id, now, failures=row.failures, error=error,
                                        delay=inbox.retry_delay(2))
            except Exception as again:
                # Not even that could be written: the claim runs out and the event is taken up again.
                log.warning("inbox event %s stays claimed until its lease ends (%s)", row.id, type(again).__name__)
            return
        failures = (row.failures or 0) + 1
        log.exception("handler failed for inbox event %s (%s), failure %d of %d",
                      row.id, event.kind, failures, inbox.MAX_FAILURES)
        try:
            if failures < inbox.MAX_FAILURES:
                self.stats["inbox_retries"] += 1
                await inbox.retry_later(self.db, row.id, now, failures=failures, error=error,
                                        delay=inbox.retry_delay(failures))
                return
            async with self.db.transaction() as s:
                await s.execute(update(InboxEvent).where(InboxEvent.id == row.id).values(
                    status="failed", processed_at=now, failures=failures, error=error[:2000], claimed_until=None))
                # Tell the person, so a silent failure does not look like success.
                from cards.texts import t
                outbox.enqueue(s, tenant=tenant.key, platform=tenant.platform, userid=event.userid,
                               message=Message(kind="text", text=t(tenant.locale, "error")))
        except Exception as again:
            log.warning("inbox event %s: recording the failure failed too (%s); it will be taken up again",
                        row.id, type(again).__name__)
            if is_transient(again):
                await self.db.recover()
            return
        self.stats["inbox_failed"] += 1
        self._outbox_wake.set()

    # -- outbound ------------------------------------------------------------
    async def relay_once(self, limit: int = 1000) -> int:
        rows = await outbox.claim(self.db, utcnow(), limit=limit)
        if not rows:
            return 0
        by_tenant: dict[str, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_tenant[row.tenant].append(row)
        await asyncio.gather(*(self._send_tenant(k, items) for k, items in by_tenant.items()))
        return len(rows)

    async def _send_tenant(self, key: str, rows: list[OutboxMessage]) -> None:
        # Rows are marked after each chunk, so a crash can only leave one chunk's sends unrecorded
        # (and repeat them), not everything claimed at once.
        for i in range(0, len(rows), RELAY_CHUNK):
            if i:  # keep the claim on what is still to send, so no other relay takes it over
                await outbox.extend_claim(self.db, [r.id for r in rows[i:]], utcnow())
            await self._send_chunk(key, rows[i:i + RELAY_CHUNK])

    async def _send_chunk(self, key: str, rows: list[OutboxMessage]) -> None:
        tenant = self.tenant(key)
        adapter = self.adapters.get(rows[0].platform)
        if tenant is None or adapter is None:
            for row in rows:
                await outbox.mark_failed(self.db, row, utcnow(), f"no adapter for platform {row.platform!r}", None, True)
            return
        items: list[OutboundItem] = []
        fanout: dict[int, list[int]] = {}  # fan-out row id → its items' ids
        for r in rows:
            message = Message.from_dict(r.payload)
            if r.userid == outbox.EVERYONE:
                # Stable per-recipient ids (negative: never a real row id), so an adapter that
                # remembers an unsure send by item id can replay it byte for byte.
                ids = [-(r.id * outbox.FANOUT + i + 1) for i in range(len(outbox.recipients(r)))]
                fanout[r.id] = ids
                items += [OutboundItem(id=i, userid=u, message=message) for i, u in zip(ids, outbox.recipients(r))]
            else:
                items.append(OutboundItem(id=r.id, userid=r.userid, message=message))
        try:
            results = await adapter.send_batch(tenant, items)
        except Exception as exc:  # an adapter bug must not lose messages: retry later
            log.exception("adapter %s failed to send", adapter.platform)
            results = {i.id: SendResult(ok=False, error=f"{type(exc).__name__}: {exc}", retry_after=5) for i in items}
        now = utcnow()
        for r in [r for r in rows if r.id in fanout]:
            await self._settle_fanout(adapter.platform, r, fanout[r.id], results, now)
        rows = [r for r in rows if r.id not in fanout]
        ok = [r.id for r in rows if results.get(r.id, SendResult(False, error="no result")).ok]
        await outbox.mark_sent(self.db, ok, now, {i: results[i].ref for i in ok})
        self.stats["outbox_sent"] += len(ok)
        self.metrics.sent.labels(adapter.platform).inc(len(ok))
        for r in rows:
            res = results.get(r.id) or SendResult(ok=False, error="adapter returned no result", retry_after=5)
            if not res.ok:
                self.metrics.send_errors.labels(adapter.platform, res.code or _code_of(res.error)).inc()
                status = await outbox.mark_failed(self.db, r, now, res.error, res.retry_after, res.permanent)
                self.stats["outbox_dead" if status == "dead" else "outbox_retries"] += 1
                log.warning("send to %s/%s failed (%s): %s", r.tenant, r.userid, status, res.error)

    async def _settle_fanout(self, platform: str, row: OutboxMessage, ids: list[int],
                             results: dict[int, SendResult], now: Any) -> None:
        to = outbox.recipients(row)
        res = [results.get(i) or SendResult(ok=False, error="adapter returned no result", retry_after=5) for i in ids]
        sent = sum(1 for r in res if r.ok)
        self.stats["outbox_sent"] += sent
        self.metrics.sent.labels(platform).inc(sent)
        failed = [(u, r) for u, r in zip(to, res) if not r.ok]
        for _, r in failed:
            self.metrics.send_errors.labels(platform, r.code or _code_of(r.error)).inc()
        if not failed:
            await outbox.mark_sent(self.db, [row.id], now)
        elif not sent and all(not r.permanent for _, r in failed):
            # Nothing went out (the call failed as a whole): retry the same row, same ids.
            wait = max((r.retry_after or 0) for _, r in failed)
            status = await outbox.mark_failed(self.db, row, now, failed[0][1].error, wait, False)
            log.warning("fan-out to %d people of %s failed (%s): %s", len(to), row.tenant, status, failed[0][1].error)
        else:
            retry = [(u, r) for u, r in failed if not r.permanent]
            dead = [(u, r) for u, r in failed if r.permanent]
            await outbox.split_fanout(
                self.db, row, now, retry=[u for u, _ in retry],
                retry_after=max((r.retry_after or 0) for _, r in retry) if retry else None,
                retry_error=retry[0][1].error if retry else "", dead=[u for u, _ in dead],
                dead_error=dead[0][1].error if dead else "")
            log.warning("fan-out of %s: %d sent, %d to retry, %d undeliverable",
                        row.tenant, sent, len(retry), len(dead))

    # -- loops ---------------------------------------------------------------
    async def _loop(self, step: Any, wake: asyncio.Event, idle: float) -> None:
        while not self._stopping:
            try:
                n = await step()
            except Exception as exc:
                if is_transient(exc):
                    # The database is full, read-only or gone: fresh connections next time, and
                    # the loop goes on trying (a wedged dispatcher would need a restart).
                    log.warning("background step %s: database unavailable (%s); retrying",
                                getattr(step, "__name__", step), type(exc).__name__)
                    try:
                        await self.db.recover()
                    except Exception:
                        pass
                else:
                    log.exception("background step %s failed", getattr(step, "__name__", step))
                n = 0
            if n:
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=idle)
            except asyncio.TimeoutError:
                pass

    async def start(self, *, inbound: bool = True, handle: bool = True) -> None:
        """Open the adapters' inbound connections (DingTalk Stream) and/or run the dispatcher and relay.

        `serve --role web` takes inbound only and `--role worker` handles only: in a worker the
        events arrive from another process, which cannot wake this one, so it polls more often.
        """
        if inbound:
            for adapter in self.adapters.values():
                await adapter.start()
        if handle:
            idle = 0.5 if inbound else 0.1
            self._tasks = [
                asyncio.create_task(self._loop(self.process_inbox_once, self._inbox_wake, idle), name="dispatcher"),
                asyncio.create_task(self._loop(self.relay_once, self._outbox_wake, idle), name="outbox-relay"),
            ]

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Finish the step in hand, then handle what the inbox holds and send what is due, for at
        most `drain_seconds`; whatever is left stays for the next start."""
        self._stopping = True
        self._inbox_wake.set()
        self._outbox_wake.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                task.cancel()
        deadline = time.monotonic() + drain_seconds
        while self._tasks and time.monotonic() < deadline:
            try:
                if not await self.process_inbox_once() + await self.relay_once():
                    break
            except Exception:
                log.exception("draining the inbox and outbox on shutdown failed")
                break
        for adapter in self.adapters.values():
            await adapter.stop()

    def wake_outbox(self) -> None:
        self._outbox_wake.set()

    def wake_inbox(self) -> None:
        """Something stored an inbox row itself (an external event): the dispatcher should look."""
        self._inbox_wake.set()

    async def settle(self, rounds: int = 50) -> None:
        """Process the inbox and deliver due outbox rows until both are idle (for tests and jobs)."""
        for _ in range(rounds):
            n = await self.process_inbox_once() + await self.relay_once()
            if not n:
                return


class _LostClaim(Exception):
    """The inbox row's lease ran out and another worker claimed it."""


def _code_of(error: str) -> str:
    """A short label for an error without an explicit code: its leading number or word."""
    m = re.match(r"\s*(-?\d+|[A-Za-z][\w.]*)", error or "")
    return m.group(1)[:60] if m else "unknown"
