"""Prometheus metrics at /metrics: inbox lag, outbox by state, send errors, jobs, handler latency.

Each Runtime has its own registry, so several runtimes in one test process do
not mix their figures. Database-derived gauges are refreshed at scrape time.
"""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.core.timeutil import aware
from store.db import Database
from store.models import InboxEvent, OutboxMessage


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.inbox_pending = Gauge("dongxian_inbox_pending", "Inbound events accepted but not yet handled", registry=r)
        self.inbox_lag = Gauge("dongxian_inbox_lag_seconds", "Age of the oldest unhandled inbound event", registry=r)
        self.outbox = Gauge("dongxian_outbox_messages", "Outbox messages by platform and state", ["platform", "status"], registry=r)
        self.inbound = Counter("dongxian_inbound_events_total", "Inbound events by platform and outcome",
                               ["platform", "outcome"], registry=r)
        self.send_errors = Counter("dongxian_send_errors_total", "Failed platform sends by platform and error code",
                                   ["platform", "code"], registry=r)
        self.sent = Counter("dongxian_sent_total", "Messages delivered to a platform", ["platform"], registry=r)
        self.job_runs = Counter("dongxian_job_runs_total", "Scheduled job runs", ["job"], registry=r)
        self.job_sends = Counter("dongxian_job_sends_total", "Messages queued by scheduled jobs", ["job"], registry=r)
        self.handler_seconds = Histogram("dongxian_handler_seconds", "Time to handle one inbound event",
                                         ["kind"], registry=r,
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    async def refresh(self, db: Database) -> None:
        async with db.session() as s:
            pending, oldest = (await s.execute(select(func.count(), func.min(InboxEvent.received_at)).where(
                InboxEvent.status.in_(("pending", "processing"))))).one()
            rows = (await s.execute(select(OutboxMessage.platform, OutboxMessage.status, func.count())
                                    .group_by(OutboxMessage.platform, OutboxMessage.status))).all()
        self.inbox_pending.set(pending or 0)
        self.inbox_lag.set((utcnow() - aware(oldest)).total_seconds() if oldest else 0)
        self.outbox.clear()
        for platform, status, n in rows:
            self.outbox.labels(platform, status).set(n)

    def exposition(self) -> web.Response:
        """The Prometheus text format of every metric."""
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
